"""benchmarks/noise_range.py: denoisers from nearly clean to very noisy, against doing nothing."""

import json

import numpy as np
import pytest


@pytest.fixture
def noise_range(benchmark_script):
    return benchmark_script("noise_range")


def test_scenes_are_unit_range_and_of_their_kind(noise_range):
    photos = noise_range.scenes(2, "photos", [71], 96, 16)
    assert len(photos) == 2 and all(p.shape == (96, 96) for p in photos)
    general = noise_range.scenes(3, "general", [71, 72, 73], 32, 8)
    assert len(general) == 3 and all(g.shape == (8, 32, 32) for g in general)
    for image in (*photos, *general, *noise_range.scenes(2, "cells", [71], 64, 8)):
        assert image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    for image in (*general, *noise_range.scenes(2, "cells", [71], 64, 8)):
        assert image.max() == pytest.approx(1, abs=1e-6)
    # general phantoms: a dim background (most pixels far below the top)
    assert all(np.median(g) < 0.3 for g in general)


def test_the_table_measures_light_noise_against_doing_nothing(noise_range, tmp_path, capsys):
    out = tmp_path / "r.json"
    argv = ["--quick", "--no-bm3d", "--threads", "1", "--scenes", "photos", "--unguarded"]
    argv += ["--json", str(out)]
    assert noise_range.main(argv) == 0
    rows = json.loads(out.read_text())["2d"]["rows"]
    assert set(rows) == {
        "photos / gaussian-1",
        "photos / gaussian-25",
        "photos / poisson-10",
        "photos / poisson-10000",
    }
    # heavy noise: the denoiser gains a lot; the noisy column is the input's own PSNR
    # (clipped to [0, 1] like every column, so a little above 20 log10(255 / 25))
    heavy = rows["photos / gaussian-25"]
    assert heavy["denoise-2d"] > heavy["noisy"] + 5
    assert 20 * np.log10(255 / 25) < heavy["noisy"] < 20 * np.log10(255 / 25) + 2.5
    text = capsys.readouterr().out
    light = rows["photos / gaussian-1"]
    assert f"{light['denoise-2d'] - light['noisy']:+.2f}" in text
    assert "denoise-2d − best baseline" in text
    # the light-noise guard: near the input; never below the unguarded model (which,
    # trained with light noise since session 26, smooths these 64² crops little: +0.13
    # guarded; the weights before lost more than 2 dB unguarded)
    assert light["denoise-2d"] > light["noisy"] - 1.5  # 64² crops: a rougher estimate
    assert light["denoise-2d"] > light["denoise-2d (unguarded)"] - 0.05


def test_speckle_rows_and_their_log_domain_baseline(noise_range):
    tasks = noise_range.noises(False, ["speckle"])
    assert [t.name for t in tasks] == ["speckle-3%", "speckle-5%", "speckle-10%", "speckle-20%"]
    clean = noise_range.scenes(2, "cells", [71], 64, 8)[0]
    task = tasks[2]
    noisy = noise_range.quality.add_noise(task, clean, [71, 0])
    # multiplicative: the error grows with the intensity (std 10% of it)
    bright, dim = clean > 0.5, (clean > 0.05) & (clean < 0.2)
    ratio = np.std((noisy - clean)[bright] / clean[bright])
    assert ratio == pytest.approx(0.1, rel=0.15)
    assert np.std((noisy - clean)[dim]) < 0.5 * np.std((noisy - clean)[bright])
    out = noise_range.baseline_bm3d(task, noisy)
    assert out.shape == clean.shape and out.dtype == np.float32
    psnr = lambda x: 10 * np.log10(1 / np.mean((np.clip(x, 0, 1) - clean) ** 2))  # noqa: E731
    assert psnr(out) > psnr(noisy) + 3


def test_count_rows_are_pure_photon_counts(noise_range):
    tasks = noise_range.noises(False, ["counts"])
    assert [t.name for t in tasks] == [f"counts-{p}" for p in (1, 2, 5, 10, 20, 100)]
    clean = noise_range.scenes(2, "cells", [71], 64, 8)[0]
    noisy = noise_range.quality.add_noise(tasks[1], clean, [71, 0])  # 2 photons at the peak
    counts = noisy * 2
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-5)  # on the lattice
    assert (counts == 0).mean() > 0.4  # many zeros: the case the normalisation got wrong
