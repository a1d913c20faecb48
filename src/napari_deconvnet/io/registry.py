"""Models registered in this session, and one-paragraph descriptions of model files.

Opening a ``.safetensors`` model file in napari (the model reader) registers
it here. The Restore and Train widgets offer the shipped models plus every
registered one, and refresh their choices when :data:`changed` fires.

Nothing here imports napari or Qt: the command line uses :func:`describe`.

Examples
--------
>>> from napari_deconvnet.io import registry
>>> registry.registered_models()
{}
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from psygnal import Signal

from napari_deconvnet.core.kinds import kind_of

__all__ = [
    "changed",
    "clear",
    "describe",
    "register_model",
    "registered_models",
    "resolve",
]


class _Events:
    changed = Signal(str)


_events = _Events()
#: Emitted with the choice name of a newly registered model file.
changed = _events.changed
_models: dict[str, Path] = {}
_lock = threading.Lock()


def registered_models() -> dict[str, str]:
    """Registered model files as ``{choice name: path}``, in registration order."""
    with _lock:
        return {name: str(path) for name, path in _models.items()}


def resolve(name: str) -> str:
    """The path of the registered model `name`, or `name` itself if it is not registered."""
    with _lock:
        path = _models.get(name)
    return str(path) if path is not None else name


def register_model(path: str | os.PathLike, *, folder_in_name: bool = True) -> str:
    """Register a model file for the widgets; return the name they list it under.

    Registering the same file again returns its existing name. Names are the
    file's stem, made unique against the shipped models and other registered
    files (``"stem (folder)"``, then ``"stem (2)"``, ...; without
    `folder_in_name`, for files in folders of no meaning to the user, such as
    the Train widget's temporary ones, ``"stem (2)"`` at once).

    Parameters
    ----------
    path : path
        A ``.safetensors`` model file (checked by the caller, e.g. with
        :func:`napari_deconvnet.model_info`).

    Returns
    -------
    str
        The choice name.
    """
    from napari_deconvnet.core.persistence import list_models

    path = Path(path).resolve()
    taken = set(list_models())
    with _lock:
        for name, known in _models.items():
            if known == path:
                return name
        taken |= set(_models)
        stem = path.name.removesuffix(".safetensors").removesuffix(".zip")
        if stem in ("rdf.yaml", "bioimageio.yaml"):  # an unpacked bioimage.io package
            stem = path.parent.name
        candidates = [stem] + ([f"{stem} ({path.parent.name})"] if folder_in_name else [])
        name = next((c for c in candidates if c not in taken), None)
        n = 2
        while name is None:
            name = f"{stem} ({n})" if f"{stem} ({n})" not in taken else None
            n += 1
        _models[name] = path
    changed.emit(name)
    return name


def clear() -> None:
    """Forget every registered model (for tests and long sessions)."""
    with _lock:
        _models.clear()
    changed.emit("")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _psf_text(record: Any) -> str:
    """A training PSF's record (train_record.describe_psf) by its shape: the values,
    a line of hundreds of numbers, are in ``info --json``."""
    if isinstance(record, dict) and isinstance(record.get("per_channel"), list):
        shapes = ", ".join(_psf_text(r) for r in record["per_channel"])
        return f"one per channel ({shapes})"
    if isinstance(record, dict) and "shape" in record:
        return "x".join(str(n) for n in record["shape"])
    return _fmt(record)


_TRAINING_KEYS = (
    "mode",
    "noise",
    "psf",
    "loss",
    "epochs",
    "steps",
    "seconds",
    "data_shapes",
    "metrics",
    "best_val_psnr",
    "final_val_psnr",
)


def describe(info: dict[str, Any], path: str | os.PathLike | None = None) -> str:
    """A few human-readable lines about a model file's metadata.

    Parameters
    ----------
    info : dict
        What :func:`napari_deconvnet.model_info` returns.
    path : path, optional
        Shown on the first line.

    Returns
    -------
    str
        Lines: name and description, architecture, normalisation, training
        record (when present), library versions.
    """
    meta = info.get("metadata") or {}
    cfg = info.get("config") or {}
    name = meta.get("name") or (Path(path).name if path else "model")
    lines = [f"{name}: {meta.get('description') or 'no description'}"]
    if path is not None:
        lines.append(f"  file: {path}")
    lines.append(
        f"  network: {cfg.get('ndim', '?')}D, {cfg.get('in_channels', '?')} -> "
        f"{cfg.get('out_channels', '?')} channels, depth {cfg.get('depth', '?')}, "
        f"{cfg.get('base_channels', '?')} base channels, skip {cfg.get('skip', '?')}"
    )
    if cfg.get("normalization"):
        lines.append(f"  normalization: {_fmt(cfg['normalization'])}")
    if kind_of(meta).needs_psf:
        lines.append("  deconvolution model: needs a PSF")
    training = meta.get("training") or {}
    data = training.get("data") if isinstance(training.get("data"), dict) else {}
    for key in _TRAINING_KEYS:
        value = training.get(key)
        if key == "psf" and value is None:
            value = data.get("psf")  # an adaptation records it with its data
        if value is not None:
            text = _psf_text(value) if key == "psf" else _fmt(value)
            lines.append(f"  training {key}: {text}")
    conditions = training.get("conditions") or {}
    level = conditions.get("noise_level")
    if level:
        from napari_deconvnet.core.conditions import NOISE_TOLERANCE

        lines.append(
            f"  trained on noise levels {level[0]:.3g}-{level[1]:.3g} of the range "
            + (
                "(its fine-tuning rehearsed the noise the shipped model knows, so restores at "
                "other levels do not warn)"
                if conditions.get("rehearsed")
                else f"(restores outside {NOISE_TOLERANCE:g}x of that warn)"
            )
        )
    library = info.get("library") or {}
    if library:
        lines.append("  written by: " + ", ".join(f"{k} {v}" for k, v in library.items()))
    lines.append(f"  format version: {info.get('format_version')}")
    return "\n".join(lines)
