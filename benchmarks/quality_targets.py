"""The quality targets of issues 7 and 11, read off a `benchmarks/quality.py` run.

Each target is met or missed by a margin that this script computes from the
run's JSON, so the README's table is a printout, not a hand calculation::

    python benchmarks/quality.py --baselines benchmarks/results/quality-fair.json \\
        --merge now.json --json benchmarks/results/quality-now.json
    python benchmarks/quality_targets.py benchmarks/results/quality-now.json

Targets (PSNR in dB; "fair CARE" is the per-task supervised UNet of the run):

- every shipped model beats every classical method on every task of its
  kind, in mean PSNR and in mean SSIM;
- 3D deconvolution, each task: tuned Richardson-Lucy + 1 dB and fair CARE + 0.5;
- 2D deconvolution: tuned Richardson-Lucy + 2.5;
- Poisson-Gaussian peaks 5 and 20: fair CARE + 0.5;
- Gaussian noise on photos (sigma 15, 25, 50): BM3D + 0.3, at 20 times its
  speed or more;
- salt-and-pepper 20 %: the tuned median + 3;
- every 2D restore at about 1.3 s per megapixel or less (as the run timed it:
  its machine and torch threads are named beside the figure; a deconvolution
  model's time includes its Richardson-Lucy channel).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import LEARNED, METHODS  # noqa: E402

#: Methods that need no training data and see only the degraded image.
CLASSICAL = tuple(m for m in METHODS if m not in ("identity", *LEARNED))


def _ok(record: dict, method: str) -> dict | None:
    entry = record["methods"].get(method)
    return entry if entry and entry.get("status") == "ok" else None


def _verdict(margin: float, aim: float) -> str:
    return "met" if margin >= aim else f"**missed by {aim - margin:.2f}**"


def classical_rows(tasks: dict, method: str = "ours") -> list[tuple[str, str, str]]:
    """``(task, margins, verdict)``: `method` against the best classical PSNR and SSIM."""
    rows = []
    for name, record in tasks.items():
        ours = _ok(record, method)
        scored = {m: e for m in CLASSICAL if (e := _ok(record, m))}
        if ours is None or not scored:
            continue
        by_psnr = max(scored, key=lambda m: scored[m]["mean_psnr"])
        by_ssim = max(scored, key=lambda m: scored[m]["mean_ssim"])
        dp = ours["mean_psnr"] - scored[by_psnr]["mean_psnr"]
        ds = ours["mean_ssim"] - scored[by_ssim]["mean_ssim"]
        misses = [f"PSNR by {-dp:.2f} dB"] if dp <= 0 else []
        misses += [f"SSIM by {-ds:.3f}"] if ds <= 0 else []
        verdict = "met" if not misses else "**missed** (" + ", ".join(misses) + ")"
        margins = f"{by_psnr} {dp:+.2f} dB; {by_ssim} SSIM {ds:+.3f}"
        rows.append((name, margins, verdict))
    return rows


def margin_rows(
    tasks: dict, names, baseline: str, aim: float, method: str = "ours"
) -> list[tuple[str, str, str]]:
    """``(task, method - baseline, verdict)`` for the tasks `names` the run has."""
    rows = []
    for name in names:
        record = tasks.get(name)
        if record is None:
            continue
        ours, other = _ok(record, method), _ok(record, baseline)
        if ours is None or other is None:
            rows.append((name, f"{baseline} not run", "not measured"))
            continue
        margin = ours["mean_psnr"] - other["mean_psnr"]
        text = f"{ours['mean_psnr']:.2f} vs {other['mean_psnr']:.2f}: {margin:+.2f}"
        if baseline == "care" and "training" in other:
            text += f" (CARE {other['training'].get('steps', '?')} steps)"
        rows.append((name, text, _verdict(margin, aim)))
    return rows


def speed_rows(
    tasks: dict, names, baseline: str, factor: float, method: str = "ours"
) -> list[tuple[str, str, str]]:
    rows = []
    for name in names:
        record = tasks.get(name)
        ours = record and _ok(record, method)
        other = record and _ok(record, baseline)
        if not ours or not other:
            continue
        if ours.get("run") != other.get("run"):
            rows.append((name, f"{method} and {baseline} from different runs", "not measured"))
            continue
        ratio = other["seconds_per_megapixel"] / ours["seconds_per_megapixel"]
        verdict = "met" if ratio >= factor else f"**missed** ({ratio:.1f}× < {factor:g}×)"
        rows.append((name, f"{ratio:.1f}× {baseline}'s speed", verdict))
    return rows


#: Issue 11: "2D restore stays at or under about 1.3 s per megapixel on this CPU".
SECONDS_PER_MEGAPIXEL_2D = 1.3


def _is_2d(name: str, record: dict) -> bool:
    shapes = record.get("shape")
    if shapes:
        return all(len(s) == 2 for s in shapes)
    return not name.startswith("3d-")


def _where(results: dict) -> str:
    """The run's CPU and torch threads (``"AMD EPYC (AVX2), 1 torch threads"``), or ``""``."""
    return str(results.get("machine", "")).split(", torch 2")[0].split(", torch v")[0]


def per_megapixel_rows(
    tasks: dict, limit: float, method: str = "ours", where: str = ""
) -> list[tuple[str, str, str]]:
    """``(task, seconds per megapixel, verdict)`` for the 2D tasks `method` restored."""
    rows = []
    for name, record in tasks.items():
        ours = _ok(record, method)
        if not ours or not _is_2d(name, record) or not ours.get("seconds_per_megapixel"):
            continue
        spmp = float(ours["seconds_per_megapixel"])
        text = f"{spmp:.2f} s/MP" + (f" ({where})" if where else "")
        verdict = "met" if spmp <= limit else f"**missed by {spmp - limit:.2f} s/MP**"
        rows.append((name, text, verdict))
    return rows


def targets(results: dict, method: str = "ours") -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Every target's rows for `method` (``"ours"``: the shipped models as they run by
    default; ``"ours-x8"``: with ``ensemble=8``)."""
    tasks = results["tasks"]
    m = method
    three_d = [n for n in tasks if n.startswith("3d-")]
    photos = ["gaussian-15", "gaussian-25", "gaussian-50"]
    out = [
        ("beats every classical method, PSNR and SSIM", classical_rows(tasks, m)),
        (
            "3D deconvolution: tuned RL + 1 dB",
            margin_rows(tasks, three_d, "richardson-lucy", 1.0, m),
        ),
        ("3D deconvolution: fair CARE + 0.5 dB", margin_rows(tasks, three_d, "care", 0.5, m)),
        (
            "2D deconvolution: tuned RL + 2.5 dB",
            margin_rows(
                tasks, ["deconv-gaussian", "deconv-airy-poisson"], "richardson-lucy", 2.5, m
            ),
        ),
        (
            "Poisson-Gaussian peaks 5 and 20: fair CARE + 0.5 dB",
            margin_rows(tasks, ["poisson-gaussian-5", "poisson-gaussian-20"], "care", 0.5, m),
        ),
        ("photos, Gaussian noise: BM3D + 0.3 dB", margin_rows(tasks, photos, "bm3d", 0.3, m)),
        (
            "photos, Gaussian noise: ≥ 20× BM3D's speed",
            speed_rows(tasks, photos, "bm3d", 20.0, m),
        ),
        (
            "salt-and-pepper 20 %: tuned median + 3 dB",
            margin_rows(tasks, ["salt-and-pepper-20"], "median", 3.0, m),
        ),
        (
            f"2D restore ≤ {SECONDS_PER_MEGAPIXEL_2D:g} s per megapixel",
            per_megapixel_rows(tasks, SECONDS_PER_MEGAPIXEL_2D, m, _where(results)),
        ),
    ]
    return [(title, rows) for title, rows in out if rows]


def markdown(results: dict, source: str = "") -> str:
    lines = []
    if source:
        lines += [f"Targets read off `{source}` by `benchmarks/quality_targets.py`.", ""]
    if results.get("baselines"):
        lines += [
            "The baselines' columns come from "
            + ", ".join(f"`{b}`" for b in results["baselines"])
            + "; a speed ratio is given only where both columns come from one run.",
            "",
        ]
    x8 = any(_ok(r, "ours-x8") for r in results["tasks"].values())
    head = "| target | task | ours − baseline | result |"
    rule = "|---|---|---|---|"
    if x8:
        head += " with `ensemble=8` (ours-x8) | result |"
        rule += "---|---|"
    lines += [head, rule]
    other = {}
    if x8:
        other = {(t, r[0]): r[1:] for t, rows in targets(results, "ours-x8") for r in rows}
    met = total = met8 = total8 = 0
    for title, rows in targets(results):
        for task, margins, verdict in rows:
            line = f"| {title} | {task} | {margins} | {verdict} |"
            total += verdict != "not measured"
            met += verdict == "met"
            if x8:
                m8, v8 = other.get((title, task), ("not run", "not measured"))
                line += f" {m8} | {v8} |"
                total8 += v8 != "not measured"
                met8 += v8 == "met"
            lines.append(line)
    lines += ["", f"{met} of {total} rows met."]
    if x8:
        lines[-1] += f" With `ensemble=8`: {met8} of {total8}."
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a --json file of benchmarks/quality.py")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    try:
        results = json.loads(args.results.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read {args.results}: {exc}") from None
    if not isinstance(results, dict) or "tasks" not in results:
        raise SystemExit(f"{args.results} is not a --json file of benchmarks/quality.py")
    text = markdown(results, args.results.name)
    sys.stdout.write(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
