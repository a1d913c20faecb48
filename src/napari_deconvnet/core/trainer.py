"""The training loop as a small object: set-up, step, validate, keep-best, finish.

:func:`napari_deconvnet.train` checks and resolves its arguments
(:mod:`.training`) and hands them to a :class:`Trainer`, whose
:meth:`Trainer.run` generator yields :class:`TrainEvent` and returns a
:class:`TrainResult`. Each named step is a method, so that the order of the
loop reads in one place (:meth:`Trainer.run`):

1. ``setup`` (in ``__init__``): device, memory format, optimiser, the
   validation tensors, and the starting weights kept for L2-SP;
2. ``validate`` the *starting* model: its score is the bar to beat
   (self-supervised runs score by Stein's unbiased estimate of the MSE,
   :mod:`.sure`, where the noise allows it, else by the masked loss);
3. per epoch, ``step`` ``steps_per_epoch`` times, then ``validate`` and
   ``keep_best`` (and autosave);
4. ``finish``: the best weights (the starting ones when nothing beat them)
   on the CPU, with their metadata, and a plain-words verdict.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import torch

from ._validation import is_dask
from .devices import autocast, grad_scaler
from .generators import as_stop
from .losses import lr_factor
from .model import DeconvNet
from .patches import NeighbourPairs
from .sure import SureScore, significant, sure_score
from .train_types import TrainConfig, TrainEvent, TrainResult
from .trainset import TrainingSet

__all__ = ["SURE_MARGIN_Z", "TrainConfig", "TrainEvent", "TrainResult", "Trainer"]

#: A self-supervised checkpoint can replace the starting model only if its SURE
#: estimate is lower than the start's by this many standard errors of the
#: difference (over 16-pixel blocks of the validation patches): a model that is
#: not better by a margin the data can tell apart does not displace the start.
#: Among checkpoints that clear it, the lowest estimate wins.
SURE_MARGIN_Z = 2.0
#: Final weight of Neighbor2Neighbor's regulariser (reached at the end of the run).
NEIGHBOUR_GAMMA = 2.0


class _Ended(Exception):
    """A step that ends the run: ``reason`` and ``message`` as in TrainResult."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


class Trainer:
    """One training run: the network, its data, the optimiser and the record.

    Built by :func:`napari_deconvnet.train_iter` from checked arguments
    (:func:`.train_setup.build_trainer`), by :func:`napari_deconvnet.adapt`
    and by the scripts that train the shipped models; :meth:`run` is the
    loop. ``data`` has ``batch(n) -> (x, y, mask or None)`` tensors on the
    device and ``val``, a dict of fixed validation tensors or None.
    ``metadata`` is a callable that builds the result model's metadata from
    ``(config, history, best_entry, stop_reason, seconds, steps,
    improved)``. ``evaluate``, when given, replaces the validation on
    ``data.val``: ``evaluate(net) -> (loss, metrics)``, lower loss better
    (e.g. minus the PSNR of whole images restored as users restore them).
    With ``config.ema`` an exponential moving average of the weights is
    validated beside them, and the better of the two is kept.

    Self-supervised runs (``config.mode == "self-supervised"``) are scored
    by :mod:`.sure`'s unbiased estimate of the MSE against the unknown
    clean image, so that the best checkpoint is the best denoiser, not the
    lowest masked loss; ``validation_noise`` gives the noise parameters
    (as :func:`~.noise_estimation.estimate_noise` returns them), None
    estimates them from the data, False keeps the masked loss. Where the
    noise cannot be described (correlated, impulsive) the masked loss is
    kept and the result's message says why. ``config.validation_score``
    records the score used.
    """

    #: validations whose lower loss was refused because their SSIM fell below the start's
    ssim_rejections = 0

    def __init__(
        self,
        *,
        net: DeconvNet,
        data: TrainingSet,
        config: TrainConfig,
        device: torch.device,
        amp: torch.dtype,
        loss_fn: Callable,
        metadata: Callable[..., dict[str, Any]],
        stop: Any = None,
        preview: bool = True,
        autosave: Any = None,
        resume: dict[str, Any] | None = None,
        rehearsal: Any = None,
        evaluate: Callable[[DeconvNet], tuple[float, dict[str, float]]] | None = None,
        validation_noise: Any = None,
        started: float | None = None,
    ) -> None:
        # the clock of max_seconds: from `started` (time.perf_counter() when the
        # caller began its set-up, which then counts too), else from now
        self.start_time = time.perf_counter() if started is None else float(started)
        self.data, self.config, self.device, self.amp = data, config, device, amp
        self.loss_fn, self.make_metadata = loss_fn, metadata
        self.stop, self.want_preview, self.autosave = as_stop(stop), preview, autosave
        self.rehearsal = rehearsal  # a source of pairs the starting model knew, or None
        self.evaluate = evaluate
        self.fmt = torch.channels_last if net.config.ndim == 2 else torch.channels_last_3d
        self.net = net.to(device=device, memory_format=self.fmt)
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(
            self.params, lr=config.lr, weight_decay=0.0 if config.l2sp else config.weight_decay
        )
        # L2-SP: the starting weights, the point fine-tuning is pulled back to
        self.anchor = [p.detach().clone() for p in self.params] if config.l2sp else None
        self.ema = None
        if config.ema:
            self.ema = copy.deepcopy(self.net).eval()
            for p in self.ema.parameters():
                p.requires_grad_(False)
        self.scaler = grad_scaler(device) if amp == torch.float16 else None
        self.total_steps = config.epochs * config.steps_per_epoch if config.epochs else None
        self.val = data.val
        if self.val is not None:
            for key in ("x", "y", "mask"):
                if self.val[key] is not None:
                    self.val[key] = self.val[key].to(device).contiguous(memory_format=self.fmt)
        self.sure, self.sure_blocks = self._sure(validation_noise), {}
        self.start_blocks = None  # the starting model's SURE block means
        self.history: list[dict[str, Any]] = []
        self.step_count, self.epoch, self.since_best = 0, 0, 0
        self.seconds_before = 0.0  # time spent before a resume
        self.current_lr = config.lr * lr_factor(config.schedule, 0.0)
        self.best: dict[str, Any] = {}
        self.resumed = resume
        if resume is not None:
            self._load_resume(resume)

    def _sure(self, noise: Any) -> SureScore | None:
        """The SURE score of a self-supervised run, or None; sets ``validation_score``."""
        cfg = self.config
        if cfg.mode != "self-supervised" or self.evaluate is not None:
            cfg.validation_score = cfg.validation_score or (
                "evaluate" if self.evaluate is not None else "loss"
            )
            return None
        masked = "the masked Noise2Void loss"
        if self.val is None:
            cfg.validation_score = "none"
            return None
        if noise is False:
            cfg.validation_score = f"{masked} (validation_noise=False)"
            return None
        if self.val["x"].shape[1] != 1:
            # the network also sees a noise map computed from its input: the
            # estimate's divergence would need the map's too
            cfg.validation_score = f"{masked}, because the network takes a noise map"
            return None
        # the noise is measured on the inputs, or on the validation patches already
        # read where reading more would be costly (dask) or they are other data
        arrays = [None if is_dask(s.x) else s.x for s in self.data.sources]
        if cfg.validation == "data":
            arrays = []
        score, text = sure_score(
            self.val,
            arrays,
            noise=noise or None,
            denoise=self._restore_sample if cfg.fine_tuning else None,
            seed=cfg.seed + 2,
            batch_size=cfg.batch_size,
        )
        cfg.validation_score = text if score is not None else f"{masked}, because {text}"
        return score

    def _restore_sample(self, image: np.ndarray, source: int) -> np.ndarray:
        """The starting network's restoration of planes ``(P, H, W)`` of a source."""
        import torch.nn.functional as F

        src = self.data.sources[source] if source < len(self.data.sources) else None
        off, sc = (src.offset, src.scale) if src is not None else (0.0, 1.0)
        x = torch.from_numpy(((image - off) / sc).astype(np.float32)).to(self.device)
        x = x[:, None] if self.net.config.ndim == 2 else x[None, None]
        grid = self.net.config.grid
        pads = []
        for n in reversed(x.shape[2:]):
            pads += [0, -n % grid]
        training = self.net.training
        self.net.eval()
        with torch.no_grad():
            out = self.net(F.pad(x, pads, mode="replicate")).float()
        self.net.train(training)
        out = out[(..., *[slice(0, n) for n in x.shape[2:]])]
        return out.reshape(image.shape).cpu().numpy().astype(np.float64) * sc + off

    @property
    def validated(self) -> bool:
        """Whether the run has a validation (a split of the data or ``evaluate``)."""
        return self.val is not None or self.evaluate is not None

    # ------------------------------------------------------------ clock

    @property
    def elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self.start_time

    def progress_at(self, step: int) -> tuple[float, float, float | None]:
        elapsed = self.elapsed
        parts = [step / self.total_steps] if self.total_steps else []
        parts += [elapsed / self.config.max_seconds] if self.config.max_seconds else []
        progress = min(max(parts), 1.0)
        eta = elapsed / progress * (1 - progress) if progress > 0 else None
        return elapsed, progress, eta

    def event(self, kind: str, **fields: Any) -> TrainEvent:
        elapsed, progress, eta = self.progress_at(self.step_count)
        if kind == "end":
            progress, eta = 1.0, 0.0
        return TrainEvent(
            kind,
            self.step_count,
            self.epoch,
            elapsed,
            progress,
            eta,
            self.current_lr,
            history=self.history,
            **fields,
        )

    # ------------------------------------------------------------ the loop

    def run(self) -> Generator[TrainEvent, None, TrainResult]:
        if self.resumed is None:
            try:
                val_loss, metrics, shown = self.validate()
            except _Ended:
                raise ValueError(
                    "the starting network's output on the validation patches is not "
                    "finite (NaN or infinite); start from another model, or check the data"
                ) from None
            self.record(None, val_loss, metrics, baseline=True)
            self.best = {"loss": val_loss, "epoch": 0, "state": _state(self.net)}
            self.start_blocks = self.sure_blocks.get("raw")
            if self.autosave is not None:
                # the best so far is the start: written now, so that the file exists and
                # is this run's (not an earlier run's) when nothing ever beats it
                self.autosave.save_best(self)
            message = "validated the initial model"
            if self.config.mode == "self-supervised" and self.validated:
                message += f" ({self._score_words()})"
        else:
            self._check_resumed_scores()
            val_loss, metrics, shown = self.history[-1].get("val_loss"), {}, None
            message = f"resumed at step {self.step_count}, epoch {self.epoch}"
        yield self.event(
            "start",
            val_loss=val_loss,
            metrics=metrics,
            preview=shown,
            model=self.net,
            message=message,
        )
        self.net.train()
        reason, message = "epochs", ""
        spe, steps_before = self.config.steps_per_epoch, self.step_count
        while True:
            if self.total_steps is not None and self.step_count >= self.total_steps:
                reason, message = "epochs", self._finished_words(steps_before)
                break
            self.epoch += 1
            running: list[float] = []
            ended = None
            try:
                # an epoch cut short by a stop (then resumed) is followed by one that
                # ends where the uninterrupted run's would: epochs x steps_per_epoch
                # steps in all, validated at the same steps
                for _ in range(spe - self.step_count % spe):
                    running.append(self.step())
                    yield self.event("step", train_loss=running[-1], model=self.net)
            except _Ended as end:
                ended = end
            if ended is not None and ended.reason == "non-finite loss":
                running = []  # the weights that gave it are broken: neither scored nor kept
            if running:
                try:
                    if not self.validated:
                        self.check_output()
                    val_loss, metrics, shown = self.validate()
                except _Ended as end:  # broken weights: the epoch is neither scored nor kept
                    ended, running = end, []
            if ended is not None and ended.reason == "non-finite loss":
                ended.message = (
                    f"training stopped: {ended.message} (try a lower lr, clip_norm or "
                    "another loss); the best model so far is kept"
                )
                # (a RuntimeWarning, not a RunWarning: the Train widget shows the result's
                # message, which says it; relayed too, it was said twice, review)
                warnings.warn(ended.message, RuntimeWarning, stacklevel=3)
            if running:
                train_loss = float(np.mean(running))
                self.record(train_loss, val_loss, metrics)
                self.keep_best(
                    val_loss if self.validated else train_loss,
                    metrics.get("ema_val_loss"),
                    ssim=metrics.get("val_ssim"),
                    ema_ssim=metrics.get("ema_val_ssim"),
                )
                yield self.event(
                    "epoch",
                    train_loss=train_loss,
                    val_loss=val_loss,
                    metrics=metrics,
                    preview=shown,
                    model=self.net,
                )
            else:
                self.epoch -= 1
            if ended is not None:
                reason, message = ended.reason, ended.message
                break
            patience = self.config.patience
            if patience is not None and self.since_best >= patience:
                reason, message = "early stopping", f"no improvement for {patience} epochs"
                break
        result = self.finish(reason, message)
        yield self.event(
            "end",
            val_loss=self.kept_entry().get("val_loss"),
            model=result.model,
            message=result.message,
        )
        return result

    # ------------------------------------------------------------ named steps

    def step(self) -> float:
        """One optimisation step; returns its loss, raises _Ended to end the run."""
        cfg = self.config
        if self.stop is not None and self.stop.is_set():
            raise _Ended("stopped", f"stopped by the user after {self.step_count} steps")
        elapsed, progress, _eta = self.progress_at(self.step_count)
        if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
            raise _Ended("max_seconds", f"reached the time budget of {cfg.max_seconds:g} s")
        self.current_lr = cfg.lr * lr_factor(cfg.schedule, progress)
        for group in self.opt.param_groups:
            group["lr"] = self.current_lr
        x, y, mask = self.data.batch(cfg.batch_size)
        self.last_batch = x
        extra = None
        if self.rehearsal is not None:
            xr, yr, _ = self.rehearsal.batch(max(1, round(cfg.rehearsal * cfg.batch_size)))
            if mask is None:  # one batch: the user's patches and the rehearsed ones
                x, y = torch.cat([x, xr]), torch.cat([y, yr])
            else:
                extra = (xr, yr)
        if isinstance(mask, NeighbourPairs):
            value = self.neighbour_loss(x, mask, progress)
        else:
            with autocast(self.device, self.amp):
                out = self.net(x.contiguous(memory_format=self.fmt))
            value = self.compute_loss(out.float(), y, mask)
        if extra is not None:  # self-supervised: a supervised term beside the masked loss
            with autocast(self.device, self.amp):
                rehearsed = self.net(extra[0].contiguous(memory_format=self.fmt))
            value = value + cfg.rehearsal * self.loss_fn(rehearsed.float(), extra[1])
        if not (torch.is_tensor(value) and value.numel() == 1):  # a loss= callable's own
            got = type(value).__name__
            if torch.is_tensor(value):
                got += f" of shape {tuple(value.shape)}"
            raise TypeError(
                f"the loss must be a scalar tensor (differentiable), got {got}; a loss= "
                "callable takes (output, target) tensors and returns their mean loss"
            )
        loss_value = float(value.detach())
        if not math.isfinite(loss_value):
            raise _Ended(
                "non-finite loss", f"the loss became {loss_value} at step {self.step_count + 1}"
            )
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(value).backward()
            self.scaler.unscale_(self.opt)
        else:
            value.backward()
        if cfg.clip_norm is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(self.params, cfg.clip_norm))
            if self.scaler is None and not math.isfinite(norm):
                raise _Ended(
                    "non-finite loss", f"the gradients became {norm} at step {self.step_count + 1}"
                )
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        if self.anchor is not None:
            # decoupled L2-SP (as AdamW decouples weight decay): pull every weight
            # back toward its starting value by lr * l2sp of the distance
            with torch.no_grad():
                pull = -min(self.current_lr * cfg.l2sp, 1.0)  # never past the start
                for p, p0 in zip(self.params, self.anchor, strict=True):
                    p.add_(p - p0, alpha=pull)
        self.step_count += 1
        if self.ema is not None:
            self.update_ema()
        return loss_value

    def update_ema(self) -> None:
        """Move the averaged weights toward the current ones (the decay warms up)."""
        decay = min(self.config.ema, (1 + self.step_count) / (10 + self.step_count))
        with torch.no_grad():
            for pe, pm in zip(self.ema.parameters(), self.net.parameters(), strict=True):
                pe.lerp_(pm, 1 - decay)
            for be, bm in zip(self.ema.buffers(), self.net.buffers(), strict=True):
                be.copy_(bm)

    def neighbour_loss(self, x: torch.Tensor, pairs: NeighbourPairs, progress: float):
        """Neighbor2Neighbor's loss [1]_ on a batch of whole noisy patches.

        The network maps the first sub-image to the second (the training
        loss), and a regulariser asks its error there to match the
        difference of the same two sub-images of its output on the whole
        patch (computed without gradients): on noise-free data the two
        sub-images differ only by the scene's own step between neighbours,
        which the regulariser keeps the network from blurring into its
        output. Its weight grows linearly with the run's progress to
        :data:`NEIGHBOUR_GAMMA`, as in the paper.

        References
        ----------
        .. [1] T. Huang, S. Li, X. Jia, H. Lu and J. Liu, "Neighbor2Neighbor:
               Self-Supervised Denoising from Single Noisy Images", CVPR 2021.
        """
        first, second = pairs.take(x, 0), pairs.take(x, 1)
        with autocast(self.device, self.amp):
            out = self.net(first.contiguous(memory_format=self.fmt)).float()
            with torch.no_grad():
                whole = self.net(x.contiguous(memory_format=self.fmt)).float()
        gap = pairs.take(whole, 0) - pairs.take(whole, 1)
        gamma = NEIGHBOUR_GAMMA * min(max(progress, 0.0), 1.0)
        return self.loss_fn(out, second) + gamma * torch.mean((out - second - gap) ** 2)

    def compute_loss(self, pred, target, mask):
        if mask is not None:
            return self.loss_fn(pred[mask], target[mask])
        return self.loss_fn(pred, target)

    def check_output(self) -> None:
        """Raise _Ended when the network's output on the last training batch is not
        finite (a run without validation scores its weights by nothing else)."""
        training = self.net.training
        self.net.eval()
        with torch.no_grad(), autocast(self.device, self.amp):
            out = self.net(self.last_batch.contiguous(memory_format=self.fmt)).float()
        self.net.train(training)
        if not (torch.isfinite(out).all() and math.isfinite(float(out.square().mean()))):
            raise self._diverged()

    def _diverged(self) -> _Ended:
        """The end of a run whose weights no longer give a finite output."""
        return _Ended(
            "non-finite loss", f"the network's output became non-finite after step "
            f"{self.step_count}",
        )  # fmt: skip

    def validate(self) -> tuple[float | None, dict[str, float], dict | None]:
        """Loss (and PSNR/SSIM with targets) on the validation; ``ema_*`` for the average."""
        loss, metrics, shown = self.score(self.net)
        if self.ema is not None and loss is not None:
            ema_loss, ema_metrics, _ = self.score(self.ema, preview=False)
            metrics = {**metrics, "ema_val_loss": ema_loss}
            metrics.update({f"ema_{k}": v for k, v in ema_metrics.items()})
        return loss, metrics, shown

    def score(
        self, net: DeconvNet, preview: bool = True
    ) -> tuple[float | None, dict[str, float], dict | None]:
        """`net`'s validation loss, metrics and preview (``evaluate``'s when given)."""
        training = net.training
        if self.evaluate is not None:
            net.eval()
            try:
                loss, metrics = self.evaluate(net)
            finally:
                net.train(training)
            return float(loss), dict(metrics), None
        val = self.val
        if val is None:
            return None, {}, None
        bs = self.config.batch_size
        net.eval()
        total, outputs, n = 0.0, [], val["x"].shape[0]
        with torch.no_grad():
            for i in range(0, n, bs):
                part = slice(i, i + bs)
                with autocast(self.device, self.amp):
                    pred = net(val["x"][part]).float()
                outputs.append(pred)
                mask = None if val["mask"] is None else val["mask"][part]
                total += float(self.compute_loss(pred, val["y"][part], mask)) * len(pred)
        pred = torch.cat(outputs)
        if not (math.isfinite(total) and bool(torch.isfinite(pred).all())):
            raise self._diverged()
        supervised = self.config.mode != "self-supervised"
        try:
            metrics = _metrics(pred, val["y"]) if supervised else {}
        except ValueError:  # values too large for SSIM's squares: diverged as well
            raise self._diverged() from None
        loss = total / n
        if self.sure is not None:
            try:
                mse, blocks = self.sure(net)
            finally:
                net.train(training)
            self.sure_blocks["ema" if net is self.ema else "raw"] = blocks
            # the estimate can come out negative when it is noisier than the MSE is small
            metrics = {"val_masked_loss": loss}
            if mse > 0:
                metrics["val_psnr_sure"] = -10 * math.log10(mse)
            loss = mse
        net.train(training)
        shown = _preview(val, pred, self.config.mode) if self.want_preview and preview else None
        return loss, metrics, shown

    def record(self, train_loss, val_loss, metrics, baseline: bool = False) -> None:
        entry = {
            "epoch": self.epoch,
            "step": self.step_count,
            "train_loss": train_loss,
            "val_loss": val_loss,
            **metrics,
            "lr": self.current_lr,
            "seconds": round(self.elapsed, 3),
        }
        if baseline and self.val is not None and self.config.mode != "self-supervised":
            image = self.val["x"][:, :1]  # the image, not a noise map beside it
            input_metrics = _metrics(image.float(), self.val["y"])
            entry.update({f"input_{k}": v for k, v in input_metrics.items()})
        self.history.append(entry)

    def keep_best(
        self,
        score: float,
        ema_score: float | None = None,
        *,
        ssim: float | None = None,
        ema_ssim: float | None = None,
    ) -> None:
        """Keep the weights (or their average) if they beat the best so far, the start too.

        With ``config.ssim_floor`` (supervised training on the user's clean
        targets), weights whose validation SSIM is below the starting
        model's are not kept however low their loss: a fine-tuned model is
        never worse than its start in PSNR or in SSIM (a lower MSE can come
        with smoother detail and a lower SSIM).
        """
        floor = self.history[0].get("val_ssim") if self.config.ssim_floor else None
        candidates = [(score, ssim, self.net, "raw")]
        if ema_score is not None and self.ema is not None:
            candidates.append((ema_score, ema_ssim, self.ema, "ema"))
        allowed, refused = [], []
        for c in candidates:
            (allowed if floor is None or c[1] is None or c[1] >= floor else refused).append(c)
        best_loss = self.best.get("loss")
        if any(best_loss is None or c[0] < best_loss for c in refused):
            self.ssim_rejections += 1  # a lower loss, refused for its SSIM
        better = False
        if allowed:
            score, _, net, weights = min(allowed, key=lambda c: c[0])
            blocks = self.sure_blocks.get(weights) if self.sure is not None else None
            better = best_loss is None or score < best_loss
            if better and blocks is not None and self.start_blocks is not None:
                # beat the start by more than the estimate's own uncertainty
                better = significant(blocks, self.start_blocks, SURE_MARGIN_Z)
        if better:
            self.best = {
                "loss": score,
                "epoch": self.epoch,
                "state": _state(net),
                "weights": weights,
            }
            self.since_best = 0
            if self.autosave is not None:
                self.autosave.save_best(self)
        else:
            self.since_best += 1
        if self.autosave is not None:
            self.autosave.save_state(self)

    def _finished_words(self, steps_before: int) -> str:
        """Why a run ends at its step budget, in words (a resumed run may have had
        nothing left to do)."""
        epochs = self.config.epochs
        if self.step_count > steps_before or steps_before == 0:
            text = f"finished {epochs} epochs ({self.step_count} steps)"
            recorded = self.history[-1]["epoch"] if self.history else epochs
            if recorded != epochs:  # (session 73: "4 epochs" beside a record of 5)
                text += (
                    f", recorded as {recorded} validated epochs (the part of an epoch before "
                    "a stop counts as one)"
                )
            return text
        return (
            f"nothing left to do: the run had taken {self.step_count} steps already, "
            f"as many as epochs={epochs} of {self.config.steps_per_epoch} steps ask for"
        )

    def finish(self, reason: str, message: str) -> TrainResult:
        """The best network on the CPU, its metadata and a plain-words verdict."""
        if not self.validated and reason == "non-finite loss":
            # no validation, and the last weights are broken: the epoch with the
            # lowest training loss (the start when none finished) is returned
            improved = None
        elif not self.validated:  # no validation: the last (good) weights
            self.best = {
                "loss": None,
                "epoch": self.history[-1]["epoch"],
                "state": _state(self.net),
            }
            improved = None
            if self.autosave is not None:  # the autosave holds what is returned
                self.autosave.save_best(self)
        else:
            improved = self.best["epoch"] > 0
        best_entry = self.kept_entry()
        verdict = self.verdict(improved, best_entry)
        if not self.validated and reason == "non-finite loss":
            kept = self.best["epoch"]
            verdict = "no validation split, so " + (
                f"the weights of epoch {kept} (the lowest training loss) are returned"
                if kept
                else "the starting weights are returned (no epoch finished before it)"
            )
        message = f"{message}; {verdict}" if message else verdict
        net = self.result_network()
        net.metadata = self.make_metadata(
            config=self.config,
            history=self.history,
            best_entry=best_entry,
            stop_reason=reason,
            seconds=self.elapsed,
            steps=self.step_count,
            improved=improved,
        )
        return TrainResult(
            model=net.eval(),
            history=self.history,
            config=self.config,
            best_epoch=self.best["epoch"],
            stop_reason=reason,
            message=message,
            seconds=round(self.elapsed, 3),
            steps=self.step_count,
            improved=improved,
        )

    def kept_entry(self) -> dict[str, Any]:
        """The history entry of the best epoch with the scores of the weights kept: its
        ``ema_*`` scores as the plain ones when the moving average won (the model file,
        the "end" event and the widget gave the raw weights' scores beside EMA weights)."""
        entry = next(h for h in self.history if h["epoch"] == self.best["epoch"])
        if self.best.get("weights") != "ema":
            return entry
        return {**entry, **{k[4:]: v for k, v in entry.items() if k.startswith("ema_")}}

    def result_network(self) -> DeconvNet:
        with torch.random.fork_rng(devices=[]):  # (its random weights are overwritten: the
            net = DeconvNet(self.net.config)  # caller's torch random stream moved, s70)
        net.load_state_dict(self.best["state"])
        return net

    def verdict(self, improved: bool | None, best_entry: dict[str, Any]) -> str:
        start = self.history[0]
        starting = "the starting model" if self.config.fine_tuning else "the initial network"
        if improved is None:
            return "no validation split, so the last weights are returned"
        what = "estimated MSE" if self.sure is not None else "loss"
        fmt = _fmt_sure if self.sure is not None else _fmt
        if not improved:
            text = (
                f"nothing beat {starting} on the validation split ({what} "
                f"{fmt(start['val_loss'])}), so it is returned unchanged"
            )
            if self.ssim_rejections:
                text += (
                    f" ({self.ssim_rejections} validation(s) had a lower {what} but a "
                    f"lower SSIM than {starting}, {start['val_ssim']:.3f}, and were not kept)"
                )
        else:
            # the scores of the weights kept: their moving average's when it won
            ema = self.best.get("weights") == "ema"
            prefix = "ema_" if ema else ""

            def kept(key: str) -> Any:
                return best_entry.get(prefix + key, best_entry.get(key))

            text = (
                f"the model improved on {starting}: validation {what} "
                f"{fmt(start['val_loss'])} -> {fmt(kept('val_loss'))}"
            )
            for key, label in (("val_psnr", "PSNR"), ("val_psnr_sure", "estimated PSNR")):
                if key in start and kept(key) is not None:
                    change = kept(key) - start[key]
                    text += f" ({label} {change:+.2f} dB"
                    if key == "val_psnr" and change <= -0.005:  # (a lower loss with a
                        # lower mean patch PSNR read as a contradiction; not SURE's, whose
                        # PSNR is of the same pooled error as its loss, review)
                        text += (
                            f": the {what} over all the validation pixels fell, the mean of "
                            f"the patches' {label}s did not; compare the restored images"
                        )
                    text += ")"
            if ema:
                text += " with the weights' moving average (EMA)"
            if self.ssim_rejections:
                text += (
                    f"; {self.ssim_rejections} validation(s) with a lower {what} but an SSIM "
                    f"below {starting}'s were not kept"
                )
        if self.config.mode != "self-supervised":
            return text
        text += f"; validation score: {self._score_words()}"
        if self.sure is None and self.config.fine_tuning:
            # a model trained without a blind spot sees the neighbour copied into
            # each masked pixel, so the masked loss understates how well it denoises
            text += (
                "; the masked loss favours blind-spot training over a model trained on "
                "clean targets, so compare the restored images too"
            )
        return text

    def _score_words(self) -> str:
        """What the validation score is, in plain words."""
        if self.sure is not None:
            return (
                f"Stein's unbiased estimate of the MSE (SURE), "
                f"{self.config.validation_score.removeprefix('SURE ')}"
            )
        return self.config.validation_score or "the masked Noise2Void loss"

    # ------------------------------------------------------------ resume

    def _load_resume(self, state: dict[str, Any]) -> None:
        """Continue a run from :func:`.checkpoint.read_resume`'s record."""
        try:  # weights of another shape, or missing: torch's RuntimeError
            self.net.load_state_dict(state["weights"])
            if state.get("best_weights"):
                self.net.load_state_dict(state["best_weights"])  # (checked, then set back)
                self.net.load_state_dict(state["weights"])
        except RuntimeError as err:
            raise ValueError(
                f"{state['path']}: the resume file's weights do not fit this network: "
                f"{str(err).strip().splitlines()[-1].strip()}"
            ) from None
        if state.get("optimizer") is not None:
            try:
                self.opt.load_state_dict(state["optimizer"])
            except (ValueError, KeyError, RuntimeError) as err:
                raise ValueError(
                    f"the resume file's optimiser state does not fit this network: {err}"
                ) from err
            _check_moments(self.opt, state["path"])
        self.step_count = int(state["step"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.seconds_before = float(state.get("seconds", 0.0))
        self.since_best = int(state.get("since_best", 0))
        self.best = {
            "loss": state.get("best_loss"),
            "epoch": int(state.get("best_epoch", 0)),
            "state": state.get("best_weights") or _state(self.net),
            "weights": state.get("best_kind", "raw"),
        }
        if self.ema is not None:
            self.ema.load_state_dict(state.get("ema_weights") or state["weights"])
        if self.sure is not None and state.get("start_blocks") is not None:
            # checkpoints after the resume must still beat the start significantly
            self.start_blocks = state["start_blocks"].to(self.device)
        if self.history:
            self.current_lr = float(self.history[-1].get("lr") or self.current_lr)

    #: How far the best checkpoint's validation loss may move between the interrupted
    #: run and its resume (the same patches: rounding, another device's arithmetic)
    RESUME_SCORE_TOLERANCE = 0.01

    def _check_resumed_scores(self) -> None:
        """The best checkpoint of the resume file scores on this run's validation as it
        did on the interrupted run's, or ValueError.

        The start's score and the best kept are the interrupted run's numbers: a
        resume on other images (or other regions, validation or seed) compared
        checkpoints scored on the new data with them and returned a "best" never
        scored on it (``improved=True`` where every new epoch was worse).
        """
        recorded = self.best.get("loss")
        had = any(entry.get("val_loss") is not None for entry in self.history)
        if had and not self.validated:
            # (validation=None on resume dropped the interrupted run's best model and
            # its never-worse promise, and returned the last weights without a word)
            raise ValueError(
                f"{self.resumed.get('path', 'the resume file')} was saved by a run with a "
                "validation split, but this run has none (validation=None); resume with "
                "the same validation, or start a new run"
            )
        if recorded is None or not self.validated:  # (no split then and now: as it was)
            return
        current = _state(self.net)
        try:
            self.net.load_state_dict(self.best["state"])
            loss, _, _ = self.score(self.net, preview=False)
        finally:
            self.net.load_state_dict(current)
        if loss is None or math.isclose(
            loss, recorded, rel_tol=self.RESUME_SCORE_TOLERANCE, abs_tol=1e-12
        ):
            return
        raise ValueError(
            f"{self.resumed.get('path', 'the resume file')} was saved by a run on other "
            f"data: its best model scores {loss:.4g} on this run's validation patches where "
            f"it scored {recorded:.4g}; resume with the same images, regions, validation "
            "and seed, or start a new run (pass model= that file to fine-tune it)"
        )


def _check_moments(opt: torch.optim.Optimizer, path: str) -> None:
    """Each loaded optimiser moment has its parameter's shape: one of another shape
    broadcast silently (a (1,) moment for a (96,) bias trained on)."""
    for group in opt.param_groups:
        for param in group["params"]:
            for name, value in opt.state.get(param, {}).items():
                if name != "step" and torch.is_tensor(value) and value.shape != param.shape:
                    raise ValueError(
                        f"{path}: the resume file's optimiser state does not fit this "
                        f"network: its {name} has shape {tuple(value.shape)} for a parameter "
                        f"of shape {tuple(param.shape)}"
                    )


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _fmt_sure(value: Any) -> str:
    """A SURE estimate of the MSE in words: one at or below zero is an error smaller
    than the estimate can resolve (session 73: "estimated MSE -2.221e-06" after a
    fine-tuning, as the noise variance it rests on, estimated 5% high, lowers it by
    more than a good denoiser's error; its differences between models stay sound)."""
    if value is None or not math.isfinite(value) or value > 0:
        return _fmt(value)
    return f"~0 (read {value:.2g}: below what the estimated noise level lets SURE resolve)"


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
