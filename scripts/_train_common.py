"""What the scripts that train the shipped models share: how they drive the package's engine.

``scripts/train_default.py`` and ``scripts/train_models.py`` train through
:func:`napari_deconvnet.core.fit.fit` (the Trainer that ``dn.train`` runs);
these helpers choose the precision, score validation by PSNR, name the
winning weights, print progress, find the autosave of a checkpoint folder
and write the model with its log.
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import numpy as np
import torch

from napari_deconvnet.core.atomic import write_atomic
from napari_deconvnet.core.devices import cpu_has_native_bfloat16
from napari_deconvnet.core.model import DeconvNet, widen_channels, widen_input
from napari_deconvnet.core.persistence import save_model


def add_bright_objects_flag(parser, validation: str) -> None:
    """``--bright-objects SHARE``: both scripts' flag, with what their validation gains."""
    parser.add_argument(
        "--bright-objects",
        type=float,
        default=0.0,
        help="share of regions with a few objects 3-300 times brighter than the scene "
        "(core.phantoms.bright_objects: beads, bright cells), for images of high dynamic "
        f"range; above 0 the validation gains {validation}, scored around them",
    )


def add_sparse_spot_share_flag(parser) -> None:
    """``--sparse-spot-share``: what share of the dark scenes (``--sparse-scenes``) hold spots."""
    parser.add_argument(
        "--sparse-spot-share",
        type=float,
        default=0.7,
        help="with --sparse-scenes: share of those scenes that hold spots (the others "
        "hold filaments only; a fifth of the spot scenes also hold filaments)",
    )


def start_weights(start: DeconvNet, net: DeconvNet, positions=None) -> dict:
    """`start`'s weights for `net` (``--init``): as they are, with more input
    channels (``widen_input``; `positions` places the old ones) or with more
    feature channels (``--base-channels``, ``widen_channels``). Either way
    `net` starts computing what `start` did.
    """
    if start.config.base_channels == net.config.base_channels:
        return widen_input(start.state_dict(), net, positions)
    if start.config.base_channels > net.config.base_channels:
        raise SystemExit(
            f"--base-channels {net.config.base_channels} is narrower than --init's "
            f"{start.config.base_channels}; a model can only be widened"
        )
    if start.config.in_channels != net.config.in_channels:
        raise SystemExit("widen the input channels and the feature channels in two runs")
    return widen_channels(start.state_dict(), net)


def engine_precision(name: str, device: torch.device) -> str:
    """``name``, or float32 where bfloat16 would be emulated (slower) on `device`."""
    if name != "bfloat16":
        return name
    if device.type == "cuda":
        return name if torch.cuda.is_bf16_supported() else "float32"
    return name if device.type == "cpu" and cpu_has_native_bfloat16() else "float32"


def validation_score(evaluate_fn, pairs: list[dict]):
    """``evaluate(net) -> (minus the mean PSNR, metrics)`` for the engine (lower is better)."""

    def score(net: DeconvNet) -> tuple[float, dict]:
        metrics = evaluate_fn(net, pairs)
        return -metrics["val_psnr"], metrics

    return score


def best_record(best_entry: dict, initialised: bool) -> dict:
    """Which weights won (``init``, ``raw`` or ``ema``) at which step, and their PSNR."""
    raw, ema = best_entry.get("val_psnr", -math.inf), best_entry.get("ema_val_psnr")
    if best_entry["epoch"] == 0:
        kind = "init" if initialised else "raw"
    else:
        kind = "ema" if ema is not None and ema > raw else "raw"
    return {
        "best_val_psnr": float(ema if kind == "ema" else raw),
        "best_step": best_entry["step"],
        "best_weights": kind,
    }


#: What a continued run records of the model it started from (``--init``).
INIT_KEYS = ("script", "argv", "steps", "seconds", "precision", "best_val_psnr", "threads")


def init_record(path: Path | None) -> dict:
    """The training record of the model `path` that a run starts from (``--init``).

    A shipped model trained in stages (from scratch, then continued from
    those weights) so keeps its whole recipe: each stage's command line,
    steps and validation PSNR, the earlier stages nested under
    ``"init_record"``, and the SHA-256 of the weights each stage started
    from. ``{}`` without `path`.
    """
    if path is None:
        return {}
    import hashlib

    from napari_deconvnet.core.persistence import model_info

    training = (model_info(path).get("metadata") or {}).get("training") or {}
    stage = {k: training[k] for k in INIT_KEYS if k in training}
    if "settings" in training:
        stage["settings"] = training["settings"]
    if training.get("init_record"):
        stage["init_record"] = training["init_record"]
    stage["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return {"init_record": stage}


def reporter(label: str):
    """A callback printing the engine's validations, one line each."""

    def report(event) -> None:
        if event.kind == "start":
            psnr = event.metrics.get("val_psnr")
            text = "" if psnr is None else f" val psnr {psnr:.2f}"
            print(f"[{label}] step {event.step}:{text} ({event.message})", flush=True)
        elif event.kind == "epoch":
            h = event.history[-1]
            print(
                f"[{label}] step {h['step']} {h['seconds']:.0f}s lr {h['lr']:.2e} loss "
                f"{h['train_loss']:.5f} val {h['val_psnr']:.2f} (gain {h['val_gain']:+.2f}) "
                f"ema {h.get('ema_val_psnr', math.nan):.2f}",
                flush=True,
            )
        elif event.kind == "end":
            print(f"[{label}] {event.message}", flush=True)

    return report


def autosave_path(folder: Path | None, name: str, resume: bool) -> Path | None:
    """The engine's autosave file in a checkpoint folder (None without a folder)."""
    if folder is None:
        return None
    folder = Path(folder)
    path = folder / f"{name}.safetensors"
    legacy = folder / "state.json"
    if resume and legacy.exists() and not path.with_suffix(".resume.safetensors").exists():
        raise SystemExit(
            f"{folder} holds a checkpoint of the scripts' former training loop (state.json), "
            "which the package's engine cannot continue; start a new run with --init "
            "<its best model file> and another --checkpoint folder"
        )
    return path


def log_path_of(model: Path) -> Path:
    """``<name>.log.json`` beside the model file ``<name>.safetensors``."""
    return model.with_name(model.name.removesuffix(".safetensors") + ".log.json")


def earlier_stages(init: Path | None) -> list[dict]:
    """The logs of the stages a run started from (``--init``), newest first.

    Each is ``{"training": ..., "history": ...}`` as the stage's own log had
    it, so a model trained in stages keeps every stage's validation curve,
    not only the last one's. ``[]`` without `init` or when its log is missing.
    """
    if init is None or not log_path_of(Path(init)).is_file():
        return []
    log = json.loads(log_path_of(Path(init)).read_text())
    stage = {"training": log.get("training"), "history": log.get("history")}
    return [stage, *log.get("earlier_stages", [])]


def save_with_log(
    net: DeconvNet, out: Path, training: dict, history: list, init: Path | None = None
) -> Path:
    """Write the model and ``<name>.log.json`` (its recipe and validation history).

    A run from `init` adds the logs of the stages before it
    (:func:`earlier_stages`), read before `out` is written (it may be `init`).
    """
    before = earlier_stages(init)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(net, out)
    log_path = log_path_of(out)
    log = {"training": training, "history": history}
    if before:
        log["earlier_stages"] = before
    write_atomic(log_path, (json.dumps(log, indent=1, default=str) + "\n").encode())
    return log_path


def versions() -> dict:
    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
