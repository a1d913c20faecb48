"""benchmarks/gpu_check.sh in its tiny CPU mode: the script a lent GPU runs first.

Device time is short and costly, so the script must not be debugged there:
this runs every part of it on the CPU (the device tests, throughput per
precision, the automatic tile, the out-of-memory fallback, Richardson-Lucy,
training) and checks what it recorded, not only that it exited.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


@pytest.mark.skipif(not SCRIPT.exists(), reason="needs the repository's benchmarks/")
def test_the_gpu_check_runs_every_part_in_tiny_mode(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, GPU_CHECK_TEST_SECONDS="240")
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path), "--cpu-tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["tiny"] and result["tests_rc"] == "0" and result["errors"] == {}
    assert "passed" in (tmp_path / "tests.log").read_text()

    rows = {(r["case"], r["precision"]): r for r in result["throughput"]}
    for case in ("2D 96×128", "3D 16×48×64"):
        f32 = rows[(case, "float32")]
        assert f32["rate"] > 0 and f32["max_diff_vs_float32"] == 0.0
        assert "needs a GPU" in rows[(case, "float16")]["error"]  # refused on the CPU
        bf16 = rows[(case, "bfloat16")]
        assert bf16["max_diff_vs_float32"] < 0.05 and bf16["psnr_vs_float32"] > 35

    assert result["auto_tile"]["auto_equals_small_tiles"]
    # the simulated out-of-memory error must reach the tiles' forward pass and
    # be recovered from with smaller tiles, to the same output
    oom = result["oom_fallback"]
    assert oom["fell_back"] and oom["equal"], oom
    assert result["richardson_lucy"]["max_diff"] < 1e-4
    assert all(t["finite_loss"] and t["steps"] > 0 for t in result["training"])
    assert "Card: CPU" in (tmp_path / "results.md").read_text()
