"""How results are shown: contrast limits of a new layer, and notifications.

One implementation for every layer the package adds (reader, widgets).

Examples
--------
>>> import numpy as np
>>> [round(v, 6) for v in contrast_limits(np.arange(1001.0))]
[1.0, 999.0]
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

__all__ = ["PERCENTILES", "contrast_limits", "notify"]

_logger = logging.getLogger(__name__)

#: Percentiles of the values that the contrast limits span.
PERCENTILES = (0.1, 99.9)
_MAX_VALUES = 1 << 22


def contrast_limits(data: Any, *, max_values: int = _MAX_VALUES) -> tuple[float, float]:
    """The 0.1 and 99.9 percentiles of the finite values of `data`.

    Parameters
    ----------
    data : array_like
        An image, or a sample of its values (e.g.
        :func:`napari_deconvnet.core.normalization.sample_values` of a lazy one).
    max_values : int
        Of a larger array, every ``k``-th value (in C order) is used, so that
        at most about this many are.

    Returns
    -------
    (low, high) : tuple of float
        ``low < high`` always: an array without spread gives its value and
        the value plus one; one without finite values ``(0.0, 1.0)``.
    """
    flat = np.asarray(data).reshape(-1)
    if flat.dtype.kind == "b":  # a mask: numpy's percentile cannot subtract booleans
        flat = flat.view(np.uint8)
    sample = flat[:: max(1, flat.size // max(1, int(max_values)))]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(sample, PERCENTILES))
    if not high > low:
        low, high = float(sample.min()), float(sample.max())
    if not high > low:
        high = low + 1.0
    return low, high


def notify(kind: str, message: str) -> None:
    """Show `message` as a napari notification (``kind`` ``"error"`` or ``"info"``).

    Without napari, the message is logged.
    """
    try:
        from napari.utils import notifications
    except ImportError:  # pragma: no cover - napari is a dependency
        _logger.log(logging.ERROR if kind == "error" else logging.INFO, message)
        return
    (notifications.show_error if kind == "error" else notifications.show_info)(message)
