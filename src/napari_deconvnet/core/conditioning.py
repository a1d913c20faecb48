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
    "kind_metadata",
    "needs_psf",
    "noise_map_channel",
    "normalised_line",
    "prepare_psf",
    "trains_with_noise_map",
]


def needs_psf(model: Any) -> bool:
    """Whether a loaded model is a PSF-conditioned deconvolution model."""
    return kind_of(model).needs_psf


def extra_channels(model: Any) -> int:
    """Input channels a model takes beyond the image's own (1 or 2 for conditioned models)."""
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


def conditioning_margin(
    model: Any, kernel: np.ndarray | None, statistics: list[dict[str, float]] | None = None
) -> tuple[int, ...]:
    """Context (pixels per spatial axis) the conditioning channel needs around a block.

    Computed on a block extended by this margin (the image's own reflection
    at its borders), the channel matches the whole image's: exactly for the
    switching median (its largest window); for Wiener and Richardson-Lucy,
    whose influence decays over a few PSF sizes, three PSF sizes (the padding
    they use at the image's borders) keep the restored result within 1e-5 of
    its range of the whole image's (measured ~4e-6 with 64-pixel blocks;
    ``tests/test_lazy.py`` asserts 1e-4). Wiener's reach also grows with its
    balance, so pass the whole image's `statistics`
    (:func:`conditioning_statistics`): a noise-dominated image needs more.
    """
    return kind_of(model).input_margin(kernel, model.config.ndim, statistics)


def conditioning_channels(
    images: np.ndarray,
    kernel: np.ndarray | None,
    model: Any,
    device: Any = "cpu",
    statistics: list[dict[str, float]] | None = None,
) -> np.ndarray:
    """The extra input channel(s) of a conditioned model, for every image.

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
    normalised with the same statistics as the images; ``(N, C, *spatial)``
    for a model with several extra channels (``"wiener+richardson-lucy"``:
    Wiener, then Richardson-Lucy). ``kind_of(model).channel_stack`` always
    gives the second form.
    """
    return kind_of(model).input_channels(images, kernel, device=device, statistics=statistics)


# ------------------------------------------------------- training with a noise map


def trains_with_noise_map(model: Any) -> bool:
    """Whether `model` is noise-conditioned: training appends its noise-map channel."""
    from .kinds import NoiseConditioned

    return isinstance(kind_of(model), NoiseConditioned)


def noise_window(model: Any) -> int:
    """The window of a noise-conditioned `model`'s noise map, as restore computes it
    (its metadata's ``conditioning["window"]``; 3 by default): training took 3
    whatever the model said (session 69)."""
    if not trains_with_noise_map(model):
        return 3
    return kind_of(model)._window()


def kind_metadata(model: Any) -> dict[str, Any]:
    """The metadata entries that choose `model`'s kind, for a model trained from it.

    A fine-tuned or adapted copy of a conditioned model must be used the
    same way: ``kind``, ``conditioning`` and the flags older model files
    choose their kind by (``needs_psf``, ``impulse_switch``) carry over.
    """
    metadata = getattr(model, "metadata", None) or {}
    keys = ("kind", "conditioning", "needs_psf", "impulse_switch")
    return {k: metadata[k] for k in keys if k in metadata}


def normalised_line(line: dict[str, float], offset: float, scale: float) -> tuple[float, float]:
    """A variance line ``var = a * m + b`` in raw units, in the network's units.

    With ``x_n = (x - offset) / scale``: ``var_n = a / scale * m_n + (a *
    offset + b) / scale**2``.
    """
    a = max(float(line["a"]), 0.0)
    return a / scale, (a * offset + float(line["b"])) / scale**2


def noise_map_channel(x: Any, lines: Any, window: int = 3) -> Any:
    """`x` ``(B, 1, *spatial)`` normalised, with its noise map appended: ``(B, 2, ...)``.

    The torch form of :meth:`~.kinds.NoiseConditioned.input_channels` in the
    network's units (``lines``: one ``(a, b)`` per sample from
    :func:`normalised_line`), for training batches: normalising the channel
    that restore computes in raw units gives the same values, up to the
    patch's border (a reflection here, the image's own pixels there). Computed
    from `x` as given: for Noise2Void, from the masked input, so that the
    channel does not show a masked pixel its value.
    """
    import torch
    import torch.nn.functional as F

    ndim = x.ndim - 2
    lines = torch.as_tensor(np.asarray(lines, np.float32), device=x.device)
    shape = (x.shape[0],) + (1,) * (ndim + 1)
    a, b = lines[:, 0].reshape(shape), lines[:, 1].reshape(shape)
    half = window // 2
    pool = F.avg_pool2d if ndim == 2 else F.avg_pool3d
    mean = pool(F.pad(x, (half,) * (2 * ndim), mode="replicate"), window, stride=1)
    return torch.cat([x, x + torch.sqrt(torch.clamp(a * mean + b, min=0.0))], dim=1)
