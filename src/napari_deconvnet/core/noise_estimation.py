"""Estimate the noise of a real image, as parameters for :func:`~.noise.synthesize`.

Gaussian noise is measured by the median absolute deviation of the finest
diagonal wavelet coefficients (Donoho & Johnstone). Signal-dependent noise is
measured as a noise level function, the variance of those coefficients
against the local mean over smooth regions, fitted by a line as Foi et al.
do for Poissonian-Gaussian raw data. Salt-and-pepper noise is detected as
isolated pixels at the image's extreme values.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import numpy as np

from ._validation import check_finite, check_single_range, chunked_as_dask, is_dask, real_array

__all__ = [
    "ESTIMATION_MODELS",
    "LINE_NOISE_MODELS",
    "blur_correlation",
    "count_impulses",
    "estimate_noise",
    "impulse_count",
    "noise_level_function",
    "pairs_look_blurred",
    "photon_step",
    "variance_line",
    "weak_texture_noise",
]

#: Noise models whose variance is a line in the intensity (:func:`variance_line`).
LINE_NOISE_MODELS = ("gaussian", "poisson", "poisson-gaussian")

#: Accepted values of ``model`` in :func:`estimate_noise`.
ESTIMATION_MODELS = (
    "auto",
    "gaussian",
    "poisson",
    "poisson-gaussian",
    "salt-and-pepper",
    "speckle",
)

_MAD_TO_SIGMA = 1.0 / 0.6744897501960817  # 1 / Phi^-1(3/4)
_MAX_SAMPLES = 1 << 22  # pixels looked at, at most (whole planes, evenly spread)
_MIN_SIDE = 16
_BINS = 24
_MIN_BIN = 64  # coefficients per level bin, at least
SP_MIN_FRACTION = 2e-3  # below this, isolated extreme pixels are not salt-and-pepper
_SP_MIN_IMPULSES = 10  # fewer impulses found than this are not salt-and-pepper either
SP_MIN_SHARE = 5e-4  # nor fewer than this share of all pixels
_SIGNAL_DEPENDENCE = 0.15  # relative change of the variance across levels that counts
_SMOOTH_DETAIL = 1.5  # a smooth block's HL/LH detail, at most, as a multiple of the noise's
_SMOOTH_PASSES = 3  # selections of smooth blocks, each with the previous pass's variance
_FLANK_SLACK = 1.5  # the median bins' variance, times this, starts a flank's bound


# ---------------------------------------------------------------- input


def _lazy_planes(image: Any, channel_axis: int | None) -> tuple[np.ndarray, int | None]:
    """The planes of a dask or zarr `image` that :func:`_planes` keeps, read alone
    (with its channel axis first, so None for it), and no more than a central
    crop of :data:`_MAX_SAMPLES` pixels of a larger plane: the Noise widget's
    *Match noise of* on a lazy layer larger than memory read it whole."""
    if channel_axis is not None and -image.ndim <= channel_axis < image.ndim:
        import dask.array as da

        image, channel_axis = da.moveaxis(image, channel_axis, 0), None
    if image.ndim < 2:
        return real_array(image), channel_axis
    lead, (h, w) = tuple(image.shape[:-2]), tuple(image.shape[-2:])
    side = max(int(math.isqrt(_MAX_SAMPLES)), _MIN_SIDE)
    crop = tuple(slice(max((n - side) // 2, 0), max((n - side) // 2, 0) + side) for n in (h, w))
    per_plane = min(h, side) * min(w, side)
    count = math.prod(lead)
    keep = max(1, _MAX_SAMPLES // max(per_plane, 1))
    picked = np.linspace(0, count - 1, min(keep, count)).round().astype(int) if count else []
    if not len(picked):
        return real_array(image), channel_axis
    import dask

    # in one compute: a chunk holding several of the planes is read once (read per
    # plane, a 128-plane chunk was decompressed 129 times)
    parts = dask.compute(*[image[(*np.unravel_index(i, lead), *crop)] for i in picked])
    return np.stack([real_array(p) for p in parts]), channel_axis


def _planes(image: Any, channel_axis: int | None, min_side: int = _MIN_SIDE) -> np.ndarray:
    """Validate `image`; return float64 planes ``(P, H, W)`` of its two last axes, each
    at least `min_side` pixels wide."""
    if channel_axis is not None:
        if isinstance(channel_axis, bool | np.bool_) or not isinstance(
            channel_axis, numbers.Integral
        ):  # (a float failed in np.moveaxis's words; True was taken as axis 1)
            raise TypeError(
                f"channel_axis must be an integer (the axis of the channels) or None, got "
                f"{channel_axis!r}"
            )
        channel_axis = int(channel_axis)
    image = chunked_as_dask(image)
    if is_dask(image):
        image, channel_axis = _lazy_planes(image, channel_axis)
    array = real_array(image)
    if channel_axis is not None:
        if not -array.ndim <= channel_axis < array.ndim:
            raise ValueError(
                f"channel_axis={channel_axis} is out of range for a {array.ndim}-D image"
            )
        array = np.moveaxis(array, channel_axis, 0)
    if array.ndim < 2 or min(array.shape[-2:]) < min_side:
        hint = ""
        if channel_axis is None and array.ndim >= 3 and array.shape[-1] in (3, 4):
            if min(array.shape[-3:-1]) >= _MIN_SIDE:  # an RGB(A) image, samples last
                hint = "; for RGB(A) samples on the last axis pass channel_axis=-1"
        raise ValueError(
            f"noise estimation needs an image of at least {min_side}x{min_side} pixels in its "
            f"last two axes, got shape {array.shape}{hint}"
        )
    planes = array.reshape(-1, *array.shape[-2:])
    per_plane = planes.shape[1] * planes.shape[2]
    keep = max(1, _MAX_SAMPLES // per_plane)
    if planes.shape[0] > keep:
        planes = planes[np.linspace(0, planes.shape[0] - 1, keep).round().astype(int)]
    planes = planes.astype(np.float64)
    check_finite(planes)
    # its squares overflowed (a float64 image of 1e300 gave sigma 3e299 with warnings);
    # the estimate is for synthesize and restore, which work in float32
    check_single_range(planes, "the image", "in which its noise is synthesised and restored")
    return planes


def _haar(planes: np.ndarray) -> dict[str, np.ndarray]:
    """One level of the orthonormal 2D Haar transform over 2x2 blocks."""
    h, w = planes.shape[1] // 2 * 2, planes.shape[2] // 2 * 2
    a = planes[:, 0:h:2, 0:w:2]
    b = planes[:, 0:h:2, 1:w:2]
    c = planes[:, 1:h:2, 0:w:2]
    d = planes[:, 1:h:2, 1:w:2]
    return {
        "mean": (a + b + c + d) / 4,
        "hh": (a - b - c + d) / 2,  # cancels any f(row) + g(column): noise only
        "hl": (a + b - c - d) / 2,
        "lh": (a - b + c - d) / 2,
    }


#: Lattices with more steps than this up to the largest coefficient take the plain median
_MOST_STEPS = 2**20


def difference_sigma(steps: np.ndarray) -> float:
    """A robust standard deviation of pixel noise from neighbours' differences `steps`:
    their median absolute deviation about the median, times 1.4826, over sqrt(2) (each
    difference holds two pixels' noise)."""
    return 1.4826 * float(np.median(np.abs(steps - np.median(steps)))) / math.sqrt(2)


def _mad_sigma(values: np.ndarray, quantum: float = 0.0) -> float:
    """Donoho and Johnstone's robust sigma, ``median(|values|) / 0.6745``.

    For discrete data (integers, photon counts: pixel values on a lattice of
    step `quantum`), the Haar coefficients lie on a lattice of step
    ``quantum / 2`` and their median can only be one of its steps: sigma
    snapped to multiples of 0.74 for integers, and read 0 below about 0.5.
    There the median is interpolated within its step (the grouped-data
    median, each value standing for the interval it was rounded from).
    """
    magnitude = np.abs(values)
    step = quantum / 2
    # no lattice, or one so fine that its steps are far below the noise (a few
    # averaged values among 8-bit ones made a step of 1e-9 and 10**9 bins)
    if quantum <= 0 or magnitude.size == 0 or not magnitude.max() / step < _MOST_STEPS:
        return float(np.median(magnitude) * _MAD_TO_SIGMA)
    counts = np.bincount(np.rint(magnitude / step).astype(np.int64).reshape(-1))
    if counts[0] == magnitude.size:  # noise-free
        return 0.0
    half = magnitude.size / 2
    cumulative = np.cumsum(counts)
    level = int(np.searchsorted(cumulative, half))
    before = float(cumulative[level - 1]) if level > 0 else 0.0
    lower, width = ((level - 0.5) * step, step) if level > 0 else (0.0, step / 2)
    median = lower + (half - before) / counts[level] * width
    return float(median * _MAD_TO_SIGMA)


# ---------------------------------------------------------------- noise level function


def _robust_variance(values: np.ndarray) -> float:
    """Variance after removing outliers (edges) beyond 5 robust standard deviations."""
    scale = max(_mad_sigma(values), float(values.std()))
    kept = values[np.abs(values) <= 5 * scale] if scale > 0 else values
    return float(np.mean(kept**2))


def noise_level_function(image: Any, *, channel_axis: int | None = None) -> dict[str, np.ndarray]:
    """Noise variance against local mean intensity, measured over smooth regions.

    Parameters
    ----------
    image : (..., M, N) ndarray or torch.Tensor
        A noisy image; every plane of its two last axes is used.
    channel_axis : int, optional
        Axis of channels, pooled with the other planes.

    Returns
    -------
    dict
        ``"mean"``, ``"variance"`` and ``"count"``: one entry per level bin
        (sorted by mean), the local mean, the noise variance and the number
        of 2x2 blocks it was measured on.

    Notes
    -----
    Each 2x2 block gives a local mean and a diagonal Haar coefficient
    ``(a - b - c + d) / 2``, whose variance is the average noise variance of
    the block's pixels while any signal of the form ``f(row) + g(column)``
    cancels. Blocks are grouped into quantile bins of their (smoothed) local
    mean, after discarding blocks on edges and texture, where the
    horizontal and vertical coefficients exceed 1.5 times what the noise
    explains (three passes, each against the variance the previous one
    measured). This follows the
    level-set approach of Foi et al. [1]_ in a simplified form.

    References
    ----------
    .. [1] A. Foi, M. Trimeche, V. Katkovnik and K. Egiazarian, "Practical
           Poissonian-Gaussian noise modeling and fitting for single-image
           raw-data", IEEE Trans. Image Process. 17(10), 1737-1754, 2008.
           :DOI:`10.1109/TIP.2008.2001399`
    """
    planes = _planes(image, channel_axis)
    coef = _haar(planes)
    live = live_blocks(coef)
    return _nlf(coef, live if live is not None and live.sum() >= _MIN_BIN else None)[0]


#: Haar blocks (2x2 pixels) across an exactly constant area that carries no noise
DEAD_AREA_BLOCKS = 9


def _outlier_blocks(planes: np.ndarray) -> np.ndarray | None:
    """The Haar blocks holding a few outliers (hot pixels of any value,
    :func:`~.impulse_switch.outlier_candidates`), or None."""
    from .impulse_switch import outlier_candidates

    pixels = outlier_candidates(planes)
    if pixels is None:
        return None
    n, h, w = pixels.shape[0], pixels.shape[1] // 2 * 2, pixels.shape[2] // 2 * 2
    return pixels[:, :h, :w].reshape(n, h // 2, 2, w // 2, 2).any(axis=(2, 4))


def _clipped_noise(planes: np.ndarray) -> np.ndarray | None:
    """The Haar blocks holding or touching pixels clipped at the image's minimum or
    maximum (:func:`~.sure._clipped_blocks`), or None.

    Noise clipped at 0 (an 8-bit photo's blacks) keeps less than its variance in the
    blocks near the floor: the variance then seemed to grow with the level, and
    Gaussian noise of 5 grey levels read as Poisson-Gaussian (gain 11.9, read noise
    43). Photon counts' zeros are no clipping: the rule asks for a pile-up beyond
    twice what the next level holds, and where more than :data:`CLIPPED_MOST` of
    the blocks would go for the floor (counts in the dark, whose zeros are their
    noise) none at the floor do; a pile-up at the top always is clipping.
    """
    from .sure import _clipped_blocks

    h, w = planes.shape[-2] // 2, planes.shape[-1] // 2
    floor = _clipped_blocks(planes, ("min",))
    if floor is not None:
        floor = floor[:, :h, :w]
        if floor.mean() > CLIPPED_MOST:  # zeros everywhere: counts in the dark
            floor = None
    ceiling = _clipped_blocks(planes, ("max",))  # a pile-up at the top is always clipping
    if ceiling is not None:
        ceiling = ceiling[:, :h, :w]
    if floor is None or ceiling is None:
        return floor if ceiling is None else ceiling
    return floor | ceiling


#: Share of the blocks beyond which "clipped" ones are left in (:func:`_clipped_noise`):
#: an image mostly at its floor is photon counts in the dark (their zeros are noise)
CLIPPED_MOST = 0.5


def live_blocks(coef: dict[str, np.ndarray]) -> np.ndarray | None:
    """The Haar blocks outside exactly constant areas, or None when there are none.

    Zero padding (a stitched mosaic, a registered or rotated image), a mask,
    a saturated region: an area where every pixel has one value carries no
    noise, and counted as smooth blocks of zero variance it pulled the noise
    level toward zero, or drew a line through (0, 0) that made Gaussian noise
    Poisson (a photo with Gaussian noise of 0.05 beside 30% zero padding read
    as Poisson noise of gain 93; Poisson noise beside 80%, as Gaussian noise
    of a sixth of its level). A block is dead when it lies in a window of
    :data:`DEAD_AREA_BLOCKS` blocks square (18 pixels) whose pixels are all
    equal: noise of any kind leaves no such window (Poisson counts would need
    a mean below about 0.01 photons per pixel), so noisy images without
    such areas get None, and the estimate they had.
    """
    from scipy import ndimage

    flat = (coef["hh"] == 0) & (coef["hl"] == 0) & (coef["lh"] == 0)
    if not flat.any():
        return None
    size = (1, DEAD_AREA_BLOCKS, DEAD_AREA_BLOCKS)
    mean = coef["mean"]
    uniform = ndimage.minimum_filter(flat.view(np.uint8), size, mode="nearest").astype(bool)
    uniform &= ndimage.maximum_filter(mean, size, mode="nearest") == ndimage.minimum_filter(
        mean, size, mode="nearest"
    )
    if not uniform.any():
        return None
    dead = ndimage.maximum_filter(uniform.view(np.uint8), size, mode="nearest").astype(bool)
    return ~dead


def _nlf(
    coef: dict[str, np.ndarray], live: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The noise level function, and the mask of the smooth blocks it was measured on.

    `live`: the blocks to measure on (:func:`live_blocks`); default all.
    """
    from scipy import ndimage

    ring = np.full((1, 3, 3), 1 / 8)
    ring[0, 1, 1] = 0

    def neighbours(values: np.ndarray) -> np.ndarray:
        # mean of the 8 neighbouring blocks, leaving the block itself out, so that
        # selecting blocks by it does not select their own noise. A direct sum: a
        # running one (uniform_filter) leaves rounding residue on blocks whose
        # neighbours are all zero, so that black areas read as levels and details
        # of 1e-12 depending on the image's scale (photon counts read as Poisson
        # noise in counts, as Gaussian noise of a fifth of a photon divided by 300)
        return ndimage.correlate(values, ring, mode="reflect")

    level = neighbours(coef["mean"])
    mean, hh = coef["mean"], coef["hh"]
    # blocks by level, sorted once: each pass bins a subset in this order
    order = np.argsort(level, axis=None, kind="stable")
    # first pass: variance per level bin from all blocks (robustly)
    everywhere = np.ones(hh.shape, bool) if live is None else live
    nlf = _binned(order, mean, hh, everywhere, robust=True)
    smooth = everywhere.copy()
    if nlf["mean"].size == 0:
        return nlf, smooth
    # smoothness: horizontal and vertical detail close to what the noise explains.
    # Texture inflates the first pass's variance, and so the threshold: each pass
    # measures the variance on the blocks the previous one found smooth (noise
    # alone keeps ~90 % of the blocks; the HH coefficients are independent of
    # the HL and LH ones the blocks are chosen by, so the choice does not bias
    # them)
    detail = neighbours(coef["hl"] ** 2 + coef["lh"] ** 2) / 2
    for _ in range(_SMOOTH_PASSES):
        expected = np.maximum(np.interp(level, nlf["mean"], nlf["variance"]), 1e-30)
        smooth = detail <= _SMOOTH_DETAIL * expected
        if live is not None:
            smooth &= live
        if smooth.sum() < 0.2 * everywhere.sum():  # mostly texture: the least detailed
            ratio = detail / expected
            smooth = ratio <= np.quantile(ratio[everywhere], 0.2)
            if live is not None:
                smooth &= live
        refined = _binned(order, mean, hh, smooth)
        if refined["mean"].size == 0:
            break
        nlf = refined
    return nlf, smooth


def _binned(
    order: np.ndarray, mean: np.ndarray, hh: np.ndarray, mask: np.ndarray, robust: bool = False
) -> dict[str, np.ndarray]:
    """Mean and HH variance of the masked blocks in bins of equal counts by level.

    `order` sorts all blocks (flattened) by their neighbours' level, stably; the
    masked ones keep that order (the same as sorting them alone).
    """
    order = order[mask.ravel()[order]]
    mn, cf = mean.ravel(), hh.ravel()
    n_bins = int(min(_BINS, order.size // _MIN_BIN))
    if n_bins < 1:
        return {"mean": np.zeros(0), "variance": np.zeros(0), "count": np.zeros(0, int)}
    means, variances, counts = [], [], []
    for idx in np.array_split(order, n_bins):
        means.append(float(mn[idx].mean()))
        variances.append(_robust_variance(cf[idx]) if robust else float(np.mean(cf[idx] ** 2)))
        counts.append(idx.size)
    # bins follow the neighbours' level; their own means can swap where levels are flat
    by = np.argsort(means, kind="stable")
    return {
        "mean": np.array(means)[by],
        "variance": np.array(variances)[by],
        "count": np.array(counts)[by],
    }


def _fit_line(
    mean: np.ndarray, variance: np.ndarray, count: np.ndarray, *, through_origin: bool = False
) -> tuple[float, float, float]:
    """Weighted least squares ``variance = a * mean + b``; returns a, b and b's standard error.

    The mean of n squared coefficients of variance v has variance
    ``(2 v**2 + k4) / n``, where ``k4 = a**2 v / 4`` is the fourth cumulant
    of a Poisson part (negligible but at a few photons), so bins are weighted
    by the inverse of that, with v the fitted variance (iteratively reweighted).
    """
    if variance.size == 0 or not np.any(variance > 0):  # flat bins (a mask, a constant image)
        return 0.0, 0.0, 0.0
    # 1e-150: the weights square it, and 1e-300 squared underflows to a division by zero
    floor = max(float(np.max(variance)) * 1e-6, 1e-150)
    pred = np.maximum(variance, floor)
    a = b = se = 0.0
    for _ in range(5):
        pred = np.maximum(pred, floor)
        w = count / (2 * pred**2 + max(a, 0.0) ** 2 * pred / 4)
        if through_origin:
            a = float(np.sum(w * mean * variance) / max(np.sum(w * mean**2), 1e-300))
            b, se = 0.0, 0.0
        else:
            design = np.stack([mean, np.ones_like(mean)], axis=1)
            normal = design.T @ (w[:, None] * design)
            try:
                cov = np.linalg.inv(normal)
            except np.linalg.LinAlgError:
                cov = np.linalg.pinv(normal)
            a, b = cov @ (design.T @ (w * variance))
            se = float(np.sqrt(max(cov[1, 1], 0.0)))
        pred = a * mean + b
    return float(a), float(b), se


# ---------------------------------------------------------------- salt-and-pepper


#: Data with fewer distinct values than this have no lattice step (:func:`_quantum`):
#: photon counts at a peak of 2 already take 8 or more
_FEWEST_LEVELS = 5


def _quantum(planes: np.ndarray) -> float:
    """The step between the values of discrete data (counts, integers), else 0."""
    flat = planes.reshape(-1)
    sample = flat[:: max(1, flat.size // 65536)]
    values = np.unique(sample)
    # a handful of values (a flat or binary image with impulses: 0, 0.5 and 1) is no
    # lattice of counts: read as one, its step of half the range hid every impulse
    if values.size < _FEWEST_LEVELS or values.size > sample.size // 4:
        return 0.0
    return float(np.diff(values).min())


def _salt_and_pepper(planes: np.ndarray) -> dict[str, Any]:
    """The salt-and-pepper record of :func:`estimate_noise` (:func:`impulse_count` floored)."""
    found = impulse_count(planes)
    return {  # Python floats, as the docstring says (numpy's came through)
        k: float(v) if isinstance(v, np.floating) else v for k, v in found.items() if k != "count"
    }


def count_impulses(image: Any, min_share: float = SP_MIN_SHARE) -> dict[str, Any]:
    """:func:`impulse_count` of an image (its planes over the last two axes)."""
    return impulse_count(_planes(image, None), min_share)


#: Batcher's odd-even merge sort of 8 values: 19 compare-exchanges in 6 layers
_SORT8 = (
    ((0, 2), (1, 3), (4, 6), (5, 7)),
    ((0, 4), (1, 5), (2, 6), (3, 7)),
    ((0, 1), (2, 3), (4, 5), (6, 7)),
    ((2, 4), (3, 5)),
    ((1, 4), (3, 6)),
    ((1, 2), (3, 4), (5, 6)),
)
#: Pixels sorted at a time by :func:`ring_ranks`: its working buffers (ten of this
#: many values) stay in the core's cache, and below the allocator's threshold for
#: fresh pages (a chunk of 2**18 spent most of its time there: 3x slower)
_RING_CHUNK = 2**14


@functools.lru_cache(maxsize=32)
def _selection(ranks: tuple[int, ...]) -> tuple[tuple[tuple[int, int, bool, bool], ...], ...]:
    """The compare-exchanges of :data:`_SORT8` that the outputs `ranks` depend on,
    layer by layer, as ``(i, j, minimum needed, maximum needed)``: a rank needs
    a part of the network only (the median 27 of its 38 minima and maxima, the
    75th percentile 21)."""
    needed = set(ranks)
    layers = []
    for layer in reversed(_SORT8):
        ops = []
        for i, j in layer:
            low, high = i in needed, j in needed
            if low or high:
                ops.append((i, j, low, high))
        for i, j, _, _ in ops:
            needed |= {i, j}
        layers.append(tuple(ops))
    return tuple(reversed(layers))


def ring_ranks(planes: np.ndarray, ranks: tuple[int, ...]) -> list[np.ndarray]:
    """The values of `ranks` (0: the smallest) among each pixel's 8 neighbours.

    `planes` is ``(N, H, W)``, extended by its mirror image at the borders
    (``scipy.ndimage``'s ``mode="reflect"``). Equals ``ndimage.rank_filter``
    with the 3x3 ring footprint exactly (a sorting network of minima and
    maxima: no arithmetic), in about a tenth of its time: only the
    compare-exchanges the ranks need (:func:`_selection`), into buffers of
    :data:`_RING_CHUNK` values reused from chunk to chunk. A rank of 4 is
    what ``median_filter`` takes for 8 values, 6 its 75th percentile.
    """
    planes = np.asarray(planes)
    n, h, w = planes.shape
    outs = [np.empty_like(planes) for _ in ranks]
    if planes.size == 0:
        return outs
    rows = max(1, min(h, _RING_CHUNK // max(w, 1)))
    network = _selection(tuple(ranks))
    # each exchange writes into two free buffers; the wires' buffers are then free
    pool = [np.empty((rows, w), planes.dtype) for _ in range(10)]
    for k in range(n):
        padded = np.pad(planes[k], 1, mode="symmetric")
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            free = [b[: r1 - r0] for b in pool]
            v: list[np.ndarray] = [
                padded[r0 + 1 + dy : r1 + 1 + dy, 1 + dx : w + 1 + dx]
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
                if dy or dx
            ]
            owned = [False] * 8
            for layer in network:
                for i, j, low, high in layer:
                    a, b = v[i], v[j]
                    if low:
                        v[i] = np.minimum(a, b, out=free.pop())
                    if high:
                        v[j] = np.maximum(a, b, out=free.pop())
                    for wire, old, changed in ((i, a, low), (j, b, high)):
                        if changed:
                            if owned[wire]:
                                free.append(old)
                            owned[wire] = True
            for out, rank in zip(outs, ranks, strict=True):
                out[k, r0:r1] = v[rank]
    return outs


def impulse_count(planes: np.ndarray, min_share: float = SP_MIN_SHARE) -> dict[str, Any]:
    """Impulses found in `planes` (N, H, W): their rates, values and number.

    ``{"amount", "salt_vs_pepper", "low", "high", "count"}``: pixels at the
    extremes `low`/`high` where their 8 neighbours' median is far from that
    extreme, as a rate among the pixels where they can be told apart
    (`amount`) and as a number (`count`). Fewer than
    ``max(10, min_share * planes.size)`` count as none (amount 0): chance
    finds a few in photon counts and clipped noise.
    """
    low, high = float(planes.min()), float(planes.max())
    none = {"amount": 0.0, "salt_vs_pepper": 0.5, "low": low, "high": high, "count": 0}
    if not high > low:
        return none
    least = max(_SP_MIN_IMPULSES, min_share * planes.size)
    if int(np.count_nonzero(planes == high)) + int(np.count_nonzero(planes == low)) < least:
        # impulses sit at the extremes: too few pixels there to reach `least` (the
        # usual noisy image, where one pixel holds each extreme), so the answer
        # is none without the two neighbourhood filters below
        return none
    # the 8 neighbours: the pixel's own value is not in its median
    (median,) = ring_ranks(planes, (4,))  # ndimage.median_filter's rank for 8 values
    # impulses are independent of the image: their rate is measured where they can
    # be told apart, i.e. where the neighbours' median is far from the extreme value
    # (by a margin that grows with the local spread, so that the zeros of low
    # photon counts or the extremes of quantised noise are not taken for impulses;
    # the 75th percentile of deviations ignores up to a quarter of impulses)
    deviation = np.abs(planes - median)
    (spread,) = ring_ranks(deviation, (6,))  # ndimage.percentile_filter's 75th of 8
    found = _impulse_rates(planes, median, spread, least)
    if found["amount"] >= DENSE_IMPULSES and found["count"] >= DENSE_SHARE * planes.size:
        # dense impulses: the neighbours' deviations are measured from medians that
        # hold the pixel itself, so an impulse widened its own margin and was dropped
        # more often than the pixels it is counted among (salt alone at 20, 30 and 50 %
        # read 16, 20 and 22 %). Measured again with the spread of the 8 pixels two
        # away (each plane's four interleaved sub-grids), which the pixel does not
        # reach. Not below, nor for a rate found on fewer than DENSE_SHARE of the
        # pixels: there, it took the zeros of one-photon spots for pepper (rates of a
        # third from 0.02-0.03 % of the pixels; salt alone at 50 % is 0.37 %).
        for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
            sub = np.ascontiguousarray(deviation[:, dy::2, dx::2])
            (spread[:, dy::2, dx::2],) = ring_ranks(sub, (6,))
        again = _impulse_rates(planes, median, spread, least)
        if again["count"]:
            found = again
    return found


#: From this rate of impulses on, found on at least DENSE_SHARE of the pixels, they are
#: counted with the spread of the pixels two away (:func:`impulse_count`)
DENSE_IMPULSES = 0.05
DENSE_SHARE = 1e-3


def _impulse_rates(planes, median, spread, least) -> dict[str, Any]:
    """:func:`impulse_count`'s record for a spread (the margins' local scale)."""
    low, high = float(planes.min()), float(planes.max())
    margin = 0.05 * (high - low) + 6 * np.maximum(spread, _quantum(planes))
    below, above = median < high - margin, median > low + margin
    salt, pepper = int(np.sum(planes[below] == high)), int(np.sum(planes[above] == low))
    if salt + pepper < least:
        # too few to be told from chance: a photon-count image's few bright
        # neighbourhoods (or one dark pixel among them) gave rates of 0.3-4 %
        # from one or two zeros; Gaussian noise of 75/255 clipped to [0, 1]
        # (whole regions at 0 or 1, where the spread is 0) 0.47 % from 14
        # pixels of 262,144
        salt = pepper = 0
    p_salt = salt / below.sum() if below.any() else 0.0
    p_pepper = pepper / above.sum() if above.any() else 0.0
    amount = min(p_salt + p_pepper, 1.0)
    ratio = p_salt / (p_salt + p_pepper) if amount > 0 else 0.5
    return {
        "amount": amount,
        "salt_vs_pepper": ratio,
        "low": low,
        "high": high,
        "count": salt + pepper,
    }


# ---------------------------------------------------------------- public


def estimate_noise(
    image: Any,
    model: str = "auto",
    *,
    offset: float | None = None,
    channel_axis: int | None = None,
    impulses: bool = True,
) -> dict[str, Any]:
    """Estimate the noise of an image, as keyword arguments for :func:`synthesize`.

    Parameters
    ----------
    image : (..., M, N) ndarray, torch.Tensor, dask or zarr array
        A noisy image of any real dtype, at least 16x16 pixels. Every plane
        of the two last axes (Y, X) is used (up to 4 M pixels, whole planes spread over
        the planes); 3D stacks, time series and channels are pooled. Of a
        dask or zarr array only those planes are read, and of a plane over
        4 M pixels its central 2048 x 2048 crop.
    model : {"auto", "gaussian", "poisson", "poisson-gaussian", \
"salt-and-pepper", "speckle"}, optional
        The noise model to fit; ``"auto"`` picks one (see Notes).
    offset : float, optional
        The camera offset (bias, pedestal) in the image's units, for the
        ``"poisson-gaussian"`` model. If None it is inferred (see Notes).
    channel_axis : int, optional
        Axis of channels (e.g. -1 for RGB), so that the two last axes are
        spatial.
    impulses : bool, optional
        With ``model="auto"``, whether salt-and-pepper noise is considered
        (True). Its test (two 3x3 median filters) takes most of the time;
        False skips it for images known to have no impulses.

    Returns
    -------
    params : dict
        ``{"noise": model, **parameters}`` such that ``synthesize(clean,
        **params)`` adds noise like the image's to a clean image in the
        same intensity units. Values are Python floats:

        - gaussian: ``sigma``;
        - poisson: ``gain`` (= peak photons per unit intensity);
        - poisson-gaussian: ``gain``, ``offset``, ``read_noise``;
        - salt-and-pepper: ``amount``, ``salt_vs_pepper``, ``low``, ``high``;
        - speckle: ``sigma``.

    Raises
    ------
    ValueError
        An unknown model, an image smaller than 16x16, complex or
        non-finite values, an offset that is not finite.
    TypeError
        A non-numeric image.

    Notes
    -----
    - Gaussian: ``sigma = median(|HH|) / 0.6745`` of the finest diagonal
      Haar coefficients, the robust estimator of Donoho and Johnstone [1]_,
      over the smooth 2x2 blocks that the noise level function is measured
      on (their horizontal and vertical detail at most 1.5 times what the
      noise explains, found in three passes), so that texture adds little:
      on 512² photos with sigma 5/255, 4-5 % too high instead of 17-40 %
      over all blocks (fine grass-like texture at the noise's scale still
      adds more).
    - Signal-dependent noise: the noise level function (variance against
      local mean over smooth regions, :func:`noise_level_function`) is
      fitted by ``var = a * mean + b`` as in Foi et al. [2]_:
      ``gain = 1 / a``. For ``"poisson"`` the line goes through the origin.
      For ``"poisson-gaussian"``, ``b = (read_noise / gain)**2 - offset /
      gain``; the offset cannot be told apart from the read noise by the
      noise alone, so if `offset` is None it is 0 when ``b >= 0``, and
      otherwise the darkest level of the image (assumed to hold no signal),
      and ``read_noise = gain * sqrt(a * offset + b)``. `synthesize` treats
      its input as the signal above the offset: to re-create a camera image
      from a clean image that includes the offset, pass ``clean - offset``.
    - Photon counts (non-negative multiples of one step with at least three
      positive values, :func:`photon_step`): one photon adds at least the
      10th smallest positive value, so a pure Poisson slope above it (by
      more than half a step) is lowered to it, and where no level above zero
      could be measured (sparse spots on black: every block above zero is an
      edge) the noise is Poisson of one photon per step, not a Gaussian
      sigma below half a step.
    - ``"auto"`` on smooth blocks whose levels span less than one noise
      standard deviation (a flat background, spots on it): the growth of
      the noise cannot be measured, only its level, so counts read as
      Poisson through the origin and other data as Gaussian.
    - Salt-and-pepper: the rate of pixels at exactly the image's maximum
      (salt) or minimum (pepper) among pixels whose 8 neighbours' median is
      far from that value (by 5 % of the range plus 6 times the local spread
      of the neighbours, or of the data's quantisation step), where an
      impulse can be told apart from the image and its noise. Since
      impulses strike independently of the image, this rate is the
      `amount` (times `salt_vs_pepper` or its complement). Fewer than 10
      such pixels in all count as none (chance, e.g. a zero count of a
      dim photon-counting image).
    - ``"auto"``: salt-and-pepper if at least 0.2 % of the pixels are such
      impulses; else Gaussian if the fitted variance changes by less than
      15 % across the image's levels; else Poisson if the line passes
      through the origin (``b`` within two standard errors or 2 % of the
      variance at the median level); else Poisson-Gaussian. Speckle is only
      fitted on request (``var = sigma**2 * mean**2``).

    The estimates assume that the noise is independent from pixel to
    pixel; blur or denoising after the noise (e.g. in a camera's processing)
    lowers them.

    References
    ----------
    .. [1] D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by
           wavelet shrinkage", Biometrika 81(3), 425-455, 1994.
           :DOI:`10.1093/biomet/81.3.425`
    .. [2] A. Foi, M. Trimeche, V. Katkovnik and K. Egiazarian, "Practical
           Poissonian-Gaussian noise modeling and fitting for single-image
           raw-data", IEEE Trans. Image Process. 17(10), 1737-1754, 2008.
           :DOI:`10.1109/TIP.2008.2001399`

    Examples
    --------
    >>> import numpy as np
    >>> from napari_deconvnet.core.noise import synthesize
    >>> clean = np.tile(np.linspace(0.2, 0.8, 128), (128, 1))
    >>> noisy = synthesize(clean, "gaussian", sigma=0.05, seed=0)
    >>> params = estimate_noise(noisy)
    >>> params["noise"], round(params["sigma"], 2)
    ('gaussian', 0.05)
    >>> again = synthesize(clean, seed=1, **params)
    """
    return _estimate(image, model, offset, channel_axis, impulses)


def _estimate(
    image: Any,
    model: str,
    offset: float | None,
    channel_axis: int | None,
    impulses: bool,
    one_level: bool = True,
) -> dict[str, Any]:
    """:func:`estimate_noise`; `one_level` False fits a line even where the smooth blocks
    span less than one noise deviation of levels (:func:`_one_level`), as before
    2026-12-05 (the impulse switch's constants were chosen with those lines)."""
    if not isinstance(model, str) or model.lower() not in ESTIMATION_MODELS:
        raise ValueError(f"unknown noise model {model!r}; accepted names are {ESTIMATION_MODELS}")
    model = model.lower()
    if offset is not None:
        try:
            offset = float(offset)
        except (TypeError, ValueError):
            raise TypeError(f"offset must be a number or None, got {offset!r}") from None
        if not np.isfinite(offset):
            raise ValueError(f"offset must be finite, got {offset!r}")
    planes = _planes(image, channel_axis)

    if model == "salt-and-pepper" or (model == "auto" and impulses):
        sp = _salt_and_pepper(planes)
        if model == "salt-and-pepper" or sp["amount"] >= SP_MIN_FRACTION:
            return {"noise": "salt-and-pepper", **sp}

    coef = _haar(planes)
    live = live_blocks(coef)  # constant areas (padding, masks) carry no noise
    hot = _outlier_blocks(planes)  # nor do a camera's hot pixels of any value
    if hot is not None:
        live = ~hot if live is None else live & ~hot
    clipped = _clipped_noise(planes)  # nor pixels clipped at a floor or ceiling, in full
    if clipped is not None:
        live = ~clipped if live is None else live & ~clipped
    if live is not None and live.sum() < _MIN_BIN:
        live = None  # (all but constant: measured as before)
    nlf, smooth = _nlf(coef, live)
    # Gaussian: robust over the smooth blocks (all of them if too few), where
    # texture adds least to the finest coefficients
    everywhere = coef["hh"] if live is None else coef["hh"][live]
    quantum = _quantum(planes)
    gaussian = {
        "noise": "gaussian",
        "sigma": _mad_sigma(
            coef["hh"][smooth] if smooth.sum() >= _MIN_BIN else everywhere, quantum
        ),
    }
    if model == "gaussian":
        return gaussian
    # one photon's value, if the data are counts (a pass over them: once per estimate)
    step = _photon_step(planes, quantum) if model in ("auto", "poisson") else None
    mean, variance, count = nlf["mean"], nlf["variance"], nlf["count"]
    if mean.size < 3 or model == "auto" and np.ptp(mean) <= 0:
        if model == "auto":
            return _counts_if_unmeasured(gaussian, step, mean, variance)
        raise ValueError(
            f"cannot fit a {model!r} noise model: the image has too few smooth pixels at "
            "distinct intensity levels; use a larger image or model='gaussian'"
        )
    lo, mid, hi = np.percentile(mean, [5, 50, 95])
    deviation = np.sqrt(max(float(np.median(variance)), 0.0))  # the noise's, typically
    # (Poisson: at least about one photon; speckle: a deviation up to twice the level,
    # fully developed speckle's is the level itself)
    above = deviation if model == "poisson" else 0.5 * deviation
    if model in ("poisson", "speckle") and hi - lo < deviation and not lo > above:
        # one level (a flat field) gives the line through the origin only where that
        # level lies clearly above zero: a dark frame around 0 read as speckle of 50
        # (review); one deviation above zero refused fully developed speckle, whose
        # deviation is its level (review)
        raise ValueError(
            f"cannot fit a {model!r} noise model: the image's intensities span less than "
            f"one noise standard deviation, at a level ({lo:.4g} to {hi:.4g}) not clearly "
            "above zero, where the noise cannot be told to grow with the intensity; use "
            "a brighter flat field, an image with more contrast, or model='gaussian'"
        )
    if model == "poisson-gaussian" and hi - lo < deviation:
        # (a line with an intercept needs levels; Poisson and speckle, lines through
        # the origin, are fitted on one: a flat field, the camera's gain calibration,
        # was refused for them while model="auto" read it as Poisson; session 73)
        raise ValueError(
            f"cannot fit a {model!r} noise model: the image's intensities span less than one "
            "noise standard deviation, too little to measure how the noise grows with the "
            "intensity; use an image with more contrast or model='gaussian'"
        )
    if one_level and model == "auto":
        # counts: bins whose variance grows faster than shot noise can are objects'
        # flanks, not levels of the noise (spots over a background)
        level = ~_object_flanks(mean, variance, step)
        if np.ptp(mean[level]) < deviation:
            kept = (mean[level], variance[level], count[level])
            return _one_level(gaussian, step, quantum, *kept)
    if model in ("poisson", "speckle") and not hi > 0:
        raise ValueError(
            f"cannot fit a {model!r} noise model: the image's smooth areas lie at or below "
            f"zero (95th percentile of their levels {hi:.4g}), where {model} noise grows "
            "from zero with the intensity; for data on a camera offset use "
            "model='poisson-gaussian', else model='gaussian'"
        )
    if model == "speckle":
        a, _, _ = _fit_line(mean**2, variance, count, through_origin=True)
        return {"noise": "speckle", "sigma": float(np.sqrt(max(a, 0.0)))}
    if model == "poisson":
        a, _, _ = _fit_line(mean, variance, count, through_origin=True)
        return {"noise": "poisson", "gain": _gain(_within_photon_step(a, step, quantum))}

    a, b, se_b = _fit_line(mean, variance, count)
    if model == "auto":
        v_mid = a * mid + b
        if v_mid <= 0:  # (the median level unmeasured: e.g. a black majority)
            return _counts_if_unmeasured(gaussian, step, mean, variance)
        if a <= 0 or a * (hi - lo) < _SIGNAL_DEPENDENCE * v_mid:
            return gaussian
        if abs(b) <= max(2 * se_b, 0.02 * v_mid):
            a0, _, _ = _fit_line(mean, variance, count, through_origin=True)
            if a0 > 0:  # (not so when the levels are far below zero: Poisson-Gaussian)
                return {"noise": "poisson", "gain": _gain(_within_photon_step(a0, step, quantum))}
    if a <= 0:
        raise ValueError(
            "the noise does not grow with the intensity, so it has no Poisson part; "
            "use model='gaussian'"
        )
    if offset is None:
        offset = 0.0 if b >= 0 else max(float(mean[0]), -b / a)
    read_variance = max(a * offset + b, 0.0)
    gain = _gain(a)
    return {
        "noise": "poisson-gaussian",
        "gain": gain,
        "offset": float(offset),
        "read_noise": float(gain * np.sqrt(read_variance)),
    }


def diagonal_mad_sigma(image: Any, *, grouped: bool = True) -> float:
    """Donoho and Johnstone's robust sigma over *all* finest diagonal Haar coefficients.

    Texture and the brighter parts of signal-dependent noise count too, so
    this is nearer the image's average noise level than the smooth-block
    sigma of :func:`estimate_noise` (which measures the noise itself): what
    the Wiener filter's automatic balance weighs, and what the shipped
    ``deconv-3d`` was trained with.

    `grouped` (default): on discrete data, the median interpolated within the
    lattice step (see :func:`_mad_sigma`). ``False`` is the plain median,
    snapped to the lattice: what the shipped deconvolution models' Wiener
    channel was computed with in training, which they keep at inference.
    """
    planes = _planes(image, None, min_side=2)  # (the caller counts its blocks)
    coef = _haar(planes)
    hh = coef["hh"]
    live = live_blocks(coef)  # constant areas (padding, masks) carry no noise
    if live is not None and live.sum() >= _MIN_BIN:
        hh = hh[live]
    return _mad_sigma(hh, _quantum(planes) if grouped else 0.0)


def live_pixels(image: Any) -> np.ndarray | None:
    """Pixels of `image` outside exactly constant areas (:func:`live_blocks`), or None.

    Shaped like `image`; None when it has no such area, or nothing but them.
    """
    planes = np.asarray(image, np.float64).reshape(-1, *np.shape(image)[-2:])
    if min(planes.shape[-2:]) < 2:
        return None
    live = live_blocks(_haar(planes))
    if live is None or live.sum() < _MIN_BIN:
        return None
    mask = np.repeat(np.repeat(live, 2, axis=1), 2, axis=2)
    # an odd last row or column goes with the blocks beside it
    extra = ((0, 0), (0, planes.shape[1] - mask.shape[1]), (0, planes.shape[2] - mask.shape[2]))
    return np.pad(mask, extra, mode="edge").reshape(np.shape(image))


#: Patch side, and the share of a pure-noise patch's texture strengths below the
#: selection threshold, of :func:`weak_texture_noise` (Liu, Tanaka and Okutomi's values)
WEAK_TEXTURE_PATCH = 7
_WEAK_TEXTURE_CONFIDENCE = 1 - 1e-6
_WEAK_TEXTURE_PASSES = 3
_WEAK_TEXTURE_MIN = 10  # selected patches needed, per patch pixel
_WEAK_TEXTURE_SAMPLE = 8192  # windows a covariance is computed from, at most (evenly spread)


def _box_sums(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Sums of `values` ``(P, H, W)`` over every ``rows x cols`` window (top-left indexed)."""
    c = np.zeros((values.shape[0], values.shape[1] + 1, values.shape[2] + 1))
    np.cumsum(np.cumsum(values, axis=1), axis=2, out=c[:, 1:, 1:])
    return c[:, rows:, cols:] - c[:, :-rows, cols:] - c[:, rows:, :-cols] + c[:, :-rows, :-cols]


def _patch_covariance_floor(planes: np.ndarray, where: np.ndarray, side: int) -> float:
    """Smallest eigenvalue of the covariance of the patches at `where` (their top-left
    corners, a boolean ``(P, H - side + 1, W - side + 1)`` mask), from at most
    :data:`_WEAK_TEXTURE_SAMPLE` of them, evenly spread over the selection."""
    windows = np.lib.stride_tricks.sliding_window_view(planes, (side, side), axis=(1, 2))
    index = np.nonzero(where)
    step = max(1, math.ceil(index[0].size / _WEAK_TEXTURE_SAMPLE))
    x = windows[tuple(i[::step] for i in index)]
    r = side * side
    x = x.reshape(-1, r)
    n = x.shape[0]
    x = x - x.mean(axis=0)
    floor = float(np.linalg.eigvalsh(x.T @ x / n)[0])
    # the smallest eigenvalue of n samples of white noise sits at the Marchenko-Pastur
    # edge, (1 - sqrt(r / n))**2 times the variance: undone
    return floor / (1 - math.sqrt(r / n)) ** 2


def weak_texture_noise(image: Any, *, patch: int = WEAK_TEXTURE_PATCH) -> dict[str, Any] | None:
    """The noise variance measured on the image's weakest-textured patches, or None.

    Liu, Tanaka and Okutomi's estimator (*Single-image noise level estimation
    for blind denoising*, IEEE TIP 2013): the variance of white noise in
    ``patch x patch`` windows is the smallest eigenvalue of the windows'
    covariance, as long as the signal leaves one direction of patch space
    empty (divided by the Marchenko-Pastur edge ``(1 - sqrt(patch**2 / n))**2``,
    where the smallest eigenvalue of ``n`` windows of pure noise lies).
    Texture fills them all, so the windows are first selected by their
    texture strength (the summed squared differences of neighbours),
    kept where it stays below what noise of the current estimate alone would
    give with probability ``1 - 1e-6`` (a gamma law), and the estimate is
    remade from those, three times. On nearly clean photos it reads the
    noise where the wavelet and smooth-block estimates of
    :func:`estimate_noise` read texture (the coins photo with noise of 1.04
    grey levels: 1.12 against 3.9).

    For noise that grows with the intensity it measures the average
    variance of the selected windows, so compare it with a variance law's
    mean over those windows (``"where"``). Windows holding the image's
    minimum or maximum are left out (clipped pixels carry no noise).

    Parameters
    ----------
    image : array
        Planes in the last two axes (any leading axes are more planes).
    patch : int
        Window side.

    Returns
    -------
    dict or None
        ``variance`` (the estimate, in the image's units squared), ``where``
        (boolean ``(P, H - patch + 1, W - patch + 1)``: the selected windows'
        top-left corners, over the planes ``(P, H, W)``) and ``patches``
        (how many). None when fewer than ``10 * patch**2`` windows are
        unclipped. When fewer than that look like noise of the current
        estimate (noise far below the texture), the ``10 * patch**2``
        weakest windows are used once more: an upper bound, since texture
        only adds to their covariance.
    """
    from scipy.special import gammaincinv  # (scipy.stats costs a second to import)

    planes = real_array(image)
    if planes.ndim < 2 or min(planes.shape[-2:]) < 2 * patch:
        return None
    planes = planes.reshape(-1, *planes.shape[-2:]).astype(np.float64)
    check_finite(planes)
    side = int(patch)
    # per window: squared differences of horizontal and of vertical neighbours inside it
    strength = _box_sums(np.diff(planes, axis=2) ** 2, side, side - 1)
    strength += _box_sums(np.diff(planes, axis=1) ** 2, side - 1, side)
    lo, hi = planes.min(), planes.max()
    clipped = _box_sums(((planes == lo) | (planes == hi)).astype(np.float64), side, side)
    usable = clipped < 0.5
    needed = _WEAK_TEXTURE_MIN * side * side
    if usable.sum() < needed:
        return None
    # a pure-noise window's strength is variance * (a gamma law of mean 2 * pairs)
    pairs = 2 * side * (side - 1)
    dims = side * side
    threshold = gammaincinv(dims / 2, _WEAK_TEXTURE_CONFIDENCE) * 4 * pairs / dims
    variance = _patch_covariance_floor(planes, usable, side)
    where = usable
    for _ in range(_WEAK_TEXTURE_PASSES):
        where = usable & (strength < max(variance, 0.0) * threshold)
        if where.sum() < needed:
            # too few windows look like noise this weak: noise far below the
            # texture (a photo with noise of half a grey level). The weakest
            # windows still bound it from above (texture only adds), which is
            # what the caller needs; estimated once from them
            cut = np.partition(strength[usable], int(needed) - 1)[int(needed) - 1]
            where = usable & (strength <= cut)
            variance = _patch_covariance_floor(planes, where, side)
            break
        variance = _patch_covariance_floor(planes, where, side)
    return {"variance": max(variance, 0.0), "where": where, "patches": int(where.sum())}


#: Pixels below one photon's step that contradict a pure Poisson fit, at least
PHOTON_STEP_WITNESSES = 10
#: One level whose smallest values (:func:`photon_step`) lie this many noise deviations
#: above zero is not read as counts through the origin (:func:`_one_level`)
FLOOR_DEVIATIONS = 3.0


def photon_step(planes: np.ndarray) -> float | None:
    """The value one photon adds, if `planes` look like counts: non-negative,
    discrete (:func:`_quantum`) and with at least three positive values, the
    :data:`PHOTON_STEP_WITNESSES`-th smallest positive value; else None."""
    return _photon_step(planes, _quantum(planes))


def _photon_step(planes: np.ndarray, quantum: float) -> float | None:
    """:func:`photon_step`, given the data's :func:`_quantum`."""
    if not quantum > 0:
        return None
    flat = planes.reshape(-1)
    if float(flat.min()) < 0:
        return None
    positive = flat[flat > 0]
    if positive.size < PHOTON_STEP_WITNESSES:
        return None
    if np.unique(positive[:: max(1, positive.size // 65536)]).size < 3:
        return None  # two levels (a mask, a binary image): no counts
    return float(np.partition(positive, PHOTON_STEP_WITNESSES - 1)[PHOTON_STEP_WITNESSES - 1])


def _within_photon_step(a: float, step: float | None, quantum: float) -> float:
    """A pure Poisson slope `a` (variance per unit of intensity), lowered to one
    photon's step where the data show values that a step of `a` cannot make.

    Under pure Poisson noise of slope ``a`` every photon adds ``a`` to a pixel,
    so counts hold no positive value below ``a`` (half a quantum of rounding
    allowed). A near-empty photon-counting image (sparse spots on a black
    background: 97 % zeros) has no smooth areas above zero, so the noise level
    function is measured on the spots' edges, and their texture read as noise:
    integer counts of 300-photon spots gave a slope of 13 (gain 0.075), 13
    photons' worth per count, though a tenth of the pixels held 1 to 12. The
    blind denoiser, told the noise was 3.7 times its level, lost 7 dB against
    its input. Where :data:`PHOTON_STEP_WITNESSES` positive values lie below
    such a step, the step is that smallest value (`step`, :func:`photon_step`;
    None for data that are not counts, left as fitted; `quantum`: the data's
    :func:`_quantum`).
    """
    if not a > 0 or step is None or a <= step + 0.5 * quantum:
        return a
    return step


def _object_flanks(mean: np.ndarray, variance: np.ndarray, step: float | None) -> np.ndarray:
    """Level bins of counts whose variance grows faster than shot noise can: the flanks
    of objects over a background, where texture, not noise, fills the blocks.

    Under Poisson (or Poisson-Gaussian) noise every photon adds `step`
    (:func:`photon_step`, an upper bound on one photon's value) to a pixel, so
    from the bins at and below the median level ``m0`` (their median level
    ``ref`` and variance ``v0``) the variance rises by at most ``step`` per unit
    of level. A bin above ``m0`` whose variance exceeds ``_FLANK_SLACK * v0 +
    step * (level - ref)`` is flagged (the slack covers the scatter of a bin's
    variance, about 15 %). Sub-pixel spots of 1000 photons over 100 photons'
    background: the top bins (levels 106-120, variances 1,300-4,500 where the
    background reads 100) are flanks; a line through them read Poisson-Gaussian
    noise of gain 0.01-0.05. The bound is loose where the step (the 10th
    smallest count) is the background's low tail, not one photon (70 on a
    100-photon background): there a flank of 8 times the background's variance
    can pass. None (not counts) flags nothing.
    """
    flanks = np.zeros(mean.shape, bool)
    if step is None or mean.size < 3:
        return flanks
    m0 = float(np.median(mean))
    low = mean <= m0  # the reference: the bins up to the median level, their medians
    ref, v0 = float(np.median(mean[low])), float(np.median(variance[low]))
    return (mean > m0) & (variance > _FLANK_SLACK * v0 + step * (mean - ref))


def _one_level(
    gaussian: dict[str, Any],
    step: float | None,
    quantum: float,
    mean: Any,
    variance: Any,
    count: Any,
) -> dict[str, Any]:
    """The noise of an image whose smooth blocks span less than one noise standard
    deviation of levels: how the noise grows cannot be measured, only its level.

    Counts (:func:`photon_step`) are Poisson through the origin there (at
    most one photon per step); anything else is `gaussian`, and so are counts
    whose least values lie more than :data:`FLOOR_DEVIATIONS` noise
    deviations (and steps of the data's lattice) above zero: one level cannot
    tell Poisson counts far from zero from a camera's offset with read noise,
    whose variance there is the same. Read as counts through the origin, dim
    sCMOS frames (100 ADU of offset, 2-5 photons) were Poisson of gain 1.2-284
    where the truth was 0.33-2 with an offset of 100, and ``dn.adapt`` trained
    on pairs 8 times brighter, noiseless in the dark: 1.1-3.5 dB lost while
    its synthetic validation improved (session 71). Pure counts over a
    background of more than about 40 photons with no darker pixel read as
    Gaussian at their level too. Sparse spots over a flat background: every
    block above the background is a spot's flank, and a line through those
    read counts over 10-100 photons' background as Poisson-Gaussian noise of
    gain 0.01-0.3 with the background as the camera's offset; the bins at and
    below the median level alone give the slope.
    """
    if step is None:
        return gaussian
    deviation = np.sqrt(max(float(np.median(variance)), 0.0))
    if step > FLOOR_DEVIATIONS * max(deviation, quantum):  # (black frames: no deviation)
        # no value near zero: a Poisson line's origin is never seen, and a camera's
        # offset (100 ADU under a few photons) reads as counts the same (session 71)
        return gaussian
    # the bins up to the median level: flanks of objects only add variance above it
    low = mean <= np.median(mean)
    a0, _, _ = _fit_line(mean[low], variance[low], count[low], through_origin=True)
    if not a0 > 0:  # (black up to the median level: every level above it a flank)
        return _counts_if_unmeasured(gaussian, step, mean, variance)
    return {"noise": "poisson", "gain": _gain(_within_photon_step(a0, step, quantum))}


def _counts_if_unmeasured(
    gaussian: dict[str, Any], step: float | None, mean: Any = None, variance: Any = None
) -> dict[str, Any]:
    """`gaussian`, unless the noise level function had no level above zero to measure
    on and the data look like counts: then Poisson noise of one photon per
    :func:`photon_step`.

    Sparse spots on a black background whose every block above zero is an
    object's edge (or taken for hot pixels) leave only the black blocks, where
    counts are exactly zero and the Gaussian sigma reads 0: "noiseless", for
    data whose positive values are counts of a few hundred photons. Where the
    noise level function's bins (`mean`, `variance`) do hold levels above zero
    and their blocks vary less than a quarter of one step's variance (counts of
    one photon and more vary by at least a step squared), the image is noiseless,
    not unmeasured (at three levels at least, nine in ten of them so flat: one
    constant area, a scale bar beside counted spots, does not make an image
    noiseless): a clean ramp or a blurred phantom read as Poisson noise of
    one photon per grey level (std 47 grey levels on a clean 8-bit phantom whose
    background was the 10th smallest value, session 69).
    """
    if step is None or gaussian["sigma"] >= 0.5 * step:
        return gaussian
    if mean is not None and variance is not None:
        above = np.asarray(mean) > 0.5 * step
        # at three levels at least: one constant area above zero (a burned-in scale bar
        # beside photon-counted spots on black) is no sign of a noiseless image
        if above.sum() >= 3 and np.percentile(np.asarray(variance)[above], 90) < 0.25 * step**2:
            return gaussian
    return {"noise": "poisson", "gain": _gain(step)}


def _gain(a: float) -> float:
    if not a > 0:
        raise ValueError(
            "the noise does not grow with the intensity, so it has no Poisson part; "
            "use model='gaussian'"
        )
    return float(1.0 / a)


def variance_line(params: dict[str, Any]) -> tuple[float, float]:
    """``(a, b)`` such that the noise variance at mean intensity ``m`` is ``a * m + b``.

    Parameters
    ----------
    params : dict
        Noise parameters as :func:`~.noise_estimation.estimate_noise` returns
        them (``{"noise": "gaussian", "sigma": ...}``, ``"poisson"`` with
        ``gain``, ``"poisson-gaussian"`` with ``gain``, ``offset`` and
        ``read_noise``), in the image's intensity units.

    Raises
    ------
    ValueError
        A noise model whose variance is not a line in the intensity
        (salt-and-pepper, speckle) or parameters out of range.
    """
    if not isinstance(params, dict):
        raise TypeError(
            f"noise parameters must be a dict such as estimate_noise returns, got "
            f"{type(params).__name__}"
        )
    name = str(params.get("noise", params.get("model", ""))).lower()
    if name not in LINE_NOISE_MODELS:
        raise ValueError(
            f"a variance line needs noise whose variance is a line in the "
            f"intensity ({', '.join(LINE_NOISE_MODELS)}), got {name or 'no model'!r}"
        )
    for key, strict in (("sigma", False), ("gain", True), ("peak", True), ("read_noise", False)):
        value = params.get(key)
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name!r} noise parameter {key}={value!r} is not a number") from None
        if not math.isfinite(number) or number < 0 or (strict and number == 0):
            # a negative sigma or read noise was squared into a valid line; a gain of 0
            # said "float division by zero"
            raise ValueError(
                f"{name!r} noise parameter {key}={value!r} must be a finite number "
                f"{'> 0' if strict else '>= 0'}"
            )
    need = (
        "sigma"
        if name == "gaussian"
        else "gain"
        if name in ("poisson", "poisson-gaussian")
        else None
    )
    if (
        need is not None
        and params.get(need) is None
        and (need == "sigma" or params.get("peak") is None)
    ):
        # (it said "float() argument must be a string or a real number, not 'NoneType'")
        raise ValueError(
            f"{name!r} noise needs its {need} (e.g. {{'noise': {name!r}, {need!r}: ...}}, as "
            f"estimate_noise returns it); got {params!r}"
        )
    try:
        if name == "gaussian":
            a, b = 0.0, float(params["sigma"]) ** 2
        elif name == "poisson":
            a, b = 1.0 / float(params.get("gain", params.get("peak"))), 0.0
        else:  # (peak: the gain's alias, as synthesize takes it; it was refused here)
            gain = float(
                params["gain"] if "gain" in params or "peak" not in params else params["peak"]
            )
            a = 1.0 / gain
            b = (float(params.get("read_noise", 0.0)) / gain) ** 2 - float(
                params.get("offset", 0.0)
            ) / gain
    except (KeyError, TypeError, ZeroDivisionError) as err:
        raise ValueError(f"incomplete {name!r} noise parameters {params!r}: {err}") from None
    if not (math.isfinite(a) and math.isfinite(b) and a >= 0):
        raise ValueError(f"noise parameters {params!r} give no valid variance line")
    return a, b


#: :func:`pairs_look_blurred`'s threshold on :func:`blur_correlation`. Measured on
#: the camera photo: noise of any kind (white Gaussian 0.02 and 0.1, Poisson at 20
#: photons, spatially correlated) gives |c| < 0.01; a Gaussian blur of sigma 0.7 to
#: 2 px or an Airy PSF gives 0.28 (sigma 2, noise 0.1) to 0.85.
BLURRED_CORRELATION = 0.15


def blur_correlation(degraded: Any, clean: Any, max_side: int = 512) -> float:
    """How much of what a degradation changed follows the clean image's Laplacian.

    A blur moves every pixel toward its neighbours' mean: to first order
    ``blurred - clean = k * laplacian(clean)`` with ``k > 0``. Noise, white or
    correlated, is independent of the image. This is the correlation of the
    residual ``degraded - (a * clean + b)`` (``a``, ``b`` fitted by least
    squares, so that an offset or a gain changes nothing) with the
    Laplacian of ``clean``, on a central crop of at most `max_side` pixels
    per axis of the middle plane (the last two axes): near 1 for a blur,
    near 0 for noise alone, between for blur and noise.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> clean = ndimage.zoom(np.random.default_rng(0).random((16, 16)), 8)
    >>> blur_correlation(ndimage.gaussian_filter(clean, 2), clean) > 0.5
    True
    """
    from scipy import ndimage

    shape_x, shape_y = tuple(np.shape(degraded)), tuple(np.shape(clean))
    if shape_x != shape_y or len(shape_x) < 2:
        raise ValueError(
            f"a training pair needs two images of one shape (2D or more), got {shape_x} "
            f"and {shape_y}"
        )
    # the crop first, then numpy: a dask or zarr array computes that crop only
    middle = tuple(n // 2 for n in shape_x[:-2])
    crop = tuple(
        slice(max((n - max_side) // 2, 0), max((n - max_side) // 2, 0) + max_side)
        for n in shape_x[-2:]
    )
    x = np.asarray(degraded[middle + crop], np.float64)
    y = np.asarray(clean[middle + crop], np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("the pair contains NaN or infinite values; replace them first")
    design = np.stack([y.ravel(), np.ones(y.size)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, x.ravel(), rcond=None)
    residual = x - (a * y + b)
    if np.sqrt(np.mean(residual * residual)) <= 1e-6 * max(float(np.std(x)), 1e-30):
        # the same image up to a gain and an offset: neither blur nor noise. What is
        # left is rounding, which can follow the edges (0.9 for a binary mask)
        return 0.0
    lap = ndimage.laplace(y)
    residual -= residual.mean()
    lap -= lap.mean()
    norm = math.sqrt(float((residual * residual).sum()) * float((lap * lap).sum()))
    return float((residual * lap).sum() / norm) if norm > 0 else 0.0


def pairs_look_blurred(degraded: Any, clean: Any) -> bool:
    """Whether a training pair is a blur (with or without noise), not noise alone.

    See :func:`blur_correlation` and :data:`BLURRED_CORRELATION`.
    """
    return blur_correlation(degraded, clean) > BLURRED_CORRELATION
