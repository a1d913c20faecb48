"""benchmarks/bright_stacks.py: bright objects in a time-lapse, one scene range or per frame."""

import numpy as np
import pytest


@pytest.fixture
def bright(benchmark_script):
    return benchmark_script("bright_stacks")


def test_stacks_and_the_previous_restore_and_the_table(bright, tmp_path):
    rng = np.random.default_rng(0)
    base = np.full((16, 16), 0.5)
    beads = np.zeros((16, 16))
    beads[8, 8] = 100.0
    clean, decay = bright.make_stack(
        "objects in the first 2 frames, scene bleaches 10x", base, beads
    )
    assert clean.shape == (6, 16, 16) and decay[-1] == pytest.approx(0.1)
    assert clean[1, 8, 8] > 100 and clean[2, 8, 8] < 1  # objects in the first two frames only
    # without objects anywhere the previous restore was one pass, as now
    x = (rng.poisson(np.stack([base * d for d in decay]) * 50) / 50).astype(np.float32)
    import napari_deconvnet as dn

    now = dn.restore(x, "denoise-2d", axes="TYX", precision="float32")
    np.testing.assert_allclose(bright.whole_stack(x, "denoise-2d"), now, atol=1e-5)
    out = tmp_path / "b.md"
    assert bright.main(["--quick", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| cell | objects in every frame, scene bleaches 10x | 20 |" in text
    assert "equals that frame restored alone within 0.0e+00" in text
