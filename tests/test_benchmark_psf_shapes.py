"""benchmarks/psf_shapes.py: 2D deconvolution with PSFs beyond the training family."""

import math

import numpy as np
import pytest


@pytest.fixture
def psf_shapes(benchmark_script):
    return benchmark_script("psf_shapes")


def test_the_psfs_are_what_their_names_say(psf_shapes):
    table = psf_shapes.psfs()
    assert [f for f, _ in table.values()].count("beyond") == 6
    for name, (_, k) in table.items():
        assert k.min() >= 0 and k.sum() == pytest.approx(1.0, abs=1e-5), name
        assert k.shape[0] % 2 == 1 and k.shape[0] == k.shape[1], name
    disk = table["defocus disk r 3"][1]
    half = disk.shape[0] // 2
    y, x = np.indices(disk.shape) - half
    inside = x**2 + y**2 <= 9
    assert np.ptp(disk[inside]) == 0 and disk[~inside].max() == 0  # flat, radius 3
    streak = table["streak 13 px, 120°"][1]
    assert np.count_nonzero(streak) == 13
    ys, xs = np.nonzero(streak)
    angle = math.degrees(math.atan2(ys[-1] - ys[0], xs[-1] - xs[0])) % 180
    assert abs(angle - 120) < 5 or abs(angle - 60) < 5  # along its line (row axis down)


def test_classical_methods_are_tuned_off_the_scored_scenes_and_the_table_says_so(
    psf_shapes, tmp_path
):
    out = tmp_path / "p.md"
    args = ["--quick", "--threads", "1", "--markdown", str(out)]
    assert psf_shapes.main(args) == 0
    text = out.read_text()
    assert "| elongated σ 3 × 1, 30° | beyond | 30 |" in text
    assert "deconv-2d − best classical" in text and "Mean over the beyond PSFs" in text
    rows = psf_shapes.run("test", ["deconv-2d"], quick=True)
    for row in rows:
        assert row["params"]["richardson-lucy"] in psf_shapes.RL_ITERATIONS
        assert row["params"]["wiener"] in psf_shapes.WIENER_BALANCES
        # deconvolution helps: every method well above its input
        assert min(row["richardson-lucy"], row["wiener"], row["deconv-2d"]) > row["input"] + 2
        assert row["deconv-2d"] > max(row["richardson-lucy"], row["wiener"])
    # the tuning scenes are never scored
    tuning = psf_shapes.tuning_scenes(96)
    for _, clean in psf_shapes.scenes("test", 96, quick=True):
        assert all(not np.array_equal(clean, t) for t in tuning)
