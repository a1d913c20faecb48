"""The linear operators of Richardson-Lucy on torch: blur by a PSF and its adjoint, TV.

A separable PSF on the CPU is applied as banded matrix products along each
axis (:class:`BandedAxis`, chosen by :func:`separable_taps`); any other PSF
by real FFTs on a grid just long enough for a linear convolution
(:func:`fft_shape`, :func:`centred_otf`). :func:`tv_divergence` is the
total-variation term of Dey et al. Used by
:func:`~napari_deconvnet.core.classical.richardson_lucy_iter`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "BandedAxis",
    "centred_otf",
    "fft_shape",
    "separable_taps",
    "tv_divergence",
    "zero_pad",
]


def separable_taps(kernel: np.ndarray, max_taps: int = 65) -> list[np.ndarray] | None:
    """The 1D factors of `kernel` if it is separable (to 1e-6 of its peak), else None.

    Their outer product is `kernel` (which sums to 1): each factor is the
    kernel summed over the other axes. Factors longer than `max_taps` make
    the banded products slower than FFTs, so they also give None.
    """
    if kernel.ndim < 2 or max(kernel.shape) > max_taps:
        return None
    factors = [
        kernel.sum(axis=tuple(j for j in range(kernel.ndim) if j != i)) for i in range(kernel.ndim)
    ]
    product = factors[0]
    for f in factors[1:]:
        product = np.multiply.outer(product, f)
    if np.abs(product - kernel).max() > 1e-6 * np.abs(kernel).max():
        return None
    return factors


class BandedAxis:
    """Zero-padded "same" correlation with `taps` (odd length) along one axis.

    The axis is cut into blocks of ``_BLOCK`` outputs; each block is one
    matrix product of its ``_BLOCK + len(taps) - 1`` inputs with a banded
    matrix, so the work goes to BLAS instead of many passes over memory.
    """

    _BLOCK = 32

    def __init__(self, taps: np.ndarray, axis: int, device: Any) -> None:
        import torch

        self.axis, self.size = axis, len(taps)
        b, s = self._BLOCK, len(taps)
        band = np.zeros((b + s - 1, b), np.float32)
        for o in range(b):
            band[o : o + s, o] = taps
        self.band = torch.from_numpy(band).to(device)  # (K, B): x @ band
        self.band_t = self.band.t().contiguous()  # (B, K): band_t @ x

    def __call__(self, x: Any) -> Any:
        import torch

        b, s, axis = self._BLOCK, self.size, self.axis
        n = x.shape[axis]
        blocks = -(-n // b)
        c = s // 2
        right = blocks * b + s - 1 - n - c
        if axis == x.ndim - 1:
            xp = zero_pad(x, x.ndim - 1, c, right)
            # one matrix product: every block's inputs as a row (a copy)
            windows = xp.unfold(-1, b + s - 1, b).reshape(-1, b + s - 1)
            y = windows @ self.band
            return y.reshape(*x.shape[:-1], blocks * b)[..., :n]
        pre = math.prod(x.shape[:axis])
        post = math.prod(x.shape[axis + 1 :])
        xp = zero_pad(x.reshape(pre, n, post), 1, c, right)
        # every block's (K, post) inputs as a strided view: one batched product
        windows = xp.unfold(1, b + s - 1, b).transpose(-1, -2)
        y = torch.matmul(self.band_t, windows)  # (pre, blocks, b, post)
        return y.reshape(pre, blocks * b, post)[:, :n].reshape(x.shape)


def zero_pad(x: Any, axis: int, low: int, high: int) -> Any:
    """`x` with `low` and `high` zeros added along `axis` (one pass over memory)."""
    import torch

    shape = list(x.shape)
    n = shape[axis]
    shape[axis] = n + low + high
    out = torch.empty(shape, dtype=x.dtype, device=x.device)
    out.narrow(axis, 0, low).zero_()
    out.narrow(axis, low + n, high).zero_()
    out.narrow(axis, low, n).copy_(x)
    return out


def fft_shape(spatial: tuple[int, ...], kernel_shape: tuple[int, ...]) -> list[int]:
    """FFT sizes for a linear convolution whose centred ("same") part is exact.

    With the kernel's centre at index 0, a circular convolution of length
    ``L >= n + (s - 1) // 2`` equals the zero-padded linear convolution on the
    first ``n`` samples (nothing wraps onto them). ``L`` is the next even
    number with prime factors 2, 3 and 5 only: odd lengths make real FFTs
    several times slower.
    """
    from scipy.fft import next_fast_len

    sizes = []
    for n, s in zip(spatial, kernel_shape, strict=True):
        size = next_fast_len(n + (s - 1) // 2, real=True)
        while size % 2:
            size = next_fast_len(size + 1, real=True)
        sizes.append(size)
    return sizes


def centred_otf(kernel: np.ndarray, fshape: list[int], device: Any) -> Any:
    """Real FFT of `kernel` (odd sizes) with its centre moved to index 0 (wrapped)."""
    import torch

    full = np.zeros(fshape, np.float32)
    full[tuple(slice(0, s) for s in kernel.shape)] = kernel
    full = np.roll(full, [-(s // 2) for s in kernel.shape], axis=tuple(range(kernel.ndim)))
    return torch.fft.rfftn(torch.from_numpy(full).to(device))


def tv_divergence(x: Any, dims: tuple[int, ...]) -> Any:
    """``div(grad x / |grad x|)`` with forward differences and Neumann borders."""
    import torch

    grads = []
    for d in dims:
        g = torch.diff(x, dim=d, append=x.narrow(d, x.shape[d] - 1, 1))
        grads.append(g)
    norm = torch.sqrt(sum(g * g for g in grads) + 1e-16)
    div = torch.zeros_like(x)
    for d, g in zip(dims, grads, strict=True):
        unit = g / norm
        # backward difference, the negative adjoint of the forward one
        div = div + torch.diff(unit, dim=d, prepend=torch.zeros_like(unit.narrow(d, 0, 1)))
    return div
