"""benchmarks/low_counts_3d.py, restore_overhead.py and model_load.py in quick modes."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "napari_deconvnet" / "weights" / "denoise-3d.safetensors"


def _run(script, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT / "benchmarks",
    )


@pytest.mark.skipif(not (ROOT / "benchmarks").exists(), reason="needs the repository")
def test_low_counts_benchmark_scores_both_models_and_the_oracle():
    run = _run("low_counts_3d.py", str(WEIGHTS), str(WEIGHTS))
    assert run.returncode == 0, run.stderr[-2000:]
    row = next(line for line in run.stdout.splitlines() if line.startswith("| beads"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    oracle, old, new, diff = float(cells[2]), float(cells[3]), float(cells[4]), cells[5]
    assert old == new and diff == "+0.00"  # one file twice: deterministic
    # a 1-photon volume: every method well above the input's ~10 dB, below 40
    assert 15 < oracle < 40 and 15 < old < 40


@pytest.mark.skipif(not (ROOT / "benchmarks").exists(), reason="needs the repository")
def test_restore_overhead_benchmark_checks_both_readings_agree():
    run = _run("restore_overhead.py")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| 256²")]
    assert len(rows) == 2 and all(row.rstrip(" |").endswith("True") for row in rows)


@pytest.mark.skipif(not (ROOT / "benchmarks").exists(), reason="needs the repository")
def test_model_load_benchmark_times_both_paths_and_their_outputs_agree():
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "model_load.py"), "--sizes", "48"]
        + ["--repeats", "1", "--models", "deconv-2d", "salt-and-pepper"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT / "benchmarks",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| deconv-2d")]
    rows += [line for line in run.stdout.splitlines() if line.startswith("| salt-and-pepper")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "48²" and cells[-1] == "True"
        assert float(cells[4].rstrip("×")) > 0
