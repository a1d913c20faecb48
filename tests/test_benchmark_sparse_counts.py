"""benchmarks/sparse_counts.py: blind denoising of sparse photon counts, against the input."""

import numpy as np
import pytest


@pytest.fixture
def sparse_counts(benchmark_script):
    return benchmark_script("sparse_counts")


def test_the_frames_are_photon_counts_of_spots_on_black_or_a_background(sparse_counts):
    clean, counts = sparse_counts.frame(61, (64, 64), 0.35, 300, 0.0)
    assert clean.max() == pytest.approx(1.0) and np.median(clean) < 1e-6
    assert np.array_equal(counts, np.round(counts)) and counts.min() == 0
    assert (counts == 0).mean() > 0.9
    lifted, lit = sparse_counts.frame(61, (64, 64), 0.35, 300, 0.1)
    assert np.median(lifted) == pytest.approx(0.1) and np.median(lit) == pytest.approx(30, abs=3)
    # a Poisson count's mean is the clean frame times the photons
    assert np.mean(lit) == pytest.approx(np.mean(lifted) * 300, rel=0.02)
    assert sparse_counts.TUNING_SEED not in sparse_counts.TEST_SEEDS


def test_the_table_scores_the_denoiser_against_its_input(sparse_counts, tmp_path):
    out = tmp_path / "s.md"
    assert sparse_counts.main(["--quick", "--threads", "1", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "denoise-2d − input" in text and "Mean against the input in the dark" in text
    rows = sparse_counts.run(["denoise-2d"], quick=True, ndim=2)
    for row in rows:
        # the filter's sigma was tuned elsewhere, and sigma 0 (the input) is a choice
        assert row["filter"] >= row["input"] - 1.0, row
        if row["background"] == 0:
            # in the dark the counts read as one photon per count, and the
            # denoiser keeps what it cannot improve (before: up to 3.4 dB below)
            assert row["read"] == "poisson" and row["gain"] == pytest.approx(1.0), row
            assert row["denoise-2d"] > row["input"] - 0.5, row
        else:
            assert row["denoise-2d"] > row["input"] + 1.0, row


def test_the_3d_table_runs_denoise_3d(sparse_counts, tmp_path):
    out = tmp_path / "s3.md"
    assert sparse_counts.main(["--3d", "--quick", "--threads", "1", "--markdown", str(out)]) == 0
    assert "3D blind denoising of sparse photon counts" in out.read_text()
    assert "denoise-3d − input" in out.read_text()
