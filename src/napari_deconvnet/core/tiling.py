"""Exact seamless tiling of a network's input on its ``2**depth`` grid.

A tile is the output block a network call produces; it is given ``halo``
pixels of context on every side. Tiles start on the network's ``2**depth``
grid and the halo is at least the receptive-field extent, so every output
pixel sees exactly the input it would see in one untiled call: tiled output
equals untiled output up to floating-point rounding. Outside the image the
context is the reflection of the image (``numpy.pad(mode="reflect")``).

:func:`plan_tiles` chooses the tile, halo and batch size from the device's
free memory; :func:`run_tiles` runs the network over them. The restore that
uses them lives in :mod:`~napari_deconvnet.core.restoration`, the axes in
:mod:`~napari_deconvnet.core.axes`; their names stay importable from here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
import torch

from .devices import forward_tiles, free_memory, inference_autocast
from .model import DeconvNet

__all__ = [
    "plan_tiles",
    "reflect_index",
    "reflected_block",
    "reflected_window",
    "round_up",
    "run_tiles",
]

# Inference activations on the CPU are capped so that memory stays linear in
# image size (the input, its float copy and the output dominate).
# 3D tiles need a larger budget: with a halo on all three axes, small tiles
# spend most of their work on context.
_CPU_TILE_BUDGET = {2: 192 * 1024**2, 3: 2 * 1024**3}
_GPU_BUDGET_FRACTION = 0.5

#: Run each tile through :meth:`~napari_deconvnet.core.model.DeconvNet.forward_center`
#: (only the region the tile's centre depends on) and plan tiles for it. False
#: gives the path before 2026-11-30 (the whole haloed tile through ``forward``,
#: tiles planned on the haloed volume), which ``benchmarks/restore_speed.py --3d``
#: compares against; both give the same output up to rounding.
CENTERED_TILES = True


def reflect_index(start: int, stop: int, size: int) -> np.ndarray:
    """Indices of ``numpy.pad(mode="reflect")`` for positions ``start..stop-1``."""
    idx = np.arange(start, stop)
    if size == 1:
        return np.zeros_like(idx)
    period = 2 * (size - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= size, period - idx, idx)


def reflected_block(image: np.ndarray, windows: list[tuple[int, int]]) -> np.ndarray:
    """``image[:, start..stop-1, ...]`` per spatial axis, reflected at the borders.

    `image` is ``(C, *spatial)``; `windows` holds one ``(start, stop)`` per
    spatial axis, which may reach beyond the image. The values are those of
    :func:`reflect_index` on each axis (``numpy.pad(mode="reflect")``): a slice
    of the image padded by reflection where one reflection suffices, about
    seven times faster than gathering with index arrays for a whole-image
    tile (a 4096² image with its halo: 21 against 141 ms), and a view when the
    window lies inside the image. A window that needs more than one
    reflection (an image smaller than the halo) gathers with index arrays.
    """
    spatial = image.shape[1:]
    slices: list[slice] = [slice(None)]
    pads: list[tuple[int, int]] = [(0, 0)]
    for (start, stop), size in zip(windows, spatial, strict=True):
        lo, hi = max(0, -start), max(0, stop - size)
        first, last = max(start, 0), min(stop, size)
        # np.pad reflects the slice: its values match the image's only when the
        # reflected positions lie inside the slice (one reflection, no wrap)
        if size == 1 or last <= first or lo > last - 1 or hi > size - first - 1:
            index = [reflect_index(a, b, n) for (a, b), n in zip(windows, spatial, strict=True)]
            return image[np.ix_(np.arange(image.shape[0]), *index)]
        slices.append(slice(first, last))
        pads.append((lo, hi))
    part = image[tuple(slices)]
    if any(p != (0, 0) for p in pads):
        return np.pad(part, pads, mode="reflect")
    return part


def round_up(value: int, grid: int) -> int:
    """`value` rounded up to a multiple of `grid`."""
    return int(math.ceil(value / grid) * grid)


def reflected_window(
    start: int, stop: int, size: int, halo: int, grid: int, margin: int = 0, shift: int = 0
) -> tuple[slice, np.ndarray]:
    """What outputs ``start..stop-1`` (`start` on the `grid`) read along an axis of `size`.

    The positions from ``start - halo`` to ``round_up(stop, grid) + halo``
    (moved by `shift`), reflected at the borders: the slice of the axis that
    holds them (widened by `margin` where the axis allows) and their indices
    into that slice.
    """
    ref = reflect_index(start - halo + shift, round_up(stop, grid) + halo + shift, size)
    r0 = max(0, int(ref.min()) - margin)
    r1 = min(size, int(ref.max()) + 1 + margin)
    return slice(r0, r1), ref - r0


def _cheapest_tile(padded: Sequence[int], halo: int, grid: int, max_pixels: float) -> list[int]:
    """The tile shape that processes the fewest pixels (halos included) in all.

    Candidates per axis split it evenly into k tiles on the grid; among the
    shapes whose haloed size fits `max_pixels`, the one with the least total
    work (tiles x haloed tile size) wins, so thin axes (few Z planes) stay
    whole and the halo overhead is spread where it costs least.
    """
    axes = []
    for p in padded:
        sizes = sorted({round_up(math.ceil(p / k), grid) for k in range(1, p // grid + 1)})
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
        halo = round_up(int(overlap), grid)
        # context beyond the whole image is only its mirror image: an overlap wider
        # than the image (10**6 asked for 2 million GB) is cut to the image's extent
        halo = min(halo, max(round_up(max(spatial_shape), grid), round_up(model.halo, grid)))
        if halo < model.halo:
            warnings.warn(
                f"overlap {overlap} is smaller than the receptive-field extent of this model "
                f"({model.halo}); tiles will not match untiled output and seams may appear, "
                "and a lazy or streamed restore then depends on its chunks and blocks too "
                "(leave overlap=None for results that do not)",
                stacklevel=3,
            )
    padded = [round_up(s, grid) for s in spatial_shape]
    # run_tiles' centred tiles need less memory in 3D; 2D tiles keep their plan
    center = CENTERED_TILES and ndim == 3 and halo >= model.halo
    bytes_px = model.activation_bytes_per_pixel(precision_bytes, center=center)
    available = free_memory(device)
    if device.type == "cpu":
        budget = min(_CPU_TILE_BUDGET[ndim], available // 4)
    else:
        budget = int(available * _GPU_BUDGET_FRACTION)
    if tile is None:
        tiles = _cheapest_tile(padded, halo, grid, max(budget / bytes_px, 1.0))
    else:
        if isinstance(tile, int | np.integer):
            tiles_in = [tile] * ndim
        elif isinstance(tile, Sequence | np.ndarray) and not isinstance(tile, str):
            tiles_in = list(tile)
        else:
            tiles_in = []  # a float, a string...: refused below, with the accepted forms
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
        tiles = [min(round_up(int(t), grid), p) for t, p in zip(tiles_in, padded, strict=True)]
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
    elif (
        isinstance(batch_size, bool | np.bool_)
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
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
    # output pixel p is computed from the input around p + shift (reflected at the
    # borders): a restore with an off-centre PSF (restoration.prepare_restore)
    shift = plan.get("shift") or (0,) * len(spatial)
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
    # the halo holds the receptive field (the default): compute the centres only
    center = CENTERED_TILES and halo >= model.halo
    lead = 0 if center else halo
    done = 0
    for first in range(0, total, batch_size):
        batch = jobs[first : first + batch_size]
        regions, inputs = [], []
        for n, corner in batch:
            origin = [plan["starts"][d][i] for d, i in enumerate(corner)]
            windows = [
                (o - halo + d, o + t + halo + d)
                for o, t, d in zip(origin, tiles, shift, strict=True)
            ]
            inputs.append(reflected_block(x[n], windows))
            regions.append((n, origin))
        # one tile (a whole image on a GPU): no stacking copy; torch copies once,
        # into the memory format, where the layout asks for it
        stacked = inputs[0][None] if len(inputs) == 1 else np.stack(inputs)
        xb = torch.from_numpy(stacked).to(device).contiguous(memory_format=fmt)
        # grad mode is per thread and a generator may be abandoned mid-way (a
        # cancelled worker): never hold inference mode across a yield
        with torch.inference_mode(), inference_autocast(device, dtype):
            # on out-of-memory, smaller pieces with the same result (and a warning)
            yb = forward_tiles(net, xb, halo=halo, grid=model.config.grid, center=center)
        yb = yb.float().cpu().numpy()
        for (n, origin), y in zip(regions, yb, strict=True):
            dst = tuple(
                slice(o, min(o + t, s)) for o, t, s in zip(origin, tiles, spatial, strict=True)
            )
            src = tuple(slice(lead, lead + (d.stop - d.start)) for d in dst)
            out[(n, slice(None), *dst)] = y[(slice(None), *src)]
        done += len(batch)
        yield done, total
    return out


# Names that moved to their own modules, importable from here as before
# (``from napari_deconvnet.core.tiling import restore``), resolved on first
# use: restoration imports this module.
_MOVED = {
    "Cancelled": "restoration",
    "compute_normalization": "restoration",
    "prepare_restore": "restoration",
    "private_model": "restoration",
    "restore": "restoration",
    "restore_iter": "restoration",
    "Layout": "axes",
    "check_axes": "axes",
    "check_image": "axes",
    "infer_axes": "axes",
    "keep_uncorrupted": "kinds",
    "normalization_arrays": "normalization",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        module = importlib.import_module(f"{__package__}.{_MOVED[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
