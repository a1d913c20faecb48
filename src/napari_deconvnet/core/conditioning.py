"""PSF conditioning of the deconvolution models (``deconv-2d``, ``deconv-3d``).

A deconvolution model does not learn one PSF: it is told the PSF through
its input. Beside the blurred, noisy image it receives a second channel, a
classical pre-deconvolution of the image with the user's PSF. The
pre-deconvolution restores the frequencies the PSF attenuated but amplifies
noise and rings; the network learns to keep the detail and remove the rest.
Because the PSF enters only through the classical step, one model trained
over a family of Gaussian and Airy/widefield PSFs applies to a PSF it has not
seen.

Such a model's metadata says ``"needs_psf": true`` and describes its
conditioning:

- ``{"method": "richardson-lucy", "iterations": n}``: ``n`` iterations of
  :func:`~napari_deconvnet.richardson_lucy` on the image shifted to a zero
  minimum (and shifted back);
- ``{"method": "wiener", "balance_scale": s}``: :func:`~napari_deconvnet.wiener`
  with the noise-to-signal balance it estimates (``balance=None``) times ``s``.

The same mechanism conditions the ``salt-and-pepper`` model, without a PSF:
``{"method": "switching-median"}`` gives it the
:func:`~napari_deconvnet.denoise_switching_median` of the image (impulses at
the image's minimum and maximum replaced by a median of their clean
neighbours), which the network refines. Its impulse switch keeps every
pixel that is not an impulse. Both use one definition of an impulse: a value
equal to the whole image's minimum or maximum (:func:`impulse_values`; for a
stack, of the whole stack).

Every statistic the channel depends on (the image's minimum, the Wiener
balance, the impulse values) is computed once over the whole image
(:func:`conditioning_statistics`), so that the channel can also be computed
block by block for lazy and streamed restores, with a context of
:func:`conditioning_margin` pixels around each block.

The computation belongs to the model's kind (:mod:`~napari_deconvnet.core.kinds`:
:class:`~napari_deconvnet.core.kinds.PSFConditioned`,
:class:`~napari_deconvnet.core.kinds.ImpulseSwitched`), chosen from its
metadata by :func:`~napari_deconvnet.core.kinds.kind_of`. The functions here
are that computation addressed by model, as the training script, the
bioimage.io export and older code call it; the training script and
:func:`~napari_deconvnet.restore` thus build the input the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .kinds import BALANCE_CROP, impulse_values, kind_of

__all__ = [
    "BALANCE_CROP",
    "conditioning_channels",
    "conditioning_margin",
    "conditioning_statistics",
    "extra_channels",
    "impulse_values",
    "needs_psf",
    "prepare_psf",
]


def needs_psf(model: Any) -> bool:
    """Whether a loaded model is a PSF-conditioned deconvolution model."""
    return kind_of(model).needs_psf


def extra_channels(model: Any) -> int:
    """Input channels a model takes beyond the image's own (1 for conditioned models)."""
    return kind_of(model).extra_channels


def prepare_psf(psf: Any, model: Any, spatial_shape: tuple[int, ...]) -> np.ndarray | None:
    """Validate `psf` for `model` and images of `spatial_shape`; float64, sum 1.

    Raises
    ------
    ValueError
        No PSF for a deconvolution model, a PSF for a model that takes none,
        a PSF whose dimensionality differs from the model's, one bigger than
        the image, one with NaN/Inf or summing to zero.
    """
    return kind_of(model).prepare_psf(psf, model.config.ndim, spatial_shape)


def conditioning_statistics(images: Any, model: Any) -> list[dict[str, float]]:
    """The global statistics each image's conditioning channel depends on.

    Parameters
    ----------
    images : (N, *spatial) ndarray or dask array
        The images in their own intensity scale.
    model : DeconvNet
        A conditioned model (``metadata["conditioning"]``).

    Returns
    -------
    list of dict, one per image
        ``{"low": m}`` for Richardson-Lucy (the image's minimum: it runs on
        the image shifted to a zero minimum); ``{"balance": b}`` for Wiener
        (``balance_scale`` times the noise-to-signal ratio estimated from the
        image, or, for a dask array, from its central crop of at most
        :data:`BALANCE_CROP` pixels per axis); ``{"minimum": lo, "maximum":
        hi}`` for the switching median (:func:`impulse_values`, shared by all
        images).

    Computing these once, over the whole image, and passing them to
    :func:`conditioning_channels` lets the channel be computed block by
    block (see :func:`conditioning_margin`).
    """
    return kind_of(model).input_statistics(images)


def conditioning_margin(model: Any, kernel: np.ndarray | None) -> tuple[int, ...]:
    """Context (pixels per spatial axis) the conditioning channel needs around a block.

    Computed on a block extended by this margin (the image's own reflection
    at its borders), the channel matches the whole image's: exactly for the
    switching median (its largest window); for Wiener and Richardson-Lucy,
    whose influence decays over a few PSF sizes, three PSF sizes (the padding
    they use at the image's borders) keep the restored result within 1e-5 of
    its range of the whole image's (measured ~4e-6 with 64-pixel blocks;
    ``tests/test_lazy.py`` asserts 1e-4).
    """
    return kind_of(model).input_margin(kernel, model.config.ndim)


def conditioning_channels(
    images: np.ndarray,
    kernel: np.ndarray | None,
    model: Any,
    device: Any = "cpu",
    statistics: list[dict[str, float]] | None = None,
) -> np.ndarray:
    """The extra input channel of a conditioned model, for every image.

    Parameters
    ----------
    images : (N, *spatial) ndarray
        The blurred images in their own intensity scale (before normalisation).
    kernel : ndarray
        The PSF from :func:`prepare_psf` (None for the switching median).
    model : DeconvNet
        Its ``metadata["conditioning"]`` says how the channel is made.
    device : str or torch.device, optional
        Where Richardson-Lucy runs.
    statistics : list of dict, optional
        One per image, from :func:`conditioning_statistics`; default: computed
        from `images` (exact). Pass the whole image's statistics when
        `images` are blocks of it.

    Returns
    -------
    (N, *spatial) float32 ndarray in the images' intensity scale, to be
    normalised with the same statistics as the images.
    """
    return kind_of(model).input_channels(images, kernel, device=device, statistics=statistics)
