"""One training engine: options of dn.train, the weights' moving average, and core.fit.

``core.fit`` is the engine under the scripts that train the shipped models;
it runs the same Trainer as ``dn.train``. Networks are tiny and runs a few
steps, so that the file takes seconds.
"""

import hashlib
import json

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core import phantoms
from napari_deconvnet.core.fit import fit
from napari_deconvnet.core.model import DeconvNet, DeconvNetConfig
from napari_deconvnet.core.train_setup import OPTIONS, training_precision

FAST = dict(patch_size=32, batch_size=4, network={"base_channels": 8}, device="cpu")


def _pair(seed=0, shape=(96, 96)):
    rng = np.random.default_rng(seed)
    clean = phantoms.cells_2d(rng, shape[0])
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    return noisy, clean


class _Pairs:
    """Noisy/clean 32 px patches of phantoms, seeded (a script's sampler, small)."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed):
        self.rng = np.random.default_rng(seed)

    def batch(self, n):
        clean = np.stack([phantoms.cells_2d(self.rng, 32) for _ in range(n)])[:, None]
        noisy = clean + self.rng.normal(0, 0.1, clean.shape)
        return torch.from_numpy(noisy.astype(np.float32)), torch.from_numpy(clean)


def _score(pairs):
    def evaluate(net):
        with torch.no_grad():
            out = net(torch.from_numpy(pairs[0]))
        mse = float(torch.mean((out - torch.from_numpy(pairs[1])) ** 2))
        psnr = -10 * np.log10(mse)
        return -psnr, {"val_psnr": psnr, "val_gain": 0.0}

    return evaluate


def _val_pairs():
    rng = np.random.default_rng(99)
    clean = np.stack([phantoms.cells_2d(rng, 32) for _ in range(4)])[:, None]
    noisy = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    return noisy, clean.astype(np.float32)


def _net():
    torch.manual_seed(0)
    return DeconvNet(DeconvNetConfig(base_channels=8))


def _metadata(**record):
    return {"name": "fit-test", "training": {"steps": record["steps"]}}


def test_unknown_option_names_train_and_lists_the_accepted_ones():
    noisy, _ = _pair()
    with pytest.raises(TypeError, match=r"^train\(\) got unexpected option\(s\) 'foo'") as err:
        dn.train(noisy, epochs=1, foo=1)
    assert "_train_iter" not in str(err.value)
    assert "accepted options are" in str(err.value) and "steps_per_epoch" in str(err.value)
    assert {"network", "lr", "l2sp", "rehearsal", "ema", "autosave", "resume"} <= set(OPTIONS)
    with pytest.raises(TypeError, match=r"^train_iter\(\) got unexpected option\(s\) 'bar'"):
        next(dn.train_iter(noisy, bar=2))


def test_learning_rates_match_the_docstring():
    from napari_deconvnet.core import training

    assert (training.LR_SCRATCH, training.LR_SCRATCH_3D, training.LR_FINE_TUNE) == (
        3e-3,
        1e-3,
        1e-3,
    )
    doc = " ".join(dn.train.__doc__.split())
    assert "3e-3 for a new 2D network, 1e-3 for a new 3D network" in doc
    assert "and 1e-3 when fine-tuning" in doc
    noisy, clean = _pair()
    result = dn.train(noisy, clean, epochs=1, steps_per_epoch=1, **FAST)
    assert result.config.lr == 3e-3


def test_training_precision_uses_the_one_resolver(monkeypatch):
    from napari_deconvnet.core import devices

    cpu = torch.device("cpu")
    # training: float32 on the CPU, even where inference's auto is bfloat16 (AMX): bfloat16
    # training measured worse from scratch (benchmarks/train_precision.py)
    monkeypatch.setattr(devices, "CPU_AUTO_BFLOAT16", True)
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: True)
    monkeypatch.setenv(devices.CPU_BFLOAT16_ENV, "1")
    assert devices.resolve_precision("auto", cpu) == torch.bfloat16  # inference
    assert training_precision("auto", cpu) == torch.float32
    assert training_precision("bfloat16", cpu) == torch.bfloat16  # on request
    assert training_precision("float32", cpu) == torch.float32
    with pytest.raises(ValueError, match="float16.*needs a GPU"):
        training_precision("float16", cpu)
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        training_precision("half", cpu)


def test_ema_is_validated_beside_the_weights_and_the_better_is_kept():
    noisy, clean = _pair()
    result = dn.train(noisy, clean, epochs=3, steps_per_epoch=3, ema=0.9, seed=1, **FAST)
    history = result.history
    assert all("ema_val_loss" in h for h in history) and result.config.ema == 0.9
    scores = [min(h["val_loss"], h["ema_val_loss"]) for h in history]
    best = result.model.metadata["training"]["best_val_loss"]
    assert best == pytest.approx(min(scores), rel=1e-12)
    assert result.best_epoch == int(np.argmin(scores))
    with pytest.raises(ValueError, match="ema must be a decay in"):
        dn.train(noisy, clean, epochs=1, ema=1.5, **FAST)


def test_the_model_file_records_the_scores_of_the_weights_it_holds(tmp_path):
    # when the moving average won, the file, the "end" event and the widget gave the
    # raw weights' loss and PSNR of that epoch beside the averaged weights
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    clean = (0.5 + 0.3 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    events = []
    result = dn.train(
        noisy, clean, epochs=3, steps_per_epoch=5, ema=0.8, lr=0.03, seed=2,
        callback=events.append, autosave=tmp_path / "run.safetensors", **FAST,
    )  # fmt: skip
    assert "moving average (EMA)" in result.message  # the case: the average won
    best = result.history[result.best_epoch]
    assert best["ema_val_loss"] != best["val_loss"]
    for record in (result.model.metadata, dn.load_model(tmp_path / "run.safetensors").metadata):
        training = record["training"]
        assert training["best_val_loss"] == pytest.approx(best["ema_val_loss"], rel=1e-9)
        assert training["val_psnr"] == pytest.approx(best["ema_val_psnr"], rel=1e-9)
    assert events[-1].kind == "end"
    assert events[-1].val_loss == pytest.approx(best["ema_val_loss"], rel=1e-9)


def test_fit_trains_a_given_network_keeps_the_best_and_resumes(tmp_path):
    val = _val_pairs()
    options = dict(
        evaluate=_score(val),
        metadata=_metadata,
        validate_every=2,
        batch_size=4,
        lr=3e-3,
        ema=0.9,
        autosave=tmp_path / "run.safetensors",
        seed=0,
    )
    full = fit(_net(), _Pairs(), steps=6, **options)
    assert full.steps == 6 and [h["step"] for h in full.history] == [0, 2, 4, 6]
    assert full.model.metadata == {"name": "fit-test", "training": {"steps": 6}}
    # the kept weights score the best validation of raw and averaged weights
    best = min(min(h["val_loss"], h.get("ema_val_loss", np.inf)) for h in full.history)
    assert _score(val)(full.model)[0] == pytest.approx(best, abs=1e-5)
    assert full.improved is (best < full.history[0]["val_loss"])  # the start competes too
    assert (tmp_path / "run.resume.safetensors").exists()

    # a run of 4 steps, then resumed to 6: the step count and history go on
    part = tmp_path / "part.safetensors"
    first = fit(_net(), _Pairs(), steps=4, **{**options, "autosave": part})
    resumed = fit(_net(), _Pairs(), steps=6, resume=True, **{**options, "autosave": part})
    assert first.steps == 4 and resumed.steps == 6
    assert [h["step"] for h in resumed.history] == [0, 2, 4, 6]
    assert resumed.history[:3] == first.history
    with pytest.raises(ValueError, match="validation interval"):
        fit(
            _net(),
            _Pairs(),
            steps=6,
            resume=True,
            **{**options, "autosave": part, "validate_every": 3},
        )


def test_training_data_generators_are_seeded():
    a = phantoms.cells_2d(np.random.default_rng(3), 48)
    b = phantoms.cells_2d(np.random.default_rng(3), 48)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.max() == pytest.approx(1.0, abs=1e-6) and a.min() >= 0
    volume = phantoms.cells_3d(np.random.default_rng(3), (8, 24, 24))
    assert volume.shape == (8, 24, 24) and volume.max() == pytest.approx(1.0, abs=1e-6)
    for seed in range(6):
        kernel, record = phantoms.random_psf(np.random.default_rng(seed), 2 + seed % 2)
        assert kernel.ndim == 2 + seed % 2 and kernel.sum() == pytest.approx(1.0, abs=1e-6)
        assert record["kind"] in ("gaussian", "airy", "widefield")


@pytest.mark.slow
def test_train_models_script_trains_through_the_engine_and_resumes(tmp_path):
    """``scripts/train_models.py`` in a tiny run: the engine's record, then a resume."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "train_models.py"
    out = tmp_path / "sp.safetensors"
    args = [sys.executable, str(script), "--model", "salt-and-pepper", "--device", "cpu"]
    args += ["--threads", "1", "--steps", "2", "--val-every", "1", "--phantoms", "2"]
    args += ["--checkpoint", str(tmp_path / "runs"), "--resume", "--out", str(out)]
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=600)
    training = dn.load_model(out).metadata["training"]
    assert training["engine"] == "napari_deconvnet.core.fit" and training["steps"] == 2
    assert training["best_weights"] in ("raw", "ema") or training["best_step"] == 0
    assert (tmp_path / "runs" / "salt-and-pepper.resume.safetensors").exists()
    log = json.loads(out.with_name("sp.log.json").read_text())
    assert [h["step"] for h in log["history"]] == [0, 1, 2]
    again = subprocess.run(args, check=True, capture_output=True, text=True, timeout=600)
    assert "resumed at step 2" in again.stdout
    # a second stage from those weights logs the first stage's curve too
    out2 = tmp_path / "sp2.safetensors"
    stage2 = args[: args.index("--checkpoint")] + ["--init", str(out), "--out", str(out2)]
    stage2 += ["--checkpoint", str(tmp_path / "runs2")]
    subprocess.run(stage2, check=True, capture_output=True, text=True, timeout=600)
    log2 = json.loads(out2.with_name("sp2.log.json").read_text())
    first_sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert log2["training"]["init_record"]["sha256"] == first_sha
    assert [h["step"] for h in log2["earlier_stages"][0]["history"]] == [0, 1, 2]
    assert log2["earlier_stages"][0]["training"]["argv"] == log["training"]["argv"]


def test_range_mse_weighs_each_sample_by_its_clean_range(monkeypatch):
    """``train_models --loss range-mse``: targets carry 1/range**2, the loss weighs by it."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "scripts"))
    import train_models
    from _shipped_data import Sampler, make_phantom_3d, range_mse

    torch.manual_seed(0)
    pred, target = torch.rand(2, 1, 4, 4, 4), torch.rand(2, 1, 4, 4, 4)
    same = torch.cat([target, torch.ones_like(target)], dim=1)
    assert torch.allclose(range_mse(pred, same), torch.nn.functional.mse_loss(pred, target))
    weighted = same.clone()
    weighted[1, 1] = 3.0  # the second sample spans a third of the first's range, squared
    per = (pred - target).square().flatten(1).mean(1)
    assert torch.allclose(range_mse(pred, weighted), (per[0] + 3 * per[1]) / 4)

    task = train_models.TASKS["deconv-3d"]
    rng = np.random.default_rng(0)
    phantoms = [make_phantom_3d(rng, (40, 100, 100)) for _ in range(2)]
    net = dn.load_model("deconv-3d")
    replay = np.random.default_rng(1)
    sampler = Sampler(task, {}, phantoms, net, np.random.default_rng(1), range_weight=True)
    x, y = sampler.batch(2)
    assert x.shape[1] == net.config.in_channels and y.shape[1] == 2
    for sample in y:  # a constant weight, at most 1 / 0.05**2, at least 1 / range**2 of the patch
        weight = sample[1]
        assert torch.all(weight == weight.flatten()[0]) and 0 < weight.flatten()[0] <= 400
        assert weight.flatten()[0] <= 1 / float(sample[0].max() - sample[0].min()) ** 2 + 1e-3
    # --range-power 1: the same regions (same stream) weigh 1 / range, the square root
    milder = Sampler(task, {}, phantoms, net, replay, True, range_power=1)
    x1, y1 = milder.batch(2)
    assert torch.equal(x1, x) and torch.equal(y1[:, :1], y[:, :1])
    assert torch.allclose(y1[:, 1], y[:, 1].sqrt())


def test_3d_validation_weighs_every_photon_level_and_psf_family(monkeypatch):
    """train_models' 3D validation: each noise level on each phantom and PSF family.

    Nine randomly drawn pairs (the earlier set) were seven widefield PSFs and
    mostly well exposed, so checkpoints were chosen on bright volumes."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "scripts"))
    import train_models
    from _shipped_data import VALIDATION_NOISE_3D, from_adu, validation_set

    task = train_models.TASKS["deconv-3d"]
    pairs = validation_set(task, {}, 0)
    levels = len(VALIDATION_NOISE_3D)
    assert len(pairs) == 4 * 2 * levels  # three phantoms and a sharp one
    seen = {
        (p["info"]["psf"]["kind"], p["info"].get("peak", p["info"].get("sigma"))) for p in pairs
    }
    assert len(seen) == 2 * levels  # every (family, noise) combination
    for p in pairs:  # the PSF was drawn from the family and blurs the trailing axes
        assert p["psf"].ndim == 3 and abs(float(p["psf"].sum()) - 1) < 1e-5
    camera = [p for p in pairs if "adu" in p["info"]]
    assert 0 < len(camera) < len(pairs)
    # the noise is the level's: Poisson of the blurred volume at `peak` photons
    # plus `read_noise` electrons, in units of the peak
    from napari_deconvnet.core.psf import blur

    for peak in (8.0, 800.0):
        p = next(q for q in pairs if q["info"].get("peak") == peak and "adu" not in q["info"])
        blurred = blur(p["clean"], p["psf"])
        measured = float(np.std(from_adu(p["noisy"], p["info"]) - blurred))
        expected = np.sqrt(np.mean(np.clip(blurred, 0, None)) / peak + (1.5 / peak) ** 2)
        assert abs(measured / expected - 1) < 0.1, (peak, measured, expected)
    again = validation_set(task, {}, 0)  # deterministic
    assert all(np.array_equal(a["noisy"], b["noisy"]) for a, b in zip(pairs, again, strict=True))
    assert len(validation_set(train_models.TASKS["denoise-3d"], {}, 0)) == 4 * levels


def test_sharp_training_scenes_hold_structures_narrower_than_a_psf():
    """``cells_2d/cells_3d(sharp=)``: sub-resolution scenes for the deconvolution models.

    Trained on smoothed scenes only, ``deconv-2d`` lost 1.3-1.5 dB to
    Richardson-Lucy on one-pixel filaments and beads (the *blurred* sample)
    while it won by 2-3 dB once they were smoothed by 1.4 px."""
    from scipy import ndimage

    def detail(image):  # the mean absolute Laplacian, per unit of mean brightness
        return float(np.abs(ndimage.laplace(image)).mean() / image.mean())

    for ndim, make, shape in ((2, phantoms.cells_2d, 128), (3, phantoms.cells_3d, (16, 48, 48))):
        for seed in range(4):
            # the default scenes are unchanged by the option (no extra random draw)
            a = make(np.random.default_rng(seed), shape)
            b = make(np.random.default_rng(seed), shape, sharp=0.0)
            assert np.array_equal(a, b)
        sharp = [detail(make(np.random.default_rng(s), shape, sharp=1.0)) for s in range(6)]
        smooth = [detail(make(np.random.default_rng(s), shape)) for s in range(6)]
        assert np.median(sharp) > 1.5 * np.median(smooth), (ndim, sharp, smooth)
        x = make(np.random.default_rng(0), shape, sharp=1.0)
        assert x.dtype == np.float32 and x.min() >= 0 and x.max() == 1.0


def _continue_deconv_2d(tmp_path, out, widening):
    """``train_models.py`` continuing the shipped ``deconv-2d`` with the `widening`
    options for one step at lr 1e-9, and the same command without them (its own
    output and checkpoints): ``(args, plain)``."""
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "train_models.py"
    shipped = Path(dn.__file__).parent / "weights" / "deconv-2d.safetensors"
    args = [sys.executable, str(script), "--model", "deconv-2d", "--device", "cpu"]
    args += ["--init", str(shipped), *widening, "--phantoms", "2"]
    args += ["--threads", "1", "--steps", "1", "--val-every", "1", "--lr", "1e-9"]
    args += ["--checkpoint", str(tmp_path / "runs"), "--out", str(out)]
    plain = [a for a in args if a not in widening]
    plain[plain.index("--out") + 1] = str(tmp_path / "plain.safetensors")
    plain[plain.index("--checkpoint") + 1] = str(tmp_path / "plain-runs")
    return args, plain


def _step_0(arguments):
    """The validation PSNR ``train_models.py`` prints for its starting model."""
    import re
    import subprocess

    run = subprocess.run(arguments, check=True, capture_output=True, text=True, timeout=600)
    return float(re.search(r"step 0: val psnr ([\d.]+)", run.stdout).group(1))


@pytest.mark.slow
def test_train_models_widens_deconv_2d_to_dual_conditioning_exactly(tmp_path):
    """``--dual-conditioning`` from the RL-conditioned ``deconv-2d``: step 0 scores as before."""
    out = tmp_path / "d2.safetensors"
    # 30 RL iterations, as the shipped model's channel: only the Wiener channel is new
    args, plain = _continue_deconv_2d(tmp_path, out, ["--dual-conditioning", "30"])
    # the same validation restored with the shipped model, as it is, in this run's
    # precision (the weights' recorded best_val_psnr comes from their training run's
    # validation, which since session 48 also holds PSFs beyond the family)
    assert _step_0(args) == pytest.approx(_step_0(plain), abs=0.02)
    net = dn.load_model(out)
    assert net.config.in_channels == 3 and net.config.residual_input == 2
    assert net.metadata["conditioning"]["method"] == "wiener+richardson-lucy"
    assert "Wiener and Richardson-Lucy (30 iterations)" in net.metadata["description"]


def test_train_models_widens_deconv_2d_to_more_channels_exactly(tmp_path):
    """``--base-channels 28`` from the shipped ``deconv-2d``: step 0 scores as it does.

    Both scores come from the script in this test's precision: the weights'
    recorded ``best_val_psnr`` was validated in the training run's (bfloat16
    on a CPU with AMX), which differed from float32 by 0.01 dB for the
    weights shipped in session 47."""
    import subprocess

    out = tmp_path / "wide.safetensors"
    args, plain = _continue_deconv_2d(tmp_path, out, ["--base-channels", "28"])
    # printed to 0.01 dB: a widened start that drifted would differ by more
    assert _step_0(args) == pytest.approx(_step_0(plain), abs=0.011)
    assert dn.load_model(out).config.base_channels == 28
    narrower = [*args[: args.index("--base-channels")], "--base-channels", "16"]
    narrower += ["--steps", "1", "--out", str(tmp_path / "n.safetensors")]
    failed = subprocess.run(narrower, capture_output=True, text=True, timeout=600)
    assert failed.returncode != 0 and "can only be widened" in failed.stderr


def test_train_default_widens_denoise_2d_exactly(tmp_path):
    """``train_models.py --model denoise-2d --base-channels 28`` hands the width to
    ``train_default.py``: the widened start scores what the shipped model scores."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "train_models.py"
    shipped = Path(dn.__file__).parent / "weights" / "denoise-2d.safetensors"
    args = [sys.executable, str(script), "--model", "denoise-2d", "--device", "cpu"]
    args += ["--init", str(shipped), "--phantoms", "2", "--threads", "1", "--steps", "1"]
    args += ["--val-every", "1", "--lr", "1e-9"]
    scores = {}
    for width in (None, 28):
        extra = [] if width is None else ["--base-channels", str(width)]
        out = tmp_path / f"d{width}.safetensors"
        run = subprocess.run(
            [*args, *extra, "--checkpoint", str(tmp_path / f"r{width}"), "--out", str(out)],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        scores[width] = float(re.search(r"step 0: val psnr ([\d.]+)", run.stdout).group(1))
        assert dn.load_model(out).config.base_channels == (width or 24)
    assert scores[28] == pytest.approx(scores[None], abs=0.005)
