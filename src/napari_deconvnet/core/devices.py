"""Device choice, precision and free-memory queries."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["resolve_device", "resolve_precision", "free_memory", "autocast"]

_PRECISIONS = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` into a device.

    ``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    Raises
    ------
    TypeError
        If `device` is not a string or a ``torch.device``.
    ValueError
        If the name is unknown or the hardware is not available.
    """
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device.strip().lower()
    else:
        raise TypeError(
            f"device must be a string such as 'auto', 'cpu', 'cuda' or 'mps', "
            f"got {type(device).__name__}"
        )
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from err
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was requested but CUDA is not available on this machine; "
                "use device='auto' or 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(
                f"device {device!r} was requested but Apple MPS is not available; "
                "use device='auto' or 'cpu'"
            )
        return dev
    raise ValueError(
        f"unsupported device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
    )


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """Compute dtype for inference: ``"auto"`` is float16 on CUDA, float32 elsewhere."""
    if not isinstance(precision, str):
        raise TypeError(f"precision must be a string, got {type(precision).__name__}")
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in _PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r}; use 'auto', 'float32', 'float16' or 'bfloat16'"
        )
    dtype = _PRECISIONS[precision]
    if dtype == torch.float16 and device.type == "cpu":
        raise ValueError("precision 'float16' needs a GPU; on the CPU use 'float32' or 'bfloat16'")
    return dtype


def autocast(device: torch.device, dtype: torch.dtype):
    """Mixed-precision context for `dtype`, or a no-op for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def free_memory(device: torch.device) -> int:
    """Bytes that inference may use on `device` right now."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "mps":
        recommended = getattr(torch.mps, "recommended_max_memory", None)
        current = getattr(torch.mps, "current_allocated_memory", None)
        if recommended is not None and current is not None:
            return int(recommended() - current())
    import psutil

    return int(psutil.virtual_memory().available)
