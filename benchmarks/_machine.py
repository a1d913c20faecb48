"""The machine line every benchmark prints above its table, and the table's heading."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path


def set_threads(threads: int | None) -> None:
    """Torch's thread count, when `threads` is given (``--threads``)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def heading(title: str, script: str, argv: list[str] | None) -> str:
    """``# title (date)`` and the command line that made the table."""
    command = " ".join(argv if argv is not None else sys.argv[1:])
    return f"# {title} ({time.strftime('%Y-%m-%d')})\n\n`python benchmarks/{script} {command}`"


def publish(text: str, path: Path | None, end: str = "") -> None:
    """Print the report and write it (plus `end`) to `path` when one is given."""
    print(text)
    if path:
        path.write_text(text + end, encoding="utf-8")


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
