"""Tiled N-D inference: axes handling, normalisation, exact seamless tiling.

A tile is the output block a network call produces; it is given ``halo``
pixels of context on every side. Tiles start on the network's ``2**depth``
grid and the halo is at least the receptive-field extent, so every output
pixel sees exactly the input it would see in one untiled call: tiled output
equals untiled output up to floating-point rounding. Outside the image the
context is the reflection of the image (``numpy.pad(mode="reflect")``).
"""

from __future__ import annotations

import copy
import math
import threading
import warnings
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import torch

from .conditioning import conditioning_channels, extra_channels, impulse_values, prepare_psf
from .devices import autocast, forward_tiles, free_memory, resolve_device, resolve_precision
from .model import DeconvNet
from .normalization import channel_statistics, fixed_statistics
from .persistence import load_model

__all__ = [
    "Cancelled",
    "compute_normalization",
    "infer_axes",
    "plan_tiles",
    "restore",
    "restore_iter",
]

_AXES = "TZCYXS"
# Inference activations on the CPU are capped so that memory stays linear in
# image size (the input, its float copy and the output dominate).
# 3D tiles need a larger budget: with a halo on all three axes, small tiles
# spend most of their work on context.
_CPU_TILE_BUDGET = {2: 192 * 1024**2, 3: 2 * 1024**3}
_GPU_BUDGET_FRACTION = 0.5


class Cancelled(Exception):
    """Raised by :func:`restore` when its ``stop`` event is set."""


# ----------------------------------------------------------------- validation


def _check_image(image: Any) -> None:
    dtype = getattr(image, "dtype", None)
    shape = getattr(image, "shape", None)
    if dtype is None or shape is None:
        raise TypeError(
            f"image must be a numpy or dask array, got {type(image).__name__}; "
            "convert it with numpy.asarray first"
        )
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(
            f"image has complex dtype {dtype}; only real data is accepted "
            "(bool, integer or float): pass image.real or abs(image)"
        )
    if not (
        dtype.kind == "b" or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    ):
        raise TypeError(f"image dtype {dtype} is not numeric; use bool, integer or float data")
    if 0 in shape or len(shape) == 0:
        raise ValueError(f"image is empty (shape {tuple(shape)}); nothing to restore")


def infer_axes(shape: Sequence[int], model: DeconvNet) -> str:
    """Default axes for an array of `shape` processed by `model`.

    ``2-D`` -> ``"YX"``. ``3-D`` -> ``"ZYX"`` (with a 2D model, plane by plane),
    or ``"YXS"`` for a 2D model when the last axis has 3 or 4 samples (RGB/RGBA).
    ``4-D`` -> ``"TZYX"``, or ``"TYXS"`` for a 2D model and 3-4 trailing samples.
    ``5-D`` -> ``"TZCYX"`` (ImageJ order).
    """
    ndim = len(shape)
    rgb = shape[-1] in (3, 4) and model.config.ndim == 2
    table = {2: "YX", 3: "YXS" if rgb else "ZYX", 4: "TYXS" if rgb else "TZYX", 5: "TZCYX"}
    if ndim not in table:
        raise ValueError(
            f"cannot guess the axes of a {ndim}-D image; pass axes= with one letter per "
            f"dimension from {_AXES!r}, e.g. 'TZCYX'"
        )
    return table[ndim]


def _check_axes(axes: Any, shape: Sequence[int], model: DeconvNet) -> str:
    if axes is None:
        return infer_axes(shape, model)
    if not isinstance(axes, str):
        raise TypeError(f"axes must be a string such as 'ZYX', got {type(axes).__name__}")
    axes = axes.upper()
    if len(axes) != len(shape):
        raise ValueError(
            f"axes {axes!r} has {len(axes)} letters but the image has {len(shape)} dimensions "
            f"(shape {tuple(shape)}); pass one letter per axis from {_AXES!r}, e.g. "
            f"{infer_axes(shape, model)!r}"
        )
    bad = sorted(set(axes) - set(_AXES))
    if bad:
        raise ValueError(f"axes {axes!r} has unknown letters {bad}; use letters from {_AXES!r}")
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} repeats a letter; each axis letter may appear once")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} must contain 'Y' and 'X'")
    if "C" in axes and "S" in axes:
        raise ValueError(f"axes {axes!r} has both 'C' and 'S'; use one channel axis")
    if model.config.ndim == 3 and "Z" not in axes:
        raise ValueError(
            f"this model restores 3D volumes and needs a 'Z' axis, but axes are {axes!r}; "
            "use a 2D model for 2D images"
        )
    return axes


# ------------------------------------------------------------------- layout


class Layout:
    """How an array with named axes maps onto ``(N, C, *spatial)`` network input."""

    def __init__(self, axes: str, shape: Sequence[int], model: DeconvNet) -> None:
        cfg = model.config
        spatial = "ZYX"[3 - cfg.ndim :]
        missing = [a for a in spatial if a not in axes]
        if missing:
            raise ValueError(
                f"this model is {cfg.ndim}D and needs the axes {spatial!r}, but the image's "
                f"axes are {axes!r} (shape {tuple(shape)}, no {''.join(missing)!r}); pass a "
                f"{cfg.ndim}D image (e.g. axes={spatial!r}) or use a {len(axes)}D model such "
                "as 'denoise-2d'"
            )
        channel = next((a for a in axes if a in "CS"), None)
        n_channels = shape[axes.index(channel)] if channel else 1
        # a deconvolution model's extra input channel is made from the image
        in_channels = cfg.in_channels - extra_channels(model)
        if in_channels > 1:
            if channel is None or n_channels != in_channels:
                raise ValueError(
                    f"this model takes {in_channels} channels per pixel but the image "
                    f"{'has ' + str(n_channels) if channel else 'has no channel axis'} "
                    f"(axes {axes!r}, shape {tuple(shape)}); mark the channel axis with 'C' or 'S'"
                )
            model_channel = channel
        else:
            model_channel = None
        if cfg.out_channels != in_channels:
            raise ValueError(
                f"model maps {in_channels} to {cfg.out_channels} channels; restore needs "
                "a model whose output has as many channels as its input"
            )
        batch = [a for a in axes if a not in spatial and a != model_channel]
        order = batch + ([model_channel] if model_channel else []) + list(spatial)
        self.perm = tuple(axes.index(a) for a in order)
        self.inverse = tuple(int(i) for i in np.argsort(self.perm))
        self.stat_axis = order.index(channel) if channel else None
        self.n_batch_axes = len(batch)
        self.has_channel = model_channel is not None
        self.spatial_shape = tuple(shape[axes.index(a)] for a in spatial)
        n = int(np.prod([shape[axes.index(a)] for a in batch], dtype=np.int64))
        c = n_channels if model_channel else 1
        self.net_shape = (n, c, *self.spatial_shape)
        self.transposed_shape = tuple(shape[i] for i in self.perm)

    def to_net(self, x: np.ndarray) -> np.ndarray:
        return x.transpose(self.perm).reshape(self.net_shape)

    def from_net(self, y: np.ndarray) -> np.ndarray:
        return y.reshape(self.transposed_shape).transpose(self.inverse)


# ------------------------------------------------------------ normalisation


def normalization_arrays(
    xt: Any, layout: Layout, model: DeconvNet, normalization: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) float32, broadcastable to the transposed array `xt`.

    `normalization` is the user's fixed statistics (``{"offset", "scale"}``),
    else the model's contract is applied to `xt` (exact in memory, sampled
    for dask; see :mod:`~napari_deconvnet.core.normalization`).
    """
    k = layout.stat_axis
    n_ch = layout.transposed_shape[k] if k is not None else 1
    if normalization is not None:
        offsets, scales = fixed_statistics(normalization, n_ch)
    else:
        offsets, scales = channel_statistics(xt, model.config.normalization, k)
    shape = [1] * len(layout.transposed_shape)
    if k is not None:
        shape[k] = n_ch
    return offsets.reshape(shape), scales.reshape(shape)


def compute_normalization(
    image: Any, model: str | DeconvNet = "default", *, axes: str | None = None
) -> dict[str, Any]:
    """The statistics :func:`restore` would normalise `image` with.

    Parameters
    ----------
    image : ndarray or dask array
        Exact percentiles for numpy data; a deterministic sample of the
        chunks for dask data (:func:`~napari_deconvnet.core.normalization.sample_values`).
    model : str, path or DeconvNet
        Its normalisation contract decides what is computed.
    axes : str, optional
        As for :func:`restore`; a channel axis gets one offset and scale per
        channel.

    Returns
    -------
    dict
        ``{"offset": o, "scale": s}``, floats or lists with one per channel:
        pass it as ``restore(..., normalization=...)`` to restore other data,
        blocks or time points with the same numbers (bioimage.io's
        ``fixed_dataset_statistics``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0, 200, 10001).reshape(73, 137)
    >>> stats = compute_normalization(x)
    >>> round(stats["offset"], 3), round(stats["scale"], 3)
    (1.0, 198.0)
    """
    _check_image(image)
    net = load_model(model)
    axes = _check_axes(axes, image.shape, net)
    layout = Layout(axes, image.shape, net)
    offsets, scales = normalization_arrays(image.transpose(layout.perm), layout, net)
    if layout.stat_axis is None:
        return {"offset": float(offsets.reshape(-1)[0]), "scale": float(scales.reshape(-1)[0])}
    return {"offset": offsets.reshape(-1).tolist(), "scale": scales.reshape(-1).tolist()}


# ------------------------------------------------------------------ tiling


def reflect_index(start: int, stop: int, size: int) -> np.ndarray:
    """Indices of ``numpy.pad(mode="reflect")`` for positions ``start..stop-1``."""
    idx = np.arange(start, stop)
    if size == 1:
        return np.zeros_like(idx)
    period = 2 * (size - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= size, period - idx, idx)


def _round_up(value: int, grid: int) -> int:
    return int(math.ceil(value / grid) * grid)


def _cheapest_tile(padded: Sequence[int], halo: int, grid: int, max_pixels: float) -> list[int]:
    """The tile shape that processes the fewest pixels (halos included) in all.

    Candidates per axis split it evenly into k tiles on the grid; among the
    shapes whose haloed size fits `max_pixels`, the one with the least total
    work (tiles x haloed tile size) wins, so thin axes (few Z planes) stay
    whole and the halo overhead is spread where it costs least.
    """
    axes = []
    for p in padded:
        sizes = sorted({_round_up(math.ceil(p / k), grid) for k in range(1, p // grid + 1)})
        sizes = np.asarray(sizes, dtype=np.float64)
        axes.append((sizes, np.ceil(p / sizes)))
    mesh_t = np.meshgrid(*(a[0] for a in axes), indexing="ij")
    mesh_n = np.meshgrid(*(a[1] for a in axes), indexing="ij")
    tile_px = np.prod([t + 2 * halo for t in mesh_t], axis=0)
    work = tile_px * np.prod(mesh_n, axis=0)
    work[tile_px > max_pixels] = np.inf
    if not np.isfinite(work).any():  # nothing fits: the smallest tile
        return [grid] * len(padded)
    best = np.unravel_index(np.argmin(work), work.shape)
    return [int(m[best]) for m in mesh_t]


def plan_tiles(
    spatial_shape: Sequence[int],
    model: DeconvNet,
    *,
    tile: int | Sequence[int] | None = None,
    overlap: int | None = None,
    device: torch.device | None = None,
    batch_size: int | None = None,
    n_images: int = 1,
    precision_bytes: int = 4,
) -> dict[str, Any]:
    """Choose tile size, halo and batch size; see :func:`restore` for the rules."""
    cfg = model.config
    grid = cfg.grid
    ndim = cfg.ndim
    device = device or torch.device("cpu")
    if overlap is None:
        halo = model.halo
    else:
        if isinstance(overlap, bool) or not isinstance(overlap, int | np.integer) or overlap < 0:
            raise ValueError(f"overlap must be a non-negative integer, got {overlap!r}")
        halo = _round_up(int(overlap), grid)
        if halo < model.halo:
            warnings.warn(
                f"overlap {overlap} is smaller than the receptive-field extent of this model "
                f"({model.halo}); tiles will not match untiled output and seams may appear",
                stacklevel=3,
            )
    padded = [_round_up(s, grid) for s in spatial_shape]
    bytes_px = model.activation_bytes_per_pixel(precision_bytes)
    available = free_memory(device)
    if device.type == "cpu":
        budget = min(_CPU_TILE_BUDGET[ndim], available // 4)
    else:
        budget = int(available * _GPU_BUDGET_FRACTION)
    if tile is None:
        tiles = _cheapest_tile(padded, halo, grid, max(budget / bytes_px, 1.0))
    else:
        tiles_in = [tile] * ndim if isinstance(tile, int | np.integer) else list(tile)
        if len(tiles_in) != ndim or any(
            isinstance(t, bool) or not isinstance(t, int | np.integer) or t < 1 for t in tiles_in
        ):
            raise ValueError(
                f"tile must be a positive integer or {ndim} positive integers (one per spatial "
                f"axis), got {tile!r}"
            )
        if any(t > s for t, s in zip(tiles_in, spatial_shape, strict=True)):
            raise ValueError(
                f"tile {tuple(int(t) for t in tiles_in)} is larger than the image's spatial shape "
                f"{tuple(spatial_shape)}; pass tile=None (automatic) or a tile no larger "
                "than the image"
            )
        tiles = [min(_round_up(int(t), grid), p) for t, p in zip(tiles_in, padded, strict=True)]
    tile_bytes = bytes_px * math.prod(t + 2 * halo for t in tiles)
    if tile_bytes > available:
        raise ValueError(
            f"tile {tuple(tiles)} needs about {tile_bytes / 1e9:.1f} GB on {device} but only "
            f"{available / 1e9:.1f} GB are free; pass a smaller tile or tile=None"
        )
    starts = []
    for t, p in zip(tiles, padded, strict=True):
        s = list(range(0, p - t + 1, t))
        if s[-1] + t < p:
            s.append(p - t)
        starts.append(s)
    per_image = math.prod(len(s) for s in starts)
    if batch_size is None:
        batch_size = int(max(1, min(budget // max(tile_bytes, 1), 64, per_image * n_images)))
    elif isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return {
        "tile": tuple(tiles),
        "halo": halo,
        "starts": starts,
        "batch_size": batch_size,
        "n_tiles": per_image * n_images,
    }


def run_tiles(
    x: np.ndarray,
    model: DeconvNet,
    plan: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Run `model` over normalised ``(N, C, *S)`` float32 `x`, tile by tile."""
    n_images, _, *spatial = x.shape
    tiles, halo, batch_size = plan["tile"], plan["halo"], plan["batch_size"]
    out = np.empty((n_images, model.config.out_channels, *spatial), np.float32)
    jobs = [
        (n, corner)
        for n in range(n_images)
        for corner in np.ndindex(*(len(s) for s in plan["starts"]))
    ]
    total = len(jobs)
    # channels-last is about twice as fast for these convolutions on the CPU
    fmt = torch.channels_last if model.config.ndim == 2 else torch.channels_last_3d
    net = model.to(device=device, memory_format=fmt).eval()
    done = 0
    for first in range(0, total, batch_size):
        batch = jobs[first : first + batch_size]
        regions, inputs = [], []
        for n, corner in batch:
            origin = [plan["starts"][d][i] for d, i in enumerate(corner)]
            index = [
                reflect_index(o - halo, o + t + halo, s)
                for o, t, s in zip(origin, tiles, spatial, strict=True)
            ]
            inputs.append(x[n][np.ix_(np.arange(x.shape[1]), *index)])
            regions.append((n, origin))
        xb = torch.from_numpy(np.stack(inputs)).to(device).contiguous(memory_format=fmt)
        # grad mode is per thread and a generator may be abandoned mid-way (a
        # cancelled worker): never hold inference mode across a yield
        with torch.inference_mode(), autocast(device, dtype):
            # on out-of-memory, smaller pieces with the same result (and a warning)
            yb = forward_tiles(net, xb, halo=halo, grid=model.config.grid)
        yb = yb.float().cpu().numpy()
        for (n, origin), y in zip(regions, yb, strict=True):
            dst = tuple(
                slice(o, min(o + t, s)) for o, t, s in zip(origin, tiles, spatial, strict=True)
            )
            src = tuple(slice(halo, halo + (d.stop - d.start)) for d in dst)
            out[(n, slice(None), *dst)] = y[(slice(None), *src)]
        done += len(batch)
        yield done, total
    return out


# -------------------------------------------------------------- public API


def private_model(model: Any) -> DeconvNet:
    """`model` loaded; a caller's DeconvNet is copied, so that restoring never
    changes its device, mode or memory format."""
    net = load_model(model)
    if net is model:
        net = copy.deepcopy(net)
    return net


def prepare_restore(image, model, psf, axes, device, precision):
    _check_image(image)
    net = private_model(model)
    axes = _check_axes(axes, image.shape, net)
    layout = Layout(axes, image.shape, net)
    layout.psf = prepare_psf(psf, net, layout.spatial_shape)
    small = [s for s in layout.spatial_shape if s < net.config.grid]
    if small:
        raise ValueError(
            f"image spatial shape {layout.spatial_shape} (axes {axes!r}) is smaller than this "
            f"model's minimum of {net.config.grid} pixels per spatial axis"
        )
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    return net, axes, layout, dev, dtype


def restore_iter(
    image: np.ndarray,
    model: str | DeconvNet = "default",
    *,
    psf: Any = None,
    axes: str | None = None,
    tile: int | Sequence[int] | None = None,
    overlap: int | None = None,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    precision: str = "auto",
    normalization: dict[str, Any] | None = None,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Generator form of :func:`restore`: yields ``(done, total)`` tiles, returns the result.

    Closing the generator (or a napari worker's ``quit``) stops it at the next
    tile batch.
    """
    net, axes, layout, dev, dtype = prepare_restore(image, model, psf, axes, device, precision)
    x = np.asarray(image)
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError(
            "image contains NaN or infinite values; replace them first "
            "(e.g. numpy.nan_to_num) - only finite values can be restored"
        )
    plan = plan_tiles(
        layout.spatial_shape,
        net,
        tile=tile,
        overlap=overlap,
        device=dev,
        batch_size=batch_size,
        n_images=layout.net_shape[0],
        precision_bytes=2 if dtype != torch.float32 else 4,
    )
    xt = x.transpose(layout.perm)
    offset, scale = normalization_arrays(xt, layout, net, normalization)
    xn = xt.astype(np.float32)  # always a copy: normalised in place below
    xn -= offset
    xn /= scale
    xn = xn.reshape(layout.net_shape)
    if extra_channels(net):
        # the pre-restoration (e.g. Richardson-Lucy with the PSF), normalised
        # like the image, as a second channel
        images = xt.reshape(-1, *layout.spatial_shape)
        pre = conditioning_channels(images, layout.psf, net, device=dev)
        pre = pre.reshape(layout.transposed_shape)
        pre -= offset
        pre /= scale
        xn = np.concatenate([xn, pre.reshape(layout.net_shape)], axis=1)
        del pre
    try:
        yn = yield from run_tiles(xn, net, plan, dev, dtype)
    finally:
        del xn
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    yt = yn.reshape(layout.transposed_shape)
    yt *= scale
    yt += offset
    if net.metadata.get("impulse_switch"):
        keep_uncorrupted(xt, yt, impulse_values(x))
    return np.ascontiguousarray(yt.transpose(layout.inverse))


def keep_uncorrupted(x: np.ndarray, y: np.ndarray, impulses: dict[str, float]) -> None:
    """Impulse-noise models: keep every pixel that is not an impulse.

    Salt-and-pepper noise sets pixels to the image's minimum or maximum
    (`impulses`, from :func:`~napari_deconvnet.core.conditioning.impulse_values`:
    the whole image's, the definition the switching-median channel uses too);
    the others are exact, so only the impulses take the network's estimate (a
    "switching" filter whose fill-in is the network). Modifies `y` in place.
    """
    keep = (x != impulses["minimum"]) & (x != impulses["maximum"])
    np.copyto(y, x, where=keep, casting="unsafe")


def restore(
    image: Any,
    model: str | DeconvNet = "default",
    *,
    psf: Any = None,
    axes: str | None = None,
    tile: int | Sequence[int] | None = None,
    overlap: int | None = None,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    precision: str = "auto",
    progress: Callable[[int, int], Any] | None = None,
    stop: threading.Event | None = None,
    normalization: dict[str, Any] | None = None,
) -> Any:
    """Restore (denoise or deconvolve) an image with a deconvolution network.

    Parameters
    ----------
    image : (M, N), (P, M, N), ... ndarray or dask array
        Any real dtype (bool, integers, float16/32/64). Complex data, NaN and
        infinite values are refused.
    model : str, path or DeconvNet, optional
        ``"default"`` (the shipped ``denoise-2d``), another shipped name
        (:func:`list_models`), the path of a ``.safetensors`` model file, or a
        loaded model.
    psf : ndarray, str or dict, optional
        The point-spread function, required by deconvolution models
        (``"deconv-2d"``, ``"deconv-3d"``; metadata ``needs_psf``) and refused
        by the others: an array with the model's dimensionality (any odd or
        even shape, normalised to sum 1, not bigger than the image), a
        :func:`make_psf` name, or a dict such as ``{"kind": "gaussian",
        "sigma": 2}``. The model receives the image's classical
        pre-deconvolution with this PSF (Richardson-Lucy or Wiener, as its
        metadata says) as a second input channel (see
        :mod:`napari_deconvnet.core.conditioning`). For dask input the
        channel is computed block by block with a context of a few PSF
        sizes (:func:`~napari_deconvnet.core.conditioning.conditioning_margin`).
    axes : str, optional
        One letter per dimension from ``"TZCYXS"``: T time, Z depth, C
        channel, Y/X rows/columns, S RGB samples. Default (see
        :func:`infer_axes`): 2-D ``"YX"``; 3-D ``"ZYX"`` (a 2D model runs
        plane by plane), or ``"YXS"`` when a 2D model meets 3 or 4 trailing
        samples; 4-D ``"TZYX"`` or ``"TYXS"``; 5-D ``"TZCYX"``. Axes the model
        does not process spatially (T, Z for 2D models, C/S for one-channel
        models) are processed independently.
    tile : int or sequence of int, optional
        Output tile size per spatial axis, rounded up to the network's
        ``2**depth`` grid. ``None`` chooses the largest tile that fits the
        device's free memory (capped on the CPU so that memory grows
        linearly with image size). Must not exceed the image.
    overlap : int, optional
        Context added on each side of a tile. ``None`` uses the network's
        receptive-field extent, which makes tiled output equal untiled output.
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}
        ``"auto"`` picks CUDA, then MPS, then the CPU.
    batch_size : int, optional
        Tiles per network call; ``None`` fills the memory budget.
    precision : {"auto", "float32", "float16", "bfloat16"}
        ``"auto"`` is float16 mixed precision on CUDA; bfloat16 on CPUs with
        bfloat16 units (AMX or AVX512-BF16; it costs under 0.02 dB of PSNR),
        float32 on other CPUs and on MPS. ``"bfloat16"`` on a CPU without
        those units is emulated and slow (a warning says so).
    progress : callable, optional
        Called as ``progress(done, total)`` after every batch of tiles;
        raising from it stops the restoration and propagates the exception.
        For dask input it is called from the computing threads as
        ``progress(blocks_done, n_blocks)`` while the result is computed.
    stop : threading.Event, optional
        When set, the restoration stops at the next batch and raises
        :class:`Cancelled`; for dask input, the next block to be computed
        raises it. (With dask input, `progress` and `stop` need a local
        scheduler; on a ``dask.distributed`` cluster use
        :func:`~napari_deconvnet.restore_to_zarr`.)
    normalization : dict, optional
        Fixed statistics ``{"offset": o, "scale": s}`` (numbers, or one per
        channel): the network sees ``(image - o) / s``, and the result is
        mapped back with the same numbers. Default: the model's contract,
        with exact percentiles for numpy input and a deterministic sample of
        the chunks for dask input (see :func:`compute_normalization`).

    Returns
    -------
    restored : ndarray or dask array
        float32, the shape of `image`, in the input's intensity scale
        (normalisation is undone with the statistics used to normalise). A
        dask input gives a lazy dask array computed block by block: blocks
        start on the network's grid whatever the input's chunks, so it
        equals the eager result up to rounding (for conditioned models,
        within the tolerance of :func:`~napari_deconvnet.core.conditioning.conditioning_margin`).

    Raises
    ------
    TypeError
        Non-array, complex or non-numeric input; wrong argument types.
    ValueError
        Empty input, NaN/Inf, axes that do not match the image, images
        smaller than the network's grid, unknown devices, tiles larger than
        the image or than free memory, bad model files.
    Cancelled
        When `stop` is set.

    Examples
    --------
    >>> import numpy as np
    >>> noisy = np.random.default_rng(0).normal(0.5, 0.1, (40, 50)).astype(np.float32)
    >>> restore(noisy).shape
    (40, 50)
    """
    if _is_dask(image):
        from .bigdata import lazy_restore

        return lazy_restore(
            image,
            model,
            psf=psf,
            axes=axes,
            tile=tile,
            overlap=overlap,
            device=device,
            batch_size=batch_size,
            precision=precision,
            progress=progress,
            stop=stop,
            normalization=normalization,
        )
    if stop is not None and stop.is_set():
        raise Cancelled("restoration cancelled before it started")
    gen = restore_iter(
        image,
        model,
        psf=psf,
        axes=axes,
        tile=tile,
        overlap=overlap,
        device=device,
        batch_size=batch_size,
        precision=precision,
        normalization=normalization,
    )
    try:
        while True:
            done, total = next(gen)
            if progress is not None:
                progress(done, total)
            if stop is not None and stop.is_set():
                raise Cancelled(f"restoration cancelled after {done} of {total} tiles")
    except StopIteration as finished:
        return finished.value
    finally:
        gen.close()


# --------------------------------------------------------------------- dask


def _is_dask(image: Any) -> bool:
    return type(image).__module__.startswith("dask.") and hasattr(image, "dask")
