"""What a training run is set up with, reports and returns (config, events, result)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .model import DeconvNet

__all__ = ["TrainConfig", "TrainEvent", "TrainResult", "run_events"]


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
    blind_spot: str | None = None
    l2sp: float = 0.0
    rehearsal: float = 0.0
    fine_tuning: bool = False
    axes: str | None = None
    ema: float | None = None
    #: never keep a checkpoint whose validation SSIM is below the start's (supervised
    #: training on the user's own clean targets; see Trainer.keep_best)
    ssim_floor: bool = False
    #: per-patch gain and offset of the normalised input and target alike (see
    #: ``train``'s ``intensity_jitter``); 0: off
    intensity_jitter: float = 0.0
    #: what ranks checkpoints: "loss", "evaluate", "none", or for self-supervised
    #: runs "SURE with ... noise" or "the masked Noise2Void loss, because ..."
    validation_score: str = ""

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
        The best network by validation loss, on the CPU, in eval mode, with
        ``metadata["training"]``. The starting network counts: when no epoch
        beat it on the validation split, it comes back unchanged (its weights
        bit for bit) and ``improved`` is False. Without validation, the last
        weights.
    history : list of dict
        One entry per validation (epoch 0 is the initial model): ``epoch``,
        ``step``, ``train_loss``, ``val_loss``, ``val_psnr``/``val_ssim``
        (where targets exist), ``lr`` and ``seconds``.
    config : TrainConfig
    best_epoch : int
        0 when the starting model was kept.
    stop_reason : str
        ``"epochs"``, ``"max_seconds"``, ``"stopped"``, ``"early stopping"``
        or ``"non-finite loss"``.
    message : str
        Plain words on how the run ended and whether the model improved on
        where it started, e.g. ``"finished 10 epochs; the model improved:
        validation loss 0.0123 -> 0.0041 (PSNR +4.8 dB)"``.
    seconds : float
    steps : int
    improved : bool or None
        True when the returned model beat the starting one on the
        validation split, False when the starting model was returned, None
        without validation.
    """

    model: DeconvNet
    history: list[dict[str, Any]]
    config: TrainConfig
    best_epoch: int
    stop_reason: str
    message: str
    seconds: float
    steps: int
    improved: bool | None = None


def run_events(gen: Generator[Any, None, Any], callback: Callable[[Any], Any] | None) -> Any:
    """Run a training generator to its end, passing every event to `callback`; its result.

    The generator is closed however this ends (an exception from `callback`
    included), so that a training run frees its device memory.
    """
    if callback is not None and not callable(callback):
        gen.close()
        raise TypeError(
            f"callback must be a callable taking one TrainEvent, got {type(callback).__name__}"
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
