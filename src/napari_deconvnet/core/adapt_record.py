"""What a resumed :func:`~.adapt.adapt` needs besides the trainer's state: how its pairs are made.

``dn.adapt(..., autosave="run.safetensors")`` writes, besides the engine's
two files (:mod:`.checkpoint`: the best model so far and
``run.resume.safetensors``), ``run.adapt.safetensors`` once at the start:
the PSF as a tensor and, as JSON in the header, the camera that
:func:`~.noise_estimation.estimate_noise` found (noise model, parameters,
offset, amplitude), the image's normalisation, the phantom kinds, patch and
batch size, learning rate, L2-SP strength, epoch length, seed, the time and
step budgets, and a fingerprint of the starting model's weights.
``dn.adapt(..., resume="run.safetensors")`` reads it back, so that the
resumed run draws the very pairs the interrupted one would have drawn.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import write_atomic

__all__ = ["read_adapt_record", "record_path", "weights_fingerprint", "write_adapt_record"]

_KEY = "napari_deconvnet_adapt"
_FORMAT_VERSION = 1


def record_path(path: str | os.PathLike) -> Path:
    """The adapt record beside an autosave (``x.safetensors`` -> ``x.adapt.safetensors``)."""
    path = Path(path)
    name = path.name
    for suffix in (".resume.safetensors", ".adapt.safetensors", ".safetensors"):
        if name.endswith(suffix):
            name = name.removesuffix(suffix)
            break
    return path.with_name(name + ".adapt.safetensors")


def weights_fingerprint(net: torch.nn.Module) -> str:
    """A short hash of a network's weights (the starting model of a run)."""
    digest = hashlib.sha256()
    for key, value in net.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def write_adapt_record(path: Any, record: dict[str, Any], psf: Any) -> Path:
    """Write `record` and the PSF (or a list of one per channel) beside autosave `path`
    (atomically); return the file."""
    from safetensors.torch import save as serialize

    tensors = {}
    if isinstance(psf, list):  # one PSF per channel: psf_0, psf_1, ... in the channels' order
        for c, kernel in enumerate(psf):
            tensors[f"psf_{c}"] = torch.from_numpy(np.ascontiguousarray(kernel, np.float32))
    elif psf is not None:
        tensors["psf"] = torch.from_numpy(np.ascontiguousarray(psf, np.float32))
    else:
        tensors["none"] = torch.zeros(1)  # safetensors wants at least one tensor
    text = json.dumps({"format_version": _FORMAT_VERSION, **record}, default=_plain)
    target = record_path(path)
    write_atomic(target, serialize(tensors, metadata={_KEY: text}))
    return target


def read_adapt_record(path: Any) -> tuple[dict[str, Any], Any]:
    """The record and the PSF (a list of one per channel, if so) an adapt run with
    ``autosave=path`` wrote.

    Raises
    ------
    ValueError
        No record there (the run was not made by ``dn.adapt``), or an unreadable one.
    """
    from safetensors import SafetensorError, safe_open

    target = record_path(path)
    if not target.is_file():
        raise ValueError(
            f"no adapt record at {target}: resume an adapt run with the autosave path of "
            "a dn.adapt(..., autosave=...) run (a dn.train autosave resumes with dn.train)"
        )
    try:
        with safe_open(str(target), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            keys = set(fh.keys())
            psf = fh.get_tensor("psf").numpy() if "psf" in keys else None
            channels = sorted((k for k in keys if k.startswith("psf_")), key=lambda k: int(k[4:]))
            if channels:  # one PSF per channel
                psf = [fh.get_tensor(k).numpy() for k in channels]
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(f"{target} is not a readable adapt record: {err}") from err
    try:
        record = json.loads(meta[_KEY])
    except (KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"{target} is not a napari-deconvnet adapt record") from err
    return record, psf


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
