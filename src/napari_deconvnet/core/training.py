"""Training: supervised pairs, self-supervised blind-spot masking, synthetic pairs.

:func:`train_iter` checks and resolves the arguments and runs a
:class:`~.trainer.Trainer`, a generator that yields a :class:`TrainEvent`
after every step and every epoch and returns a :class:`TrainResult`;
:func:`train` drains it. Patches are read lazily from the inputs
(:mod:`.patches`), normalised with the contract of
:func:`napari_deconvnet.restore` (the 0.5/99.5 percentiles of the whole noisy
input map to 0 and 1, for input and target alike), and fed to AdamW with a
cosine or one-cycle learning-rate schedule and gradient clipping.
"""

from __future__ import annotations

import copy
import datetime
import math
import platform
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import torch

from .checkpoint import Autosave, read_resume
from .devices import resolve_device
from .losses import LOSSES, SCHEDULES, resolve_loss
from .model import DeconvNet, DeconvNetConfig
from .persistence import load_model
from .trainer import TrainConfig, Trainer, TrainEvent, TrainResult, resolve_amp
from .trainset import TrainingSet, as_list, positive_int, resolve_noise, resolve_patch_size

__all__ = ["LOSSES", "MODES", "TrainConfig", "TrainEvent", "TrainResult", "train", "train_iter"]

MODES = ("supervised", "self-supervised", "synthetic")

#: Peak learning rate of a new network (AdamW, cosine schedule).
LR_SCRATCH = 3e-3
#: Peak learning rate when fine-tuning a trained model (see ``train``'s notes).
LR_FINE_TUNE = 1e-3
#: Default L2-SP strength when fine-tuning (see ``train``'s notes).
L2SP_FINE_TUNE = 100.0
#: Default share of rehearsed synthetic pairs per batch when fine-tuning.
REHEARSAL_FINE_TUNE = 0.5


def _resolve_mode(mode: str | None, targets: Any, noise: Any, psf: Any) -> str:
    synthetic = noise is not None or psf is not None
    if mode is None:
        if targets is not None and synthetic:
            raise ValueError(
                "give either targets (supervised pairs) or noise/psf (synthetic pairs made "
                "from clean inputs), not both"
            )
        return (
            "supervised"
            if targets is not None
            else "synthetic"
            if synthetic
            else ("self-supervised")
        )
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {MODES} or None (inferred)")
    if mode == "supervised" and (targets is None or synthetic):
        raise ValueError("mode 'supervised' needs targets= and no noise/psf")
    if mode == "synthetic" and (targets is not None or not synthetic):
        raise ValueError("mode 'synthetic' needs noise= (and/or psf=) and no targets")
    if mode == "self-supervised" and (targets is not None or synthetic):
        raise ValueError("mode 'self-supervised' takes neither targets nor noise/psf")
    return mode


def _make_network(model: Any, network: Any, patch_size: Any, seed: int) -> tuple[DeconvNet, Any]:
    """The network to train and what it was fine-tuned from (None for a new one)."""
    if model is not None:
        if network is not None:
            raise ValueError("pass either model= (fine-tuning) or network= (a new network)")
        loaded = load_model(model)
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


# ---------------------------------------------------------------- the engine


def train_iter(inputs: Any, targets: Any = None, **options: Any) -> Generator:
    """Generator form of :func:`train`: yields :class:`TrainEvent`, returns :class:`TrainResult`.

    Takes the arguments of :func:`train` except `callback`. Closing the
    generator (or a napari worker's ``quit``) abandons the run; setting
    ``stop`` ends it after the current step and still returns the best
    model. GPU memory is released either way.
    """
    try:
        return (yield from _train_iter(inputs, targets, **options))
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _check_pairs(inputs_l: list, targets_l: list | None) -> None:
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


def _resolve_axes(axes: Any, inputs: list, ndim: int) -> str | None:
    """The inputs' axes if they have a channel axis (C or S), else None (leading = samples)."""
    if axes is None:
        shape = tuple(inputs[0].shape)
        # as restore guesses them: (Y, X, 3|4) and (T, Y, X, 3|4) are RGB(A) for a 2D network
        if ndim == 2 and len(shape) in (3, 4) and shape[-1] in (3, 4):
            if all(tuple(a.shape) == shape for a in inputs):
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
    missing = [a for a in spatial if a not in axes]
    if missing:
        raise ValueError(
            f"axes {axes!r} lacks {''.join(missing)}: a {ndim}D network needs the spatial axes "
            f"{spatial!r}"
        )
    return axes


def _by_channel(arrays: list | None, axes: str | None, ndim: int) -> list | None:
    """Each array as one (samples..., *spatial) array per channel.

    Channels are trained as separate images of one single-channel network,
    each with its own normalisation, which is how :func:`restore` applies a
    single-channel model to ``axes="YXC"`` or ``"YXS"``; the other non-spatial
    axes (T, and Z for a 2D network) are independent samples.
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
        for c in range(moved.shape[k]):
            out.append(moved[(slice(None),) * k + (c,)])
    return out


def _per_channel_regions(spec: Any, inputs_l: list, axes: str | None, ndim: int) -> Any:
    """Region specs repeated for every channel of their input."""
    if spec is None or axes is None:
        return spec
    channel = next((a for a in axes if a in "CS"), None)
    if channel is None:
        return spec
    specs = list(spec) if len(inputs_l) > 1 else [spec]
    out = []
    for s, a in zip(specs, inputs_l, strict=True):
        out += [s] * a.shape[axes.index(channel)]
    return out


def _train_iter(
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
    patch_size: int | Sequence[int] = 64,
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
    seed: int = 0,
    device: str | torch.device = "auto",
    precision: str = "auto",
    name: str | None = None,
    preview: bool = True,
    stop: threading.Event | None = None,
    axes: str | None = None,
    l2sp: float | None = None,
    rehearsal: float | None = None,
    autosave: Any = None,
    resume: Any = None,
) -> Generator[TrainEvent, None, TrainResult]:
    # ---- arguments, all checked before any heavy work
    mode = _resolve_mode(mode, targets, noise, psf)
    inputs_l = as_list(inputs, "inputs")
    targets_l = None if targets is None else as_list(targets, "targets")
    _check_pairs(inputs_l, targets_l)
    batch_size = positive_int(batch_size, "batch_size")
    epochs = positive_int(epochs, "epochs", allow_none=True)
    steps_per_epoch = positive_int(steps_per_epoch, "steps_per_epoch", allow_none=True)
    patience = positive_int(patience, "patience", allow_none=True)
    if max_seconds is not None and not (isinstance(max_seconds, int | float) and max_seconds > 0):
        raise ValueError(f"max_seconds must be a positive number or None, got {max_seconds!r}")
    if epochs is None and max_seconds is None:
        epochs = 10
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; use one of {SCHEDULES}")
    fine_tuning = model is not None
    if lr is None:
        lr = LR_FINE_TUNE if fine_tuning else LR_SCRATCH
    if not (isinstance(lr, int | float) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if l2sp is None:
        l2sp = L2SP_FINE_TUNE if fine_tuning else 0.0
    if isinstance(l2sp, bool) or not (isinstance(l2sp, int | float) and l2sp >= 0):
        raise ValueError(f"l2sp must be a number >= 0 (0 turns it off), got {l2sp!r}")
    if rehearsal is None:
        rehearsal = REHEARSAL_FINE_TUNE if fine_tuning else 0.0
    if isinstance(rehearsal, bool) or not (
        isinstance(rehearsal, int | float) and 0 <= rehearsal <= 1
    ):
        raise ValueError(
            f"rehearsal must be a fraction in [0, 1] (0 turns it off), got {rehearsal!r}"
        )
    if not 0 <= ssim_weight <= 1:
        raise ValueError(f"ssim_weight must be in [0, 1], got {ssim_weight!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    saver = None if autosave is None else Autosave(autosave)
    state = None if resume is None else read_resume(resume)
    loss_name, loss_fn = resolve_loss(loss, mode, ssim_weight)
    dev = resolve_device(device)
    amp = resolve_amp(precision, dev)
    net, parent = _make_network(model, network, patch_size, seed)
    ndim = net.config.ndim
    if net.config.in_channels != 1 or net.config.out_channels != 1:
        raise ValueError(
            "training supports single-channel networks (in_channels = out_channels = 1); "
            "multi-channel and RGB images train one shared single-channel network over "
            "their channels (axes='YXC'), which restore applies channel by channel"
        )
    axes = _resolve_axes(axes, inputs_l, ndim)
    size = resolve_patch_size(patch_size, ndim, net)
    noise_spec = resolve_noise(noise, psf, ndim) if mode == "synthetic" else ("none", {}, None)
    if state is not None:
        _check_resume(state, mode, size, batch_size, net)

    # ---- data
    if axes is not None and validation is not None and not isinstance(validation, float | int):
        if isinstance(validation, tuple) and len(validation) == 2 and mode == "supervised":
            validation = tuple(
                _by_channel(as_list(v, "validation"), axes, ndim) for v in validation
            )
        else:
            validation = _by_channel(as_list(validation, "validation"), axes, ndim)
    data = TrainingSet(
        mode=mode,
        inputs=_by_channel(inputs_l, axes, ndim),
        targets=_by_channel(targets_l, axes, ndim),
        net=net,
        size=size,
        regions=_per_channel_regions(regions, inputs_l, axes, ndim),
        validation=validation,
        validation_regions=_per_channel_regions(validation_regions, inputs_l, axes, ndim),
        noise=noise_spec,
        rng=np.random.default_rng(seed),
        device=dev,
        augment=augment,
        seed=seed,
    )
    if state is not None:  # the same validation patches as before, fresh training patches
        data.reseed([seed, int(state["step"])])
    if steps_per_epoch is None:
        per_epoch = data.train_area / math.prod(size) / batch_size
        steps_per_epoch = int(min(max(math.ceil(per_epoch), 10), 100))
    noise_record = {"model": noise_spec[0], **noise_spec[1]} if mode == "synthetic" else None
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
        seed=seed,
        device=str(dev),
        precision=str(amp).removeprefix("torch."),
        noise=noise_record,
        psf_shape=None if psf is None else tuple(np.shape(psf)),
        validation=data.validation,
        l2sp=float(l2sp),
        rehearsal=float(rehearsal),
        fine_tuning=fine_tuning,
        axes=axes,
    )

    def metadata(**record: Any) -> dict[str, Any]:
        return _metadata(
            name=name,
            parent=parent,
            mode=mode,
            inputs=inputs_l,
            targets=targets_l,
            psf=psf,
            regions=regions is not None or validation_regions is not None,
            normalization=net.config.normalization,
            **record,
        )

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
        rehearsal=_rehearsal(rehearsal, net, size, dev, seed),
    )
    return (yield from trainer.run())


def _rehearsal(fraction: float, net: DeconvNet, size: tuple, dev: torch.device, seed: int):
    """Pairs with the noise the shipped denoisers know, for a fine-tuning that remembers."""
    if not fraction or net.config.normalization.get("method") != "percentile":
        return None
    from .adapt import RehearsalPairs

    return RehearsalPairs(ndim=net.config.ndim, size=size, device=dev, seed=seed)


def _check_resume(state: dict, mode: str, size: tuple, batch_size: int, net: DeconvNet) -> None:
    """A resume file must come from a run of the same kind on the same network."""
    settings = state.get("settings", {})
    theirs = (settings.get("mode"), tuple(settings.get("patch_size", ())))
    if theirs != (mode, tuple(size)):
        raise ValueError(
            f"{state['path']} was saved by a {theirs[0]} run with patch_size {theirs[1]}, but "
            f"this run is {mode} with patch_size {tuple(size)}; resume with the same settings"
        )
    if state.get("network") != net.config.to_dict():
        raise ValueError(
            f"{state['path']} was saved for another network configuration; pass the same "
            "model= (or network=) as the interrupted run"
        )


def _metadata(
    *,
    name,
    parent,
    mode,
    config,
    history,
    best_entry,
    stop_reason,
    seconds,
    steps,
    improved,
    inputs,
    targets,
    psf,
    regions,
    normalization,
) -> dict[str, Any]:
    """``model.metadata``: what the model was trained on and how."""
    training = {
        "mode": mode,
        "loss": config.loss,
        "epochs": history[-1]["epoch"],
        "steps": steps,
        "seconds": round(seconds, 2),
        "stop_reason": stop_reason,
        "best_epoch": best_entry["epoch"],
        "best_val_loss": best_entry.get("val_loss"),
        "start_val_loss": history[0].get("val_loss"),
        "improved": improved,
        **{k: v for k, v in best_entry.items() if k.startswith(("val_psnr", "val_ssim"))},
        **{k: v for k, v in history[0].items() if k.startswith("input_")},
        **{f"start_{k}": v for k, v in history[0].items() if k in ("val_psnr", "val_ssim")},
        "data_shapes": [list(a.shape) for a in inputs],
        "inputs": [_describe_array(a) for a in inputs],
        "targets": None if targets is None else [_describe_array(a) for a in targets],
        "noise": config.noise,
        "psf": _describe_psf(psf),
        "regions": regions,
        "validation": config.validation,
        "settings": {k: v for k, v in config.to_dict().items() if k not in ("noise", "mode")},
        "normalization": dict(normalization),
        "fine_tuned_from": parent,
        "versions": _versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    kind = {
        "supervised": "supervised",
        "self-supervised": "self-supervised (Noise2Void)",
        "synthetic": "synthetic-pair",
    }[mode]
    default = f"{parent['name']}-finetuned" if parent else f"trained-{mode}"
    return {
        "name": name or default,
        "description": f"{config.patch_size.__len__()}D model from {kind} training",
        "training": _jsonable(training),
    }


def _versions() -> dict[str, str]:
    from .._version import __version__

    return {
        "napari_deconvnet": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _describe_array(a: Any) -> dict[str, Any]:
    return {"shape": [int(s) for s in a.shape], "dtype": str(np.dtype(a.dtype))}


def _describe_psf(psf: Any) -> dict[str, Any] | None:
    if psf is None:
        return None
    kernel = np.asarray(psf, dtype=np.float64)
    record: dict[str, Any] = {"shape": list(kernel.shape)}
    if kernel.size <= 4096:
        record["values"] = (kernel / kernel.sum()).round(8).tolist()
    return record


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def train(
    inputs: Any,
    targets: Any = None,
    *,
    model: Any = None,
    noise: Any = None,
    psf: Any = None,
    epochs: int | None = None,
    max_seconds: float | None = None,
    patch_size: int | Sequence[int] = 64,
    batch_size: int = 16,
    loss: str | Callable = "mse",
    validation: Any = 0.1,
    seed: int = 0,
    device: str | torch.device = "auto",
    callback: Callable[[TrainEvent], Any] | None = None,
    stop: threading.Event | None = None,
    **options: Any,
) -> TrainResult:
    """Train a deconvolution network on images: supervised, self-supervised or synthetic.

    Parameters
    ----------
    inputs : (..., M, N) or (..., P, M, N) ndarray or dask array, or a list of them
        Training images, any real dtype. The trailing 2 (3 for a 3D network)
        axes are spatial; leading axes (time, planes) are independent
        samples. Noisy images in supervised and self-supervised mode; clean
        images in synthetic mode. Patches are read lazily, so memory-mapped
        and dask arrays larger than memory work.
    targets : array or list of arrays, optional
        Clean (denoising) or unblurred (deconvolution) counterparts of
        `inputs`, of equal shapes: **supervised** training. Use it when you
        have registered high/low-quality acquisitions or a simulated ground
        truth; it gives the best models.
    model : str, path or DeconvNet, optional
        Fine-tune this model (a shipped name such as ``"default"``, a model
        file or a loaded network; it is copied, never modified). Fine-tuning
        is what most users want: pass ``model="default"`` for 2D denoising
        (``"denoise-3d"`` with a 3D network). It starts from what the shipped
        model knows, uses the fine-tuning learning rate (``lr`` 1e-3 instead
        of 3e-3), pulls the weights back toward the start (L2-SP, see
        ``l2sp``) and rehearses synthetic pairs with the noise the shipped
        model knows (``rehearsal``), so that it gains on data like yours
        without forgetting the rest (measured in the README). None trains a
        new network, shaped by ``network=``: that is the
        default because ``train`` cannot tell which shipped model fits your
        task (denoising or deconvolution, 2D or 3D, a network size of your
        choosing), because the PSF-conditioned shipped models (``deconv-2d``,
        ``deconv-3d``, ``salt-and-pepper``) take two input channels and
        cannot be fine-tuned here, and because existing scripts rely on it.
        A new network needs minutes to catch up with a shipped one; use it
        for data unlike anything shipped.
    noise : str or dict, optional
        **Synthetic pairs**: `inputs` are clean, and each batch is degraded on
        the fly by :func:`napari_deconvnet.synthesize`, e.g.
        ``dict(model="poisson-gaussian", peak=50, read_noise=2)``;
        parameters are in the input's intensity units. Use it when you know
        the noise (see ``estimate_noise``) and have clean-looking data.
    psf : ndarray, optional
        Synthetic pairs: blur the clean patches by this PSF before the noise
        (deconvolution training); with ``noise=None`` the pairs are blurred
        only. The trained model takes no PSF at inference.
    epochs : int, optional
        Number of epochs of ``steps_per_epoch`` steps (default 10 when
        `max_seconds` is None too).
    max_seconds : float, optional
        Wall-clock budget; with `epochs` too, whichever comes first. When
        it is the only bound, the learning-rate schedule follows the clock.
    patch_size : int or tuple of int
        Patch side (or one size per spatial axis), a multiple of the
        network's ``2**depth`` grid, no larger than the images.
    batch_size : int
        Patches per step.
    loss : {"mse", "l1", "ssim", "mse+ssim"} or callable
        ``"ssim"`` is ``1 - SSIM``; ``"mse+ssim"`` is
        ``(1 - w) * mse + w * (1 - SSIM)`` with ``w = ssim_weight`` (0.5). A
        callable ``loss(prediction, target)`` returns a scalar tensor (in
        self-supervised mode it gets the masked pixels only).
    validation : float, data or None
        A fraction of the training area held out as validation patches (at
        most 64 patches, never overlapped by training patches); or explicit
        validation images (a ``(inputs, targets)`` tuple in supervised mode);
        or 0/None for no validation. The best model by validation loss is
        returned.
    seed : int
        Seeds patch sampling, augmentation, noise, masks and a new network's
        weights: the same seed, data and device give the same history on
        the CPU (when the run is bounded by epochs, not by time).
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}
        ``"auto"`` picks CUDA, then MPS, then the CPU. On CUDA training uses
        float16 mixed precision with loss scaling (``precision="float32"`` to
        turn it off).
    callback : callable, optional
        Called with a :class:`TrainEvent` after set-up, every step, every
        epoch and at the end. An exception raised in it ends the run.
    stop : threading.Event, optional
        When set, training ends after the current step; the best model so far
        (after a last validation) is returned.
    **options
        More settings: ``network`` (a dict of :class:`DeconvNetConfig`
        fields for a new network, e.g. ``{"ndim": 3, "base_channels": 8}``),
        ``mode`` (``"supervised"``, ``"self-supervised"`` or
        ``"synthetic"``; inferred by default), ``steps_per_epoch`` (default:
        the training area in patches over the batch size, within 10..100),
        ``lr`` (the peak: 3e-3 for a new network, 1e-3 when fine-tuning),
        ``weight_decay`` (1e-4; off when L2-SP is on), ``l2sp`` (the
        strength of the pull toward the starting weights when fine-tuning:
        after every AdamW step each weight moves back by ``lr * l2sp`` of
        its distance from the start; 100 when fine-tuning, 0 for a new
        network), ``rehearsal`` (the share of each batch, on top of it,
        drawn from synthetic phantom pairs with the Gaussian and
        Poisson-Gaussian noise the shipped denoisers were trained for, so
        that fine-tuning does not forget them; 0.5 when fine-tuning, 0
        for a new network), ``autosave`` (a ``.safetensors`` path: the best model so
        far is written there whenever validation improves, and the resume
        state beside it, as ``<name>.resume.safetensors``, after every
        epoch; both atomically, safetensors and JSON, no pickle), ``resume``
        (that path: continue the interrupted run; the step count, history,
        optimiser moments and schedule go on, and ``epochs``/``max_seconds``
        count the whole run), ``axes`` (the inputs' axes, e.g. ``"YXC"``,
        ``"YXS"`` for RGB or ``"TYX"``: channels train one shared
        single-channel network, each channel normalised on its own, as
        :func:`restore` applies it with the same axes; T, and Z for a 2D
        network, are samples; ``(Y, X, 3|4)`` arrays are taken as RGB(A)
        when axes is None), ``schedule``
        (``"cosine"``, ``"one-cycle"`` or ``"constant"``), ``clip_norm``
        (1.0), ``patience`` (epochs without improvement before early
        stopping; None), ``ssim_weight``, ``regions`` and
        ``validation_regions`` (where training and validation patches may
        lie: per input None, a mask, or a list of polygon vertex arrays in
        pixel coordinates, as napari Labels and Shapes layers hold them),
        ``augment`` (random flips and 90-degree rotations in the image plane;
        True), ``precision``, ``name`` and ``preview``.

    Returns
    -------
    TrainResult
        ``.model`` (the best network, with ``metadata["training"]``
        recording data shapes, mode, noise/PSF, loss, epochs, time and
        library versions, saved with it by :func:`save_model`),
        ``.history``, ``.config``, ``.stop_reason``, ``.improved`` and
        ``.message``. **Never worse than the start:** before the first step
        the starting model (the given one, or the new network) is scored on
        the validation split, a held-out part of your data that no training
        patch overlaps; the returned model is the best by validation loss,
        and when nothing beat the start it is the start itself, unchanged
        (``improved`` False, and ``message`` says so).

    Raises
    ------
    ValueError
        Mismatched input/target shapes, patches larger than the images or
        off the network's grid, batch sizes below 1, unknown losses, modes
        or schedules, empty regions, 3D patches with a 2D network, NaN or
        infinite data.
    TypeError
        Non-array inputs, bad argument types.

    Warns
    -----
    RuntimeWarning
        When the loss becomes NaN or infinite: training stops there, and the
        best model so far is returned (``stop_reason == "non-finite loss"``).

    Notes
    -----
    The three modes:

    - **Supervised** (`targets` given): the network learns input -> target.
    - **Self-supervised** (no targets, no noise): Noise2Void [1]_ blind-spot
      training on the noisy images alone. In every patch about one pixel in
      36 (64 in 3D) is replaced by a random neighbour and the loss compares
      the prediction there with the original value. It needs no clean data,
      but it assumes noise that is independent from pixel to pixel with zero
      mean: it cannot remove spatially correlated noise (stripes, noise
      blurred by the optics or by demosaicing), and it does not deblur.
    - **Synthetic** (`noise` and/or `psf` given): clean inputs are blurred
      and noised on the fly, a fresh draw every batch, and the network
      learns to undo it: denoising for a known noise model, deconvolution
      for a known PSF.

    Normalisation follows :func:`napari_deconvnet.restore`: each input's
    0.5 and 99.5 percentiles (of the degraded image in synthetic mode) map to
    0 and 1, and its target is mapped with the same numbers. Validation
    PSNR is in those units (data range 1), which equals the PSNR in the
    image's units with a data range of that percentile span.

    References
    ----------
    .. [1] A. Krull, T.-O. Buchholz and F. Jug, "Noise2Void - Learning
           Denoising From Single Noisy Images", CVPR 2019.
           :arXiv:`1811.10980`

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clean = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    >>> noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    >>> result = train(noisy, clean, epochs=1, steps_per_epoch=2, patch_size=16,
    ...                batch_size=2, network={"base_channels": 4}, device="cpu")
    >>> result.model.metadata["training"]["mode"], len(result.history)
    ('supervised', 2)
    """
    gen = train_iter(
        inputs,
        targets,
        model=model,
        noise=noise,
        psf=psf,
        epochs=epochs,
        max_seconds=max_seconds,
        patch_size=patch_size,
        batch_size=batch_size,
        loss=loss,
        validation=validation,
        seed=seed,
        device=device,
        stop=stop,
        **options,
    )
    try:
        while True:
            event = next(gen)
            if callback is not None:
                callback(event)
    except StopIteration as finished:
        return finished.value
    finally:
        gen.close()
