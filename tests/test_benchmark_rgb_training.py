"""``benchmarks/rgb_training.py`` in a smoke run: every start and way is reported."""


def test_rgb_training_benchmark_reports_each_way(benchmark_script, capsys):
    bench = benchmark_script("rgb_training")
    assert bench.main(["--steps", "2", "--size", "48"]) == 0
    out = capsys.readouterr().out
    for start in ("from scratch", "denoise-2d"):
        for way in ("opponent", "rgb, as restored", "rgb, channel by channel"):
            assert f"| {start} | {way} |" in out
