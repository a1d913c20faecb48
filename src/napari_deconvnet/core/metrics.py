"""Image quality metrics: SSIM (mean and map) and PSNR, in torch.

One SSIM implementation serves as the metric, as the training loss
(:class:`SSIMLoss`, differentiable) and as the map shown in napari. It is the
Gaussian-weighted SSIM of Wang et al. and equals scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``.

NumPy inputs are computed in float32 and give NumPy results; torch inputs
stay torch (on their device, differentiable). Large 2D maps on the CPU take
the cache-blocked kernel of :mod:`napari_deconvnet.core.ssim_cpu`, several
times faster than scipy's separable filters. Measuring stacks and volumes
slice by slice (or by volume) is :func:`napari_deconvnet.measure`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validation import check_single_range, real_array
from .data_range import check_data_range, data_range_of
from .ssim_cpu import K1, K2, TRUNCATE, gaussian_weights, ssim_map_blocked, symmetric_index

__all__ = ["SSIMLoss", "data_range_of", "psnr", "psnr_of_mse", "squared_error", "ssim"]

_BLOCKED_MIN_PIXELS = 192 * 192  # smaller maps take the plain path


# ---------------------------------------------------------------- validation


def _as_tensor(a: Any, name: str) -> torch.Tensor:
    """A float tensor view or copy of `a`, after checking its type and values."""
    if isinstance(a, torch.Tensor):
        if a.is_complex():
            raise ValueError(
                f"{name} must be real, got a complex tensor ({a.dtype}); "
                "pass its magnitude or real part"
            )
        if not a.is_floating_point():
            # integers beyond float32's 2**24 in float64, as numpy ones (_needs_double):
            # int32 tensors of 1e8 + [0, 100) gave PSNR 26.0 dB for 29.8 (session 69)
            # (through float64: torch has no abs nor max for its unsigned 32/64-bit types)
            if a.element_size() >= 4 and a.numel() > 0:
                wide = a.detach().to(torch.float64)
                a = wide if float(wide.abs().max()) > 2**24 else a.to(torch.float32)
            else:
                a = a.to(torch.float32)
        elif a.dtype in (torch.float16, torch.bfloat16):
            a = a.to(torch.float32)
        return a
    array = real_array(a, name)
    check_single_range(array, name, "in which SSIM and PSNR are computed")
    kind = np.float64 if _needs_double(array) else np.float32
    array = np.ascontiguousarray(array, dtype=kind)
    if not array.flags.writeable:  # a memory map, a napari layer's data: torch warned
        array = array.copy()
    return torch.from_numpy(array)


#: Offset (the largest magnitude) over spread beyond which a 64-bit image is
#: measured in float64: float32 keeps 24 bits, so values of 1e7 + [0, 10) kept
#: under 1e-6 of their spread and SSIM moved by 0.007 (0.934 against 0.941)
DOUBLE_OFFSET = 1024.0


def _needs_double(array: np.ndarray) -> bool:
    """Whether a 64-bit `array` sits so far from zero, for its spread, that float32
    would lose its variations (SSIM is computed on the image shifted by its mean,
    but the shift itself was taken in float32), or a 32- or 64-bit integer one holds
    values float32 does not (beyond 2**24: uint32 values of 3e9 + [0, 200) read as a
    constant image, int32 ones of 1e8 + [0, 100) gave SSIM 0.974 for 0.980)."""
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind not in "fiu" or size < 4 or (kind == "f" and size < 8) or array.size == 0:
        return False
    low, high = float(array.min()), float(array.max())
    largest = max(abs(low), abs(high))
    if kind in "iu" and largest > 2**24:
        return True
    return size >= 8 and largest > DOUBLE_OFFSET * max(high - low, 1e-300)


def _pair(x: Any, y: Any, name: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate a (result, reference) pair; return float tensors and whether to give torch."""
    is_torch = isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor)
    tx, ty = _as_tensor(x, "x (the result)"), _as_tensor(y, "y (the reference)")
    if tuple(tx.shape) != tuple(ty.shape):
        raise ValueError(
            f"{name} needs images of the same shape, got {tuple(tx.shape)} and "
            f"{tuple(ty.shape)}; crop or resample one of them"
        )
    if tx.numel() == 0:
        raise ValueError(f"{name} got empty images (shape {tuple(tx.shape)})")
    if is_torch:
        device = (x if isinstance(x, torch.Tensor) else y).device
        dtype = torch.promote_types(tx.dtype, ty.dtype)
        tx, ty = tx.to(device=device, dtype=dtype), ty.to(device=device, dtype=dtype)
    elif tx.dtype != ty.dtype:  # one far from zero: both in float64 (_needs_double)
        tx, ty = tx.to(torch.float64), ty.to(torch.float64)
    return tx, ty, is_torch


def _check_finite(*tensors: torch.Tensor) -> None:
    for name, t in zip(("x (the result)", "y (the reference)"), tensors, strict=False):
        t = t.detach()
        # one fast reduction; a non-finite sum is then checked element-wise (overflow)
        if not bool(torch.isfinite(t.sum(dtype=torch.float64))) and not bool(
            torch.isfinite(t).all()
        ):
            raise ValueError(f"{name} contains NaN or infinite values; replace them first")


def _check_sigma(sigma: Any) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        raise TypeError(f"sigma must be a number, got {sigma!r}")
    if not math.isfinite(float(sigma)) or sigma <= 0:
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    return float(sigma)


def _layout(
    t: torch.Tensor, is_torch: bool, channel_axis: Any
) -> tuple[torch.Tensor, tuple[int, ...], int | None]:
    """Reshape an image to ``(N, *spatial)``: one map per channel and batch item.

    Returns the stacked tensor, the original shape and the (normalised)
    channel axis, which :func:`_unlayout` uses to put the map back.
    """
    shape = tuple(t.shape)
    if is_torch and t.ndim in (4, 5):  # (B, C, H, W) or (B, C, D, H, W)
        if channel_axis not in (None, 1, 1 - t.ndim):
            raise ValueError(
                f"a {t.ndim}-D tensor is read as (B, C, *spatial), so channel_axis must be "
                f"None or 1, got {channel_axis!r}"
            )
        return t.reshape(-1, *shape[2:]), shape, -1
    if channel_axis is None:
        if t.ndim < 1:
            raise ValueError("images must have at least one dimension")
        return t[None], shape, None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral):
        raise TypeError(f"channel_axis must be an integer or None, got {channel_axis!r}")
    if not -t.ndim <= channel_axis < t.ndim or t.ndim < 2:
        raise ValueError(
            f"channel_axis={channel_axis} is out of range for images with {t.ndim} dimensions"
        )
    axis = int(channel_axis) % t.ndim
    return t.movedim(axis, 0), shape, axis


def _unlayout(m: torch.Tensor, shape: tuple[int, ...], axis: int | None) -> torch.Tensor:
    if axis is None:
        return m[0]
    if axis == -1:
        return m.reshape(shape)
    return m.movedim(0, axis)


def _check_win_size(win_size: Any, sigma: float, spatial: tuple[int, ...]) -> int:
    if win_size is None:
        win_size = 2 * int(TRUNCATE * sigma + 0.5) + 1
    elif isinstance(win_size, bool) or not isinstance(win_size, numbers.Integral):
        raise TypeError(f"win_size must be an odd integer or None, got {win_size!r}")
    win_size = int(win_size)
    if win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"win_size must be an odd integer >= 1, got {win_size}")
    if min(spatial) < win_size:
        raise ValueError(
            f"win_size {win_size} exceeds the image extent {spatial}: SSIM's window needs "
            f"at least {win_size} pixels along every spatial axis; measure a larger region "
            "(in napari: a larger crop), or in Python pass a smaller odd win_size (and "
            "sigma), or set channel_axis if an axis holds channels"
        )
    return win_size


# ---------------------------------------------------------------- filtering


def _gaussian_filter(t: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """Separable Gaussian filter over all axes but the first, differentiable."""
    r = (len(weights) - 1) // 2
    for axis in range(1, t.ndim):
        n = t.shape[axis]
        p = t.index_select(axis, symmetric_index(n, r, r, t.device))
        out = p.narrow(axis, r, n) * weights[r]
        for i in range(1, r + 1):
            out = out + (p.narrow(axis, r - i, n) + p.narrow(axis, r + i, n)) * weights[r + i]
        t = out
    return t


def _ssim_terms(
    mx: torch.Tensor, my: torch.Tensor, s2: torch.Tensor, sxy: torch.Tensor, shift: Any
) -> torch.Tensor:
    """SSIM from filtered x, y, x²+y², xy of images shifted by -shift and scaled to range 1."""
    cov = sxy - mx * my
    var = s2 - mx * mx - my * my
    mx = mx + shift
    my = my + shift
    c1, c2 = K1**2, K2**2
    return (2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (var + c2))


def _ssim_map_plain(
    x: torch.Tensor, y: torch.Tensor, shift: Any, scale: Any, sigma: float
) -> torch.Tensor:
    """SSIM map of ``(N, *spatial)`` stacks, by autograd-friendly ops on any device."""
    weights = [float(w) for w in gaussian_weights(sigma)]
    xs = (x - shift) / scale
    ys = (y - shift) / scale
    stack = torch.stack([xs, ys, xs * xs + ys * ys, xs * ys], dim=1)
    n = stack.shape[0]
    f = _gaussian_filter(stack.reshape(n * 4, *stack.shape[2:]), weights)
    mx, my, s2, sxy = f.reshape(stack.shape).unbind(1)
    return _ssim_terms(mx, my, s2, sxy, shift / scale)


def _ssim_map(
    x: torch.Tensor, y: torch.Tensor, data_range: Any, sigma: float, pad: int = 0
) -> tuple[torch.Tensor, tuple[float, float] | None]:
    """SSIM map of two ``(N, *spatial)`` float stacks (no validation).

    Returns the map and, from the blocked CPU path only, its sum and its sum
    without a `pad`-wide border (else None).
    """
    # SSIM is invariant to scaling both images and the constants by 1/data_range;
    # subtracting a common shift first keeps float32 variances exact for data
    # far from zero (e.g. camera counts on an offset).
    shift = y.detach().reshape(-1)[:: max(1, y.numel() // 4096)].mean()
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)
    blocked = (
        x.device.type == "cpu"
        and not needs_grad
        and x.ndim == 3
        and x.shape[1] * x.shape[2] >= _BLOCKED_MIN_PIXELS
        and not isinstance(data_range, torch.Tensor)
    )
    if blocked:
        with torch.no_grad():
            scale = float(data_range)
            if not BLOCKED_RANGE[0] <= scale <= BLOCKED_RANGE[1]:
                # the blocked path only shifts the images: its squared variances (scale**4)
                # underflowed or overflowed float32 for ranges of 1e-11 or 1e10 (a NaN map,
                # refused as "not finite"); measured in unit range, as the plain path is,
                # shifted first (scaled first, float32 data of 1e-3 + 1e-8 * [0, 1) lost
                # its variations: SSIM 0.7765 for 0.7770, session 69)
                x, y = (x - shift) / scale, (y - shift) / scale
                back = float(shift) / scale
                return ssim_map_blocked(x, y, 0.0, 1.0, sigma, pad, mean=back)
            return ssim_map_blocked(x, y, float(shift), scale, sigma, pad)
    return _ssim_map_plain(x, y, shift, data_range, sigma), None


#: Data ranges the blocked CPU path measures as they are (their fourth powers well
#: inside float32); others are scaled to unit range first
BLOCKED_RANGE = (1e-4, 1e4)


def _crop_mean(
    smap: torch.Tensor, pad: int, per_item: bool = False, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Mean over the map without a `pad`-wide border on every spatial axis."""
    index = (slice(None),) + tuple(slice(pad, n - pad) for n in smap.shape[1:])
    inner = smap[index]
    if per_item:
        return inner.reshape(inner.shape[0], -1).mean(dim=1)
    return inner.mean(dtype=dtype)


# ---------------------------------------------------------------- public


def ssim(
    x: Any,
    y: Any,
    *,
    data_range: Any = None,
    full: bool = False,
    channel_axis: int | None = None,
    win_size: int | None = None,
    sigma: float = 1.5,
) -> Any:
    """Structural similarity (SSIM) of an image `x` to a reference `y`, and its map.

    Parameters
    ----------
    x, y : ndarray or torch.Tensor
        The image (a result) and the reference, of equal shape and any real
        dtype. NumPy arrays: every axis is spatial (1-D to N-D), except
        `channel_axis`. Torch tensors of 4 or 5 dimensions are batches
        ``(B, C, H, W)`` or ``(B, C, D, H, W)``; smaller tensors are read as
        NumPy arrays are. If either is a tensor, both are computed as tensors
        on its device.
    data_range : float, optional
        Span of possible intensities (max - min), which sets SSIM's constants
        ``C1 = (0.01 * data_range)**2`` and ``C2 = (0.03 * data_range)**2``.
        If None: 255 for uint8 references, 1 for boolean ones, and otherwise
        ``y.max() - y.min()``, the span of the reference's values (never a
        float dtype's range). Pass it explicitly to compare scores across
        images, and in training loops (inferring it synchronises the GPU).
    full : bool, optional
        Also return the SSIM map.
    channel_axis : int, optional
        Axis of channels (e.g. -1 for RGB): SSIM is computed per channel and
        averaged, as scikit-image does. For 4-D/5-D tensors it is axis 1.
    win_size : int, optional
        Odd side of the window whose border is left out of the mean (the map
        itself is full size). Default: the Gaussian's support,
        ``2 * int(3.5 * sigma + 0.5) + 1`` (11 for sigma=1.5). Every spatial
        axis must be at least this long.
    sigma : float, optional
        Standard deviation of the Gaussian window, in pixels.

    Returns
    -------
    mssim : float or torch.Tensor
        Mean SSIM over the map without a border of ``(win_size - 1) // 2``
        pixels, averaged over channels and batch items: a Python float for
        NumPy inputs, a 0-d tensor (differentiable) for tensors.
    smap : ndarray or torch.Tensor, shape of `x`
        The SSIM map, float32 for NumPy inputs (only if ``full=True``).

    Raises
    ------
    ValueError
        Shapes that differ, complex or non-finite images, images smaller
        than `win_size`, a zero or negative `data_range` (or a constant
        reference when it is inferred), a bad `sigma`, `win_size` or
        `channel_axis`.
    TypeError
        Non-numeric images or arguments of the wrong type.

    Notes
    -----
    With Gaussian-weighted local means ``mu``, variances ``s**2`` and
    covariance ``s_xy`` (weights of standard deviation `sigma` truncated at
    3.5 sigma, borders reflected, population statistics), Wang et al. [1]_
    define

    ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x² + mu_y² + C1)(s_x² + s_y² + C2))``.

    This equals ``skimage.metrics.structural_similarity(x, y,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=data_range)`` to about 1e-6 (tested to 1e-4), mean and map,
    in 2D and 3D and with `channel_axis`. Computations are float32 (float64
    for float64 tensors), on images shifted and scaled to unit range, so
    that large offsets do not cost precision. The result is differentiable
    with respect to tensor inputs; :class:`SSIMLoss` is ``1 - ssim``.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image
           quality assessment: from error visibility to structural
           similarity", IEEE Trans. Image Process. 13(4), 600-612, 2004.
           :DOI:`10.1109/TIP.2003.819861`

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.random((32, 32))
    >>> round(ssim(ref, ref, data_range=1.0), 6)
    1.0
    >>> score, smap = ssim(ref + 0.1 * rng.standard_normal((32, 32)), ref,
    ...                    data_range=1.0, full=True)
    >>> smap.shape, smap.dtype, bool(0.5 < score < 0.95)
    ((32, 32), dtype('float32'), True)
    """
    sigma = _check_sigma(sigma)
    tx, ty, is_torch = _pair(x, y, "ssim")
    rng = check_data_range(data_range, y, ty)
    sx, shape, axis = _layout(tx, is_torch, channel_axis)
    sy, _, _ = _layout(ty, is_torch, channel_axis)
    win = _check_win_size(win_size, sigma, tuple(sx.shape[1:]))
    pad = (win - 1) // 2
    smap, sums = _ssim_map(sx, sy, rng, sigma, pad)
    # NaN or infinite pixels make their neighbourhood of the map NaN: checking the
    # map's sum is one reduction instead of two over the inputs
    total = sums[0] if sums else float(smap.detach().sum(dtype=torch.float64))
    if not math.isfinite(total):
        _check_finite(tx, ty)
        raise ValueError("the SSIM map is not finite; check data_range and the image values")
    if not is_torch:
        if sums:
            inner = math.prod(n - 2 * pad for n in sx.shape[1:]) * sx.shape[0]
            value = sums[1] / inner
        else:
            value = float(_crop_mean(smap, pad, dtype=torch.float64))
        value = min(value, 1.0)  # float32 rounding put an image against itself at 1 + 8e-9
        if full:
            return value, _unlayout(smap, shape, axis).numpy()
        return value
    mean = _crop_mean(smap, (win - 1) // 2)
    if full:
        return mean, _unlayout(smap, shape, axis)
    return mean


def psnr(x: Any, y: Any, *, data_range: Any = None) -> Any:
    """Peak signal-to-noise ratio of an image `x` to a reference `y`, in dB.

    Parameters
    ----------
    x, y : ndarray or torch.Tensor
        The image (a result) and the reference, of equal shape, any real dtype.
    data_range : float, optional
        The peak: span of possible intensities. If None, the rule of
        :func:`ssim`: 255 for uint8 references, 1 for boolean ones, else
        ``y.max() - y.min()``.

    Returns
    -------
    psnr : float or torch.Tensor
        ``10 * log10(data_range**2 / mse)``; ``inf`` for identical images. A
        Python float for NumPy inputs, a differentiable 0-d tensor for tensors.

    Raises
    ------
    ValueError
        Shapes that differ, complex or non-finite images, a zero or negative
        `data_range`.
    TypeError
        Non-numeric images.

    Notes
    -----
    NumPy inputs are compared as ``skimage.metrics.peak_signal_noise_ratio``
    compares them (float32 differences for float32 pairs, float64 otherwise,
    and a float64 mean), so that both agree to 1e-6 dB for the same
    `data_range`. The default `data_range` differs from scikit-image's for
    float images, whose peak scikit-image takes from the dtype (1.0).

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.zeros((8, 8)); out = ref.copy(); out[0, 0] = 1.0
    >>> round(psnr(out, ref, data_range=1.0), 3)  # mse = 1/64
    18.062
    """
    tx, ty, is_torch = _pair(x, y, "psnr")
    rng = check_data_range(data_range, y, ty)
    if is_torch:
        mse = torch.mean((tx - ty) ** 2)
        if not bool(torch.isfinite(mse.detach())):  # checked after: one pass instead of three
            _check_finite(tx, ty)
        value = 10 * torch.log10(rng**2 / mse)
        if not bool(torch.isfinite(value.detach())) and tx.dtype != torch.float64:
            # float32 squares overflow beyond 1.8e19 (NaN) and vanish below 1e-19 (inf,
            # "identical"): in float64 then, returned in the inputs' dtype (session 70)
            wide = rng.double() if torch.is_tensor(rng) else float(rng)
            value = 10 * torch.log10(wide**2 / torch.mean((tx.double() - ty.double()) ** 2))
            value = value.to(tx.dtype)
        return value
    total, count = squared_error(x, y)
    mse = total / count
    if not math.isfinite(mse):
        _check_finite(tx, ty)
    return psnr_of_mse(mse, float(rng))


def squared_error(x: Any, y: Any) -> tuple[float, int]:
    """Sum of squared differences of two NumPy images, and their number of pixels.

    The arithmetic of scikit-image's PSNR (float32 differences for float16/32
    pairs, float64 otherwise, a float64 sum), so that :func:`psnr` agrees with
    it; :func:`napari_deconvnet.measure` adds these up over slices. No checks.
    """
    ax, ay = np.asarray(x), np.asarray(y)
    small = (np.float16, np.float32)
    ftype = np.float32 if ax.dtype in small and ay.dtype in small else np.float64
    diff = ax.astype(ftype, copy=False) - ay.astype(ftype, copy=False)
    with np.errstate(over="ignore", under="ignore"):  # (redone in float64 below)
        total = float(np.sum(np.square(diff, out=diff), dtype=np.float64))
    if ftype is np.float32 and (total == 0 or not math.isfinite(total)):
        # float32 squares overflow beyond 1.8e19 (PSNR -inf) and vanish below 1e-19
        # (+inf, "identical"); float64 holds every float32's square (session 70)
        return squared_error(ax.astype(np.float64), ay.astype(np.float64))
    return total, int(diff.size)


def psnr_of_mse(mse: float, data_range: float) -> float:
    """``10 * log10(data_range**2 / mse)`` in dB; ``inf`` when `mse` is 0.

    Raises ValueError for an `mse` that overflowed (float64 differences beyond
    about 1e154; float32 ones are squared in float64, see :func:`squared_error`).
    """
    if mse == 0:
        return math.inf
    if not math.isfinite(mse) or not abs(float(data_range)) < 1e154:  # (its square)
        raise ValueError(
            "the images' differences (or data_range) are too large to square in float64 "
            "(beyond about 1e154); divide both images and data_range by a constant first"
        )
    return float(10 * np.log10(float(data_range) ** 2 / mse))


class SSIMLoss(nn.Module):
    """``1 - SSIM`` as a differentiable loss for ``(B, C, H, W)`` or ``(B, C, D, H, W)``.

    Parameters
    ----------
    data_range : float, optional
        As in :func:`ssim`. None infers it from each target batch; pass the
        range of normalised data (e.g. 1.0) to keep the loss comparable across
        batches and avoid a GPU synchronisation.
    sigma : float, optional
        Standard deviation of the Gaussian window.
    win_size : int, optional
        Odd side of the border left out of the mean (see :func:`ssim`).
    reduction : {"mean", "none"}, optional
        ``"mean"``: one scalar; ``"none"``: one loss per batch item, shape (B,).

    Examples
    --------
    >>> import torch
    >>> loss = SSIMLoss(data_range=1.0)
    >>> target = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> pred = (target + 0.1).requires_grad_()
    >>> value = loss(pred, target); value.backward()
    >>> value.shape, bool(value > 0), pred.grad.shape
    (torch.Size([]), True, torch.Size([2, 1, 32, 32]))
    """

    def __init__(
        self,
        data_range: float | None = None,
        *,
        sigma: float = 1.5,
        win_size: int | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        if data_range is not None:
            check_data_range(data_range, None, torch.zeros(1))
        self.data_range = data_range
        self.sigma = _check_sigma(sigma)
        self.win_size = win_size
        self.reduction = reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002
        if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError("SSIMLoss takes torch tensors (B, C, H, W) or (B, C, D, H, W)")
        if input.ndim not in (4, 5) or input.shape != target.shape:
            raise ValueError(
                "SSIMLoss needs input and target of the same shape (B, C, H, W) or "
                f"(B, C, D, H, W), got {tuple(input.shape)} and {tuple(target.shape)}"
            )
        x, y, _ = _pair(input, target, "SSIMLoss")
        rng = check_data_range(self.data_range, target, y)
        b = x.shape[0]
        sx, sy = x.reshape(-1, *x.shape[2:]), y.reshape(-1, *y.shape[2:])
        win = _check_win_size(self.win_size, self.sigma, tuple(sx.shape[1:]))
        smap, _ = _ssim_map(sx, sy, rng, self.sigma)
        if self.reduction == "mean":
            return 1 - _crop_mean(smap, (win - 1) // 2)
        per_map = _crop_mean(smap, (win - 1) // 2, per_item=True)
        return 1 - per_map.reshape(b, -1).mean(dim=1)
