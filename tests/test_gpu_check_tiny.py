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


SESSION = ROOT / "scripts" / "gpu_session.sh"


@pytest.mark.skipif(not SESSION.exists(), reason="needs the repository's scripts/")
def test_one_lease_script_trains_tests_and_measures_in_tiny_mode(tmp_path):
    """scripts/gpu_session.sh: what a lent GPU runs, here on the CPU with one model.

    The first lease on an H200 lost its 3D training and its CUDA tests to
    faults that only a run of the whole script would show; this runs it whole.
    """
    import tarfile

    import napari_deconvnet as dn

    out, work = tmp_path / "out", tmp_path / "work"
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        MODELS="salt-and-pepper",
        CANDIDATES="0",
        GPU_SESSION_WORK=str(work),
    )
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        ["bash", str(SESSION), str(out), "--tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "training done" in run.stdout and "exit status 0" in run.stdout
    assert (out / "tests.rc").read_text().strip() == "0"
    result = json.loads((out / "results.json").read_text())
    assert result["tiny"] and result["errors"] == {}
    with tarfile.open(out / "trained.tgz") as tar:
        names = {Path(n).name for n in tar.getnames()}
    # only the model asked for, its logs, and no checkpoints
    assert {"salt-and-pepper.safetensors", "salt-and-pepper.log.json", "train.log"} <= names
    assert not any(n.startswith(("denoise", "deconv")) for n in names)
    assert "runs" not in names
    model = dn.load_model(work / "train" / "salt-and-pepper.safetensors")
    argv = model.metadata["training"]["argv"]
    assert argv[argv.index("--init") + 1].endswith("weights/salt-and-pepper.safetensors")
