"""benchmarks/correlated_noise.py: resampled, upscaled and filtered noise through denoise-2d."""

import numpy as np
import pytest


@pytest.fixture
def correlated(benchmark_script):
    return benchmark_script("correlated_noise")


def test_the_degradations_keep_the_noise_level_and_correlate_it(correlated):
    clean = np.full((128, 128), 0.5)
    for kind in correlated.KINDS:
        reference, noisy = correlated.degrade(clean, kind, 25.0, True, seed=1)
        noise = noisy - reference
        lag = float(np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1])
        if kind == "white":
            assert noise.std() == pytest.approx(25 / 255, rel=0.05) and abs(lag) < 0.05
        elif kind.startswith("smoothed"):
            assert noise.std() == pytest.approx(25 / 255, rel=0.05) and lag > 0.2
        else:  # interpolated: less noise, shared by neighbours
            assert noise.std() < 25 / 255 and lag > 0.3, kind
    # a phantom's Poisson noise
    reference, noisy = correlated.degrade(np.full((64, 64), 0.5), "white", 100.0, False, seed=2)
    assert (noisy - reference).std() == pytest.approx(np.sqrt(50) / 100, rel=0.1)


def test_quick_run_gains_where_it_chooses_and_leaves_white_noise(
    correlated, monkeypatch, tmp_path
):
    rows = correlated.run(quick=True)
    for row in rows:
        if row["kind"] == "white":
            assert not row["chosen"] and row["now"] == row["before"]
        if row["chosen"]:
            assert row["now"] == pytest.approx(row["shuffled"])
    strong = [r for r in rows if r["kind"] == "smoothed 0.7"]
    assert np.mean([r["now"] - r["before"] for r in strong]) > 2
    monkeypatch.setattr(correlated, "run", lambda quick: rows)
    out = tmp_path / "c.md"
    assert correlated.main(["--quick", "--markdown", str(out)]) == 0
    assert "| smoothed 0.7 | σ 10 |" in out.read_text() and "decorrelate=True" in out.read_text()


def test_colour_degradations_and_the_quick_colour_run(correlated, tmp_path):
    clean = np.full((64, 64, 3), 0.5)
    reference, noisy = correlated.degrade_colour(clean, "demosaiced", 25.0, seed=3)
    noise = noisy - reference
    # interpolated from one colour per pixel: neighbours share the noise (bilinear
    # demosaicing draws each colour from its own samples: not the colours)
    lag = float(np.corrcoef(noise[:, :-1, 1].ravel(), noise[:, 1:, 1].ravel())[0, 1])
    assert lag > 0.2 and noise.std() < 25 / 255
    reference, noisy = correlated.degrade_colour(clean, "white", 25.0, seed=3)
    noise = noisy - reference
    assert abs(float(np.corrcoef(noise[..., 0].ravel(), noise[..., 2].ravel())[0, 1])) < 0.05
    # a registration shifts the three colours alike: the reference stays grey
    ramp = np.dstack([np.tile(np.linspace(0, 1, 64), (64, 1))] * 3)
    reference, _ = correlated.degrade_colour(ramp, "registered", 10.0, seed=4)
    np.testing.assert_allclose(reference[..., 0], reference[..., 2])
    out = tmp_path / "colour.md"
    assert correlated.main(["--colour", "--quick", "--threads", "1", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| demosaiced | σ 25 |" in text and "Correlated noise in colour" in text
    row = next(line for line in text.splitlines() if line.startswith("| white | σ 25 |"))
    assert "0 of 1" in row  # white noise untouched


def test_volume_degradations_and_the_quick_volume_run(correlated, tmp_path):
    clean = np.full((8, 48, 48), 0.5)
    for kind in correlated.VOLUME_KINDS:
        reference, noisy = correlated.degrade_volume(clean, kind, 100.0, seed=1)
        noise = noisy - reference
        along_x = float(np.corrcoef(noise[..., :-1].ravel(), noise[..., 1:].ravel())[0, 1])
        if kind == "white":
            assert abs(along_x) < 0.05
        else:  # neighbours along X share the noise
            assert along_x > 0.2, kind
    out = tmp_path / "volumes.md"
    assert correlated.main(["--volumes", "--quick", "--threads", "1", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "denoise-3d" in text and "| smoothed planes | 20 photons |" in text
    white = next(line for line in text.splitlines() if line.startswith("| white |"))
    assert "0 of 1" in white
