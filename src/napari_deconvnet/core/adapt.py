"""Adapt a shipped model to a microscope without clean data: synthetic pairs made on the fly.

:func:`adapt` fine-tunes a copy of a shipped model on pairs that the
package's own phantom generators draw for every batch (beads, filaments,
nuclei, membranes, textures), degraded by **the user's PSF** and by **the
noise** :func:`~.noise_estimation.estimate_noise` **finds in the user's
image** (its level, camera offset and gain), at the intensities of that
image, and normalised with that image's statistics, exactly as
:func:`napari_deconvnet.restore` will normalise it. No clean reference is
needed: what the user's image contributes is its noise, its brightness and
its PSF, and, with ``scenes="image"`` or ``"both"``, its structures: the
starting model's restoration of it serves as clean scenes, which are blurred
and noised afresh like the phantoms (a restoration is never a training
*input*, and the noisy image never a target).

The pairs (:mod:`.synthetic_pairs`) and the generators
(:func:`~.phantoms.phantom`), both re-exported here, work in 2D and 3D and
are the same ones the fine-tuning rehearsal of :func:`napari_deconvnet.train`
uses. Autosave and resume: :mod:`.adapt_record`.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
import warnings
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import is_tensor, plain_number, real_array
from .adapt_record import read_adapt_record, weights_fingerprint, write_adapt_record
from .channel_psfs import per_channel
from .checkpoint import autosave_for, read_resume
from .conditioning import kind_metadata, noise_window, trains_with_noise_map
from .conditions import central_crop, record_conditions, recorded_conditions
from .devices import dtype_name, resolve_device
from .generators import as_stop
from .kinds import ImpulseSwitched, NoiseConditioned, PSFConditioned, central_box, kind_of
from .losses import resolve_loss
from .model import DeconvNet
from .patches import check_array, normalization_of
from .persistence import load_model
from .phantoms import PHANTOMS, check_kinds, phantom
from .psf import (
    as_psf,
    fit_psf,
    named_psf,
    psf_in_dimensions,
    recentre_psf,
    single_leading_axes,
)
from .synthetic_pairs import RehearsalPairs, SyntheticPairs, camera_from, rows_by_psf
from .train_record import describe_psf, finite_jsonable, run_outcome, versions
from .train_setup import check_resume, is_psf_model, training_precision
from .train_types import run_events
from .trainer import TrainConfig, Trainer, TrainEvent, TrainResult
from .trainset import resolve_patch_size

__all__ = [
    "PHANTOMS",
    "RehearsalPairs",
    "SyntheticPairs",
    "adapt",
    "adapt_iter",
    "check_adaptable",
    "camera_from",
    "phantom",
]

# ---------------------------------------------------------------- adapt


def check_adaptable(
    name: str,
    config: dict[str, Any],
    metadata: dict[str, Any],
    ndim: int,
    psf: bool | None = None,
    *,
    gui: bool = False,
) -> None:
    """Refuse (ValueError) a starting model that :func:`adapt` cannot fine-tune.

    Single-channel denoisers adapt with or without a PSF; a noise-conditioned
    model gets its noise map, and a PSF-conditioned one (``deconv-2d``,
    ``deconv-3d``) its classical channel, which needs the PSF (`psf`:
    whether one is given; None does not check it yet). The model must have
    the image's dimensionality `ndim`. One check for the API and the Train
    widget; `gui` words the advice for the widget's fields.
    """
    kind = kind_of(metadata)
    conditioned = isinstance(kind, NoiseConditioned | PSFConditioned)
    if isinstance(kind, ImpulseSwitched) and kind.extra_channels:
        advice = (
            "train it on synthetic pairs instead: Target 'synthetic', noise model salt-and-pepper"
            if gui
            else "fine-tune it on synthetic pairs instead: dn.train(clean_images, "
            "model=..., noise=dict(model='salt-and-pepper', amount=...))"
        )
        raise ValueError(
            f"adapt learns the noise and PSF that estimate_noise and the PSF describe; "
            f"{name!r} removes impulse noise, which they do not: {advice}"
        )
    extra = kind.extra_channels if conditioned else 0
    if config.get("in_channels", 1) != 1 + extra or config.get("out_channels", 1) != 1:
        raise ValueError(
            f"adapt fine-tunes single-channel, noise-conditioned and PSF-conditioned models; "
            f"{name!r} takes {config.get('in_channels', 1)} input channels and gives "
            f"{config.get('out_channels', 1)}; adapt 'denoise-{ndim}d' instead (with the PSF "
            "it learns the deconvolution)"
        )
    if kind.needs_psf and psf is False:
        advice = (
            "choose the PSF (a kind with its parameters, or a PSF layer) to adapt it"
            if gui
            else "pass psf= (the PSF the synthetic pairs are blurred with, and the one its "
            "classical input channel uses)"
        )
        raise ValueError(f"model {name!r} deconvolves with the image's PSF: {advice}")
    if config["ndim"] != ndim:
        advice = (
            f"choose a {ndim}D model or the other network dimensionality"
            if gui
            else f"adapt a {ndim}D model (e.g. 'denoise-{ndim}d') or give a {config['ndim']}D PSF"
        )
        raise ValueError(
            f"model {name!r} is a {config['ndim']}D model, but this adaptation is {ndim}D "
            f"(its PSF's dimensions, or the image's without one); {advice}"
        )


def _base_model(model: Any, ndim: int, kernel: np.ndarray | None) -> DeconvNet:
    net = load_model(model)
    name = net.metadata.get("name", model)
    check_adaptable(name, net.config.to_dict(), net.metadata, ndim, kernel is not None)
    return copy.deepcopy(net)


def _classical_channel(net: DeconvNet, kernel: np.ndarray | None, image: np.ndarray):
    """A PSF-conditioned model's input channels for synthetic patches, or None.

    The function returned maps ``(N, *spatial)`` patches to ``(N, C,
    *spatial)`` channels (the kind's :meth:`~.kinds.ModelKind.channel_stack`).

    Its statistics (the Wiener balance, the minimum for Richardson-Lucy)
    are those of the user's image, as restoring that image computes them.
    """
    kind = kind_of(net)
    if not isinstance(kind, PSFConditioned):
        return None
    shape = image.shape[-net.config.ndim :]
    spatial = image.reshape(-1, *shape)
    # the PSF of each image: one, or (a list) its channel's, each prepared once
    prepared: dict[int, Any] = {}
    psfs = [
        prepared.setdefault(id(k), kind.prepare_psf(k, net.config.ndim, shape))
        for k in (kernel if isinstance(kernel, list) else [kernel] * len(spatial))
    ]
    stats = kind.input_statistics(spatial[:1])[0]
    each: list[Any] = []  # every image's, when the pairs take several images' levels

    def channel(patches: np.ndarray, images: Any = None) -> np.ndarray:
        if images is None:
            return kind.channel_stack(patches, psfs[0], statistics=[stats] * len(patches))
        if not each:
            each.extend(kind.input_statistics(spatial))
        images = np.asarray(images, int).reshape(-1)
        out = None
        for psf, rows in rows_by_psf(psfs, images):
            part = kind.channel_stack(
                patches[rows], psf, statistics=[each[i] for i in images[rows]]
            )
            if out is None:
                out = np.empty((len(patches), *part.shape[1:]), part.dtype)
            out[rows] = part
        return out

    return channel


#: Where the synthetic pairs' structures come from (``scenes=``): the package's
#: phantoms; the user's image as the starting model restores it; or both, half each
#: (the default: chosen on the quality benchmark's validation images, README *Adapt*).
#: Per choice: the share of samples from the image, ``metadata["training"]["mode"]``
#: and ``["data"]["scenes"]``.
SCENES: dict[str, tuple[float, str, str]] = {
    "phantoms": (0.0, "adapt (synthetic phantoms)", "the package's phantoms only"),
    "image": (
        1.0,
        "adapt (synthetic pairs of the image's structures)",
        "the image's own structures, as the starting model restores them, degraded afresh "
        "(no phantoms)",
    ),
    "both": (
        0.5,
        "adapt (synthetic pairs of phantoms and the image's structures)",
        "half the package's phantoms, half the image's own structures as the starting model "
        "restores them",
    ),
}
#: Scenes from the image: the central part of at most this many planes (2D) or of
#: the middle volume (3D), at most this size per axis, is restored once.
SCENE_PLANES = 4
SCENE_EXTENT = {2: (512, 512), 3: (48, 192, 192)}

#: Defaults of the settings that a resumed run takes from its record.
DEFAULTS: dict[str, Any] = {
    "batch_size": 16,
    "lr": 1e-3,
    "l2sp": 10.0,
    "steps_per_epoch": 25,
    "seed": 0,
    "scenes": "both",
    "validate_on": "image",
}
#: ``validate_on="image"``: this share of each scene (along X, at least a
#: validation crop wide) is held out from training and validates alone.
SCENE_HELD_OUT = 0.25
#: Where the validation pairs come from (``validate_on=``), when the scenes
#: include the image (with ``scenes="phantoms"`` they are phantoms either way).
VALIDATE_ON = {
    "image": "a held-out strip of the image's own structures (never trained on)",
    "mix": "the training mix",
}
#: The validation source when the image is too narrow to hold a strip out.
SHARED_SCENES = (
    "the image's own structures, shared with training (the image is too narrow to hold "
    "out a strip beside the training patches)"
)
#: 3D differs (CARE's 3D defaults): 4 patches of 16 x 48 x 48 per batch; see :data:`POOL_3D`.
DEFAULTS_3D: dict[str, Any] = {**DEFAULTS, "batch_size": 4}
PATCH_2D = 64
PATCH_3D = (16, 48, 48)
#: The 3D phantom pool: 6 phantoms, one renewed every 4 batches, 4 validation pairs.
#: A 3D phantom costs about a training step, so renewing one per batch halves the steps.
POOL_3D = {"pool": 6, "renew": 1, "renew_every": 4, "n_validation": 4}


def _patch(patch_size: Any, ndim: int) -> tuple[int, ...]:
    if patch_size is None:
        return (PATCH_2D,) * ndim if ndim == 2 else PATCH_3D
    if isinstance(patch_size, int | np.integer) and not isinstance(patch_size, bool):
        size = (int(patch_size),) * ndim
    elif isinstance(patch_size, tuple | list) and len(patch_size) == ndim:
        size = tuple(int(p) for p in patch_size)
    else:
        raise ValueError(
            f"patch_size must be an integer or {ndim} integers (one per axis), got {patch_size!r}"
        )
    if min(size) < 4:
        raise ValueError(f"patch_size must be at least 4 on every axis, got {patch_size!r}")
    return size


def _image_scenes(
    net: DeconvNet, array: np.ndarray, kernel: np.ndarray | None, camera: dict[str, Any]
) -> tuple[list[np.ndarray], list[int]]:
    """Clean estimates of the user's own structures: `net`'s restoration of (part of) `array`.

    Central crops (:data:`SCENE_EXTENT`) of up to :data:`SCENE_PLANES` evenly
    spaced planes, or of the middle volume, restored by the starting model
    (given the PSF if it is a deconvolution model), in raw units above the
    camera's dark level, negatives clipped; and the index of the image (plane
    or volume of the stack) each one comes from.
    """
    from .conditions import ConditionsWarning
    from .restoration import restore

    ndim = net.config.ndim
    spatial = array.reshape(-1, *array.shape[-ndim:])
    count = 1 if ndim == 3 else min(SCENE_PLANES, len(spatial))
    picks = np.unique(np.linspace(0, len(spatial) - 1, count + 2)[1:-1].round().astype(int))
    box = central_box(array.shape[-ndim:], SCENE_EXTENT[ndim])
    needs = kind_of(net).needs_psf
    scenes = []
    for index in picks:
        part = np.ascontiguousarray(spatial[index][box])
        # (one PSF per image, `kernel` a list: one PSF per channel)
        psf = (kernel[index] if isinstance(kernel, list) else kernel) if needs else None
        with warnings.catch_warnings():  # the image adapted to is the one in question
            warnings.simplefilter("ignore", ConditionsWarning)
            estimate = restore(part, net, psf=psf, device="cpu", precision="float32")
        scenes.append(np.clip(np.asarray(estimate, np.float32) - camera["offset"], 0, None))
    return scenes, [int(i) for i in picks]


#: A stack's images are adapted to each at its own brightness when their
#: amplitudes (or normalisation scales) differ by this factor or more
#: (:func:`image_levels`); below it, at the stack's, as one image.
LEVELS_APART = 1.5


def image_levels(
    net: DeconvNet, array: np.ndarray, camera: dict[str, Any], ndim: int, always: bool = False
) -> list[tuple[float, float, float]] | None:
    """``(amplitude, offset, scale)`` of each image of a stack whose images differ in
    brightness, or None (one image, or a stack of one brightness).

    An image is a plane under a 2D model, a volume under a 3D one: what
    :func:`~napari_deconvnet.restore` normalises by its own statistics. The
    amplitude is its 99.5th percentile above the camera's dark level, as
    :func:`~.synthetic_pairs.camera_from` finds the whole image's; the
    statistics are the model's normalisation of that image. Adapting a
    two-channel image (800 and 40 photons) to the stack's brightness alone
    left the dim channel 4 dB below the shipped model. `always`: each image's, even
    of one brightness (one PSF per channel: a pair takes its image's PSF too).
    """
    images = array.reshape(-1, *array.shape[-ndim:])
    if len(images) < 2 and not always:
        return None
    levels = []
    for image in images:
        sample = np.asarray(image, np.float64).reshape(-1)[:: max(1, image.size // (1 << 18))]
        high = float(np.percentile(sample, 99.5))
        offset, scale = normalization_of(net.config.normalization, image)
        levels.append((max(high - camera["offset"], 1e-6), float(offset), float(scale)))
    amplitudes = [a for a, _, _ in levels]
    scales = [s for _, _, s in levels if s > 0]
    apart = max(amplitudes) / min(amplitudes) >= LEVELS_APART
    if scales:
        apart = apart or max(scales) / min(scales) >= LEVELS_APART
    return levels if apart or always else None


def _check_settings(settings: dict[str, Any]) -> None:
    if settings["scenes"] not in SCENES:
        raise ValueError(
            f"scenes must be one of {', '.join(map(repr, SCENES))}, got {settings['scenes']!r}"
        )
    if settings["validate_on"] not in VALIDATE_ON:
        raise ValueError(
            f"validate_on must be one of {', '.join(map(repr, VALIDATE_ON))}, "
            f"got {settings['validate_on']!r}"
        )
    for name in ("batch_size", "steps_per_epoch"):
        value = settings[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    seed = settings["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    for name in ("lr", "l2sp"):
        value = settings[name]
        bad = isinstance(value, bool) or not isinstance(value, int | float)
        if bad or not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
            # (an infinite lr or a NaN l2sp ran to a NaN loss; lr=0 trains nothing)
            what = "a finite number > 0" if name == "lr" else "a finite number >= 0"
            raise ValueError(f"{name} must be {what}, got {value!r}")


def _same_psf(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) or isinstance(b, list):  # one PSF per channel
        same = isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
        return same and all(_same_psf(x, y) for x, y in zip(a, b, strict=True))
    if a.shape != b.shape:
        return False
    return bool(np.allclose(a / a.sum(), b / b.sum(), rtol=1e-4, atol=1e-7))


def _planar(model: Any, array: Any) -> bool:
    """Whether an adaptation is a plane's: a 2D image, or a model (if named) of 2D."""
    if np.ndim(array) == 2:
        return True
    if model is None:
        return False
    if isinstance(model, DeconvNet):
        return model.config.ndim == 2
    try:
        from .persistence import model_info

        return int(model_info(model)["config"]["ndim"]) == 2
    except (ValueError, TypeError, KeyError):  # (the model's own error comes later)
        return False


def _first(kernel: Any) -> Any:
    """The PSF, or the first channel's of one PSF per channel."""
    return kernel[0] if isinstance(kernel, list) else kernel


def _psf_shape(kernel: Any) -> Any:
    """The PSF's shape, or each channel's (a list), or None."""
    if isinstance(kernel, list):
        return [list(k.shape) for k in kernel]
    return None if kernel is None else list(kernel.shape)


def _channels_first(array: np.ndarray, axes: Any) -> tuple[np.ndarray, str]:
    """`array` and its `axes` with the ``C`` axis, if any, moved first.

    `axes` has one letter per axis from ``TZCYX``, each once; without the
    ``C``, they end with Y and X (adapt's images are the last axes; ``C``
    names the channels of one PSF per channel, and may stand anywhere:
    ``"YXC"`` too).
    """
    if not isinstance(axes, str):
        raise TypeError(
            f"axes must be a string such as 'CYX' or 'CZYX', got {type(axes).__name__}"
        )
    axes = axes.upper()
    if (
        len(axes) != array.ndim
        or set(axes) - set("TZCYX")
        or len(set(axes)) != len(axes)
        or axes.replace("C", "")[-2:] != "YX"
    ):
        raise ValueError(
            f"axes {axes!r} do not fit an image of shape {tuple(array.shape)}: adapt takes "
            "one letter per axis from 'TZCYX', each once, the last two Y and X apart from "
            "a C (e.g. 'CYX', 'YXC', 'CZYX', 'TCYX')"
        )
    if "C" not in axes:
        return array, axes
    return np.moveaxis(array, axes.index("C"), 0), "C" + axes.replace("C", "")


def _channel_kernels(
    psfs: Any, axes: str | None, array: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """`array` with its ``C`` axis first, and one centred PSF per channel (as one PSF
    is prepared: cropped to the image, centred as restore uses it)."""
    from .channel_psfs import channel_axis, psf_for_channel

    array = np.moveaxis(array, channel_axis(psfs, axes, array.shape), 0)
    kernels = []
    for p in psfs:
        k = fit_psf(p, as_psf(p, None), np.shape(array)[1:])
        k, _ = recentre_psf(k, np.shape(array)[-k.ndim :])
        kernels.append(np.asarray(k, np.float32))
    psf_for_channel(kernels, np.ndim)  # all 2D or all 3D
    return array, kernels


def _image_psfs(kernel: Any, array: np.ndarray, ndim: int) -> list[np.ndarray] | None:
    """With one PSF per channel (`array` channels first): the PSF of each image of the
    stack (a plane under a 2D model, a volume under a 3D one), in the stack's order."""
    if not isinstance(kernel, list):
        return None
    images = math.prod(array.shape[:-ndim])
    per_channel_images = images // len(kernel)
    return [kernel[i // per_channel_images] for i in range(images)]


def _image_fingerprint(array: np.ndarray) -> str:
    """A SHA-256 of the image adapted to (float32, channels first), for resume."""
    return hashlib.sha256(np.ascontiguousarray(array, np.float32).tobytes()).hexdigest()


def _check_same_image(array: np.ndarray, saved: dict[str, Any], resume: Any) -> None:
    """Refuse to resume an adapt run on another image: its scenes come from the image,
    while its camera and normalisation are the record's (of the first image)."""
    shape = saved.get("image_shape")
    if shape is not None and list(array.shape) != list(shape):
        raise ValueError(
            f"the adapt run to resume ({resume}) adapted to an image of shape "
            f"{tuple(shape)}, this one has shape {tuple(array.shape)}; resume with the "
            "same image (to adapt to another, start a new run from the saved model)"
        )
    recorded = saved.get("image_fingerprint")
    if recorded is not None and recorded != _image_fingerprint(array):
        raise ValueError(
            f"the adapt run to resume ({resume}) adapted to another image of this shape "
            "(its values differ); resume with the same image (to adapt to another, start "
            "a new run from the saved model)"
        )


def _resumed(
    state_path: Any, given: dict[str, Any], kernel: np.ndarray | None, camera: Any
) -> tuple[dict[str, Any], np.ndarray | None]:
    """The settings of the run to resume; ValueError where an argument contradicts them."""
    record, saved_psf = read_adapt_record(state_path)
    record.setdefault("scenes", "phantoms")  # runs from before scenes= had phantoms only
    record.setdefault("validate_on", "mix")  # and before validate_on=, the training mix
    out = dict(record)

    def refuse(name: str, yours: Any, theirs: Any) -> None:
        raise ValueError(
            f"{name}={yours!r}, but the adapt run to resume used {theirs!r}; pass the same "
            f"{name} or leave it out (a resumed run keeps its settings)"
        )

    for name, value in given.items():
        if value is None:
            continue
        saved = record[name]
        if name == "kinds":
            value = check_kinds(value)
        if value != saved:
            refuse(name, value, saved)
    if kernel is not None and not _same_psf(kernel, saved_psf):

        def said(k: Any) -> str | None:
            if isinstance(k, list):
                return f"{len(k)} PSFs (one per channel) of shapes {[x.shape for x in k]}"
            return None if k is None else f"a PSF of shape {k.shape}"

        refuse("psf", said(kernel), said(saved_psf))
    if camera is not None:  # noise given as a dict: it must give the same camera
        saved_cam = record["camera"]
        same = camera["noise"] == saved_cam["noise"] and all(
            math.isclose(float(camera["params"].get(k, 0)), float(v), rel_tol=1e-6)
            for k, v in saved_cam["params"].items()
        )
        if not same:
            refuse("noise", {"noise": camera["noise"], **camera["params"]}, saved_cam)
    return out, saved_psf


def adapt_iter(
    model: Any,
    image: Any,
    *,
    psf: Any = None,
    noise: Any = "auto",
    seconds: float | None = 120,
    axes: str | None = None,
    kinds: Any = None,
    patch_size: int | tuple[int, ...] | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    l2sp: float | None = None,
    steps_per_epoch: int | None = None,
    steps: int | None = None,
    seed: int | None = None,
    scenes: str | None = None,
    validate_on: str | None = None,
    device: Any = "auto",
    precision: str = "auto",
    stop: Any = None,
    preview: bool = True,
    autosave: Any = None,
    resume: Any = None,
) -> Generator[TrainEvent, None, TrainResult]:
    """Generator form of :func:`adapt`: yields :class:`TrainEvent`, returns a TrainResult."""
    started = time.perf_counter()  # `seconds` covers the set-up (the scenes' restore) too
    stop = as_stop(stop)
    if is_tensor(image):  # as restore and train take it
        image = real_array(image)
    if isinstance(image, list | tuple):
        # check_array's words ("a numpy or dask array (or a list of them)") are train's
        raise TypeError(
            f"adapt takes one image (the data to adapt to), got a {type(image).__name__} of "
            f"{len(image)}; pass one array (dn.train takes lists of images)"
        )
    check_array(image, "image")
    array = np.asarray(image, np.float32)
    if not np.isfinite(array).all():
        raise ValueError("image contains NaN or infinite values; replace them first")
    if axes is None and array.ndim == 3 and array.shape[-1] in (3, 4) and min(array.shape[:2]) > 4:
        # restore's own reading of such a shape (axes YXS): colour samples, not planes;
        # axes= says what the last axis is (a C of three channels: "YXC")
        raise ValueError(
            f"image of shape {array.shape} looks like an RGB(A) image (3 or 4 samples on "
            "the last axis); adapt takes a grey image, a stack of them or a volume. Adapt "
            "to its luminance, image[..., :3].mean(axis=-1): restore sends an RGB image "
            "through a one-channel denoiser as luminance and chroma; if that axis holds "
            "fluorescence channels, say so with axes='YXC'"
        )
    seconds, steps = plain_number(seconds), plain_number(steps)  # NumPy scalars too
    if seconds is None and steps is None:
        raise ValueError("seconds=None needs steps= (a bound on the run); pass one of them")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0
    ):
        raise ValueError(
            f"seconds must be a positive number (or None with steps=), got {seconds!r}"
        )
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive integer or None, got {steps!r}")
    saver = autosave_for(autosave, resume)  # checks the path; a resumed run goes on saving
    kernel = None
    given_axes = axes
    if axes is not None:
        array, axes = _channels_first(array, axes)
    if per_channel(psf):  # one PSF per channel (core.channel_psfs): channels first
        array, kernel = _channel_kernels(psf, axes, array)
    elif psf is not None:
        if named_psf(psf) and (model is not None or resume is not None):
            # a name is made in the model's dimensions, as restore makes it (a 2D
            # Gaussian was made for deconv-3d, which then refused it); resumed, in
            # the dimensions of the run's own PSF
            if resume is not None:
                saved_psf = read_adapt_record(resume)[1]
                dims = None if saved_psf is None else int(np.ndim(_first(saved_psf)))
            else:
                model = load_model(model)  # loaded once: _base_model copies it
                dims = model.config.ndim
            if dims is not None:
                psf = psf_in_dimensions(psf, dims)
        kernel = as_psf(psf, None)
        if _planar(model, array):
            # a (1, Y, X) PSF is a plane's (a one-plane layer or TIFF), for a plane or
            # a 2D model (it was refused: "a 3D PSF needs a 3D image")
            kernel = kernel[(0,) * single_leading_axes(kernel.shape, 2)]
        # a generated PSF deeper than the stack is cropped to it, as restore does
        kernel = fit_psf(psf, kernel, np.shape(array))
        # pairs blurred with the kernel centred, as restore uses it (psf.recentre_psf)
        kernel, _ = recentre_psf(kernel, np.shape(array)[-kernel.ndim :])
        kernel = np.asarray(kernel, np.float32)
    given = {
        "batch_size": plain_number(batch_size),
        "lr": plain_number(lr),
        "l2sp": plain_number(l2sp),
        "steps_per_epoch": plain_number(steps_per_epoch),
        "seed": plain_number(seed),
        "kinds": kinds,
        "scenes": scenes,
        "validate_on": validate_on,
    }
    state = saved = None
    if resume is not None:
        state = read_resume(resume)
        given_camera = camera_from(array, noise) if isinstance(noise, dict) else None
        saved, saved_psf = _resumed(resume, given, kernel, given_camera)
        size = tuple(saved["patch_size"])
        ndim = len(size)
        if patch_size is not None and _patch(patch_size, ndim) != size:
            raise ValueError(
                f"patch_size={patch_size!r}, but the adapt run to resume used "
                f"{list(size)}; pass the same patch_size or leave it out"
            )
        if axes is None and saved.get("axes") is not None:  # its channels first again
            given_axes = saved["axes"]
            array, axes = _channels_first(array, given_axes)
        _check_same_image(array, saved, resume)
        kernel = saved_psf
        settings = {k: saved[k] for k in DEFAULTS}
        kinds, camera, stats = saved["kinds"], saved["camera"], tuple(saved["stats"])
        if model is None:
            model = saved["start"].get("path") or saved["start"].get("name")
    else:
        ndim = 3 if kernel is not None and np.ndim(_first(kernel)) == 3 else 2
        if kernel is None and model is not None and array.ndim >= 3:
            # a 3D denoiser adapts to a volume without a PSF: its own dimensionality
            # (loaded once here; _base_model copies this network)
            model = load_model(model)
            ndim = 3 if model.config.ndim == 3 else 2
        defaults = DEFAULTS if ndim == 2 else DEFAULTS_3D
        settings = {k: defaults[k] if given[k] is None else given[k] for k in DEFAULTS}
        camera = camera_from(array, noise)
        size = _patch(patch_size, ndim)
    _check_settings(settings)
    if ndim == 3 and array.ndim < 3:
        raise ValueError("a 3D PSF needs a 3D image (Z, Y, X)")
    net = _base_model(
        model or f"{'denoise' if kernel is None else 'deconv'}-{ndim}d", ndim, kernel
    )
    if patch_size is not None:  # on the network's grid, as dn.train asks (said alike)
        resolve_patch_size(size, ndim, net)
    fingerprint = weights_fingerprint(net)
    if state is not None:
        check_resume(state, "synthetic", size, net)
        if saved.get("start_fingerprint") not in (None, fingerprint):
            raise ValueError(
                f"{state['path']} was adapted from another starting model "
                f"({saved['start'].get('name')!r}); resume with the same model"
            )
    else:
        stats = normalization_of(net.config.normalization, array)
    if axes is not None and ndim == 3 and axes[-3:] != "ZYX":
        raise ValueError(
            f"axes {axes!r}: a 3D model adapts to volumes whose last axes are Z, Y, X; "
            "reorder the image (np.moveaxis) so that they are"
        )
    # a stack of images of different brightness: pairs at each one's (see image_levels);
    # with one PSF per channel, always each image's (and its channel's PSF)
    image_psfs = _image_psfs(kernel, array, ndim)
    levels = image_levels(net, array, camera, ndim, always=image_psfs is not None)
    spe = settings["steps_per_epoch"]
    if steps is not None:  # whole epochs of `steps` in all
        spe = min(spe, steps)
        epochs = math.ceil(steps / spe)
    else:
        epochs = None
    dev = resolve_device(device)
    fraction, mode, scenes_text = SCENES[settings["scenes"]]
    scene_options: dict[str, Any] = {}
    if fraction:
        scenes, origins = _image_scenes(net, array, image_psfs or kernel, camera)
        scene_options = {"scenes": scenes, "scene_fraction": fraction}
        if levels is not None:
            scene_options["scene_levels"] = origins
        if settings["validate_on"] == "image":
            scene_options["held_out"] = SCENE_HELD_OUT
            scene_options["validation_scene_fraction"] = 1.0
    data = SyntheticPairs(
        ndim=ndim,
        size=size,
        camera=camera,
        stats=stats,
        psf=image_psfs or kernel,
        kinds=kinds,
        device=dev,
        seed=settings["seed"],
        noise_map=trains_with_noise_map(net),
        noise_window=noise_window(net),
        condition=_classical_channel(net, image_psfs or kernel, array),
        levels=levels,
        **scene_options,
        **({} if ndim == 2 else POOL_3D),
    )
    if fraction and settings["validate_on"] == "image" and data.shared_scenes:
        warnings.warn(
            f"the image ({tuple(array.shape)}) is too narrow to hold out a validation strip "
            f"beside training patches of {tuple(size)} (and the PSF's margin): validation "
            "shares the training structures, so the best model is chosen on what it trains "
            "on; a wider image, or a smaller patch_size, keeps them apart",
            UserWarning,
            stacklevel=2,
        )
    if state is not None:
        data.skip_to(int(state["step"]))  # the batches the interrupted run had not drawn
    loss_name, loss_fn = resolve_loss("mse", "synthetic", 0.5)
    amp = training_precision(precision, dev)
    config = TrainConfig(
        mode="synthetic",
        loss=loss_name,
        patch_size=size,
        batch_size=settings["batch_size"],
        epochs=epochs,
        max_seconds=None if seconds is None else float(seconds),
        steps_per_epoch=spe,
        lr=float(settings["lr"]),
        weight_decay=0.0,
        schedule="cosine",
        clip_norm=1.0,
        patience=None,
        ssim_weight=0.5,
        augment=False,
        seed=settings["seed"],
        device=str(dev),
        precision=dtype_name(amp),
        noise={"model": camera["noise"], **camera["params"]},
        psf_shape=_psf_shape(kernel),
        validation="synthetic",
        l2sp=float(settings["l2sp"]),
        fine_tuning=True,
        # no SSIM floor (Trainer.keep_best): the validation scenes come from the start's
        # own restoration, whose smoothness favours the start in SSIM. A 2D adaptation
        # that gained over 0.5 dB on a held-out image went 0.990 -> 0.963 there.
        ssim_floor=False,
    )
    parent = {
        "name": net.metadata.get("name"),
        "path": net.metadata.get("path"),
        "fingerprint": fingerprint,
    }
    inherited = kind_metadata(net)
    # an adaptation that keeps its start unchanged hands back the start, under its own
    # name, description and conditions (train_setup.build_trainer likewise)
    start_meta = dict(net.metadata)
    start_conditions = recorded_conditions(start_meta)
    # the image's noise (and the PSF of a deconvolution model): restores unlike it are
    # reported (core/conditions.py)
    conditions = record_conditions(
        [central_crop(array, ndim)],
        kernel if is_psf_model(net) else None,
        rehearsed=False,
    )
    record = {
        "camera": camera,
        "stats": list(stats),
        **({"image_levels": [list(v) for v in levels]} if levels is not None else {}),
        "kinds": data.kinds,
        "patch_size": list(size),
        **settings,
        "seconds": seconds,
        "steps": steps,
        "start": parent,
        "start_fingerprint": fingerprint,
        "image_shape": list(array.shape),
        "image_fingerprint": _image_fingerprint(array),
        "noise_source": "estimated" if isinstance(noise, str) else "given",
        **({"axes": given_axes} if given_axes is not None else {}),
    }
    if saved is not None:
        record["noise_source"] = saved.get("noise_source", record["noise_source"])
    if saver is not None:
        if state is None or Path(state["path"]) != saver.resume:
            saver.resume.unlink(missing_ok=True)  # never resumed into another run's state
        write_adapt_record(saver.path, record, kernel)

    def metadata(*, config, history, best_entry, stop_reason, seconds, steps, improved):
        start = history[0]
        scores = ("val_loss", "val_psnr", "val_ssim")
        training = {
            "mode": mode,
            "data": {
                "kind": (
                    "synthetic phantoms, drawn afresh for every batch"
                    if ndim == 2
                    else "synthetic phantoms, crops of a pool renewed every "
                    f"{POOL_3D['renew_every']} batches"
                ),
                "scenes": scenes_text,
                "phantoms": data.kinds,
                "psf": describe_psf(kernel),
                "noise": config.noise,
                "noise_source": (
                    "estimated from the image by dn.estimate_noise"
                    if record["noise_source"] == "estimated"
                    else "given"
                ),
                "camera": {k: v for k, v in camera.items() if k != "params"},
                "normalization": list(stats),
                # the user's shape (the channels-first one was recorded)
                "image": {"shape": list(np.shape(image)), "dtype": str(np.dtype(image.dtype))},
            },
            "kinds": data.kinds,
            "camera": {k: v for k, v in camera.items() if k != "params"},
            "noise": config.noise,
            "psf_shape": _psf_shape(kernel),
            **({"axes": given_axes} if given_axes is not None else {}),
            "image_shape": list(array.shape),
            # (amplitude, offset, scale) of each image a stack's pairs were drawn at
            **({"image_levels": record["image_levels"]} if "image_levels" in record else {}),
            **run_outcome(history, best_entry, stop_reason, seconds, steps),
            "best_val_psnr": best_entry.get("val_psnr"),
            "best_val_ssim": best_entry.get("val_ssim"),
            "start_val_psnr": start.get("val_psnr"),
            "start_val_ssim": start.get("val_ssim"),
            "input_val_psnr": start.get("input_val_psnr"),
            "validation": {
                "set": f"{len(data.val['x'])} synthetic pairs of a fixed seed, never trained on",
                "source": (
                    VALIDATE_ON[settings["validate_on"]] if fraction else "the package's phantoms"
                )
                if not (fraction and getattr(data, "shared_scenes", 0))
                else SHARED_SCENES,
                "scores": [
                    {"epoch": h["epoch"], "step": h["step"], **{k: h.get(k) for k in scores}}
                    for h in history
                ],
            },
            "improved": improved,
            "resumed": state is not None,
            "conditions": start_conditions if improved is False else conditions,
            "fine_tuned_from": parent,
            "settings": {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in config.to_dict().items()
                if k not in ("noise",)
            },
            "versions": versions(),
        }
        adapted = improved is not False
        return {
            **inherited,
            "name": f"{parent['name']}-adapted" if adapted else parent["name"],
            "description": (
                f"{parent['name']} adapted to an image's "
                f"{'PSF and ' if kernel is not None else ''}{camera['noise']} noise"
                if adapted
                else start_meta.get("description", "")
            ),
            "training": finite_jsonable(training),
        }

    trainer = Trainer(
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
        started=started,
    )
    return (yield from trainer.run())


def adapt(
    model: Any,
    image: Any,
    *,
    psf: Any = None,
    noise: Any = "auto",
    seconds: float = 120,
    callback: Callable[[TrainEvent], Any] | None = None,
    **options: Any,
) -> DeconvNet:
    """Fine-tune a copy of a shipped model to one microscope, without clean data.

    The model trains on synthetic pairs drawn afresh for every batch by the
    package's phantom generators (beads, filaments, nuclei, membranes,
    textures), blurred by `psf` and noised like `image`: with the noise
    model, level, camera offset and gain that :func:`estimate_noise` finds
    in it, at its intensities, and normalised with its statistics as
    :func:`restore` will. By default (``scenes="both"``) half the samples
    take their structures from `image` instead: the starting model's
    restoration of it, degraded afresh in the same way (the noisy `image`
    is never a target).

    Parameters
    ----------
    model : str, path or DeconvNet
        A single-channel model to start from: ``"default"`` /
        ``"denoise-2d"`` (or ``"denoise-3d"`` for a volume, with a 3D PSF
        or without one: a 3D model without a PSF adapts in 3D), a model file,
        or a loaded network (copied, never modified). None picks
        ``deconv-2d`` or ``deconv-3d`` from the PSF's dimensions when
        `psf` is given (better starts than the denoisers on every
        deconvolution task measured), ``denoise-2d`` without one; a
        denoiser given `psf` learns the deconvolution. A PSF-conditioned
        model (``deconv-2d``, ``deconv-3d``) adapts too, with `psf`: its
        classical input channel (Wiener or Richardson-Lucy with that PSF,
        with the statistics of `image`) is computed for every synthetic
        patch, so it starts from what it knows of deconvolution. A
        noise-conditioned model gets its noise map from the camera's
        variance line.
    image : ndarray
        The user's noisy (and blurred) image, 2D for a 2D model (its
        statistics and noise are measured; leading axes are pooled).
    psf : ndarray or str, or a list of them, optional
        The microscope's PSF (measured, or from :func:`make_psf`): the
        adapted model deconvolves it. None: denoising only. A list gives
        one PSF per channel of the ``C`` axis that `axes` names
        (:mod:`~napari_deconvnet.core.channel_psfs`): each synthetic pair
        takes one channel's brightness, statistics and PSF, and the
        image's own structures are restored with their channel's PSF.
    noise : "auto" or dict
        ``"auto"`` estimates it from `image`; or the parameters of
        :func:`synthesize`, e.g. ``dict(noise="poisson-gaussian", gain=2,
        offset=100, read_noise=3)`` in the image's units.
    axes : str, optional
        The image's axes, one letter per axis from ``TZCYX`` (e.g.
        ``"CYX"``, ``"YXC"``, ``"CZYX"``); needed with one PSF per channel,
        to name the ``C`` axis. Without, the image's last axes are Y and X
        (Z, Y, X for a 3D model) and the leading ones are pooled.
    seconds : float or None
        Wall-clock budget of the whole call: the set-up (the starting
        model's restore of the image for ``scenes``) counts, and the
        training takes the rest. 120 s on a laptop CPU is the design
        point; a GPU does much more in the same time. None (with
        ``steps=``): bounded by the steps only, so that the run does not
        depend on the machine's speed. A resumed run counts its whole time.
    callback : callable, optional
        Called with every :class:`TrainEvent` (progress, preview).
    **options
        ``scenes`` (``"both"``, the default: half the samples phantoms,
        half the user's structures, in training and validation;
        ``"image"``: only the user's structures, that is the starting
        model's restoration of the central part of `image`, at most
        :data:`SCENE_EXTENT` per axis and :data:`SCENE_PLANES` planes,
        computed once and blurred and noised afresh for every batch;
        ``"phantoms"``: only the package's phantoms, as before),
        ``validate_on`` (with scenes from the image: ``"image"``, the
        default, validates on a strip of the image's structures held out
        from training, the last :data:`SCENE_HELD_OUT` along X, so the
        model kept is the best on data like the user's, and the starting
        model comes back unchanged when adaptation made that worse;
        ``"mix"``: on the training mix, phantoms included, as before
        2026-12-02),
        ``kinds`` (a subset of :data:`PHANTOMS`), ``patch_size`` (64; in
        3D (16, 48, 48) as CARE's 3D default; an integer or one size per
        axis), ``batch_size`` (16; 4 in 3D), ``lr`` (1e-3), ``l2sp`` (10: weaker
        than :func:`train`'s 100, since deconvolving is a new task for a
        denoiser), ``steps_per_epoch`` (25: how often
        the synthetic validation set is scored), ``steps`` (a bound on the
        optimisation steps besides `seconds`, rounded up to whole epochs:
        reproducible runs), ``seed`` (0), ``device``, ``precision``
        (as :func:`train`'s: ``"auto"`` is float16 on CUDA, float32
        elsewhere; ``"bfloat16"`` on CPUs with AMX), ``stop`` (a
        threading.Event), ``preview``;
        ``autosave`` (a ``.safetensors`` path: the best model so far,
        rewritten whenever validation improves, the resume state beside it
        after every epoch, and ``<name>.adapt.safetensors``, the run's PSF,
        camera, normalisation, phantom kinds and settings, see
        :mod:`.adapt_record`), ``resume`` (an autosave path: continue that
        run; it keeps its PSF, camera, normalisation, phantoms and
        settings, so `psf`, `noise` and the options above may be left out,
        and any that is passed must agree; the step count and history go
        on, and the batches drawn are those the interrupted run would have
        drawn).

    Returns
    -------
    DeconvNet
        The adapted copy, best by the loss on a fixed synthetic validation
        set; the starting model itself (unchanged) when no epoch beat it.
        ``metadata["training"]`` records the training data (``data``: the
        phantoms, the PSF, the noise found in the image and its camera),
        the validation scores (``validation``, and ``start_val_psnr`` /
        ``best_val_psnr``, ``improved``), the starting model
        (``fine_tuned_from``: its name, path and weights fingerprint), the
        time and the steps.

    Examples
    --------
    >>> import napari_deconvnet as dn
    >>> noisy = dn.synthesize(phantom((64, 64), rng=0) * 50, "poisson", peak=1, seed=0)
    >>> model = dn.adapt("default", noisy, seconds=1, batch_size=2, patch_size=32,
    ...                  device="cpu")  # doctest: +SKIP
    """
    gen = adapt_iter(model, image, psf=psf, noise=noise, seconds=seconds, **options)
    return run_events(gen, callback).model
