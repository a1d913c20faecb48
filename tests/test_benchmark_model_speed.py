"""benchmarks/model_speed.py: model files timed against each other on one input."""

import numpy as np


def test_model_speed_prints_each_model_against_the_first(benchmark_script, capsys):
    speed = benchmark_script("model_speed")
    image, psf = speed.sample_input((40, 56))
    assert image.shape == (40, 56) and psf.ndim == 2 and abs(float(psf.sum()) - 1) < 1e-6
    # a degraded, non-constant input
    assert np.isfinite(image).all() and image.std() > 0
    assert speed.main(["--shape", "40", "56", "--repeats", "1", "default", "deconv-2d"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    assert [r.split("|")[1].strip() for r in rows] == ["`default`", "`deconv-2d`"]
    assert rows[0].rstrip().endswith("| 1.00× |")  # the baseline against itself
    assert "richardson-lucy" in rows[1]  # the conditioning it pays for
