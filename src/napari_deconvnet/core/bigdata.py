"""Data bigger than memory: lazy restores, streaming to OME-Zarr, resume, clusters.

Every path here restores the image in **blocks**. A block is a box of the
output; it starts on a multiple of its size, which is a multiple of the
network's ``2**depth`` grid, so the tiles inside it start on the same grid as
an in-memory restore's, whatever the input's chunks. Its input is read with
the network's halo of context around it (mapped by index: the reflection of
the image at the image's borders, the neighbouring pixels elsewhere), plus,
for conditioned models, the context the classical channel needs
(:func:`~napari_deconvnet.core.conditioning.conditioning_margin`). Every
statistic a block depends on (normalisation, impulse values, the classical
channel's statistics) is computed once for the whole image before any block
runs, so blocks agree with each other and with an in-memory restore.

- :func:`lazy_restore` (``restore`` on a dask array) builds a dask graph of
  blocks.
- :func:`restore_to_zarr` streams blocks from a zarr, OME-Zarr, TIFF or
  ``.npy`` file (or an array) straight into a pre-created OME-Zarr, keeps a
  done-marker per block so that a rerun resumes, builds the pyramid from
  what was written, and writes the metadata last, atomically.
- Both run on a ``dask.distributed`` cluster. The model's weights travel to
  each worker once (broadcast, then cached per process, keyed by a hash of
  the weights), and each worker picks its own device (``device="auto"``: the
  worker's GPU, one worker per GPU, else its CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .conditioning import (
    conditioning_channels,
    conditioning_margin,
    conditioning_statistics,
    extra_channels,
    impulse_values,
)
from .devices import resolve_device, resolve_precision
from .model import DeconvNet, DeconvNetConfig
from .tiling import (
    Cancelled,
    Layout,
    _check_axes,
    _check_image,
    _round_up,
    keep_uncorrupted,
    normalization_arrays,
    plan_tiles,
    prepare_restore,
    private_model,
    reflect_index,
    run_tiles,
)

__all__ = ["lazy_restore", "restore_to_zarr"]

# Output blocks of streamed restores, per spatial axis (2D, 3D), unless chunks= says.
_DEFAULT_BLOCK = {2: (1024, 1024), 3: (64, 256, 256)}
_JOB_DIR = ".napari_deconvnet_job"
_LAYER_KEY = "napari_deconvnet_layer"  # the layer document the package's reader reads
_NGFF_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}


# ---------------------------------------------------------------- the model


@dataclasses.dataclass
class _ModelPayload:
    """A model as plain data: pickled once per worker, rebuilt once per process."""

    key: str
    config: DeconvNetConfig
    metadata: dict[str, Any]
    state: dict[str, np.ndarray]


def _payload(net: DeconvNet) -> _ModelPayload:
    state = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    # the metadata says how the model is used (conditioning, impulse switch): part of the key
    described = {"config": net.config.to_dict(), "metadata": net.metadata}
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(state[name]).tobytes())
    return _ModelPayload(digest.hexdigest(), net.config, dict(net.metadata), state)


_MODELS: dict[tuple[str, str], tuple[DeconvNet, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()
_LOADS: dict[str, int] = {}  # models built in this process, by key (the tests read it)


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


def _model_here(payload: _ModelPayload, device: Any) -> tuple[DeconvNet, threading.Lock]:
    """The payload's model on `device`, built once per process and device."""
    dev = _worker_device(device)
    key = (payload.key, str(dev))
    with _MODELS_LOCK:
        if key not in _MODELS:
            net = DeconvNet(payload.config)
            net.load_state_dict({k: torch.from_numpy(v) for k, v in payload.state.items()})
            net.metadata = dict(payload.metadata)
            fmt = torch.channels_last if payload.config.ndim == 2 else torch.channels_last_3d
            net = net.to(device=dev, memory_format=fmt).eval()
            while len(_MODELS) >= 4:
                _MODELS.pop(next(iter(_MODELS)))
            _MODELS[key] = (net, threading.Lock())
            _LOADS[payload.key] = _LOADS.get(payload.key, 0) + 1
        return _MODELS[key]


# ------------------------------------------------------------------ the job


@dataclasses.dataclass
class _Job:
    """What every block needs to know; small, picklable, the same for all blocks."""

    transposed_shape: tuple[int, ...]
    n_batch: int  # leading batch axes of the transposed layout
    spatial: tuple[int, ...]
    block: tuple[int, ...]
    tile: tuple[int, ...]
    halo: int
    grid: int
    batch_size: int
    offset: np.ndarray
    scale: np.ndarray
    impulses: dict[str, float] | None
    kernel: np.ndarray | None
    margin: tuple[int, ...]
    conditioned: bool
    device: Any
    precision: str
    cond_stats: list[dict[str, float]] | None = None

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
            "offset": self.offset.reshape(-1).tolist(),
            "scale": self.scale.reshape(-1).tolist(),
            "impulses": self.impulses,
            "kernel": None if self.kernel is None else hashlib.sha256(self.kernel).hexdigest(),
            "cond_stats": self.cond_stats,
            "precision": self.precision,
            **extra,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _input_region(job: _Job, batch: tuple[int, ...], sidx: tuple[int, ...]):
    """Slices of the transposed image a block reads, and its reflected indices into them."""
    slices, indices = [], []
    for (b0, b1), size, m in zip(job.bounds(sidx), job.spatial, job.margin, strict=True):
        end = _round_up(b1, job.grid)
        ref = reflect_index(b0 - job.halo, end + job.halo, size)
        r0 = max(0, int(ref.min()) - m)
        r1 = min(size, int(ref.max()) + 1 + m)
        slices.append(slice(r0, r1))
        indices.append(ref - r0)
    channel = len(job.transposed_shape) - job.n_batch - len(job.spatial)
    region = tuple(slice(i, i + 1) for i in batch) + (slice(None),) * channel + tuple(slices)
    return region, indices


def _block_plan(job: _Job, sidx: tuple[int, ...]) -> dict[str, Any]:
    """Tiles inside one block's extended input, on the image's grid."""
    tiles, starts = [], []
    for (b0, b1), t in zip(job.bounds(sidx), job.tile, strict=True):
        length = _round_up(b1, job.grid) - b0
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


def _restore_block(
    piece: Any, job: _Job, payload: _ModelPayload, block: tuple, hooks: Any = None
) -> np.ndarray:
    """Restore one block from its input `piece` (the region of :func:`_input_region`)."""
    batch, sidx = block[0], block[1]
    if hooks is not None:
        hooks.check()
    net, lock = _model_here(payload, job.device)
    dev = next(net.parameters()).device
    dtype = resolve_precision(job.precision, dev)
    raw = np.asarray(piece)
    _region, indices = _input_region(job, batch, sidx)
    offset, scale = _pick(job.offset, batch), _pick(job.scale, batch)
    lead = raw.shape[: raw.ndim - len(job.spatial)]
    spatial_ix = np.ix_(*indices)
    x = raw[(Ellipsis, *spatial_ix)].astype(np.float32)
    x -= offset
    x /= scale
    channels = [x.reshape(-1, *x.shape[len(lead) :])]
    if job.conditioned:
        images = raw.reshape(-1, *raw.shape[len(lead) :])
        flat = (
            int(np.ravel_multi_index(batch, job.transposed_shape[: job.n_batch])) if batch else 0
        )
        stats = [job.cond_stats[flat]]
        with lock:
            pre = conditioning_channels(images, job.kernel, net, device=dev, statistics=stats)
        pre = pre.reshape(raw.shape)[(Ellipsis, *spatial_ix)]
        pre -= offset
        pre /= scale
        channels.append(pre.reshape(-1, *pre.shape[len(lead) :]))
    xn = np.concatenate(channels)[None]
    plan = _block_plan(job, sidx)
    with lock:
        gen = run_tiles(xn, net, plan, dev, dtype)
        while True:
            try:
                next(gen)
            except StopIteration as finished:
                y = finished.value
                break
    bounds = job.bounds(sidx)
    crop = tuple(slice(job.halo, job.halo + (b1 - b0)) for b0, b1 in bounds)
    y = y[(0, slice(None), *crop)].reshape(*lead, *(b1 - b0 for b0, b1 in bounds))
    y *= scale
    y += offset
    if job.impulses is not None:
        own = tuple(
            slice(b0 - s.start, b1 - s.start)
            for (b0, b1), s in zip(bounds, _region[-len(bounds) :], strict=True)
        )
        keep_uncorrupted(raw[(Ellipsis, *own)], y, job.impulses)
    if hooks is not None:
        hooks.done()
    return y


class _Hooks:
    """progress and stop for lazy restores computed by a local dask scheduler."""

    def __init__(self, progress, stop, total: int) -> None:
        self.progress, self.stop, self.total = progress, stop, total
        self.count = 0
        self.lock = threading.Lock()

    def check(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Cancelled(f"restoration cancelled after {self.count} of {self.total} blocks")

    def done(self) -> None:
        with self.lock:
            self.count += 1
            count = self.count
        if self.progress is not None:
            self.progress(count, self.total)


def _make_job(
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
) -> _Job:
    """Plan the blocks and compute every statistic they share, once."""
    ndim = net.config.ndim
    plan = plan_tiles(
        layout.spatial_shape,
        net,
        tile=tile,
        overlap=overlap,
        device=dev,
        batch_size=batch_size,
        precision_bytes=2 if dtype != torch.float32 else 4,
    )
    grid = net.config.grid
    block = tuple(
        min(_round_up(max(int(b), grid), grid), _round_up(s, grid))
        for b, s in zip(block, layout.spatial_shape, strict=True)
    )
    tiles = tuple(min(t, b) for t, b in zip(plan["tile"], block, strict=True))
    offset, scale = normalization_arrays(xt, layout, net, normalization)
    impulses = impulse_values(xt) if net.metadata.get("impulse_switch") else None
    conditioned = bool(extra_channels(net))
    cond_stats = None
    if conditioned:
        images = xt
        if hasattr(xt, "rechunk") and layout.n_batch_axes:
            images = xt.rechunk({d: 1 for d in range(layout.n_batch_axes)})
        images = images.reshape(-1, *layout.spatial_shape)
        cond_stats = conditioning_statistics(images, net)
        margin = conditioning_margin(net, layout.psf)
    else:
        margin = (0,) * ndim
    return _Job(
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
        impulses=impulses,
        kernel=layout.psf,
        margin=tuple(int(m) for m in margin),
        conditioned=conditioned,
        device=device,
        precision=precision,
        cond_stats=cond_stats,
    )


def _default_client() -> Any:
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


# -------------------------------------------------------------- lazy restore


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
) -> Any:
    """:func:`~napari_deconvnet.restore` of a dask array: a lazy dask array of blocks.

    Blocks are the input's chunks along the spatial axes rounded up to the
    network's grid (and at least the tile), one per index of the other
    axes; their origins are on the grid whatever the chunks. The statistics
    are computed here, before the graph is built (see
    :mod:`~napari_deconvnet.core.normalization`), so that computing any part
    of the result needs only the input around it. On a ``dask.distributed``
    cluster the model is one key of the graph: each worker fetches it once.
    """
    import dask
    import dask.array as da

    net, axes, layout, dev, dtype = prepare_restore(image, model, psf, axes, device, precision)
    if (progress is not None or stop is not None) and _default_client() is not None:
        raise ValueError(
            "progress= and stop= need a local dask scheduler, but a dask.distributed client "
            "is active; use restore_to_zarr(..., client=client, progress=..., stop=...) on a "
            "cluster, or dask.distributed's progress bar"
        )
    xt = image.transpose(layout.perm)
    spatial_axes = range(layout.n_batch_axes + layout.has_channel, xt.ndim)
    user_tile = [0] * net.config.ndim
    if tile is not None:
        user_tile = [tile] * net.config.ndim if np.ndim(tile) == 0 else list(tile)
    block = [
        max(int(xt.chunks[d][0]), int(t)) for d, t in zip(spatial_axes, user_tile, strict=True)
    ]
    job = _make_job(
        xt,
        net,
        layout,
        tile=tile,
        overlap=overlap,
        dev=dev,
        dtype=dtype,
        batch_size=batch_size,
        precision=precision,
        device=dev if device != "auto" else "auto",
        normalization=normalization,
        block=block,
    )
    from dask.highlevelgraph import HighLevelGraph

    payload = _payload(net)
    token = dask.base.tokenize(image.name, payload.key, job.fingerprint(payload.key, {}))
    model_d = dask.delayed(payload, name=f"deconvnet-model-{payload.key[:16]}", traverse=False)
    job_d = dask.delayed(job, name=f"deconvnet-job-{token}", traverse=False)
    blocks = job.blocks()
    hooks = _Hooks(progress, stop, len(blocks)) if progress or stop else None
    # The graph is written directly, one task per block whose inputs are the
    # source chunks its region touches: building it costs microseconds per
    # block (slicing a dask array per block cost ~30 ms, minutes for a
    # 20,000-plane file).
    name = f"deconvnet-{token}"
    edges = [np.cumsum((0, *c)) for c in xt.chunks]
    channel = (0,) * layout.has_channel
    layer: dict = {}
    for batch, sidx in blocks:
        region, _ = _input_region(job, batch, sidx)
        spans = [_span(sl, n) for sl, n in zip(region, xt.shape, strict=True)]
        pieces = [
            _chunks_of(edge, start, stop) for edge, (start, stop) in zip(edges, spans, strict=True)
        ]
        keys, places = [], []
        for combo in _product(pieces):
            keys.append((xt.name, *(i for i, _, _ in combo)))
            places.append(tuple((dst, src) for _, dst, src in combo))
        shape = tuple(stop - start for start, stop in spans)
        plan = _Literal((places, shape, np.dtype(xt.dtype).str, (batch, sidx)))
        layer[(name, *batch, *channel, *sidx)] = (
            _restore_chunks,
            keys,
            job_d.key,
            model_d.key,
            plan,
            hooks,
        )
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[xt, model_d, job_d])
    lead = tuple((1,) * n for n in job.transposed_shape[: job.n_batch])
    chans = tuple((n,) for n in xt.shape[job.n_batch : xt.ndim - len(job.spatial)])
    spatial = tuple(
        tuple(min((i + 1) * b, size) - i * b for i in range(n))
        for b, size, n in zip(job.block, job.spatial, job.n_blocks(), strict=True)
    )
    out = da.Array(graph, name, lead + chans + spatial, dtype=np.float32)
    return out.transpose(layout.inverse)


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


def _product(pieces: list[list]) -> list[tuple]:
    import itertools

    return list(itertools.product(*pieces))


def _restore_chunks(chunks: list, job: _Job, payload, plan: _Literal, hooks) -> np.ndarray:
    """Assemble a block's input region from its source chunks, then restore it."""
    places, shape, dtype, block = plan.value
    piece = np.empty(shape, dtype=np.dtype(dtype))
    for chunk, place in zip(chunks, places, strict=True):
        dst = tuple(d for d, _ in place)
        src = tuple(s for _, s in place)
        piece[dst] = np.asarray(chunk)[src]
    return _restore_block(piece, job, payload, block, hooks)


# ------------------------------------------------------------------ sources


class _PathSource:
    """An image file read region by region, opened once per process (picklable)."""

    _open: dict[tuple[str, str, int], Any] = {}

    def __init__(self, path: Path, kind: str, component: str = "") -> None:
        self.path, self.kind, self.component = str(path), kind, component

    def array(self) -> Any:
        # a file replaced since it was opened is opened again
        key = (self.path, self.component, os.stat(self.path).st_mtime_ns)
        if key not in self._open:
            self._open[key] = _open_array(self.path, self.kind, self.component)
        return self._open[key]

    def __getstate__(self) -> dict:
        return {"path": self.path, "kind": self.kind, "component": self.component}


def _open_array(path: str, kind: str, component: str) -> Any:
    if kind == "zarr":
        import zarr

        group = zarr.open(path, mode="r")
        return group[component] if component else group
    if kind == "npy":
        return np.load(path, mmap_mode="r")
    import tifffile
    import zarr

    try:
        return tifffile.memmap(path, mode="r")
    except (ValueError, OSError):
        return zarr.open(tifffile.imread(path, aszarr=True), mode="r")


def _open_source(source: Any) -> tuple[Any, Any, dict[str, Any]]:
    """(array, path source or None, info from the file: axes, scale, translate, units)."""
    info: dict[str, Any] = {}
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise ValueError(f"source {str(path)!r} does not exist")
        name = path.name.lower()
        if path.is_dir() or name.endswith(".zarr"):
            import zarr

            try:
                node = zarr.open(str(path), mode="r")
            except Exception as err:  # zarr raises several types for foreign folders
                raise ValueError(f"{path} is not a zarr array or OME-Zarr image: {err}") from err
            component = ""
            if not hasattr(node, "shape"):
                attrs = dict(node.attrs)
                multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
                if not multiscales:
                    raise ValueError(
                        f"{path} is a zarr group without OME-Zarr 'multiscales' metadata; "
                        "pass the array inside it (e.g. 'image.zarr/0')"
                    )
                first = multiscales[0]
                component = first["datasets"][0]["path"]
                letters = "".join(str(a.get("name", "?"))[:1].upper() for a in first["axes"])
                info["axes"] = letters
                for t in first["datasets"][0].get("coordinateTransformations", []):
                    if t.get("type") == "scale":
                        info["scale"] = t["scale"]
                    if t.get("type") == "translation":
                        info["translate"] = t["translation"]
                info["units"] = [a.get("unit") for a in first["axes"]]
            src = _PathSource(path, "zarr", component)
            return src.array(), src, info
        if name.endswith(".npy"):
            src = _PathSource(path, "npy")
            return src.array(), src, info
        if name.endswith((".tif", ".tiff")):
            src = _PathSource(path, "tiff")
            return src.array(), src, info
        raise ValueError(
            f"cannot stream {path.name!r}: pass a .zarr / .ome.zarr folder, a .tif/.tiff, "
            "a .npy file, or an array"
        )
    _check_image(source)
    return source, None, info


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask.") and hasattr(x, "dask")


def _lazy(array: Any, block: Sequence[int] | None = None) -> Any:
    """A dask view of a file-backed array (numpy in memory stays numpy: exact stats)."""
    import dask.array as da

    if _is_dask(array):
        return array
    if isinstance(array, np.ndarray) and not isinstance(array, np.memmap):
        if getattr(array, "base", None) is None or not isinstance(array.base, np.memmap):
            return array
    chunks = getattr(array, "chunks", None)
    if not (isinstance(chunks, tuple) and all(isinstance(c, int) for c in chunks)):
        chunks = "auto"
    return da.from_array(array, chunks=chunks, asarray=True, lock=False)


# ------------------------------------------------------------- the target


def _ngff_axes(axes: str) -> tuple[str, list[int]]:
    """NGFF order (time, channel, space) of `axes` (``S`` becomes the channel)."""
    named = axes.replace("S", "C")
    order = "".join(a for a in "TCZYX" if a in named)
    return order, [named.index(a) for a in order]


def _atomic_json(path: Path, doc: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _create_level(group: Any, name: str, shape, chunks) -> Any:
    import numcodecs
    import zarr

    compressor = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)
    chunks = tuple(min(c, s) for c, s in zip(chunks, shape, strict=True))
    if int(zarr.__version__.split(".")[0]) >= 3:
        return group.create_array(
            name,
            shape=shape,
            chunks=chunks,
            dtype=np.float32,
            compressors=compressor,
            chunk_key_encoding={"name": "v2", "separator": "/"},
            fill_value=0,
            overwrite=True,
        )
    return group.create_dataset(
        name,
        shape=shape,
        chunks=chunks,
        dtype=np.float32,
        compressor=compressor,
        dimension_separator="/",
        fill_value=0,
        overwrite=True,
    )


def _open_group(path: Path, mode: str) -> Any:
    import zarr

    if int(zarr.__version__.split(".")[0]) >= 3:
        return zarr.open_group(str(path), mode=mode, zarr_format=2)
    return zarr.open_group(str(path), mode=mode)


def _target_array(path: str) -> Any:
    """Level 0 of the target, opened for each block (a rerun may have replaced it)."""
    import zarr

    return zarr.open_array(str(Path(path) / "0"), mode="r+")


def _write_block(
    piece: Any,
    reader: Any,
    job: _Job,
    payload: _ModelPayload,
    block: tuple,
    number: int,
    target: str,
    out_perm: list[int],
    inverse: list[int],
) -> int:
    """Read (when `piece` is None), restore and write one block, then mark it done."""
    batch, sidx = block
    if piece is None:
        region, _ = _input_region(job, batch, sidx)
        piece = _read(reader, region)
    y = _restore_block(piece, job, payload, block)
    bounds = job.bounds(sidx)
    channel = len(job.transposed_shape) - job.n_batch - len(job.spatial)
    region_t = (
        tuple(slice(i, i + 1) for i in batch)
        + (slice(None),) * channel
        + tuple(slice(b0, b1) for b0, b1 in bounds)
    )
    region_o = [region_t[i] for i in inverse]
    _target_array(target)[tuple(region_o[i] for i in out_perm)] = y.transpose(inverse).transpose(
        out_perm
    )
    marker = Path(target) / _JOB_DIR / "done" / str(number)
    marker.touch()
    return number


def _read(reader: tuple[Any, list[int]], region_t: tuple) -> np.ndarray:
    """A region (in the transposed layout) of the source as numpy."""
    array, perm = reader
    if isinstance(array, _PathSource):
        array = array.array()
    region_o = [None] * len(perm)
    for t, o in enumerate(perm):
        region_o[o] = region_t[t]
    piece = array[tuple(region_o)]
    if _is_dask(piece):
        piece = piece.compute(scheduler="synchronous")
    return np.asarray(piece).transpose(perm)


def _layer_document(name: str, axes: str, info: dict[str, Any], provenance: dict) -> dict:
    """The layer document :mod:`napari_deconvnet.io` writes and reads (format 1)."""
    doc: dict[str, Any] = {
        "format": "napari-deconvnet-layer",
        "format_version": 1,
        "name": name,
        "axes": axes,
        "metadata": {"napari_deconvnet": provenance},
    }
    return json.loads(
        json.dumps(doc, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    )


def _prepare_target(
    target: Path, fingerprint: str, resume: bool, overwrite: bool, shape, chunks
) -> set[int] | None:
    """Create the OME-Zarr (level 0 and the job folder) or find what a killed run left.

    Returns the numbers of the finished blocks, or None when the same job is
    complete already.
    """
    job_dir = target / _JOB_DIR
    if target.exists() and overwrite:
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    if target.exists():
        previous = None
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            previous = json.loads((job_dir / "job.json").read_text())["fingerprint"]
        if previous is None and not job_dir.exists():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                attrs = json.loads((target / ".zattrs").read_text())
                done = attrs[_LAYER_KEY]["metadata"]["napari_deconvnet"]["job"]
                if resume and done == fingerprint:
                    return None
        if not resume or previous != fingerprint:
            what = (
                "an unfinished restore of other data or with other settings"
                if previous is not None
                else "other data"
            )
            raise ValueError(
                f"{target} exists and holds {what}; pass overwrite=True to replace it"
                + ("" if resume else " (resume=False never continues a previous run)")
            )
    else:
        target.mkdir(parents=True)
    (job_dir / "done").mkdir(parents=True, exist_ok=True)
    if not (job_dir / "job.json").exists():
        _atomic_json(job_dir / "job.json", {"fingerprint": fingerprint})
    if not (target / "0" / ".zarray").exists():
        group = _open_group(target, "a")
        _create_level(group, "0", shape, chunks)
    return {int(p.name) for p in (job_dir / "done").iterdir() if p.name.isdigit()}


def _pyramid(target: Path, zaxes: str, chunks, client: Any) -> list[tuple[int, ...]]:
    """Levels 1, 2, ... averaged 2x2 in Y and X from the level before, as written."""
    import dask
    import dask.array as da
    import zarr

    group = _open_group(target, "r+")
    level = zarr.open_array(str(target / "0"), mode="r")
    shapes = [level.shape]
    yx_chunk = max(c for a, c in zip(zaxes, chunks, strict=True) if a in "YX")
    k = 0
    while True:
        yx = [s for a, s in zip(zaxes, level.shape, strict=True) if a in "YX"]
        if max(yx) <= yx_chunk or min(yx) < 2:
            break
        factors = {i: (2 if a in "YX" else 1) for i, a in enumerate(zaxes)}
        down = da.coarsen(np.mean, da.from_zarr(level), factors, trim_excess=True)
        down = down.astype(np.float32)
        k += 1
        arr = _create_level(group, str(k), down.shape, chunks)
        store = da.store(down.rechunk(arr.chunks), arr, lock=False, compute=False)
        if client is not None:
            client.compute(store).result()
        else:
            dask.compute(store, scheduler="threads")
        level = zarr.open_array(str(target / str(k)), mode="r")
        shapes.append(level.shape)
    return shapes


def _multiscales(name: str, zaxes: str, shapes, info: dict[str, Any], axes_from_file: str):
    by_letter = {}
    if axes_from_file == zaxes:
        by_letter = {
            "scale": dict(zip(zaxes, info.get("scale", []), strict=False)),
            "translate": dict(zip(zaxes, info.get("translate", []), strict=False)),
            "units": dict(zip(zaxes, info.get("units", []), strict=False)),
        }
    scale0 = [float(by_letter.get("scale", {}).get(a, 1.0)) for a in zaxes]
    translate0 = [float(by_letter.get("translate", {}).get(a, 0.0)) for a in zaxes]
    ngff_axes = []
    for a in zaxes:
        entry = {"name": a.lower(), "type": _NGFF_TYPES[a]}
        unit = by_letter.get("units", {}).get(a)
        if unit and a != "C":
            entry["unit"] = unit
        ngff_axes.append(entry)
    datasets = []
    for k in range(len(shapes)):
        factor = [2**k if a in "YX" else 1 for a in zaxes]
        datasets.append(
            {
                "path": str(k),
                "coordinateTransformations": [
                    {
                        "type": "scale",
                        "scale": [s * f for s, f in zip(scale0, factor, strict=True)],
                    },
                    {
                        "type": "translation",
                        "translation": [
                            t + (f - 1) * s / 2
                            for t, f, s in zip(translate0, factor, scale0, strict=True)
                        ],
                    },
                ],
            }
        )
    return [
        {"version": "0.4", "name": name, "axes": ngff_axes, "datasets": datasets, "type": "mean"}
    ]


def restore_to_zarr(
    source: Any,
    target: str | os.PathLike,
    model: Any = "default",
    *,
    psf: Any = None,
    axes: str | None = None,
    tile: int | Sequence[int] | None = None,
    chunks: int | Sequence[int] | None = None,
    overlap: int | None = None,
    device: Any = "auto",
    batch_size: int | None = None,
    precision: str = "auto",
    normalization: dict[str, Any] | None = None,
    resume: bool = True,
    overwrite: bool = False,
    client: Any = None,
    progress: Callable[[int, int], Any] | None = None,
    stop: threading.Event | None = None,
    name: str | None = None,
) -> str:
    """Restore an image block by block straight into an OME-Zarr, resumably.

    Parameters
    ----------
    source : path, ndarray, dask array or zarr array
        A zarr array or OME-Zarr image folder (level 0 is read; its axes and
        scale are kept), a TIFF (memory-mapped when uncompressed, else read
        chunk by chunk), a ``.npy`` file (memory-mapped), or an array. Only
        the region each block needs is read.
    target : path
        The OME-Zarr (NGFF 0.4, zarr format 2, float32) to write, e.g.
        ``"out.ome.zarr"``. Axes are stored in NGFF order (time, channel,
        space; RGB samples become the channel axis).
    model, psf, axes, tile, overlap, device, batch_size, precision
        As for :func:`~napari_deconvnet.restore`; every model works,
        conditioned ones included.
    chunks : int or sequence of int, optional
        Output block (and chunk) size per spatial axis, rounded up to the
        network's grid; default 1024 x 1024 (2D models), 64 x 256 x 256 (3D).
    normalization : dict, optional
        Fixed ``{"offset", "scale"}``; default the model's contract, with
        statistics from a deterministic sample of the source's chunks (exact
        for numpy arrays in memory), see :mod:`~napari_deconvnet.core.normalization`.
    resume : bool
        When `target` holds an unfinished run of the same job (same source
        shape, model, statistics and settings), finish it: blocks marked done
        are skipped. A finished identical job returns at once.
    overwrite : bool
        Replace an existing `target` that holds something else.
    client : dask.distributed.Client, False or None
        Run the blocks on this cluster (workers read the source and write the
        target themselves, so both must be on a shared file system when
        they are paths). ``None`` uses the running default client if there is
        one, ``False`` never.
    progress : callable, optional
        ``progress(blocks_done, n_blocks)`` after every block (resumed blocks
        count as done).
    stop : threading.Event, optional
        Stops before the next block and raises
        :class:`~napari_deconvnet.Cancelled`; what was written stays, and a
        rerun resumes.
    name : str, optional
        The image's name in the metadata; default the target's file name.

    Returns
    -------
    str
        The path of the written OME-Zarr.

    Notes
    -----
    The target is created first (level 0, then a ``.napari_deconvnet_job``
    folder holding the job's fingerprint and one empty marker per finished
    block). Each block is read with its context, restored and written into
    the chunks it covers (blocks never share a chunk), then marked done. When
    all are done, the pyramid levels are averaged from level 0 as written,
    the metadata (``multiscales`` and the layer's provenance) is written to
    ``.zattrs`` atomically (temp file, fsync, rename), and the job folder is
    removed. Until then, readers do not see an OME-Zarr image. Blocks are
    computed as by :func:`~napari_deconvnet.restore` on a dask array, so the
    result equals a lazy restore of the same chunked data.
    """
    from .._version import __version__

    started = time.perf_counter()
    array, path_source, info = _open_source(source)
    if axes is None and info.get("axes"):
        with contextlib.suppress(ValueError, TypeError):
            axes = info["axes"]
            net0 = private_model(model)
            axes = _check_axes(axes, array.shape, net0)
    net, axes, layout, dev, dtype = prepare_restore(array, model, psf, axes, device, precision)
    if client is None:
        client = _default_client()
    elif client is False:
        client = None
    lazy = _lazy(array)
    xt = lazy.transpose(layout.perm)
    ndim = net.config.ndim
    if chunks is None:
        block = list(_DEFAULT_BLOCK[ndim])
    else:
        block = [chunks] * ndim if np.ndim(chunks) == 0 else list(chunks)
        if len(block) != ndim or any(
            isinstance(b, bool) or not isinstance(b, int | np.integer) or b < 1 for b in block
        ):
            raise ValueError(
                f"chunks must be a positive integer or {ndim} positive integers (one per "
                f"spatial axis), got {chunks!r}"
            )
    job = _make_job(
        xt,
        net,
        layout,
        tile=tile,
        overlap=overlap,
        dev=dev,
        dtype=dtype,
        batch_size=batch_size,
        precision=precision,
        device=dev if device != "auto" else "auto",
        normalization=normalization,
        block=block,
    )
    payload = _payload(net)
    zaxes, zperm = _ngff_axes(axes)
    spatial_letters = "ZYX"[3 - ndim :]
    chunk_o = []
    for a, s in zip(axes, array.shape, strict=True):
        if a in spatial_letters:
            chunk_o.append(job.block[spatial_letters.index(a)])
        elif layout.has_channel and a in "CS":
            chunk_o.append(s)
        else:
            chunk_o.append(1)
    out_shape = tuple(int(array.shape[i]) for i in zperm)
    out_chunks = tuple(chunk_o[i] for i in zperm)
    described = str(Path(source).resolve()) if path_source is not None else "array"
    fingerprint = job.fingerprint(
        payload.key,
        {"source": described, "dtype": str(array.dtype), "axes": axes, "version": 1},
    )
    target = Path(target)
    done = _prepare_target(target, fingerprint, resume, overwrite, out_shape, out_chunks)
    blocks = job.blocks()
    total = len(blocks)
    if done is None:
        if progress is not None:
            progress(total, total)
        return str(target)
    todo = [n for n in range(total) if n not in done]
    count = total - len(todo)
    reader = (path_source if path_source is not None else array, layout.perm)
    args = (str(target), zperm, layout.inverse)

    def report() -> None:
        if progress is not None:
            progress(count, total)

    if client is None:
        for n in todo:
            if stop is not None and stop.is_set():
                raise Cancelled(
                    f"restoration cancelled after {count} of {total} blocks; run again with "
                    "resume=True to continue"
                )
            _write_block(None, reader, job, payload, blocks[n], n, *args)
            count += 1
            report()
    else:
        count = _run_on_cluster(
            client,
            todo,
            blocks,
            job,
            payload,
            reader,
            xt,
            args,
            fingerprint,
            count,
            report,
            stop,
        )
    shapes = _pyramid(target, zaxes, out_chunks, client)
    offset, scale = job.offset.reshape(-1).tolist(), job.scale.reshape(-1).tolist()
    provenance = {
        "model": net.metadata.get("name", str(model) if isinstance(model, str) else "custom"),
        "model_sha256": payload.key,
        "psf": None if job.kernel is None else list(job.kernel.shape),
        "tile": list(job.tile),
        "block": list(job.block),
        "halo": job.halo,
        "normalization": {"offset": offset, "scale": scale},
        "source": described,
        "streamed": True,
        "seconds": round(time.perf_counter() - started, 3),
        "version": __version__,
        "job": fingerprint,
    }
    label = name or target.name.split(".")[0]
    attrs = {
        "multiscales": _multiscales(label, zaxes, shapes, info, info.get("axes", "")),
        _LAYER_KEY: _layer_document(label, zaxes, info, provenance),
    }
    _atomic_json(target / ".zattrs", attrs)
    shutil.rmtree(target / _JOB_DIR, ignore_errors=True)
    return str(target)


def _run_on_cluster(
    client, todo, blocks, job, payload, reader, xt, args, fingerprint, count, report, stop
) -> int:
    """Blocks as tasks on a dask.distributed cluster, a bounded number in flight."""
    from distributed import as_completed

    [payload_f] = client.scatter([payload], broadcast=True)
    [job_f] = client.scatter([job], broadcast=True)
    window = max(2, 2 * sum(client.nthreads().values()))
    queue = list(todo)
    path_based = isinstance(reader[0], _PathSource)
    total = len(blocks)

    def submit(n: int) -> Any:
        batch, sidx = blocks[n]
        piece = None
        if not path_based:
            region, _ = _input_region(job, batch, sidx)
            piece = client.compute(xt[region]) if _is_dask(xt) else _read(reader, region)
        return client.submit(
            _write_block,
            piece,
            reader if path_based else None,
            job_f,
            payload_f,
            blocks[n],
            n,
            *args,
            key=f"deconvnet-write-{fingerprint[:16]}-{n}",
            pure=False,
        )

    pending = as_completed()
    live = set()
    try:
        for _ in range(min(window, len(queue))):
            f = submit(queue.pop(0))
            live.add(f)
            pending.add(f)
        for f in pending:
            f.result()
            live.discard(f)
            count += 1
            report()
            if stop is not None and stop.is_set():
                raise Cancelled(
                    f"restoration cancelled after {count} of {total} blocks; run again with "
                    "resume=True to continue"
                )
            if queue:
                g = submit(queue.pop(0))
                live.add(g)
                pending.add(g)
    except BaseException:
        client.cancel(list(live))
        raise
    return count
