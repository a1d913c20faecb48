"""benchmarks/deconv_scenes.py: deconvolution of general phantoms against tuned RL."""

import numpy as np
import pytest


@pytest.fixture
def deconv_scenes(benchmark_script):
    return benchmark_script("deconv_scenes")


def test_rl_is_tuned_on_validation_and_the_table_names_it(deconv_scenes, tmp_path):
    out = tmp_path / "d.md"
    args = ["--quick", "--dims", "2", "--threads", "1", "--markdown", str(out)]
    assert deconv_scenes.main(args) == 0
    text = out.read_text()
    assert "| beads+filaments | Gaussian σ 2 | 30 |" in text and "ours − RL" in text
    rows = deconv_scenes.run(2, quick=True)
    for row in rows:
        assert row["rl_iterations"] in deconv_scenes.RL_ITERATIONS
        # deconvolution helps: every method above its input, ours above Wiener
        assert min(row["Wiener"], row["RL (tuned)"], row["ours"]) > row["input"] + 2
        assert row["ours"] > row["Wiener"]
    # scenes are in [0, 1], seeded, and the validation scene is not a test scene
    a = deconv_scenes.scene("beads+filaments", 2, 71, (64, 64))
    b = deconv_scenes.scene("beads+filaments", 2, 71, (64, 64))
    v = deconv_scenes.scene("beads+filaments", 2, deconv_scenes.VALIDATION_SEED, (64, 64))
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() == pytest.approx(1.0) and not np.array_equal(a, v)
