"""benchmarks/dark_scenes.py: 2D deconvolution of objects in the dark, against tuned RL."""

import numpy as np
import pytest


@pytest.fixture
def dark_scenes(benchmark_script):
    return benchmark_script("dark_scenes")


def test_the_scenes_are_dark_or_over_their_background(dark_scenes):
    for kind in dark_scenes.KINDS:
        black = dark_scenes.scene(kind, 91, 0.0, (64, 64))
        assert black.max() == pytest.approx(1.0) and np.median(black) < 1e-3, kind
        lifted = dark_scenes.scene(kind, 91, 0.1, (64, 64))
        np.testing.assert_allclose(lifted, 0.1 + 0.9 * black, atol=1e-6)
        # test, validation and tuning scenes are different draws
        assert not np.array_equal(black, dark_scenes.scene(kind, 97, 0.0, (64, 64)))
        volume = dark_scenes.scene(kind, 91, 0.0, (12, 32, 32))
        assert volume.shape == (12, 32, 32) and np.median(volume) < 1e-3, kind
    elsewhere = {*dark_scenes.VALIDATION_SEEDS, dark_scenes.TUNING_SEED}
    assert not set(dark_scenes.TEST_SEEDS) & elsewhere


def test_the_table_compares_with_richardson_lucy_tuned_elsewhere(dark_scenes, tmp_path):
    out = tmp_path / "d.md"
    assert dark_scenes.main(["--quick", "--threads", "1", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| spots, few | Gaussian σ 1.5 | 100 | 0 |" in text and "deconv-2d − RL" in text
    assert "Mean in the dark" in text and "over a background of 0.1" in text
    rows = dark_scenes.run("test", ["deconv-2d"], quick=True)
    for row in rows:  # both restore: above the blurred, noisy input
        assert row["richardson-lucy"] > row["input"] + 1.0, row
        assert row["deconv-2d"] > row["input"] + 1.0, row  # least measured: +1.12
    assert {r["iterations"] for r in rows} <= set(dark_scenes.RL_ITERATIONS)


def test_the_3d_table_runs_deconv_3d(dark_scenes, tmp_path):
    out = tmp_path / "d3.md"
    assert dark_scenes.main(["--3d", "--quick", "--threads", "1", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "3D deconvolution of objects in the dark" in text and "deconv-3d − RL" in text
    assert "| filaments | Gaussian σ 2/1/1 | 50 | 0.1 |" in text
