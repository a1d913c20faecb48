"""Classical deconvolution: Richardson-Lucy (optionally TV-regularised) and Wiener.

They are baselines and options beside the learned models: the Restore widget
lists them (:data:`CLASSICAL_METHODS`), and the Quality widget and the
benchmark compare them with the networks. Richardson-Lucy runs on torch
(CUDA, MPS or the CPU); Wiener calls scikit-image.

Both take the image first and a PSF (an array of any odd or even shape, a
:func:`~napari_deconvnet.make_psf` name or a dict, normalised to sum 1), accept
any real dtype, and return float32 in the input's intensity scale. The image
is extended by reflection (Richardson-Lucy: for a mirror-symmetric PSF, by
convolutions that fold at the borders), so that the borders show no
wrap-around or dark-frame artefacts.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from .deconv_operators import (
    FoldedFFT,
    SeparableConvolution,
    centred_otf,
    fft_shape,
    mirror_symmetric,
    scaled_transpose,
    separable_taps,
    tv_divergence,
)
from .denoisers import as_image
from .generators import drain
from .psf import as_psf, fit_psf
from .specs import SpecTable

if TYPE_CHECKING:
    import torch

__all__ = [
    "CLASSICAL_METHODS",
    "estimate_balance",
    "richardson_lucy",
    "richardson_lucy_iter",
    "wiener",
]

_PAD_MODES = ("reflect", "symmetric", "edge")
_EPS = 1e-12  # as scikit-image's richardson_lucy
#: Below this share of its PSF on the image a pixel is reached by no estimate
#: (float32 FFTs round zero to about 1e-7 of the largest value)
_UNREACHED = 1e-5


def _prepare(image: Any, psf: Any, pad: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate; return the float32 image and the PSF with odd sizes (float64, sum 1)."""
    arr = as_image(image)
    kernel = fit_psf(psf, as_psf(psf, arr.ndim), arr.shape)  # a generated one fits
    spatial = arr.shape[arr.ndim - kernel.ndim :]
    if any(k > n for k, n in zip(kernel.shape, spatial, strict=True)):
        raise ValueError(
            f"psf of shape {kernel.shape} is bigger than the image's trailing axes {spatial}; "
            "crop the PSF (e.g. make_psf(kind, shape=...)) to at most the image's size"
        )
    if pad is not None and pad not in _PAD_MODES:
        raise ValueError(f"pad must be one of {_PAD_MODES} or None, got {pad!r}")
    # An even axis gets a zero at its end: the PSF's centre is then at index
    # size // 2, as in scipy.ndimage.convolve and dn.blur, and the odd kernel
    # and its mirror image are exact adjoints (no half-pixel drift).
    kernel = np.pad(kernel, [(0, 1 - s % 2) for s in kernel.shape])
    return arr, kernel


def _pad_widths(kernel_shape: tuple[int, ...], ndim: int, pad: Any) -> list[tuple[int, int]]:
    """Three PSF sizes on each side of every blurred axis (none if `pad` is None).

    Richardson-Lucy with zero-padded convolutions (as scikit-image's) has an
    artefact at the borders of its domain that spreads inwards with the
    iterations; three PSF sizes keep it out of the image in practice (on a
    flat image, 30 iterations of a 9x9 Gaussian PSF leave < 1e-4 of it).
    """
    lead = [(0, 0)] * (ndim - len(kernel_shape))
    return lead + [(0, 0) if pad is None else (3 * s, 3 * s) for s in kernel_shape]


def _crop(widths: list[tuple[int, int]], shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, shape, strict=True))


def _finish(out: np.ndarray, arr: np.ndarray, clip: bool) -> np.ndarray:
    """The result as contiguous float32, clipped to the input's [min, max] if asked."""
    if clip:
        out = np.clip(out, arr.min(), arr.max())
    return np.ascontiguousarray(out, dtype=np.float32)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return float(value)


#: A caller's start (``start=``) is raised to this fraction of the image's largest
#: value: Richardson-Lucy's updates multiply, and a zero would stay zero
_START_FLOOR = 1e-4


def _start(start: Any, arr: np.ndarray) -> np.ndarray | None:
    """The caller's first estimate as float32 of the image's shape, or None."""
    if start is None:
        return None
    first = np.asarray(start)
    if first.dtype.kind not in "biuf":
        raise TypeError(f"start must be a real array, got dtype {first.dtype}")
    if first.shape != arr.shape:
        raise ValueError(
            f"start must have the image's shape {arr.shape}, got {first.shape} "
            "(it is the first estimate of the deconvolved image)"
        )
    first = first.astype(np.float32)
    if not np.isfinite(first).all():
        raise ValueError("start contains NaN or infinite values; only finite values are accepted")
    return first


def _noise_line(noise: Any) -> tuple[float, float, float] | None:
    """``(a, b, lit)``: the noise variance at mean ``m`` is ``a * m + b``, and pixels
    whose mean is at least ``lit`` (one expected photon over the offset; ``-inf``
    for Gaussian noise) are those the discrepancy counts."""
    if noise is None:
        return None
    from .noise_estimation import variance_line

    a, b = variance_line(noise)
    if not (np.isfinite(a) and np.isfinite(b)) or a < 0 or (a == 0 and b <= 0):
        raise ValueError(
            f"noise must describe a positive variance (a Gaussian sigma > 0 or a Poisson "
            f"gain > 0), got {noise!r}"
        )
    if a == 0:
        return a, b, -np.inf
    name = str(noise.get("noise", noise.get("model", ""))).lower()
    offset = float(noise.get("offset", 0.0)) if name == "poisson-gaussian" else 0.0
    return a, b, offset + a  # (a is one photon in the image's units)


def _part(t: torch.Tensor | None, region: tuple) -> torch.Tensor | None:
    return None if t is None else t[region]


def _discrepancy(
    y: torch.Tensor,
    blurred: torch.Tensor,
    scale: float,
    line: tuple[float, float, float],
    data: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per plane: the mean of (data - blurred estimate)**2 / variance over the pixels
    the estimate gives at least one photon (all of them under Gaussian noise), in the
    image's units (`y` and `blurred` are divided by `scale`); where the estimate gives
    none a photon, the same mean over the pixels whose data hold one, each with at
    least one photon's variance (0 where none does). An estimate below the offset (RL's
    constant start on a dim image above a large one) counted no pixel, read 0, was
    taken as fitted and returned flat.
    `data`: the data as they are, when `y` is their clipped copy (the residual is
    the data's).

    A pixel expecting a fraction ``m`` of a photon has a squared residual of ``m``
    photons² on average, however its variance is floored: dark pixels would pull
    the mean below 1 while the objects are still far from fitted.
    """
    a, b, lit = line
    dims = tuple(range(1, y.ndim))
    counted = blurred >= lit / scale
    variance = (blurred * (a * scale) + b).clamp_min_(1e-30)
    observed = y if data is None else data
    ratio = (observed - blurred).square_().mul_(scale * scale).div_(variance)
    ratio = ratio.masked_fill_(~counted, 0.0).sum(dim=dims)
    n = counted.sum(dim=dims)
    out = ratio / n.clamp_min(1)
    if bool((n == 0).any()):
        # judged on the pixels whose data hold a photon, each with at least one photon's
        # variance: an estimate below the offset on a lit image fits none of them
        lit_data = observed >= lit / scale
        floor = blurred.clamp_min(lit / scale)
        spread = (floor * (a * scale) + b).clamp_min_(1e-30)
        misfit = (observed - blurred).square_().mul_(scale * scale).div_(spread)
        misfit = misfit.masked_fill_(~lit_data, 0.0).sum(dim=dims)
        misfit = misfit / lit_data.sum(dim=dims).clamp_min(1)
        out = misfit.where(n == 0, out)
    return out


#: The most Richardson-Lucy iterations taken (the method's range in the catalog too):
#: 10**9 ran for days without a word
MAX_ITERATIONS = 10_000


def richardson_lucy_iter(
    image: Any,
    psf: Any,
    iterations: int = 30,
    *,
    regularization: float | None = None,
    clip: bool = False,
    filter_epsilon: float | None = None,
    pad: str | None = "reflect",
    device: Any = "auto",
    start: Any = None,
    noise: dict[str, Any] | None = None,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Richardson-Lucy as a generator: yields ``(done, iterations)``, returns the result.

    Parameters and result are those of :func:`richardson_lucy`, which drains
    this generator; a GUI worker can stop between iterations.
    """
    import torch

    from .devices import resolve_device

    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
        raise TypeError(f"iterations must be an integer, got {type(iterations).__name__}")
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(
            f"iterations must be between 1 and {MAX_ITERATIONS}, got {iterations} "
            "(10-50 is typical; more sharpens more and amplifies the noise)"
        )
    arr, kernel = _prepare(image, psf, pad)
    k = kernel.ndim
    first = _start(start, arr)
    line = _noise_line(noise)
    lam = 0.0 if regularization is None else _number("regularization", regularization)
    if lam >= 1 / (2 * k):
        raise ValueError(
            f"regularization must be < 1 / (2 * {k}) = {1 / (2 * k):.3g} for a {k}D PSF "
            f"(typical values are 1e-4 to 1e-2), got {regularization!r}"
        )
    fe = None if filter_epsilon is None else _number("filter_epsilon", filter_epsilon)
    dev = resolve_device(device)
    # Scale to max |value| 1 (RL is scale-equivariant), so that eps is relative.
    # (two passes over the image, no temporary; the minimum also says
    # whether the data can be negative)
    low, high = float(arr.min()), float(arr.max())
    scale = max(abs(low), abs(high)) or 1.0
    if 1.0 / scale > float(np.finfo(np.float32).max):  # (it "diverged" to inf)
        raise ValueError(
            f"image holds values of at most {scale:.3g}, too small for float32 arithmetic "
            "(the image is scaled to 1); multiply it by a constant first (and divide the "
            "result back)"
        )
    # A PSF symmetric along each axis, on an image extended by its mirror
    # image without end: the estimate stays symmetric too, so the iteration
    # runs on the image alone with convolutions that fold what falls beyond
    # it back onto it (the limit of an ever wider padding, without its cost).
    # With TV regularisation, whose unit gradients amplify rounding, the
    # padded computation stays as it was.
    folded = pad in ("reflect", "symmetric") and lam == 0 and mirror_symmetric(kernel)
    widths = _pad_widths(kernel.shape, arr.ndim, None if folded else pad)
    padded = np.pad(arr, widths, mode=pad) if pad is not None and not folded else arr
    spatial = padded.shape[padded.ndim - k :]
    planes = padded.reshape(-1, *spatial)
    # where the image lies among the spatial axes of the (padded) planes
    region = _crop(widths[arr.ndim - k :], arr.shape[arr.ndim - k :])
    if pad is None:
        # zeros beyond the borders: RL's update loses light within half a PSF of
        # them (H^T 1 < 1), so the estimate never fits the data there, nor its blur
        # half a PSF further in; the noise stop judges the fit a PSF's size inside
        # (the whole axis when it is thinner). Half a PSF still ran to the cap, and so
        # did one PSF: the zero-border ringing reaches further in as the iterations go
        # (misfit over the noise 4.6 -> 9.3 at 6 px from the border of a 7 x 7 PSF,
        # 2.0 -> 1.8 at 10 px, 0.92 at 16 px); three PSF sizes where the axis allows.
        region = tuple(
            _inner(r, h) for r, h in zip(region, (2 * (n // 2) for n in kernel.shape), strict=True)
        )
    dims = tuple(range(1, k + 1))
    # (the banded products swap the last two axes, which a one-pixel axis broadcasts)
    taps = separable_taps(kernel) if dev.type == "cpu" and min(spatial) > 1 else None
    if taps is not None:
        # A separable PSF (a Gaussian, say) on the CPU: banded matrix products
        # along each axis, several times faster than FFTs for small PSFs.
        # Each axis holds its buffers: a convolution allocates nothing, and
        # returns a view of the last axis's buffer (overwritten by the next).
        # H x comes with its last two axes swapped (the cheaper products),
        # and so does y for y / H x; H^T of that gives the layout back.
        grid = list(spatial)
        shape = (planes.shape[0], *grid)
        boundary = pad if folded else "zero"
        corr = [t[::-1] for t in taps]
        forward = SeparableConvolution(corr, shape, dev, boundary)
        swapped = (*shape[:-2], shape[-1], shape[-2])
        back = SeparableConvolution(
            [*corr[:-2], corr[-1], corr[-2]], swapped, dev, boundary, share=forward
        )

        def convolve(x: torch.Tensor, mirror: bool) -> torch.Tensor:
            return back(x, True) if mirror else forward(x, False)

    elif folded:
        grid = list(spatial)
        convolve = FoldedFFT(kernel, (planes.shape[0], *grid), pad, dev)
    else:
        # Everything lives on the FFT grid, the image in its first `spatial`
        # samples and zeros beyond: the estimate stays 0 there (it is
        # multiplied) and so does y / H x, so each convolution is exact on the
        # image and needs no cropping or re-padding between iterations.
        grid = fft_shape(spatial, kernel.shape)
        # The PSF's transform, once; the mirrored PSF's is its complex conjugate.
        h = centred_otf(kernel, grid, dev)
        h_mirror = h.conj()
        # Buffers allocated once (fresh ones of this size cost page faults);
        # a convolution returns `blurred`, overwritten by the next one.
        spectrum = torch.empty((planes.shape[0], *h.shape), dtype=h.dtype, device=dev)
        blurred = torch.empty((planes.shape[0], *grid), dtype=torch.float32, device=dev)

        def convolve(x: torch.Tensor, mirror: bool) -> torch.Tensor:
            torch.fft.rfftn(x, dim=dims, out=spectrum)
            spectrum.mul_(h_mirror if mirror else h)
            return torch.fft.irfftn(spectrum, s=grid, dim=dims, out=blurred)

    crop = (slice(None),) + tuple(slice(0, n) for n in spatial)
    source = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32)).to(dev)
    started = first is not None  # a caller's estimate (else RL's constant start)
    if first is not None:
        # the caller's estimate, padded as the image, in the planes' layout (which the
        # estimate has on every path)
        first = np.pad(first, widths, mode=pad) if pad is not None and not folded else first
        first = torch.from_numpy(np.ascontiguousarray(first.reshape(planes.shape), np.float32))
        first = first.to(dev).mul_(1.0 / scale).clamp_min_(_START_FLOOR)
    # else, as scikit-image, a constant (it cancels out after the first iteration)
    if taps is not None:
        y = scaled_transpose(source, 1.0 / scale)  # in the layout H x comes in
        if first is None:
            estimate = torch.full(source.shape, 0.5, dtype=torch.float32, device=dev)
        else:
            estimate = first
    elif list(spatial) == list(grid):
        y = source.mul(1.0 / scale)  # a new tensor: never the caller's array
        estimate = torch.full_like(y, 0.5) if first is None else first
    else:
        y = torch.zeros((planes.shape[0], *grid), dtype=torch.float32, device=dev)
        torch.mul(source, 1.0 / scale, out=y[crop])
        estimate = torch.zeros_like(y)
        estimate[crop] = 0.5 if first is None else first
    del source, first
    # Negative values (noise about a subtracted background, a dead pixel) are taken
    # as 0 in the ratio y / H x, as the iteration assumes (counts are >= 0). Used as
    # they were, the estimate (clamped at 0) of a dim area reached 0, its blur too,
    # and y / (H x + eps) of its positive noise blew up: an all-zero result with an
    # Airy PSF; unclamped (scikit-image) the iteration is chaotic there, two orders
    # of the same sums 300 apart. Shifting each plane to a zero minimum instead
    # lost 2.7-4 dB on objects on a black background (the positivity that RL's
    # estimate keeps there is what removes its noise) and let one outlier pixel
    # set a whole plane's shift; a known-background term (y + b) / (H x + b) lost
    # 0.3-1.1 dB there; guarding only tiny H x kept the old numbers on Gaussian
    # noise but not under an outlier, and bounds nothing. Clipped, the iteration
    # is the standard one, 0.1-0.6 dB below the old on such scenes (the clipped
    # noise's mean lifts the background a little). Pixel by pixel, planes stay
    # independent.
    data = None
    if low < 0:
        if line is not None:  # the noise stop measures the data as they are
            data = y
        y = y.clamp_min(0)
    # Pixels none of whose PSF lands on the image (a PSF with its light to one side
    # of its origin, at the border it points away from): no estimate explains them,
    # H x is 0 there but for FFT round-off, and y / (H x + eps) of about 1e12 fed
    # back through that round-off made the result NaN in ten iterations. Their ratio
    # only ever reaches pixels outside the image: it is 0 (exact in exact arithmetic).
    dead = None
    if taps is None and list(spatial) != list(grid):
        inside = torch.zeros_like(y)
        inside[crop] = 1.0
        dead = convolve(inside, False) < _UNREACHED  # the share of the PSF on the image
        dead = dead if bool(dead[crop].any()) else None
        del inside
    if line is not None:
        if taps is not None:  # H x comes with its last two axes swapped
            region = (*region[:-2], region[-1], region[-2])
        region = (slice(None), *region)
        fitted = torch.zeros(planes.shape[0], dtype=torch.bool, device=dev)
    # Banded products of non-negative taps and data stay >= 0 exactly: the
    # clamps below would change nothing (FFTs round to tiny negative values).
    clamp = taps is None or lam > 0
    clamp = clamp or any(bool((t < 0).any()) for t in taps)
    for i in range(iterations):
        # ratio = y / (max(H x, 0) + eps), computed in the buffer of H x
        ratio = convolve(estimate, False)
        if clamp:
            ratio.clamp_min_(0)
        if line is not None and (i > 0 or started):
            # the discrepancy principle: a plane whose data its estimate fits
            # within the noise (mean squared residual / variance <= 1) is done; never
            # the constant start (at one photon on a dim flat image it "fitted" and
            # came back 20 times the data's mean), a caller's start may be
            fitted |= (
                _discrepancy(y[region], ratio[region], scale, line, _part(data, region)) <= 1.0
            )
            if bool(fitted.all()):
                break
        ratio.add_(_EPS)
        if fe is not None:
            small = ratio < fe / scale
        torch.div(y, ratio, out=ratio)
        if fe is not None:
            ratio.masked_fill_(small, 0.0)
        if dead is not None:
            ratio.masked_fill_(dead, 0.0)
        update = convolve(ratio, True)
        if lam > 0:
            update[crop] /= 1 - lam * tv_divergence(estimate[crop], dims)
        if line is not None and bool(fitted.any()):
            update[fitted] = 1.0  # those planes keep their estimate
        estimate.mul_(update)
        if clamp:
            estimate.clamp_min_(0)
        del ratio, update
        yield i + 1, iterations

    estimate = estimate[crop].mul_(scale).cpu().numpy().reshape(padded.shape)
    out = estimate[_crop(widths, arr.shape)] if pad is not None else estimate
    if not np.isfinite(out).all():
        raise ValueError(
            f"Richardson-Lucy diverged on this image (its estimate is not finite after "
            f"{iterations} iterations); run fewer iterations, or check the PSF"
        )
    return _finish(out, arr, clip)


def richardson_lucy(
    image: Any,
    psf: Any,
    iterations: int = 30,
    *,
    regularization: float | None = None,
    clip: bool = False,
    filter_epsilon: float | None = None,
    pad: str | None = "reflect",
    device: Any = "auto",
    start: Any = None,
    noise: dict[str, Any] | None = None,
) -> np.ndarray:
    """Richardson-Lucy deconvolution on torch, with optional total-variation regularisation.

    Parameters
    ----------
    image : (M, N) or (P, M, N) ndarray
        The blurred image, of any real dtype, non-negative (photon counts
        or intensities). A PSF with fewer dimensions deconvolves every plane
        of the trailing axes independently.
    psf : ndarray, torch.Tensor, str or dict
        The point spread function: an array of any odd or even shape (at
        most the image's size and dimensions; normalised to sum 1 here), a
        :func:`~napari_deconvnet.make_psf` name or ``{"kind": name, ...}``.
    iterations : int, optional
        Number of iterations (>= 1). More sharpens more and amplifies noise.
        With `noise`, the most iterations there may be.
    regularization : float, optional
        Weight ``lambda`` of the total-variation term of Dey et al. [3]_;
        None or 0 is plain Richardson-Lucy. It must be below ``1 / (2 * d)``
        for a ``d``-dimensional PSF; typical values are 1e-4 to 1e-2.
    clip : bool, optional
        Clip the result to the input's [min, max].
    filter_epsilon : float, optional
        In the image's units: where the re-blurred estimate is below it, the
        ratio is set to 0, as in scikit-image (avoids noise from divisions by
        tiny values).
    pad : {"reflect", "symmetric", "edge"} or None, optional
        How the image is extended beyond its borders (as ``np.pad``'s modes);
        None deconvolves the image as it is, with zeros beyond its borders.
        See Notes.
    device : str or torch.device, optional
        ``"auto"`` (CUDA, then MPS, then the CPU), ``"cpu"``, ``"cuda"``, ...
    start : ndarray, optional
        The first estimate (the image's shape, in its units; values below
        1e-4 of the image's largest are raised to it, since the updates
        multiply). Default: a constant, as scikit-image. A result passed back
        continues the iteration exactly with ``pad=None`` or a mirror-symmetric
        PSF of odd sizes; otherwise the padding around it is mirrored afresh
        (a few percent of the peak from an uninterrupted run, at the borders:
        up to 3% measured with odd kernels, 7.3% with an 8 x 8 Gaussian).
    noise : dict, optional
        The image's noise, as :func:`~napari_deconvnet.estimate_noise`
        returns it (``{"noise": "poisson", "gain": g}``, Poisson-Gaussian
        with ``gain``, ``offset``, ``read_noise``, or Gaussian ``sigma``; in
        the image's units). Each image (plane of the leading axes) stops
        iterating as soon as its blurred estimate fits its data within that
        noise: the mean of ``(image - H x)**2 / variance(H x)`` reaches 1
        (Morozov's discrepancy principle), taken over the pixels where ``H x``
        expects at least one photon (every pixel under Gaussian noise: a dark
        pixel's residual is below 1 on average, and a dark background would
        stop the iteration long before its objects fit); with ``pad=None``,
        over the pixels at least a PSF's size from the borders (zeros beyond
        them let no estimate fit the data near them). An estimate that
        already fits is returned as it is. Pass the noise of a
        calibrated camera: an estimate from the image itself can read
        objects in the dark as weaker Gaussian noise, and the iteration then
        runs on, sharpening noise.

    Returns
    -------
    ndarray of float32, the shape of `image`, in its intensity scale.

    Raises
    ------
    ValueError
        Complex, empty or non-finite images; PSFs that are non-finite, sum
        to zero, have more dimensions than the image or are bigger than it;
        ``iterations < 1``; a negative or too large `regularization`; an
        unknown `pad`; a `start` of another shape or not finite; a `noise`
        that is not a variance line (see
        :func:`~napari_deconvnet.core.noise_estimation.variance_line`).
    TypeError
        A non-numeric image, PSF or `start`, a non-integer `iterations`, a
        `noise` that is not a dict.

    Notes
    -----
    Each iteration is ``x <- x * H^T(y / H x)`` ([1]_, [2]_), where ``H`` is
    the convolution by the PSF as a linear (zero-padded) convolution, so
    nothing wraps around: by real FFTs on a grid just long enough for that,
    or, for a separable PSF (a Gaussian) on the CPU, by banded matrix
    products along each axis, which are faster. With regularisation, the update is
    divided by ``1 - lambda * div(grad x / |grad x|)`` [3]_. Even PSF sizes
    get a zero appended, so that the PSF's centre is at index ``size // 2``
    (as in ``scipy.ndimage.convolve`` and :func:`~napari_deconvnet.core.psf.blur`)
    and ``H^T`` is the exact adjoint of ``H``.

    With ``pad=None`` the result equals
    ``skimage.restoration.richardson_lucy(image, psf_odd, num_iter=iterations,
    clip=False)``, ``psf_odd`` being the normalised PSF with the zeros above
    (within float32 precision; the computation is in float32).

    Negative values (noise about a subtracted background, a dead pixel) are
    taken as 0 in the ratio of the data to the blurred estimate: the
    iteration is defined for non-negative data (on such an image
    scikit-image's result depends on the order of its sums); with
    ``pad=None`` the result then equals scikit-image's on
    ``np.clip(image, 0, None)``.

    With ``pad="reflect"`` or ``"symmetric"``, a PSF that is its own mirror
    image along each axis (Gaussian, Airy) and no regularisation, the image
    is taken as extended by its mirror image without end: each blur is
    ``correlate(np.pad(x, half, mode=pad), psf_odd, "valid")`` with ``half``
    the PSF's half-widths, computed on the image alone (the taps that fall
    beyond a border are folded back onto the image). That is the limit, as
    the padding widens, of scikit-image's function on ``image`` padded by
    ``np.pad(..., mode=pad)`` and cropped back: an estimate and data
    symmetric about the borders stay so. It has no border artefact (a flat
    image stays flat) and costs what ``pad=None`` costs. Otherwise (another
    PSF, regularisation, ``"edge"``) the image is padded by ``3 * s`` on both
    sides of each PSF axis of size ``s`` and the result equals
    scikit-image's on that padded image, cropped back; its zero-padded
    convolutions leave an artefact at the borders of the padded domain that
    spreads inwards with the iterations, which three PSF sizes keep mostly
    out of the image (below 1e-4 of a flat image after 30 iterations of a
    9x9 Gaussian PSF).

    References
    ----------
    .. [1] W. H. Richardson, "Bayesian-based iterative method of image
           restoration", J. Opt. Soc. Am. 62, 55-59 (1972).
           :DOI:`10.1364/JOSA.62.000055`
    .. [2] L. B. Lucy, "An iterative technique for the rectification of
           observed distributions", Astron. J. 79, 745-754 (1974).
           :DOI:`10.1086/111605`
    .. [3] N. Dey, L. Blanc-Féraud, C. Zimmer, P. Roux, Z. Kam,
           J.-C. Olivo-Marin and J. Zerubia, "Richardson-Lucy algorithm with
           total variation regularization for 3D confocal microscope
           deconvolution", Microsc. Res. Tech. 69, 260-266 (2006).
           :DOI:`10.1002/jemt.20294`

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((32, 32)); image[16, 16] = 1
    >>> from napari_deconvnet.core.psf import blur
    >>> blurred = blur(image, np.ones((3, 3)))
    >>> out = richardson_lucy(blurred, np.ones((3, 3)), 50, device="cpu")
    >>> out.dtype, bool(out[16, 16] > blurred[16, 16])
    (dtype('float32'), True)
    """
    gen = richardson_lucy_iter(
        image,
        psf,
        iterations,
        regularization=regularization,
        clip=clip,
        filter_epsilon=filter_epsilon,
        pad=pad,
        device=device,
        start=start,
        noise=noise,
    )
    return drain(gen)


#: Largest balance :func:`estimate_balance` returns. Pure noise estimates a
#: noise-to-signal ratio without bound (1e11 for white noise), and the Wiener-Hunt
#: filter's reach grows as the balance's fourth root (120 pixels at 1e4; see
#: :func:`~napari_deconvnet.core.wiener_filter.wiener_context`).
BALANCE_MAX = 1e4
#: The smallest automatic balance (nearly noiseless data, or noise the median misses)
BALANCE_MIN = 1e-4


#: The fewest 2x2 blocks (a 16x16 image's) :func:`estimate_balance` reads the noise
#: from; over all planes of a volume, so that one of 12x64-pixel planes has enough.
MIN_NOISE_BLOCKS = 64


def _inner(r: slice, h: int) -> slice:
    """`r` without ``3 h`` at each end, or ``h`` where the axis is too thin, or all of it."""
    for margin in (3 * h, h):
        if r.stop - r.start > 2 * margin + 8 or (margin == h and r.stop - r.start > 2 * h):
            return slice(r.start + margin, r.stop - margin)
    return r


def estimate_balance(arr: np.ndarray, *, grouped: bool = True) -> float:
    """Noise-to-signal variance ratio of an image, 1e-4 to 1e4 (Wiener's automatic balance).

    Parameters
    ----------
    arr : (M, N) or (P, M, N) ndarray
        At least :data:`MIN_NOISE_BLOCKS` 2x2 blocks over its planes (16x16
        pixels; a volume of 8 planes of 12x64 has 768).

    Returns
    -------
    float
        The noise variance (the robust sigma of all the finest diagonal
        wavelet coefficients, :func:`~.noise_estimation.diagonal_mad_sigma`:
        the image's average noise level, texture included) over the signal
        variance (the image's variance less the noise's), clipped to
        [1e-4, :data:`BALANCE_MAX`].

    `grouped`: see :func:`~.noise_estimation.diagonal_mad_sigma` (``False``
    for the deconvolution models' conditioning channel, as they were trained).

    Raises
    ------
    ValueError
        An image with fewer blocks.
    """
    from .noise_estimation import diagonal_mad_sigma, live_pixels

    blocks = (
        0  # (a 1-D signal has no 2x2 blocks: it raised an IndexError)
        if arr.ndim < 2
        else math.prod(arr.shape[:-2]) * (arr.shape[-2] // 2) * (arr.shape[-1] // 2)
    )
    if arr.ndim < 2 or blocks < MIN_NOISE_BLOCKS:
        raise ValueError(
            f"balance=None estimates the noise from 2x2 blocks of pixels, which needs at "
            f"least {MIN_NOISE_BLOCKS} of them (a 16x16 image, or planes holding as many), "
            f"got shape {arr.shape}; pass a balance"
        )
    noise_var = diagonal_mad_sigma(arr, grouped=grouped) ** 2
    live = live_pixels(arr)  # zero padding or a mask: neither noise nor signal
    values = arr if live is None else np.asarray(arr)[live]
    # in float64: the squares of a float32 image of 1e19 (uint64 near its top) overflowed,
    # and its balance came out 2.7 times the image's range off
    signal_var = max(
        float(values.var(dtype=np.float64)) - noise_var, 1e-12 * float(np.abs(arr).max()) ** 2
    )
    if signal_var == 0:
        return 1.0
    return min(max(noise_var / signal_var, BALANCE_MIN), BALANCE_MAX)


def wiener(
    image: Any,
    psf: Any,
    balance: float | None = None,
    *,
    clip: bool = False,
    pad: str | None = "reflect",
    device: Any = None,
) -> np.ndarray:
    """Wiener-Hunt deconvolution (scikit-image's ``wiener``) without wrap-around.

    Parameters
    ----------
    image : (M, N) or (P, M, N) ndarray
        The blurred image, of any real dtype. A PSF with fewer dimensions
        deconvolves every plane of the trailing axes independently.
    psf : ndarray, torch.Tensor, str or dict
        As in :func:`richardson_lucy`.
    balance : float, optional
        Weight of the Laplacian regulariser (> 0): greater is smoother. If
        None it is estimated as the ratio of the noise variance (the robust
        sigma of all the finest diagonal wavelet coefficients,
        :func:`~.noise_estimation.diagonal_mad_sigma`) to the signal
        variance (the image's variance less the noise's), from 1e-4 to 1e4
        (:data:`BALANCE_MAX`; pure noise).
    clip : bool, optional
        Clip the result to the input's [min, max].
    pad : {"reflect", "symmetric", "edge"} or None, optional
        How the image is extended before the filter, which is circular: by
        three PSF sizes on each side, or more for a large balance, whose
        regulariser reaches further (two PSF sizes plus 12 pixels per fourth
        root of the balance: 120 + 2 PSF sizes at 1e4). None filters the
        image as it is.
    device : str or torch.device, optional
        Where the FFTs run: None or ``"cpu"`` (scipy), or a GPU (``"cuda"``,
        ``"mps"``; torch there, the same result to float32 rounding).

    Returns
    -------
    ndarray of float32, the shape of `image`, in its intensity scale.

    Raises
    ------
    ValueError
        As :func:`richardson_lucy`; a `balance` that is not > 0; with
        ``balance=None``, an image smaller than 16x16.
    TypeError
        A non-numeric image, PSF or balance.

    Notes
    -----
    The result equals ``skimage.restoration.wiener(padded, psf_odd, balance,
    clip=False)`` cropped back, with ``padded`` and ``psf_odd`` as in
    :func:`richardson_lucy`, computed on every plane of the PSF's axes: with
    ``pad=None`` to about 1e-6 of its range (float32 and real FFTs, one
    filter for all planes, :mod:`~napari_deconvnet.core.wiener_filter`); the
    default padding goes on to a size the FFT is fast for, so that the far
    border differs by up to about 1e-4 of the range (6.8e-5 measured with a
    9 x 9 Gaussian at balance 1e-3; session 73).

    References
    ----------
    .. [1] F. Orieux, J.-F. Giovannelli and T. Rodet, "Bayesian estimation of
           regularization and point spread function parameters for
           Wiener-Hunt deconvolution", J. Opt. Soc. Am. A 27, 1593-1607
           (2010). :DOI:`10.1364/JOSAA.27.001593`

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((32, 32)); image[16, 16] = 1
    >>> from napari_deconvnet.core.psf import blur
    >>> blurred = blur(image, np.ones((3, 3)))
    >>> out = wiener(blurred, np.ones((3, 3)), 0.01)
    >>> out.dtype, bool(out[16, 16] > blurred[16, 16])
    (dtype('float32'), True)
    """
    import scipy.fft as sfft

    from .wiener_filter import wiener_context, wiener_planes

    arr, kernel = _prepare(image, psf, pad)
    short = arr.shape[arr.ndim - kernel.ndim :]
    if pad is None and any(n < max(k, 3) for k, n in zip(kernel.shape, short, strict=True)):
        raise ValueError(
            "wiener with pad=None filters the image as it is, which needs every axis the PSF "
            f"spans at least as long as the PSF made odd ({kernel.shape}) and 3 pixels (its "
            f"Laplacian regulariser); got an image of {arr.shape}; use pad='reflect' (the "
            "default) or a smaller PSF"
        )
    if balance is None:
        bal = estimate_balance(arr)
    else:
        if isinstance(balance, int | float | np.integer | np.floating) and not (
            isinstance(balance, bool) or (balance > 0 and np.isfinite(balance))
        ):  # (said "finite and >= 0" for -1 and then "> 0" for 0; inf: ">= 0" too)
            raise ValueError(
                f"balance must be a finite number > 0, got {balance!r}; pass None to "
                "estimate it from the noise"
            )
        bal = _number("balance", balance)
    k = kernel.ndim
    # three PSF sizes of mirror image per side, more for a large balance, whose
    # regulariser reaches further (wiener_context): with three PSF sizes a
    # noise-dominated image's result depended on the domain (the circular
    # filter wrapped one border onto the other), so blocks of it disagreed
    spatial = arr.shape[arr.ndim - k :]
    widths = [(c, c) for c in wiener_context(kernel.shape, bal, spatial)] if pad else [(0, 0)] * k
    planes = arr.reshape(-1, *spatial)
    if pad:
        if _non_negative_otf(kernel):
            # the FFTs' domain: three PSF sizes of mirror image per side, then more
            # of it at the far end up to a length with small prime factors (a
            # 334-sample axis, 2 x 167, transforms several times slower than 336).
            # With a PSF whose transfer function has no negative lobe (Gaussians,
            # Airy disks) the image barely sees it: 4e-7 to 2.5e-6 of the range
            # in 2D and 3D (1.5e-5 on white noise). Other PSFs (a box, an
            # asymmetric one, a truncated 3D widefield PSF) keep the exact domain:
            # there the filter's long reach makes the difference 1 to 11%.
            widths = [
                (lo, hi + sfft.next_fast_len(n + lo + hi, real=True) - (n + lo + hi))
                for (lo, hi), n in zip(widths, planes.shape[1:], strict=True)
            ]
        planes = np.pad(planes, [(0, 0), *widths], mode=pad)
    if device is not None:
        from .devices import resolve_device

        device = resolve_device(device)
    out = wiener_planes(planes, kernel, bal, device)  # float32, one filter for every plane
    if pad:
        out = out[(slice(None), *_crop(widths, spatial))]
    return _finish(out.reshape(arr.shape), arr, clip)


def _non_negative_otf(kernel: np.ndarray) -> bool:
    """Whether the PSF's transfer function is real and >= 0 (no phase, no negative lobe).

    Sampled on a grid of four kernel sizes per axis, with 1% of its peak of
    tolerance for the ripple of a truncated kernel: true for Gaussians and
    2D Airy disks (an incoherent, aberration-free system's OTF is the
    pupil's autocorrelation), false for a box, an asymmetric PSF and a 3D
    widefield PSF cut to a few planes (its OTF dips to -10% of the peak).
    """
    from .deconv_operators import centred_otf, mirror_symmetric

    if not mirror_symmetric(kernel):
        return False
    grid = [4 * s for s in kernel.shape]
    otf = centred_otf(np.asarray(kernel, np.float32), grid, "cpu").numpy()
    return bool(otf.real.min() >= -0.01 * float(np.abs(otf).max()))


_estimate_balance = estimate_balance  # the old private name, kept for old imports

#: The classical methods by name: ``function``, whether it needs a ``psf``, a
#: ``description``. A read-only view of the classical specs
#: (:func:`napari_deconvnet.list_methods` with ``kind="classical"``).
CLASSICAL_METHODS = SpecTable(
    "method",
    lambda spec: {
        "function": spec.resolve(),
        "psf": spec.needs_psf,
        "description": spec.description,
    },
    where=lambda spec: spec.kind == "classical",
)
