"""Wiener-Hunt deconvolution in float32 with real FFTs, the filter built once per call.

The formula is scikit-image's ``restoration.wiener`` with its default
Laplacian regulariser (Orieux et al. 2010)::

    W = conj(H) / (|H|**2 + balance * |L|**2),    x = irfft(W * rfft(y))

where ``H`` and ``L`` are the transfer functions of the PSF and of the
discrete Laplacian, each centred on the origin of the (circular) domain. It
is written out here so that it runs in float32 (scikit-image works in the
input's float type, and the library used to hand it float64) and so that a
stack of planes shares one filter instead of rebuilding it for every plane.
In float32 the result differs from scikit-image's float64 one by about 1e-6
of the output's range (``tests/test_classical.py`` asserts 1e-5).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft as sfft

from .deconv_operators import centred_otf

__all__ = [
    "WIENER_REACH",
    "wiener_context",
    "wiener_filter",
    "wiener_planes",
    "wiener_planes_torch",
]

#: Pixels of context the filter needs per fourth root of its balance, beyond two
#: PSF sizes: blocks (or a mirror-padded domain) within 3e-6 of the result on
#: an unbounded domain (measured for Gaussian PSFs of 3 to 13 pixels in 3D,
#: balances 1e-2 to 1e4).
WIENER_REACH = 12


def wiener_context(
    kernel_shape: tuple[int, ...], balance: float, shape: tuple[int, ...] | None = None
) -> list[int]:
    """Pixels of context per axis the filter needs on each side of what is kept.

    Three PSF sizes, or, where more, two PSF sizes plus :data:`WIENER_REACH`
    pixels per fourth root of `balance`: the Laplacian regulariser smooths
    over about ``balance ** 0.25`` pixels, so a large balance (a
    noise-dominated image) reaches far beyond the PSF. Three PSF sizes
    suffice up to a balance of about 1 for a 7-pixel PSF; a balance of 1e4
    needs 120 pixels plus two PSF sizes. With the image's `shape` (the
    kernel's axes), the reach beyond three PSF sizes is capped at each
    axis's length: a huge balance then costs at most a domain of three
    image lengths, not one the size of its reach.
    """
    reach = math.ceil(WIENER_REACH * max(float(balance), 0.0) ** 0.25)
    out = [max(3 * int(s), 2 * int(s) + reach) for s in kernel_shape]
    if shape is not None:
        pairs = zip(out, kernel_shape, shape, strict=True)
        out = [min(c, max(3 * int(s), int(n))) for c, s, n in pairs]
    return out


def _laplacian(ndim: int) -> np.ndarray:
    """The 3**ndim discrete Laplacian: 2 * ndim at the centre, -1 at its 2 * ndim neighbours."""
    kernel = np.zeros((3,) * ndim, np.float32)
    for axis in range(ndim):
        index = [1] * ndim
        index[axis] = slice(None)
        kernel[tuple(index)] = (-1, 0, -1)
    kernel[(1,) * ndim] = 2 * ndim
    return kernel


def wiener_filter(kernel: np.ndarray, shape: tuple[int, ...], balance: float) -> np.ndarray:
    """The complex64 Wiener-Hunt filter of `kernel` on a domain of `shape` (rfft layout)."""
    h = centred_otf(kernel.astype(np.float32), list(shape), "cpu").numpy()
    reg = np.abs(centred_otf(_laplacian(kernel.ndim), list(shape), "cpu").numpy()) ** 2
    return (np.conj(h) / (np.abs(h) ** 2 + np.float32(balance) * reg)).astype(np.complex64)


def wiener_planes(
    planes: np.ndarray, kernel: np.ndarray, balance: float, device: Any = None
) -> np.ndarray:
    """Deconvolve every ``planes[i]`` (float32, already padded) with one filter.

    `kernel` has ``planes.ndim - 1`` axes. Returns float32 planes of the same shape.
    On a `device` other than the CPU (a CUDA or MPS GPU) the FFTs run there
    with torch (:func:`wiener_planes_torch`); None or the CPU keeps scipy's.
    """
    if device is not None:
        import torch

        device = torch.device(device)
        if device.type != "cpu":
            return wiener_planes_torch(planes, kernel, balance, device)
    shape = planes.shape[1:]
    filt = wiener_filter(kernel, shape, balance)
    out = np.empty(planes.shape, np.float32)
    for i, plane in enumerate(planes):
        spectrum = sfft.rfftn(np.asarray(plane, np.float32))
        spectrum *= filt
        out[i] = sfft.irfftn(spectrum, s=shape)
    return out


def wiener_planes_torch(
    planes: np.ndarray, kernel: np.ndarray, balance: float, device: Any
) -> np.ndarray:
    """:func:`wiener_planes` with torch's FFTs on `device`; float32 planes back on the CPU.

    The same filter and the same transforms, so the result equals the scipy
    path's to float32 rounding (``tests/test_classical.py``: 1e-5 of the
    range, on the CPU). Training on a GPU builds a deconvolution model's
    Wiener channel this way: on the CPU it was nine tenths of a 3D sample's
    synthesis, which bounded a GPU's training steps.
    """
    import torch

    shape = list(planes.shape[1:])
    axes = tuple(range(1, planes.ndim))
    h = centred_otf(kernel.astype(np.float32), shape, device)
    reg = centred_otf(_laplacian(kernel.ndim), shape, device).abs().square()
    filt = h.conj() / (h.abs().square() + float(balance) * reg)
    x = torch.as_tensor(np.ascontiguousarray(planes, np.float32)).to(device)
    out = torch.fft.irfftn(torch.fft.rfftn(x, dim=axes) * filt, s=shape, dim=axes)
    return out.to(torch.float32).cpu().numpy()
