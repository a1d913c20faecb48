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

The training script and :func:`~napari_deconvnet.restore` both build the
input with :func:`conditioning_channels`, so that they cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .psf import as_psf

__all__ = [
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


def _method(model: Any) -> tuple[str, dict[str, Any]]:
    spec = model.metadata.get("conditioning", {"method": "wiener"})
    method = spec.get("method", "wiener")
    if method not in ("wiener", "richardson-lucy", "switching-median"):
        raise ValueError(
            f"unknown conditioning method {method!r} in the model file; this version knows "
            "'wiener', 'richardson-lucy' and 'switching-median'"
        )
    return method, spec


def impulse_values(images: Any) -> dict[str, float]:
    """The pepper and salt values of an image: its minimum and maximum, over all of it.

    This is the one definition of an impulse used by the ``salt-and-pepper``
    model's switching-median channel and by its impulse switch (see
    :func:`~napari_deconvnet.restore`): for a stack, the minimum and maximum
    of the whole stack, as :func:`~napari_deconvnet.synthesize` sets the
    impulses of a stack. A dask array is reduced lazily (one pass).
    """
    low, high = images.min(), images.max()
    if hasattr(low, "compute"):
        import dask

        low, high = dask.compute(low, high)
    return {"minimum": float(low), "maximum": float(high)}


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
    from .classical import estimate_balance

    method, spec = _method(model)
    n = images.shape[0]
    if method == "switching-median":
        return [impulse_values(images)] * n
    if method == "richardson-lucy":
        lows = images.min(axis=tuple(range(1, images.ndim)))
        if hasattr(lows, "compute"):
            lows = lows.compute()
        return [{"low": float(v)} for v in np.asarray(lows)]
    scale = float(spec.get("balance_scale", 1.0))
    out = []
    for image in images:
        if hasattr(image, "compute"):
            starts = [max(0, (s - BALANCE_CROP) // 2) for s in image.shape]
            crop = tuple(slice(a, a + BALANCE_CROP) for a in starts)
            image = image[crop].compute()
        out.append({"balance": scale * estimate_balance(np.asarray(image, np.float32))})
    return out


BALANCE_CROP = 1024


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
    method, spec = _method(model)
    ndim = model.config.ndim
    if method == "switching-median":
        return (int(spec.get("largest", 7)) // 2,) * ndim
    return tuple(3 * int(s) for s in kernel.shape)


def conditioning_channels(
    images: np.ndarray,
    kernel: np.ndarray | None,
    model: Any,
    device: Any = "cpu",
    statistics: list[dict[str, float]] | None = None,
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
    statistics : list of dict, optional
        One per image, from :func:`conditioning_statistics`; default: computed
        from `images` (exact). Pass the whole image's statistics when
        `images` are blocks of it.

    Returns
    -------
    (N, *spatial) float32 ndarray in the images' intensity scale, to be
    normalised with the same statistics as the images.
    """
    from .classical import richardson_lucy, wiener
    from .denoisers import denoise_switching_median

    method, spec = _method(model)
    if statistics is None:
        statistics = conditioning_statistics(images, model)
    out = np.empty(images.shape, np.float32)
    for i, image in enumerate(images):
        image = np.asarray(image, np.float32)
        stats = statistics[i]
        if method == "switching-median":
            out[i] = denoise_switching_median(
                image, stats["minimum"], stats["maximum"], largest=int(spec.get("largest", 7))
            )
        elif method == "wiener":
            out[i] = wiener(image, kernel, stats["balance"])
        else:
            low = stats["low"]
            shifted = image - low
            estimate = richardson_lucy(
                shifted, kernel, int(spec.get("iterations", 30)), device=device
            )
            out[i] = estimate + low
    return out
