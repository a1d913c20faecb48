"""benchmarks/psf_mismatch.py: 2D and 3D deconvolution given a PSF too wide or too narrow."""

import numpy as np
import pytest


@pytest.fixture
def psf_mismatch(benchmark_script):
    return benchmark_script("psf_mismatch")


def test_the_given_psf_is_the_true_one_magnified(psf_mismatch):
    for name, psf in psf_mismatch.true_psfs().items():
        assert psf.sum() == pytest.approx(1.0, abs=1e-5), name
        np.testing.assert_array_equal(psf_mismatch.given_psf(psf, 1.0), psf.astype(np.float32))
        y, x = np.indices(psf.shape) - psf.shape[0] // 2
        spread = float((psf * (x**2 + y**2)).sum())
        for factor in (0.7, 1.45):
            given = psf_mismatch.given_psf(psf, factor)
            y, x = np.indices(given.shape) - given.shape[0] // 2
            assert float((given * (x**2 + y**2)).sum()) == pytest.approx(
                factor**2 * spread, rel=0.1
            ), (name, factor)


def test_classical_methods_are_tuned_with_the_given_psf_off_the_scored_scenes(
    psf_mismatch, tmp_path
):
    out = tmp_path / "m.md"
    assert psf_mismatch.main(["--quick", "--threads", "1", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| Gaussian σ 1.5 | 300 | 1.45 |" in text
    assert "deconv-2d − best classical" in text and "given too wide (× > 1)" in text
    assert "| given width × | input |" in text and "\n| 1.45 | " in text  # means per factor
    rows = psf_mismatch.run("test", ["deconv-2d"], quick=True)
    exact, wide = (next(r for r in rows if r["factor"] == f) for f in (1.0, 1.45))
    for row in rows:
        assert row["params"]["richardson-lucy"] in psf_mismatch.GRIDS["richardson-lucy"]
        assert row["params"]["wiener"] in psf_mismatch.GRIDS["wiener"]
        assert row["input"] == exact["input"]  # the same degraded scenes for every factor
    # with the exact PSF the model leads; a PSF given too wide costs every method
    assert exact["deconv-2d"] > max(exact["richardson-lucy"], exact["wiener"])
    for method in ("richardson-lucy", "wiener", "deconv-2d"):
        assert wide[method] < exact[method]
    means = psf_mismatch.summary(rows, ["deconv-2d"])["deconv-2d"]
    assert means["exact"] == pytest.approx(exact["deconv-2d"])
    assert means["all"] == pytest.approx((exact["deconv-2d"] + wide["deconv-2d"]) / 2)


def test_3d_volumes_are_split_and_every_psf_fits_them_magnified(psf_mismatch):
    test, validation, tuning = (
        psf_mismatch.volumes(s, quick=False) for s in psf_mismatch.SEEDS_3D
    )
    assert len(test) == len(validation) == 3 and len(tuning) == 2
    assert {n.split()[-1] for n, _ in test} == {"71"} and {
        n.split()[-1] for n, _ in validation
    } == {"81"}
    for _, v in test + validation + tuning:
        assert v.shape == psf_mismatch.SHAPE_3D and v.min() >= 0 and v.max() == pytest.approx(1)
    assert not np.array_equal(test[0][1], validation[0][1])
    for name, psf in psf_mismatch.true_psfs(3).items():
        assert psf.ndim == 3 and psf.sum() == pytest.approx(1.0, abs=1e-5), name
        widest = psf_mismatch.given_psf(psf, max(psf_mismatch.FACTORS))
        assert all(p <= s for p, s in zip(widest.shape, psf_mismatch.SHAPE_3D, strict=True))


def test_3d_quick_run_scores_deconv_3d_against_tuned_classical_methods(psf_mismatch, tmp_path):
    out = tmp_path / "m3.md"
    assert psf_mismatch.main(["--3d", "--quick", "--threads", "1", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# 3D deconvolution with a misjudged PSF")
    assert (
        "| Gaussian σ 2.5/1.2/1.2 | 300 | 1.45 |" in text and "deconv-3d − best classical" in text
    )
    rows = psf_mismatch.run("test", ["deconv-3d"], quick=True, ndim=3)
    exact, wide = (next(r for r in rows if r["factor"] == f) for f in (1.0, 1.45))
    assert exact["deconv-3d"] > exact["input"] + 1.5  # it deconvolves
    for method in ("richardson-lucy", "wiener", "deconv-3d"):
        assert wide[method] < exact[method]  # a PSF given too wide costs every method
