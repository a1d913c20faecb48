"""Input checks shared by the core's image functions (private).

The messages name the argument (``image``, ``clean``, ``x``...) and keep the
words that callers and tests rely on: "array", "tensor", "complex",
"numeric", "NaN".
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from typing import Any

import numpy as np


class RunWarning(RuntimeWarning, UserWarning):
    """How a run goes, for its user: emulated bfloat16, an out-of-memory retry with
    smaller tiles, training stopped on a non-finite loss, a salt-and-pepper model that
    found no impulses. A RuntimeWarning, as these always were, and a UserWarning, which
    the dock widgets show as notifications (:func:`~napari_deconvnet.widgets._common.
    relay_warning`; numerical RuntimeWarnings of NumPy are not shown there)."""


def user_stacklevel() -> int:
    """The ``stacklevel`` of :func:`warnings.warn`, called from the function that calls
    this, that names the first caller outside this package (training runs in generators
    that other functions drive: a fixed level named a line of the package)."""
    import os

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def plain_number(value: Any) -> Any:
    """A NumPy scalar as the Python number it is (``np.int64(1)`` was refused as "not an
    integer", and would not go into a model file's JSON); anything else as it is."""
    if isinstance(value, bool | np.bool_):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def finite_or_null(value: Any) -> Any:
    """`value` with every infinite or NaN float (in lists and dicts too) as None: for
    standard JSON, which has no NaN or Infinity (strict readers refuse them)."""
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def is_dask(x: Any) -> bool:
    """Whether `x` is a dask collection (a dask array), without importing dask."""
    return type(x).__module__.startswith("dask.") and hasattr(x, "dask")


def chunked_as_dask(x: Any) -> Any:
    """`x`, or a dask array over it when it is a chunked array that is neither numpy
    nor dask (a zarr array, an h5py dataset: they index like arrays but have no
    ``min`` or ``transpose``, and ``measure`` and ``compute_normalization`` raised
    ``AttributeError`` on them). Read chunk by chunk, so nothing is loaded whole."""
    if isinstance(x, np.ndarray) or is_dask(x) or is_tensor(x):
        return x
    if all(hasattr(x, a) for a in ("shape", "dtype", "chunks", "__getitem__")):
        import dask.array as da

        return da.from_array(x, chunks=x.chunks if _regular(x.chunks, x.shape) else "auto")
    return x


def _regular(chunks: Any, shape: Any) -> bool:
    """Whether `chunks` is one chunk size per axis (zarr's, h5py's), not dask's lists."""
    try:
        return len(chunks) == len(shape) and all(int(c) > 0 for c in chunks)
    except (TypeError, ValueError):
        return False


def is_tensor(x: Any) -> bool:
    """Whether `x` is a torch tensor, without importing torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def check_real(array: np.ndarray, name: str = "image") -> None:
    """Reject complex (ValueError) and non-numeric (TypeError) dtypes."""
    if np.iscomplexobj(array):
        raise ValueError(
            f"{name} must be real, got complex dtype {array.dtype}; "
            "pass its magnitude or real part"
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric (bool, int or float), got dtype {array.dtype}")


def tensor_array(tensor: Any) -> np.ndarray:
    """A torch tensor as a NumPy array on the CPU; bfloat16, which NumPy has no
    type for, as float32 (it held every bfloat16 value exactly)."""
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.to(torch.float32)
    return tensor.numpy()


def real_array(image: Any, name: str = "image") -> np.ndarray:
    """`image` (an array-like or a tensor, detached to the CPU) as a real NumPy array.

    Raises TypeError for anything else or a non-numeric dtype, ValueError for
    a complex one. The values are not checked (see :func:`check_finite`).
    """
    if is_tensor(image):
        image = tensor_array(image)
    if not hasattr(image, "__array__") and not isinstance(image, (list, tuple)):
        raise TypeError(
            f"{name} must be a numpy array or a torch tensor, got {type(image).__name__}"
        )
    image = unmasked(image, name)
    array = np.asarray(image)
    check_real(array, name)
    return array


def unmasked(image: Any, name: str = "image") -> Any:
    """A masked array's data, with a warning that its mask is not applied when values
    are masked (restore says it its own way); anything else as it is.

    Session 73: only restore said so; a metric against a masked reference whose 64
    masked pixels held 1000 read SSIM 0.9965 where the truth was 0.4967 (its data
    range taken from what lay under the mask), the classical methods and the noise
    estimate used those values alike."""
    if not np.ma.isMaskedArray(image):
        return image
    masked = int(np.count_nonzero(np.ma.getmaskarray(image)))
    if masked:
        warnings.warn(
            f"{name} is a masked array with {masked} masked values; the mask is not "
            "applied: the values under it are used as they are (fill them first, e.g. "
            "with .filled(value), or crop them away)",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return np.ma.getdata(image)


def check_finite(array: np.ndarray, name: str = "image") -> None:
    """Raise ValueError if `array` holds NaN or infinite values."""
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values; replace them first")


def optional_flag(value: Any, name: str) -> bool | None:
    """`value` as None (automatic), True or False; numpy booleans are accepted.

    Raises
    ------
    TypeError
        Anything else (0, "false", ...): an "off" that is not ``False`` would
        otherwise be read as "automatic", and automatic can mean on.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{name} must be None (automatic), True or False, got {value!r}")


#: The smallest spread of values float32 resolves for the package: a scale below it
#: (values such as 1e-35 apart) rounds to zero or to a few bits in float32
MIN_SCALE = 1e-30


#: The largest magnitude an image may hold: float32's largest value over 16, the room
#: the arithmetic on it needs (differences of the extremes, the network's overshoot)
LARGEST = float(np.finfo(np.float32).max) / 16


#: Fewest float32 steps across an image's spread before :func:`float32_levels_note` speaks
FLOAT32_LEVELS = 256


def float32_levels_note(least: float, most: float, name: str = "the image") -> str | None:
    """Words when values from `least` to `most` lie so far from zero that float32, in which
    restores work and return their result, holds fewer than :data:`FLOAT32_LEVELS` levels
    across them; else None (session 72: uint32 counts of 3e9 + 0..255 came back as 2
    values, int64 of 2**40 + 0..255 as one, float64 of 1e8 + 0..255 as 33, without a
    word)."""
    least, most = float(least), float(most)
    big, spread = max(abs(least), abs(most)), most - least
    if not (spread > 0 and math.isfinite(big) and math.isfinite(spread)):
        return None
    step = float(np.spacing(np.float32(big)))
    levels = spread / step
    if levels >= FLOAT32_LEVELS:
        return None
    return (
        f"{name}'s values span {spread:.4g} around {big:.4g}, where float32 (in which restores "
        f"work and return their result) has steps of {step:.3g}: about {levels:.0f} levels "
        "across the image, so the result loses its detail; subtract an offset first (e.g. "
        "image - image.min(), in float64 or a wide integer type) and add it back to the result"
    )


def check_single_range(
    values: np.ndarray,
    name: str = "the image",
    purpose: str = "in which images are normalised and restored",
    *,
    extremes: tuple[Any, Any] | None = None,
) -> None:
    """Refuse finite values that float32 cannot hold: magnitudes beyond :data:`LARGEST`
    (float32's largest value, about 3.4e38, over 16; a float64 image of 1e300 came
    back from restore as NaN, a float32 one spanning -3e38 to 3e38 too) or, for
    float64 data, a spread of values under :data:`MIN_SCALE` (1e-300 apart).
    ValueError, saying to rescale. NaN and infinite values are left to
    :func:`check_finite`. `extremes`: ``(min, max)`` of `values` when the caller
    has them (one pass fewer over a large image).
    """
    if values.dtype.kind != "f" or values.dtype.itemsize <= 2 or values.size == 0:
        return  # float16 and integers fit (uint64 at most 1.8e19)
    if extremes is None:
        extremes = (np.min(values), np.max(values))
    least, most = float(extremes[0]), float(extremes[1])
    big = max(abs(most), abs(least))
    if not math.isfinite(big):
        return
    if big > float(np.finfo(np.float32).max):
        raise ValueError(
            f"{name} holds values up to {big:.3g}, beyond float32's range (about 3.4e38), "
            f"{purpose}; divide it by a constant first (and multiply the result back)"
        )
    if big > LARGEST:
        # float32 data too: a spread of -3e38 to 3e38 overflowed to NaN in the
        # normalisation, and values of 1e38 warned "overflow encountered in multiply"
        raise ValueError(
            f"{name} holds values up to {big:.3g}, too close to the largest value of "
            f"float32 (about 3.4e38), {purpose}: at most {LARGEST:.2g} leaves room for the "
            "arithmetic; divide it by a constant first (and multiply the result back)"
        )
    if values.dtype.itemsize <= 4:
        return  # float32 spreads are float32's own
    if 0 < most - least < MIN_SCALE and big < MIN_SCALE * 2**23:
        raise ValueError(
            f"{name}'s values differ by at most {most - least:.3g}, too little for "
            f"float32, {purpose} (at least {MIN_SCALE:g}); multiply it by a constant first "
            "(and divide the result back)"
        )
