"""Training losses and learning-rate schedules.

Losses compare a prediction with a target in normalised units (data range
1): ``"mse"``, ``"l1"``, ``"ssim"`` (``1 - SSIM`` from :mod:`.metrics`, the
same SSIM as the quality metric), ``"mse+ssim"``, ``"balanced-mse"``
(:func:`balanced_mse`, for batches that mix noise levels) and ``"hdr-mse"``
(:func:`hdr_mse`, for images with objects far brighter than the rest). Schedules give the
learning rate, as a fraction of its peak, at a point of the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "LOSSES",
    "SCHEDULES",
    "balanced_mse",
    "hdr_mse",
    "lr_factor",
    "resolve_loss",
    "ssim_loss",
]

LOSSES = ("mse", "l1", "ssim", "mse+ssim", "balanced-mse", "hdr-mse")
SCHEDULES = ("cosine", "one-cycle", "constant")


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM`` of ``(B, C, *S)`` batches in normalised units (data range 1)."""
    from .metrics import ssim

    return 1 - ssim(pred, target, data_range=1.0)


def balanced_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE, each sample weighted by the batch's mean MSE over its own.

    Plain MSE over a batch that mixes 5-photon and 1000-photon samples is
    ruled by the noisiest ones: their errors are hundreds of times larger,
    so the network learns little for the clean end. A validation (or a
    user) that averages PSNR counts every sample alike. The gradient of
    this loss is that of the batch's mean PSNR (``-10 log10`` of each
    sample's MSE), rescaled to plain MSE's magnitude, and its value is the
    plain MSE, so logs and gradient clipping keep their scale. A batch
    whose samples are all alike gets plain MSE's gradient. Samples are
    the first axis; a 1-D input (masked pixels) is one sample.

    Examples
    --------
    >>> import torch
    >>> pred = torch.zeros(2, 1, 4, 4)
    >>> target = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 1.0)])
    >>> round(float(balanced_mse(pred, target)), 3)  # the value is the plain MSE
    0.505
    """
    if pred.ndim < 2:
        return F.mse_loss(pred, target)
    per_sample = (pred - target).square().flatten(1).mean(1)
    mean = per_sample.mean().detach()
    return (per_sample * (mean / per_sample.detach().clamp_min(1e-12))).mean()


def _tone(v: torch.Tensor) -> torch.Tensor:
    """The identity up to 1 and ``1 + log(v)`` above (continuous, slope 1 at 1)."""
    return torch.where(v > 1, 1 + torch.log(v.clamp_min(1.0)), v)


def hdr_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of intensities mapped by the identity up to 1 and logarithmically above.

    Normalised by its percentiles, an image with a few objects a hundred times
    brighter than the rest has its scene in [0, 1] and those objects far above
    it, where shot noise is hundreds of times larger in these units. Plain MSE
    is then ruled by the bright pixels (and a clipped gradient by one such
    batch), while what users lose is the dim scene around them. Above 1 the
    error is measured on ``1 + log(v)``, a relative error; in [0, 1] this is
    the plain MSE, so batches without such objects train as with ``"mse"``.

    Examples
    --------
    >>> import torch
    >>> pred, target = torch.tensor([0.5, 110.0]), torch.tensor([0.4, 100.0])
    >>> round(float(hdr_mse(pred, target)), 4)  # (0.1**2 + log(1.1)**2) / 2
    0.0095
    """
    return F.mse_loss(_tone(pred), _tone(target))


def resolve_loss(loss: Any, mode: str, ssim_weight: float) -> tuple[str, Callable]:
    """``(name, loss(prediction, target))`` for a loss name or a callable.

    ``"mse+ssim"`` is ``(1 - ssim_weight) * mse + ssim_weight * (1 - SSIM)``.
    SSIM needs whole patches, so it is refused for self-supervised training,
    whose loss sees single masked pixels.

    Examples
    --------
    >>> import torch
    >>> name, fn = resolve_loss("l1", "supervised", 0.5)
    >>> float(fn(torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)))
    1.0
    """
    if callable(loss):
        return getattr(loss, "__name__", type(loss).__name__), loss
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use one of {LOSSES} or a callable")
    if mode == "self-supervised" and "ssim" in loss:
        raise ValueError(
            f"loss {loss!r} needs whole patches, but self-supervised training compares single "
            "masked pixels; use 'mse' or 'l1'"
        )
    if loss == "mse":
        return loss, F.mse_loss
    if loss == "l1":
        return loss, F.l1_loss
    if loss == "balanced-mse":
        return loss, balanced_mse
    if loss == "hdr-mse":
        return loss, hdr_mse
    if loss == "ssim":
        return loss, ssim_loss

    def mse_ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (1 - ssim_weight) * F.mse_loss(pred, target) + ssim_weight * ssim_loss(pred, target)

    return loss, mse_ssim


def lr_factor(schedule: str, progress: float, warmup: float = 0.05) -> float:
    """Learning rate over its maximum at `progress` (0 to 1) of the run.

    ``"cosine"``: a linear warm-up over the first 5%, then a cosine decay to
    1% of the peak. ``"one-cycle"``: as ``torch.optim.lr_scheduler.OneCycleLR``
    (from 1/25 of the peak up to it over 30% of the run, then down to 1/25e4).
    ``"constant"``: the peak throughout.

    Examples
    --------
    >>> lr_factor("cosine", 0.05), round(lr_factor("one-cycle", 0.0), 3)
    (1.0, 0.04)
    """
    p = min(max(progress, 0.0), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "one-cycle":  # as torch's OneCycleLR: max/25 -> max (30%) -> max/25e4
        start, end, peak = 1 / 25, 1 / 25e4, 0.3
        if p < peak:
            return 1 + (start - 1) * 0.5 * (1 + math.cos(math.pi * p / peak))
        t = (p - peak) / (1 - peak)
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))
    floor = 0.01  # cosine with a short linear warm-up
    if p < warmup:
        return max(p / warmup, 0.01)
    t = (p - warmup) / (1 - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
