"""Salt or pepper far beyond the data: the salt-and-pepper model's input brought near it.

The ``salt-and-pepper`` model was trained on impulses at the clean image's
own extremes (:func:`~napari_deconvnet.synthesize` sets them there), and it
normalises its input by percentiles that the impulses set. Impulses at a
type's limits, far beyond the data, are common in practice: a dim 12-bit
image stored in uint16 with its salt at 65535, a dark uint8 photo with salt
at 255. Then the data filled a sliver of the network's range: camera data in
0-1000 with 5 % impulses at 0 and 65535 restored at 28.3 dB where the
switching median alone gives 41.2 (17.8 against 33.9 with 20 %).

So restore moves an impulse level that lies more than :data:`IMPULSE_GAP`
times the data's own range beyond it (the least and greatest values
strictly between the two impulse levels; exact, one more pass over a lazy
image) to just beyond the data, before the model sees the image
(:func:`across_gap`): a pepper pixel to one float32 step below the least of
those values, a salt pixel to one step above the greatest. They stay the
image's extremes, data pixels at those values stay data, and the model
restores the image as one whose impulses sit at its extremes. Every pixel
that was not an impulse is still kept exactly (the model's switch), and the
fill-ins lie within the data's range (to a float32 step). Each side is
judged on its own, and a level whose pixels mostly lie inside areas of that
value in the probed planes (:func:`_an_area`: a background set to 0 by a
mask, zero padding, a blank frame) is left where it is.

``python benchmarks/impulse_gap.py`` (chosen on crops of the camera and
moon photos, checked on coins, 5 % and 30 % impulses): moving was never
worse than leaving them at any gap from a tenth of a range on, and won
0.03 to 0.9 dB at one range and 0.3 to 6.6 dB at four; below a tenth (salt
at the clean image's own maximum, as :func:`~napari_deconvnet.synthesize`
puts it) nothing moves, as before (moving there lost up to 0.025 dB on
astronaut crops). A first version of session 71 moved every level, areas
too: masked coins, cells and camera photos lost 3.0 to 5.1 dB, their
background coming back at the data's floor, and a streamed stack's blank
frame at the data's least value (its review).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import is_dask
from .kinds import ImpulseSwitched, impulse_values, kind_of

__all__ = ["IMPULSE_GAP", "across_gap", "impulse_gap"]

#: An impulse level this many times the data's own range beyond it is moved (see above)
IMPULSE_GAP = 0.1


def _inner_levels(image: Any, lo: float, hi: float) -> tuple[float, float] | None:
    """The least and greatest value strictly between `lo` and `hi` (None without any):
    :func:`~.impulse_switch.image_levels` of the whole image."""
    from .impulse_switch import image_levels

    levels = image_levels(image, (), {"minimum": lo, "maximum": hi})
    low, high = levels["low"][0], levels["high"][0]
    return None if low is None else (low, high)


def _beyond(level: float, direction: float) -> float:
    """The float32 value next to `level` toward `direction` (+1 above, -1 below)."""
    return float(np.nextafter(np.float32(level), np.float32(direction * np.inf)))


def impulse_gap(image: Any, net: Any) -> dict[str, float] | None:
    """Where a salt-and-pepper model's impulse levels go, or None to leave the image as is.

    For a model whose kind switches impulses (:class:`~.kinds.ImpulseSwitched`
    with ``impulse_switch``) and an image (numpy or dask, the whole input:
    every block of a lazy restore takes the same) that holds values strictly
    between its minimum and maximum, one of which lies more than
    :data:`IMPULSE_GAP` times their range beyond them: ``{"minimum",
    "maximum", "pepper", "salt"}``, the image's impulse levels and the values
    they are moved to (one float32 step beyond the least and greatest of
    those values, or where they are, for a level near the data).
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
    crops = _probed_crops(image)  # (read once)
    far_low = far_low and not any(_an_area(c, lo) for c in crops)
    far_high = far_high and not any(_an_area(c, hi) for c in crops)
    if not (far_low or far_high):
        return None
    pepper = _beyond(low, -1.0) if far_low else lo
    salt = _beyond(high, 1.0) if far_high else hi
    return {"minimum": lo, "maximum": hi, "pepper": pepper, "salt": salt}


def _probed_crops(image: Any) -> list[np.ndarray]:
    """The central crops of the planes the impulse switch probes, read
    (:func:`~.impulse_switch.probed_images`: the middle one and up to 8 spread over a
    stack, a blank frame among them; :func:`~.impulse_switch._probe` of each)."""
    from .impulse_switch import _probe, probed_images

    return [np.asarray(_probe(image, i, 2)) for i in probed_images(tuple(image.shape[:-2]))]


def _an_area(crop: np.ndarray | None, level: float) -> bool:
    """Whether the pixels at `level` in `crop` are mostly inside areas of that value (a
    background set to 0, zero padding, a blank frame), not scattered impulses: more than
    half have 7 or 8 of their 8 neighbours at it. Salt and pepper of up to 50 % gives
    one in two thousand such pixels; a masked background with 20 % impulses, four in
    five (review of session 71: masked photos lost 3 to 5 dB once their background was
    moved to the data's floor)."""
    from .impulse_switch import _ring_count

    if crop is None or crop.ndim != 2 or min(crop.shape) < 3:
        return False
    at = crop == level
    n = int(np.count_nonzero(at))
    if n < 16:
        return False
    return int(np.count_nonzero(at & (_ring_count(at) >= 7))) > 0.5 * n


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
