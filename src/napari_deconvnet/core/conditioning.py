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
neighbours), which the network refines.

The training script and :func:`~napari_deconvnet.restore` both build the
input with :func:`conditioning_channels`, so that they cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .psf import as_psf

__all__ = ["conditioning_channels", "extra_channels", "needs_psf", "prepare_psf"]


def needs_psf(model: Any) -> bool:
    """Whether a loaded model is a PSF-conditioned deconvolution model."""
    return bool(getattr(model, "metadata", {}).get("needs_psf", False))


def extra_channels(model: Any) -> int:
    """Input channels a model takes beyond the image's own (1 for conditioned models)."""
    metadata = getattr(model, "metadata", {})
    return 1 if needs_psf(model) or "conditioning" in metadata else 0


def prepare_psf(psf: Any, model: Any, spatial_shape: tuple[int, ...]) -> np.ndarray:
    """Validate `psf` for `model` and images of `spatial_shape`; float64, sum 1.

    Raises
    ------
    ValueError
        No PSF for a deconvolution model, a PSF for a model that takes none,
        a PSF whose dimensionality differs from the model's, one bigger than
        the image, one with NaN/Inf or summing to zero.
    """
    name = getattr(model, "metadata", {}).get("name", "")
    ndim = model.config.ndim
    if not needs_psf(model):
        if psf is None:
            return None
        raise ValueError(
            f"model {name!r} is not a deconvolution model and takes no PSF; pass psf=None "
            "or choose a deconvolution model such as 'deconv-2d'"
        )
    if psf is None:
        raise ValueError(
            f"model {name!r} deconvolves and needs the image's PSF: pass psf= an array, a "
            "make_psf name such as 'gaussian', or a dict like {'kind': 'gaussian', 'sigma': 2}"
        )
    kernel = as_psf(psf, ndim)
    if kernel.ndim != ndim:
        raise ValueError(
            f"model {name!r} deconvolves {ndim}D images and needs a {ndim}D PSF, got a PSF of "
            f"shape {kernel.shape}"
        )
    if any(k > s for k, s in zip(kernel.shape, spatial_shape, strict=True)):
        raise ValueError(
            f"psf of shape {kernel.shape} is bigger than the image's spatial shape "
            f"{tuple(spatial_shape)}; crop the PSF (e.g. make_psf(kind, shape=...))"
        )
    return kernel


def conditioning_channels(
    images: np.ndarray, kernel: np.ndarray | None, model: Any, device: Any = "cpu"
) -> np.ndarray:
    """The extra input channel of a deconvolution model, for every image.

    Parameters
    ----------
    images : (N, *spatial) ndarray
        The blurred images in their own intensity scale (before normalisation).
    kernel : ndarray
        The PSF from :func:`prepare_psf`.
    model : DeconvNet
        Its ``metadata["conditioning"]`` says how the channel is made.
    device : str or torch.device, optional
        Where Richardson-Lucy runs.

    Returns
    -------
    (N, *spatial) float32 ndarray in the images' intensity scale, to be
    normalised with the same statistics as the images.
    """
    from .classical import _estimate_balance, richardson_lucy, wiener
    from .denoisers import denoise_switching_median

    spec = model.metadata.get("conditioning", {"method": "wiener"})
    method = spec.get("method", "wiener")
    if method not in ("wiener", "richardson-lucy", "switching-median"):
        raise ValueError(
            f"unknown conditioning method {method!r} in the model file; this version knows "
            "'wiener', 'richardson-lucy' and 'switching-median'"
        )
    out = np.empty(images.shape, np.float32)
    for i, image in enumerate(images):
        image = np.asarray(image, np.float32)
        if method == "switching-median":
            out[i] = denoise_switching_median(image, largest=int(spec.get("largest", 7)))
        elif method == "wiener":
            balance = float(spec.get("balance_scale", 1.0)) * _estimate_balance(image)
            out[i] = wiener(image, kernel, balance)
        else:
            low = float(image.min())
            shifted = image - low
            estimate = richardson_lucy(
                shifted, kernel, int(spec.get("iterations", 30)), device=device
            )
            out[i] = estimate + low
    return out
