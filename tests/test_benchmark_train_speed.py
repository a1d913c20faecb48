"""``benchmarks/train_speed.py --trajectory`` and ``--jitter-choice``: scores along one run."""

import math

import pytest


@pytest.fixture
def train_speed(benchmark_script):
    return benchmark_script("train_speed")


def test_trajectory_scores_the_live_model_at_every_requested_step(train_speed, capsys):
    train_speed.trajectory(20, 10, tasks=["Poisson-Gaussian"], jitters=(None, 0.0))
    rows = [
        line for line in capsys.readouterr().out.splitlines() if "| Poisson-Gaussian |" in line
    ]
    assert [r.split("|")[2].strip() for r in rows] == ["auto", "auto", "0.0", "0.0"]
    assert [int(r.split("|")[3]) for r in rows] == [10, 20, 10, 20]
    for row in rows:
        values = [float(v) for v in row.split("|")[4:7]]
        assert all(math.isfinite(v) for v in values)
        # a network 10 steps from random weights already beats nothing: PSNR above 15 dB
        assert min(values) > 15


def test_jitter_choice_scores_each_jitter_on_each_image(train_speed, capsys):
    train_speed.jitter_choice(20, [0.0, 0.5], [11], every=10)
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 11 |")]
    assert [r.split("|")[2].strip() for r in rows] == ["0", "0.5"]
    for row in rows:
        cells = row.split("|")[3:5]  # steps 10 and 20: same type / another type
        values = [float(v) for cell in cells for v in cell.split("/")]
        assert len(values) == 4 and min(values) > 15
    assert "- jitter 0: " in out and "- jitter 0.5: " in out
