"""benchmarks/stack_statistics.py: a stack's images with one set of statistics or their own."""

import numpy as np
import pytest


@pytest.fixture
def stacks(benchmark_script):
    return benchmark_script("stack_statistics")


def test_stacks_are_what_the_table_says(stacks):
    cases = {(scene, cond): clean for scene, cond, clean in stacks.stacks(32, 0)}
    fading = cases[("camera", "bleaching 20x")]
    assert fading.shape == (8, 32, 32)
    assert np.ptp(fading[-1]) == pytest.approx(np.ptp(fading[0]) / 20, rel=1e-6)
    blank = cases[("cell", "every other frame blank")]
    assert np.ptp(blank[1]) == 0 and np.ptp(blank[0]) > 0.9
    steady = cases[("camera", "steady")]
    assert (steady == steady[0]).all()


def test_own_statistics_help_the_dim_frames_and_the_table_is_written(stacks, tmp_path):
    clean = stacks.stacks(48, 0)[0][2][::2]  # camera, fading 20x, four frames
    noisy = (np.random.default_rng(1).poisson(clean * 20) / 20).astype(np.float32)
    r = stacks.compare("denoise-2d", clean, noisy, "ZYX")
    assert r["dimmest"] > 1.0 and r["worst"] > -0.3  # the last frame gains; none loses much
    out = tmp_path / "s.md"
    assert stacks.main(["--quick", "--photons", "20", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| denoise-2d | Poisson, 20 photons | camera | bleaching 20x |" in text
    assert "| deconv-2d |" in text and "| denoise-3d |" in text
