"""Where training patches may lie: masks and polygons as boxes on an input.

``regions=`` and ``validation_regions=`` of :func:`napari_deconvnet.train`
are, per input, None (everywhere), a mask (a napari Labels layer's data) or
a list of polygon vertex arrays in pixel coordinates (a Shapes layer's).
:func:`region_boxes` turns one into :class:`Box` es: an input, a position
along its leading axes, and the bounding box of the allowed area with its
mask of allowed patch origins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import is_dask

__all__ = ["Box", "one_per_input", "region_boxes"]


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


def one_per_input(
    spec: Any, shape: tuple[int, ...], spatial: tuple[int, ...] | None = None
) -> bool:
    """Whether a single input's (of `shape`) `spec` is the per-input form of several
    inputs: a list of one entry that is None, a mask of the input's (or its trailing, or
    its `spatial`: the shape without its channel axis) shape, or a list of polygons
    (with one input, the list was read as polygons and refused them; session 72: a
    ``(Y, X)`` mask of a ``(Y, X, 3)`` photo, whose trailing axes are ``(X, 3)``)."""
    if not isinstance(spec, list | tuple) or len(spec) != 1:
        return False
    entry = spec[0]
    if entry is None:
        return True
    if isinstance(entry, list | tuple):  # polygons (each 2-D), not one polygon's vertices
        return all(np.ndim(v) == 2 for v in entry)
    full = tuple(shape)
    shape = tuple(np.shape(entry)) if hasattr(entry, "shape") else ()
    return len(shape) >= 2 and shape in {full, full[len(full) - len(shape) :], spatial}
