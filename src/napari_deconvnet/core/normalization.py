"""One place for the intensity statistics every restore path uses.

A model's file says how images are normalised before the network sees them
(``config.normalization``): ``{"method": "percentile", "low": 0.5, "high":
99.5}`` maps those percentiles of the image to 0 and 1; ``"fixed"`` uses an
``offset`` and a ``scale`` stored with the model; ``"none"`` passes values
through. The restored image is mapped back with the same numbers.

Where the percentiles come from:

- **In-memory data** (numpy): exact percentiles of every value. Values on a
  lattice (photon counts, integers: :func:`lattice`) are taken as spread
  over their steps (:func:`percentiles`): at a few photons per pixel the raw
  0.5th percentile is the exact zero most pixels share, which put the
  background where no training image had it.
- **Lazy data** (dask arrays, memory-mapped arrays, zarr and TIFF sources
  streamed by :func:`~napari_deconvnet.restore_to_zarr`): a documented, deterministic
  sample (:func:`sample_values`). At most :data:`SAMPLE_BLOCKS` chunks are
  read (more where the chunks are small: as many as hold ``SAMPLE_VALUES``
  values, at most ``WHOLE_BLOCKS * SAMPLE_BLOCKS`` and a quarter of them), spread over the array's
  chunks in C order by the golden ratio, and from each a regular grid of at most
  ``SAMPLE_VALUES / n_chunks`` values. An array of
  at most ``SAMPLE_VALUES`` values in at most ``WHOLE_BLOCKS * SAMPLE_BLOCKS``
  chunks, or of at most :data:`SMALL_WHOLE` values in any number of chunks,
  is used whole, so its statistics equal the in-memory ones. The
  sample depends on the chunking only; it is the same on every run and
  every machine.
- **Fixed statistics** from the user (``restore(..., normalization={"offset":
  o, "scale": s})``, as bioimage.io's ``fixed_dataset_statistics``): nothing
  is computed, and every block, worker and time point agrees by
  construction. :func:`~napari_deconvnet.compute_normalization` returns the statistics a
  restore would use, in that form, to be reused for other data.

The API (eager, lazy, streamed and distributed restores), the reader and
training all call these functions.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._validation import check_single_range, is_dask

__all__ = [
    "IMAGE_SAMPLE_BLOCKS",
    "IMAGE_SAMPLE_VALUES",
    "SAMPLE_BLOCKS",
    "SMALL_WHOLE",
    "SAMPLE_VALUES",
    "WHOLE_BLOCKS",
    "channel_statistics",
    "fixed_statistics",
    "image_sample_budget",
    "image_sample_plan",
    "image_statistics",
    "sample_offset_scale",
    "strided",
    "normalization_arrays",
    "offset_scale",
    "lattice",
    "percentile_range",
    "percentiles",
    "sample_values",
]

SAMPLE_VALUES = 1 << 22
SAMPLE_BLOCKS = 64
#: An image of at most its budget's values in at most this many times its budget's
#: chunks is read whole (:func:`image_sample_plan`): its statistics are exact
WHOLE_BLOCKS = 16
#: An array of at most this many values is read whole, in however many chunks (a
#: 2x17x33 volume in chunks of one value was read in 64 of its 1,122 values)
SMALL_WHOLE = 1 << 16
#: The least sample each image of a lazy stack gets (:func:`image_statistics`)
IMAGE_SAMPLE_VALUES = 1 << 16
IMAGE_SAMPLE_BLOCKS = 4


def sample_values(array: Any) -> np.ndarray:
    """The values a lazy (dask) `array`'s statistics are computed from, in its dtype
    (as the array in memory gives them: an integer image's lattice of step 1 is found
    in them, which float64 hid, and lazy statistics differed from eager ones by up to
    3% of the range on camera counts whose levels lie 2 or 3 apart).

    At most :data:`SAMPLE_BLOCKS` chunks (or, of chunks smaller than
    ``SAMPLE_VALUES / SAMPLE_BLOCKS`` values on average, as many as hold
    ``SAMPLE_VALUES`` values, at most ``WHOLE_BLOCKS * SAMPLE_BLOCKS`` and a quarter
    of the chunks), spread over the chunk grid in C order (the ``k``-th at the flat chunk index
    ``floor(frac(k * 0.618...) * n_chunks)``: evenly, and never in step with
    the grid's rows), and from each chunk every ``f``-th value along every
    axis, with ``f`` the smallest integer that keeps the chunk's share under
    ``SAMPLE_VALUES / n_chunks``.
    Only those chunks are read. An array of at most ``SAMPLE_VALUES`` values
    in at most ``WHOLE_BLOCKS * SAMPLE_BLOCKS`` chunks, or of at most
    :data:`SMALL_WHOLE` values, is read whole. A numpy
    array is returned whole (flattened).

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.arange(10, chunks=5)
    >>> sample_values(x).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    if not is_dask(array):
        return np.asarray(array).reshape(-1)
    # the same lazy array object asked twice (the reader's contrast limits, then
    # the restore's statistics) is read once. Keyed by the object, not by its
    # dask name: a name is a token of the graph, which for a file is its path,
    # so a rewritten file would have kept the statistics of its old content.
    key = id(array)
    with _SAMPLES_LOCK:
        entry = _SAMPLES.get(key)
    if entry is not None and entry[0]() is array:
        return entry[1]
    values = _read_sample(array)
    values.setflags(write=False)
    try:
        ref = weakref.ref(array, lambda _, key=key: _forget(key))
    except TypeError:  # an array type without weak references: not kept
        return values
    with _SAMPLES_LOCK:
        _SAMPLES[key] = (ref, values)
        while len(_SAMPLES) > _SAMPLE_CACHE:
            _SAMPLES.pop(next(iter(_SAMPLES)))
    return values


def _forget(key: int) -> None:
    with _SAMPLES_LOCK:
        entry = _SAMPLES.get(key)
        if entry is not None and entry[0]() is None:
            del _SAMPLES[key]


_SAMPLES: dict[int, tuple[weakref.ref, np.ndarray]] = {}
_SAMPLES_LOCK = threading.RLock()  # a weak reference callback may run inside it
_SAMPLE_CACHE = 8


def _read_sample(array: Any) -> np.ndarray:
    import dask

    values = dask.compute(*_sample_parts(array, SAMPLE_VALUES, SAMPLE_BLOCKS))
    return np.concatenate([np.asarray(v).reshape(-1) for v in values])


def _sample_parts(array: Any, n_values: int, n_blocks: int) -> list:
    """The lazy pieces of `array` its sample is made of (at most `n_blocks`
    chunks, evenly spaced, each strided to its share of `n_values`)."""
    return [
        strided(array.blocks[index], factor)
        for index, factor in image_sample_plan(array.chunks, n_values, n_blocks)
    ]


#: Values on a regular lattice of at most this many steps between their extremes
#: (counts, integers) get the percentiles of their dequantised distribution
LATTICE_STEPS = 1 << 16
_LATTICE_SAMPLE = 65536  # values looked at to find the lattice
_CHUNK = 1 << 22  # values binned at a time (bounds the temporary memory)


def lattice(values: Any) -> tuple[float, float] | None:
    """``(origin, step)`` when every value is ``origin + k * step`` (k = 0, 1, ...), else None.

    Photon counts, integers and anything stored in 8 or 16 bits: the step is
    the smallest gap between the distinct values of a regular sample of at
    most 65,536 of them (1 for integers when the sample suggests more but
    the data disagree), checked against every value. None for continuous
    data, constant data, or more than :data:`LATTICE_STEPS` steps between
    the extremes (there a step is a negligible part of the range).
    """
    x = np.asarray(values)
    if x.dtype == np.bool_:
        x = x.view(np.uint8)
    grid = _grid(x.reshape(-1))
    return None if grid is None else grid[:2]


def _grid(flat: np.ndarray) -> tuple[float, float, int] | None:
    """:func:`lattice` of flat values, with the number of steps it spans."""
    if flat.size < 2 or flat.dtype.kind not in "uif":
        return None
    sample = np.unique(flat[:: max(1, flat.size // _LATTICE_SAMPLE)].astype(np.float64))
    if sample.size < 2 or sample.size > max(2, flat.size // 4):
        return None
    origin, top = float(flat.min()), float(flat.max())
    if not (math.isfinite(origin) and math.isfinite(top)):  # (NaN reaches both)
        _check_finite(flat)  # its words: the image has NaN or infinite values
    gap = float(np.diff(sample).min())
    steps = [gap]
    if gap > 0 and top > origin:
        # the span pins the step: a gap between two stored values carries their
        # rounding (float32 counts divided by a gain: 0.04999998 for 0.05), which
        # thousands of steps up lands off the lattice (beads of 85 beside a scene
        # of 0.1: not found, and the zeros of a dim scene were not dequantised)
        steps.append((top - origin) / max(1, round((top - origin) / gap)))
    if flat.dtype.kind in "ui" and gap != 1.0:
        steps.append(1.0)
    for step in steps:
        if not step > 0 or (top - origin) / step > LATTICE_STEPS:
            continue
        k = (sample - origin) / step
        if np.abs(k - np.rint(k)).max() > 1e-3:
            continue
        if _on_lattice(flat, origin, step):
            return origin, step, int(round((top - origin) / step)) + 1
    return None


def _on_lattice(flat: np.ndarray, origin: float, step: float) -> bool:
    if flat.dtype.kind in "ui" and step == 1.0:
        return True
    for i in range(0, flat.size, _CHUNK):
        k = (flat[i : i + _CHUNK].astype(np.float64) - origin) / step
        if np.abs(k - np.rint(k)).max() > 1e-3:
            return False
    return True


def _lattice_counts(flat: np.ndarray, origin: float, step: float, n_bins: int) -> np.ndarray:
    counts = np.zeros(n_bins, np.int64)
    for i in range(0, flat.size, _CHUNK):
        part = flat[i : i + _CHUNK]
        if part.dtype.kind in "ui" and step == 1.0:
            k = part.astype(np.int64) - int(origin)
        else:
            k = np.rint((part.astype(np.float64) - origin) / step).astype(np.int64)
        counts += np.bincount(k, minlength=n_bins)[:n_bins]
    return counts


def percentiles(values: Any, qs: Sequence[float]) -> list[float]:
    """The `qs` percentiles of `values`, as every normalisation here takes them.

    Continuous data: :func:`numpy.percentile` (linear interpolation).
    Data on a lattice (:func:`lattice`: photon counts, integers): the
    percentiles of the values spread uniformly over their steps (value
    ``v`` over ``[v - step/2, v + step/2]``), the distribution the counts
    sample. At a few photons most pixels are exactly 0 and the 0.5th
    percentile of the raw counts is that 0: the network then saw the
    background's zeros at its own zero, which no training image with read
    noise put there, and darkened the image (a cells scene at 2 photons:
    19.1 dB and a mean of 0.08 for 0.19). Dequantised, the zeros sit half a
    count above it (25.8 dB). Between the extremes of data with many levels
    (8-bit photos, bright 16-bit images) the two differ by a small part of a
    step.
    """
    x = np.asarray(values)
    if x.dtype == np.bool_:
        x = x.view(np.uint8)
    grid = _grid(x.reshape(-1))
    if grid is None:
        return [float(v) for v in np.percentile(x, qs)]
    counts = _lattice_counts(x.reshape(-1), *grid)
    origin, step, _ = grid
    cum = np.cumsum(counts)
    n = int(cum[-1])
    out = []
    for q in qs:
        target = q / 100.0 * n
        k = min(int(np.searchsorted(cum, target, side="left")), counts.size - 1)
        while counts[k] == 0 and k + 1 < counts.size:  # a target on an empty step's edge
            k += 1
        before = int(cum[k - 1]) if k else 0
        out.append(origin + (k - 0.5 + (target - before) / counts[k]) * step)
    return out


def percentile_range(array: Any, low: float, high: float) -> tuple[float, float]:
    """The `low` and `high` percentiles of `array`: exact in memory, sampled for dask.

    Raises
    ------
    ValueError
        When the values (or the sample) contain NaN or infinite values.
    """
    if isinstance(array, np.memmap):  # never read a memory-mapped file whole
        import dask.array as da

        array = da.from_array(array, chunks="auto", asarray=True)
    if is_dask(array):
        values = sample_values(array)
    else:
        values = np.asarray(array)
    _check_finite(values)
    lo, hi = percentiles(values, [low, high])
    return float(lo), float(hi)


def _check_finite(values: np.ndarray) -> None:
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ValueError(
            "the image contains NaN or infinite values; replace them first "
            "(e.g. numpy.nan_to_num) - only finite values can be normalised"
        )
    check_single_range(values)


def offset_scale(array: Any, norm: dict[str, Any]) -> tuple[float, float]:
    """``(offset, scale)`` of a model's normalisation contract `norm` for `array`.

    ``(x - offset) / scale`` is what the network sees. When the two
    percentiles coincide (a few bright beads on an exactly flat background,
    which fill less than the top percentile), the scale is the largest
    distance from the offset to the image's minimum or maximum, so that the
    beads still span about one unit; only a constant image gets a scale of 1.
    """
    method = norm["method"]
    if method == "none":
        return 0.0, 1.0
    if method == "fixed":
        return float(norm.get("offset", 0.0)), float(norm.get("scale", 1.0))
    lo, hi = percentile_range(array, norm["low"], norm["high"])
    if hi > lo:
        return lo, hi - lo
    least, most = percentile_range(array, 0.0, 100.0)
    return _degenerate(lo, least, most)


def _degenerate(lo: float, least: float, most: float) -> tuple[float, float]:
    """Offset and scale when the two percentiles coincide (see :func:`offset_scale`)."""
    spread = max(most - lo, lo - least)
    return lo, (spread if spread > 0 else 1.0)


def image_sample_budget(n_images: int, array: Any = None) -> tuple[int, int]:
    """``(values, chunks)`` each of `n_images` lazy images samples (:func:`image_statistics`).

    With the lazy `array` they are part of: when the whole array is small
    enough to be read whole (at most :data:`SAMPLE_VALUES` values in at most
    ``WHOLE_BLOCKS * SAMPLE_BLOCKS`` chunks), the whole budget, so that
    :func:`image_sample_plan` reads every image whole and its statistics are
    exact, however many images share it.
    """
    if array is not None and is_dask(array) and array.size <= SAMPLE_VALUES:
        if array.npartitions <= WHOLE_BLOCKS * SAMPLE_BLOCKS:
            return SAMPLE_VALUES, SAMPLE_BLOCKS
    n = max(int(n_images), 1)
    return max(SAMPLE_VALUES // n, IMAGE_SAMPLE_VALUES), max(
        SAMPLE_BLOCKS // n, IMAGE_SAMPLE_BLOCKS
    )


#: A sample grown for small chunks reads at most one in this many (:func:`image_sample_plan`)
SAMPLE_SHARE = 4
#: The fractional step of the chunks a sample picks (:func:`image_sample_plan`)
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def image_sample_plan(
    chunks: Sequence[Sequence[int]], n_values: int, n_blocks: int
) -> list[tuple[tuple[int, ...], int]]:
    """``(chunk index, stride)`` of the chunks one image's sample reads.

    `chunks` is the image's chunk sizes per axis (dask's ``.chunks``); the
    same choice as :func:`sample_values` with the budgets given, so that a
    sample read chunk by chunk from a task graph (:mod:`.lazy`) equals the
    one :func:`image_statistics` reads through dask.
    """
    grid = tuple(len(c) for c in chunks)
    blocks = list(np.ndindex(*grid))
    values = math.prod(int(sum(c)) for c in chunks)
    few = len(blocks) <= WHOLE_BLOCKS * n_blocks or values <= SMALL_WHOLE
    if values <= n_values and few:
        return [(index, 1) for index in blocks]  # small enough to read whole: exact
    # chunks smaller than the budget's share: more of them, up to the budget's values
    # and WHOLE_BLOCKS times the chunks (session 72: 2,048 chunks of 256 values gave a
    # sample of 16,384 of a 4 M budget, and a scale 22 % off the exact one), where the
    # budget is a share of SAMPLE_BLOCKS: at most 16 images of a stack, whose reads then
    # stay within WHOLE_BLOCKS * SAMPLE_BLOCKS in all (a stack of 200 frames read 64
    # chunks each, 17 times the time, in the review of the first version)
    images = max(1, SAMPLE_VALUES // max(int(n_values), 1))
    if n_blocks * images <= SAMPLE_BLOCKS:
        mean_size = values / max(len(blocks), 1)
        wanted = int(n_values // max(mean_size, 1))
        # (and a sample: at most a quarter of the chunks, so that a lazy array of 5 M
        # values is not read to 80 % for its statistics)
        wanted = min(wanted, len(blocks) // SAMPLE_SHARE)
        n_blocks = max(n_blocks, min(WHOLE_BLOCKS * n_blocks, wanted))
    if len(blocks) > n_blocks:
        # spread by the golden ratio, not at even steps: an even step over the flat index
        # fell in step with the chunk grid (2,048 chunks, 8 x 8 per plane: every pick in
        # one column of chunks) and sampled one stripe of the image (session 72)
        picks = np.unique((np.arange(n_blocks) * GOLDEN % 1.0 * len(blocks)).astype(int))
        blocks = [blocks[i] for i in picks]
    budget = max(1, n_values // len(blocks))
    plan = []
    for index in blocks:
        size = math.prod(int(c[i]) for c, i in zip(chunks, index, strict=True))
        plan.append((index, math.ceil((size / budget) ** (1 / max(len(grid), 1)))))
    return plan


def strided(block: np.ndarray, factor: int) -> np.ndarray:
    """Every `factor`-th value of `block` along every axis (a sample's part)."""
    return block[(slice(None, None, factor),) * block.ndim] if factor > 1 else block


def _batch_statistics(batch: list[list], norm: dict[str, Any]) -> list[tuple[float, float]]:
    """Read the sampled parts of a few images at once; each image's offset and scale."""
    import dask

    if not batch:
        return []
    values = dask.compute(*[p for parts in batch for p in parts])
    out, start = [], 0
    for parts in batch:
        out.append(sample_offset_scale(values[start : start + len(parts)], norm))
        start += len(parts)
    return out


def sample_offset_scale(parts: Sequence[Any], norm: dict[str, Any]) -> tuple[float, float]:
    """:func:`offset_scale` of a percentile contract from an image's sampled `parts`."""
    values = np.concatenate([np.asarray(v).reshape(-1) for v in parts])  # (their dtype)
    _check_finite(values)
    lo, hi, least, most = percentiles(values, [norm["low"], norm["high"], 0.0, 100.0])
    return (lo, hi - lo) if hi > lo else _degenerate(lo, least, most)


def channel_statistics(
    array: Any, norm: dict[str, Any], channel_axis: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(offsets, scales)`` (float32, one per channel, or one in all)."""
    if channel_axis is None:
        pairs = [offset_scale(array, norm)]
    else:
        lead = (slice(None),) * channel_axis
        pairs = [offset_scale(array[lead + (c,)], norm) for c in range(array.shape[channel_axis])]
    offsets, scales = zip(*pairs, strict=True)
    return np.asarray(offsets, np.float32), np.asarray(scales, np.float32)


def fixed_statistics(
    normalization: Any, n_channels: int, lead: Sequence[int] = (), image_channels: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Validate user statistics ``{"offset": o, "scale": s}``; per-channel arrays.

    `o` and `s` are numbers, sequences with one value per channel, or nested
    sequences with one value per image (and channel) of the images along the
    batch axes `lead` (the form ``compute_normalization(...,
    per_image=True)`` returns), each image having `image_channels` (the
    model's input channels; a channel axis restored channel by channel is
    one of `lead`).

    Returns
    -------
    offsets, scales : ndarray of float32
        Shaped ``(n_channels,)``, or ``(*lead, image_channels)`` for per-image values.

    Raises
    ------
    TypeError
        When `normalization` is not a dict.
    ValueError
        Missing or unknown keys, non-finite values, scales <= 0, or shapes
        that are neither one value, one per channel nor one per image.
    """
    if not isinstance(normalization, dict):
        raise TypeError(
            "normalization must be a dict such as {'offset': 100.0, 'scale': 2000.0}, got "
            f"{type(normalization).__name__}"
        )
    # "colour": "opponent" says which channels they are of (core.colour)
    unknown = sorted(set(normalization) - {"offset", "scale", "colour"})
    if unknown or not {"offset", "scale"} <= set(normalization):
        raise ValueError(
            f"normalization needs the keys 'offset' and 'scale', and may have 'colour' (got "
            f"{sorted(normalization)}); the network sees (image - offset) / scale"
        )
    lead = tuple(int(n) for n in lead)
    per_image = {lead + (image_channels,)} | ({lead} if image_channels == 1 else set())
    out = []
    for key in ("offset", "scale"):
        try:
            value = np.asarray(normalization[key], np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"normalization[{key!r}] must be a number or one number per channel"
            ) from err
        if value.size == 1:
            value = np.repeat(value.reshape(-1), n_channels)
        elif lead and value.shape in per_image:
            value = value.reshape(*lead, image_channels)
        elif value.ndim > 1 or value.size != n_channels:
            each = f", or one per image of the {lead} images" if lead else ""
            raise ValueError(
                f"normalization[{key!r}] has shape {value.shape} but the image has "
                f"{n_channels} channels; pass one number, or one per channel{each}"
            )
        if not np.isfinite(value).all():
            raise ValueError(f"normalization[{key!r}] must be finite, got {value.tolist()}")
        out.append(value.astype(np.float32))
    if (out[1] <= 0).any():
        raise ValueError(f"normalization['scale'] must be > 0, got {out[1].tolist()}")
    if out[0].shape != out[1].shape:  # one number against per-image values
        out = list(np.broadcast_arrays(*out))
    return np.ascontiguousarray(out[0]), np.ascontiguousarray(out[1])


def normalization_arrays(
    xt: Any, layout: Any, model: Any, normalization: Any = None, *, whole: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(offset, scale)`` float32, broadcastable to the transposed image `xt`.

    Parameters
    ----------
    xt : ndarray or dask array
        The image transposed to `layout` (``image.transpose(layout.perm)``).
    layout : Layout
        From :mod:`~napari_deconvnet.core.axes`; its ``stat_axis`` (a
        channel axis) gets one offset and scale per channel.
    model : DeconvNet
        Its ``config.normalization`` contract is applied to `xt` (exact in
        memory, sampled for dask) unless `normalization` is given.
    normalization : dict, optional
        The user's fixed statistics ``{"offset", "scale"}`` (:func:`fixed_statistics`).
    whole : bool
        One set of statistics over all the images along the batch axes
        (per channel) instead of each image's own (:func:`image_statistics`,
        the default when there are several).
    """
    k = layout.stat_axis
    n_ch = layout.transposed_shape[k] if k is not None else 1
    norm = model.config.normalization
    lead = tuple(layout.transposed_shape[: layout.n_batch_axes])
    per_image = norm["method"] == "percentile" and math.prod(lead) > 1 and not whole
    if normalization is None and per_image:
        # (the model's channel axis, when it has one, follows the batch axes)
        return image_statistics(xt, len(lead), norm, 0 if layout.has_channel else None)
    shape = [1] * len(layout.transposed_shape)
    if normalization is not None:
        own = n_ch if layout.has_channel else 1
        offsets, scales = fixed_statistics(normalization, n_ch, lead, own)
        if offsets.ndim > 1:  # one per image: (*lead, the model's channels)
            shape[: len(lead) + 1] = offsets.shape
            return offsets.reshape(shape), scales.reshape(shape)
    else:
        offsets, scales = channel_statistics(xt, norm, k)
    if k is not None:
        shape[k] = n_ch
    return offsets.reshape(shape), scales.reshape(shape)


def image_statistics(
    xt: Any,
    n_lead: int,
    norm: dict[str, Any],
    channel_axis: int | None = None,
    budget: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(offset, scale)`` of each image of `xt` (and channel), by the contract `norm`.

    The images are indexed by the `n_lead` leading axes (time points, planes
    restored by a 2D model, channels processed one by one); `channel_axis`,
    counted after them, is the model's own channel axis if it has one. Each
    image is normalised as it would be restored alone: a stack whose planes
    differ in brightness (bleaching over a time-lapse, planes far from the
    focus, a blank frame) gives every plane its own range instead of a share
    of the brightest one's, which is what the network was trained on.

    In memory the percentiles are exact. For lazy data every image gets a
    deterministic sample like :func:`sample_values`'s, with its share of the
    budget: ``max(SAMPLE_VALUES // n, IMAGE_SAMPLE_VALUES)`` values from at
    most ``max(SAMPLE_BLOCKS // n, IMAGE_SAMPLE_BLOCKS)`` chunks for `n`
    images. They are read a few images at a time (about ``SAMPLE_VALUES``
    values) and reduced to their two numbers, so the samples of thousands of
    time points are never held at once. `budget` overrides the ``(values,
    chunks)`` per image (:func:`image_sample_budget`). A lazy restore
    computes the same numbers inside its graph instead (:mod:`.lazy`), each
    image's next to the blocks that need it.

    Returns
    -------
    offsets, scales : ndarray of float32
        Shaped ``(*lead, [channels], 1, ...)``: broadcastable to `xt`.
    """
    lead = tuple(xt.shape[:n_lead])
    n_ch = 1 if channel_axis is None else int(xt.shape[n_lead + channel_axis])
    tail = xt.ndim - n_lead - (channel_axis is not None)
    shape = (*lead, *((n_ch,) if channel_axis is not None else ()), *([1] * tail))
    if isinstance(xt, np.memmap):  # never read a memory-mapped file whole
        import dask.array as da

        xt = da.from_array(xt, chunks="auto", asarray=True)
    if not is_dask(xt):
        pairs = [channel_statistics(xt[i], norm, channel_axis) for i in np.ndindex(*lead)]
        offsets = np.stack([o for o, _ in pairs])
        scales = np.stack([s for _, s in pairs])
        return offsets.reshape(shape), scales.reshape(shape)
    n_values, n_blocks = budget or image_sample_budget(math.prod(lead) * n_ch, xt)
    pairs: list[tuple[float, float]] = []
    batch: list[list] = []  # images whose samples are read together, up to SAMPLE_VALUES
    for i in np.ndindex(*lead):
        for c in range(n_ch):
            image = xt[i] if channel_axis is None else xt[i][(slice(None),) * channel_axis + (c,)]
            batch.append(_sample_parts(image, n_values, n_blocks))
            if sum(p.size for parts in batch for p in parts) >= SAMPLE_VALUES:
                pairs += _batch_statistics(batch, norm)
                batch = []
    pairs += _batch_statistics(batch, norm)
    offsets = np.asarray([o for o, _ in pairs], np.float32).reshape(shape)
    return offsets, np.asarray([s for _, s in pairs], np.float32).reshape(shape)
