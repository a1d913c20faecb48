"""Autosave and resume of a training run: safetensors tensors with a JSON record, no pickle.

``dn.train(..., autosave="run.safetensors")`` writes two files, each
atomically (a temporary file in the same folder, flushed, then renamed):

- ``run.safetensors``: the best model so far, an ordinary model file that
  :func:`napari_deconvnet.load_model` opens, rewritten whenever the
  validation score improves;
- ``run.resume.safetensors``: what a resume needs, rewritten after every
  epoch: the current and the best weights, the AdamW moments (and the
  weights' moving average, with ``ema``), and in the header's JSON the step
  and epoch counters, the history, the clock and the settings it was
  trained with.

``dn.train(..., resume="run.safetensors")`` (either file's path) continues
that run: the step and epoch counts go on, the optimiser keeps its moments,
the learning-rate schedule continues where it was, and ``epochs`` /
``max_seconds`` count the whole run, the part before the interruption
included.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .persistence import save_model, write_atomic

__all__ = ["Autosave", "autosave_for", "model_path", "read_resume", "resume_path"]

_KEY = "napari_deconvnet_resume"
_FORMAT_VERSION = 1


def resume_path(path: str | os.PathLike) -> Path:
    """The resume file beside model file `path` (``x.safetensors`` -> ``x.resume.safetensors``)."""
    path = Path(path)
    if path.name.endswith(".resume.safetensors"):
        return path
    return path.with_name(path.name.removesuffix(".safetensors") + ".resume.safetensors")


def model_path(path: str | os.PathLike) -> Path:
    """The model file beside resume file `path` (``x.resume.safetensors`` -> ``x.safetensors``);
    a model file's path as it is."""
    path = Path(path)
    if path.name.endswith(".resume.safetensors"):
        return path.with_name(path.name.removesuffix(".resume.safetensors") + ".safetensors")
    return path


def _check_path(path: Any, name: str) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name} must be a path ending in .safetensors, got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{name} must end in .safetensors (no pickle), got {path.name!r}")
    return path


class Autosave:
    """Writes the best model and the resume state of a :class:`~.trainer.Trainer`."""

    def __init__(self, path: Any) -> None:
        self.path = _check_path(path, "autosave")
        self.resume = resume_path(self.path)

    def save_best(self, trainer: Any) -> None:
        net = trainer.result_network()
        best_entry = trainer.kept_entry()  # the kept weights' scores (EMA's when it won)
        net.metadata = trainer.make_metadata(
            config=trainer.config,
            history=trainer.history,
            best_entry=best_entry,
            stop_reason="autosave",
            seconds=trainer.elapsed,
            steps=trainer.step_count,
            improved=trainer.best["epoch"] > 0 if trainer.validated else None,
        )
        save_model(net, self.path)

    def save_state(self, trainer: Any) -> None:
        from safetensors.torch import save as serialize

        tensors: dict[str, torch.Tensor] = {}
        for key, value in trainer.net.state_dict().items():
            tensors[f"net.{key}"] = value.detach().to("cpu").contiguous().clone()
        for key, value in trainer.best["state"].items():
            tensors[f"best.{key}"] = value.contiguous()
        if trainer.ema is not None:
            for key, value in trainer.ema.state_dict().items():
                tensors[f"ema.{key}"] = value.detach().to("cpu").contiguous().clone()
        start_blocks = getattr(trainer, "start_blocks", None)
        if start_blocks is not None:  # the start's SURE block means: "beat the start" goes on
            tensors["sure.start_blocks"] = start_blocks.detach().to("cpu").contiguous().clone()
        opt = trainer.opt.state_dict()
        for index, entry in opt["state"].items():
            for name, value in entry.items():
                tensors[f"opt.{index}.{name}"] = (
                    torch.as_tensor(value).detach().cpu().contiguous().clone()
                )
        groups = [{**g, "betas": list(g.get("betas", ()))} for g in opt["param_groups"]]
        record = {
            "format_version": _FORMAT_VERSION,
            "step": trainer.step_count,
            "epoch": trainer.epoch,
            "seconds": trainer.elapsed,
            "since_best": trainer.since_best,
            "best_epoch": trainer.best["epoch"],
            "best_loss": trainer.best["loss"],
            "best_kind": trainer.best.get("weights", "raw"),
            "history": trainer.history,
            "param_groups": groups,
            "settings": _settings(trainer.config),
            "network": trainer.net.config.to_dict(),
        }
        text = json.dumps(record, default=_plain)
        write_atomic(self.resume, serialize(tensors, metadata={_KEY: text}))


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _settings(config: Any) -> dict[str, Any]:
    keep = ("mode", "patch_size", "loss", *_TUNABLE)
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in config.to_dict().items() if k in keep
    }


#: Settings a resumed run may change (a lower learning rate, say), with a warning
_TUNABLE = ("batch_size", "steps_per_epoch", "lr", "schedule", "weight_decay", "ema")


def changed_settings(state: dict[str, Any], config: Any) -> list[str]:
    """The settings of :data:`_TUNABLE` in which a resumed run's `config` differs from the
    interrupted run's (its resume `state`), as ``"lr 0.0005 (was 0.001)"``; settings the
    resume file does not hold (older files) are not compared."""
    theirs, ours = state.get("settings", {}), _settings(config)
    return [
        f"{k} {ours.get(k)!r} (was {theirs[k]!r})"
        for k in _TUNABLE
        if k in theirs and theirs[k] != ours.get(k)
    ]


def autosave_for(autosave: Any, resume: Any) -> Autosave | None:
    """The :class:`Autosave` of a run (it checks the path): `autosave`, or, for a run
    resumed without one, the model file it resumed from (also when `resume` names
    the ``.resume.safetensors`` file). Without that a second crash lost everything
    after the first (the README's ``resume=`` example)."""
    if autosave is None and isinstance(resume, str | os.PathLike):
        autosave = model_path(resume)
    return None if autosave is None else Autosave(autosave)


def read_resume(path: Any) -> dict[str, Any]:
    """The record :meth:`~.trainer.Trainer._load_resume` continues from.

    `path` is the autosave's model file or its ``.resume.safetensors``.
    """
    from safetensors import SafetensorError, safe_open

    path = _check_path(path, "resume")
    state_file = resume_path(path)
    if not state_file.exists():
        model_file = model_path(path)
        hint = f" ({model_file} holds the best model; load it with dn.load_model)"
        if path.name.endswith(".adapt.safetensors"):  # (it was called "the best model")
            run = path.with_name(path.name.removesuffix(".adapt.safetensors") + ".safetensors")
            hint = f" ({path} is an adaptation's record: resume from {run})"
        raise ValueError(
            f"no resume state at {state_file}: resume needs the files a run with "
            f"autosave= wrote{hint if model_file.exists() else ''}"
        )
    try:
        with safe_open(str(state_file), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(f"{state_file} is not a readable resume file: {err}") from err
    if _KEY not in meta:
        raise ValueError(f"{state_file} is not a napari-deconvnet resume file")
    try:
        record = json.loads(meta[_KEY])
    except json.JSONDecodeError as err:
        raise ValueError(f"{state_file} has a corrupt resume record: {err}") from err
    _check_record(record, tensors, state_file)
    weights = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            opt_state.setdefault(int(index), {})[name] = value
    groups = [{**g, "betas": tuple(g["betas"])} for g in record["param_groups"]]
    return {
        **record,
        "path": str(state_file),
        "weights": weights,
        "best_weights": best or None,
        "ema_weights": ema or None,
        "start_blocks": tensors.get("sure.start_blocks"),
        "optimizer": {"state": opt_state, "param_groups": groups},
    }


def _count(value: Any) -> bool:
    """A non-negative integer of JSON (not a bool, not a float)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _check_record(record: Any, tensors: dict[str, torch.Tensor], state_file: Path) -> None:
    """Refuse a resume record or tensors a run cannot continue from, naming the entry.

    Session 59 edited each entry of a resume file: a missing ``step`` or
    ``history`` raised ``KeyError``, odd values ``int()``'s or
    ``float()``'s own messages, a ``best_epoch`` without its history entry
    "generator raised StopIteration" at the next autosave, NaN weights
    trained on without a word and weights of another shape raised torch's
    ``RuntimeError``.
    """

    def bad(what: str) -> ValueError:
        return ValueError(
            f"{state_file} has a corrupt resume record ({what}); start the run again, or "
            "keep the best model it saved (load it with dn.load_model)"
        )

    if not isinstance(record, dict):
        raise bad(f"a JSON {type(record).__name__}, not an object")
    version = record.get("format_version", _FORMAT_VERSION)
    if not _count(version) or version > _FORMAT_VERSION:
        raise bad(
            f"format_version {version!r}; this napari-deconvnet reads up to {_FORMAT_VERSION}"
        )
    for key in ("step", "epoch"):
        if not _count(record.get(key)):
            raise bad(f"{key} must be a non-negative integer, got {record.get(key)!r}")
    for key in ("since_best", "best_epoch"):
        if key in record and not _count(record[key]):
            raise bad(f"{key} must be a non-negative integer, got {record[key]!r}")
    seconds = record.get("seconds", 0.0)
    if not _real(seconds) or not 0 <= seconds < float("inf"):
        raise bad(f"seconds must be a finite number >= 0, got {seconds!r}")
    if record.get("best_loss") is not None and not _real(record["best_loss"]):
        raise bad(f"best_loss must be a number or null, got {record['best_loss']!r}")
    if record.get("best_kind", "raw") not in ("raw", "ema"):
        raise bad(f"best_kind must be 'raw' or 'ema', got {record.get('best_kind')!r}")
    history = record.get("history")
    if not isinstance(history, list) or not all(
        isinstance(h, dict) and _count(h.get("epoch")) for h in history
    ):
        raise bad("history must be a list of epoch entries, each with its epoch number")
    if record["epoch"] > 0 and not history:
        raise bad(f"an empty history after epoch {record['epoch']}")
    best = record.get("best_epoch", 0)
    if best and best not in {h["epoch"] for h in history}:
        raise bad(f"best_epoch {best} has no entry in the history")
    groups = record.get("param_groups")
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and _real(g.get("lr")) and isinstance(g.get("betas"), list)
        for g in groups
    ):
        raise bad("param_groups must be the optimiser's groups, each with lr and betas")
    for key in ("settings", "network"):
        if not isinstance(record.get(key), dict):
            raise bad(f"{key} must be an object, got {record.get(key)!r:.40}")
    for key, value in tensors.items():
        parts = key.split(".", 2)
        if key.startswith("opt.") and (len(parts) != 3 or not parts[1].isdigit()):
            raise bad(f"optimiser tensor {key!r} is not opt.<index>.<name>")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise bad(f"tensor {key!r} holds NaN or infinite values")
