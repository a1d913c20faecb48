"""``benchmarks/train_speed.py --trajectory``: validation and held-out scores along one run."""

import math

import pytest


@pytest.fixture
def train_speed(benchmark_script):
    return benchmark_script("train_speed")


def test_trajectory_scores_the_live_model_at_every_requested_step(train_speed, capsys):
    train_speed.trajectory(20, 10, tasks=["Poisson-Gaussian"])
    rows = [
        line for line in capsys.readouterr().out.splitlines() if "| Poisson-Gaussian |" in line
    ]
    assert [int(r.split("|")[2]) for r in rows] == [10, 20]
    for row in rows:
        values = [float(v) for v in row.split("|")[3:6]]
        assert all(math.isfinite(v) for v in values)
        # a network 10 steps from random weights already beats nothing: PSNR above 15 dB
        assert min(values) > 15
