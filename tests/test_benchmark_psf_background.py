"""benchmarks/psf_background.py: deconvolution with a bead's crop that keeps the camera offset."""

import numpy as np
import pytest

from napari_deconvnet.core import psf as psf_module


@pytest.fixture
def psf_background(benchmark_script):
    return benchmark_script("psf_background")


def test_the_bead_crop_sits_on_its_offset_and_the_switches_restore_the_settings(psf_background):
    psf = psf_background.psfs(2)["Gaussian σ 1.5"]
    crop = psf_background.bead_crop(psf, 100.0, 3000.0, seed=0)
    border = np.r_[crop[0], crop[-1], crop[1:-1, 0], crop[1:-1, -1]]
    assert abs(np.mean(border) - 100) < 3 and 8 < np.std(border) < 12  # shot + read noise
    assert crop.max() > 2900 + 100
    assert psf_module.psf_pedestal(crop) is not None
    with psf_background.background_check_off():
        assert psf_module.psf_pedestal(crop) is None
    assert psf_module.psf_pedestal(crop) is not None
    with psf_background.cut(0.0, 3.0):
        assert (psf_module.PEDESTAL_SMOOTHING, psf_module.PEDESTAL_NOISE_CUT) == (0.0, 3.0)
    assert (psf_module.PEDESTAL_SMOOTHING, psf_module.PEDESTAL_NOISE_CUT) == (1.0, 4.0)


def test_quick_run_shows_the_crop_before_and_now(psf_background, monkeypatch, tmp_path):
    rows = psf_background.run(quick=True)
    monkeypatch.setattr(psf_background, "run", lambda quick: rows)
    out = tmp_path / "bg.md"
    assert psf_background.main(["--quick", "--threads", "1", "--markdown", str(out)]) == 0
    assert "| crop, before | crop, now |" in out.read_text()
    assert {r["ndim"] for r in rows} == {2, 3} and all(r["said"] for r in rows)
    for r in rows:  # the raw crop cost every method several dB; cleaned, it is near exact
        assert r["now"] - r["before"] > 3, r
        assert r["now"] > r["exact"] - 0.3, r
