"""Setting up a training run: check :func:`~.training.train`'s options and build a Trainer.

:func:`build_trainer` validates every argument before any heavy work, resolves
the defaults (mode, learning rate, fine-tuning regularisation, precision,
patch size, channel axes), reads the data lazily into a
:class:`~.trainset.TrainingSet` and returns the :class:`~.trainer.Trainer`
that :func:`~.training.train_iter` runs.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ._validation import RunWarning, is_dask, plain_number, user_stacklevel
from .axes import check_samples
from .channel_psfs import channel_axis, per_channel
from .checkpoint import autosave_for, changed_settings, read_resume
from .colour import opponent_axis, to_opponent
from .conditioning import kind_metadata, noise_window, trains_with_noise_map
from .conditions import record_conditions, recorded_conditions
from .devices import dtype_name, resolve_device, resolve_precision
from .kinds import Plain, PSFConditioned, kind_of
from .losses import SCHEDULES, resolve_loss
from .model import DeconvNet, DeconvNetConfig, stored_network
from .patches import REPLACEMENTS, PatchFitError, neighbour_cell
from .persistence import load_model
from .psf import recentre_psf
from .regions import one_per_input
from .train_record import model_metadata
from .trainer import TrainConfig, Trainer
from .trainset import (
    TrainingSet,
    as_list,
    is_impulse_model,
    positive_int,
    resolve_noise,
    resolve_patch_size,
)

__all__ = [
    "AUTO_PATCH_2D",
    "AUTO_PATCH_3D",
    "BLIND_SPOT",
    "INTENSITY_JITTER_SCRATCH",
    "KEEP",
    "L2SP_FINE_TUNE",
    "LR_FINE_TUNE",
    "LR_SCRATCH",
    "LR_SCRATCH_3D",
    "MODES",
    "OPTIONS",
    "REHEARSAL_FINE_TUNE",
    "auto_patch_sizes",
    "build_trainer",
    "check_options",
    "training_precision",
]

MODES = ("supervised", "self-supervised", "synthetic")
#: The most patches per optimizer step :func:`train` takes.
MAX_BATCH_SIZE = 4096

#: Peak learning rate of a new 2D network (AdamW, cosine schedule).
LR_SCRATCH = 3e-3
#: Peak learning rate of a new 3D network: 3e-3 diverges there (a 3D network of
#: deconv-3d's size trained 600 steps on one deconvolution task kept its first
#: epoch's weights, 28.8 dB, against 34.4 dB at 1e-3; benchmarks/finetune_deconv3d.py).
LR_SCRATCH_3D = 1e-3
#: Peak learning rate when fine-tuning a trained model (see ``train``'s notes).
LR_FINE_TUNE = 1e-3
#: Default L2-SP strength when fine-tuning (see ``train``'s notes).
L2SP_FINE_TUNE = 100.0
#: How much a fine-tuning keeps of what the model knew (the Train widget's *Keep
#: what it knew*, the CLI's ``train --keep``): ``train``'s options for each. "no"
#: makes a specialist of the user's data (README, *Fine-tuning a deconvolution
#: model*: +0.9 dB at its 20 photons, -3.6 dB at 50, in 3D).
KEEP = {"yes": {}, "weakly": {"l2sp": 10.0}, "no": {"l2sp": 0.0, "rehearsal": 0.0}}
#: Default share of rehearsed synthetic pairs per batch when fine-tuning (a
#: whole batch more: halves the forgetting of 0.5, benchmarks/train_speed.py --choose).
REHEARSAL_FINE_TUNE = 1.0
#: Default self-supervision of a new network: Neighbor2Neighbor, +1.0 to +6.8 dB
#: over Noise2Void's random replacement on five validation images at 300 steps,
#: in 0.65x the time (README, *Self-supervised*; benchmarks/n2v2.py for the test
#: images).
BLIND_SPOT = "neighbor2neighbor"
#: Default when fine-tuning a model: Noise2Void's blind spot. Both kept the
#: shipped start on four of five validation images; Neighbor2Neighbor's
#: sub-images halve the scale of the structures a full-resolution model knows.
BLIND_SPOT_FINE_TUNE = "random"
#: How a self-supervised run hides a pixel's own noise from the network: a
#: blind spot (REPLACEMENTS: Noise2Void's random neighbour, N2V2's median) or
#: Neighbor2Neighbor's pairs of neighbouring pixels (``patches.neighbour_pairs``).
SELF_SUPERVISED = (*REPLACEMENTS, "neighbor2neighbor")
#: Default intensity jitter of a new plain network (``train``'s ``intensity_jitter``):
#: from scratch on one field of view, a network learns that image's intensities, and
#: another field of view, normalised by its own percentiles, comes out with the wrong
#: contrast (README, *Quality per second*: +4 dB on the held-out half at 400 steps)
INTENSITY_JITTER_SCRATCH = 0.25


def check_options(options: dict[str, Any], caller: str) -> None:
    """Raise a TypeError naming `caller` if `options` holds a name it does not accept."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise TypeError(
            f"{caller}() got unexpected option(s) {names}; accepted options are "
            f"{', '.join(OPTIONS)}"
        )


def training_precision(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of a training run, by :func:`.devices.resolve_precision`.

    ``"auto"`` is float16 mixed precision (with loss scaling) on CUDA and
    float32 elsewhere. Unlike inference, training on a CPU with bfloat16
    units (AMX) does not switch to bfloat16 by itself: it takes 2.4 to 2.7
    times less time per step there, but a network trained from scratch on
    Poisson-Gaussian noise for 60 s ended 1.34 dB lower in bfloat16 (with 2.3
    times the steps) and 0.39 dB lower at equal steps, while fine-tuning was
    level (``benchmarks/train_precision.py``, README *Training*). Ask for
    ``"bfloat16"`` to use it.
    """
    if precision == "auto":
        precision = "float16" if device.type == "cuda" else "float32"
    return resolve_precision(precision, device)


def resolve_mode(
    mode: str | None, targets: Any, noise: Any, psf: Any, psf_model: bool = False
) -> str:
    """The training mode given, or inferred from what was passed.

    For a PSF-conditioned model (`psf_model`) a PSF beside targets is the
    one the pairs were blurred with, which the model's classical channel
    uses: supervised, not synthetic.
    """
    if psf_model and targets is not None and noise is None:
        psf = None  # the conditioning PSF, not a degradation to synthesise
    synthetic = noise is not None or psf is not None
    if mode is None:
        if targets is not None and synthetic:
            raise ValueError(
                "give either targets (supervised pairs) or noise/psf (synthetic pairs made "
                "from clean inputs), not both"
            )
        if targets is not None:
            return "supervised"
        return "synthetic" if synthetic else "self-supervised"
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {MODES} or None (inferred)")
    if mode == "supervised" and (targets is None or synthetic):
        raise ValueError("mode 'supervised' needs targets= and no noise/psf")
    if mode == "synthetic" and (targets is not None or not synthetic):
        raise ValueError("mode 'synthetic' needs noise= (and/or psf=) and no targets")
    if mode == "self-supervised" and (targets is not None or synthetic):
        raise ValueError("mode 'self-supervised' takes neither targets nor noise/psf")
    return mode


def make_network(
    model: Any, network: Any, patch_size: Any, seed: int, loaded: DeconvNet | None = None
) -> tuple[DeconvNet, Any]:
    """The network to train and what it was fine-tuned from (None for a new one).

    `loaded`: `model` already loaded (its file is not read again).
    """
    if model is not None:
        if network is not None:
            raise ValueError("pass either model= (fine-tuning) or network= (a new network)")
        loaded = load_model(model) if loaded is None else loaded
        parent = {
            "name": loaded.metadata.get("name", str(model)),
            "path": loaded.metadata.get("path"),
        }
        return copy.deepcopy(loaded), parent
    if network is None:
        network = {}
    if isinstance(network, DeconvNetConfig):
        network = network.to_dict()
    if not isinstance(network, dict):
        raise TypeError(
            f"network must be a dict of DeconvNetConfig fields or a DeconvNetConfig, got "
            f"{type(network).__name__}"
        )
    network = dict(network)
    if "ndim" not in network and isinstance(patch_size, Sequence) and len(patch_size) == 3:
        network["ndim"] = 3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DeconvNet(DeconvNetConfig.from_dict({**DeconvNetConfig().to_dict(), **network}))
    return net, None


def check_pairs(inputs_l: list, targets_l: list | None) -> None:
    """One target of the same shape per input."""
    if targets_l is None:
        return
    if len(targets_l) != len(inputs_l):
        raise ValueError(
            f"{len(inputs_l)} inputs but {len(targets_l)} targets; pass one target per input"
        )
    for i, (x, y) in enumerate(zip(inputs_l, targets_l, strict=True)):
        if tuple(x.shape) != tuple(y.shape):
            raise ValueError(
                f"input {i} has shape {tuple(x.shape)} but its target has shape "
                f"{tuple(y.shape)}; input/target pairs must have equal shapes"
            )


def check_not_identical(inputs_l: list, targets_l: list | None) -> None:
    """Warn when every supervised target is its input (the same file or layer chosen
    twice): the network can only learn to change nothing, and "never worse than the
    start" then reported a perfect validation (PSNR 100) without a word. A warning, not
    an error: a run on such pairs is also a quick way to try the pipeline."""
    if targets_l and all(_same_data(x, y) for x, y in zip(inputs_l, targets_l, strict=True)):
        warnings.warn(
            "every target is identical to its input (the same image given twice?): the "
            "network can only learn to change nothing; supervised training needs clean (or "
            "sharper) targets, and to train on noisy images alone, give no targets "
            "(self-supervised)",
            UserWarning,
            stacklevel=3,
        )


#: A supervised pair whose input and target, smoothed, correlate less than this is
#: warned of as unrelated (:func:`check_related`)
RELATED_PAIRS = 0.2
#: ...measured on the whole image averaged down to at most about this many pixels per
#: axis, over at most this many of its planes (or volumes)
_RELATED_SIDE, _RELATED_PLANES = 128, 8


def _overview(x: np.ndarray, ndim: int, lead: list[int]) -> np.ndarray:
    """`x`'s planes (or volumes) at the indices `lead` of its leading axes, each averaged
    down in blocks to about :data:`_RELATED_SIDE` pixels per axis, then smoothed: what
    a pair has in common whatever its noise and blur."""
    from scipy import ndimage

    stack = x.reshape(-1, *x.shape[x.ndim - ndim :])
    sides = stack.shape[1:]
    factors = [max(1, n // _RELATED_SIDE) for n in sides]
    cut = tuple(slice(0, n - n % f) for n, f in zip(sides, factors, strict=True))
    shape: list[int] = []
    for n, f in zip(sides, factors, strict=True):
        shape += [n // f, f]
    # one plane (or volume) at a time, averaged in float64 as it is read: a float64
    # copy of the whole took 7 times the image's bytes (review)
    pooled = np.stack(
        [
            np.ascontiguousarray(stack[k][cut])
            .reshape(shape)
            .mean(axis=tuple(range(1, len(shape), 2)), dtype=np.float64)
            for k in lead
        ]
    )
    return ndimage.gaussian_filter(pooled, [0.0] + [1.0] * ndim)


def check_related(inputs_l: list, targets_l: list | None, ndim: int) -> None:
    """Warn of supervised pairs whose input and target look unrelated: their Pearson
    correlation, both averaged down and smoothed (:func:`_overview`, so that noise and
    blur leave a true pair's structure in common), is under :data:`RELATED_PAIRS`.
    Session 73: targets given in another order than the inputs (``--input a.tif b.tif
    --target b_clean.tif a_clean.tif``) trained without a word (validation PSNR 6.6 dB
    against about 20 for the right pairs). The whole image is compared (a central crop
    missed cells in two corners of a 512-pixel image, review), at most
    :data:`_RELATED_PLANES` of its planes. Arrays in memory only (a lazy pair is not
    read for this)."""
    if not targets_l:
        return
    unrelated = []
    for i, (x, y) in enumerate(zip(inputs_l, targets_l, strict=True)):
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray) or x.ndim < ndim:
            continue
        if isinstance(x, np.memmap) or isinstance(y, np.memmap) or x.dtype.kind not in "biuf":
            continue  # (a file on disk is not read whole for this)
        n = math.prod(x.shape[: x.ndim - ndim])
        lead = sorted({int(k) for k in np.linspace(0, n - 1, min(n, _RELATED_PLANES))})
        a, b = _overview(x, ndim, lead).ravel(), _overview(y, ndim, lead).ravel()
        if a.std() == 0 or b.std() == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        if r < RELATED_PAIRS:
            unrelated.append((i, r))
    if unrelated:
        one = len(unrelated) == 1
        which = ", ".join(str(i) for i, _ in unrelated)
        values = ", ".join(f"{r:.2f}" for _, r in unrelated)
        warnings.warn(
            f"{'input' if one else 'inputs'} {which} {'looks' if one else 'look'} unrelated "
            f"to {'its target' if one else 'their targets'} (correlation {values} after "
            "smoothing, where a true pair, a noisy or blurred input and its clean target, "
            "correlates far more): are the targets given in the order of the inputs, and "
            "registered to them?",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _same_data(x: Any, y: Any) -> bool:
    """Whether a pair holds the same values (in memory; lazy pairs only when one object)."""
    if x is y:
        return True
    if is_dask(x) or is_dask(y) or not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        return False
    return bool(np.array_equal(x, y))


def resolve_axes(axes: Any, inputs: list, ndim: int) -> str | None:
    """The inputs' axes if they have a channel axis (C or S), else None (leading = samples)."""
    if axes is None:
        shape = tuple(inputs[0].shape)
        # as restore guesses them: (Y, X, 3|4) and (T, Y, X, 3|4) are RGB(A) for a 2D network
        colour = [len(a.shape) in (3, 4) and a.shape[-1] in (3, 4) for a in inputs]
        if ndim == 2 and any(colour) and not all(colour):
            # (the colour images were read as planes of 3 or 4 pixels' width, and trained
            # on patches of that width, or refused in words about such patches)
            found = [str(i) for i, c in enumerate(colour) if c]
            which = (
                f"inputs {', '.join(found)} look" if len(found) > 1 else f"input {found[0]} looks"
            )
            raise ValueError(
                f"{which} like RGB(A) images (3 or 4 samples on the last axis) and the "
                "others do not; train them apart, or pass axes= for all of them"
            )
        if ndim == 2 and len(shape) in (3, 4) and shape[-1] in (3, 4):
            # images of several sizes too, as long as each is RGB(A) of the same rank
            if all(len(a.shape) == len(shape) and a.shape[-1] in (3, 4) for a in inputs):
                return "YXS" if len(shape) == 3 else "TYXS"
        return None
    if not isinstance(axes, str):
        raise TypeError(
            f"axes must be a string such as 'YXC' or 'TZYX', got {type(axes).__name__}"
        )
    axes = axes.upper()
    spatial = "ZYX"[3 - ndim :]
    for i, a in enumerate(inputs):
        if len(axes) != a.ndim:
            raise ValueError(
                f"axes {axes!r} has {len(axes)} letters but input {i} has {a.ndim} dimensions "
                f"(shape {tuple(a.shape)}); pass one letter per axis from 'TZCYXS'"
            )
    if sorted(set(axes) - set("TZCYXS")) or len(set(axes)) != len(axes):
        raise ValueError(
            f"axes {axes!r} must use each of the letters T, Z, C, Y, X, S at most once"
        )
    if "C" in axes and "S" in axes:
        raise ValueError(f"axes {axes!r} has both 'C' and 'S'; use one channel axis")
    for a in inputs:  # as restore refuses them
        check_samples(axes, tuple(a.shape))
    missing = [a for a in spatial if a not in axes]
    if missing:
        raise ValueError(
            f"axes {axes!r} lacks {''.join(missing)}: a {ndim}D network needs the spatial axes "
            f"{spatial!r}"
        )
    return axes


def trains_in_opponent_colour(net: DeconvNet, axes: str | None, inputs: list, mode: str,
                              noise: Any) -> bool:  # fmt: skip
    """Whether RGB(A) inputs train as luminance and chroma (:mod:`.colour`).

    :func:`restore` applies a one-channel denoiser of the plain kind to an
    ``S`` axis of 3 or 4 samples in that opponent space (alpha kept as it
    is), so such a network trains there too: each of the three opponent
    channels an image of its own, alpha not trained on. Synthetic pairs
    only with Gaussian noise (or none), which the orthonormal transform
    keeps what it is; Poisson and other noise is added to red, green and
    blue, so those train channel by channel (restore still maps to the
    opponent space).
    """
    if axes is None or not all(opponent_axis(a, net, axes) is not None for a in inputs):
        return False  # restore's own test: an S of 3 or 4 samples, a plain one-channel model
    if mode != "synthetic":
        return True
    name = noise if isinstance(noise, str) else None
    if isinstance(noise, dict):
        name = noise.get("model") or noise.get("noise") or noise.get("kind")
    return noise is None or (isinstance(name, str) and name.lower() in ("gaussian", "none"))


def by_channel(
    arrays: list | None, axes: str | None, ndim: int, opponent: bool = False
) -> list | None:
    """Each array as one (samples..., *spatial) array per channel.

    Channels are trained as separate images of one single-channel network,
    each with its own normalisation, which is how :func:`restore` applies a
    single-channel model to ``axes="YXC"``; the other non-spatial axes (T,
    and Z for a 2D network) are independent samples. With `opponent`
    (:func:`trains_in_opponent_colour`), the ``S`` axis's red, green and blue
    become luminance and two chroma channels first, as restore maps them, and
    a fourth sample (alpha) is left out.
    """
    if arrays is None or axes is None:
        return arrays
    spatial = "ZYX"[3 - ndim :]
    channel = next((a for a in axes if a in "CS"), None)
    lead = [a for a in axes if a not in spatial and a != channel]
    order = lead + ([channel] if channel else []) + list(spatial)
    out = []
    for a in arrays:
        moved = a.transpose([axes.index(c) for c in order]) if list(order) != list(axes) else a
        if channel is None:
            out.append(moved)
            continue
        k = len(lead)
        if opponent:
            moved = to_opponent(moved[(slice(None),) * k + (slice(0, 3),)], k)
        for c in range(moved.shape[k]):
            out.append(moved[(slice(None),) * k + (c,)])
    return out


def _channels_of(a: Any, axes: str, channel: str, opponent: bool) -> int:
    """How many arrays :func:`by_channel` makes of `a` (three in the opponent space)."""
    return 3 if opponent else int(a.shape[axes.index(channel)])


def per_channel_regions(
    spec: Any, inputs_l: list, axes: str | None, ndim: int = 2, opponent: bool = False
) -> Any:
    """Region specs for every channel of their input: a mask of the input's whole
    shape is split by channel as the input is (:func:`by_channel`; in the opponent
    space, each colour channel takes the union of the red, green and blue masks);
    a mask of its spatial shape, or polygons, apply to every channel alike."""
    if spec is None or axes is None:
        return spec
    channel = next((a for a in axes if a in "CS"), None)
    if channel is None:
        return spec
    shape = tuple(np.shape(inputs_l[0]))
    spatial = shape[: axes.index(channel)] + shape[axes.index(channel) + 1 :]
    one = len(inputs_l) == 1 and not one_per_input(spec, shape, spatial)
    specs = [spec] if one else list(spec)  # ([mask] for one input: that input's mask)
    out = []
    for s, a in zip(specs, inputs_l, strict=True):
        n = _channels_of(a, axes, channel, opponent)
        if isinstance(s, np.ndarray | list) and np.shape(s) == tuple(a.shape):
            if opponent:  # luminance and chroma mix the samples: where any of them is kept
                rgb = np.take(np.asarray(s, bool), range(3), axis=axes.index(channel))
                out += [np.any(rgb, axis=axes.index(channel))] * n
            else:
                out += by_channel([np.asarray(s)], axes, ndim)
        else:
            out += [s] * n
    return out


def channel_groups(inputs_l: list, axes: str | None, opponent: bool = False) -> list[int]:
    """For each array :func:`by_channel` makes of `inputs_l`, the index of its input
    (channel planes of one image share a validation area)."""
    channel = None if axes is None else next((a for a in axes if a in "CS"), None)
    if channel is None:
        return list(range(len(inputs_l)))
    return [
        i for i, a in enumerate(inputs_l) for _ in range(_channels_of(a, axes, channel, opponent))
    ]


#: The automatic patch size (``patch_size=None``) before it is fitted to the data:
#: 64 x 64 in 2D; 32 x 64 x 64 in 3D (Noise2Void's 3D default: volumes of a few
#: tens of planes are common, and 64**3 patches did not fit them).
AUTO_PATCH_2D = (64, 64)
AUTO_PATCH_3D = (32, 64, 64)
#: Fractions of the automatic size tried in turn until patches fit the data,
#: its regions and the validation split beside them.
AUTO_PATCH_SCALES = (1.0, 0.75, 0.5, 0.375, 0.25, 0.1875, 0.125)


def _per_axis(grid: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    """A network's grid per axis: one number for every axis, or one per axis."""
    return (int(grid),) * ndim if np.ndim(grid) == 0 else tuple(int(g) for g in grid)


def _on_neighbour_grid(
    sizes: Sequence[tuple[int, ...]], grid: int | Sequence[int], cell: tuple[int, ...]
) -> list[tuple[int, ...]]:
    """`sizes` rounded down to multiples of ``grid * cell`` per axis (at least one), once each."""
    out: list[tuple[int, ...]] = []
    for size in sizes:
        grids = _per_axis(grid, len(size))
        fit = tuple(
            max(g * k, s // (g * k) * g * k) for s, g, k in zip(size, grids, cell, strict=True)
        )
        if fit not in out:
            out.append(fit)
    return out


def auto_patch_sizes(
    ndim: int, grid: int | Sequence[int], spatial_shapes: Sequence[Sequence[int]]
) -> list[tuple[int, ...]]:
    """The patch sizes ``patch_size=None`` tries, largest first.

    :data:`AUTO_PATCH_2D` or :data:`AUTO_PATCH_3D`, each axis no larger than
    the smallest input along it, then smaller by :data:`AUTO_PATCH_SCALES`
    (down to an eighth); all on the network's `grid` (one number, or one per axis: a
    3D network that never pools Z takes any number of planes). A 96 x 96 image, where a 64 x 64
    validation patch leaves no room for a 64 x 64 training patch beside it,
    trains with 48 x 48 patches.

    >>> auto_patch_sizes(2, 4, [(96, 96)])[:3]
    [(64, 64), (48, 48), (32, 32)]
    >>> auto_patch_sizes(3, 4, [(12, 200, 200)])[:2]
    [(12, 64, 64), (12, 48, 48)]
    """
    base = AUTO_PATCH_2D if ndim == 2 else AUTO_PATCH_3D
    shapes = [tuple(shape)[-ndim:] for shape in spatial_shapes if len(shape) >= ndim]
    if not shapes:  # inputs with fewer axes than the network: refused with the data
        return [base]
    smallest = [min(int(shape[a]) for shape in shapes) for a in range(ndim)]
    grids = _per_axis(grid, ndim)
    sizes: list[tuple[int, ...]] = []
    for scale in AUTO_PATCH_SCALES:
        size = tuple(
            max(g, min(int(b * scale), e) // g * g)
            for b, e, g in zip(base, smallest, grids, strict=True)
        )
        if size not in sizes:
            sizes.append(size)
    return sizes


#: The SSIM window of the SSIM losses (pixels along each axis)
SSIM_WINDOW = 11


def check_resume(
    state: dict, mode: str, size: tuple, net: DeconvNet, loss: str | None = None
) -> None:
    """A resume file must come from a run of the same kind on the same network, and
    with the same loss (its scores are in that loss: another one's were compared with
    them and refused as a run on other data)."""
    settings = state.get("settings", {})
    theirs_loss = settings.get("loss")  # (resume files before session 66 have none)
    if loss is not None and theirs_loss is not None and theirs_loss != loss:
        raise ValueError(
            f"{state['path']} was saved by a run with loss={theirs_loss!r}, but this run's "
            f"loss is {loss!r}; its scores are in its own loss: resume with "
            f"loss={theirs_loss!r}, or start a new run"
        )
    theirs = (settings.get("mode"), tuple(settings.get("patch_size", ())))
    if theirs != (mode, tuple(size)):
        raise ValueError(
            f"{state['path']} was saved by a {theirs[0]} run with patch_size {theirs[1]}, but "
            f"this run is {mode} with patch_size {tuple(size)}; resume with the same settings"
        )
    if stored_network(state.get("network")) != net.config.to_dict():
        raise ValueError(
            f"{state['path']} was saved for another network configuration; pass the same "
            "model= (or network=) as the interrupted run"
        )


def _intensity_jitter(
    requested: float | None, net: DeconvNet, fine_tuning: bool, mode: str
) -> float:
    """The run's intensity jitter: `requested`, or (None) :data:`INTENSITY_JITTER_SCRATCH`
    for a new plain network trained on the user's pairs or noisy images alone, and 0
    otherwise.

    Only plain networks take it: a gain and offset of the input commute with a
    denoiser's task, not with a Richardson-Lucy or switching-median channel
    computed from the raw data (``deconv-*``, ``salt-and-pepper``) or with a
    noise map (``denoise-2d-nl``), so those refuse a jitter above 0. Synthetic
    pairs get none by default: the gain would scale the noise the user
    specified along with the image.
    """
    plain = type(kind_of(net)) is Plain and not trains_with_noise_map(net)
    if requested is None:
        scratch = plain and not fine_tuning and mode != "synthetic"
        return INTENSITY_JITTER_SCRATCH if scratch else 0.0
    if requested > 0 and not plain:
        raise ValueError(
            "intensity_jitter is for plain denoisers: this network takes a classical "
            "channel or a noise map computed from the raw image, which a gain and offset "
            "of its input would not follow; use intensity_jitter=0 or None"
        )
    return float(requested)


def is_psf_model(net: DeconvNet) -> bool:
    """Whether `net` is a PSF-conditioned deconvolution model (``deconv-2d``, ``deconv-3d``)."""
    return isinstance(kind_of(net), PSFConditioned)


def channel_psf_list(
    psfs: Sequence[Any], axes: str | None, inputs_l: list, validation: Any, mode: str
) -> list[Any]:
    """One PSF per channel (:mod:`.channel_psfs`) for training: checked against the ``C``
    axis of every input (and of validation images), as a list.

    Each channel of a ``C`` axis trains as an image of its own (:func:`by_channel`),
    with its channel's PSF: the classical channel of a deconvolution model, and the
    blur of synthetic pairs.
    """
    for i, image in enumerate(inputs_l):
        try:
            channel_axis(psfs, axes, np.shape(image))
        except ValueError as err:
            which = f"inputs[{i}]: " if len(inputs_l) > 1 else ""
            raise ValueError(f"{which}{err}") from None
    if validation is not None and not isinstance(validation, float | int):
        given = (
            validation[0] if mode == "supervised" and isinstance(validation, tuple) else validation
        )
        for image in as_list(given, "validation"):
            try:
                channel_axis(psfs, axes, np.shape(image))
            except ValueError as err:
                raise ValueError(f"validation data: {err}") from None
    return list(psfs)


def check_trainable(net: DeconvNet, mode: str = "supervised", psf: Any = None) -> None:
    """Single-channel networks, noise-conditioned ones (whose map training computes),
    PSF-conditioned ones given their PSF (whose classical channel it computes) and
    impulse-noise ones (``salt-and-pepper``: the switching-median channel).

    Raises
    ------
    ValueError
        A multi-channel network, a PSF-conditioned one without `psf` or in
        self-supervised `mode`, an impulse-noise one in self-supervised mode
        (its synthetic noise is checked where the noise is resolved).
    """
    cfg = net.config
    name = net.metadata.get("name", "this network")
    psf_model = is_psf_model(net)
    impulse = is_impulse_model(net)
    extra = kind_of(net).extra_channels if psf_model or impulse else 0
    extra = 1 if trains_with_noise_map(net) else extra
    if cfg.in_channels != 1 + extra or cfg.out_channels != 1:
        raise ValueError(
            "training supports single-channel networks (in_channels = out_channels = 1), "
            "noise-conditioned ones (the image and its noise map, such as 'denoise-2d-nl'), "
            "PSF-conditioned ones (the image and its classical deconvolution(s), such as "
            "'deconv-2d') and impulse-noise ones (the image and its switching median, such "
            f"as 'salt-and-pepper'); {name!r} takes {cfg.in_channels} input channels. "
            "Multi-channel and RGB images train one shared single-channel network over "
            "their channels (axes='YXC')"
        )
    if impulse and mode == "self-supervised":
        raise ValueError(
            f"{name!r} removes impulse noise through the switching median of its input, "
            "which shows a masked pixel its own value: train it on pairs (targets= clean "
            "images) or on synthetic pairs (clean inputs, noise='salt-and-pepper')"
        )
    if psf_model and mode == "self-supervised":
        raise ValueError(
            f"{name!r} is a deconvolution model: train it on pairs (targets= sharp images, "
            "psf=) or on synthetic pairs (clean inputs, psf= and noise=); self-supervised "
            "training cannot learn a deconvolution"
        )
    if psf_model and psf is None:
        raise ValueError(
            f"{name!r} deconvolves with the image's PSF: pass psf= (the PSF the training "
            "inputs are blurred with, or the one synthetic pairs get), as for dn.restore"
        )


def rehearsal_pairs(fraction: float, net: DeconvNet, size: tuple, dev: torch.device, seed: int):
    """Pairs with the noise the shipped denoisers know, for a fine-tuning that remembers."""
    if not fraction or net.config.normalization.get("method") != "percentile":
        return None
    if is_psf_model(net) or is_impulse_model(net):  # rehearsed pairs hold other noise
        return None
    from .adapt import RehearsalPairs

    return RehearsalPairs(
        ndim=net.config.ndim,
        size=size,
        device=dev,
        seed=seed,
        noise_map=trains_with_noise_map(net),
        noise_window=noise_window(net),
    )


def _fraction_or_strength(value: Any, name: str, default: float, upper: float | None) -> float:
    if value is None:
        return default
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    bad = bad or not math.isfinite(value) or value < 0
    if bad or (upper is not None and value > upper):
        accepted = f"a number in [0, {upper:g}]" if upper is not None else "a number >= 0"
        raise ValueError(f"{name} must be {accepted} (0 turns it off), got {value!r}")
    return float(value)


def _clip_norm(value: Any) -> float | None:
    """The gradient-norm clip: a positive number, or None or 0 for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"clip_norm must be a positive number, or None or 0 (no clipping), got {value!r}"
        )
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"clip_norm must be a positive number, or None or 0 (no clipping), got {value!r}; "
            "a negative norm would reverse the gradient"
        )
    return float(value) or None


def _channel_validation(
    validation: Any, axes: str | None, mode: str, ndim: int, opponent: bool
) -> Any:
    """Explicit validation data split by channel like the inputs."""
    if axes is None or validation is None or isinstance(validation, float | int):
        return validation

    channel = "C" in axes or "S" in axes

    def split(value: Any) -> Any:
        out = []
        for image in as_list(value, "validation"):
            if np.ndim(image) == len(axes):
                out += by_channel([image], axes, ndim, opponent)
            elif not channel and np.ndim(image) == ndim:  # one plane (volume) of the network's
                out.append(image)
            else:  # (numpy's "axes don't match array" from a transpose)
                raise ValueError(
                    f"validation data of shape {tuple(np.shape(image))} do not have the "
                    f"inputs' axes {axes!r} ({len(axes)} dimensions); give validation "
                    "images laid out as the inputs"
                    + ("" if channel else f", or single {ndim}D images")
                )
        return out

    if isinstance(validation, tuple) and len(validation) == 2 and mode == "supervised":
        return tuple(split(v) for v in validation)
    return split(validation)


def build_trainer(
    inputs: Any,
    targets: Any = None,
    *,
    model: Any = None,
    network: dict[str, Any] | DeconvNetConfig | None = None,
    mode: str | None = None,
    noise: Any = None,
    psf: Any = None,
    epochs: int | None = None,
    max_seconds: float | None = None,
    steps_per_epoch: int | None = None,
    patch_size: int | Sequence[int] | None = None,
    batch_size: int = 16,
    loss: str | Callable = "mse",
    ssim_weight: float = 0.5,
    lr: float | None = None,
    weight_decay: float = 1e-4,
    schedule: str = "cosine",
    clip_norm: float | None = 1.0,
    patience: int | None = None,
    validation: Any = 0.1,
    regions: Any = None,
    validation_regions: Any = None,
    augment: bool = True,
    intensity_jitter: float | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    precision: str = "auto",
    name: str | None = None,
    preview: bool = True,
    stop: threading.Event | None = None,
    axes: str | None = None,
    l2sp: float | None = None,
    rehearsal: float | None = None,
    ema: float | None = None,
    blind_spot: str | None = None,
    autosave: Any = None,
    resume: Any = None,
    validation_noise: Any = None,
) -> Trainer:
    """The :class:`~.trainer.Trainer` of a :func:`~.training.train` call, arguments checked."""
    started = time.perf_counter()  # `max_seconds` covers the set-up below too
    # ---- arguments, all checked before any heavy work
    start = None if model is None else load_model(model)
    psf_model = start is not None and is_psf_model(start)
    mode = resolve_mode(mode, targets, noise, psf, psf_model)
    inputs_l = as_list(inputs, "inputs")
    targets_l = None if targets is None else as_list(targets, "targets")
    check_pairs(inputs_l, targets_l)
    if mode == "supervised" and isinstance(validation, tuple) and len(validation) == 2:
        try:  # explicit validation pairs, checked as the training pairs are
            check_pairs(as_list(validation[0], "validation"), as_list(validation[1], "targets"))
        except ValueError as err:
            raise ValueError(f"validation data: {err}") from None
    batch_size = positive_int(batch_size, "batch_size")
    if batch_size > MAX_BATCH_SIZE:  # 10**7 drew patches for minutes before failing
        raise ValueError(
            f"batch_size must be at most {MAX_BATCH_SIZE} patches per step, got {batch_size}; "
            "a batch's memory grows with it (16 to 64 is usual)"
        )
    epochs = positive_int(epochs, "epochs", allow_none=True)
    steps_per_epoch = positive_int(steps_per_epoch, "steps_per_epoch", allow_none=True)
    patience = positive_int(patience, "patience", allow_none=True)
    lr, max_seconds, l2sp, rehearsal, ema = (
        plain_number(v) for v in (lr, max_seconds, l2sp, rehearsal, ema)
    )  # (NumPy scalars were refused as "not a positive number")
    validation = plain_number(validation)  # a fraction (np.float32(0.2) was taken as data)
    if max_seconds is not None and (
        isinstance(max_seconds, bool)
        or not isinstance(max_seconds, int | float)
        or not 0 < max_seconds < math.inf
    ):
        raise ValueError(
            f"max_seconds must be a positive, finite number of seconds or None (no time "
            f"limit), got {max_seconds!r}"
        )
    if epochs is None and max_seconds is None:
        epochs = 10
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; use one of {SCHEDULES}")
    fine_tuning = model is not None
    if lr is not None and not (isinstance(lr, int | float) and 0 < lr < math.inf):
        raise ValueError(f"lr must be a positive, finite number, got {lr!r}")
    l2sp = _fraction_or_strength(l2sp, "l2sp", L2SP_FINE_TUNE if fine_tuning else 0.0, None)
    rehearsal = _fraction_or_strength(
        rehearsal, "rehearsal", REHEARSAL_FINE_TUNE if fine_tuning else 0.0, 4.0
    )
    if ema is not None and (isinstance(ema, bool) or not isinstance(ema, float | int)):
        raise TypeError(f"ema must be a decay in (0, 1) or None, got {type(ema).__name__}")
    if ema is not None and not 0 < ema < 1:
        raise ValueError(f"ema must be a decay in (0, 1) such as 0.999, or None, got {ema!r}")
    if isinstance(ssim_weight, bool) or not isinstance(ssim_weight, numbers.Real):
        raise TypeError(f"ssim_weight must be a number in [0, 1], got {ssim_weight!r}")
    if not 0 <= ssim_weight <= 1:
        raise ValueError(f"ssim_weight must be in [0, 1], got {ssim_weight!r}")
    clip_norm = _clip_norm(clip_norm)
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real):
        raise TypeError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(
            f"weight_decay must be a number >= 0 (0 turns it off), got {weight_decay!r}"
        )
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be text (the model's name), got {type(name).__name__}")
    if not isinstance(augment, bool | np.bool_):
        raise TypeError(f"augment must be True or False, got {augment!r}")
    augment = bool(augment)
    if intensity_jitter is not None:
        if isinstance(intensity_jitter, bool) or not isinstance(intensity_jitter, numbers.Real):
            raise TypeError(
                "intensity_jitter must be a number in [0, 1] or None (automatic), got "
                f"{intensity_jitter!r}"
            )
        if not 0 <= intensity_jitter <= 1:
            raise ValueError(
                "intensity_jitter must be in [0, 1] (0: off; 0.25 draws gains of 0.8-1.25), "
                f"got {intensity_jitter!r}"
            )
    if blind_spot is not None and blind_spot not in SELF_SUPERVISED:
        raise ValueError(
            f"blind_spot must be one of {SELF_SUPERVISED} (how self-supervised training "
            "hides a pixel's own noise: masked pixels replaced by a random neighbour or the "
            f"median of the neighbours, or Neighbor2Neighbor's pairs) or None, got {blind_spot!r}"
        )
    if blind_spot is not None and mode != "self-supervised":
        raise ValueError(f"blind_spot is a self-supervised option; this run is {mode}")
    chosen = blind_spot is not None  # else the default, which may step aside (below)
    if mode == "self-supervised" and blind_spot is None:
        blind_spot = BLIND_SPOT_FINE_TUNE if fine_tuning else BLIND_SPOT
    elif mode != "self-supervised":
        blind_spot = None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**63:  # numpy's generators refuse negative seeds, torch larger ones
        raise ValueError(f"seed must be an integer from 0 to 2**63 - 1, got {seed}")
    if validation_noise is not None and validation_noise is not False:
        if not isinstance(validation_noise, dict):
            raise TypeError(
                "validation_noise must be None (estimate the noise), False (score "
                "self-supervised runs by the masked loss) or a dict of noise parameters as "
                f"estimate_noise returns them, got {type(validation_noise).__name__}"
            )
        from .sure import variance_line

        variance_line(validation_noise)  # a ValueError naming what is wrong
    if validation_noise is not None and mode != "self-supervised":
        # (it was ignored without a word)
        warnings.warn(
            f"validation_noise sets how self-supervised runs are scored; this {mode} run is "
            "scored against its targets and ignores it",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    saver = autosave_for(autosave, resume)  # a resumed run goes on saving
    state = None if resume is None else read_resume(resume)
    loss_name, loss_fn = resolve_loss(loss, mode, ssim_weight)
    dev = resolve_device(device)
    amp = training_precision(precision, dev)
    # N2V2 options and a residual output (input + correction) do not mix: a median of
    # the neighbours is a prediction already, and without the top skip the correction
    # cannot cancel full-resolution noise; both learn to pass the input through
    # (benchmarks/n2v2.py), so a new network with them has no residual by default
    if model is None and isinstance(network, dict | None):
        if blind_spot == "median" or (network or {}).get("top_skip") is False:
            network = {"residual": False, **(network or {})}
    net, parent = make_network(model, network, patch_size, seed, loaded=start)
    if net.residual and (blind_spot == "median" or not net.config.top_skip):
        warnings.warn(
            "blind_spot='median' or top_skip=False with a residual network (output = input "
            "+ correction) learns to pass the noisy input through; use a network with "
            "residual=False",
            RunWarning,
            stacklevel=2,
        )
    ndim = net.config.ndim
    intensity_jitter = _intensity_jitter(intensity_jitter, net, fine_tuning, mode)
    if lr is None:
        lr = LR_FINE_TUNE if fine_tuning else LR_SCRATCH if ndim == 2 else LR_SCRATCH_3D
    check_trainable(net, mode, psf)
    neighbours = blind_spot == "neighbor2neighbor"
    if neighbours and not chosen and trains_with_noise_map(net):
        blind_spot, neighbours = "random", False  # the default steps aside
    if neighbours and trains_with_noise_map(net):
        raise ValueError(
            "blind_spot='neighbor2neighbor' cannot train a noise-conditioned network (its "
            "noise map would have to be cut into sub-images too); use blind_spot='random' "
            "or start from a blind model"
        )
    axes = resolve_axes(axes, inputs_l, ndim)
    if per_channel(psf):  # one PSF per channel (core.channel_psfs), checked against the C axes
        psf = channel_psf_list(psf, axes, inputs_l, validation, mode)
    opponent = trains_in_opponent_colour(net, axes, inputs_l, mode, noise)
    channels = by_channel(inputs_l, axes, ndim, opponent)
    # Neighbor2Neighbor trains on sub-images of half the patch's size (in Y and X),
    # which must lie on the network's grid: patches on a grid twice as coarse there
    cell = neighbour_cell(ndim) if neighbours else (1,) * ndim
    if patch_size is None:
        grids = net.config.grid_shape  # (a planar 3D network's Z grid is 1 or 2)
        sizes = auto_patch_sizes(ndim, grids, [np.shape(c) for c in channels])
        if neighbours:
            sizes = _on_neighbour_grid(sizes, grids, cell)
        saved = None if state is None else state.get("settings", {}).get("patch_size")
        if saved:  # a resumed run keeps the patches it started with
            sizes = [tuple(int(p) for p in saved)]
    else:
        sizes = [resolve_patch_size(patch_size, ndim, net)]
        fits = _on_neighbour_grid(sizes, net.config.grid_shape, cell) == sizes
        if neighbours and not fits and not chosen:
            warnings.warn(
                f"patch_size {sizes[0]} does not fit Neighbor2Neighbor, the default "
                "self-supervision of a new network (sub-images of half the patch must lie on "
                "the network's grid: multiples of "
                f"{tuple(g * k for g, k in zip(net.config.grid_shape, cell, strict=True))}); "
                "training with Noise2Void's blind spot instead (blind_spot='random')",
                RunWarning,
                stacklevel=2,
            )
            blind_spot, neighbours, cell = "random", False, (1,) * ndim
        if neighbours and not fits:
            raise ValueError(
                f"patch_size {sizes[0]} does not fit Neighbor2Neighbor: it trains on "
                f"sub-images of the patch divided by {cell}, which must lie on the network's "
                f"grid of {net.config.grid_shape}; use multiples of "
                f"{tuple(g * k for g, k in zip(net.config.grid_shape, cell, strict=True))}"
            )
    if "ssim" in str(loss_name).lower():  # patches as large as SSIM's window
        # automatic sizes: none below the window (their smallest fallbacks are)
        fitting = [s for s in sizes if min(s) >= SSIM_WINDOW] if patch_size is None else []
        if not fitting and min(sizes[0]) < SSIM_WINDOW:
            # (SSIM's own refusal advised measuring a larger region, in napari a crop)
            what = "patch_size is" if patch_size is not None else "the images allow patches of"
            raise ValueError(
                f"loss {loss_name!r} compares patches by SSIM, whose window is "
                f"{SSIM_WINDOW} pixels, but {what} {sizes[0]}; use a patch_size of at "
                f"least {SSIM_WINDOW} on every axis (on the network's grid; larger images "
                "for that), or loss='mse'"
            )
        sizes = fitting or sizes
    size = sizes[0]
    condition_psf = None
    if psf_model:  # names and dicts as restore takes them, checked against the image
        spatial = tuple(np.shape(channels[0])[-ndim:])
        kernels = []
        for c, p in enumerate(psf if per_channel(psf) else [psf]):
            try:
                kernels.append(kind_of(net).prepare_psf(p, ndim, spatial))
            except ValueError as err:  # which channel's, with one PSF per channel
                if not per_channel(psf):
                    raise
                raise ValueError(f"psf[{c}] (channel {c}'s PSF): {err}") from None
        if mode == "synthetic":  # pairs made with the kernel centred, as restore uses it
            kernels = [recentre_psf(k, spatial)[0] for k in kernels]
        condition_psf = kernels if per_channel(psf) else kernels[0]
        psf = condition_psf
    noise_spec = resolve_noise(noise, psf, ndim) if mode == "synthetic" else ("none", {}, None)
    if noise_spec[2] is not None:  # the kernel(s) made of names and dicts, for the record
        psf = noise_spec[2]
    if mode == "synthetic" and is_impulse_model(net) and noise_spec[0] != "salt-and-pepper":
        raise ValueError(
            f"{net.metadata.get('name', 'this network')!r} removes salt-and-pepper noise; "
            "synthetic pairs for it need noise='salt-and-pepper' (or "
            f"dict(model='salt-and-pepper', amount=0.1)), got {noise_spec[0]!r}"
        )
    if state is not None:
        check_resume(state, mode, size, net, loss_name)

    # ---- data; with patch_size=None, the largest automatic size that fits
    targets_c = by_channel(targets_l, axes, ndim, opponent)
    regions_c = per_channel_regions(regions, inputs_l, axes, ndim, opponent)
    validation_c = _channel_validation(validation, axes, mode, ndim, opponent)
    validation_regions_c = per_channel_regions(validation_regions, inputs_l, axes, ndim, opponent)
    for attempt, size in enumerate(sizes):
        try:
            data = TrainingSet(
                mode=mode,
                inputs=channels,
                targets=targets_c,
                net=net,
                size=size,
                regions=regions_c,
                validation=validation_c,
                validation_regions=validation_regions_c,
                noise=noise_spec,
                rng=np.random.default_rng(seed),
                device=dev,
                augment=augment,
                seed=seed,
                intensity_jitter=intensity_jitter,
                replacement=blind_spot if blind_spot in REPLACEMENTS else "random",
                neighbours=neighbours,
                condition_psf=condition_psf,
                channel_groups=channel_groups(inputs_l, axes, opponent),
            )
            break
        except PatchFitError as err:
            if attempt == len(sizes) - 1:
                tried = f" (patch_size=None tried {', '.join(str(s) for s in sizes)})"
                raise PatchFitError(
                    f"{_too_small(channels, ndim, sizes[-1])}{err}"
                    f"{tried if len(sizes) > 1 else ''}"
                ) from err
    if mode == "supervised":  # after the data's own checks (sizes, regions), before training
        check_not_identical(inputs_l, targets_l)
        check_related(inputs_l, targets_l, ndim)
    if state is not None:  # the same validation patches as before, fresh training patches
        data.reseed([seed, int(state["step"])])
    if steps_per_epoch is None:
        per_epoch = data.train_area / math.prod(size) / batch_size
        steps_per_epoch = int(min(max(math.ceil(per_epoch), 10), 100))
    rehearsed = rehearsal_pairs(rehearsal, net, size, dev, seed)
    if rehearsed is None:  # none for this model (deconvolution, other normalisation): say so
        rehearsal = 0.0
    config = TrainConfig(
        mode=mode,
        loss=loss_name,
        patch_size=size,
        batch_size=batch_size,
        epochs=epochs,
        max_seconds=max_seconds,
        steps_per_epoch=steps_per_epoch,
        lr=float(lr),
        weight_decay=float(weight_decay),
        schedule=schedule,
        clip_norm=clip_norm,
        patience=patience,
        ssim_weight=float(ssim_weight),
        augment=bool(augment),
        intensity_jitter=intensity_jitter,
        seed=seed,
        device=str(dev),
        precision=dtype_name(amp),
        noise={"model": noise_spec[0], **noise_spec[1]} if mode == "synthetic" else None,
        psf_shape=(
            None
            if psf is None
            else [tuple(np.shape(p)) for p in psf]  # one per channel
            if per_channel(psf)
            else tuple(np.shape(psf))
        ),
        validation=data.validation,
        blind_spot=blind_spot,
        l2sp=l2sp,
        rehearsal=rehearsal,
        fine_tuning=fine_tuning,
        axes=axes,
        ema=None if ema is None else float(ema),
        # the user's own clean targets: SSIM there is worth holding (Trainer.keep_best)
        ssim_floor=mode != "self-supervised",
    )
    if state is not None and (changed := changed_settings(state, config)):
        # (they were taken silently: a resumed run that trains otherwise than the
        # interrupted one should say so, in case it was not meant)
        warnings.warn(
            f"{state['path']} was saved by a run with other settings; this run goes on "
            f"with its own: {', '.join(changed)}",
            UserWarning,
            stacklevel=3,
        )

    inherited = kind_metadata(net)
    # what the data looked like, so that restores unlike it are reported (core/conditions.py)
    conditions = record_conditions(
        data.condition_samples(), condition_psf, rehearsed=rehearsed is not None
    )

    # a fine-tuning that keeps its start unchanged hands back the start: under its name
    # and its conditions (it was renamed "-finetuned" and warned on images unlike the
    # run's data, which the returned weights never trained on)
    start_conditions = recorded_conditions(net.metadata) if parent is not None else None
    start_description = net.metadata.get("description") if parent is not None else None

    def metadata(**record: Any) -> dict[str, Any]:
        unchanged = parent is not None and record.get("improved") is False
        out = inherited | model_metadata(
            name=name or (parent["name"] if unchanged else None),
            parent=parent,
            inputs=inputs_l,
            targets=targets_l,
            psf=psf,
            regions=regions is not None or validation_regions is not None,
            normalization=net.config.normalization,
            conditions=start_conditions if unchanged else conditions,
            **record,
        )
        if opponent:  # RGB trained as restore applies the model (core.colour)
            out["training"]["colour"] = "opponent"
        if unchanged and start_description:  # the start's own words, as its name
            out["description"] = start_description
        return out

    return Trainer(
        net=net,
        data=data,
        config=config,
        device=dev,
        amp=amp,
        loss_fn=loss_fn,
        metadata=metadata,
        stop=stop,
        preview=preview,
        autosave=saver,
        resume=state,
        rehearsal=rehearsed,
        validation_noise=validation_noise,
        started=started,
    )


#: The options :func:`~.training.train` and :func:`~.training.train_iter` accept.
OPTIONS = tuple(
    p.name
    for p in inspect.signature(build_trainer).parameters.values()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
)


def _too_small(channels: Sequence[Any], ndim: int, patch: Sequence[int]) -> str:
    """A plain opening for a patch that does not fit, when every image is under two
    patches along some axis (nothing to say otherwise: the regions decide)."""
    shapes = sorted({tuple(int(n) for n in np.shape(c)[-ndim:]) for c in channels})
    if not all(any(n < 2 * p for n, p in zip(shape, patch, strict=True)) for shape in shapes):
        return ""
    listed = ", ".join(str(s) for s in shapes[:3]) + (", ..." if len(shapes) > 3 else "")
    return f"the images are too small to train on (spatial shape {listed}): "
