"""Impulses before a blind denoiser: replaced by a switching median first.

The blind denoisers were trained on Gaussian and Poisson-Gaussian noise. An
image that also holds impulses (pixels set to the image's minimum or
maximum: dead and saturated pixels, transmission errors, salt-and-pepper)
went through them almost untouched: Gaussian noise of 0.02 plus 5% impulses
on the camera photo, 17.5 dB in, 17.8 dB out, where a 3x3 median gives
30.1. The salt-and-pepper model removes the impulses but keeps every other
pixel as it is, Gaussian noise included.

So restore first asks whether a central crop of one image holds impulses
(:func:`holds_impulses`): salt-and-pepper as
:func:`~napari_deconvnet.estimate_noise` calls it (at least 0.2% of its
pixels are at an extreme where their neighbours are not: the zeros of low
photon counts and clipped noise do not count), or a camera's few hot or
dead pixels (from 0.01%, when they are isolated). If so it replaces those
pixels by :func:`~napari_deconvnet.denoise_switching_median` (the median of
their non-impulse neighbours in the smallest window of 3x3 to 7x7 that has
any) before the network sees the image: 35.5 dB on that photo. Only
extreme pixels that stand out from their neighbours are impulses
(:func:`impulse_mask`): the zeros of a background clipped at 0 are data.
Every other pixel is left as it is. The impulse values are the whole input's minimum
and maximum (:func:`~napari_deconvnet.core.kinds.impulse_values`), so that
eager, lazy, streamed and cluster restores agree: the filter needs only
:data:`IMPULSE_MARGIN` pixels of context (beyond what a model's classical
channel needs).

A camera's hot pixels are rarely all at one value: dark current differs from
pixel to pixel, so most hot pixels lie between the scene and the maximum,
and only the brightest is an extreme. Those were taken as signal, spread
into blobs by the denoisers and into bright rings by a deconvolution
channel (0.3% of them cost 12-16 dB). So the probed crops are also asked,
when they hold no impulses at the extremes, whether they hold a few
**outliers** (:func:`find_outliers`): pixels beyond every one of their 8
neighbours in their plane by four times those neighbours' spread, by 5
standard deviations of the noise at their level (the image's noise line,
:func:`~napari_deconvnet.core.kinds.noise_line`, estimated once the
candidates are set aside) and by a tenth of the image's range; and pairs of
such pixels side by side. A diffraction-limited object spreads over its
neighbours: beads blurred by a Gaussian of sigma 0.4-0.6 pixels (sampled
coarser than Nyquist) at 10-100 photons are not taken; with twice the
spread instead of four times, 4 of those 9 scenes were (both constants
chosen on validation scenes, ``benchmarks/mixed_noise.py --choose``).
Brighter and narrower spots (sigma 0.5 pixel centred on a pixel) still
passed, so an outlier also needs no halo (:func:`_haloed`): a point's light
spills onto its nearest neighbours, a hot pixel's neighbours are the scene's.
A point off its pixel's centre leaves the neighbour on the far side dark but
lights one on each axis, more than the pixel beyond it and as a separable
spot lights their corner (:func:`_off_centre`). A
z-stack's hot pixels stand at the same place in every plane, so the
neighbours are those in the plane. If at least :data:`FEW_IMPULSES` of the
pixels are outliers, and at most :data:`OUTLIER_MOST`, they are switched
like the impulses (:func:`outlier_mask`, with the noise line and range
found once for the whole input, so that blocks agree).

The blind denoisers, the deconvolution models and the noise-conditioned one
get the switch (:func:`switch_by_default`); their Richardson-Lucy, Wiener or
noise channels are computed from the switched image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._validation import LARGEST, check_single_range, optional_flag
from .kinds import (
    NoiseConditioned,
    Plain,
    PSFConditioned,
    central_box,
    impulse_values,
    kind_of,
)
from .noise_estimation import difference_sigma

__all__ = [
    "FEW_IMPULSES",
    "IMPULSE_LARGEST",
    "ISOLATED_RATIO",
    "IMPULSE_MARGIN",
    "OUTLIER_MOST",
    "OUTLIER_NOISE",
    "OUTLIER_RANGE",
    "OUTLIER_SPREAD",
    "SWITCH_PASSES",
    "detect_impulses",
    "find_outliers",
    "outlier_mask",
    "outlier_candidates",
    "probed_images",
    "find_impulses",
    "holds_impulses",
    "impulse_mask",
    "switch_applies",
    "switch_by_default",
    "switchable",
    "switch_impulses",
    "switch_impulses_lazy",
]

#: Largest window of the switching median (odd)
IMPULSE_LARGEST = 7
#: An extreme pixel is an impulse when its 8 neighbours' median is this share of the
#: range away from it: the zeros of a background clipped at 0 are not
STANDS_OUT = 0.1
#: Passes of the switch by the impulses' share of the probed crop's pixels: from
#: 12% two, from 25% four (:func:`switch_impulses`; chosen on validation scenes,
#: ``benchmarks/mixed_noise.py --choose-dense``); below, one
SWITCH_PASSES = ((0.12, 2), (0.25, 4))
#: Context a block needs around it for the switch to be exact: the window, the
#: neighbours that decide whether a pixel in it is an impulse and theirs (an
#: outlier's partner, :func:`outlier_mask`), and for each further pass, the
#: window and the neighbours again
IMPULSE_MARGIN = IMPULSE_LARGEST // 2 + 2 + (SWITCH_PASSES[-1][1] - 1) * (IMPULSE_LARGEST // 2 + 1)
#: Isolated extreme pixels (hot, dead) are switched from this share of the pixels on ...
FEW_IMPULSES = 1e-4
#: ... when the pixels the switch would replace are at most this many times as many
ISOLATED_RATIO = 2.0
#: An outlier lies beyond each of its 8 neighbours (in its plane) by this many
#: times their spread (largest minus smallest)...
OUTLIER_SPREAD = 4.0
#: ... by this many standard deviations of the noise at its own value ...
OUTLIER_NOISE = 5.0
#: ... and by this share of the image's range (that of its neighbours' medians,
#: 0.5th to 99.5th percentile: the outliers themselves do not widen it)
OUTLIER_RANGE = 0.1
#: More outliers than this share of the pixels are no camera's defects: not switched
OUTLIER_MOST = 0.05
#: An outlier whose 4 nearest neighbours all stand above the ring of 16 pixels
#: around them (its median) by this many standard deviations of the noise there is
#: a point-like object (a bead sampled coarser than Nyquist, a star), whose light
#: spills over onto its neighbours; a hot pixel's neighbours are the scene's
#: (:func:`_haloed`) ...
HALO_NOISE = 2.0
#: ... when that excess is also this many times the 4 diagonal neighbours' (a spot
#: of sigma 0.5 pixel: 7, of 0.6: 4; a blurred blob under a hot pixel: under 2).
#: Both chosen on validation scenes (``benchmarks/mixed_noise.py --choose-halo``):
#: the same loss on hot pixels as without the test, the fewest bead scenes taken
HALO_FALL = 1.5
#: A point off its pixel's centre (:func:`_off_centre`) lights a nearest neighbour on
#: each axis above the pixel beyond it by this many noise deviations (inf: not tried)
HALO_PAIR_NOISE = 3.0
#: ... and their diagonal neighbour's excess, times the pixel's, at most this many times
#: the product of theirs (1 for a spot: its light is separable)
HALO_SEPARABLE = 2.0
#: The 4 nearest neighbours (row, column steps) the halo tests read, in this order:
#: the two along the rows' axis, then the two along the columns'
_NEAREST = ((-1, 0), (1, 0), (0, -1), (0, 1))
#: The crop (per spatial axis) the impulses are looked for in
DETECT_CROP = {2: (512, 512), 3: (24, 192, 192)}


def switchable(metadata: Any, in_channels: int) -> bool:
    """Whether models of this metadata can have impulses replaced before them.

    One-channel plain denoisers, deconvolution (PSF-conditioned) and
    noise-conditioned models: their input channels are computed from the
    switched image. Not the salt-and-pepper model, which handles impulses
    itself, nor multi-channel plain models.
    """
    kind = type(kind_of(metadata))
    return (kind is Plain and in_channels == 1) or kind in (PSFConditioned, NoiseConditioned)


def switch_by_default(metadata: Any, in_channels: int) -> bool:
    """Whether restores with models of this metadata look for impulses automatically.

    The shipped blind denoisers (those the light-noise guard is on for,
    :func:`~.light_noise.guarded_by_default`), and every deconvolution and
    noise-conditioned model: a Richardson-Lucy or Wiener channel turns an
    impulse into a bright artefact the network then keeps (0.5% of impulses
    on a blurred cells scene through ``deconv-2d``: 26.05 dB, and 35.60 with
    them replaced, where the scene without impulses gives 35.62;
    ``benchmarks/mixed_noise.py --hot``).
    """
    from .light_noise import guarded_by_default

    metadata = metadata or {}
    if guarded_by_default(metadata, in_channels):
        return True
    return type(kind_of(metadata)) in (PSFConditioned, NoiseConditioned)


def switch_applies(net: Any, requested: bool | None) -> bool:
    """Whether a restore with `net` looks for impulses (``requested`` None: automatic).

    Automatically where :func:`switch_by_default` says so; ``True`` asks for
    it with any other model :func:`switchable` allows (a one-channel plain
    denoiser of your own, say).
    """
    requested = optional_flag(requested, "impulse_switch")
    if requested is False:
        return False
    metadata = getattr(net, "metadata", {}) or {}
    in_channels = net.config.in_channels
    if requested is True:
        if not switchable(metadata, in_channels):
            raise ValueError(
                "impulse_switch=True needs a one-channel denoiser without conditioning (the "
                "plain kind), a deconvolution or a noise-conditioned model; this model is "
                f"{kind_of(metadata).name!r} with {in_channels} input channels (the "
                "salt-and-pepper model handles impulses itself)"
            )
        return True
    return switch_by_default(metadata, in_channels)


def detect_impulses(xt: Any, n_lead: int, ndim: int) -> dict[str, Any] | None:
    """The impulse values when a crop of the transposed input `xt` holds impulses.

    Parameters
    ----------
    xt : ndarray or dask array
        The input in the restore's transposed layout: `n_lead` batch and
        channel axes, then `ndim` spatial axes.

    Returns
    -------
    dict or None
        ``{"minimum": lo, "maximum": hi}`` of the whole input; with
        ``"outliers"`` (:func:`find_outliers`: the noise line and range that
        :func:`outlier_mask` tests with) when the crop holds no impulses at
        the extremes but a few outliers of other values; None when no probed image's central crop
        (:data:`DETECT_CROP`) holds impulses by :func:`holds_impulses` or
        outliers by :func:`find_outliers`. The images probed are the middle
        one and, in a stack, up to :data:`PROBED_IMAGES` in all spread evenly
        over it (:func:`probed_images`): a time-lapse whose middle frame is
        clean but whose other frames hold impulses (hot pixels that come and
        go, a glitch) used to keep them, and lost 10.7 dB on those frames.
    """
    lead = tuple(int(n) for n in xt.shape[:n_lead])
    read: dict[tuple[int, ...], np.ndarray] = {}  # the crops read, for _stack_levels
    for index in probed_images(lead):
        crop = _probe(xt, index, ndim)
        # a lazy image's first read: values beyond float32's range are refused here, as
        # its sampled statistics would later refuse them, before the search below
        # overflows on them (it warned "overflow encountered in cast"); a tiny spread
        # is left to the statistics, as this crop is not the whole image
        # (float16 cannot hold such values: compared as a Python float, as numpy
        # would otherwise cast LARGEST to float16 and warn of overflow on every restore)
        kind = np.asarray(crop).dtype
        if kind.kind == "f" and kind.itemsize > 2 and float(np.abs(crop).max()) > LARGEST:
            check_single_range(np.asarray(crop))
        crop = read[index] = np.asarray(crop, np.float64)
        if min(crop.shape[-2:]) < 16:
            return None
        try:
            found = _impulses_found(crop)
            outliers = None if found is not None else find_outliers(crop)
        except (ValueError, TypeError):
            continue
        if found is None and outliers is None:
            continue
        values = impulse_values(xt)
        # (salt-and-pepper is switched in passes; a few outliers of other values as it was)
        how = _passes(found["amount"], crop.ndim) if found is not None else {"outliers": outliers}
        found = {**values, **how, "data": _stack_levels(xt, lead, ndim, values, read)}
        if found["data"] is not None and math.prod(lead) > 1:
            found["images"] = image_levels(xt, lead, values)
        return found
    return None


def image_levels(xt: Any, lead: tuple[int, ...], values: dict) -> dict[str, Any]:
    """Each image's own data range: ``{"shape": lead, "low": [...], "high": [...]}``, the
    least and greatest value strictly between the impulse levels of each image along
    the `lead` axes (flattened in C order; None for an image with no such value). Exact:
    one more pass over a lazy input.

    A stack's pepper (salt) threshold is a tenth of the data's range above (below) the
    level (:func:`_gaps`); over the stack's range, a frame bleached to a sixth of the
    others kept every dead pixel of a camera (3 dB below the same frame restored alone,
    session 71), and with 5 % impulses its pepper (15.2 dB where alone 32.5). Each
    image takes its own range now (:func:`switch_impulses`), and the noise stays the
    stack's (:func:`_stack_levels`)."""
    lo, hi = values["minimum"], values["maximum"]
    spatial = tuple(range(len(lead), xt.ndim))
    inside = (xt > lo) & (xt < hi)
    if hasattr(xt, "compute"):
        import dask
        import dask.array as da

        low = da.where(inside, xt, np.inf).min(axis=spatial)
        high = da.where(inside, xt, -np.inf).max(axis=spatial)
        low, high = dask.compute(low, high)
    else:
        x = np.asarray(xt)
        low = np.where(inside, x, np.inf).min(axis=spatial)
        high = np.where(inside, x, -np.inf).max(axis=spatial)
    low, high = np.asarray(low, np.float64).reshape(-1), np.asarray(high, np.float64).reshape(-1)
    return {
        "shape": [int(n) for n in lead],
        "low": [float(v) if np.isfinite(v) else None for v in low],
        "high": [float(v) if np.isfinite(v) else None for v in high],
    }


def _image_values(values: dict, index: int) -> dict:
    """`values` with the data range of the image at flat `index` (:func:`image_levels`)."""
    images, data = values.get("images"), values.get("data")
    if images is None or data is None or images["low"][index] is None:
        return values
    own = {**data, "low": images["low"][index], "high": images["high"][index]}
    return {**values, "data": own}


def _probe(xt: Any, index: tuple[int, ...], ndim: int) -> Any:
    """The central crop (:data:`DETECT_CROP`) of the image at `index` of `xt`, read."""
    image = xt[index]
    crop = image[central_box(image.shape, DETECT_CROP[ndim])]
    return crop.compute() if hasattr(crop, "compute") else crop


def _stack_levels(
    xt: Any, lead: tuple[int, ...], ndim: int, values: dict, read: dict
) -> dict | None:
    """:func:`data_levels` of the stack: over the central crops of every probed image
    (:func:`probed_images`; those in `read` as they were read), the least low, the
    greatest high and the median noise, so that no one frame sets them (a dim middle
    frame's lowered the pepper threshold of the bright frames beside it, whose clipped
    zeros were then replaced; review of session 70). Eager, lazy and streamed restores
    read the same crops."""
    found = []
    for index in probed_images(lead):
        crop = read[index] if index in read else np.asarray(_probe(xt, index, ndim), np.float64)
        levels = data_levels(crop, values["minimum"], values["maximum"])
        if levels is not None:
            found.append(levels)
    if not found:
        return None
    return {
        "low": min(v["low"] for v in found),
        "high": max(v["high"] for v in found),
        "noise": float(np.median([v["noise"] for v in found])),
    }


def _passes(amount: float, ndim: int) -> dict[str, int]:
    """``{"passes": n, "lone": k}`` for a crop of `ndim` axes whose impulses are
    `amount` of its pixels, when that is dense enough to be switched in more than
    one pass (:data:`SWITCH_PASSES`), else ``{}``.

    `k` is the most neighbours at its own extreme that salt-and-pepper of the
    crop's density gives a pixel, give or take two standard deviations (its
    count among ``n`` neighbours is binomial, ``n`` times half the share): an
    extreme pixel with no more is an impulse in the passes after the first
    (:func:`_left_impulses`).
    """
    passes = max([1] + [n for share, n in SWITCH_PASSES if amount >= share])
    if passes == 1:
        return {}
    n, p = 3**ndim - 1, amount / 2
    return {"passes": passes, "lone": int(n * p + 2 * np.sqrt(n * p * (1 - p)) + 0.5)}


#: Most images of a stack whose central crops :func:`detect_impulses` looks at
PROBED_IMAGES = 8


def probed_images(lead: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Indices along the batch axes `lead` of the images :func:`detect_impulses`
    probes: the middle one first, then up to :data:`PROBED_IMAGES` in all,
    evenly spaced over the stack (its first and last included)."""
    middle = tuple(n // 2 for n in lead)
    total = int(np.prod(lead)) if lead else 1
    if total <= 1:
        return [middle]
    flat = np.unique(np.linspace(0, total - 1, min(PROBED_IMAGES, total)).round().astype(int))
    others = [tuple(int(i) for i in np.unravel_index(k, lead)) for k in flat]
    return [middle] + [i for i in others if i != middle]


def holds_impulses(image: np.ndarray) -> bool:
    """Whether `image` (2D, or 3D for a 3D network) holds impulses worth replacing.

    Salt-and-pepper as :func:`~napari_deconvnet.estimate_noise` calls it (at
    least 0.2% of the pixels), or a few isolated extreme pixels: at least
    :data:`FEW_IMPULSES` of the pixels (and 10) found at an extreme far from
    their neighbours, where the pixels :func:`impulse_mask` would replace are
    no more than :data:`ISOLATED_RATIO` times as many. That is a camera's hot
    or dead pixels (0.03% of saturated hot pixels cost `denoise-2d` 9.5 dB).
    Clipped heavy noise also leaves a few such pixels (0.01-0.07% at sigma
    100/255), but there the mask would replace 15-25% of the image, which
    costs 7-9 dB: that is not switched.
    """
    return _impulses_found(image) is not None


def _impulses_found(image: np.ndarray) -> dict[str, Any] | None:
    """:func:`~.noise_estimation.count_impulses` of `image` when :func:`holds_impulses`,
    else None (its ``"amount"`` sets the passes, :func:`_passes`)."""
    from .noise_estimation import SP_MIN_FRACTION, SP_MIN_SHARE, count_impulses

    found = count_impulses(image, min_share=FEW_IMPULSES)
    if found["count"] == 0:
        return None
    if found["amount"] >= SP_MIN_FRACTION and found["count"] >= SP_MIN_SHARE * image.size:
        return found  # salt-and-pepper, as estimate_noise says
    values = {"minimum": found["low"], "maximum": found["high"]}
    replaced = int(impulse_mask(image, values).sum())
    return found if replaced <= ISOLATED_RATIO * found["count"] else None


def find_impulses(net: Any, layout: Any, xt: Any, requested: bool | None) -> dict | None:
    """The impulse values a restore with `net` replaces in `xt`, or None.

    `xt` is the input in the restore's transposed layout (`layout`); None
    when the switch does not apply (:func:`switch_applies`) or no
    salt-and-pepper is found (:func:`detect_impulses`). The one decision
    that eager, lazy and streamed restores share.
    """
    if not switch_applies(net, requested):
        return None
    return detect_impulses(xt, layout.n_batch_axes + layout.has_channel, net.config.ndim)


#: A pixel's neighbours stand out from an extreme by at least this many times the data's
#: noise (:func:`_gaps`; never more than a tenth of the span between the extremes)
NOISE_GAP = 4.0


def data_levels(image: Any, lo: float, hi: float) -> dict[str, float] | None:
    """The least and greatest value of `image` strictly between the impulse levels `lo`
    and `hi` (the data's own range) and the noise there (the MAD of neighbours'
    differences along the last axis, as a standard deviation); None without such values."""
    image = np.asarray(image, np.float64)
    inside = (image > lo) & (image < hi)
    if not inside.any():
        return None
    between = image[inside]
    pairs = inside[..., 1:] & inside[..., :-1]
    steps = (image[..., 1:] - image[..., :-1])[pairs]
    noise = difference_sigma(steps) if steps.size else 0.0
    return {"low": float(between.min()), "high": float(between.max()), "noise": noise}


def _gaps(image: np.ndarray, values: dict[str, Any]) -> tuple[float, float]:
    """How far a pepper (salt) pixel's neighbours must lie from its extreme to make it an
    impulse: :data:`STANDS_OUT` of the span from it to the farthest value of the data
    between the extremes, and at least :data:`NOISE_GAP` times the data's noise (the
    zeros of a noisy background clipped at 0 stay data), never more than a tenth of the
    span between the extremes (as before). The data's levels are ``values["data"]``,
    read on the probed crop so that every block of a lazy restore takes the same, else
    `image`'s. A tenth of the span between the impulse levels alone missed every pepper
    pixel of 12-bit data in uint16 with its salt at 65535 (session 70)."""
    lo, hi = values["minimum"], values["maximum"]
    widest = STANDS_OUT * (hi - lo)
    levels = values["data"] if "data" in values else data_levels(image, lo, hi)
    if levels is None:
        return widest, widest
    floor = min(NOISE_GAP * levels["noise"], widest)
    low = max(STANDS_OUT * (levels["high"] - lo), floor)
    high = max(STANDS_OUT * (hi - levels["low"]), floor)
    return low, high


def impulse_mask(image: np.ndarray, values: dict[str, float]) -> np.ndarray:
    """The impulses of one image: extreme pixels whose neighbours are not near that extreme.

    A pixel at the minimum (maximum) whose 8 (26 in 3D) neighbours' median
    is more than :data:`STANDS_OUT` of the data's range (:func:`_gaps`) above
    (below) it. Pixels at
    an extreme among neighbours there (a background clipped at 0, a
    saturated region) are data, and stay.
    """
    lo, hi = values["minimum"], values["maximum"]
    median = _ring_median(image)
    low_gap, high_gap = _gaps(image, values)
    mask = ((image <= lo) & (median > lo + low_gap)) | ((image >= hi) & (median < hi - high_gap))
    if values.get("outliers") is not None:
        mask |= outlier_mask(image, values["outliers"])
    return mask


def _outliers(
    planes: np.ndarray,
    floor: float,
    line: dict[str, float] | None,
    ranks: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(outliers, pairs) of `planes` (N, H, W): pixels beyond all 8 neighbours, and
    pixels beyond all but one (an outlier's partner, not yet checked), by
    :data:`OUTLIER_SPREAD` times the others' spread, by `floor`, and by
    :data:`OUTLIER_NOISE` standard deviations of the noise `line` (``var = a *
    level + b``; None: no noise test) at the higher of the pixel's value and its
    brightest neighbour's: an outlier's own value above them, theirs below (a
    dark pixel's noise is that of the level it fell from). `ranks`: the neighbours'
    ranks 0, 1, 6 and 7 (:func:`_neighbour_ranks`) when already computed."""
    low, second, second_top, top = _neighbour_ranks(planes) if ranks is None else ranks
    noise: np.ndarray | np.float32 = np.float32(0.0)
    if line is not None:
        level = np.maximum(planes, top).astype(np.float64)
        variance = np.maximum(line["a"] * level + line["b"], 0.0)
        noise = (OUTLIER_NOISE * np.sqrt(variance)).astype(np.float32)

    def beyond(high: np.ndarray, small: np.ndarray) -> np.ndarray:
        spread = OUTLIER_SPREAD * (high - small)
        up, down = planes - high, small - planes
        margin = np.maximum(noise, floor)
        return ((up > spread) & (up > margin)) | ((down > spread) & (down > margin))

    single = beyond(top, low)
    return single, beyond(second_top, second) & ~single


def _neighbour_ranks(planes: np.ndarray) -> list[np.ndarray]:
    """The smallest, second smallest, second largest and largest of each pixel's 8
    neighbours in `planes` (N, H, W): what :func:`_outliers` tests against."""
    from .noise_estimation import ring_ranks

    return ring_ranks(planes, (0, 1, 6, 7))


def _fewest(size: int) -> float:
    """How many outliers a crop of `size` pixels must hold to be switched: at least
    :data:`FEW_IMPULSES` of its pixels, and 10."""
    return max(10, FEW_IMPULSES * size)


def _ring_extremes(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest of each pixel's 8 neighbours in `planes` (N, H, W),
    mirrored at the borders as :func:`~.noise_estimation.ring_ranks` does."""
    h, w = planes.shape[-2:]
    padded = np.pad(planes, ((0, 0), (1, 1), (1, 1)), mode="symmetric")
    views = [
        padded[:, 1 + dy : h + 1 + dy, 1 + dx : w + 1 + dx]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    ]
    low, high = views[0].copy(), views[0].copy()
    for view in views[1:]:
        np.minimum(low, view, out=low)
        np.maximum(high, view, out=high)
    return low, high


def outlier_mask(
    image: np.ndarray, outliers: dict[str, float], ranks: list[np.ndarray] | None = None
) -> np.ndarray:
    """The outliers of `image` (planes over its last two axes) as :func:`find_outliers` saw them.

    A pixel beyond each of its 8 neighbours in its plane (above all, or below
    all) by more than :data:`OUTLIER_SPREAD` times their spread, more than
    :data:`OUTLIER_NOISE` standard deviations of the noise at the higher of its
    value and its brightest neighbour's (``sqrt(a * level + b)``, the line in
    `outliers`) and more than
    ``outliers["floor"]``; and two such pixels side by side (each beyond all
    its other 7 neighbours), or one on the image's edge, whose mirrored
    neighbour is itself. The neighbours are mirrored at the borders as
    :func:`~.noise_estimation.ring_ranks` does; 2 pixels of context decide.
    `ranks`: :func:`_neighbour_ranks` of the image's planes, when already computed.
    """
    from scipy import ndimage

    x = np.asarray(image, np.float32)
    planes = x.reshape(-1, *x.shape[-2:])
    single, pairs = _outliers(planes, np.float32(outliers["floor"]), outliers, ranks)
    ring = np.ones((1, 3, 3), bool)
    ring[0, 1, 1] = False
    edge = np.zeros(planes.shape, bool)
    edge[:, [0, -1], :] = True
    edge[:, :, [0, -1]] = True
    partnered = ndimage.binary_dilation(pairs, structure=ring) | edge
    mask = single | (pairs & partnered)
    if mask.any():
        mask[mask] = ~_haloed(planes, mask, outliers)
    return mask.reshape(x.shape)


def _haloed(planes: np.ndarray, mask: np.ndarray, line: dict[str, float]) -> np.ndarray:
    """For each pixel of `mask` (in `planes`, N x H x W), whether it has a halo: each
    of its 4 nearest neighbours lies beyond the median of the 16 pixels at
    distance 2, on the pixel's side, by more than
    :data:`HALO_NOISE` standard deviations of the noise at that ring's level (the
    noise `line`, ``var = a * level + b``), of the ring's own spread (its
    interquartile range), or of the data's quantum (the step between counts,
    ``line["quantum"]``, of the image with the candidates replaced), whichever is
    largest: a dark background of counts has no noise by the line, but its
    neighbours are no closer than a count apart. And that excess must be
    :data:`HALO_FALL` times the 4 diagonal neighbours' median's: light falls off
    fast around a point, slowly over a blurred structure a hot pixel sits on.

    A point-like object blurred by any optics (a bead coarser than Nyquist, sigma
    0.5-0.6 pixel) spills a share of its light onto its nearest neighbours; a hot
    pixel's neighbours are the scene's. All four: a hot pixel on a filament has
    two of them lit by the filament (a point needs all of them, so a hot
    pixel's partner beside it does not make a halo either). Mirrored at the
    borders as the neighbours' ranks are, so 2 pixels of context decide, as
    before.
    """
    k, y, x = np.nonzero(mask)
    h, w = planes.shape[-2:]

    def at(dy: int, dx: int) -> np.ndarray:
        return planes[k, _mirrored(y + dy, h), _mirrored(x + dx, w)].astype(np.float64)

    def middle(values: list[np.ndarray]) -> np.ndarray:  # the median of four
        ordered = np.sort(np.stack(values), axis=0)
        return (ordered[1] + ordered[2]) / 2

    # all 4 nearest neighbours lit (their least, on the pixel's side): a line through a
    # hot pixel (a filament) lights two of them, a point all four (with 3 of 4, the
    # validation lost on hot pixels on filaments: benchmarks/mixed_noise.py --choose-halo)
    nearest = np.stack([at(dy, dx) for dy, dx in _NEAREST])
    corners = middle([at(-1, -1), at(-1, 1), at(1, -1), at(1, 1)])
    far = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if max(abs(dy), abs(dx)) == 2]
    ring = np.sort(np.stack([at(dy, dx) for dy, dx in far]), axis=0)
    around = (ring[7] + ring[8]) / 2
    a, b = float(line["a"]), float(line["b"])
    noise = np.sqrt(np.maximum(a * np.maximum(around, 0.0) + b, 0.0))
    # the ring's own spread (its interquartile range), where the line reads lower (near
    # a camera's offset its intercept is uncertain) or the scene is textured
    noise = np.maximum(noise, (ring[11] + ring[12] - ring[3] - ring[4]) / 2 / 1.349)
    noise = np.maximum(noise, float(line.get("quantum", 0.0)))
    own = planes[k, y, x].astype(np.float64) - around
    side = np.sign(own)
    excess = side * (nearest - around)  # each neighbour's, on the pixel's side
    halo = excess.min(axis=0)
    centred = (halo > HALO_NOISE * noise) & (halo > HALO_FALL * side * (corners - around))
    return centred | _off_centre(at, nearest, excess, side * own, around, side, noise, line)


def _off_centre(
    at: Callable[[int, int], np.ndarray],
    nearest: np.ndarray,
    excess: np.ndarray,
    own: np.ndarray,
    around: np.ndarray,
    side: np.ndarray,
    noise: np.ndarray,
    line: dict[str, float],
) -> np.ndarray:
    """Whether a point lies off its pixel's centre: its light then spills mostly toward
    that side, and the nearest neighbour away from it can stay as dark as the
    background (which :func:`_haloed`'s all-four test needs lit). Such a point still
    lights, on each axis, a nearest neighbour above the pixel beyond it (light falls
    off outward) by :data:`HALO_PAIR_NOISE` deviations of their difference's noise
    (at the level beyond, by the noise `line`; at least :func:`_haloed`'s), and the diagonal
    neighbour between those two as a separable spot does: its excess times the
    pixel's own at most :data:`HALO_SEPARABLE` times the product of theirs (a spot
    integrated over pixels gives 1, wherever it lies; a spot between two pixels,
    found as a pair, too). A line through a hot pixel lights the neighbours along
    it no more than the pixels beyond them, and a diagonal line lights the diagonal
    neighbour far beyond that product. `nearest` are the neighbours (:data:`_NEAREST`),
    `excess` and `own` theirs and the pixel's excess over `around` on its `side` (+1
    above it, -1 below).
    """
    beyond = np.stack([at(2 * dy, 2 * dx) for dy, dx in _NEAREST])
    # the difference of two pixels at the level beyond (a line lights both alike)
    level = np.maximum(np.maximum(beyond, around), 0.0)
    spread = np.maximum(noise, np.sqrt(2 * np.maximum(line["a"] * level + line["b"], 0.0)))
    lit = side * nearest - np.maximum(side * beyond, side * around) > HALO_PAIR_NOISE * spread
    found = np.zeros(side.shape, bool)
    for i in (0, 1):  # a lit neighbour on each axis, their corner as a spot lights it
        for j in (2, 3):
            corner = side * (at(_NEAREST[i][0], _NEAREST[j][1]) - around)
            spot = corner * own <= HALO_SEPARABLE * excess[i] * excess[j]
            found |= lit[i] & lit[j] & spot
    return found


def _mirrored(index: np.ndarray, n: int) -> np.ndarray:
    """`index` (at most 2 beyond either end of an axis of `n`) mirrored as
    ``np.pad(mode="symmetric")`` does: -1 is 0, -2 is 1, n is n - 1."""
    index = np.where(index < 0, -index - 1, index)
    index = np.where(index >= n, 2 * n - index - 1, index)
    return np.clip(index, 0, n - 1)


def find_outliers(image: np.ndarray) -> dict[str, float] | None:
    """The noise line and range :func:`outlier_mask` tests with, when `image` holds a few
    outliers; None otherwise.

    Outliers of any value (hot pixels below the maximum, dead pixels above
    the minimum) count when at least :data:`FEW_IMPULSES` of the pixels (and
    10) are found and at most :data:`OUTLIER_MOST`. The noise line
    (:func:`~napari_deconvnet.core.kinds.noise_line`) is measured once the
    pixels that stand out from their neighbours by spread and range alone
    (:func:`outlier_candidates`) are replaced by their 8 neighbours' median:
    hot pixels would otherwise raise it (1% of them made a Poisson scene's
    line 13 times as steep, and hid most of them). ``{"a", "b", "floor", "quantum"}``;
    `quantum` is the step between the values of counts (0 for other data); `floor` is
    :data:`OUTLIER_RANGE` of the range of the neighbours' medians.
    """
    from .kinds import noise_line
    from .noise_estimation import _quantum

    x = np.asarray(image, np.float32)
    planes = x.reshape(-1, *x.shape[-2:])
    least = _fewest(planes.size)
    aside = _outlier_candidates(planes)
    if aside is None:
        return None
    candidates, median, floor, ranks = aside
    # the line of the image with the candidates replaced by their neighbours' median (a
    # value of the image: a lattice stays one). Leaving their blocks out instead, as
    # estimate_noise does, also leaves out the bright neighbourhoods of coarsely sampled
    # beads, whose noise then reads low and whose peaks pass (1 of 9 validation bead
    # scenes taken, where this takes none)
    cleaned = np.where(candidates, median, planes)
    # one_level False: a line through the levels even where they span less than one
    # noise deviation (a flat background with spots), as the constants here were
    # chosen with; the level alone (Poisson through the origin, or Gaussian) read
    # the noise of point-like beads over a background lower, and took 5 of the 25
    # validation bead scenes (--choose-halo) instead of 2, with the same hot-pixel loss
    line = noise_line(cleaned.reshape(x.shape), one_level=False)
    found = {"a": float(line["a"]), "b": float(line["b"]), "floor": floor}
    found["quantum"] = _quantum(cleaned)  # once for the whole input, as the line
    count = int(outlier_mask(x, found, ranks).sum())
    if count < least or count > OUTLIER_MOST * planes.size:
        return None
    return found


def _outlier_candidates(
    planes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float, list[np.ndarray]] | None:
    """The pixels of `planes` (N, H, W, float32) that stand out from their 8 neighbours
    by spread and range alone (no noise test), those neighbours' median, the range
    floor, and the neighbours' ranks tested (:func:`_neighbour_ranks`, for
    :func:`outlier_mask` of the same planes); None when fewer than
    :data:`FEW_IMPULSES` of the pixels (and 10) stand out, or more than
    :data:`OUTLIER_MOST`."""
    from .noise_estimation import ring_ranks

    least = _fewest(planes.size)
    # a cheap first look (a tenth of the sorting's cost, which most images then skip):
    # pixels beyond all 8 neighbours by the spread test alone, half as many as needed
    low, high = _ring_extremes(planes)
    spread = OUTLIER_SPREAD * (high - low)
    if ((planes - high > spread) | (low - planes > spread)).sum() < least / 2:
        return None
    median = ring_ranks(planes, (4,))[0]
    low, high = np.percentile(median, (0.5, 99.5))
    floor = np.float32(OUTLIER_RANGE * float(high - low))
    if not floor > 0:
        return None
    ranks = _neighbour_ranks(planes)
    single, pairs = _outliers(planes, floor, None, ranks)
    candidates = single | pairs
    if candidates.sum() < least or candidates.sum() > OUTLIER_MOST * planes.size:
        return None
    return candidates, median, float(floor), ranks


def outlier_candidates(planes: np.ndarray) -> np.ndarray | None:
    """The pixels of `planes` (N, H, W) that a noise measurement should leave out: a
    few outliers (hot pixels of any value; :func:`find_outliers`'s candidates, by
    spread and range alone), or None.

    :func:`~napari_deconvnet.estimate_noise` leaves their 2x2 blocks out: 0.1%
    of hot pixels on a camera frame made its gain 3.4 times too low, 1% made
    Poisson-Gaussian noise read as Gaussian. None (nothing to leave out) when
    fewer than :data:`FEW_IMPULSES` of the pixels (and 10) stand out, or more
    than :data:`OUTLIER_MOST`: images without hot pixels are measured as before.
    """
    x = np.asarray(planes)
    if x.ndim != 3 or min(x.shape[-2:]) < 3 or not np.issubdtype(x.dtype, np.number):
        return None
    aside = _outlier_candidates(np.asarray(x, np.float32))
    return None if aside is None else aside[0]


def switch_impulses(
    x: np.ndarray, values: dict[str, float], ndim: int, start: Any = None
) -> np.ndarray:
    """`x` (any leading axes, then `ndim` spatial ones) with its impulses replaced; float32.

    With ``values["images"]`` (:func:`image_levels`), each image takes its own data
    range; `start` is then the index, along the leading axes of the whole input, of
    `x`'s first image (a block of a lazy or streamed restore; None: `x` is the whole).

    The impulses (:func:`impulse_mask`) take the median of their clean
    neighbours (:func:`~napari_deconvnet.denoise_switching_median`); every
    other pixel is returned as it is. In dense salt-and-pepper
    (``values["passes"]`` above 1, :data:`SWITCH_PASSES`) the extreme pixels
    that were kept are asked again, against their neighbours as now replaced
    (:func:`_left_impulses`), and the switch is redone with those found: a
    salt pixel with four salt neighbours among its eight sees their median at
    the maximum and is taken for a saturated region's pixel, which kept 11%
    of the salt at 50% impulses (`denoise-2d`: 17.4 dB on the camera photo,
    where the switching median alone gives 27.8). A saturated region's
    pixels keep saturated neighbours, and stay; only in dense impulses, as
    a saturated filament can lose pixels at its ends each pass.
    """
    from scipy import ndimage

    from .denoisers import denoise_switching_median, switch_fill

    x = np.asarray(x)
    images = x.reshape(-1, *x.shape[x.ndim - ndim :])
    out = np.empty(images.shape, np.float32)
    lo, hi = values["minimum"], values["maximum"]
    passes = int(values.get("passes", 1))
    everything = values
    own_lead = x.shape[: x.ndim - ndim]
    for i, image in enumerate(images):
        if everything.get("images") is not None:  # this image's own data range
            whole = everything["images"]["shape"]
            at = np.add(np.unravel_index(i, own_lead), start if start is not None else 0)
            # an axis of one in the levels is the one image there (a channel restored
            # alone, whose job indexes the whole C axis: review of session 71)
            at = [0 if n == 1 else int(a) for a, n in zip(at, whole, strict=True)]
            values = _image_values(everything, int(np.ravel_multi_index(tuple(at), whole)))
        image = image.astype(np.float32)
        mask = impulse_mask(image, values)
        out[i] = denoise_switching_median(image, lo, hi, largest=IMPULSE_LARGEST, mask=mask)
        for _ in range(passes - 1):
            left = _left_impulses(image, out[i], mask, values)
            if not left.any():
                break
            mask |= left
            # only the impulses whose windows hold a new one change: redone from the
            # image, exactly as a whole new pass (tests/test_impulse_switch.py)
            near = ndimage.binary_dilation(left, np.ones((IMPULSE_LARGEST,) * left.ndim)) & mask
            out[i][near] = image[near]
            switch_fill(image, mask, np.argwhere(near), IMPULSE_LARGEST, out[i])
    return out.reshape(x.shape)


def _left_impulses(
    image: np.ndarray, switched: np.ndarray, mask: np.ndarray, values: dict[str, float]
) -> np.ndarray:
    """Extreme pixels of `image` outside `mask` that stand out (:data:`STANDS_OUT`)
    from their neighbours' median in `switched`, the image with `mask` replaced;
    and, with ``values["lone"]`` (:func:`_passes`), those with no more than that
    many neighbours at their own extreme and at least one at neither: pepper in a
    dim background, which stands out by less than a tenth of the range but
    is no darker background's (those whose neighbours are all at one extreme
    stay)."""
    lo, hi = values["minimum"], values["maximum"]
    low, high = image <= lo, image >= hi
    kept = (low | high) & ~mask
    if not kept.any() or not mask.any():
        return np.zeros(image.shape, bool)
    median = _ring_median(switched)
    low_gap, high_gap = _gaps(image, values)
    left = kept & ((low & (median > lo + low_gap)) | (high & (median < hi - high_gap)))
    lone = values.get("lone")
    if lone is not None:
        lows, highs = _ring_count(low), _ring_count(high)
        others = 3**image.ndim - 1 - lows - highs
        left |= kept & (others > 0) & ((low & (lows <= lone)) | (high & (highs <= lone)))
    return left


def _ring_count(flags: np.ndarray) -> np.ndarray:
    """How many of each pixel's 8 (26 in 3D) neighbours are set, mirrored at the borders."""
    from scipy import ndimage

    ring = np.ones((3,) * flags.ndim, np.int16)
    ring[(1,) * flags.ndim] = 0
    return ndimage.convolve(flags.astype(np.int16), ring, mode="reflect")


def _ring_median(image: np.ndarray) -> np.ndarray:
    """The median of each pixel's 8 (26 in 3D) neighbours, mirrored at the borders."""
    from scipy import ndimage

    from .noise_estimation import ring_ranks

    if image.ndim == 2:  # as the impulse count takes it
        return ring_ranks(np.asarray(image)[None], (4,))[0][0]
    ring = np.ones((3,) * image.ndim, bool)
    ring[(1,) * image.ndim] = False
    return ndimage.median_filter(image, footprint=ring, mode="reflect")


def switch_impulses_lazy(xt: Any, values: dict[str, float], ndim: int) -> Any:
    """:func:`switch_impulses` of a dask array, chunk by chunk with the context it needs.

    Exact: each chunk is read with :data:`IMPULSE_MARGIN` pixels of its
    neighbours; at the image's borders the filter reflects the image as the
    in-memory one does. An array in memory is filtered at once.
    """
    if not hasattr(xt, "map_overlap"):
        return switch_impulses(xt, values, ndim)
    spatial = range(xt.ndim - ndim, xt.ndim)
    # an axis no longer than the context is read whole (dask's overlap cannot reach
    # further than the array), with no overlap along it: still exact
    short = [d for d in spatial if xt.shape[d] <= IMPULSE_MARGIN]
    depth = {d: (IMPULSE_MARGIN if d in spatial and d not in short else 0) for d in range(xt.ndim)}
    # chunks at least as large as the context (dask's overlap needs it)
    small = {
        d: max(IMPULSE_MARGIN + 1, min(xt.chunks[d]))
        for d in spatial
        if min(xt.chunks[d]) <= IMPULSE_MARGIN and d not in short
    }
    if small or any(len(xt.chunks[d]) > 1 for d in short):
        xt = xt.rechunk({**{d: max(c, 64) for d, c in small.items()}, **{d: -1 for d in short}})
    return xt.map_overlap(
        _switch_chunk,
        depth=depth,
        boundary="none",
        dtype=np.float32,
        values=values,
        ndim=ndim,
    )


def _switch_chunk(chunk: np.ndarray, values: dict, ndim: int, block_info: Any = None) -> Any:
    """:func:`switch_impulses` of one chunk, told where its images lie in the whole."""
    start = None
    if block_info is not None and values.get("images") is not None:
        where = block_info[0]["array-location"]
        start = tuple(int(a) for a, _ in where[: chunk.ndim - ndim])
    return switch_impulses(chunk, values, ndim, start)
