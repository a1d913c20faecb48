"""The data range of SSIM and PSNR: the span of intensities an image can take.

:func:`~napari_deconvnet.ssim`, :func:`~napari_deconvnet.psnr` and
:func:`~napari_deconvnet.measure` share one rule: a given `data_range` must be
a finite number > 0; without one, 255 for uint8 references, 1 for boolean
ones, else the reference's ``max - min`` (never a float dtype's range).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

__all__ = ["check_data_range", "data_range_of", "integer_range"]


def integer_range(a: Any) -> float | None:
    """The full range of 8-bit and boolean images (as scikit-image uses), else None."""
    dtype = getattr(a, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return {torch.uint8: 255.0, torch.bool: 1.0}.get(dtype)
    if dtype is None:
        dtype = np.asarray(a).dtype
    return {np.dtype(np.uint8): 255.0, np.dtype(bool): 1.0}.get(np.dtype(dtype))


def check_data_range(
    data_range: Any, reference: Any, ref: torch.Tensor | None = None
) -> float | torch.Tensor:
    """`data_range` checked, or inferred from the reference (its tensor `ref` if given).

    The rule of :func:`~napari_deconvnet.ssim`; a 0-d tensor on a GPU (no
    synchronisation), else a float. Without `ref`, :func:`data_range_of`.

    Raises
    ------
    ValueError
        A non-finite or non-positive `data_range`, or a constant reference.
    TypeError
        A `data_range` that is not a number.
    """
    if data_range is None:
        fixed = integer_range(reference)
        if fixed is not None:
            return fixed
        if ref is None:
            return data_range_of(reference)
        detached = ref.detach()
        value = detached.max().double() - detached.min().double()
        if float(value) <= 0:
            raise ValueError(_constant_message(float(detached.reshape(-1)[0])))
        return value.to(ref.dtype) if ref.device.type != "cpu" else float(value)
    if isinstance(data_range, torch.Tensor):
        if data_range.numel() != 1:
            raise ValueError(
                f"data_range must be a single number, got a tensor of shape "
                f"{tuple(data_range.shape)}"
            )
        data_range = data_range.item()
    if isinstance(data_range, bool) or not isinstance(data_range, numbers.Real):
        raise TypeError(f"data_range must be a number or None, got {data_range!r}")
    value = float(data_range)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"data_range must be a finite number > 0, got {data_range!r}; it is the span "
            "of possible intensities (max - min), e.g. 1.0 or 255"
        )
    return value


def data_range_of(reference: Any) -> float:
    """The default `data_range` of SSIM and PSNR for a whole reference.

    255 for uint8 references, 1 for boolean ones, else ``max - min`` of all of
    `reference` (a NumPy or dask array, computed once).

    Raises
    ------
    ValueError
        If the reference is constant, so that no range can be inferred.
    """
    fixed = integer_range(reference)
    if fixed is not None:
        return fixed
    low, high = float(np.asarray(reference.min())), float(np.asarray(reference.max()))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(
            "the reference contains NaN or infinite values, which no score can take (nor "
            "its data range); replace them first (e.g. numpy.nan_to_num)"
        )  # (it also said "or pass data_range", which then failed on the same values)
    if not high > low:
        raise ValueError(_constant_message(low))
    return high - low


def _constant_message(value: float) -> str:
    return (
        f"data_range cannot be inferred: the reference image is constant (all values "
        f"{value!r}), so it has no data range; pass data_range=the intensity span of the "
        "images, e.g. 1.0 or 255"
    )
