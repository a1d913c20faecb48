"""Train a given network on a source of pairs: the engine under the shipped models' scripts.

:func:`napari_deconvnet.train` builds its network and data from the user's
images; the scripts that train the shipped models (``scripts/train_models.py``,
``scripts/train_default.py``) bring their own: a network (new, or started
from a model file) and a procedural source of degraded/clean batches. Both
run the same :class:`~.trainer.Trainer`, so they share one recipe: AdamW with
the cosine schedule (which follows the clock under a time budget), gradient
clipping, the weights' moving average (EMA) validated beside them, the best
weights by validation kept (the start included), autosave and resume
(:mod:`.checkpoint`), and the model metadata the caller builds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import torch

from .checkpoint import Autosave, read_resume, resume_path
from .devices import dtype_name, resolve_device
from .losses import resolve_loss
from .model import DeconvNet, stored_network
from .train_setup import training_precision
from .train_types import TrainConfig, TrainEvent, TrainResult, run_events
from .trainer import Trainer

__all__ = ["fit", "fit_iter"]


class _OnDevice:
    """A pair source's CPU batches on the training device, without a blind-spot mask."""

    val = None  # validation is the caller's ``evaluate``

    def __init__(self, pairs: Any, device: torch.device) -> None:
        self.pairs, self.device = pairs, device

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, None]:
        x, y = self.pairs.batch(batch_size)[:2]
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True), None


def fit_iter(
    net: DeconvNet,
    pairs: Any,
    *,
    evaluate: Callable[[DeconvNet], tuple[float, dict[str, float]]],
    metadata: Callable[..., dict[str, Any]],
    steps: int | None = None,
    max_seconds: float | None = None,
    validate_every: int = 500,
    batch_size: int = 16,
    patch_size: tuple[int, ...] = (),
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    clip_norm: float | None = 1.0,
    loss: str = "mse",
    ema: float | None = 0.999,
    device: str | torch.device = "cpu",
    precision: str = "float32",
    autosave: Any = None,
    resume: bool = False,
    seed: int = 0,
    stop: Any = None,
) -> Generator[TrainEvent, None, TrainResult]:
    """Train `net` on batches from `pairs`; yields :class:`TrainEvent`, returns a TrainResult.

    Parameters
    ----------
    net : DeconvNet
        Trained in place (on `device`); the result holds the best weights.
    pairs : object
        ``pairs.batch(n)`` returns normalised ``(x, y)`` CPU tensors of
        ``(n, C, *patch)``; ``pairs.reseed(seed)``, if it exists, is called
        on a resume with ``[seed, step]``.
    evaluate : callable
        ``evaluate(net) -> (loss, metrics)``, lower loss better (e.g. minus
        the PSNR of validation images restored by :func:`restore`).
    metadata : callable
        Builds the result model's metadata from ``(config, history,
        best_entry, stop_reason, seconds, steps, improved)``.
    steps, max_seconds : int or float, optional
        A step count (rounded up to whole validation intervals), a time
        budget, or both (whichever ends first); the learning rate follows
        the one that ends first.
    validate_every : int
        Steps between validations (one "epoch").
    ema : float or None
        Decay of the weights' moving average, validated beside them.
    precision : {"float32", "bfloat16", "float16", "auto"}
        As :func:`~.train_setup.training_precision`.
    autosave : path, optional
        ``.safetensors`` file of the best model so far, with its resume
        state beside it (:class:`~.checkpoint.Autosave`).
    resume : bool
        Continue from `autosave`'s resume state when it exists.
    """
    if steps is None and max_seconds is None:
        raise ValueError("give steps, max_seconds or both")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    dev = resolve_device(device)
    amp = training_precision(precision, dev)
    per_epoch = validate_every if steps is None else min(validate_every, steps)
    state = None
    if resume and autosave is not None and resume_path(autosave).exists():
        state = read_resume(autosave)
        if stored_network(state.get("network")) != net.config.to_dict():
            raise ValueError(f"{state['path']} was saved for another network configuration")
        if state.get("settings", {}).get("steps_per_epoch") != per_epoch:
            raise ValueError(
                f"{state['path']} was saved with another validation interval; resume with "
                "the same steps and validation interval"
            )
        if hasattr(pairs, "reseed"):
            pairs.reseed([seed, int(state["step"])])
    loss_name, loss_fn = resolve_loss(loss, "supervised", 0.5)
    config = TrainConfig(
        mode="supervised",
        loss=loss_name,
        patch_size=tuple(patch_size),
        batch_size=batch_size,
        epochs=None if steps is None else math.ceil(steps / per_epoch),
        max_seconds=max_seconds,
        steps_per_epoch=per_epoch,
        lr=float(lr),
        weight_decay=float(weight_decay),
        schedule="cosine",
        clip_norm=clip_norm,
        patience=None,
        ssim_weight=0.5,
        augment=True,
        seed=seed,
        device=str(dev),
        precision=dtype_name(amp),
        validation="evaluate",
        ema=ema,
    )
    trainer = Trainer(
        net=net,
        data=_OnDevice(pairs, dev),
        config=config,
        device=dev,
        amp=amp,
        loss_fn=loss_fn,
        metadata=metadata,
        stop=stop,
        preview=False,
        autosave=None if autosave is None else Autosave(autosave),
        resume=state,
        evaluate=evaluate,
    )
    try:
        return (yield from trainer.run())
    finally:
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def fit(
    net: DeconvNet, pairs: Any, *, callback: Callable[[TrainEvent], Any] | None = None, **options
) -> TrainResult:
    """:func:`fit_iter` run to the end; `callback` gets every event."""
    gen = fit_iter(net, pairs, **options)
    return run_events(gen, callback)
