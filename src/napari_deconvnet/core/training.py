"""Training: supervised pairs, self-supervised blind-spot masking, synthetic pairs.

:func:`train_iter` is the engine, a generator that yields a
:class:`TrainEvent` after every step and every epoch and returns a
:class:`TrainResult`; :func:`train` drains it. Patches are read lazily from
the inputs (:mod:`.patches`), normalised with the contract of
:func:`napari_deconvnet.restore` (the 0.5/99.5 percentiles of the whole noisy
input map to 0 and 1, for input and target alike), and fed to AdamW with a
cosine or one-cycle learning-rate schedule and gradient clipping.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import math
import platform
import threading
import time
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .devices import autocast, resolve_device
from .losses import LOSSES, SCHEDULES, lr_factor, resolve_loss
from .model import DeconvNet, DeconvNetConfig
from .persistence import load_model
from .trainset import TrainingSet, as_list, positive_int, resolve_noise, resolve_patch_size

__all__ = ["LOSSES", "MODES", "TrainConfig", "TrainEvent", "TrainResult", "train", "train_iter"]

MODES = ("supervised", "self-supervised", "synthetic")


@dataclass
class TrainConfig:
    """The settings of a training run, as :func:`train` resolved them."""

    mode: str
    loss: str
    patch_size: tuple[int, ...]
    batch_size: int
    epochs: int | None
    max_seconds: float | None
    steps_per_epoch: int
    lr: float
    weight_decay: float
    schedule: str
    clip_norm: float | None
    patience: int | None
    ssim_weight: float
    augment: bool
    seed: int
    device: str
    precision: str
    noise: dict[str, Any] | None = None
    psf_shape: tuple[int, ...] | None = None
    validation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainEvent:
    """What :func:`train` reports to its callback.

    ``kind`` is ``"start"`` (after set-up and the validation of the initial
    model), ``"step"`` (after every optimisation step), ``"epoch"`` (after
    every validation) or ``"end"``. Losses are in normalised units.
    ``model`` is the live network: copy it (``copy.deepcopy``) before use and
    never modify it. ``preview`` (epoch events) holds a fixed validation
    patch as ``{"input", "output", "target"}`` arrays in the input's
    intensity scale (``target`` is None in self-supervised mode).
    """

    kind: str
    step: int
    epoch: int
    elapsed: float
    progress: float
    eta: float | None
    lr: float
    train_loss: float | None = None
    val_loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    preview: dict[str, np.ndarray | None] | None = None
    model: DeconvNet | None = None
    message: str = ""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    model : DeconvNet
        The best network by validation loss (the last one without
        validation), on the CPU, in eval mode, with ``metadata["training"]``.
    history : list of dict
        One entry per validation (epoch 0 is the initial model): ``epoch``,
        ``step``, ``train_loss``, ``val_loss``, ``val_psnr``/``val_ssim``
        (where targets exist), ``lr`` and ``seconds``.
    config : TrainConfig
    best_epoch : int
    stop_reason : str
        ``"epochs"``, ``"max_seconds"``, ``"stopped"``, ``"early stopping"``
        or ``"non-finite loss"``.
    message : str
        A sentence on how the run ended.
    seconds : float
    steps : int
    """

    model: DeconvNet
    history: list[dict[str, Any]]
    config: TrainConfig
    best_epoch: int
    stop_reason: str
    message: str
    seconds: float
    steps: int


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
    lr: float = 3e-3,
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
) -> Generator[TrainEvent, None, TrainResult]:
    start = time.perf_counter()
    # ---- arguments, all checked before any heavy work
    mode = _resolve_mode(mode, targets, noise, psf)
    inputs_l = as_list(inputs, "inputs")
    targets_l = None if targets is None else as_list(targets, "targets")
    if targets_l is not None:
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
    if not (isinstance(lr, int | float) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not 0 <= ssim_weight <= 1:
        raise ValueError(f"ssim_weight must be in [0, 1], got {ssim_weight!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    loss_name, loss_fn = resolve_loss(loss, mode, ssim_weight)
    dev = resolve_device(device)
    amp = _resolve_amp(precision, dev)
    net, parent = _make_network(model, network, patch_size, seed)
    ndim = net.config.ndim
    if net.config.in_channels != 1 or net.config.out_channels != 1:
        raise ValueError(
            "training supports single-channel networks (in_channels = out_channels = 1); "
            "train one model per channel"
        )
    size = resolve_patch_size(patch_size, ndim, net)
    noise_spec = resolve_noise(noise, psf, ndim) if mode == "synthetic" else ("none", {}, None)

    # ---- data
    data = TrainingSet(
        mode=mode,
        inputs=inputs_l,
        targets=targets_l,
        net=net,
        size=size,
        regions=regions,
        validation=validation,
        validation_regions=validation_regions,
        noise=noise_spec,
        rng=np.random.default_rng(seed),
        device=dev,
        augment=augment,
        seed=seed,
    )
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
    )

    # ---- optimisation
    fmt = torch.channels_last if ndim == 2 else torch.channels_last_3d
    net = net.to(device=dev, memory_format=fmt)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=float(lr), weight_decay=float(weight_decay))
    scaler = torch.amp.GradScaler(dev.type) if amp == torch.float16 else None
    total_steps = epochs * steps_per_epoch if epochs else None
    val = data.val
    if val is not None:
        for key in ("x", "y", "mask"):
            if val[key] is not None:
                val[key] = val[key].to(dev).contiguous(memory_format=fmt)

    def progress_at(step: int) -> tuple[float, float, float | None]:
        elapsed = time.perf_counter() - start
        parts = [step / total_steps] if total_steps else []
        parts += [elapsed / max_seconds] if max_seconds else []
        progress = min(max(parts), 1.0)
        eta = elapsed / progress * (1 - progress) if progress > 0 else None
        return elapsed, progress, eta

    def compute_loss(pred, target, mask):
        return loss_fn(pred[mask], target[mask]) if mask is not None else loss_fn(pred, target)

    def validate() -> tuple[float | None, dict[str, float], dict | None]:
        if val is None:
            return None, {}, None
        net.eval()
        total, outputs, n = 0.0, [], val["x"].shape[0]
        with torch.no_grad():
            for i in range(0, n, batch_size):
                part = slice(i, i + batch_size)
                with autocast(dev, amp):
                    pred = net(val["x"][part]).float()
                outputs.append(pred)
                mask = None if val["mask"] is None else val["mask"][part]
                total += float(compute_loss(pred, val["y"][part], mask)) * len(pred)
        net.train()
        pred = torch.cat(outputs)
        metrics = _metrics(pred, val["y"]) if mode != "self-supervised" else {}
        return total / n, metrics, _preview(val, pred, mode) if preview else None

    def event(kind: str, step: int, epoch: int, lr_now: float, **fields: Any) -> TrainEvent:
        elapsed, progress, eta = progress_at(step)
        if kind == "end":
            progress, eta = 1.0, 0.0
        return TrainEvent(
            kind, step, epoch, elapsed, progress, eta, lr_now, history=history, **fields
        )

    history: list[dict[str, Any]] = []
    val_loss, metrics, shown = validate()
    baseline = {}
    if val is not None and mode != "self-supervised":
        baseline = {f"input_{k}": v for k, v in _metrics(val["x"].float(), val["y"]).items()}
    current_lr = float(lr) * lr_factor(schedule, 0.0)
    history.append(
        {
            "epoch": 0,
            "step": 0,
            "train_loss": None,
            "val_loss": val_loss,
            **metrics,
            "lr": current_lr,
            "seconds": round(time.perf_counter() - start, 3),
            **baseline,
        }
    )
    best = {"loss": val_loss, "epoch": 0, "state": _state(net)}
    yield event(
        "start",
        0,
        0,
        current_lr,
        val_loss=val_loss,
        metrics=metrics,
        preview=shown,
        model=net,
        message="validated the initial model",
    )

    step, epoch, since_best = 0, 0, 0
    stop_reason, message = "epochs", ""
    net.train()
    while True:
        epoch += 1
        running: list[float] = []
        ended = None
        for _ in range(steps_per_epoch):
            if stop is not None and stop.is_set():
                ended = ("stopped", f"stopped by the user after {step} steps")
                break
            elapsed, progress, _eta = progress_at(step)
            if max_seconds is not None and elapsed >= max_seconds:
                ended = ("max_seconds", f"reached the time budget of {max_seconds:g} s")
                break
            current_lr = float(lr) * lr_factor(schedule, progress)
            for group in opt.param_groups:
                group["lr"] = current_lr
            x, y, mask = data.batch(batch_size)
            with autocast(dev, amp):
                out = net(x.contiguous(memory_format=fmt))
            value = compute_loss(out.float(), y, mask)
            loss_value = float(value.detach())
            if not math.isfinite(loss_value):
                ended = ("non-finite loss", f"the loss became {loss_value} at step {step + 1}")
                break
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(value).backward()
                scaler.unscale_(opt)
            else:
                value.backward()
            if clip_norm is not None:
                norm = float(torch.nn.utils.clip_grad_norm_(params, clip_norm))
                if scaler is None and not math.isfinite(norm):
                    ended = ("non-finite loss", f"the gradients became {norm} at step {step + 1}")
                    break
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            step += 1
            running.append(loss_value)
            yield event("step", step, epoch, current_lr, train_loss=loss_value, model=net)
        if ended is not None and ended[0] == "non-finite loss":
            ended = (
                ended[0],
                f"training stopped: {ended[1]} (try a lower lr, clip_norm or another loss); "
                "the best model so far is kept",
            )
            warnings.warn(ended[1], RuntimeWarning, stacklevel=2)
        if running:
            val_loss, metrics, shown = validate()
            train_loss = float(np.mean(running))
            history.append(
                {
                    "epoch": epoch,
                    "step": step,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    **metrics,
                    "lr": current_lr,
                    "seconds": round(time.perf_counter() - start, 3),
                }
            )
            score = val_loss if val is not None else train_loss
            if best["loss"] is None or score < best["loss"]:
                best = {"loss": score, "epoch": epoch, "state": _state(net)}
                since_best = 0
            else:
                since_best += 1
            yield event(
                "epoch",
                step,
                epoch,
                current_lr,
                train_loss=train_loss,
                val_loss=val_loss,
                metrics=metrics,
                preview=shown,
                model=net,
            )
        if ended is not None:
            stop_reason, message = ended
            break
        if patience is not None and since_best >= patience:
            stop_reason, message = "early stopping", f"no improvement for {patience} epochs"
            break
        if epochs is not None and epoch >= epochs:
            stop_reason, message = "epochs", f"finished {epochs} epochs"
            break

    # ---- the result: the best network, on the CPU, with its record
    seconds = time.perf_counter() - start
    if val is None:  # no validation: the last (good) weights
        best = {"loss": None, "epoch": history[-1]["epoch"], "state": _state(net)}
    result_net = DeconvNet(net.config)
    result_net.load_state_dict(best["state"])
    best_entry = next(h for h in history if h["epoch"] == best["epoch"])
    result_net.metadata = _metadata(
        name=name,
        parent=parent,
        mode=mode,
        config=config,
        history=history,
        best_entry=best_entry,
        stop_reason=stop_reason,
        seconds=seconds,
        steps=step,
        inputs=inputs_l,
        targets=targets_l,
        psf=psf,
        regions=regions is not None or validation_regions is not None,
        normalization=result_net.config.normalization,
    )
    result = TrainResult(
        model=result_net.eval(),
        history=history,
        config=config,
        best_epoch=best["epoch"],
        stop_reason=stop_reason,
        message=message,
        seconds=round(seconds, 3),
        steps=step,
    )
    yield event(
        "end",
        step,
        epoch,
        current_lr,
        val_loss=best_entry.get("val_loss"),
        model=result_net,
        message=message,
    )
    return result


def _resolve_amp(precision: str, dev: torch.device) -> torch.dtype:
    if precision not in ("auto", "float32", "float16", "bfloat16"):
        raise ValueError(
            f"unknown precision {precision!r}; use 'auto', 'float32', 'float16' or 'bfloat16'"
        )
    if precision == "auto":
        return torch.float16 if dev.type == "cuda" else torch.float32
    if precision == "float16" and dev.type == "cpu":
        raise ValueError("precision 'float16' needs a GPU; on the CPU use 'float32'")
    return getattr(torch, precision)


def _preview(val: dict, pred: torch.Tensor, mode: str) -> dict[str, np.ndarray | None]:
    """The first validation patch, its restoration and its target, in image units."""
    off, sc = val["offset"][0], val["scale"][0]

    def raw(t: torch.Tensor) -> np.ndarray:
        return t[0, 0].float().cpu().numpy() * sc + off

    return {
        "input": raw(val["x"]),
        "output": raw(pred),
        "target": None if mode == "self-supervised" else raw(val["y"]),
    }


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
        **{k: v for k, v in best_entry.items() if k.startswith(("val_psnr", "val_ssim"))},
        **{k: v for k, v in history[0].items() if k.startswith("input_")},
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


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in net.state_dict().items()}


def _metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Validation PSNR and SSIM in normalised units (data range 1), averaged over patches."""
    from .metrics import psnr, ssim

    pred, target = pred.float(), target.float()
    values = [float(psnr(p, t, data_range=1.0)) for p, t in zip(pred, target, strict=True)]
    out = {"val_psnr": float(np.mean(np.minimum(values, 100.0)))}
    if min(pred.shape[2:]) >= 11:  # SSIM's Gaussian window
        out["val_ssim"] = float(ssim(pred, target, data_range=1.0))
    return out


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
        file or a loaded network; it is copied, never modified). None trains
        a new network, shaped by ``network=``.
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
        ``lr`` (1e-3, the peak), ``weight_decay`` (1e-4), ``schedule``
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
        ``.history``, ``.config``, ``.stop_reason`` and ``.message``.

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
