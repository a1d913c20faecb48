"""Training data: lazy patches from large arrays, regions, augmentation, blind-spot masks.

Nothing here loads a whole image. A :class:`Source` keeps the array it was
given (numpy, memory-mapped or dask) and reads one patch at a time; only the
normalisation statistics look at (a strided subsample of) the whole image, as
:func:`napari_deconvnet.restore` does.

Arrays are ``(..., *spatial)``: the trailing ``ndim`` axes (2 or 3, the
network's) are spatial and any leading axes (time, planes of a stack fed to a
2D network) index independent samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import is_dask

__all__ = ["Box", "PatchSampler", "Source", "blind_spot", "dihedral", "region_boxes"]

# the same subsample size as restore's statistics, so that both see the same pixels
_STATS_SAMPLES = 1 << 22
_MAX_TRIES = 10_000
_STATS_BLOCKS = 16  # chunks of a large dask image sampled for its statistics


def check_array(array: Any, name: str) -> None:
    """TypeError/ValueError for anything that is not a non-empty real array."""
    dtype = getattr(array, "dtype", None)
    shape = getattr(array, "shape", None)
    if dtype is None or shape is None:
        raise TypeError(
            f"{name} must be a numpy or dask array (or a list of them), got "
            f"{type(array).__name__}; convert it with numpy.asarray first"
        )
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {dtype}; only real data (bool, integer or float) can be "
            "used for training"
        )
    if len(shape) == 0 or 0 in shape:
        raise ValueError(f"{name} is empty (shape {tuple(shape)}); nothing to train on")


def read(array: Any, index: tuple) -> np.ndarray:
    """``array[index]`` as float32 numpy, computing only that block of a dask array."""
    block = array[index]
    if is_dask(block):
        block = block.compute(scheduler="synchronous")
    return np.asarray(block, dtype=np.float32)


def percentile_stats(array: Any, low: float, high: float) -> tuple[float, float]:
    """``(offset, scale)`` mapping the low/high percentiles of `array` to 0 and 1.

    The same subsample as :func:`napari_deconvnet.restore` (every ``k``-th
    pixel of the flattened image), so training and inference normalise alike;
    but a dask array of more than 16 chunks is sampled from 16 random chunks,
    so that a large lazy image is never computed whole.
    """
    if is_dask(array) and array.npartitions > _STATS_BLOCKS:
        # a large lazy image: a few random chunks, never the whole array
        rng = np.random.default_rng(0)
        picks = rng.choice(array.npartitions, _STATS_BLOCKS, replace=False)
        grid = array.numblocks
        blocks = [array.blocks[np.unravel_index(i, grid)].reshape(-1) for i in sorted(picks)]
        sample = np.concatenate([np.asarray(b.compute(), np.float64) for b in blocks])
        sample = sample[:: max(1, math.ceil(sample.size / _STATS_SAMPLES))]
    else:
        flat = array.reshape(-1)
        step = max(1, math.ceil(flat.shape[0] / _STATS_SAMPLES))
        sample = flat[::step]
        if is_dask(sample):
            sample = sample.compute()
        sample = np.asarray(sample, dtype=np.float64)
    if not np.isfinite(sample).all():
        raise ValueError(
            "the training data contains NaN or infinite values; replace them first "
            "(e.g. numpy.nan_to_num) - only finite values can be trained on"
        )
    lo, hi = np.percentile(sample, [low, high])
    scale = hi - lo if hi > lo else 1.0
    return float(lo), float(scale)


def normalization_of(norm: dict[str, Any], array: Any) -> tuple[float, float]:
    """``(offset, scale)`` of a model's normalisation contract for one image."""
    method = norm["method"]
    if method == "none":
        return 0.0, 1.0
    if method == "fixed":
        return float(norm.get("offset", 0.0)), float(norm.get("scale", 1.0))
    return percentile_stats(array, norm["low"], norm["high"])


# ---------------------------------------------------------------- sources


@dataclass
class Source:
    """One training image, its optional target and its normalisation.

    ``offset``/``scale`` map raw intensities to the network's units:
    ``(x - offset) / scale``; they are computed on the (noisy) input and
    applied to input and target alike.
    """

    x: Any
    y: Any
    ndim: int
    offset: float = 0.0
    scale: float = 1.0

    @property
    def lead_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[: self.x.ndim - self.ndim])

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(self.x.shape[self.x.ndim - self.ndim :])

    def read(
        self, lead: tuple[int, ...], origin: Sequence[int], size: Sequence[int], margin: int = 0
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw input and target patches; `margin` extra pixels per side (mirrored at edges)."""
        index, pads = [], []
        for o, p, s in zip(origin, size, self.spatial, strict=True):
            lo, hi = o - margin, o + p + margin
            index.append(slice(max(lo, 0), min(hi, s)))
            pads.append((max(-lo, 0), max(hi - s, 0)))
        key = (*lead, *index)
        x = read(self.x, key)
        y = None if self.y is None else read(self.y, key)
        if any(a or b for a, b in pads):
            # scipy.ndimage's "reflect" (numpy's "symmetric"), as synthesize blurs
            x = np.pad(x, pads, mode="symmetric")
            y = None if y is None else np.pad(y, pads, mode="symmetric")
        for name, patch in (("input", x), ("target", y)):
            if patch is not None and not np.isfinite(patch).all():
                raise ValueError(
                    f"the training {name} contains NaN or infinite values (found in a patch "
                    f"at {lead + tuple(origin)}); replace them first (e.g. numpy.nan_to_num)"
                )
        return x, y


# ---------------------------------------------------------------- regions


def _window_sums(mask: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Sum of `mask` over every window of `size` (valid positions only)."""
    sat = np.pad(mask.astype(np.int64), [(1, 0)] * mask.ndim)
    for axis in range(mask.ndim):
        sat = np.cumsum(sat, axis=axis)
    out_shape = [s - p + 1 for s, p in zip(mask.shape, size, strict=True)]
    if min(out_shape) <= 0:
        return np.zeros([max(0, s) for s in out_shape], np.int64)
    total = np.zeros(out_shape, np.int64)
    for corner in np.ndindex(*(2,) * mask.ndim):
        sign = (-1) ** (mask.ndim - sum(corner))
        sl = tuple(
            slice(p, p + n) if c else slice(0, n)
            for c, p, n in zip(corner, size, out_shape, strict=True)
        )
        total += sign * sat[sl]
    return total


@dataclass
class Box:
    """An area of one source: ``lead`` (None entries: any index) and a spatial box.

    ``mask`` (over the box) marks the pixels inside; None means all of them.
    """

    source: int
    lead: tuple[int | None, ...]
    lo: tuple[int, ...]
    shape: tuple[int, ...]
    mask: np.ndarray | None = None
    _origins: dict = field(default_factory=dict, repr=False)
    _sat: np.ndarray | None = field(default=None, repr=False)

    def n_leads(self, lead_shape: Sequence[int]) -> int:
        return math.prod(n for n, i in zip(lead_shape, self.lead, strict=True) if i is None)

    def area(self, lead_shape: Sequence[int]) -> int:
        inside = math.prod(self.shape) if self.mask is None else int(self.mask.sum())
        return inside * self.n_leads(lead_shape)

    def valid_origins(self, size: tuple[int, ...]) -> np.ndarray | None:
        """Flat box-local origins whose patch lies inside the mask (None: no mask)."""
        if self.mask is None:
            return None
        if size not in self._origins:
            sums = _window_sums(self.mask, size)
            self._origins[size] = (np.flatnonzero(sums == math.prod(size)), sums.shape)
        return self._origins[size]

    def n_origins(self, size: tuple[int, ...], lead_shape: Sequence[int]) -> int:
        if any(s < p for s, p in zip(self.shape, size, strict=True)):
            return 0
        if self.mask is None:
            n = math.prod(s - p + 1 for s, p in zip(self.shape, size, strict=True))
        else:
            n = len(self.valid_origins(size)[0])
        return n * self.n_leads(lead_shape)

    def touches(self, lead: tuple[int, ...], origin: Sequence[int], size: Sequence[int]) -> bool:
        """Whether the patch at `lead`/`origin` overlaps this area."""
        if any(b is not None and a != b for a, b in zip(lead, self.lead, strict=True)):
            return False
        lo = [max(o, b) - b for o, b in zip(origin, self.lo, strict=True)]
        hi = [
            min(o + p, b + s) - b
            for o, p, b, s in zip(origin, size, self.lo, self.shape, strict=True)
        ]
        if any(h <= low for low, h in zip(lo, hi, strict=True)):
            return False
        if self.mask is None:
            return True
        return bool(self.mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))].any())


def _bbox(mask: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    if not mask.any():
        return None
    lo, hi = [], []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        lo.append(int(hit[0]))
        hi.append(int(hit[-1]) + 1)
    return tuple(lo), tuple(h - a for a, h in zip(lo, hi, strict=True))


def _mask_boxes(mask: Any, index: int, shape: tuple[int, ...], ndim: int) -> list[Box]:
    mask = np.asarray(mask.compute() if is_dask(mask) else mask) != 0
    spatial = shape[len(shape) - ndim :]
    n_lead = len(shape) - ndim
    if mask.shape == spatial:
        leads = [((None,) * n_lead, mask)]
    elif mask.shape == shape:
        flat = mask.reshape(-1, *spatial)
        leads = [
            (np.unravel_index(i, shape[:n_lead]), flat[i])
            for i in range(flat.shape[0])
            if flat[i].any()
        ]
        leads = [(tuple(int(v) for v in lead), m) for lead, m in leads]
    else:
        raise ValueError(
            f"a region mask of shape {mask.shape} does not fit input {index} of shape {shape}; "
            f"pass a mask of the image's shape or of its spatial shape {spatial}"
        )
    boxes = []
    for lead, m in leads:
        box = _bbox(m)
        if box is None:
            continue
        lo, size = box
        crop = m[tuple(slice(a, a + s) for a, s in zip(lo, size, strict=True))]
        boxes.append(Box(index, lead, lo, size, None if crop.all() else crop))
    return boxes


def _polygon_box(vertices: Any, index: int, shape: tuple[int, ...], ndim: int) -> Box | None:
    from skimage.draw import polygon

    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] < 2 or v.shape[1] > len(shape) or len(v) < 3:
        raise ValueError(
            f"a region polygon must be an (N, D) array of N >= 3 vertices with 2 <= D <= "
            f"{len(shape)} coordinates (the trailing axes of input {index}, shape {shape}), got "
            f"shape {v.shape}"
        )
    if not np.isfinite(v).all():
        raise ValueError("a region polygon has NaN or infinite vertex coordinates")
    n_lead = len(shape) - ndim
    first = len(shape) - v.shape[1]  # the image axis of the polygon's first coordinate
    lead: list[int | None] = [None] * n_lead
    for axis in range(first, len(shape) - 2):
        values = np.round(v[:, axis - first]).astype(np.int64)
        if axis >= n_lead:  # Z of a 3D network: the polygon is extruded through the volume
            continue
        if (values != values[0]).any():
            raise ValueError(
                f"a region polygon must lie in one plane of axis {axis} of input {index}; "
                "draw regions as 2D shapes on a single plane"
            )
        if not 0 <= values[0] < shape[axis]:
            return None
        lead[axis] = int(values[0])
    rows, cols = polygon(v[:, -2], v[:, -1], shape=shape[-2:])
    if rows.size == 0:
        return None
    plane = np.zeros(shape[-2:], bool)
    plane[rows, cols] = True
    lo2, size2 = _bbox(plane)
    crop = plane[lo2[0] : lo2[0] + size2[0], lo2[1] : lo2[1] + size2[1]]
    if ndim == 3:
        depth = shape[-3]
        lo, size = (0, *lo2), (depth, *size2)
        crop = np.broadcast_to(crop, (depth, *size2))
    else:
        lo, size = lo2, size2
    return Box(index, tuple(lead), lo, size, None if crop.all() else np.ascontiguousarray(crop))


def region_boxes(spec: Any, index: int, shape: tuple[int, ...], ndim: int) -> list[Box]:
    """Turn one input's region specification into :class:`Box` es.

    `spec` is None (the whole image), a mask (nonzero inside; the image's
    shape or its spatial shape; e.g. a Labels layer's data), or a list of
    polygons, each an ``(N, D)`` array of vertices in the image's pixel
    coordinates for its trailing ``D`` axes (e.g. a Shapes layer's data).
    A polygon fills the last two axes; its coordinates on leading axes select
    one plane, and on the Z axis of a 3D network it is extruded through Z.
    """
    if spec is None:
        n_lead = len(shape) - ndim
        return [Box(index, (None,) * n_lead, (0,) * ndim, tuple(shape[n_lead:]))]
    if hasattr(spec, "shape") and hasattr(spec, "dtype") and np.dtype(spec.dtype) != object:
        return _mask_boxes(spec, index, shape, ndim)
    if not isinstance(spec, list | tuple):
        raise TypeError(
            f"regions must be None, a mask array or a list of polygons (vertex arrays), got "
            f"{type(spec).__name__}"
        )
    boxes = [_polygon_box(v, index, shape, ndim) for v in spec]
    return [b for b in boxes if b is not None]


# ---------------------------------------------------------------- sampling


class PatchSampler:
    """Random patch positions inside `boxes`, avoiding `exclude`.

    A box is chosen with probability proportional to the number of patch
    positions it holds, then a position uniformly inside it, so every allowed
    position is equally likely. A position whose patch overlaps an excluded
    area (the validation patches) is drawn again.
    """

    def __init__(
        self,
        sources: list[Source],
        boxes: list[Box],
        size: tuple[int, ...],
        rng: np.random.Generator,
        exclude: list[Box] | None = None,
    ) -> None:
        self.sources = sources
        self.size = size
        self.rng = rng
        self.exclude = list(exclude or [])
        counts = [b.n_origins(size, sources[b.source].lead_shape) for b in boxes]
        self.boxes = [b for b, n in zip(boxes, counts, strict=True) if n > 0]
        counts = np.array([n for n in counts if n > 0], np.float64)
        self.weights = counts / counts.sum() if counts.size else counts

    @property
    def empty(self) -> bool:
        return not self.boxes

    def area(self) -> int:
        return sum(b.area(self.sources[b.source].lead_shape) for b in self.boxes)

    def _draw(self) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        rng = self.rng
        box = self.boxes[int(rng.choice(len(self.boxes), p=self.weights))]
        lead_shape = self.sources[box.source].lead_shape
        lead = tuple(
            int(rng.integers(n)) if i is None else i
            for n, i in zip(lead_shape, box.lead, strict=True)
        )
        found = box.valid_origins(self.size)
        if found is None:
            local = [
                int(rng.integers(s - p + 1)) for s, p in zip(box.shape, self.size, strict=True)
            ]
        else:
            flat, grid = found
            local = [int(v) for v in np.unravel_index(flat[rng.integers(len(flat))], grid)]
        origin = tuple(a + b for a, b in zip(box.lo, local, strict=True))
        return box.source, lead, origin

    def draw(self, tries: int = _MAX_TRIES) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """One allowed position ``(source, lead, origin)``."""
        for _ in range(tries):
            source, lead, origin = self._draw()
            if not any(
                e.source == source and e.touches(lead, origin, self.size) for e in self.exclude
            ):
                return source, lead, origin
        raise ValueError(
            f"no {self.size} training patch fits outside the validation area after {tries} "
            "tries; lower patch_size, draw larger training regions, or pass less validation"
        )

    def draw_disjoint(self, n: int, snap: bool = True) -> list[tuple]:
        """Up to `n` positions that do not overlap each other (snapped to the patch grid)."""
        chosen: list[tuple] = []
        taken: list[Box] = []
        for _ in range(50 * n):
            if len(chosen) >= n:
                break
            source, lead, origin = self._draw()
            if snap:
                box = next(
                    (
                        b
                        for b in self.boxes
                        if b.mask is None
                        and b.source == source
                        and all(
                            a <= o <= a + s - p
                            for o, a, s, p in zip(origin, b.lo, b.shape, self.size, strict=True)
                        )
                    ),
                    None,
                )
                if box is not None:
                    origin = tuple(
                        a + (o - a) // p * p
                        for o, a, p in zip(origin, box.lo, self.size, strict=True)
                    )
            if any(t.source == source and t.touches(lead, origin, self.size) for t in taken):
                continue
            if any(
                e.source == source and e.touches(lead, origin, self.size) for e in self.exclude
            ):
                continue
            chosen.append((source, lead, origin))
            taken.append(Box(source, lead, origin, self.size))
        return chosen


def grid_positions(box: Box, size: tuple[int, ...], lead_shape: Sequence[int]) -> list[tuple]:
    """Non-overlapping positions on the patch grid of `box` whose patches lie inside it."""
    found = box.valid_origins(size)
    if found is None:
        counts = [(s - p) // p + 1 for s, p in zip(box.shape, size, strict=True)]
        if min(counts) <= 0:
            return []
        locals_ = [
            tuple(c * p for c, p in zip(corner, size, strict=True))
            for corner in np.ndindex(*counts)
        ]
    else:
        flat, grid = found
        locals_, taken = [], []
        for f in flat:
            local = tuple(int(v) for v in np.unravel_index(f, grid))
            if all(
                any(abs(a - b) >= p for a, b, p in zip(local, t, size, strict=True)) for t in taken
            ):
                locals_.append(local)
                taken.append(local)
    leads = [
        tuple(i if i is not None else j for i, j in zip(box.lead, free, strict=True))
        for free in np.ndindex(
            *[n if i is None else 1 for n, i in zip(lead_shape, box.lead, strict=True)]
        )
    ]
    return [
        (box.source, lead, tuple(a + b for a, b in zip(box.lo, local, strict=True)))
        for lead in leads
        for local in locals_
    ]


# ---------------------------------------------------------------- augmentation


def dihedral(arrays: list[np.ndarray | None], rng: np.random.Generator) -> list:
    """The same random flip and 90-degree rotation of the last two axes of each array."""
    square = arrays[0].shape[-1] == arrays[0].shape[-2]
    k = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        if a is None:
            out.append(None)
            continue
        a = np.rot90(a, k, axes=(-2, -1))
        if flip:
            a = a[..., ::-1]
        out.append(np.ascontiguousarray(a))
    return out


def blind_spot(
    x: Any, generator: Any, *, cell: int | None = None, radius: int = 2
) -> tuple[Any, Any]:
    """Noise2Void input masking of a ``(B, 1, *S)`` tensor.

    One pixel per ``cell**ndim`` block (stratified, as in Noise2Void [1]_) is
    replaced by a random other pixel of its ``(2 * radius + 1)**ndim``
    neighbourhood, so the network cannot see the value it must predict. At
    a border the offset is reversed on the axes it leaves the image by, so
    the replacement is never the pixel itself, for every masked pixel; on an
    axis shorter than `radius` a pixel that has no other neighbour stays
    unmasked.

    Returns
    -------
    masked : tensor
        `x` with the chosen pixels replaced.
    mask : bool tensor
        True at the replaced pixels: the loss is computed there only.

    References
    ----------
    .. [1] A. Krull, T.-O. Buchholz and F. Jug, "Noise2Void - Learning
           Denoising From Single Noisy Images", CVPR 2019.
           :arXiv:`1811.10980`
    """
    import torch

    b, c, *spatial = x.shape
    ndim = len(spatial)
    cell = cell or (6 if ndim == 2 else 4)
    dev = x.device
    cells = [math.ceil(s / cell) for s in spatial]
    n = math.prod(cells)
    base = torch.stack(
        torch.meshgrid(*[torch.arange(k, device=dev) * cell for k in cells], indexing="ij"), -1
    ).reshape(1, n, ndim)
    jitter = torch.randint(0, cell, (b, n, ndim), generator=generator, device=dev)
    pos = base + jitter
    size = torch.tensor(spatial, device=dev)
    keep = (pos < size).all(-1)  # cells cut by the border may fall outside
    offsets = torch.stack(
        torch.meshgrid(*[torch.arange(-radius, radius + 1, device=dev)] * ndim, indexing="ij"), -1
    ).reshape(-1, ndim)
    offsets = offsets[(offsets != 0).any(-1)]
    pick = torch.randint(0, len(offsets), (b, n), generator=generator, device=dev)
    offset = offsets[pick]
    src = pos + offset
    # At a border the offset turns around on that axis (pos - offset), which
    # keeps its length: unlike mirroring the position, it can never land on
    # the pixel itself (mirroring maps 1 - 2 back to 1).
    outside = (src < 0) | (src >= size)
    src = torch.where(outside, pos - offset, src)
    # an axis shorter than the radius: clamp, and leave a pixel that still
    # lands on itself unmasked
    src = torch.minimum(torch.clamp(src, min=0), size - 1)
    keep &= (src != pos).any(-1)
    strides = torch.tensor(
        [math.prod(spatial[i + 1 :]) for i in range(ndim)], device=dev, dtype=torch.long
    )
    batch = torch.arange(b, device=dev)[:, None].expand(b, n)
    dst_flat = (pos * strides).sum(-1)[keep]
    src_flat = (src * strides).sum(-1)[keep]
    batch = batch[keep]
    flat = x.reshape(b, c, -1)
    masked = flat.clone()
    masked[batch, :, dst_flat] = flat[batch, :, src_flat]
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[batch, :, dst_flat] = True
    return masked.reshape(x.shape), mask.reshape(x.shape)
