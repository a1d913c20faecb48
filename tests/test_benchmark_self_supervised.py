"""benchmarks/self_supervised_choice.py in its quick mode."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / "benchmarks").exists(), reason="needs the repository")
def test_choice_benchmark_scores_both_methods_in_both_set_ups():
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "self_supervised_choice.py"), "--quick"]
        + ["--steps", "4", "--fine-tune-steps", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT / "benchmarks",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ") and "dB" not in line]
    rows = [r for r in rows if "new network" in r or "fine-tuning" in r]
    assert len(rows) == 4  # two images (quick), two set-ups
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        noisy, n2v, n2n, diff = float(cells[1]), cells[3], cells[4], float(cells[5])
        scores = [float(c.split()[0]) for c in (n2v, n2n)]
        assert diff == pytest.approx(scores[1] - scores[0], abs=0.011)
        if "fine-tuning" in row:  # the shipped model denoises whatever the method
            assert min(scores) > noisy + 3
