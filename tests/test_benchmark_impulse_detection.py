"""benchmarks/impulse_detection.py: the impulse detection before and after, in one run."""

import numpy as np


def test_previous_ring_filters_equal_todays_and_the_table_says_so(benchmark_script, capsys):
    bench = benchmark_script("impulse_detection")
    from napari_deconvnet.core import noise_estimation

    rng = np.random.default_rng(0)
    planes = rng.poisson(3, (2, 21, 37)).astype(np.float32)
    for ranks in [(4,), (0, 1, 6, 7)]:
        before = bench.previous_ring_ranks(planes, ranks)
        now = noise_estimation.ring_ranks(planes, ranks)
        for a, b in zip(before, now, strict=True):
            np.testing.assert_array_equal(a, b)
    # the baseline is put back after each use
    with bench.previous_code():
        assert noise_estimation.ring_ranks is bench.previous_ring_ranks
    assert noise_estimation.ring_ranks is not bench.previous_ring_ranks
    bench.main(["--quick", "--repeats", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    body = rows[1:]  # (the separator row starts "|-")
    assert len(body) == 4
    # every answer and every restored image equal between the previous code and today's
    assert all(row.rstrip().endswith("| True |") for row in body)
    # the hot pixels are found, the plain noisy images hold none
    assert [row.split("|")[3].strip() for row in body] == ["no", "no", "yes", "no"]
