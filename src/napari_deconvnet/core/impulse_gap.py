"""Salt or pepper far beyond the data: the salt-and-pepper model's input brought near it.

The ``salt-and-pepper`` model was trained on impulses at the clean image's
own extremes (:func:`~napari_deconvnet.synthesize` sets them there), and it
normalises its input by percentiles that the impulses set. Impulses at a
type's limits, far beyond the data, are common in practice: a dim 12-bit
image stored in uint16 with its salt at 65535, a dark uint8 photo with salt
at 255. Then the data filled a sliver of the network's range: camera data in
0-1000 with 5 % impulses at 0 and 65535 restored at 28.3 dB where the
switching median alone gives 41.2 (17.8 against 33.9 with 20 %).

So when an impulse level lies more than :data:`IMPULSE_GAP` times the
data's own range beyond it (the least and greatest values strictly between
the impulse levels: exact, one more pass over a lazy image), the impulses
are moved to just beyond the data (:func:`across_gap`): a pepper pixel to a
hair below the data's least value, a salt pixel to a hair above its
greatest (:data:`GAP_STEP` of its range, so that they stay the image's
extremes and data pixels at those values stay data). The model then
restores that image as it restores one whose impulses sit at its extremes;
every pixel that was not an impulse is still kept exactly (the model's
switch), and the fill-ins lie within the data's range.

With smaller gaps the model did as well as it does unmoved, or better (gaps of 0.03 to
0.3 of the range on crops of the camera and moon photos, 5 % and 30 %
impulses: up to 0.7 dB better unmoved); from one range on, moving them won
(moon, 30 %: +0.6 dB at one range, +2.4 at two, +17.4 at sixteen), hence the
threshold of half a range (``runs`` of session 71 on those two validation
photos; the README's table was measured on others).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import is_dask
from .kinds import ImpulseSwitched, impulse_values, kind_of

__all__ = ["GAP_STEP", "IMPULSE_GAP", "across_gap", "impulse_gap"]

#: An impulse level this many times the data's own range beyond it is moved (see above)
IMPULSE_GAP = 0.5
#: How far beyond the data a moved impulse level is put, as a share of the data's range
GAP_STEP = 1e-3


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


def _beyond(level: float, step: float, direction: float) -> float:
    """`level` moved by `step` toward `direction` in float32, at least one float32 step."""
    level32 = np.float32(level)
    moved = np.float32(level + direction * step)
    if moved == level32:
        moved = np.nextafter(level32, np.float32(direction * np.inf))
    return float(moved)


def impulse_gap(image: Any, net: Any) -> dict[str, float] | None:
    """Where a salt-and-pepper model's impulse levels should go, or None to leave them.

    For a model whose kind switches impulses (:class:`~.kinds.ImpulseSwitched`
    with ``impulse_switch``) and an image (numpy or dask, the whole input:
    every block of a lazy restore takes the same) whose minimum or maximum
    lies more than :data:`IMPULSE_GAP` times the range of the values between
    them beyond that range: ``{"minimum", "maximum", "pepper", "salt"}``,
    the image's impulse levels and the values they are moved to (a level
    close to the data keeps its value).
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
    span = high - low
    far_low = low - lo > IMPULSE_GAP * span
    far_high = hi - high > IMPULSE_GAP * span
    if not (far_low or far_high):
        return None
    step = GAP_STEP * (span if span > 0 else hi - lo)
    pepper = _beyond(low, step, -1.0) if far_low else lo
    salt = _beyond(high, step, 1.0) if far_high else hi
    return {"minimum": lo, "maximum": hi, "pepper": pepper, "salt": salt}


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
