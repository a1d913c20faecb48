"""Lazy restores: :func:`~napari_deconvnet.restore` of a dask array builds a graph of blocks.

One task per output block (:mod:`~napari_deconvnet.core.blocks`), whose
inputs are the source chunks its region touches, whatever their size: the
graph is written directly, which costs microseconds per block. On a
``dask.distributed`` cluster the model is one key of the graph, fetched once
per worker.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ._validation import check_single_range
from .blocks import (
    FROM_JOB,
    SHARED_HOOKS,
    Hooks,
    Job,
    default_client,
    image_guard,
    input_region,
    make_job,
    model_payload,
    restore_block,
)
from .colour import alpha_axis, from_opponent, join_alpha, split_alpha
from .constant_areas import padding_mask
from .kinds import kind_of
from .light_noise import guard_windows
from .normalization import image_sample_plan, sample_offset_scale, strided
from .restoration import (
    as_network_sees,
    constant_images,
    images_with_objects,
    prepare_restore,
    warn_one_range,
)

__all__ = ["lazy_restore"]


def _process_scheduler() -> bool:
    """Whether dask's configured scheduler runs tasks in other processes."""
    import dask

    return str(dask.config.get("scheduler", None)) in ("processes", "multiprocessing")


def check_lazy_callbacks(progress: Any, stop: Any) -> None:
    """Refuse `progress` and `stop` for a lazy result where its tasks cannot call them
    (ValueError): on a dask.distributed cluster, or under the processes scheduler."""
    if progress is None and stop is None:
        return
    if default_client() is not None:
        raise ValueError(
            "progress= and stop= need a local dask scheduler, but a dask.distributed client "
            "is active; use restore_to_zarr(..., client=client, progress=..., stop=...) on a "
            "cluster, or dask.distributed's progress bar"
        )
    if _process_scheduler():
        # their callbacks live in this process (it failed in "cannot pickle
        # '_thread.lock' object" when the graph was computed)
        raise ValueError(
            "progress= and stop= need dask's threaded scheduler, but the 'processes' "
            "scheduler is configured; compute with dask.config.set(scheduler='threads'), "
            "or leave progress= and stop= out"
        )


def lazy_restore(
    image: Any,
    model: Any = "default",
    *,
    psf: Any = None,
    axes: str | None = None,
    tile: Any = None,
    overlap: int | None = None,
    device: Any = "auto",
    batch_size: int | None = None,
    precision: str = "auto",
    progress: Callable[[int, int], Any] | None = None,
    stop: threading.Event | None = None,
    normalization: dict[str, Any] | None = None,
    light_noise_guard: bool | dict[str, Any] | None = None,
    impulse_switch: bool | None = None,
) -> Any:
    """:func:`~napari_deconvnet.restore` of a dask array: a lazy dask array of blocks.

    Blocks are the input's chunks along the spatial axes rounded up to the
    network's grid (and at least the tile, and twice the halo), one per index
    of the other axes; their origins are on the grid whatever the chunks. The statistics
    are computed here, before the graph is built (see
    :mod:`~napari_deconvnet.core.normalization`), so that computing any part
    of the result needs only the input around it. On a ``dask.distributed``
    cluster the model is one key of the graph: each worker fetches it once.
    """
    import dask
    import dask.array as da

    net, axes, layout, dev, dtype = prepare_restore(image, model, psf, axes, device, precision)
    alpha = alpha_axis(image.shape, axes, normalization)
    if alpha is not None:  # opacity is a mask, no image: kept as it is (core.colour)
        rgb, opacity = split_alpha(image, alpha)
        options = {"psf": psf, "axes": axes, "tile": tile, "overlap": overlap}
        options |= {"device": device, "batch_size": batch_size, "precision": precision}
        options |= {"progress": progress, "stop": stop, "normalization": normalization}
        options |= {"light_noise_guard": light_noise_guard, "impulse_switch": impulse_switch}
        return join_alpha(lazy_restore(rgb, net, **options), opacity, alpha)
    original = image
    constant = constant_value(image)
    if constant is not None:  # nothing to restore: that constant, as restore_iter returns it
        return da.full(image.shape, constant, dtype=np.float32, chunks=image.chunks)
    image, colour = as_network_sees(image, net, axes, impulse_switch, normalization)
    check_lazy_callbacks(progress, stop)
    if _whole_image_restore(original, image, net, layout, colour, normalization):
        # a dim scene beside very bright objects (core.dynamic_range), or areas of
        # one value to fill (core.constant_areas): the eager restore, as one task
        options = {
            "psf": psf,
            "axes": axes,
            "tile": tile,
            "overlap": overlap,
            "device": device,
            "batch_size": batch_size,
            "precision": precision,
            "progress": progress,
            "stop": stop,
            "light_noise_guard": light_noise_guard,
            "impulse_switch": impulse_switch,
        }
        shared = SHARED_HOOKS.get()  # a channel of a restore counted as one: one block
        if shared is not None:
            options["stop"] = shared.stop
            return _two_ranges(original, model, options, shared.part(1))
        return _two_ranges(original, model, options)
    xt = image.transpose(layout.perm)
    spatial_axes = range(layout.n_batch_axes + layout.has_channel, xt.ndim)
    user_tile = [0] * net.config.ndim
    if tile is not None:
        user_tile = [tile] * net.config.ndim if np.ndim(tile) == 0 else list(tile)
    # each block reads its halo around it: blocks of small chunks (a light-sheet file of
    # one plane per chunk) pushed many times the input through the network (session 72:
    # 1-plane chunks, 4-plane blocks with 24 planes of halo each side, 5-7x the time),
    # so a block is at least twice the halo along each axis (the image's size at most)
    halo = net.halo
    if isinstance(overlap, int | np.integer) and not isinstance(overlap, bool) and overlap >= 0:
        halo = int(overlap)  # (anything else: make_job refuses it in its own words)
    block = [
        max(int(xt.chunks[d][0]), int(t), min(2 * int(halo), int(xt.shape[d])))
        for d, t in zip(spatial_axes, user_tile, strict=True)
    ]
    colour_at = None if colour is None else list(layout.perm).index(colour)  # a batch axis
    job = make_job(
        xt,
        net,
        layout,
        tile=tile,
        overlap=overlap,
        dev=dev,
        dtype=dtype,
        batch_size=batch_size,
        precision=precision,
        device=device,
        normalization=normalization,
        block=block,
        light_noise_guard=light_noise_guard,
        colour=colour_at,
        graph_statistics=True,
    )
    from dask.highlevelgraph import HighLevelGraph

    payload = model_payload(net)
    token = dask.base.tokenize(image.name, payload.key, job.fingerprint(payload.key, {}))
    if progress is not None or stop is not None:  # each call's own callbacks: its own keys
        token = dask.base.tokenize(token, id(progress), id(stop))
    if SHARED_HOOKS.get() is not None:  # (and a part of shared ones)
        token = dask.base.tokenize(token, id(SHARED_HOOKS.get()))
    model_d = dask.delayed(payload, name=f"deconvnet-model-{payload.key[:16]}", traverse=False)
    job_d = dask.delayed(job, name=f"deconvnet-job-{token}", traverse=False)
    blocks = job.blocks()
    shared = SHARED_HOOKS.get()  # a part of a result counted as one (channels' PSFs)
    if shared is not None:
        hooks = shared.part(len(blocks))
    else:
        hooks = Hooks(progress, stop, len(blocks)) if progress or stop else None
    # every block takes the hooks from one task, which restarts their count per compute
    started = hooks.start_task() if hooks is not None else None
    # The graph is written directly, one task per block whose inputs are the
    # source chunks its region touches: building it costs microseconds per
    # block (slicing a dask array per block cost ~30 ms, minutes for a
    # 20,000-plane file).
    name = f"deconvnet-{token}"
    edges = [np.cumsum((0, *c)) for c in xt.chunks]
    channel = (0,) * layout.has_channel
    layer: dict = {}
    stats_name = f"deconvnet-stats-{token}"
    if job.offset is None:  # each image's statistics: a task beside its blocks
        _statistics_tasks(layer, stats_name, xt, edges, job, net.config.normalization)
    guard_name = f"deconvnet-guard-{token}"
    if job.guard_tasks:  # each image's light-noise weight: a task too
        stats_of = stats_name if job.offset is None else None
        windows = guard_windows(net, job.spatial)
        args = (xt, edges, job, job_d.key, model_d.key, stats_of, windows)
        _guard_tasks(layer, guard_name, *args, colour_at)
    for batch, sidx in blocks:
        region, _ = input_region(job, batch, sidx)
        keys, places, shape = _region_reads(xt, edges, region)
        plan = _Literal((places, shape, np.dtype(xt.dtype).str, (batch, sidx)))
        guard = None
        if job.guard_tasks:  # an RGB image's weight is its luminance's
            guard = (guard_name, *(0 if d == colour_at else i for d, i in enumerate(batch)))
        layer[(name, *batch, *channel, *sidx)] = (
            _restore_chunks,
            keys,
            job_d.key,
            model_d.key,
            plan,
            None if started is None else started.key,
            None if job.offset is not None else (stats_name, *batch),
            guard,
        )
    depends = [xt, model_d, job_d, *([] if started is None else [started])]
    graph = HighLevelGraph.from_collections(name, layer, dependencies=depends)
    lead = tuple((1,) * n for n in job.transposed_shape[: job.n_batch])
    chans = tuple((n,) for n in xt.shape[job.n_batch : xt.ndim - len(job.spatial)])
    spatial = tuple(
        tuple(min((i + 1) * b, size) - i * b for i in range(n))
        for b, size, n in zip(job.block, job.spatial, job.n_blocks(), strict=True)
    )
    out = da.Array(graph, name, lead + chans + spatial, dtype=np.float32).transpose(layout.inverse)
    out = out if colour is None else from_opponent(out, colour)
    return _constant_images_kept(out, original, layout)


def _constant_images_kept(out: Any, original: Any, layout: Any) -> Any:
    """`out` with each image of a small lazy stack (up to :data:`LAZY_SCENE_LIMIT` values,
    read whole as its search for bright objects reads it) that holds one value set back
    to that value, as the in-memory restore keeps it (restoration._constant_images_kept;
    session 70). A larger stack is not read here: its blank images go through the
    network, within the documented tolerance of a lazy constant image."""
    import dask.array as da

    found = None if original.size > LAZY_SCENE_LIMIT else constant_images(original, layout)
    if found is None:
        return out
    same, low = found
    shape = tuple(original.shape[i] for i in layout.perm)
    keep = (1,) * (len(shape) - same.ndim)
    mask = np.broadcast_to(same.reshape(same.shape + keep), shape).transpose(layout.inverse)
    value = np.broadcast_to(
        np.asarray(low, np.float32).reshape(same.shape + keep), shape
    ).transpose(layout.inverse)
    chunks = out.chunks
    return da.where(
        da.from_array(mask, chunks=chunks), da.from_array(value, chunks=chunks), out
    ).astype(np.float32)


#: Lazy images up to this many values are searched for bright objects whole, as an
#: eager restore searches them (:mod:`.dynamic_range`), and restored by it when
#: it finds some; larger ones are restored in one pass, block by block (the two
#: passes need the whole image).
LAZY_SCENE_LIMIT = 1 << 22


def constant_value(image: Any) -> np.float32 | None:
    """The one value of a small lazy `image` that holds no other, else None.

    Read whole up to :data:`LAZY_SCENE_LIMIT` values, as the search for
    bright objects reads it; a larger image is not searched (building its
    restore reads nothing) and goes through the network like any other.
    Lazy and streamed restores return that value, as the in-memory restore
    returns a constant image. The same minimum and maximum refuse a float64
    image that float32 cannot hold (``check_single_range``) before the
    searches that follow overflow on it (they warned "overflow encountered in
    cast" before the sampled statistics refused it); a larger image is
    refused by its sampled statistics.
    """
    if image.size > LAZY_SCENE_LIMIT or image.size == 0:
        return None
    import dask

    low, high = dask.compute(image.min(), image.max())
    check_single_range(np.array([low, high]))
    return np.float32(low) if low == high else None


def _whole_image_restore(
    original: Any, image: Any, net: Any, layout: Any, colour: Any, normalization: Any
) -> bool:
    """Whether a small lazy image needs what only the eager restore does: two
    intensity ranges (:mod:`.dynamic_range`) or constant areas filled
    (:mod:`.constant_areas`)."""
    if image.size > LAZY_SCENE_LIMIT:
        return False
    if kind_of(net).fills_constant_areas:
        data = np.asarray(original.compute())
        if padding_mask(data.transpose(layout.perm)) is not None:
            return True
    if colour is not None:
        return False
    if normalization is not None:  # one range, as in memory: said there too
        warn_one_range(np.asarray(image.compute()), net, layout)
        return False
    return _lazy_scene(image, net, layout)


def _lazy_scene(image: Any, net: Any, layout: Any) -> bool:
    """The eager restore's decision (:mod:`.dynamic_range`, image by image) for small
    arrays: whether some image holds bright objects."""
    if image.size > LAZY_SCENE_LIMIT:
        return False
    return any(images_with_objects(np.asarray(image.compute()), net, layout))


def _two_ranges(original: Any, model: Any, options: dict[str, Any], part: Any = None) -> Any:
    """A small image with bright objects: the eager restore (:mod:`.dynamic_range`,
    whose two passes need the whole image), as one task of a lazy array in the
    input's chunks, so that lazy and eager restores agree exactly. `part` (of shared
    hooks, :meth:`~.blocks.Hooks.part`) counts that task as one block."""
    import dask
    import dask.array as da

    from .restoration import restore

    if part is not None:
        task = dask.delayed(_restore_part, pure=False)(part.start_task(), original, model, options)
    else:
        task = dask.delayed(restore, pure=True)(original, model, **options)
    out = da.from_delayed(task, shape=original.shape, dtype=np.float32)
    return out.rechunk(original.chunks)


def _restore_part(part: Any, original: np.ndarray, model: Any, options: dict) -> np.ndarray:
    """:func:`~napari_deconvnet.restore` as one block of shared hooks' count."""
    from .restoration import restore

    part.check()
    out = restore(original, model, **options)
    part.done(0)
    return out


class _Literal:
    """A tuple argument that the scheduler must pass as is (never read as a key)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _span(sl: slice, n: int) -> tuple[int, int]:
    start, stop, _ = sl.indices(n)
    return start, stop


def _chunks_of(edge: np.ndarray, start: int, stop: int) -> list[tuple[int, slice, slice]]:
    """(chunk index, slice of the region, slice of the chunk) for chunks overlapping a span."""
    first = int(np.searchsorted(edge, start, side="right")) - 1
    out = []
    for i in range(first, len(edge) - 1):
        c0, c1 = int(edge[i]), int(edge[i + 1])
        if c0 >= stop:
            break
        lo, hi = max(c0, start), min(c1, stop)
        if hi > lo:
            out.append((i, slice(lo - start, hi - start), slice(lo - c0, hi - c0)))
    return out


def _region_reads(xt: Any, edges: list, region: tuple[slice, ...]) -> tuple[list, list, tuple]:
    """``(keys, places, shape)``: the source chunks a region of `xt` touches, where
    each goes in the region (:func:`_chunks_of`), and the region's shape."""
    spans = [_span(sl, n) for sl, n in zip(region, xt.shape, strict=True)]
    pieces = [_chunks_of(e, start, stop) for e, (start, stop) in zip(edges, spans, strict=True)]
    keys, places = [], []
    for combo in itertools.product(*pieces):
        keys.append((xt.name, *(i for i, _, _ in combo)))
        places.append(tuple((dst, src) for _, dst, src in combo))
    return keys, places, tuple(stop - start for start, stop in spans)


def _assemble(chunks: list, places: list, shape: tuple, dtype: str) -> np.ndarray:
    """A region of the source from the chunks it touches (:func:`_chunks_of`)."""
    piece = np.empty(shape, dtype=np.dtype(dtype))
    for chunk, place in zip(chunks, places, strict=True):
        dst = tuple(d for d, _ in place)
        src = tuple(s for _, s in place)
        piece[dst] = np.asarray(chunk)[src]
    return piece


def _restore_chunks(
    chunks: list,
    job: Job,
    payload: Any,
    plan: _Literal,
    hooks: Any,
    stats: Any = None,
    blend: Any = None,
) -> np.ndarray:
    """Assemble a block's input region from its source chunks, then restore it
    (with its image's light-noise weight `blend` when the graph computes it)."""
    places, shape, dtype, block = plan.value
    piece = _assemble(chunks, places, shape, dtype)
    blend = blend if job.guard_tasks else FROM_JOB
    return restore_block(piece, job, payload, block, hooks, stats, blend)


def _guard_tasks(
    layer: dict,
    name: str,
    xt: Any,
    edges: list,
    job: Job,
    job_key: Any,
    model_key: Any,
    stats_name: str | None,
    windows: list[tuple[slice, ...]],
    colour: int | None,
) -> None:
    """One task per image of `xt`: its light-noise weight (:func:`~.light_noise.guard_weight`).

    Each reads the chunks under the image's :func:`~.light_noise.guard_windows`
    (at most :data:`~.light_noise.GUARD_CROP` pixels and their context), with
    the image's statistics (its statistics task, or the job's), so that it
    is what an eager restore of that image alone computes. An RGB image is
    measured on its luminance (`colour`: the opponent axis, index 0).
    """
    n_lead = job.n_batch
    lead = job.transposed_shape[:n_lead]
    images = tuple(1 if d == colour else n for d, n in enumerate(lead))
    dtype = np.dtype(xt.dtype).str
    for batch in np.ndindex(*images):
        keys, plans = [], []
        for window in windows:
            region = tuple(slice(i, i + 1) for i in batch) + window
            found, places, shape = _region_reads(xt, edges, region)
            keys.append(found)
            plans.append((window, places, shape))
        stats = None if stats_name is None else (stats_name, *batch)
        info = _Literal((batch, plans, dtype))
        layer[(name, *batch)] = (_image_guard, keys, job_key, model_key, stats, info)


def _image_guard(chunks: list, job: Job, payload: Any, stats: Any, info: _Literal) -> Any:
    """One image's light-noise weight from the chunks under its guard windows."""
    batch, plans, dtype = info.value
    parts = []
    for found, (window, places, shape) in zip(chunks, plans, strict=True):
        piece = _assemble(found, places, shape, dtype)
        parts.append((window, piece.reshape(piece.shape[len(batch) :])))
    return image_guard(parts, job, payload, batch, stats)


def _statistics_tasks(
    layer: dict, name: str, xt: Any, edges: list, job: Job, norm: dict[str, Any]
) -> None:
    """One task per image of `xt` (along its batch axes): its ``(offset, scale)``.

    Each reads the chunks of :func:`~.normalization.image_sample_plan` (those
    :func:`~.normalization.image_statistics` reads, so the numbers are the
    same), written straight into the graph as the blocks are.
    """
    n_lead = job.n_batch
    plan = image_sample_plan(xt.chunks[n_lead:], *job.image_sample)
    for batch in np.ndindex(*job.transposed_shape[:n_lead]):
        lead_chunk, within = [], []
        for d, i in enumerate(batch):
            c = int(np.searchsorted(edges[d], i, side="right")) - 1
            lead_chunk.append(c)
            within.append(i - int(edges[d][c]))
        keys = [(xt.name, *lead_chunk, *index) for index, _ in plan]
        cuts = _Literal((tuple(within), tuple(f for _, f in plan), norm))
        layer[(name, *batch)] = (_image_statistics, keys, cuts)


def _image_statistics(chunks: list, cuts: _Literal) -> tuple:
    """``(offset, scale)`` of one image from the chunks its sample reads."""
    within, factors, norm = cuts.value
    parts = [strided(np.asarray(c)[within], f) for c, f in zip(chunks, factors, strict=True)]
    return sample_offset_scale(parts, norm)
