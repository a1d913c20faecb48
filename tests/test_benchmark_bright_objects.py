"""benchmarks/bright_objects.py: a dim scene beside very bright objects."""

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def bright(benchmark_script):
    return benchmark_script("bright_objects")


def test_scenes_and_objects_are_what_the_table_says(bright):
    rng = np.random.default_rng(0)
    for name in bright.SCENES:
        image = bright.scene(name, rng)
        assert image.shape == (bright.SIZE, bright.SIZE)
        assert image.min() >= 0.05 - 1e-9 and np.percentile(image, 99.5) == pytest.approx(1.0)
    obj = bright.objects(rng, 100.0)
    assert obj.max() == pytest.approx(100.0) and obj.min() >= 0
    assert np.mean(obj > 0.1) < 0.05  # a few small objects


def test_the_baseline_does_not_care_about_the_objects_and_the_table_is_written(bright, tmp_path):
    # the input's PSNR around the objects is that of the same scene alone (same seed),
    # up to the shot noise the objects' own tails add
    rows = bright.measure(bright.CONDITIONS[:1], ["tissue"], [100.0], 1, {}, "float32")
    (row,) = rows
    assert abs(row["baseline"] - row["baseline alone"]) < 0.5
    assert row["shipped"] > row["baseline"]  # the model denoises the scene
    # and the two ranges keep it from spoiling the scene around the objects
    assert row["shipped"] - row["shipped alone"] > row["one pass"] - row["one pass alone"] + 2
    out = tmp_path / "b.md"
    weights = Path(bright.dn.__file__).parent / "weights" / "denoise-2d.safetensors"
    given = f"denoise-2d={weights}"
    args = ["--quick", "--models", "denoise-2d", "--weights", given, "--markdown", str(out)]
    assert bright.main(args) == 0
    text = out.read_text()
    assert "| denoise-2d | poisson 20 | 100 | tissue | input " in text
    assert "given: around / spoil (worst) / objects" in text
    # the same weights under two names: the same numbers
    cells = [line for line in text.splitlines() if line.startswith("| denoise-2d")][0]
    one_pass, shipped_cell, given_cell = cells.split(" | ")[5:8]
    assert one_pass != shipped_cell  # contrast 100: the two ranges change the result
    assert shipped_cell == given_cell.rstrip(" |")
