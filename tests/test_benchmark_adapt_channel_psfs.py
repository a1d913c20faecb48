"""``benchmarks/adapt_channel_psfs.py`` in a smoke run: its scenes' channels are blurred
by their own PSFs, and every way of adapting is reported."""

import numpy as np


def test_adapt_channel_psfs_benchmark_reports_every_way(benchmark_script, capsys):
    bench = benchmark_script("adapt_channel_psfs")
    for scene in ("sample", "photos"):
        assert bench.main(["--seconds", "1", "--size", "48", "--scene", scene]) == 0
        out = capsys.readouterr().out
        for way in ("one PSF per channel", "split, half each", "narrow PSF for both"):
            assert f"| 1 s | {way} |" in out
        assert "shipped deconv-2d" in out


def test_the_photo_scene_blurs_each_channel_by_its_psf(benchmark_script):
    from napari_deconvnet.core.psf import blur

    bench = benchmark_script("adapt_channel_psfs")
    clean, noisy, psfs = bench.two_channels(48)
    assert psfs[0].shape == (13, 13) and psfs[1].shape == (21, 21)
    for c in range(2):  # the Poisson draw is centred on the channel's own blur
        own = np.abs(noisy[c] - blur(clean[c], psfs[c])).mean()
        other = np.abs(noisy[c] - blur(clean[c], psfs[1 - c])).mean()
        assert own < other
