"""Training data: lazy patches from large arrays, augmentation, blind-spot masks.

Where patches may lie (Shapes and Labels regions as boxes) is
:mod:`.regions`; :class:`Box` and :func:`region_boxes` are re-exported here.

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
from .normalization import offset_scale
from .regions import Box, region_boxes

__all__ = [
    "REPLACEMENTS",
    "Box",
    "NeighbourPairs",
    "PatchFitError",
    "PatchSampler",
    "Source",
    "blind_spot",
    "dihedral",
    "neighbour_cell",
    "neighbour_pairs",
    "region_boxes",
]

_MAX_TRIES = 10_000


class PatchFitError(ValueError):
    """Patches of the requested size do not fit the data, its regions or beside validation.

    A ``ValueError``; training with an automatic patch size catches it and
    tries a smaller one.
    """


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


def window(
    array: Any, lead: tuple[int, ...], origin: Sequence[int], size: Sequence[int], margin: int = 0
) -> np.ndarray:
    """``array[lead]``'s patch at `origin` with `margin` extra pixels per side, float32.

    Beyond the array's borders the patch is mirrored: scipy.ndimage's
    "reflect" (numpy's "symmetric"), as :func:`~.noise.synthesize` blurs.
    """
    spatial = array.shape[len(lead) :]
    index, pads = [], []
    for o, p, s in zip(origin, size, spatial, strict=True):
        lo, hi = o - margin, o + p + margin
        index.append(slice(max(lo, 0), min(hi, s)))
        pads.append((max(-lo, 0), max(hi - s, 0)))
    patch = read(array, (*lead, *index))
    if any(a or b for a, b in pads):
        patch = np.pad(patch, pads, mode="symmetric")
    return patch


def percentile_stats(array: Any, low: float, high: float) -> tuple[float, float]:
    """``(offset, scale)`` mapping the low/high percentiles of `array` to 0 and 1.

    The statistics :func:`napari_deconvnet.restore` takes
    (:func:`~napari_deconvnet.core.normalization.percentile_range`): exact for
    in-memory data, the documented deterministic sample of at most 64 chunks
    for dask and memory-mapped data, dequantised on a lattice. A model trained
    or adapted on an image therefore sees it as its restore will.
    """
    try:
        offset, scale = offset_scale(array, {"method": "percentile", "low": low, "high": high})
    except ValueError as error:
        raise ValueError(
            "the training data contains NaN or infinite values; replace them first "
            "(e.g. numpy.nan_to_num) - only finite values can be trained on"
        ) from error
    # coinciding percentiles (a few beads on an exactly flat background): as restore and
    # dn.train take them, not a scale of 1 (session 69)
    return float(offset), float(scale)


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
    #: Each image's own ``offset``/``scale`` along the leading axes (time points,
    #: planes of a 2D model), as restore normalises them; None: the source's.
    lead_offset: np.ndarray | None = None
    lead_scale: np.ndarray | None = None
    #: The noise's variance line in raw units, for noise-conditioned networks.
    line: dict[str, float] | None = None
    #: The classical channel's statistics, for PSF-conditioned networks.
    condition: dict[str, float] | None = None
    #: The classical channel of whole planes or volumes, by leading index
    #: (computed once for supervised pairs in memory; see ``TrainingSet``).
    channels: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)
    #: The PSF synthetic pairs of this image are blurred with (None: not blurred),
    #: and the classical channel's computation (a ``trainset.PSFChannel``): with
    #: one PSF per channel, each channel's own.
    psf: np.ndarray | None = None
    psf_channel: Any = None

    def stats(self, lead: tuple[int, ...]) -> tuple[float, float]:
        """``(offset, scale)`` of the image at the leading index `lead`."""
        if self.lead_offset is None or self.lead_scale is None:
            return self.offset, self.scale
        return float(self.lead_offset[lead]), float(self.lead_scale[lead])

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
        x = window(self.x, lead, origin, size, margin)
        y = None if self.y is None else window(self.y, lead, origin, size, margin)
        for name, patch in (("input", x), ("target", y)):
            if patch is not None and not np.isfinite(patch).all():
                raise ValueError(
                    f"the training {name} contains NaN or infinite values (found in a patch "
                    f"at {lead + tuple(origin)}); replace them first (e.g. numpy.nan_to_num)"
                )
        return x, y


# ---------------------------------------------------------------- sampling


class PatchSampler:
    """Random patch positions inside `boxes`, avoiding `exclude`.

    A box is chosen with probability proportional to the number of patch
    positions it holds, then a position uniformly inside it, so every allowed
    position is equally likely. A position whose patch overlaps an excluded
    area (the validation patches) is drawn again.

    `groups` names, for each source, the image it is a channel plane of
    (``axes="YXC"`` trains each channel as a source of its own): an excluded
    area of one source excludes the same pixels (leading index, origin and
    size) of every source of its group. By default each source is its own.
    """

    def __init__(
        self,
        sources: list[Source],
        boxes: list[Box],
        size: tuple[int, ...],
        rng: np.random.Generator,
        exclude: list[Box] | None = None,
        groups: Sequence[Any] | None = None,
    ) -> None:
        self.sources = sources
        self.size = size
        self.rng = rng
        self.exclude = list(exclude or [])
        self.groups = list(range(len(sources))) if groups is None else list(groups)
        if len(self.groups) != len(sources):
            raise ValueError(
                f"groups has {len(self.groups)} entries for {len(sources)} sources; pass "
                "one group per source"
            )
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

    def _overlaps(
        self, boxes: list[Box], source: int, lead: tuple[int, ...], origin: tuple[int, ...]
    ) -> bool:
        """Whether the patch at `origin` touches one of `boxes` in any source of its group."""
        group = self.groups[source]
        return any(
            self.groups[b.source] == group and b.touches(lead, origin, self.size) for b in boxes
        )

    def draw(self, tries: int = _MAX_TRIES) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """One allowed position ``(source, lead, origin)``."""
        for _ in range(tries):
            source, lead, origin = self._draw()
            if not self._overlaps(self.exclude, source, lead, origin):
                return source, lead, origin
        raise PatchFitError(
            f"no {self.size} training patch fits outside the validation area after {tries} "
            "tries; lower patch_size, draw larger training regions, or pass less validation"
        )

    def draw_disjoint(self, n: int, snap: bool = True) -> list[tuple]:
        """Up to `n` positions that do not overlap each other (snapped to the patch grid).

        Nor each other's pixels in the other sources of their group.
        """
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
            if self._overlaps(taken, source, lead, origin):
                continue
            if self._overlaps(self.exclude, source, lead, origin):
                continue
            chosen.append((source, lead, origin))
            taken.append(Box(source, lead, origin, self.size))
        return chosen


def grid_positions(
    box: Box, size: tuple[int, ...], lead_shape: Sequence[int], *, cover: bool = False
) -> list[tuple]:
    """Positions of patches that lie inside `box` (a grid of them; see `cover`).

    With `cover` (validation: a region of its own, or validation data), a last
    patch flush with the far end of each axis the grid leaves a remainder of, so
    that the patches cover every pixel of a rectangular box (those two overlap);
    in any other mask (a Labels region) whose box is small, :func:`_cover_mask`, and
    in a large box the grid's patches inside the mask.
    Without it, a 96-pixel
    square held one 64-pixel patch, 44 % of the region the user asked to be
    scored on (session 72: a fine-tuning reported +0.19 dB on that patch while
    the region as a whole lost 0.13 dB).
    """
    starts = [list(range(0, s - p + 1, p)) for s, p in zip(box.shape, size, strict=True)]
    if cover:
        for axis, (s, p) in enumerate(zip(box.shape, size, strict=True)):
            if starts[axis] and starts[axis][-1] + p < s:
                starts[axis].append(s - p)
    grid_locals = [
        tuple(a[c] for a, c in zip(starts, corner, strict=True))
        for corner in np.ndindex(*[len(a) for a in starts])
    ]
    found = box.valid_origins(size)
    if found is None:
        if min(len(a) for a in starts) == 0:
            return []
        locals_ = grid_locals
    else:
        flat, grid = found
        valid = np.zeros(grid, bool)
        valid.reshape(-1)[np.asarray(flat, np.int64)] = True

        def on_grid() -> list[tuple[int, ...]]:
            return [g for g in grid_locals if valid[g]]

        if not valid.any():  # (no patch fits: the caller says so)
            locals_ = []
        elif box.mask.all():  # a rectangle drawn as a mask: the grid covers it
            locals_ = on_grid()
        elif box.mask.size <= min(COVER_BOX * math.prod(size), COVER_PIXELS):
            locals_ = _cover_mask(box.mask, valid, size)
        elif len(flat) <= RASTER_ORIGINS:  # a large box, sparse: as before this session
            locals_ = _raster(flat, grid, size)
        else:  # large and dense (the raster search took minutes): the grid's
            locals_ = on_grid()
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


#: :func:`_cover_mask` adds a patch while it scores at least this share of its pixels
#: anew...
COVER_GAIN = 0.5
#: ...and at most this many: the validation cap (training's validation patches are a
#: seeded random choice of this many when a region gives more)
MAX_VALIDATION_PATCHES = 64
#: A mask's box of at most this many patches' pixels is covered greedily; a larger one
#: by the grid (each greedy step reads the box whole: 4 disks in the corners of a
#: 2048-pixel box took 2.5 s, 50 boxes in a 64 x 1024 x 1024 volume 120 s; review)
COVER_BOX = 256
#: ...and of at most this many pixels
COVER_PIXELS = 1 << 20
#: A large box with at most this many valid origins takes non-overlapping patches in
#: raster order (:func:`_raster`, one Python test per origin), more the grid's
RASTER_ORIGINS = 50_000


def _raster(flat: np.ndarray, grid: tuple[int, ...], size: tuple[int, ...]) -> list[tuple]:
    """Non-overlapping patch origins in raster order among the valid ones (`flat`)."""
    taken: list[tuple[int, ...]] = []
    for f in flat:
        local = tuple(int(v) for v in np.unravel_index(f, grid))
        if all(
            any(abs(a - b) >= p for a, b, p in zip(local, t, size, strict=True)) for t in taken
        ):
            taken.append(local)
    return taken


def _cover_mask(
    mask: np.ndarray, valid: np.ndarray, size: tuple[int, ...], limit: int = MAX_VALIDATION_PATCHES
) -> list[tuple[int, ...]]:
    """Patch origins (local to `mask`'s box; `valid`: those whose patch lies inside it)
    that cover most of `mask`: each the valid origin whose patch holds the most pixels
    not yet covered (greedy set cover), while that is at least :data:`COVER_GAIN` of a
    patch, up to `limit`. A pixel is scored
    about once, twice at most where patches meet: a disk of radius 110 with 32-pixel
    patches was 73 % scored by non-overlapping patches taken in raster order, now 82 %;
    a first version that covered every reachable pixel took 128 patches for a disk
    where 7 had been, each pixel scored 3 to 8 times, which the 64-patch cap then cut
    at random (session 72's review). The raster-order search itself took minutes on a
    2048-pixel disk (one Python loop over every valid origin against every patch
    taken)."""
    from .regions import _window_sums

    todo = np.asarray(mask, bool).copy()
    area = math.prod(size)
    origins: list[tuple[int, ...]] = []
    while len(origins) < limit:
        gain = np.where(valid, _window_sums(todo, size), -1)
        best = int(np.argmax(gain))
        if gain.reshape(-1)[best] < COVER_GAIN * area:
            break
        origin = tuple(int(v) for v in np.unravel_index(best, valid.shape))
        origins.append(origin)
        todo[tuple(slice(o, o + p) for o, p in zip(origin, size, strict=True))] = False
    return origins


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


#: How :func:`blind_spot` replaces a masked pixel: a random other neighbour
#: (Noise2Void) or the median of its neighbours without itself (N2V2).
REPLACEMENTS = ("random", "median")


#: Draws of a masked pixel's source after one that is masked too (then it stays unmasked)
_REDRAWS = 8


def _source(pos: Any, offset: Any, size: Any) -> Any:
    """The pixels at `offset` from `pos`, turned around at a border, clamped inside."""
    import torch

    src = pos + offset
    # At a border the offset turns around on that axis (pos - offset), which
    # keeps its length: unlike mirroring the position, it can never land on
    # the pixel itself (mirroring maps 1 - 2 back to 1).
    outside = (src < 0) | (src >= size)
    src = torch.where(outside, pos - offset, src)
    # an axis shorter than the radius: clamped (a pixel that lands on itself is
    # left unmasked by the caller)
    return torch.minimum(torch.clamp(src, min=0), size - 1)


def blind_spot(
    x: Any,
    generator: Any,
    *,
    cell: int | None = None,
    radius: int = 2,
    replacement: str = "random",
) -> tuple[Any, Any]:
    """Noise2Void input masking of a ``(B, C, *S)`` tensor.

    One pixel per ``cell**ndim`` block (stratified, as in Noise2Void [1]_) is
    replaced by a value from its ``(2 * radius + 1)**ndim`` neighbourhood
    without itself, so the network cannot see the value it must predict.

    With ``replacement="random"`` (Noise2Void) the value is that of a random
    other pixel of the neighbourhood that is not masked itself. At a border
    the offset is reversed on the axes it leaves the image by, so the
    replacement is never the pixel itself, for every masked pixel; on an axis
    shorter than `radius` a pixel that has no other neighbour stays unmasked,
    as does one whose source was a masked pixel in :data:`_REDRAWS` draws.

    With ``replacement="median"`` (N2V2 [2]_) it is the median (as
    ``numpy.median``: the mean of the two middle values of an even count) of
    the neighbours that lie inside the image and are not masked, per
    channel; a pixel with none stays unmasked.

    Either way no masked pixel's own value appears in the masked input: not
    at its place, and not at another masked pixel's (a neighbour's
    replacement once could be its value, a pixel or two away).

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
    .. [2] E. Höck, T.-O. Buchholz, A. Brachmann, F. Jug and A. Freytag,
           "N2V2 - Fixing Noise2Void checkerboard artifacts with modified
           sampling strategies and a tweaked network architecture", ECCV
           Workshops 2022. :arXiv:`2211.08512`
    """
    import torch

    if replacement not in REPLACEMENTS:
        raise ValueError(f"replacement must be one of {REPLACEMENTS}, got {replacement!r}")
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
    strides = torch.tensor(
        [math.prod(spatial[i + 1 :]) for i in range(ndim)], device=dev, dtype=torch.long
    )
    batch = torch.arange(b, device=dev)[:, None].expand(b, n)
    flat = x.reshape(b, c, -1)
    masked = flat.clone()
    # the pixels to mask, per sample: no replacement is taken from one of them, or a
    # masked pixel's own value would sit a pixel or two from it (1.1% of them did)
    chosen = torch.zeros((b, flat.shape[-1]), dtype=torch.bool, device=dev)
    chosen[batch[keep], (pos[keep] * strides).sum(-1)] = True
    if replacement == "median":
        pos, batch = pos[keep], batch[keep]
        near = pos[:, None, :] + offsets[None]  # (masked pixels, neighbours, ndim)
        inside = ((near >= 0) & (near < size)).all(-1)
        near_flat = (torch.minimum(near.clamp(min=0), size - 1) * strides).sum(-1)
        inside &= ~chosen[batch[:, None], near_flat]
        values = flat[batch[:, None], :, near_flat]  # (masked pixels, neighbours, c)
        values = torch.where(inside[..., None], values, torch.full_like(values, math.inf))
        values = values.sort(dim=1).values
        count = inside.sum(-1)
        has = count > 0
        pos, batch, values, count = pos[has], batch[has], values[has], count[has]
        lower = torch.gather(values, 1, ((count - 1) // 2)[:, None, None].expand(-1, 1, c))
        upper = torch.gather(values, 1, (count // 2)[:, None, None].expand(-1, 1, c))
        dst_flat = (pos * strides).sum(-1)
        masked[batch, :, dst_flat] = ((lower + upper) / 2)[:, 0]
    else:
        pick = torch.randint(0, len(offsets), (b, n), generator=generator, device=dev)
        src = _source(pos, offsets[pick], size)
        # a source that is itself masked is drawn again (a few times: then the pixel
        # stays unmasked), so that no masked pixel's value is shown near it
        for _ in range(_REDRAWS):
            taken = keep & chosen[batch, (src * strides).sum(-1)]
            if not bool(taken.any()):
                break
            again = torch.randint(0, len(offsets), (b, n), generator=generator, device=dev)
            pick = torch.where(taken, again, pick)
            src = _source(pos, offsets[pick], size)
        keep &= ~chosen[batch, (src * strides).sum(-1)]
        # an axis shorter than the radius: a pixel that still lands on itself
        keep &= (src != pos).any(-1)
        dst_flat = (pos * strides).sum(-1)[keep]
        src_flat = (src * strides).sum(-1)[keep]
        batch = batch[keep]
        masked[batch, :, dst_flat] = flat[batch, :, src_flat]
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[batch, :, dst_flat] = True
    return masked.reshape(x.shape), mask.reshape(x.shape)


@dataclass
class NeighbourPairs:
    """Two sub-images of a batch, one pixel of each cell apiece (Neighbor2Neighbor).

    A cell spans ``cell[a]`` pixels (1 or 2) along spatial axis ``a``: 2x2
    in 2D, 1x2x2 (within a plane) or 2x2x2 in 3D. ``first[b, j]`` and
    ``second[b, j]`` are the positions within cell ``j`` of sample ``b``
    (row-major over the cell) that go to the first and second sub-image;
    they share an edge, and are never the same pixel. Made by
    :func:`neighbour_pairs`; :meth:`take` applies the same choice to any
    tensor of the batch's spatial shape (the input, the network's output).
    """

    first: Any
    second: Any
    cell: tuple[int, ...]

    def take(self, t: Any, which: int) -> Any:
        """Sub-image ``which`` (0: first, 1: second) of ``t`` ``(B, C, *S)``, of ``S / cell``."""
        b, c, *spatial = t.shape
        ndim = len(self.cell)
        small = [s // k for s, k in zip(spatial, self.cell, strict=True)]
        # (B, C, n0, k0, n1, k1, ...) -> (B, C, n0, n1, ..., k0, k1, ...) -> (B, C, cells, k)
        split = t.reshape(
            b, c, *[v for n, k in zip(small, self.cell, strict=True) for v in (n, k)]
        )
        order = [0, 1, *range(2, 2 + 2 * ndim, 2), *range(3, 3 + 2 * ndim, 2)]
        cells = split.permute(order).reshape(b, c, math.prod(small), math.prod(self.cell))
        index = (self.first if which == 0 else self.second)[:, None, :, None]
        out = cells.gather(3, index.expand(b, c, -1, 1))
        return out.reshape(b, c, *small)


def neighbour_cell(ndim: int, planar: bool = True) -> tuple[int, ...]:
    """The cell of :func:`neighbour_pairs`: 2x2, or in 3D 1x2x2 (`planar`) or 2x2x2."""
    return (1, 2, 2) if ndim == 3 and planar else (2,) * ndim


def neighbour_pairs(x: Any, generator: Any, *, planar: bool = True) -> NeighbourPairs:
    """Neighbor2Neighbor's random neighbour sub-sampler for a ``(B, C, *S)`` batch.

    Each 2x2 cell gives one pixel to each of two sub-images, two pixels
    that share an edge, chosen at random per cell and sample (Huang et al.
    [1]_). With noise independent from pixel to pixel the two sub-images
    carry independent noise over nearly the same scene, so a network trained
    to map the first to the second learns to denoise without clean data and,
    unlike Noise2Void, sees every pixel of its input.

    Parameters
    ----------
    x : tensor
        The batch; every spatial size must be a multiple of the cell's.
    generator : torch.Generator
        The random choice, for reproducible runs; on `x`'s device.
    planar : bool
        3D only: cells of 1x2x2, pairs within a plane, so the sub-volumes
        keep every plane: microscopes usually sample Z more coarsely than Y
        and X, and the scene differs more between planes. False: 2x2x2
        cells, pairs along any axis. In 2D it has no effect.

    Raises
    ------
    ValueError
        A spatial size that is not a multiple of the cell's.

    References
    ----------
    .. [1] T. Huang, S. Li, X. Jia, H. Lu and J. Liu, "Neighbor2Neighbor:
           Self-Supervised Denoising from Single Noisy Images", CVPR 2021.
           :arXiv:`2101.02824`
    """
    import itertools

    import torch

    b, _c, *spatial = x.shape
    cell = neighbour_cell(len(spatial), planar)
    if any(s % k for s, k in zip(spatial, cell, strict=True)):
        raise ValueError(
            f"neighbour sub-sampling takes cells of {cell} pixels and needs sizes that are "
            f"multiples of them, got {tuple(spatial)}: use a patch size that is a multiple "
            "of twice the network's grid along Y and X"
        )
    positions = list(itertools.product(*[range(k) for k in cell]))
    pairs = torch.tensor(
        [
            (i, j)
            for i, p in enumerate(positions)
            for j, q in enumerate(positions)
            if sum(a != b for a, b in zip(p, q, strict=True)) == 1
        ],
        dtype=torch.long,
        device=x.device,
    )
    n = math.prod(s // k for s, k in zip(spatial, cell, strict=True))
    # drawn on the batch's device, with its generator (a CUDA generator on a GPU)
    pick = torch.randint(0, len(pairs), (b, n), generator=generator, device=x.device)
    chosen = pairs[pick]
    return NeighbourPairs(chosen[..., 0].contiguous(), chosen[..., 1].contiguous(), cell)
