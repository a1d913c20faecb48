"""The quality benchmark (benchmarks/quality.py) in its quick mode, end to end."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import napari_deconvnet as dn

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
TASKS = {
    "gaussian-15": "denoise",
    "gaussian-25": "denoise",
    "gaussian-50": "denoise",
    "poisson-gaussian-5": "denoise",
    "poisson-gaussian-20": "denoise",
    "poisson-gaussian-100": "denoise",
    "deconv-gaussian": "deconv",
    "deconv-airy-poisson": "deconv",
    "salt-and-pepper-5": "impulse",
    "salt-and-pepper-20": "impulse",
    "3d-poisson-blur": "deconv",
}
METHODS = {
    "denoise": {"identity", "nlm", "tv", "wavelet", "bm3d", "care", "ours"},
    "impulse": {"identity", "median", "switching-median", "care", "ours"},
    "deconv": {"identity", "richardson-lucy", "wiener", "care", "ours"},
}
MODELS = {  # the shipped model behind "ours" (and the extra 3D row)
    "denoise": "denoise-2d",
    "impulse": "salt-and-pepper",
    "deconv": "deconv-2d",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--quick",
        "--markdown",
        str(out / "quality.md"),
        "--json",
        str(out / "quality.json"),
        "--figure",
        str(out / "quality.png"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "quality.json").read_text())
    return proc.stdout, (out / "quality.md").read_text(), results, out


def _expected_methods(task: str) -> set[str]:
    methods = set(METHODS[TASKS[task]])
    return methods | {"ours-denoise-3d"} if task.startswith("3d") else methods


def _model(task: str, method: str) -> str:
    if method == "ours-denoise-3d":
        return "denoise-3d"
    return "deconv-3d" if task.startswith("3d") else MODELS[TASKS[task]]


@pytest.mark.slow
def test_every_task_and_method_is_scored(quick_run):
    _, _, results, _ = quick_run
    assert set(results["tasks"]) == set(TASKS)
    shipped = set(dn.list_models())
    for task, record in results["tasks"].items():
        assert set(record["methods"]) == _expected_methods(task), task
        assert len(record["images"]) == 2
        for method, entry in record["methods"].items():
            if entry["status"] == "n/a":
                # only a model that is not shipped yet may be missing
                assert method in ("ours", "ours-denoise-3d"), (task, method)
                assert _model(task, method) not in shipped, (task, method)
                continue
            assert entry["status"] == "ok"
            values = entry["psnr"] + entry["ssim"] + entry["seconds"]
            assert len(entry["psnr"]) == len(entry["ssim"]) == 2
            assert all(math.isfinite(v) for v in values), (task, method, values)
            assert all(-1 <= s <= 1 for s in entry["ssim"])
            assert entry["seconds_per_megapixel"] > 0 or method == "identity"


@pytest.mark.slow
def test_quick_run_sanity(quick_run):
    _, _, results, _ = quick_run
    tasks = results["tasks"]
    denoise = tasks["gaussian-25"]["methods"]
    assert denoise["ours"]["mean_psnr"] > denoise["identity"]["mean_psnr"] + 3
    impulse = tasks["salt-and-pepper-20"]["methods"]
    assert impulse["median"]["mean_psnr"] > impulse["identity"]["mean_psnr"] + 3
    assert impulse["median"]["params"]["size"] in (3, 5)  # tuned, on training images
    assert results["settings"]["quick"] is True


@pytest.mark.slow
def test_markdown_tables_and_figure(quick_run):
    stdout, text, _, out = quick_run
    assert text in stdout
    assert "Machine:" in text and "CARE trained" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| task | identity"))
    for method in set().union(*METHODS.values(), {"ours-denoise-3d"}):
        assert f" {method} |" in header
    for task in TASKS:
        row = next(line for line in lines if line.startswith(f"| {task} |"))
        assert row.count("**") == 2, row  # one best cell
    assert "| method | s / MP | tasks |" in text
    assert (out / "quality.png").stat().st_size > 10_000
