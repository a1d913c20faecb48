"""benchmarks/sharp_scenes.py: denoisers on sharp and smooth scenes against BM3D."""

import json

import numpy as np
import pytest


@pytest.fixture
def sharp_scenes(benchmark_script):
    return benchmark_script("sharp_scenes")


def _steepest_edges(image):
    return float(np.percentile(np.abs(np.diff(image, axis=-1)), 99.9))


def test_sharp_scenes_have_finer_structure_than_default_ones(sharp_scenes):
    for seed in (61, 62):
        sharp = sharp_scenes.scene(2, seed, 1.0, 96, 16)
        smooth = sharp_scenes.scene(2, seed, 0.0, 96, 16)
        assert sharp.max() == pytest.approx(1) and smooth.max() == pytest.approx(1)
        assert _steepest_edges(sharp) > 1.5 * _steepest_edges(smooth)
    volume = sharp_scenes.scene(3, 61, 1.0, 48, 16)
    assert volume.shape == (16, 48, 48) and volume.dtype == np.float32


def test_bm3d_gets_the_true_noise_in_the_anscombe_domain(sharp_scenes):
    pytest.importorskip("bm3d")
    task = sharp_scenes.NOISES[3]  # poisson-gaussian-100
    clean = sharp_scenes.scene(2, 61, 0.0, 64, 16)
    noisy = sharp_scenes.quality.add_noise(task, clean, 0)
    out = sharp_scenes.bm3d(task, noisy)
    before, after = sharp_scenes.score(clean, noisy), sharp_scenes.score(clean, out)
    assert after[0] > before[0] + 5  # dB: BM3D works in its domain
    volume = np.stack([noisy, noisy])
    np.testing.assert_allclose(sharp_scenes.bm3d(task, volume)[1], out, atol=1e-6)


def test_table_scores_each_model_against_noisy_and_bm3d(sharp_scenes, tmp_path, capsys):
    pytest.importorskip("bm3d")
    out = tmp_path / "r.json"
    argv = ["--quick", "--threads", "1", "--models", "denoise-2d", "--json", str(out)]
    assert sharp_scenes.main(argv) == 0
    rows = json.loads(out.read_text())["2d"]["rows"]
    assert len(rows) == 2 * len(sharp_scenes.NOISES)
    for values in rows.values():  # (PSNR, SSIM) per column; restoring gains
        assert values["denoise-2d"][0] > values["noisy"][0] + 2
        assert values["BM3D (true noise)"][0] > values["noisy"][0] + 2
    text = capsys.readouterr().out
    assert "| sharp / gaussian-25 |" in text and "denoise-2d − BM3D" in text
    gain = rows["default / poisson-gaussian-20"]
    diff = gain["denoise-2d"][0] - gain["BM3D (true noise)"][0]
    assert f"{diff:+.2f}" in text
