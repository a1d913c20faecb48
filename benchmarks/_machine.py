"""The machine line every benchmark prints above its table."""

from __future__ import annotations

import platform


def machine() -> str:
    """CPU model, torch threads and versions, e.g. for a README table caption."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"Python {platform.python_version()}, {platform.system()}"
    )
