"""benchmarks/stack_guard.py: a stack's frames weighed by the middle one, or each its own."""

import numpy as np
import pytest


@pytest.fixture
def guard(benchmark_script):
    return benchmark_script("stack_guard")


def test_each_frame_its_own_weight_and_the_table_is_written(guard, tmp_path):
    base = guard._photo("camera", 64)
    sigmas = (1, 1, 25, 1)  # clean frames around a noisy middle: the old way smoothed them
    rng = np.random.default_rng(3)
    clean = np.stack([base] * len(sigmas))
    noisy = np.stack([base + rng.normal(0, s / 255, base.shape) for s in sigmas])
    r = guard.compare("denoise-2d", clean, np.clip(noisy, 0, 1).astype(np.float32), "TYX")
    assert r["agrees"] < 1e-5  # the blends recomputed here are dn.restore's
    assert r["blended"] == 3 and r["frames"] == 4
    assert r["best"] > 0.7 and r["worst"] > -0.05  # the clean frames gain (measured +1.07)
    out = tmp_path / "g.md"
    assert guard.main(["--quick", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| denoise-2d | camera | exposure series (0.5/1/2/4/8/16/32) |" in text
    assert "| denoise-3d | cells_3d |" in text
