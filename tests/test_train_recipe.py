"""scripts/train_models.py --recipe shipped: continue a shipped model with the
recipe recorded in its weights (what scripts/train_gpu.sh runs on a lent GPU)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
train_models = pytest.importorskip("train_models")

import napari_deconvnet as dn  # noqa: E402

SHIPPED = ["denoise-2d", "denoise-3d", "deconv-2d", "deconv-3d", "salt-and-pepper"]


def _record(model) -> dict:
    record = model.metadata["training"]
    return ast.literal_eval(record) if isinstance(record, str) else record


def test_a_recorded_command_line_loses_its_run_flags_and_keeps_its_recipe():
    recorded = [
        "--model", "deconv-3d", "--init", "runs/a.safetensors", "--dual-conditioning", "20",
        "--loss=range-mse", "--max-seconds", "7000", "--steps=20000", "--threads", "1",
        "--checkpoint", "runs/ck", "--resume", "--lr", "2e-4", "--out", "x.safetensors",
        "--device", "cuda", "--val-every", "500", "--seed", "3", "--precision", "bfloat16",
    ]  # fmt: skip
    assert train_models.recipe_flags(recorded) == [
        "--dual-conditioning", "20", "--loss=range-mse", "--lr", "2e-4",
        "--precision", "bfloat16",
    ]  # fmt: skip


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_recipe_is_the_record_of_the_shipped_weights(name):
    # the repository's weights, which the script trains from (the installed package's
    # copy may live elsewhere, as in CI's non-editable install)
    weights = train_models.WEIGHTS / f"{name}.safetensors"
    model = dn.load_model(weights)
    recipe = train_models.shipped_recipe(name)
    recorded = [str(a) for a in _record(model)["argv"]]
    assert recipe[:2] == ["--model", name]
    assert Path(recipe[-1]).resolve() == weights.resolve()
    assert recipe[-2] == "--init"
    # every recipe flag of the record, in order, and none of its run's own flags
    assert recipe[2:-2] == train_models.recipe_flags(recorded)
    for flag in ("--max-seconds", "--checkpoint", "--out", "--threads", "--steps"):
        assert flag not in recipe
    if name == "deconv-3d":  # what makes it the shipped kind: both conditioning channels
        assert recipe[2:4] == ["--dual-conditioning", "20"] and "range-mse" in recipe


def test_continuing_a_shipped_model_records_its_recipe_and_never_returns_a_worse_one(tmp_path):
    out = tmp_path / "sp.safetensors"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train_models.py"),
            "--model",
            "salt-and-pepper",
            "--recipe",
            "shipped",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--steps",
            "1",
            "--val-every",
            "1",
            "--phantoms",
            "2",
            "--lr",
            "1e-2",
            "--out",
            str(out),
            "--checkpoint",
            str(tmp_path / "ck"),
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    trained = dn.load_model(out)
    shipped = dn.load_model(train_models.WEIGHTS / "salt-and-pepper.safetensors")
    argv = _record(trained)["argv"]
    # the recipe first, then this call's flags (its --lr wins over the recipe's)
    assert argv[: len(train_models.shipped_recipe("salt-and-pepper"))] == (
        train_models.shipped_recipe("salt-and-pepper")
    )
    assert argv[argv.index("--lr") + 1] == "1e-2"
    assert (
        trained.config == shipped.config
        and trained.metadata["conditioning"] == (shipped.metadata["conditioning"])
    )
    # one step at a learning rate 10x the recipe's does not beat the shipped
    # weights on validation, so they come back as they were
    assert "returned unchanged" in run.stdout
    for (k, a), (_, b) in zip(
        trained.state_dict().items(), shipped.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
