"""benchmarks/refine.py: deconvolution from dim to bright, the network refined to the noise."""

import pytest


@pytest.fixture
def refine(benchmark_script):
    return benchmark_script("refine")


def test_the_noise_told_is_the_noise_added(refine):
    """The refinement is told the benchmark's own noise: Poisson at the scene's peak
    with 1 e- of read noise, in the images' units (variance y / peak + 1 / peak**2)."""
    import numpy as np

    from napari_deconvnet.core.noise_estimation import variance_line

    clean = np.full((128, 128), 0.5, np.float32)
    psf = refine.psfs(2)["Gaussian σ 2"]
    for peak in (100.0, 1e4):
        noisy = refine.deconv_scenes.degrade(clean, psf, peak, seed=3)
        a, b = variance_line(refine.noise_of(peak))
        assert float(noisy.var()) == pytest.approx(a * 0.5 + b, rel=0.05)


def test_the_quick_table_refines_bright_images_and_keeps_dim_ones(refine, tmp_path):
    out = tmp_path / "r.md"
    assert refine.main(["--quick", "--threads", "1", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| beads+filaments | Gaussian σ 2 | 100000 |" in text and "refined − RL" in text
    rows = refine.run(2, quick=True, model="deconv-2d")
    dim, bright = sorted(rows, key=lambda r: r["photons"])
    assert dim["photons"] == 1000 and bright["photons"] == 1e5
    assert dim["refined"] == pytest.approx(dim["net"], abs=0.05)  # fits already
    assert bright["refined"] > bright["net"] + 0.5  # measured +1.79
    assert bright["rl_stop"] > bright["input"] + 3.0
