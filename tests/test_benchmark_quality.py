"""The quality benchmark (benchmarks/quality.py) in its quick mode, end to end."""

import hashlib
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    "3d-lowlight-10": "deconv",
    "3d-lowlight-20": "deconv",
    "3d-lowlight-50": "deconv",
    "3d-widefield-20": "deconv",
    "camera-2": "denoise",
    "camera-20": "denoise",
}
METHODS = {
    "denoise": {"identity", "nlm", "tv", "wavelet", "bm3d", "care", "ours", "ours-ft"},
    "impulse": {"identity", "median", "switching-median", "care", "ours"},
    "deconv": {"identity", "richardson-lucy", "wiener", "care", "ours", "ours-ft"},
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
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "quality.json").read_text())
    return proc.stdout, (out / "quality.md").read_text(), results, out


#: Tasks with Poisson noise, where the Noise2Void baseline runs (--quick: 3 steps).
N2V_TASKS = {"poisson-gaussian-5", "poisson-gaussian-20", "poisson-gaussian-100"}
N2V_TASKS |= {"camera-2", "camera-20"}


def _expected_methods(task: str) -> set[str]:
    methods = set(METHODS[TASKS[task]])
    if task in N2V_TASKS:
        methods.add("n2v")
    if TASKS[task] == "denoise" and not task.startswith("3d"):
        methods.add("ours-denoise-2d-nl")  # the noise-conditioned model beside denoise-2d
    return methods | {"ours-denoise-3d"} if task.startswith("3d") else methods


def _model(task: str, method: str) -> str:
    if method in ("ours-denoise-3d", "ours-denoise-2d-nl"):
        return method.removeprefix("ours-")
    return "deconv-3d" if task.startswith("3d") else MODELS[TASKS[task]]


def _bm3d_installed() -> bool:
    return importlib.util.find_spec("bm3d") is not None


@pytest.mark.slow
def test_every_task_and_method_is_scored(quick_run):
    _, _, results, _ = quick_run
    assert set(results["tasks"]) == set(TASKS)
    for task, record in results["tasks"].items():
        _check_task(task, record, bm3d=_bm3d_installed())


def _check_task(task: str, record: dict, *, bm3d: bool) -> None:
    shipped = set(dn.list_models())
    assert set(record["methods"]) == _expected_methods(task), task
    assert len(record["images"]) == 2
    for method, entry in record["methods"].items():
        if entry["status"] == "n/a":
            if method == "bm3d":  # the optional dependency, and only when it is missing
                assert not bm3d and entry["reason"] == "bm3d not installed", entry
                continue
            if method == "ours-ft" and task.startswith("camera"):  # ADU tasks: not run
                assert entry["reason"] == "not run on camera (ADU) tasks", entry
                continue
            # otherwise only a model that is not shipped yet may be missing
            assert method in ("ours", "ours-denoise-3d", "ours-denoise-2d-nl"), (task, method)
            assert _model(task, method) not in shipped, (task, method)
            continue
        _check_entry(task, method, entry)


def _check_entry(task: str, method: str, entry: dict) -> None:
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
    # sCMOS units (offset 100 ADU): restored in ADU, right once mapped back
    camera = tasks["camera-20"]["methods"]
    assert camera["ours"]["mean_psnr"] > camera["identity"]["mean_psnr"] + 5
    # the weights the numbers belong to
    weights = Path(dn.__file__).parent / "weights" / "deconv-3d.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert results["weights"]["deconv-3d.safetensors"] == digest
    impulse = tasks["salt-and-pepper-20"]["methods"]
    assert impulse["median"]["mean_psnr"] > impulse["identity"]["mean_psnr"] + 3
    assert results["settings"]["quick"] is True


def test_tuning_picks_the_grid_point_with_the_best_psnr(quality_benchmark, monkeypatch):
    import numpy as np

    quality = quality_benchmark
    clean = np.linspace(0, 0.5, 256, dtype=np.float32).reshape(16, 16)  # no clipping at 1
    # size 5 gives the smallest error, then 3, then 7: the grid order is not the answer
    errors = {3: 0.05, 5: 0.01, 7: 0.2}
    monkeypatch.setattr(quality, "apply", lambda m, t, y, p, c: y + errors[p["size"]])
    task = next(t for t in quality.TASKS if t.name == "salt-and-pepper-20")
    best, value = quality.tune("median", task, [(clean, clean)] * 2, {}, quick=False)
    assert best == {"size": 5}
    assert value == pytest.approx(20 * np.log10(1 / 0.01), abs=1e-3)
    best, _ = quality.tune("median", task, [(clean, clean)], {}, quick=True)
    assert best == {"size": 5}
    assert quality.tune("identity", task, [(clean, clean)], {}, quick=True) == ({}, None)


@pytest.mark.slow
def test_without_bm3d_the_benchmark_reports_it_as_not_available(tmp_path):
    # bm3d hidden from the benchmark, as on a machine without it
    hide = (
        "import importlib.util, runpy, sys; real = importlib.util.find_spec; "
        "importlib.util.find_spec = lambda n, *a, **k: None if n == 'bm3d' else real(n, *a, **k); "
        "sys.modules['bm3d'] = None; sys.argv = sys.argv[1:]; "
        "sys.path.insert(0, sys.argv[0].rsplit('/', 1)[0]); "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    out = tmp_path / "q.json"
    cmd = [sys.executable, "-c", hide, str(SCRIPT), "--quick", "--tasks", "gaussian-15"]
    proc = subprocess.run(
        [*cmd, "--care-seconds", "0", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())["tasks"]["gaussian-15"]
    assert record["methods"]["bm3d"] == {"status": "n/a", "reason": "bm3d not installed"}
    assert "bm3d: n/a" in proc.stderr + proc.stdout
    methods = record["methods"]
    assert methods["care"]["reason"] == "skipped"  # --care-seconds 0
    record = {**record, "methods": {**methods, "care": methods["identity"]}}
    _check_task("gaussian-15", record, bm3d=False)
    with pytest.raises(AssertionError):
        _check_task("gaussian-15", record, bm3d=True)  # with bm3d installed, n/a is an error


def test_learned_baselines_record_their_budgets(quick_run):
    _, _, results, _ = quick_run
    methods = results["tasks"]["poisson-gaussian-5"]["methods"]
    n2v = methods["n2v"]["training"]
    assert n2v["steps"] == 3 and n2v["budget"] == "3 steps"  # --quick: 3 steps
    assert "no clean data" in n2v["trained_on"]
    care = methods["care"]["training"]
    # read from denoise-2d's metadata: every stage (16,000 + 41,212 continued + 37,185
    # with sharp scenes + 43,221 with sparse scenes and light noise + 37,651 with photon
    # counting and speckle, the last interpolated halfway back; its steps count in full
    # + 22,465 with bright objects and the hdr-mse loss)
    assert care["ours"] == {"steps": 197734, "batch": 16}
    ft = methods["ours-ft"]["training"]
    assert ft["from"] == "denoise-2d" and ft["steps"] == 2  # --quick: 2 fine-tuning steps
    deconv_ft = results["tasks"]["3d-lowlight-10"]["methods"]["ours-ft"]["training"]
    assert deconv_ft["from"] == "deconv-3d" and deconv_ft["batch"] == 1
    assert "n2v" not in results["tasks"]["gaussian-15"]["methods"]  # Poisson tasks only


def test_care_with_a_step_budget_takes_exactly_that_many_steps():
    sys.path.insert(0, str(SCRIPT.parent))
    from _care import train_care

    def draw(rng):
        clean = rng.random((16, 16)).astype(np.float32)
        return clean + rng.normal(0, 0.1, clean.shape).astype(np.float32), clean

    net, record = train_care(
        draw, ndim=2, seconds=1e9, steps=4, patch=(8, 8), batch=2, base=4, pool=2
    )
    assert record["steps"] == 4 and record["budget"] == "4 steps"


def test_merge_joins_the_methods_of_split_runs(quality_benchmark, tmp_path):
    """A new model's column, run alone with --methods, joins the earlier run's task."""
    quality = quality_benchmark

    def entry(psnr):
        return {
            "status": "ok",
            "params": {},
            "mean_psnr": psnr,
            "mean_ssim": 0.5,
            "seconds_per_megapixel": 1.0,
        }

    def run(methods, only):
        return {
            "machine": "test",
            "weights": {"denoise-2d.safetensors": "abc"},
            "settings": {
                "quick": True,
                "seed": 0,
                "care_seconds": 2.0,
                "device": "cpu",
                "methods": only,
                "minutes": 1.0,
            },
            "tasks": {"gaussian-25": {"images": [], "methods": methods}},
        }

    first = run({"identity": entry(20.0), "ours": entry(30.0)}, None)
    second = run({"ours-denoise-2d-nl": entry(30.5)}, ["ours-denoise-2d-nl"])
    paths = []
    for i, r in enumerate((first, second)):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(r))
    merged = quality.merge(paths, None, None, None)
    methods = merged["tasks"]["gaussian-25"]["methods"]
    assert set(methods) == {"identity", "ours", "ours-denoise-2d-nl"}
    assert methods["ours-denoise-2d-nl"]["mean_psnr"] == 30.5
    assert merged["settings"]["minutes"] == 2.0
    other = run({}, None)
    other["settings"]["seed"] = 1  # other noise draws: refused
    paths.append(tmp_path / "other.json")
    paths[-1].write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="other settings"):
        quality.merge(paths, None, None, None)

    # a run of older weights gives its baselines, never its ours* columns
    older = run({"identity": entry(20.0), "care": entry(29.0), "ours": entry(28.0)}, None)
    older["weights"] = {"denoise-2d.safetensors": "older"}
    older["machine"] = "the baselines' machine"
    paths = [tmp_path / "older.json", tmp_path / "now.json"]
    paths[0].write_text(json.dumps(older))
    paths[1].write_text(json.dumps(first))
    with pytest.raises(SystemExit, match="different denoise-2d"):
        quality.merge(paths, None, None, None)
    md = tmp_path / "now.md"
    merged = quality.merge(paths[1:], md, None, None, baselines=paths[:1])
    methods = merged["tasks"]["gaussian-25"]["methods"]
    assert methods["care"]["mean_psnr"] == 29.0 and methods["ours"]["mean_psnr"] == 30.0
    assert merged["weights"] == {"denoise-2d.safetensors": "abc"}
    assert merged["machine"] == "test" and merged["baselines"] == ["older.json"]
    assert "Baselines (every column but ours*) from older.json" in md.read_text()
    without_ours = dict(first, tasks={"gaussian-25": {"images": [], "methods": {}}})
    paths[1].write_text(json.dumps(without_ours))
    merged = quality.merge(paths[1:], None, None, None, baselines=paths[:1])
    assert "ours" not in merged["tasks"]["gaussian-25"]["methods"]
    # a baseline run's crops of its own (older) weights never reach the figure
    np.savez(tmp_path / "older.panels.npz", **{"gaussian-25/ours": np.zeros(2),
             "gaussian-25/bm3d": np.ones(2)})  # fmt: skip
    assert quality.load_panels(paths, 1) == {"gaussian-25": {"bm3d": pytest.approx([1, 1])}}
    assert set(quality.load_panels(paths)["gaussian-25"]) == {"ours", "bm3d"}
    changed = dict(first, tasks={"gaussian-25": {"images": ["x"], "methods": {}}})
    paths[1].write_text(json.dumps(changed))
    with pytest.raises(SystemExit, match="different test data"):
        quality.merge(paths[1:], None, None, None, baselines=paths[:1])


def test_finetune_deconv3d_benchmark_quick(tmp_path):
    """benchmarks/finetune_deconv3d.py end to end in its smoke mode: every cell scored."""
    out = tmp_path / "rows.json"
    script = SCRIPT.parent / "finetune_deconv3d.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--l2sp", "0", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [r["model"].split(",")[0] for r in rows] == [
        "Wiener (its channel)",
        "shipped deconv-3d",
        "fine-tuned",
    ]
    keys = ("3d-lowlight-20", "3d-lowlight-50", "3d-poisson-blur", "3d-widefield-20", "test")
    for row in rows:
        # restorations of noisy blurred volumes: well above 20 dB, finite
        assert all(20 < row[k] < 60 for k in keys), row
    assert "| shipped deconv-3d |" in done.stdout


def test_quality_targets_reads_each_margin_off_the_run(tmp_path):
    """benchmarks/quality_targets.py: met and missed, by how much, from the run's numbers."""
    spec = importlib.util.spec_from_file_location(
        "quality_targets", SCRIPT.parent / "quality_targets.py"
    )
    targets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(targets)

    def e(psnr, ssim, spmp=1.0, run="a.json", **extra):
        return {"status": "ok", "mean_psnr": psnr, "mean_ssim": ssim, "run": run,
                "seconds_per_megapixel": spmp, **extra}  # fmt: skip

    results = {
        "tasks": {
            "gaussian-25": {
                "methods": {
                    "bm3d": e(32.0, 0.87, spmp=50.0),
                    "nlm": e(31.0, 0.88),
                    "ours": e(32.4, 0.86, spmp=2.0),
                }
            },  # fmt: skip
            "poisson-gaussian-20": {
                "methods": {
                    "bm3d": e(30.0, 0.80),
                    "care": e(31.0, 0.9, training={"steps": 1000}),
                    "ours": e(31.6, 0.95),
                }
            },  # fmt: skip
            "3d-lowlight-10": {
                "methods": {
                    "richardson-lucy": e(28.0, 0.70),
                    "wiener": e(31.0, 0.90),
                    "care": e(33.0, 0.90, run="b.json"),
                    "ours": e(32.0, 0.95),
                }
            },  # fmt: skip
        }
    }
    rows = {(t, task): (m, v) for t, r in targets.targets(results) for task, m, v in r}
    m, v = rows[("beats every classical method, PSNR and SSIM", "gaussian-25")]
    assert m == "bm3d +0.40 dB; nlm SSIM -0.020" and v == "**missed** (SSIM by 0.020)"
    assert rows[("photos, Gaussian noise: BM3D + 0.3 dB", "gaussian-25")][1] == "met"
    assert rows[("photos, Gaussian noise: ≥ 20× BM3D's speed", "gaussian-25")] == (
        "25.0× bm3d's speed",
        "met",
    )
    pg = rows[("Poisson-Gaussian peaks 5 and 20: fair CARE + 0.5 dB", "poisson-gaussian-20")]
    assert pg == ("31.60 vs 31.00: +0.60 (CARE 1000 steps)", "met")
    care3d = rows[("3D deconvolution: fair CARE + 0.5 dB", "3d-lowlight-10")]
    assert care3d[1] == "**missed by 1.50**"
    assert rows[("3D deconvolution: tuned RL + 1 dB", "3d-lowlight-10")][1] == "met"
    # 2D restore time per megapixel, as the run timed it; 3D tasks are not 2D restores
    speed = "2D restore ≤ 1.3 s per megapixel"
    assert rows[(speed, "gaussian-25")] == ("2.00 s/MP", "**missed by 0.70 s/MP**")
    assert rows[(speed, "poisson-gaussian-20")] == ("1.00 s/MP", "met")
    assert (speed, "3d-lowlight-10") not in rows
    results["machine"] = "AMD EPYC, 1 torch threads, torch 2.13.0+cpu, Python 3.11.7, Linux"
    rows = {(t, task): (m, v) for t, r in targets.targets(results) for task, m, v in r}
    assert rows[(speed, "gaussian-25")][0] == "2.00 s/MP (AMD EPYC, 1 torch threads)"
    # a speed ratio between two runs is not a measurement
    results["tasks"]["gaussian-25"]["methods"]["bm3d"]["run"] = "other.json"
    rows = {(t, task): v for t, r in targets.targets(results) for task, _, v in r}
    assert rows[("photos, Gaussian noise: ≥ 20× BM3D's speed", "gaussian-25")] == "not measured"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(results))
    out = tmp_path / "targets.md"
    assert targets.main([str(path), "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| 2D deconvolution" not in text and text.rstrip().endswith("rows met.")
    with pytest.raises(SystemExit, match="not a --json file"):
        path.write_text("[]")
        targets.main([str(path)])


def test_weights_override_scores_a_candidate_file_in_place_of_the_shipped_model(tmp_path):
    import torch

    from napari_deconvnet.core.model import DeconvNet, widen_channels

    # a candidate: the shipped denoise-2d widened (same output) with one weight changed
    shipped = dn.load_model("denoise-2d")
    wide = DeconvNet(**{**shipped.config.to_dict(), "base_channels": 32})
    wide.load_state_dict(widen_channels(shipped.state_dict(), wide))
    with torch.no_grad():
        wide.head.bias.add_(0.05)  # brighter by 5 % of the range: a lower PSNR
    wide.metadata = dict(shipped.metadata)
    candidate = dn.save_model(wide, tmp_path / "cand.safetensors")
    runs = {}
    for label, extra in (("shipped", []), ("candidate", ["--weights", f"denoise-2d={candidate}"])):
        out = tmp_path / f"{label}.json"
        cmd = [sys.executable, str(SCRIPT), "--quick", "--tasks", "gaussian-25", "--methods"]
        cmd += ["identity", "ours", "--care-seconds", "0", "--json", str(out), *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[label] = json.loads(out.read_text())
    ours = {k: r["tasks"]["gaussian-25"]["methods"]["ours"] for k, r in runs.items()}
    assert ours["candidate"]["weights"] == str(candidate) and "weights" not in ours["shipped"]
    assert ours["candidate"]["mean_psnr"] < ours["shipped"]["mean_psnr"] - 0.1
    digest = hashlib.sha256(candidate.read_bytes()).hexdigest()
    assert runs["candidate"]["weights"]["denoise-2d.safetensors"].startswith(digest)
    assert runs["shipped"]["weights"]["denoise-2d.safetensors"] != digest
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--weights", "nonsense=/no/such/file"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "NAME=PATH" in bad.stderr


def test_a_run_of_some_tasks_leaves_the_readme_figure_alone(
    quality_benchmark, tmp_path, monkeypatch
):
    """Session 69: ``--tasks salt-and-pepper-20`` (the docstring's own example) replaced
    docs/quality_benchmark.png, four rows, with a figure of its one task; the README's
    figure comes only from a run of all its tasks now, or from an explicit --figure."""
    committed = tmp_path / "quality_benchmark.png"
    committed.write_bytes(b"the committed figure")
    monkeypatch.setattr(quality_benchmark, "DEFAULT_FIGURE", committed)
    monkeypatch.setattr(quality_benchmark, "FULL", quality_benchmark.QUICK)  # small images
    args = ["--tasks", "salt-and-pepper-20", "--care-seconds", "0", "--threads", "1"]
    quality_benchmark.main(args)
    assert committed.read_bytes() == b"the committed figure"
    asked = tmp_path / "asked.png"
    quality_benchmark.main([*args, "--figure", str(asked)])
    assert asked.stat().st_size > 1000  # a figure where one is asked for
