"""Photon counts and other values on a lattice: percentiles of the dequantised values."""

import dask.array as da
import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.core import patches
from napari_deconvnet.core.normalization import lattice, percentiles
from napari_deconvnet.core.phantoms import cells_2d


def test_the_lattice_of_counts_integers_and_scaled_counts():
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.4, (128, 128))
    assert lattice((counts / 2).astype(np.float32)) == (0.0, 0.5)  # synthesize's photons / peak
    assert lattice((counts * 2 + 100).astype(np.uint16)) == (100.0, 2.0)  # ADU with a gain of 2
    odd = (counts * 2 + 100).astype(np.uint16)
    odd[0, 0] += 1  # one value off the step of 2: integers still have a step of 1
    assert lattice(odd) == (float(odd.min()), 1.0)
    assert lattice(rng.normal(size=(64, 64))) is None  # continuous
    assert lattice(np.full((8, 8), 3.0)) is None  # constant
    noisy = (counts / 2 + rng.normal(0, 0.01, counts.shape)).astype(np.float32)
    assert lattice(noisy) is None  # read noise: off the lattice


def test_counts_over_thousands_of_steps_in_float32_are_found():
    """float32 counts divided by a peak of 20: the smallest gap between stored values
    (0.04999998) carries their rounding, which thousands of steps up left the lattice;
    the span pins the step. Beads of ~85 beside a dim scene of ~0.1: the scene's
    zeros were not dequantised, and a restore of it lost 6 dB (session 39)."""
    rng = np.random.default_rng(4)
    counts = rng.poisson(2.0, (96, 96))
    counts[40:43, 40:43] = rng.poisson(1700, (3, 3))  # a bright bead
    values = (counts / 20).astype(np.float32)
    found = lattice(values)
    assert found is not None and found[0] == 0.0
    assert found[1] == pytest.approx(0.05, rel=1e-6)
    lo = percentiles(values, [0.5])[0]
    assert lo < 0  # zeros spread over their step, half a count below and above
    # the same counts without the bead were found before, and keep their numbers exactly
    plain = (rng.poisson(2.0, (96, 96)) / 20).astype(np.float32)
    gap = float(np.diff(np.unique(plain)).min())
    assert lattice(plain) == (0.0, gap)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lattice_percentiles_are_those_of_the_counts_spread_over_their_steps(seed):
    rng = np.random.default_rng(seed)
    step = [1.0, 0.5, 0.25][seed]
    values = (rng.poisson([0.3, 2.0, 8.0][seed], 200_000) * step).astype(np.float32)
    got = percentiles(values, [0.5, 25, 50, 99.5])
    # the reference: numpy's percentiles of the values with uniform dither over their step
    spread = values + rng.uniform(-step / 2, step / 2, values.size)
    expected = np.percentile(spread, [0.5, 25, 50, 99.5])
    np.testing.assert_allclose(got, expected, atol=0.02 * step)
    # continuous data keep numpy's percentiles exactly
    cont = rng.normal(size=5000)
    assert percentiles(cont, [0.5, 99.5]) == list(np.percentile(cont, [0.5, 99.5]))


def test_mostly_zero_counts_put_the_zeros_half_a_count_above_the_bottom():
    x = np.zeros(1000, np.uint16)
    x[600:] = 1  # 60 % zeros, 40 % ones
    lo, hi = percentiles(x, [0.5, 99.5])
    assert lo == pytest.approx(-0.5 + 5 / 600)
    assert hi == pytest.approx(0.5 + (995 - 600) / 400)


def test_restore_keeps_the_brightness_of_a_few_photons():
    clean = cells_2d(np.random.default_rng(5), 192).astype(np.float32)
    noisy = dn.synthesize(clean, "poisson", peak=2.0, seed=1).astype(np.float32)
    out = dn.restore(noisy, "denoise-2d", precision="float32")
    # raw percentiles put the zeros at the bottom: output mean 0.08 for 0.19, 19.1 dB
    # on a 256² scene; dequantised: mean 0.18, 25.8 dB
    assert out.mean() == pytest.approx(clean.mean(), rel=0.1)
    assert dn.psnr(clean, np.clip(out, 0, 1), data_range=1) > 24.0
    # lazy and streamed restores use the same statistics (the sample is the whole array)
    stats = dn.compute_normalization(noisy, "denoise-2d")
    assert stats["offset"] < -0.2  # half a count (0.5) below the zero, in units of the peak
    assert dn.compute_normalization(da.from_array(noisy, chunks=64), "denoise-2d") == stats
    # and training normalises count data the same way (dn.train's statistics)
    lo, scale = patches.percentile_stats(noisy, 0.5, 99.5)
    assert (lo, scale) == pytest.approx((stats["offset"], stats["scale"]), rel=1e-6)


def test_training_and_adaptation_take_restores_statistics_for_large_and_lazy_images():
    """One normalisation (issue 13): dn.adapt's statistics are restore's, also where a
    subsample or a chunk sample decides them (more than 4M pixels; more than 16 chunks)."""
    rng = np.random.default_rng(3)
    big = rng.gamma(2.0, 50.0, (2100, 2100)).astype(np.float32)  # 4.4 M values
    big[:40] = 5000.0  # a bright band that a strided subsample would weigh differently
    exact = np.percentile(big.astype(np.float64), [0.5, 99.5])
    lo, scale = patches.percentile_stats(big, 0.5, 99.5)
    assert (lo, lo + scale) == pytest.approx(tuple(exact), rel=1e-6)
    # a lazy image of 100 chunks: the same deterministic 64-chunk sample as restore
    lazy = da.from_array(big[:2000, :2000], chunks=200)
    stats = dn.compute_normalization(lazy, "denoise-2d")
    lo, scale = patches.normalization_of({"method": "percentile", "low": 0.5, "high": 99.5}, lazy)
    assert (lo, scale) == pytest.approx((stats["offset"], stats["scale"]), rel=1e-6)
    with pytest.raises(ValueError, match="training data contains NaN"):
        bad = big[:64, :64].copy()
        bad[3, 3] = np.nan
        patches.percentile_stats(bad, 0.5, 99.5)


def test_sparse_beads_on_an_exactly_flat_background_are_scaled_by_their_peak():
    """Both percentiles on the background: the scale is the beads' height, not 1.

    A few beads filling less than the top 0.5 % of a background-subtracted
    image put the 0.5 and 99.5 percentiles on the same value. A scale of 1
    would hand the network values in whatever units the file has; with the
    peak as the scale, restore is equivariant to the units.
    """
    from napari_deconvnet.core.normalization import offset_scale
    from napari_deconvnet.core.psf import blur

    rng = np.random.default_rng(7)
    clean = np.zeros((128, 128), np.float32)
    clean[rng.integers(8, 120, 3), rng.integers(8, 120, 3)] = 1.0
    psf = dn.make_psf("gaussian", shape=(9, 9), sigma=1.2)
    beads = blur(clean, psf).astype(np.float32)
    beads[beads < 0.05] = 0.0
    assert np.percentile(beads, 99.5) == 0.0 and beads.max() > 0.1
    norm = {"method": "percentile", "low": 0.5, "high": 99.5}
    assert offset_scale(beads, norm) == (0.0, pytest.approx(float(beads.max())))
    assert offset_scale(beads - 3.0, norm) == (-3.0, pytest.approx(float(beads.max())))
    # only a constant image keeps the scale of 1
    assert offset_scale(np.full((8, 8), 5.0, np.float32), norm) == (5.0, 1.0)
    one = dn.restore(beads, "denoise-2d", precision="float32")
    many = dn.restore(beads * 1000.0, "denoise-2d", precision="float32")
    np.testing.assert_allclose(many / 1000.0, one, atol=1e-5 * float(beads.max()))
