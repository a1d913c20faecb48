"""What a trained model records about its training (``model.metadata["training"]``).

The keys are read back by :func:`napari_deconvnet.model_info`, the model
card of :func:`napari_deconvnet.export_bioimageio` and the Train widget;
they are stored in the model file by :func:`napari_deconvnet.save_model`.
"""

from __future__ import annotations

import datetime
import math
import platform
from typing import Any

import numpy as np
import torch

from .channel_psfs import per_channel
from .provenance import jsonable

__all__ = [
    "describe_array",
    "describe_psf",
    "finite_jsonable",
    "model_metadata",
    "run_outcome",
    "versions",
]

_KINDS = {
    "supervised": "supervised",
    "self-supervised": "self-supervised (Noise2Void)",
    "synthetic": "synthetic-pair",
}


def _kind_words(config: Any) -> str:
    """How the model trained, in words: self-supervision names its method (a
    Neighbor2Neighbor run was described as Noise2Void, session 70)."""
    if config.mode != "self-supervised":
        return _KINDS[config.mode]
    method = getattr(config, "blind_spot", None)
    if method == "neighbor2neighbor":
        return "self-supervised (Neighbor2Neighbor)"
    if method == "median":
        return "self-supervised (Noise2Void, N2V2 median replacement)"
    return _KINDS["self-supervised"]


def model_metadata(
    *,
    name: str | None,
    parent: dict[str, Any] | None,
    config: Any,
    history: list[dict[str, Any]],
    best_entry: dict[str, Any],
    stop_reason: str,
    seconds: float,
    steps: int,
    improved: bool | None,
    inputs: list[Any],
    targets: list[Any] | None,
    psf: Any,
    regions: bool,
    normalization: dict[str, Any],
    conditions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``model.metadata`` of a :func:`~.training.train` result: its data and how it trained.

    `conditions` (:func:`~.conditions.record_conditions`) is what restore
    checks new data against.
    """
    mode = config.mode
    training = {
        "mode": mode,
        "loss": config.loss,
        "epochs": history[-1]["epoch"],
        **run_outcome(history, best_entry, stop_reason, seconds, steps),
        "improved": improved,
        **{k: v for k, v in best_entry.items() if k.startswith(("val_psnr", "val_ssim"))},
        **{k: v for k, v in history[0].items() if k.startswith("input_")},
        **{f"start_{k}": v for k, v in history[0].items() if k in ("val_psnr", "val_ssim")},
        "data_shapes": [list(a.shape) for a in inputs],
        "inputs": [describe_array(a) for a in inputs],
        "targets": None if targets is None else [describe_array(a) for a in targets],
        "noise": config.noise,
        "psf": describe_psf(psf),
        "regions": regions,
        "validation": config.validation,
        "settings": {k: v for k, v in config.to_dict().items() if k not in ("noise", "mode")},
        "normalization": dict(normalization),
        "conditions": conditions,
        "fine_tuned_from": parent,
        "versions": versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    default = f"{parent['name']}-finetuned" if parent else f"trained-{mode}"
    return {
        "name": name or default,
        "description": f"{len(config.patch_size)}D model from {_kind_words(config)} training",
        "training": finite_jsonable(training),
    }


def run_outcome(
    history: list[dict[str, Any]],
    best_entry: dict[str, Any],
    stop_reason: str,
    seconds: float,
    steps: int,
) -> dict[str, Any]:
    """How a run went, as ``metadata["training"]`` records it: steps, time, why it stopped,
    the best epoch and the validation loss there and at the start."""
    return {
        "steps": steps,
        "seconds": round(seconds, 2),
        "stop_reason": stop_reason,
        "best_epoch": best_entry["epoch"],
        "best_val_loss": best_entry.get("val_loss"),
        "start_val_loss": history[0].get("val_loss"),
    }


def versions() -> dict[str, str]:
    """The versions of the library and of what it trained with."""
    from .._version import __version__

    return {
        "napari_deconvnet": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def describe_array(a: Any) -> dict[str, Any]:
    """An array's shape and dtype, as JSON."""
    return {"shape": [int(s) for s in a.shape], "dtype": str(np.dtype(a.dtype))}


def describe_psf(psf: Any) -> dict[str, Any] | None:
    """A PSF's shape, and its normalised values when it is small (at most 4096 values)."""
    if psf is None:
        return None
    if per_channel(psf):  # one PSF per channel (core.channel_psfs)
        return {"per_channel": [describe_psf(p) for p in psf]}
    kernel = np.asarray(psf, dtype=np.float64)
    record: dict[str, Any] = {"shape": list(kernel.shape)}
    if kernel.size <= 4096:
        record["values"] = (kernel / kernel.sum()).round(8).tolist()
    return record


def finite_jsonable(value: Any) -> Any:
    """:func:`.provenance.jsonable` with NaN and infinite numbers as None (valid JSON)."""
    value = jsonable(value)
    if isinstance(value, dict):
        return {k: finite_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
