"""``benchmarks/adapt_channels.py`` in a smoke run: both ways of drawing the pairs, and
the module's own image_levels put back."""

import importlib


def test_adapt_channels_benchmark_compares_both_ways(benchmark_script, capsys):
    bench = benchmark_script("adapt_channels")
    module = importlib.import_module("napari_deconvnet.core.adapt")
    levels = module.image_levels
    assert bench.main(["--seconds", "1", "--size", "48"]) == 0
    out = capsys.readouterr().out
    assert "| 1 s | each image's level |" in out and "| 1 s | stack's level (before) |" in out
    assert "shipped denoise-2d" in out
    assert module.image_levels is levels  # switched back after the baseline
