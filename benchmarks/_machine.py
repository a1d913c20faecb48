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


def report(
    title: str, script: str, argv: list[str] | None, caption: str, body: str, path: Path | None
) -> None:
    """:func:`publish` `body` under its :func:`heading` and `caption` (the machine line
    and what the table holds), with a final newline in the file."""
    publish("\n\n".join([heading(title, script, argv), caption, body]), path, "\n")


def vector_units(flags: set[str]) -> str:
    """The CPU's vector and matrix units that decide torch's speed, from its flags.

    ``"AVX-512, AVX512-BF16"``, ``"AVX-512, AMX"``, ``"AVX2"`` or ``""``: two
    CPUs of one model name (an AMD EPYC with AVX2 only, one with AVX-512 and
    bfloat16) differ by 2× in these benchmarks, and bfloat16 units decide
    what ``precision="auto"`` runs.
    """
    units = []
    if "avx512f" in flags:
        units.append("AVX-512")
    elif "avx2" in flags:
        units.append("AVX2")
    if "avx512_bf16" in flags:
        units.append("AVX512-BF16")
    if "amx_tile" in flags:
        units.append("AMX")
    return ", ".join(units)


def model_table_head(fixed: str, align: str, names: list[str], against: str) -> list[str]:
    """The heading and alignment lines of a table whose first columns are `fixed`
    (aligned by `align`, ending in ``|``), then one column per model and one per
    model minus `against`."""
    return [
        f"| {fixed} | "
        + " | ".join(names)
        + " | "
        + " | ".join(f"{n} − {against}" for n in names)
        + " |",
        align + "---:|" * (2 * len(names)),
    ]


def model_cells(scores: list[float], against: float) -> str:
    """A row's model columns (see :func:`model_table_head`): each score, then each
    minus `against`; ends the row."""
    return (
        " | ".join(f"{s:.2f}" for s in scores)
        + " | "
        + " | ".join(f"{s - against:+.2f}" for s in scores)
        + " |"
    )


def model_name(model: str) -> str:
    """A model's column name: a shipped name as it is, a file by its folder and stem
    (candidates are often all named "deconv-2d")."""
    if not str(model).endswith(".safetensors"):
        return str(model)
    return f"{Path(model).parent.name}/{Path(model).stem}"


def machine() -> str:
    """CPU model (with its vector units), torch threads and versions, e.g. for a
    README table caption."""
    import torch

    cpu = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as fh:
            lines = fh.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
        flags = next(
            (set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")),
            set(),
        )
    except (OSError, StopIteration):
        pass
    units = vector_units(flags)
    if units:
        cpu = f"{cpu} ({units})"
    return (
        f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"Python {platform.python_version()}, {platform.system()}"
    )
