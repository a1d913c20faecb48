"""Salt or pepper far beyond the data: the salt-and-pepper model's input brought near it.

The ``salt-and-pepper`` model was trained on impulses at the clean image's
own extremes (:func:`~napari_deconvnet.synthesize` sets them there), and it
normalises its input by percentiles that the impulses set. Impulses at a
type's limits, far beyond the data, are common in practice: a dim 12-bit
image stored in uint16 with its salt at 65535, a dark uint8 photo with salt
at 255. Then the data filled a sliver of the network's range: camera data in
0-1000 with 5 % impulses at 0 and 65535 restored at 28.3 dB where the
switching median alone gives 41.2 (17.8 against 33.9 with 20 %).

So restore moves the impulse levels to just beyond the data's own range
before the model sees the image (:func:`across_gap`): a pepper pixel to one
float32 step below the least value strictly between the two impulse levels,
a salt pixel to one step above the greatest (exact; one more pass over a
lazy image). They stay the image's extremes, data pixels at those values
stay data, and the model restores the image as one whose impulses sit at
its extremes, wherever they were: the result no longer depends on how far
beyond the data they lie. Every pixel that was not an impulse is still kept
exactly (the model's switch), and the fill-ins lie within the data's range
(to a float32 step).

Chosen on crops of the camera and moon photos (5 % and 30 % impulses, the
impulse levels 0 to 4 ranges beyond the data), checked on coins
(``runs/s71/gap_choose.py`` of session 71): moving them was never worse than
leaving them, at any gap, including none (salt at the clean image's own
maximum: equal, or 0.03 dB better); at four ranges it won 0.5 to 6.6 dB. A
first version moved them only beyond half a range and a thousandth of the
range beyond the data: 0.8 dB was lost just below that threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import is_dask
from .kinds import ImpulseSwitched, impulse_values, kind_of

__all__ = ["across_gap", "impulse_gap"]


def _inner_levels(image: Any, lo: float, hi: float) -> tuple[float, float] | None:
    """The least and greatest value strictly between `lo` and `hi` (None without any)."""
    if is_dask(image):
        import dask
        import dask.array as da

        inside = (image > lo) & (image < hi)
        low = da.where(inside, image, np.inf).min()
        high = da.where(inside, image, -np.inf).max()
        low, high = dask.compute(low, high)
    else:
        x = np.asarray(image)
        inside = (x > lo) & (x < hi)
        if not inside.any():
            return None
        low, high = x[inside].min(), x[inside].max()
    if not np.isfinite(low):
        return None
    return float(low), float(high)


def _beyond(level: float, direction: float) -> float:
    """The float32 value next to `level` toward `direction` (+1 above, -1 below)."""
    return float(np.nextafter(np.float32(level), np.float32(direction * np.inf)))


def impulse_gap(image: Any, net: Any) -> dict[str, float] | None:
    """Where a salt-and-pepper model's impulse levels go, or None to leave the image as is.

    For a model whose kind switches impulses (:class:`~.kinds.ImpulseSwitched`
    with ``impulse_switch``) and an image (numpy or dask, the whole input:
    every block of a lazy restore takes the same) that holds values strictly
    between its minimum and maximum: ``{"minimum", "maximum", "pepper",
    "salt"}``, the image's impulse levels and the values they are moved to
    (one float32 step beyond the least and greatest of those values).
    """
    kind = kind_of(net)
    if not isinstance(kind, ImpulseSwitched) or not kind.switch:
        return None
    values = impulse_values(image)
    lo, hi = values["minimum"], values["maximum"]
    inner = _inner_levels(image, lo, hi)
    if inner is None:
        return None
    low, high = inner
    return {"minimum": lo, "maximum": hi, "pepper": _beyond(low, -1.0), "salt": _beyond(high, 1.0)}


def _moved(block: np.ndarray, gap: dict[str, float]) -> np.ndarray:
    out = np.asarray(block, np.float32).copy()
    out[block == gap["minimum"]] = gap["pepper"]
    out[block == gap["maximum"]] = gap["salt"]
    return out


def across_gap(image: Any, gap: dict[str, float]) -> Any:
    """`image` (numpy or dask) as float32 with its impulse levels moved as `gap` says
    (:func:`impulse_gap`); every other value is kept."""
    if is_dask(image):
        return image.map_blocks(_moved, gap, dtype=np.float32)
    return _moved(image, gap)
