"""The data of one training run: sources, the validation split and batches.

:class:`TrainingSet` turns the arguments of :func:`napari_deconvnet.train`
into patch sources with their normalisation, a :class:`~.patches.PatchSampler`
over the training area, a fixed validation set, and batches of normalised
``(input, target, mask)`` tensors for each of the three modes.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ._validation import chunked_as_dask, is_tensor, real_array
from .channel_psfs import per_channel
from .conditioning import (
    noise_map_channel,
    noise_window,
    normalised_line,
    trains_with_noise_map,
)
from .conditions import SAMPLE_CROP
from .kinds import (
    BALANCE_CROP,
    ImpulseSwitched,
    PSFConditioned,
    impulse_values,
    kind_of,
    noise_line,
)
from .model import DeconvNet
from .noise import NOISE_MODELS, synthesize
from .normalization import image_statistics, offset_scale
from .patches import (
    MAX_VALIDATION_PATCHES,
    Box,
    PatchFitError,
    PatchSampler,
    Source,
    blind_spot,
    check_array,
    dihedral,
    grid_positions,
    is_dask,
    neighbour_pairs,
    region_boxes,
    window,
)
from .psf import recentre_psf, subpixel_fraction, subpixel_shift
from .regions import one_per_input

__all__ = [
    "PSFChannel",
    "TrainingSet",
    "as_list",
    "is_impulse_model",
    "positive_int",
    "resolve_noise",
    "resolve_patch_size",
]

#: :func:`~napari_deconvnet.train`'s validation share when none is given
DEFAULT_VALIDATION = 0.1
_STATS_CROP = {2: 256, 3: 64}
#: An image of a stack up to this many pixels is degraded whole for its own statistics
#: (synthetic pairs), an image alone up to four times as many; larger ones in crops on
#: a grid: two random crops of 256² missed the objects of a 768² frame and scaled it
#: 26 times too small (session 69 review)
_WHOLE_STATS = 1 << 20
#: Crops of an image larger than that, on a grid over all of it
_STATS_CROPS = 16


def _grid_origins(spatial: Sequence[int], crop: Sequence[int], limit: int) -> list[list[int]]:
    """Origins of at most `limit` crops of `crop` spread evenly over `spatial` (every
    pixel covered when that many crops can cover it)."""
    counts = [max(1, math.ceil(s / c)) for s, c in zip(spatial, crop, strict=True)]
    while math.prod(counts) > limit:
        counts[counts.index(max(counts))] -= 1
    axes = [
        np.unique(np.round(np.linspace(0, s - c, n)).astype(int)).tolist()
        for s, c, n in zip(spatial, crop, counts, strict=True)
    ]
    return [list(o) for o in itertools.product(*axes)]


#: Supervised pairs held in memory get their classical channel computed once,
#: whole, up to this many pixels (voxels) in all; larger and lazy sources get
#: it per patch, with three PSF sizes of context.
WHOLE_CHANNEL_LIMIT = 2**26


class PSFChannel:
    """A conditioned network's classical input channel, for training patches.

    The same computation as restore's (the kind's ``input_channels``:
    Richardson-Lucy or Wiener with the PSF for a deconvolution model, the
    switching median for ``salt-and-pepper``), on a patch read with
    :attr:`margin` extra pixels per side (three PSF sizes, or half the
    largest median window: the context a restored block gets) and the
    statistics of its whole source image. `kernel` is None for the switching
    median.
    """

    def __init__(self, net: DeconvNet, kernel: np.ndarray | None, device: Any = None) -> None:
        self.kind = kind_of(net)
        self.kernel = kernel
        # the training device computes Wiener and Richardson-Lucy, as a restore
        # there would (a GPU: on one CPU core they bounded a 3D run's steps)
        self._device = {} if device is None else {"device": device}
        self.margin = max(self.kind.input_margin(kernel, net.config.ndim))
        self._context = isinstance(self.kind, PSFConditioned)

    def whole(self, image: np.ndarray, stats: dict[str, float]) -> np.ndarray:
        """The channels ``(C, *spatial)`` of a whole plane or volume, as eager restore's."""
        image = np.asarray(image, np.float32)[None]
        return self.kind.channel_stack(image, self.kernel, statistics=[stats], **self._device)[0]

    def statistics(self, image: np.ndarray) -> dict[str, float]:
        """The statistics restore takes from a whole image (its minimum, or Wiener balance)."""
        return self.kind.input_statistics(np.asarray(image, np.float32)[None])[0]

    def __call__(
        self, patch: np.ndarray, stats: dict[str, float], inside: tuple[slice, ...] = ()
    ) -> np.ndarray:
        """The channels ``(C, *patch.shape)`` of `patch` (margin included), from ``patch[inside]``.

        `inside` is the part of a margin-extended patch that lies on the
        image: beyond the image's borders the computation extends it as
        restore extends the whole image, so a patch at a border gets
        restore's values there too. The rest (margin only) is left zero. A
        patch wholly on the image is filtered as it is: its margin is real
        context (``context=True`` of the kind's ``input_channels``).
        """
        patch = np.asarray(patch, np.float32)
        out = np.zeros((self.kind.extra_channels, *patch.shape), np.float32)
        image = patch[inside][None]
        # all of the patch lies on the image: its margin is real context
        context = all(s == slice(0, None) for s in inside)
        extra = {"context": context, **self._device} if self._context else {}
        stack = self.kind.channel_stack(image, self.kernel, statistics=[stats], **extra)
        out[(slice(None), *inside)] = stack[0]
        return out


def _default_share(validation: Any) -> bool:
    """Whether `validation` is :func:`~napari_deconvnet.train`'s default share."""
    return (
        isinstance(validation, float | int)
        and not isinstance(validation, bool)
        and validation == DEFAULT_VALIDATION
    )


def is_impulse_model(net: DeconvNet) -> bool:
    """Whether `net` takes the switching median of its input (``salt-and-pepper``)."""
    kind = kind_of(net)
    return isinstance(kind, ImpulseSwitched) and kind.extra_channels == 1


def as_list(value: Any, name: str) -> list[Any]:
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"{name} is an empty list; pass at least one image")
        items = list(value)
    else:
        items = [value]
    # tensors as restore takes them (detached, on the CPU); numpy read their dtype as
    # "Cannot interpret 'torch.float32' as a data type"
    items = [real_array(item, name) if is_tensor(item) else item for item in items]
    # a zarr (or h5py) array read through dask: self-supervised training's noise
    # estimate raised "'Array' object has no attribute 'reshape'" on it
    items = [chunked_as_dask(item) for item in items]
    for i, item in enumerate(items):
        check_array(item, name if len(items) == 1 else f"{name}[{i}]")
    return items


def positive_int(value: Any, name: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def resolve_noise(noise: Any, psf: Any, ndim: int) -> tuple[str, dict, Any]:
    """``(name, parameters, kernel)`` of synthetic pairs' noise and blur, checked; the
    kernel is None (no blur), one array, or a list of one per channel."""
    if noise is None:
        name, params = "none", {}
    elif isinstance(noise, str):
        name, params = noise, {}
    elif isinstance(noise, dict):
        params = dict(noise)
        # 'kind' as a PSF dict names its kind (make_psf), so a user may guess either
        name = params.pop("model", None) or params.pop("noise", None) or params.pop("kind", None)
        if name is None:
            raise ValueError(
                "a noise dict needs a 'model' (or 'kind') key naming the noise model, e.g. "
                f"dict(model='gaussian', sigma=0.1); models: {list(NOISE_MODELS)}"
            )
    else:
        raise TypeError(
            f"noise must be a noise model name or a dict such as dict(model='gaussian', "
            f"sigma=0.1), got {type(noise).__name__}"
        )
    kernels: list[np.ndarray | None] = [None]
    if psf is not None:  # one PSF, or a list of one per channel (core.channel_psfs)
        kernels = [_noise_kernel(p, ndim) for p in (psf if per_channel(psf) else [psf])]
        for kernel in kernels:
            if kernel.ndim > ndim:
                raise ValueError(
                    f"psf has {kernel.ndim} dimensions but the network is {ndim}D; pass a "
                    f"{ndim}D (or lower-dimensional) PSF"
                )
    # validates the name, the parameters and the PSF with synthesize's own messages,
    # a parameter's named as the noise's ("sigma must be >= 0.0" said nothing of noise=)
    try:
        with warnings.catch_warnings():  # about the probe's zeros, not the user's data (a
            # camera offset in a clean image that includes it read as "clean below 0")
            warnings.simplefilter("ignore")
            for kernel in kernels:
                synthesize(np.zeros((8,) * ndim, np.float32), name, psf=kernel, seed=0, **params)
    except (ValueError, TypeError) as err:
        text = str(err)
        if text.startswith(("psf", "PSF", "unknown noise", "noise")):
            raise
        raise type(err)(f"noise {name!r}: {text}") from None
    return name.lower(), params, kernels if per_channel(psf) else kernels[0]


def _noise_kernel(psf: Any, ndim: int) -> np.ndarray:
    """A synthetic pairs' PSF as an array: a :func:`~.psf.make_psf` name or dict is
    made in the network's dimensions, as a deconvolution model's PSF is (it was
    read as numbers: "could not convert string to float")."""
    if isinstance(psf, str):
        psf = {"kind": psf}
    if isinstance(psf, Mapping):
        from .psf import as_psf

        if "ndim" not in psf and psf.get("shape") is None:
            psf = {**psf, "ndim": ndim}
        return np.asarray(as_psf(psf, ndim), np.float64)
    from .psf import single_leading_axes

    kernel = np.asarray(psf, dtype=np.float64)
    # a (1, Y, X) PSF (a one-plane layer or TIFF) is a plane's for a 2D network
    return kernel[(0,) * single_leading_axes(kernel.shape, ndim)] if kernel.ndim else kernel


def resolve_patch_size(patch_size: Any, ndim: int, net: DeconvNet) -> tuple[int, ...]:
    if isinstance(patch_size, int | np.integer) and not isinstance(patch_size, bool):
        size = (int(patch_size),) * ndim
    elif isinstance(patch_size, Sequence) and not isinstance(patch_size, str):
        size = tuple(patch_size)
        if len(size) != ndim:
            raise ValueError(
                f"patch_size {tuple(size)} is {len(size)}D but the network is {ndim}D; pass "
                f"{ndim} sizes (or one int), or train a {len(size)}D network"
            )
    else:
        raise TypeError(f"patch_size must be an int or a sequence of ints, got {patch_size!r}")
    grids = net.config.grid_shape  # per axis: a planar 3D network takes any Z (session 70)
    for p, grid in zip(size, grids, strict=True):
        if isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 1:
            raise ValueError(f"patch_size must hold positive integers, got {patch_size!r}")
        if p % grid:
            on = grids if len(set(grids)) > 1 else grid
            raise ValueError(
                f"patch_size {tuple(int(v) for v in size)} is not a multiple of the network's "
                f"grid of {on} pixels (2**depth, depth {net.config.depth}); use e.g. "
                f"{math.ceil(p / grid) * grid}"
            )
    return tuple(int(p) for p in size)


def _check_finite(array: Any, name: str) -> None:
    if is_dask(array) or np.dtype(array.dtype).kind != "f":
        return  # dask data: checked on the statistics sample and in every patch read
    if not np.isfinite(np.asarray(array)).all():
        raise ValueError(
            f"{name} contains NaN or infinite values; replace them first "
            "(e.g. numpy.nan_to_num) - only finite values can be trained on"
        )


class TrainingSet:
    """Sources, samplers, batches and the fixed validation set of one run.

    `channel_groups` gives, for each input, the index of the user image it is
    a channel plane of (the planes :func:`~.train_setup.by_channel` makes of
    one ``axes="YXC"`` image share one); None: each input is an image of its
    own. A validation fraction holds out the same pixels in every channel of
    an image: its patches are drawn over the image's pixel area and read in
    each of its channels, and no training patch of any channel overlaps them.

    With one PSF per channel (`condition_psf` and the noise's kernel lists of
    one kernel per channel), input ``i`` is channel ``i % C`` of its image
    and takes that channel's kernel (:attr:`Source.psf`,
    :attr:`Source.psf_channel`) for its blur and its classical channel.
    """

    def __init__(
        self,
        *,
        mode: str,
        inputs: list[Any],
        targets: list[Any] | None,
        net: DeconvNet,
        size: tuple[int, ...],
        regions: Any,
        validation: Any,
        validation_regions: Any,
        noise: tuple[str, dict, np.ndarray | None],
        rng: np.random.Generator,
        device: torch.device,
        augment: bool,
        seed: int,
        intensity_jitter: float = 0.0,
        replacement: str = "random",
        condition_psf: np.ndarray | None = None,
        channel_groups: Sequence[int] | None = None,
        neighbours: bool = False,
    ) -> None:
        self.mode, self.size, self.rng, self.device = mode, size, rng, device
        self.replacement = replacement
        # self-supervised by Neighbor2Neighbor: batches come whole, with the pairs
        # of neighbours to train on (validation keeps the blind-spot masks)
        self.neighbours = bool(neighbours) and mode == "self-supervised"
        self.augment = augment
        self.intensity_jitter = float(intensity_jitter)
        self.ndim = net.config.ndim
        self.noise_name, self.noise_params, blur = noise
        # one PSF per channel (core.channel_psfs): lists of one kernel per channel, and
        # input i is channel i % C of its image (train_setup.by_channel's order)
        listed = [k for k in (blur, condition_psf) if isinstance(k, list)]
        self.n_channels = len(listed[0]) if listed else 1
        self._blur = blur if isinstance(blur, list) else [blur] * self.n_channels
        self.psf = None if isinstance(blur, list) else blur  # one kernel for every input
        self.margin = max((max(k.shape) // 2 + 1 for k in self._blur if k is not None), default=0)
        # a PSF-conditioned network also takes its classical pre-deconvolution, an
        # impulse-noise one (salt-and-pepper) the switching median of its input
        self.impulse = is_impulse_model(net)
        self.condition = None
        self._conditions: list[PSFChannel] = []
        if isinstance(condition_psf, list):
            self._conditions = [PSFChannel(net, k, device) for k in condition_psf]
        elif condition_psf is not None or self.impulse:
            self._conditions = [PSFChannel(net, condition_psf, device)] * self.n_channels
        if self._conditions:
            self.condition = self._conditions[0]  # (each input computes with its own)
            self.margin = max(self.margin, *(c.margin for c in self._conditions))
        self._channel_pixels = 0  # of the whole channels the sources hold
        self.gen = torch.Generator(device=device).manual_seed(seed)
        # a noise-conditioned network also takes its noise map (core/kinds.py)
        self.noise_map = trains_with_noise_map(net)
        self.noise_window = noise_window(net)  # (restore's: 3 was taken whatever it said)
        norm = net.config.normalization
        self.sources = self._sources(inputs, targets, norm, "inputs")
        # a deconvolution model's image channel where a centred PSF would have put it,
        # as restore resamples it (an even-sized PSF left the inputs half a pixel off
        # their targets, and restore shifted them once more, session 69)
        self._psf_model = isinstance(kind_of(net), PSFConditioned)
        groups = self.channel_groups = self._channel_groups(channel_groups, self.sources)
        train_boxes = self._regions(regions, "regions", self.sources)
        if not train_boxes:
            raise ValueError(
                "regions are empty: no shape or labelled pixel lies on the inputs; draw "
                "rectangles or polygons over the image, or pass regions=None"
            )
        sampler = PatchSampler(self.sources, train_boxes, size, rng, groups=groups)
        if sampler.empty:
            raise PatchFitError(
                f"no {size} patch fits inside the training regions; draw larger regions or "
                "lower patch_size"
            )
        val_sources, positions, exclude = self.sources, [], []
        if validation_regions is not None and isinstance(validation, tuple | list):
            raise ValueError(
                "validation= data and validation_regions= are alternatives (validate on "
                "separate images, or on regions of the training images); give one of them"
            )
        if validation_regions is not None and not _default_share(validation):
            # (the default share says nothing: the regions are the user's choice)
            warnings.warn(
                f"validation={validation!r} is not applied: validation_regions= chooses the "
                "validation patches (every patch that fits in them, at most 64); pass "
                "validation_regions=None to hold out a share of the training area instead",
                UserWarning,
                stacklevel=2,
            )
        if validation_regions is not None:
            # (None for one of several inputs: no validation there, not all of it)
            val_boxes = self._regions(
                validation_regions, "validation_regions", self.sources, whole=False
            )
            small = []
            for box in val_boxes:
                lead_shape = self.sources[box.source].lead_shape
                found = grid_positions(box, size, lead_shape, cover=True)
                positions += found
                if not found:
                    small.append(f"input {box.source} at {list(box.lo)}, {list(box.shape)} pixels")
            if small and positions:
                warnings.warn(
                    f"{len(small)} validation region(s) hold no {list(size)} patch and are not "
                    f"scored, yet still left out of training ({'; '.join(small[:3])}"
                    f"{'; ...' if len(small) > 3 else ''}); draw them larger or lower "
                    "patch_size",
                    UserWarning,
                    stacklevel=2,
                )
            if not positions:
                raise PatchFitError(
                    f"the validation regions hold no {size} patch; draw larger validation "
                    "regions or lower patch_size"
                )
            exclude = val_boxes
            self.validation = "regions"
        elif isinstance(validation, float | int) and not isinstance(validation, bool):
            if not 0 <= validation < 1:
                raise ValueError(
                    f"validation must be a fraction in [0, 1), validation data or None, got "
                    f"{validation!r}"
                )
            if validation > 0:
                # drawn over each image's pixels (an area counted once, not once per
                # channel) and read in every channel of the image
                siblings = {g: [i for i, h in enumerate(groups) if h == g] for g in groups}
                planes = max(len(v) for v in siblings.values())
                pixels = sum(
                    b.area(self.sources[b.source].lead_shape) // len(siblings[groups[b.source]])
                    for b in sampler.boxes
                )
                n = round(validation * pixels / math.prod(size))
                n = int(min(max(n, 1), max(MAX_VALIDATION_PATCHES // planes, 1)))
                positions = [
                    (t, lead, origin)
                    for s, lead, origin in sampler.draw_disjoint(n)
                    for t in siblings[groups[s]]
                ]
                exclude = [Box(s, lead, origin, size) for s, lead, origin in positions]
            self.validation = f"fraction {validation}"
        elif validation is None:
            self.validation = "none"
        elif isinstance(validation, bool):  # (True was told to be a tuple of pairs)
            raise TypeError(
                f"validation must be a fraction in [0, 1), validation data or None, got "
                f"{validation!r}"
            )
        else:
            if isinstance(validation, tuple) and len(validation) == 2 and mode == "supervised":
                v_in, v_tg = validation
            elif isinstance(validation, tuple) and len(validation) == 2 and mode != "supervised":
                # (an (inputs, targets) pair was read as two images: a clean one scored as
                # noisy, or a noisy one degraded again as clean)
                raise ValueError(
                    f"{mode} training validates on images alone: pass validation= an image or "
                    "a list of them, not a pair in a tuple (that is the supervised (inputs, "
                    "targets) form)"
                )
            else:
                v_in, v_tg = validation, None
                if mode == "supervised":
                    raise ValueError(
                        "supervised validation data must be a (inputs, targets) tuple"
                    )
            val_sources = self._sources(
                as_list(v_in, "validation"),
                None if v_tg is None else as_list(v_tg, "validation targets"),
                norm,
                "validation",
            )
            for i, src in enumerate(val_sources):
                box = Box(i, (None,) * len(src.lead_shape), (0,) * self.ndim, src.spatial)
                positions += grid_positions(box, size, src.lead_shape, cover=True)
            self.validation = "data"
        if len(positions) > MAX_VALIDATION_PATCHES:
            if self.validation != f"fraction {validation}":
                # (validation images or regions were thinned without a word, session 70)
                from ._validation import user_stacklevel

                warnings.warn(
                    f"the validation data covers {len(positions)} patches of {list(size)}; "
                    f"{MAX_VALIDATION_PATCHES} of them, a seeded random choice (the same "
                    "every epoch), are scored; pass a smaller validation image or a larger "
                    "patch_size to score all of it",
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
            keep = rng.choice(len(positions), MAX_VALIDATION_PATCHES, replace=False)
            positions = [positions[i] for i in sorted(keep)]
        self.sampler = PatchSampler(self.sources, train_boxes, size, rng, exclude, groups)
        self.sampler.draw()  # a clear error now if nothing fits outside the validation area
        self.train_area = self.sampler.area()
        self.val = self._validation_set(val_sources, positions, seed)

    def reseed(self, seed: Any) -> None:
        """New random streams for training batches (a resumed run draws fresh patches)."""
        self.rng = np.random.default_rng(seed)
        self.sampler.rng = self.rng
        self.gen = torch.Generator(device=self.device).manual_seed(
            int(np.random.default_rng(seed).integers(2**62))
        )

    # -- set-up

    @staticmethod
    def _channel_groups(channel_groups: Any, sources: list[Source]) -> list[int]:
        """One group per source; sources of a group (channels of one image) share shapes."""
        if channel_groups is None:
            return list(range(len(sources)))
        groups = [int(g) for g in channel_groups]
        if len(groups) != len(sources):
            raise ValueError(
                f"channel_groups has {len(groups)} entries but there are {len(sources)} "
                "inputs; pass the index of its image for each input"
            )
        first: dict[int, int] = {}
        for i, g in enumerate(groups):
            j = first.setdefault(g, i)
            if sources[i].x.shape != sources[j].x.shape:
                raise ValueError(
                    f"inputs {j} and {i} are channels of one image (channel_groups) but have "
                    f"shapes {tuple(sources[j].x.shape)} and {tuple(sources[i].x.shape)}; "
                    "channels of one image have one shape"
                )
        return groups

    def _sources(self, inputs, targets, norm, name) -> list[Source]:
        if len(inputs) % self.n_channels:
            raise ValueError(
                f"{name} hold {len(inputs)} channel images, not a multiple of the "
                f"{self.n_channels} PSFs (one per channel); give {name} with as many "
                "channels as PSFs"
            )
        sources = []
        for i, x in enumerate(inputs):
            y = None if targets is None else targets[i]
            label = f"{name}[{i}]" if len(inputs) > 1 else name
            if x.ndim < self.ndim:
                raise ValueError(
                    f"{label} is {x.ndim}D (shape {tuple(x.shape)}) but the network is "
                    f"{self.ndim}D; train a 2D network on 2D images"
                )
            spatial = tuple(x.shape[x.ndim - self.ndim :])
            if any(s < p for s, p in zip(spatial, self.size, strict=True)):
                raise PatchFitError(
                    f"patch_size {self.size} is larger than the spatial shape {spatial} of "
                    f"{label}; lower patch_size"
                )
            _check_finite(x, label)
            if y is not None:
                _check_finite(y, f"{label} target")
            src = Source(x, y, self.ndim)
            src.psf = self._blur[i % self.n_channels]
            if self._conditions:
                src.psf_channel = self._conditions[i % self.n_channels]
            sources.append(src)
        for src in sources:
            if self.mode == "synthetic" and norm["method"] == "percentile":
                src.offset, src.scale = self._degraded_stats(src, norm)
                if math.prod(src.lead_shape) > 1:
                    # each time point or plane its own, as restore takes them (one set
                    # for all put a frame 100 times dimmer at 0-0.01, session 69)
                    stats = [self._degraded_stats(src, norm, lead) for lead in
                             np.ndindex(*src.lead_shape)]  # fmt: skip
                    src.lead_offset = np.array([o for o, _ in stats]).reshape(src.lead_shape)
                    src.lead_scale = np.array([c for _, c in stats]).reshape(src.lead_shape)
            else:
                # the statistics restore uses: exact in memory, the documented sample for dask
                src.offset, src.scale = offset_scale(src.x, norm)
                if norm["method"] == "percentile" and math.prod(src.lead_shape) > 1:
                    # and each time point or plane its own, as restore takes them
                    n_lead = len(src.lead_shape)
                    offsets, scales = image_statistics(src.x, n_lead, norm)
                    src.lead_offset = offsets.reshape(src.lead_shape)
                    src.lead_scale = scales.reshape(src.lead_shape)
            if self.noise_map:
                src.line = self._noise_line(src)
            if self.condition is not None:
                src.condition = self._condition_stats(src)
        return sources

    def _synthesize(self, clean: Any, src: Source, seed: Any) -> Any:
        """The run's noise (and blur) on `clean` patches of `src`.

        Salt-and-pepper impulses for an impulse-noise model go to the source's
        impulse values (its whole image's extremes), as restore defines an
        impulse, not to each patch's own minimum and maximum.
        """
        params = dict(self.noise_params)
        if self.noise_name == "salt-and-pepper":
            # every network: the source's extremes (an impulse model's condition is that
            # pair too), not the batch's (a float image's patches beside a uint8 one's
            # got salt at 255, 280 times their range) nor each validation patch's (s70)
            low, high = self._extremes(src)
            params.setdefault("low", low)
            params.setdefault("high", high)
        return synthesize(clean, self.noise_name, psf=src.psf, seed=seed, **params)

    @staticmethod
    def _extremes(src: Source) -> tuple[float, float]:
        """A source's least and greatest value (:func:`~.kinds.impulse_values`: exact,
        one pass over lazy data), read once."""
        if "extremes" not in src.__dict__:
            values = impulse_values(src.x)
            src.__dict__["extremes"] = (values["minimum"], values["maximum"])
        return src.__dict__["extremes"]

    def _central_image(
        self, src: Source, crop: Sequence[int], lead: tuple[int, ...] | None = None
    ) -> np.ndarray:
        """A central `crop` of a source's middle plane or volume (or the one at
        `lead`), as the model sees it.

        In synthetic mode, degraded as the patches are (one fixed draw).
        """
        if lead is None:
            lead = tuple(n // 2 for n in src.lead_shape)
        origin = [(s - c) // 2 for s, c in zip(src.spatial, crop, strict=True)]
        image, _ = src.read(lead, origin, crop)
        if self.mode == "synthetic":
            image = self._synthesize(image, src, np.random.default_rng(0))
        return np.asarray(image, np.float32)

    def condition_samples(self, limit: int = 16) -> list[np.ndarray]:
        """A central crop of each source (the first `limit`), as the model sees it.

        What :func:`~.conditions.record_conditions` measures
        (:data:`~.conditions.SAMPLE_CROP`), degraded in synthetic mode.
        """
        cap = SAMPLE_CROP[3 - self.ndim :]
        return [
            self._central_image(src, tuple(map(min, src.spatial, cap)))
            for src in self.sources[:limit]
        ]

    def _condition_stats(self, src: Source) -> dict[str, float]:
        """The classical channel's statistics of a source (its middle plane or volume, whole;
        an impulse model's: the whole source's extremes, the one pair restore takes for a
        stack, session 70)."""
        if isinstance(src.psf_channel.kind, ImpulseSwitched):
            least, most = self._extremes(src)
            return {"minimum": least, "maximum": most}
        return src.psf_channel.statistics(self._central_image(src, src.spatial))

    def _image_condition(self, src: Source, lead: tuple[int, ...]) -> dict[str, float]:
        """The classical channel's statistics of the plane or volume at `lead`, as restore
        computes them for each image of a stack (each channel of a ``C`` axis, each time
        point): the middle image's served every image before, so a dim channel's
        Wiener balance was the bright one's. Computed once per image, when first drawn."""
        if math.prod(src.lead_shape) <= 1 or src.condition is None:
            return src.condition
        if isinstance(src.psf_channel.kind, ImpulseSwitched):
            return src.condition  # (one pair of impulse levels for a stack, as restore's)
        cache = src.__dict__.setdefault("lead_condition", {})
        lead = tuple(int(i) for i in lead)
        if lead not in cache:
            image = self._central_image(src, src.spatial, lead)
            cache[lead] = src.psf_channel.statistics(image)
        return cache[lead]

    def _noise_line(self, src: Source) -> dict[str, float]:
        """The variance line of a source's noise, as restore estimates it (core/kinds.py)."""
        crop = tuple(min(s, BALANCE_CROP) for s in src.spatial)
        return noise_line(self._central_image(src, crop))

    def _with_noise_map(self, x: torch.Tensor, drawn: list[int], offsets, scales, sources=None):
        """`x` with the noise map of each sample appended (noise-conditioned networks).

        Sample ``i`` came from ``sources[drawn[i]]`` (default: the training
        sources) and was normalised by ``offsets[i]``, ``scales[i]``.
        """
        if not self.noise_map:
            return x
        sources = self.sources if sources is None else sources
        lines = [
            normalised_line(sources[s].line, o, sc)
            for s, o, sc in zip(drawn, offsets, scales, strict=True)
        ]
        return noise_map_channel(x, lines, self.noise_window)

    def _degraded_stats(
        self, src: Source, norm: dict, at: tuple[int, ...] | None = None
    ) -> tuple[float, float]:
        """Percentiles of degraded crops: the statistics the noisy image would have (of
        the plane or volume `at`, or of a source of one image; else of random crops
        from all of its images).

        One image is degraded whole up to :data:`_WHOLE_STATS` pixels, as restore reads
        it; a larger one in crops on a grid spread over all of it (random crops could
        miss a corner's objects and scale the image 20 times too small)."""
        crop = tuple(min(s, _STATS_CROP[self.ndim]) for s in src.spatial)
        one = at is not None or math.prod(src.lead_shape) == 1
        limit = _WHOLE_STATS if at is not None else 4 * _WHOLE_STATS  # (each of a stack's)
        if one and math.prod(src.spatial) <= limit:
            crop = tuple(src.spatial)
        if one:
            lead = at if at is not None else (0,) * len(src.lead_shape)
            draws = [(lead, o) for o in _grid_origins(src.spatial, crop, _STATS_CROPS)]
        else:
            draws = [
                (
                    tuple(int(self.rng.integers(n)) for n in src.lead_shape),
                    [
                        int(self.rng.integers(s - c + 1))
                        for s, c in zip(src.spatial, crop, strict=True)
                    ],
                )
                for _ in range(8)
            ]
        values = []
        for lead, origin in draws:
            clean, _ = src.read(lead, origin, crop)
            noisy = synthesize(
                clean, self.noise_name, psf=src.psf, seed=self.rng, **self.noise_params
            )
            values.append(noisy.reshape(-1))
        return offset_scale(np.concatenate(values), norm)

    def _regions(self, spec, name, sources, whole: bool = True) -> list[Box]:
        """The boxes of `spec` (one region specification, or one per source); an entry
        of None is the whole source, or nothing with `whole` False (validation regions
        on some of several inputs)."""
        if spec is None:
            specs = [None] * len(sources)
        elif len(sources) > 1:
            if not isinstance(spec, list | tuple) or len(spec) != len(sources):
                raise ValueError(
                    f"with {len(sources)} inputs, {name} must be a list of {len(sources)} "
                    "region specifications (None, a mask or a list of polygons), one per input"
                )
            specs = list(spec)
        elif one_per_input(
            spec, tuple(sources[0].x.shape)
        ):  # [mask], [None], [[polygons]]: as for several
            specs = list(spec)
        else:
            specs = [spec]
        if not whole and all(s is None for s in specs):
            raise ValueError(
                f"{name} give no region on any input (None for each); pass {name}=None to "
                "validate on a share of the training area, or a mask or polygons for an input"
            )
        boxes = []
        for i, (s, src) in enumerate(zip(specs, sources, strict=True)):
            if s is not None or whole:
                boxes += region_boxes(s, i, tuple(src.x.shape), self.ndim)
        if spec is not None and not boxes:
            raise ValueError(
                f"{name} are empty: no shape or labelled pixel lies on the inputs; draw "
                "rectangles or polygons over the image"
            )
        return boxes

    def _validation_set(self, sources, positions, seed) -> dict[str, Any] | None:
        if not positions:
            return None
        rng = np.random.default_rng([seed, 1])
        xs, ys, offsets, scales = [], [], [], []
        if self.noise_map and sources is not self.sources:
            for src in sources:  # validation data of its own: its own noise
                src.line = self._noise_line(src)
        channels = []
        for s, lead, origin in positions:
            src = sources[s]
            x, y = src.read(lead, origin, self.size, self.margin)
            inside = self._inside(src, origin)
            if self.mode == "synthetic":
                y = x
                x = self._synthesize(x, src, rng)
            if self.condition is not None:
                channels.append(self._crop(self._patch_channel(src, lead, origin, x, inside)))
            if self.condition is not None:
                x = self._register(np.asarray(x, np.float32), src)
            xs.append(self._crop(x))
            ys.append(None if y is None else self._crop(y))
            offset, scale = src.stats(tuple(lead))
            offsets.append(offset)
            scales.append(scale)
        x = self._normalise(torch.from_numpy(np.stack(xs))[:, None], offsets, scales)
        if channels:  # (B, C, *spatial)
            c = self._normalise(torch.from_numpy(np.stack(channels)), offsets, scales)
            x = torch.cat([x, c], dim=1)
        val = {"offset": offsets, "scale": scales, "raw": xs, "positions": positions}
        if self.mode == "self-supervised":
            gen = torch.Generator().manual_seed(seed + 1)
            val["x"], val["mask"] = blind_spot(x, gen, replacement=self.replacement)
            val["y"] = x
        else:
            val["x"], val["mask"] = x, None
            val["y"] = self._normalise(torch.from_numpy(np.stack(ys))[:, None], offsets, scales)
        drawn = [s for s, _, _ in positions]
        val["x"] = self._with_noise_map(val["x"], drawn, offsets, scales, sources)
        return val

    def _fraction(self, src: Source) -> tuple[float, ...] | None:
        """How far restore moves `src`'s image channel for a deconvolution model (None: not
        at all; kept on `src`): by the whole pixels its PSF lies off its origin (read that
        many pixels further, :func:`~.psf.recentre_psf`) and the rest of a pixel, when it
        is large enough to resample (:func:`~.psf.subpixel_fraction`). Synthetic pairs
        are blurred with the recentred kernel already: the rest only."""
        if "fraction" not in src.__dict__:
            kernel = (
                src.psf if self.mode == "synthetic" else getattr(src.psf_channel, "kernel", None)
            )
            fraction = None
            if self._psf_model and kernel is not None:
                centred, shift = recentre_psf(kernel, src.spatial)
                rest = subpixel_fraction(centred) or (0.0,) * centred.ndim
                whole = shift if shift is not None and self.mode != "synthetic" else ()
                moved = [float(r) for r in rest]
                for i, s in enumerate(whole):  # (the rest alone put an off-centre PSF's
                    moved[i] += float(s)  # inputs further off their targets, review)
                fraction = tuple(moved) if any(moved) else None
            src.__dict__["fraction"] = fraction
        return src.__dict__["fraction"]

    def _register(self, x: Any, src: Source) -> Any:
        """An input patch (margin included) resampled by :meth:`_fraction`, as restore
        resamples its image channel (:func:`~.psf.subpixel_shift`), or as it is."""
        fraction = self._fraction(src)
        return x if fraction is None else subpixel_shift(np.asarray(x, np.float32), fraction)

    # -- batches

    def _inside(self, src: Source, origin: Sequence[int]) -> tuple[slice, ...]:
        """The part of a patch read at `origin` with the margin that lies on the image.

        A synthetic patch is all "inside": its degradation is synthesised on
        the margin too (there is no whole degraded image to match).
        """
        m = self.margin
        if self.mode == "synthetic" or not m:
            return ()
        lo = [max(m - o, 0) for o in origin]
        hi = [
            max(o + p + m - s, 0) for o, p, s in zip(origin, self.size, src.spatial, strict=True)
        ]
        return tuple(slice(a, (-b) or None) for a, b in zip(lo, hi, strict=True))

    def _patch_channel(
        self, src: Source, lead: tuple[int, ...], origin: Sequence[int], x: np.ndarray, inside
    ) -> np.ndarray:
        """The classical channel of the patch `x` read at `origin` (margin included).

        A supervised source held in memory: cut from the channel of its whole
        plane or volume, computed once (:meth:`_source_channel`), so that it
        is exactly restore's, whatever the PSF's reach. Otherwise computed on
        the patch with its margin (see :class:`PSFChannel`).
        """
        whole = self._source_channel(src, lead) if self.mode == "supervised" else None
        if whole is None:
            return src.psf_channel(x, self._image_condition(src, lead), inside)
        return np.stack([window(w, (), origin, self.size, self.margin) for w in whole])

    def _source_channel(self, src: Source, lead: tuple[int, ...]) -> np.ndarray | None:
        """``src.x[lead]``'s channel, whole, kept in ``src.channels``; None if lazy or too big."""
        lead = tuple(lead)
        if lead in src.channels:
            return src.channels[lead]
        plane = int(np.prod(src.spatial))
        if not isinstance(src.x, np.ndarray) or self._channel_pixels + plane > WHOLE_CHANNEL_LIMIT:
            return None
        self._channel_pixels += plane
        image = np.asarray(src.x[lead], np.float32)
        src.channels[lead] = src.psf_channel.whole(image, self._image_condition(src, lead))
        return src.channels[lead]

    def _crop(self, a: np.ndarray) -> np.ndarray:
        m = self.margin
        if not m:
            return a
        return np.ascontiguousarray(a[(..., *[slice(m, -m)] * self.ndim)])

    @staticmethod
    def _normalise(x: torch.Tensor, offsets, scales) -> torch.Tensor:
        shape = (len(offsets),) + (1,) * (x.ndim - 1)
        off = torch.tensor(offsets, dtype=x.dtype, device=x.device).reshape(shape)
        sc = torch.tensor(scales, dtype=x.dtype, device=x.device).reshape(shape)
        return (x - off) / sc

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(network input, target, loss mask or None)``, normalised, on the device.

        Neighbor2Neighbor runs get ``(patches, patches, NeighbourPairs)``: the
        trainer cuts the two sub-images itself (it needs the network's output
        on the whole patch too).
        """
        xs, ys, cs, offsets, scales, drawn, leads = [], [], [], [], [], [], []
        supervised_channel = self.condition is not None and self.mode == "supervised"
        for _ in range(batch_size):
            s, lead, origin = self.sampler.draw()
            drawn.append(s)
            leads.append(tuple(lead))
            src = self.sources[s]
            x, y = src.read(lead, origin, self.size, self.margin)
            # the classical channel from the patch as read (the PSF's orientation),
            # then flipped and rotated with it
            c = None
            if supervised_channel:
                c = self._patch_channel(src, lead, origin, x, self._inside(src, origin))
                x = self._register(x, src)  # (after its channel, which restore takes as read)
            if self.augment:
                x, y, c = dihedral([x, y, c], self.rng)
            xs.append(x)
            ys.append(y)
            cs.append(c)
            offset, scale = src.stats(tuple(lead))
            offsets.append(offset)
            scales.append(scale)
        x = torch.from_numpy(np.stack(xs))[:, None].to(self.device)
        channel = None
        if self.mode == "synthetic":
            y = x
            # blurred after the flips, so the PSF keeps its orientation
            if self.impulse or self.n_channels > 1 or self.noise_name == "salt-and-pepper":
                # impulses at each source's own extremes; each channel blurred by its PSF
                pairs = zip(x, drawn, strict=True)
                x = torch.stack([self._synthesize(p, self.sources[s], self.gen) for p, s in pairs])
            else:
                params = self.noise_params
                x = synthesize(x, self.noise_name, psf=self.psf, seed=self.gen, **params)
            if self.condition is not None:
                noisy = x[:, 0].float().cpu().numpy()
                cs = [
                    self.sources[s].psf_channel(n, self._image_condition(self.sources[s], lead))
                    for n, s, lead in zip(noisy, drawn, leads, strict=True)
                ]
            if any(self._fraction(self.sources[s]) is not None for s in drawn):
                shifted = [self._register(p, self.sources[s]) for p, s in zip(
                    x[:, 0].float().cpu().numpy(), drawn, strict=True)]  # fmt: skip
                x = torch.from_numpy(np.stack(shifted))[:, None].to(x.device, x.dtype)
        elif self.mode == "supervised":
            y = torch.from_numpy(np.stack(ys))[:, None].to(self.device)
        if self.condition is not None:  # (B, C, *spatial)
            channel = torch.from_numpy(np.stack(cs)).to(self.device)
        if self.margin:
            crop = (..., *[slice(self.margin, -self.margin)] * self.ndim)
            x = x[crop]
            y = None if y is None else y[crop]
            channel = None if channel is None else channel[crop]
        x = self._normalise(x, offsets, scales)
        jitter = self._jitter(len(xs), x)
        if jitter is not None:
            x = x * jitter[0] + jitter[1]
        if channel is not None:
            x = torch.cat([x, self._normalise(channel, offsets, scales)], dim=1)
        if self.neighbours:
            return x, x, neighbour_pairs(x, self.gen)
        if self.mode == "self-supervised":
            masked, mask = blind_spot(x, self.gen, replacement=self.replacement)
            return self._with_noise_map(masked, drawn, offsets, scales), x, mask
        y = self._normalise(y, offsets, scales)
        if jitter is not None:
            y = y * jitter[0] + jitter[1]
        return self._with_noise_map(x, drawn, offsets, scales), y, None

    def _jitter(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per-sample gain and offset for `n` normalised patches, or None (off).

        With jitter ``j`` the gain is log-uniform in ``[1 / (1 + j), 1 + j]``
        and the offset uniform in ``[-0.4 j, 0.4 j]`` of the normalised range,
        the same for a patch's input and target: a network trained on one
        field of view then meets another one's intensities (its own
        percentiles put its structures elsewhere in the range) as it met its
        own. No draw at all when off, so runs without it keep their streams.
        """
        j = self.intensity_jitter
        if j <= 0:
            return None
        shape = (n,) + (1,) * (like.ndim - 1)
        span = math.log1p(j)
        gain = np.exp(self.rng.uniform(-span, span, n))
        offset = self.rng.uniform(-0.4 * j, 0.4 * j, n)
        return tuple(
            torch.as_tensor(v, dtype=like.dtype, device=like.device).reshape(shape)
            for v in (gain, offset)
        )
