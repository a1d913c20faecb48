"""Input checks shared by the core's image functions (private).

The messages name the argument (``image``, ``clean``, ``x``...) and keep the
words that callers and tests rely on: "array", "tensor", "complex",
"numeric", "NaN".
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def is_dask(x: Any) -> bool:
    """Whether `x` is a dask collection (a dask array), without importing dask."""
    return type(x).__module__.startswith("dask.") and hasattr(x, "dask")


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


def real_array(image: Any, name: str = "image") -> np.ndarray:
    """`image` (an array-like or a tensor, detached to the CPU) as a real NumPy array.

    Raises TypeError for anything else or a non-numeric dtype, ValueError for
    a complex one. The values are not checked (see :func:`check_finite`).
    """
    if is_tensor(image):
        image = image.detach().cpu().numpy()
    if not hasattr(image, "__array__") and not isinstance(image, (list, tuple)):
        raise TypeError(
            f"{name} must be a numpy array or a torch tensor, got {type(image).__name__}"
        )
    array = np.asarray(image)
    check_real(array, name)
    return array


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
