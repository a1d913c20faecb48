"""Blocks: the unit of work of lazy, streamed and distributed restores.

A block is a box of the output; it starts on a multiple of its size, which
is a multiple of the network's ``2**depth`` grid, so the tiles inside it
start on the same grid as an in-memory restore's, whatever the input's
chunks. Its input is read with the network's halo of context around it
(mapped by index: the reflection of the image at the image's borders, the
neighbouring pixels elsewhere), plus the context the model kind's extra
channels need (:meth:`~napari_deconvnet.core.kinds.ModelKind.input_margin`).

:func:`make_job` computes, once for the whole image, everything the blocks
share (tiles, normalisation, the kind's statistics) into a small picklable
:class:`Job`; :func:`restore_block` restores one block from its input. The
model travels as a :class:`ModelPayload` and is rebuilt once per process
and device (on a ``dask.distributed`` worker, on that worker's own device).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import hashlib
import json
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .axes import Layout
from .colour import split_alpha
from .devices import resolve_device, resolve_precision
from .generators import drain
from .impulse_gap import across_gap
from .impulse_switch import IMPULSE_MARGIN, switch_impulses
from .kinds import ModelKind, kind_of
from .light_noise import WindowedImage, guard_applies, guard_noise, guard_weight
from .model import DeconvNet, DeconvNetConfig
from .normalization import image_sample_budget, image_statistics, normalization_arrays
from .psf import SUBPIXEL_RADIUS, subpixel_shift
from .restoration import Cancelled, guard_shape, light_noise_weights, plan_restore_tiles
from .tiling import reflected_window, round_up, run_tiles

__all__ = [
    "MODEL_CACHE",
    "MODEL_LOADS",
    "Hooks",
    "Job",
    "ModelPayload",
    "default_client",
    "input_region",
    "make_job",
    "model_payload",
    "restore_block",
]


# ---------------------------------------------------------------- the model


@dataclasses.dataclass
class ModelPayload:
    """A model as plain data: pickled once per worker, rebuilt once per process."""

    key: str
    config: DeconvNetConfig
    metadata: dict[str, Any]
    state: dict[str, np.ndarray]


def model_payload(net: DeconvNet) -> ModelPayload:
    state = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    # the metadata says how the model is used (conditioning, impulse switch): part of the key
    described = {"config": net.config.to_dict(), "metadata": net.metadata}
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(state[name]).tobytes())
    return ModelPayload(digest.hexdigest(), net.config, dict(net.metadata), state)


#: Models built in this process, by (payload key, device): at most four.
MODEL_CACHE: dict[tuple[str, str], tuple[DeconvNet, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()
MODEL_LOADS: dict[str, int] = {}  # models built in this process, by key (the tests read it)


def _worker_device(request: Any) -> torch.device:
    """`request` resolved here; on a multi-GPU machine each dask worker takes its own GPU."""
    dev = resolve_device(request)
    if request == "auto" and dev.type == "cuda" and torch.cuda.device_count() > 1:
        with contextlib.suppress(ImportError, ValueError):
            from distributed import get_worker

            name = str(get_worker().name)
            index = (
                int(name) if name.isdigit() else int(hashlib.sha1(name.encode()).hexdigest(), 16)
            )
            dev = torch.device(f"cuda:{index % torch.cuda.device_count()}")
    return dev


def _model_here(payload: ModelPayload, device: Any) -> tuple[DeconvNet, threading.Lock]:
    """The payload's model on `device`, built once per process and device."""
    dev = _worker_device(device)
    key = (payload.key, str(dev))
    with _MODELS_LOCK:
        if key not in MODEL_CACHE:
            with torch.random.fork_rng(devices=[]):  # (weights overwritten below)
                net = DeconvNet(payload.config)
            net.load_state_dict({k: torch.from_numpy(v) for k, v in payload.state.items()})
            net.metadata = dict(payload.metadata)
            fmt = torch.channels_last if payload.config.ndim == 2 else torch.channels_last_3d
            net = net.to(device=dev, memory_format=fmt).eval()
            while len(MODEL_CACHE) >= 4:
                MODEL_CACHE.pop(next(iter(MODEL_CACHE)))
            MODEL_CACHE[key] = (net, threading.Lock())
            MODEL_LOADS[payload.key] = MODEL_LOADS.get(payload.key, 0) + 1
        return MODEL_CACHE[key]


# ------------------------------------------------------------------ the job


@dataclasses.dataclass
class Job:
    """What every block needs to know; small, picklable, the same for all blocks."""

    transposed_shape: tuple[int, ...]
    n_batch: int  # leading batch axes of the transposed layout
    spatial: tuple[int, ...]
    block: tuple[int, ...]
    tile: tuple[int, ...]
    halo: int
    grid: int
    batch_size: int
    #: (None when each image's statistics are tasks of a lazy graph: `image_sample`)
    offset: np.ndarray | None
    scale: np.ndarray | None
    kind: ModelKind
    post_values: Any  # what the kind's post-processing needs, from the whole image
    kernel: np.ndarray | None
    margin: tuple[int, ...]
    device: Any
    precision: str
    cond_stats: list[dict[str, float]] | None = None
    #: whole pixels per spatial axis that blocks read further (an off-centre PSF)
    shift: tuple[int, ...] | None = None
    #: the sub-pixel rest, by which the image channel is resampled
    fraction: tuple[float, ...] | None = None
    #: nearly clean input: the weight of the network's correction per image
    #: (core.light_noise; shaped as the batch axes, 1 along an RGB axis; NaN: none)
    blend: np.ndarray | None = None
    #: impulse values replaced before the network (core.impulse_switch)
    impulses: dict[str, float] | None = None
    #: impulse levels moved near the data before the network (core.impulse_gap)
    impulse_gap: dict[str, float] | None = None
    #: ``(values, chunks)`` of each image's sample when its statistics are
    #: computed in the graph, next to the blocks that need them (:mod:`.lazy`)
    image_sample: tuple[int, int] | None = None
    #: each image's light-noise weight is a task of the lazy graph (:mod:`.lazy`)
    guard_tasks: bool = False
    #: the caller's noise for the light-noise guard (core.light_noise.guard_noise)
    guard_noise: dict[str, Any] | None = None
    #: the batch axis of an RGBA image's samples, whose fourth (opacity) blocks keep
    #: as it is (:func:`~.colour.alpha_axis`; streamed restores)
    opacity_axis: int | None = None
    #: the one value of an image that holds no other: every block returns it, as
    #: restore_iter returns a constant image (streamed restores)
    constant: float | None = None

    def blend_record(self) -> Any:
        """:attr:`blend` for a JSON document: one number for one image (as earlier
        releases wrote it), else one per image (None where it is not blended)."""
        if self.blend is None:
            return None
        if self.blend.size == 1:
            return float(self.blend.reshape(-1)[0])
        return [None if np.isnan(w) else float(w) for w in self.blend.reshape(-1)]

    def image_blend(self, batch: tuple[int, ...]) -> float | None:
        """The light-noise weight of the image at `batch` (None: not blended)."""
        if self.blend is None:
            return None
        pick = tuple(i if n > 1 else 0 for i, n in zip(batch, self.blend.shape, strict=True))
        w = float(self.blend[pick])
        return None if math.isnan(w) else w

    def n_blocks(self) -> tuple[int, ...]:
        return tuple(math.ceil(s / b) for s, b in zip(self.spatial, self.block, strict=True))

    def blocks(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(batch index, spatial block index) of every block, in C order."""
        batch = self.transposed_shape[: self.n_batch]
        return [(b, s) for b in np.ndindex(*batch) for s in np.ndindex(*self.n_blocks())]

    def bounds(self, sidx: tuple[int, ...]) -> list[tuple[int, int]]:
        return [
            (i * b, min((i + 1) * b, s))
            for i, b, s in zip(sidx, self.block, self.spatial, strict=True)
        ]

    def fingerprint(self, model_key: str, extra: dict[str, Any]) -> str:
        doc = {
            "model": model_key,
            "shape": list(self.transposed_shape),
            "block": list(self.block),
            "tile": list(self.tile),
            "halo": self.halo,
            "offset": None if self.offset is None else self.offset.reshape(-1).tolist(),
            "scale": None if self.scale is None else self.scale.reshape(-1).tolist(),
            **({"image_sample": list(self.image_sample)} if self.image_sample else {}),
            "impulses": self.post_values,
            "kernel": None if self.kernel is None else hashlib.sha256(self.kernel).hexdigest(),
            "cond_stats": self.cond_stats,
            **({"shift": list(self.shift)} if self.shift else {}),  # earlier runs: none
            **({"fraction": list(self.fraction)} if self.fraction else {}),
            **({"blend": self.blend_record()} if self.blend is not None else {}),
            **({"guard_tasks": True} if self.guard_tasks else {}),
            **({"guard_noise": self.guard_noise} if self.guard_noise else {}),
            **({"opacity_axis": self.opacity_axis} if self.opacity_axis is not None else {}),
            **({"constant": self.constant} if self.constant is not None else {}),
            **({"impulses": self.impulses} if self.impulses is not None else {}),
            **({"impulse_gap": self.impulse_gap} if self.impulse_gap is not None else {}),
            "precision": self.precision,
            **extra,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def input_region(job: Job, batch: tuple[int, ...], sidx: tuple[int, ...]):
    """Slices of the transposed image a block reads, and its reflected indices into them."""
    slices, indices = [], []
    shift = job.shift or (0,) * len(job.spatial)
    for (b0, b1), size, m, d in zip(job.bounds(sidx), job.spatial, job.margin, shift, strict=True):
        window, index = reflected_window(b0, b1, size, job.halo, job.grid, m, d)
        slices.append(window)
        indices.append(index)
    channel = len(job.transposed_shape) - job.n_batch - len(job.spatial)
    region = tuple(slice(i, i + 1) for i in batch) + (slice(None),) * channel + tuple(slices)
    return region, indices


def _block_plan(job: Job, sidx: tuple[int, ...]) -> dict[str, Any]:
    """Tiles inside one block's extended input, on the image's grid."""
    tiles, starts = [], []
    for (b0, b1), t in zip(job.bounds(sidx), job.tile, strict=True):
        length = round_up(b1, job.grid) - b0
        t = min(t, length)
        s = list(range(0, length - t + 1, t))
        if s[-1] + t < length:
            s.append(length - t)
        tiles.append(t)
        starts.append([job.halo + v for v in s])
    return {"tile": tuple(tiles), "halo": job.halo, "starts": starts, "batch_size": job.batch_size}


def _pick(values: np.ndarray, batch: tuple[int, ...]) -> np.ndarray:
    """Per-channel statistics for one batch index (a C axis may be a batch axis)."""
    index = tuple(
        slice(i, i + 1) if values.shape[d] > 1 else slice(None) for d, i in enumerate(batch)
    )
    return values[index]


def own_input(piece: Any, job: Job, batch: tuple[int, ...], sidx: tuple[int, ...]) -> np.ndarray:
    """The block's own pixels of its input `piece` (no halo), as float32: what a
    sample kept as it is (opacity) gives for the block."""
    region, _ = input_region(job, batch, sidx)
    own = tuple(
        slice(b0 - s.start, b1 - s.start)
        for (b0, b1), s in zip(job.bounds(sidx), region[-len(job.spatial) :], strict=True)
    )
    return np.asarray(piece)[(Ellipsis, *own)].astype(np.float32)


#: :func:`restore_block`'s `blend` when the job holds the weights
FROM_JOB = "from the job"


def restore_block(
    piece: Any,
    job: Job,
    payload: ModelPayload,
    block: tuple,
    hooks: Any = None,
    stats: tuple[float, float] | None = None,
    blend: Any = FROM_JOB,
) -> np.ndarray:
    """Restore one block from its input `piece` (the region of :func:`input_region`).

    `stats`: the ``(offset, scale)`` of the block's image, when the job leaves
    them to the graph (``job.offset`` is None). `blend`: its image's
    light-noise weight (None: not blended), when the job leaves it to the
    graph (``job.guard_tasks``).
    """
    batch, sidx = block[0], block[1]
    if hooks is not None:
        hooks.check()
    net, lock = _model_here(payload, job.device)
    dev = next(net.parameters()).device
    dtype = resolve_precision(job.precision, dev)
    raw = np.asarray(piece)
    region, indices = input_region(job, batch, sidx)
    if raw.dtype.kind in "fc" and not np.isfinite(raw).all():
        # the statistics' sample may not have read this block: eager input is checked
        # whole before it starts, lazy input block by block here
        where = ", ".join(f"{b0}:{b1}" for b0, b1 in job.bounds(sidx))
        raise ValueError(
            f"the image contains NaN or infinite values (read for the block of spatial "
            f"pixels [{where}]); replace them first (e.g. numpy.nan_to_num or "
            "dask.array.nan_to_num) - only finite values can be restored"
        )
    if job.constant is not None:  # nothing to restore: the value, as restore_iter returns it
        lead = raw.shape[: raw.ndim - len(job.spatial)]
        size = tuple(b1 - b0 for b0, b1 in job.bounds(sidx))
        if hooks is not None:
            hooks.done(block)
        return np.full((*lead, *size), job.constant, np.float32)
    if job.impulse_gap is not None:  # as restore_iter moves them (core.impulse_gap)
        raw = across_gap(raw, job.impulse_gap)
    if job.impulses is not None:  # as restore_iter replaces them (core.impulse_switch)
        at = tuple(batch) + (0,) * (raw.ndim - len(job.spatial) - len(batch))  # its images
        raw = switch_impulses(raw, job.impulses, len(job.spatial), at)
    if job.offset is None or job.scale is None:
        if stats is None:
            raise ValueError("this job's blocks need their image's statistics (stats=)")
        offset, scale = np.float32(stats[0]), np.float32(stats[1])
    else:
        offset, scale = _pick(job.offset, batch), _pick(job.scale, batch)
    lead = raw.shape[: raw.ndim - len(job.spatial)]
    spatial_ix = np.ix_(*indices)
    if job.fraction is None:
        x = raw[(Ellipsis, *spatial_ix)].astype(np.float32)
    else:  # as restore_iter resamples the image channel (an off-centre PSF)
        x = subpixel_shift(raw, job.fraction)[(Ellipsis, *spatial_ix)]
    x -= offset
    x /= scale
    channels = [x.reshape(-1, *x.shape[len(lead) :])]
    if job.kind.extra_channels:
        images = raw.reshape(-1, *raw.shape[len(lead) :])
        flat = (
            int(np.ravel_multi_index(batch, job.transposed_shape[: job.n_batch])) if batch else 0
        )
        stats = [job.cond_stats[flat]]
        with lock:
            stack = job.kind.channel_stack(images, job.kernel, device=dev, statistics=stats)
        for c in range(stack.shape[1]):
            pre = stack[:, c].reshape(raw.shape)[(Ellipsis, *spatial_ix)]
            pre -= offset
            pre /= scale
            channels.append(pre.reshape(-1, *pre.shape[len(lead) :]))
    xn = np.concatenate(channels)[None]
    plan = _block_plan(job, sidx)
    with lock:
        y = drain(run_tiles(xn, net, plan, dev, dtype))
    bounds = job.bounds(sidx)
    crop = tuple(slice(job.halo, job.halo + (b1 - b0)) for b0, b1 in bounds)
    y = y[(0, slice(None), *crop)].reshape(*lead, *(b1 - b0 for b0, b1 in bounds))
    y *= scale
    y += offset
    own = tuple(
        slice(b0 - s.start, b1 - s.start)
        for (b0, b1), s in zip(bounds, region[-len(bounds) :], strict=True)
    )
    if blend is FROM_JOB:
        if job.guard_tasks:
            raise ValueError("this job's blocks need their image's light-noise weight (blend=)")
        blend = job.image_blend(batch)
    if blend is not None:  # as restore_iter blends a nearly clean image
        x_own = raw[(Ellipsis, *own)].reshape(y.shape)
        y -= x_own
        y *= np.float32(blend)
        y += x_own
    job.kind.postprocess(raw[(Ellipsis, *own)], y, job.post_values)
    if hooks is not None:
        hooks.done(block)
    return y


def image_guard(
    parts: list[tuple[tuple[slice, ...], np.ndarray]],
    job: Job,
    payload: ModelPayload,
    batch: tuple[int, ...],
    stats: tuple[float, float] | None = None,
) -> float | None:
    """The light-noise weight of the image at `batch` (:func:`~.light_noise.guard_weight`)
    from its `parts` under :func:`~.light_noise.guard_windows`, with its
    statistics `stats` (or the job's), for a job with :attr:`Job.guard_tasks`."""
    if stats is None:
        offset, scale = _pick(job.offset, batch), _pick(job.scale, batch)
    else:
        offset, scale = stats
    net, lock = _model_here(payload, job.device)
    dtype = resolve_precision(job.precision, next(net.parameters()).device)
    image = WindowedImage(job.spatial, parts)
    o, s = float(np.ravel(offset)[0]), float(np.ravel(scale)[0])
    with lock:
        return guard_weight(net, image, o, s, dtype=dtype, noise=job.guard_noise)


class Hooks:
    """progress and stop for lazy restores computed by a local dask scheduler."""

    def __init__(self, progress, stop, total: int) -> None:
        self.progress, self.stop, self.total = progress, stop, total
        self.finished: set = set()
        self.lock = threading.Lock()
        self._started: Any = None
        self._parts = 0

    @property
    def count(self) -> int:
        return len(self.finished)

    def check(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Cancelled(f"restoration cancelled after {self.count} of {self.total} blocks")

    def restart(self) -> Hooks:
        """A new compute begins: count from 0 again (the task every block of a lazy
        result depends on, :meth:`start_task`, calls it once per compute). Without
        it, blocks of an earlier partial compute (the slices napari views) stayed
        counted: the whole array's compute then ended at 2 of 16."""
        with self.lock:
            self.finished.clear()
        return self

    def start_task(self) -> Any:
        """The dask task that restarts the count and gives these hooks to the blocks:
        one per hooks, so that the parts of one result (run_method's channels) share it
        and it runs once per compute."""
        import dask

        if self._started is None:
            self._started = dask.delayed(Hooks.restart, pure=False)(self)
        return self._started

    def part(self, blocks: int) -> HooksPart:
        """Hooks for one part of a result (a channel restored with its own PSF) that
        count its `blocks` in this one count, from 1 to all parts' blocks."""
        with self.lock:
            self.total += int(blocks)
            self._parts += 1
            return HooksPart(self, self._parts)

    def done(self, block: Any) -> None:
        """Count `block` finished. The same lazy array can be computed again (or a
        slice of it): a block done twice counts once, and once every block has
        been counted the next one starts a new count, so it never passes `total`."""
        with self.lock:
            if len(self.finished) >= self.total:
                self.finished.clear()
            self.finished.add(block)
            count = len(self.finished)
        if self.progress is not None:
            self.progress(count, self.total)


class HooksPart:
    """One part's view of shared :class:`Hooks` (:meth:`Hooks.part`): its blocks are
    counted apart from the other parts' blocks of the same index."""

    def __init__(self, shared: Hooks, key: int) -> None:
        self.shared, self.key = shared, key
        self.progress, self.stop = shared.progress, shared.stop

    def check(self) -> None:
        self.shared.check()

    def done(self, block: Any) -> None:
        self.shared.done((self.key, block))

    def start_task(self) -> Any:
        """This part from the shared hooks' one restart task (once per compute)."""
        import dask

        return dask.delayed(_part_of, pure=False)(self.shared.start_task(), self)


def _part_of(shared: Hooks, part: HooksPart) -> HooksPart:
    return part


#: Shared hooks that lazy restores built meanwhile count their blocks in (one part
#: each): a lazy restore with one PSF per channel builds one restore per channel
SHARED_HOOKS: contextvars.ContextVar[Hooks | None] = contextvars.ContextVar(
    "shared_hooks", default=None
)


def _block_layout(layout: Layout, block: tuple[int, ...], tile: Any) -> Layout:
    """`layout` with the block as its spatial shape, for planning automatic tiles.

    Automatic tiles are chosen for the block they run in, not for the whole
    image: a tile planned on the image (say 632 pixels for 16384) that does not
    divide the block (1024) overlaps itself inside every block, about 20% more
    work than an in-memory restore. A `tile` the caller chose is checked
    against the whole image, as before.
    """
    if tile is not None:
        return layout
    planned = copy.copy(layout)
    planned.spatial_shape = tuple(
        min(b, s) for b, s in zip(block, layout.spatial_shape, strict=True)
    )
    return planned


def _extend_along(stats: list, shape: tuple[int, ...], axis: int, size: int) -> list:
    """Per-image `stats` (batch shape `shape`) extended to `size` entries along `axis`
    with copies of the last: entries for images a job never restores (an RGBA
    image's opacity; the other channels of a job that restores one alone)."""
    table = np.empty(len(stats), dtype=object)
    table[:] = stats
    table = table.reshape(shape)
    last = table[(slice(None),) * axis + (slice(-1, None),)]
    extra = [last] * (size - shape[axis])
    return np.concatenate([table, *extra], axis=axis).reshape(-1).tolist()


def make_job(
    xt: Any,
    net: DeconvNet,
    layout: Layout,
    *,
    tile: Any,
    overlap: Any,
    dev: torch.device,
    dtype: torch.dtype,
    batch_size: Any,
    precision: str,
    device: Any,
    normalization: Any,
    block: Sequence[int],
    light_noise_guard: bool | dict[str, Any] | None = None,
    colour: int | None = None,
    impulses: dict[str, float] | None = None,
    impulse_gap: dict[str, float] | None = None,
    graph_statistics: bool = False,
    opacity: int | None = None,
    channel: tuple[int, int] | None = None,
) -> Job:
    """Plan the blocks and compute every statistic they share, once.

    `graph_statistics`: a lazy restore of a stack whose images each get
    their own statistics leaves them to tasks of its graph (one per image,
    :attr:`Job.image_sample`), so that opening a 20,000-frame file reads
    nothing and viewing a frame samples that frame only.

    The light-noise weights (one per image) are computed here too, or, with
    `graph_statistics` and more than one image, left to the graph as well
    (:attr:`Job.guard_tasks`). `colour`: the position of an RGB image's
    opponent axis among the batch axes (its luminance is measured).

    `dev` and `dtype` are those :func:`~.restoration.prepare_restore` resolved;
    `device` is the caller's request, which the job keeps as ``"auto"`` (each
    worker picks its own device) or else as the resolved `dev`. `impulses`
    (:func:`~.impulse_switch.detect_impulses`) makes every block replace
    them in what it reads; `xt` is then the image with them replaced, for
    its statistics; so does `impulse_gap` (:func:`~.impulse_gap.impulse_gap`:
    the salt-and-pepper model's impulse levels moved near the data), with `xt`
    the image so moved. `opacity`: the batch axis whose last sample is an
    image's opacity (:attr:`Job.opacity_axis`), left out of the statistics
    the model's kind takes from the whole image. `channel`: ``(axis, c)``, a
    job that restores the channel `c` of the batch axis `axis` alone
    (:func:`~.restoration.impulses_by_channel`): the kind's values are that
    channel's.
    """
    ndim = net.config.ndim
    grid = net.config.grid
    block = tuple(
        min(round_up(max(int(b), grid), grid), round_up(s, grid))
        for b, s in zip(block, layout.spatial_shape, strict=True)
    )
    plan = plan_restore_tiles(
        _block_layout(layout, block, tile), net, dev, dtype, tile, overlap, batch_size
    )
    tiles = tuple(min(t, b) for t, b in zip(plan["tile"], block, strict=True))
    lead = tuple(layout.transposed_shape[: layout.n_batch_axes])
    image_sample = None
    if (
        graph_statistics
        and normalization is None
        and not layout.has_channel
        and net.config.normalization["method"] == "percentile"
        and math.prod(lead) > 1
    ):
        image_sample = image_sample_budget(math.prod(lead), xt)
        offset = scale = None
    else:
        offset, scale = normalization_arrays(xt, layout, net, normalization)
    kind = kind_of(net)
    colours = xt if opacity is None else split_alpha(xt, opacity)[0]
    if channel is not None:  # the channel alone: its values, in every image's place
        at, c = channel
        colours = xt[(slice(None),) * at + (slice(c, c + 1),)]
    post_values = kind.output_statistics(colours)
    blend = None
    guard_tasks = False
    known = guard_noise(light_noise_guard)  # the caller's noise, if described
    if guard_applies(net, light_noise_guard):  # each image's weight, as restore_iter's
        images = guard_shape(xt.shape, layout, colour)
        if graph_statistics and math.prod(images) > 1:
            guard_tasks = True  # a task per image beside its statistics (core.lazy)
        elif offset is None:  # one RGB image: its luminance, with its own statistics
            one = tuple(slice(0, 1) for _ in images)
            norm = net.config.normalization
            o, s = image_statistics(xt[one], len(lead), norm, budget=image_sample)
            blend = light_noise_weights(
                net, xt[one], layout, o, s, colour, dtype=dtype, noise=known
            )
        else:
            blend = light_noise_weights(
                net, xt, layout, offset, scale, colour, dtype=dtype, noise=known
            )
    cond_stats = None
    margin = (0,) * ndim
    if kind.extra_channels:
        images = colours
        if hasattr(colours, "rechunk") and layout.n_batch_axes:
            images = colours.rechunk({d: 1 for d in range(layout.n_batch_axes)})
        images = images.reshape(-1, *layout.spatial_shape)
        cond_stats = kind.input_statistics(images)
        axis = opacity if opacity is not None else None if channel is None else channel[0]
        if axis is not None:  # the opacity's images, or other channels' (other jobs')
            cond_stats = _extend_along(cond_stats, colours.shape[: len(lead)], axis, lead[axis])
        margin = kind.input_margin(layout.psf, ndim, cond_stats)
        if layout.psf_fraction is not None:  # the resampling's context
            margin = tuple(max(int(m), SUBPIXEL_RADIUS) for m in margin)
    if impulses is not None:  # the switching median's context, under the channel's
        margin = tuple(int(m) + IMPULSE_MARGIN for m in margin)
    return Job(
        transposed_shape=tuple(layout.transposed_shape),
        n_batch=layout.n_batch_axes,
        spatial=tuple(layout.spatial_shape),
        block=block,
        tile=tiles,
        halo=plan["halo"],
        grid=grid,
        batch_size=plan["batch_size"],
        offset=offset,
        scale=scale,
        kind=kind,
        post_values=post_values,
        kernel=layout.psf,
        margin=tuple(int(m) for m in margin),
        device=dev if device != "auto" else "auto",
        precision=precision,
        cond_stats=cond_stats,
        shift=layout.psf_shift,
        fraction=layout.psf_fraction,
        blend=blend,
        impulses=impulses,
        impulse_gap=impulse_gap,
        image_sample=image_sample,
        opacity_axis=opacity,
        guard_tasks=guard_tasks,
        guard_noise=known,
    )


def default_client() -> Any:
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None
