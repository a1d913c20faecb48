"""Values float32 cannot hold, and parameters too large to run (session 58's sweep).

Restore works in float32: a float64 image of 1e300 came back as NaN (or
raised a bare OverflowError from the noise estimate), one whose values
differ by 1e-300 as NaN; BM3D gave NaN on a uint64 image of 1e19; Poisson
noise on such rates raised numpy's "lam value too large" (torch drew
-9.2e18); Richardson-Lucy took 10**9 iterations without a word and
non-local means allocated exabytes for a patch of 10**9 pixels.
"""

import warnings

import numpy as np
import pytest
import torch

import napari_deconvnet as dn

RNG = np.random.default_rng(5)
BASE = RNG.random((32, 40))


@pytest.mark.parametrize("factor", [1e300, 1e39])
def test_values_beyond_float32_are_refused_with_the_cure(factor):
    with pytest.raises(ValueError, match="beyond float32's range.*divide it by a constant"):
        dn.restore(BASE * factor, "denoise-2d", device="cpu")


def test_a_spread_float32_cannot_resolve_is_refused():
    with pytest.raises(ValueError, match="differ by at most.*multiply it by a constant"):
        dn.restore(BASE * 1e-300, "denoise-2d", device="cpu")


@pytest.mark.parametrize(
    ("offset", "dtype"), [(3_000_000_000, np.uint32), (2**40, np.int64), (1e8, np.float64)]
)
def test_an_offset_float32_cannot_resolve_warns_with_the_cure(offset, dtype):
    # session 72: these came back as 2, 1 and 33 distinct values without a word; the
    # same spread nearer zero restores with its detail and says nothing
    base = np.random.default_rng(0).integers(0, 256, (48, 48))
    with pytest.warns(UserWarning, match=r"about \d+ levels across the image.*subtract an offset"):
        dn.restore(base.astype(dtype) + dtype(offset), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        out = dn.restore(base.astype(dtype) + dtype(1000), device="cpu")
    assert len(np.unique(out)) > 1000


def test_metrics_name_the_range_not_a_nan():
    """SSIM and PSNR (float32) said "contains NaN or infinite values" for 1e300 and
    "the reference image is constant" for values 1e-300 apart."""
    for k, words in ((1e300, "beyond float32's range"), (1e-300, "differ by at most")):
        for metric in (dn.psnr, dn.ssim):
            with pytest.raises(ValueError, match=words):
                metric(BASE * k, BASE * k * 1.01)


def test_lazy_values_beyond_float32_are_refused():
    da = pytest.importorskip("dask.array")
    lazy = da.from_array(BASE * 1e300, chunks=(16, 20))
    with pytest.raises(ValueError, match="beyond float32's range"):
        np.asarray(dn.restore(lazy, "denoise-2d", device="cpu"))


@pytest.mark.parametrize("side", [40, 2100])
def test_lazy_values_beyond_float32_are_refused_before_any_overflow(side):
    """Session 59: the searches for impulses and bright objects ran on a lazy 1e300
    image first and warned "overflow encountered in cast" several times before the
    sampled statistics refused it. Now the restore call itself refuses it, silently
    otherwise: small images from their minimum and maximum, larger ones (beyond the
    whole-image searches) from the central crop the impulse search reads."""
    da = pytest.importorskip("dask.array")
    lazy = da.random.RandomState(3).random_sample((side, side), chunks=512) * 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="beyond float32's range"):
            dn.restore(lazy, "denoise-2d", device="cpu")


def test_rescaled_image_restores_as_the_original_scaled():
    """The cure the message names works: a large float64 image divided by a
    power of two restores to the same result, scaled (exactly, in float32)."""
    big = BASE * 2.0**120  # about 1.3e36: float32 still holds it
    a = dn.restore(big, "denoise-2d", device="cpu")
    b = dn.restore(BASE, "denoise-2d", device="cpu")
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a / 2.0**120, b, rtol=0, atol=2e-6)


def test_poisson_noise_on_huge_rates_keeps_mean_and_variance():
    clean = np.full((64, 64), 1e19)
    out = dn.synthesize(clean, "poisson", peak=1.0, seed=0)
    assert np.isfinite(out).all() and out.min() > 0
    np.testing.assert_allclose(out.mean(), 1e19, rtol=1e-6)
    # the spread of a Poisson law: sqrt(rate) = 3.2e9 (float32 rounds 1e19 to 1.1e12 steps,
    # so only the mean is checked in float32; the draws before rounding are checked below)
    t = dn.synthesize(torch.full((64, 64), 1e19), "poisson", peak=1.0, seed=0)
    assert float(t.min()) > 0  # torch's own Poisson drew -9.2e18 here


def test_large_rates_follow_the_poisson_variance():
    from napari_deconvnet.core.noise import LARGE_RATE, _Random

    rate = np.full(20000, 4.0 * LARGE_RATE)
    rnd = _Random(np.random.default_rng(1), rate.astype(np.float32))
    draws = rnd.poisson(rate).astype(np.float64)
    # float32 keeps ~7 digits of 4e12: the spread sqrt(4e12) = 2e6 is kept
    assert abs(draws.std() / 2e6 - 1) < 0.03
    assert abs(draws.mean() / rate[0] - 1) < 1e-6


def test_poisson_draws_of_ordinary_rates_are_unchanged():
    """Rates below LARGE_RATE draw exactly what numpy's Poisson generator draws."""
    clean = RNG.random((16, 16)).astype(np.float32)
    out = dn.synthesize(clean, "poisson", peak=50, seed=3)
    expected = np.random.default_rng(3).poisson((clean * 50).astype(np.float64)) / 50
    np.testing.assert_array_equal(out, expected.astype(np.float32))


def test_bm3d_on_values_far_from_one():
    pytest.importorskip("bm3d")
    img = RNG.random((32, 32)).astype(np.float32)
    noisy = img + 0.1 * RNG.standard_normal(img.shape).astype(np.float32)
    ref = dn.denoise_bm3d(noisy, sigma=0.1)
    for k in (2.0**63, 2.0**-60):  # a uint64 image's range; a tiny one
        out = dn.denoise_bm3d(noisy.astype(np.float64) * k, sigma=0.1 * k)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out / k, ref, atol=1e-4)
    # an image near 1 runs as it did: not rescaled
    assert np.isfinite(dn.denoise_bm3d(noisy, sigma=2.0**70)).all()


def test_richardson_lucy_iterations_are_bounded():
    psf = dn.make_psf("gaussian", (7, 7), sigma=1.2)
    with pytest.raises(ValueError, match="between 1 and 10000"):
        dn.richardson_lucy(BASE, psf, 10**9)
    with pytest.raises(ValueError, match="<= 10000"):  # the catalog's range, checked first
        dn.run_method(BASE, "richardson-lucy", psf=psf, iterations=10**9)


@pytest.mark.parametrize(("option", "value"), [("patch_size", 10**9), ("patch_distance", 10**9)])
def test_nlm_window_larger_than_the_image_is_refused(option, value):
    with pytest.raises(ValueError, match=f"{option} must be between 1 and"):
        dn.denoise_nlm(BASE, **{option: value})
    with pytest.raises(TypeError, match=f"{option} must be an integer"):
        dn.denoise_nlm(BASE, **{option: 7.5})


def test_noise_synthesis_and_estimation_name_the_range():
    """Session 59: synthesize on a float64 image of 1e300 said "NaN or infinite values"
    (its float32 copy was infinite); estimate_noise returned sigma 3e299 from squares
    that overflowed, with RuntimeWarnings. Values 1e-300 apart gave zeros and sigma 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for k, words in ((1e300, "beyond float32's range"), (1e-300, "differ by at most")):
            with pytest.raises(ValueError, match=words):
                dn.synthesize(BASE * k, "gaussian", sigma=0.1)
            with pytest.raises(ValueError, match=words):
                dn.estimate_noise(BASE * k)
    # an image float32 holds is estimated as before
    assert dn.estimate_noise(BASE * 1e30)["sigma"] == pytest.approx(
        dn.estimate_noise(BASE)["sigma"] * 1e30, rel=1e-6
    )


def test_metrics_say_which_image_is_out_of_range():
    with pytest.raises(ValueError, match=r"^y \(the reference\) holds values up to 9.99e\+299"):
        dn.psnr(BASE, BASE * 1e300)


@pytest.mark.parametrize(("low", "high"), [(-3e38, 3e38), (0.0, 1e38)])
def test_float32_images_near_float32s_largest_value_are_refused(low, high):
    """Session 59: float32 data spanning -3e38 to 3e38 came back as NaN (LAPACK printed
    "DLASCL parameter number 4 had an illegal value"); data of 1e38 restored but warned
    "overflow encountered in multiply". Float images beyond float32's largest value over
    16 are refused; below that they restore as the same image scaled."""
    image = (low + (high - low) * BASE).astype(np.float32)
    da = pytest.importorskip("dask.array")
    for data in (image, da.from_array(image, chunks=(16, 20))):
        with pytest.raises(ValueError, match="too close to the largest value of float32"):
            np.asarray(dn.restore(data, "denoise-2d", device="cpu"))
    scaled = (2e37 * BASE).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = dn.restore(scaled, "denoise-2d", device="cpu")
    plain = dn.restore(BASE.astype(np.float32), "denoise-2d", device="cpu")
    np.testing.assert_allclose(out / 2e37, plain, atol=2e-6)


def test_small_argument_refusals_name_the_argument():
    # session 72's review: these failed inside scikit-image, named another argument, or
    # were taken without a word
    image = (RNG.random((32, 32)) * 100).astype(np.float32)
    with pytest.raises(ValueError, match="max_num_iter must be at least 1"):
        dn.denoise_tv(image, max_num_iter=0)  # (UnboundLocalError inside scikit-image)
    with pytest.raises(ValueError, match="eps must be a positive number"):
        dn.denoise_tv(image, eps=-1)
    with pytest.raises(ValueError, match="weight must be finite"):
        dn.denoise_tv(image, weight=-1)  # (said "sigma")
    with pytest.raises(ValueError, match="balance must be a finite number > 0"):
        dn.wiener(image, dn.make_psf("gaussian", sigma=1.5), float("inf"))  # (">= 0")
    with pytest.raises(ValueError, match="'poisson' noise needs its gain"):
        dn.restore(image, "deconv-2d", psf="gaussian", refine={"noise": "poisson"})
    box = np.ma.masked_array(np.ones((5, 5)), mask=~np.eye(5, dtype=bool))
    with pytest.warns(UserWarning, match="psf is a masked array with 20 masked values"):
        out = dn.restore(image, "deconv-2d", psf=box, device="cpu")
    np.testing.assert_array_equal(out, dn.restore(image, "deconv-2d", psf=np.ones((5, 5))))
