"""Noise synthesis: statistics of every noise model, seeding, the torch path and errors."""

import doctest

import numpy as np
import pytest
import torch
from scipy import ndimage, stats

import napari_deconvnet as dn
from napari_deconvnet.core import noise as noise_module
from napari_deconvnet.core.noise import NOISE_MODELS, synthesize

SHAPE = (256, 256)  # 65536 samples: standard errors of about 0.5 % on variances
MODELS = [name for name in NOISE_MODELS if name != "none"]


def test_docstring_examples():
    result = doctest.testmod(noise_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("sigma", [0.01, 0.1, 2.0])
def test_gaussian_mean_and_std(sigma):
    clean = np.full(SHAPE, 0.5)
    noisy = synthesize(clean, "gaussian", sigma=sigma, seed=0)
    assert noisy.dtype == np.float32 and noisy.shape == SHAPE
    assert abs(noisy.mean() - 0.5) < 4 * sigma / np.sqrt(noisy.size)
    assert noisy.std() == pytest.approx(sigma, rel=0.02)


def test_gaussian_sigma_zero_is_identity():
    clean = np.random.default_rng(0).random((16, 17))
    np.testing.assert_allclose(synthesize(clean, "gaussian", sigma=0, seed=0), clean, rtol=1e-6)


@pytest.mark.parametrize("level", [0.5, 7.5, 200.0])
def test_poisson_counts_have_variance_equal_to_mean(level):
    noisy = synthesize(np.full(SHAPE, level), "poisson", peak=1.0, seed=0)
    assert np.array_equal(noisy, np.round(noisy))  # counts
    assert noisy.mean() == pytest.approx(level, rel=0.02)
    assert noisy.var() == pytest.approx(noisy.mean(), rel=0.03)


@pytest.mark.parametrize("peak", [2.0, 30.0, 1000.0])
def test_poisson_peak_scales_variance(peak):
    level = 0.3
    noisy = synthesize(np.full(SHAPE, level), "poisson", peak=peak, seed=0)
    assert noisy.mean() == pytest.approx(level, rel=0.02)
    assert noisy.var() == pytest.approx(level / peak, rel=0.03)


def test_poisson_gain_is_peak():
    clean = np.random.default_rng(0).random((32, 32))
    a = synthesize(clean, "poisson", peak=20.0, seed=3)
    b = synthesize(clean, "poisson", gain=20.0, seed=3)
    np.testing.assert_array_equal(a, b)


def test_poisson_negative_intensities_count_as_zero_with_a_warning():
    with pytest.warns(UserWarning, match=r"64 of 64 pixels.*below 0 \(lowest -1\).*count as 0"):
        noisy = synthesize(np.full((8, 8), -1.0), "poisson", peak=10.0, seed=0)
    np.testing.assert_array_equal(noisy, 0)
    clean = np.linspace(-0.5, 1.0, 64).reshape(8, 8)
    with pytest.warns(UserWarning, match="poisson-gaussian.*21 of 64 pixels"):
        camera = synthesize(clean, "poisson-gaussian", gain=50.0, read_noise=0.0, seed=0)
    np.testing.assert_array_equal(camera[clean < 0], 0)


@pytest.mark.parametrize("noise", ["poisson", "poisson-gaussian"])
def test_non_negative_images_give_no_warning_even_after_a_blur(noise, recwarn):
    import torch

    # a sharp image through the FFT blur (big PSF) gets rounding errors below 0
    clean = np.zeros((64, 64), np.float32)
    clean[32, 32] = 1.0
    synthesize(clean, noise, psf=dn.make_psf("airy", shape=(33, 33)), seed=0)
    synthesize(torch.from_numpy(clean), noise, seed=0)
    assert [w for w in recwarn if issubclass(w.category, UserWarning)] == []


@pytest.mark.parametrize("noise", ["poisson", "poisson-gaussian"])
def test_rounding_below_zero_from_an_outside_blur_is_clipped_silently(noise, recwarn):
    from scipy.signal import fftconvolve

    # blurred before synthesize (scipy's FFT): -1e-16-sized values below 0
    clean = np.zeros((48, 48))
    clean[10:20, 30:34] = 1.0
    blurred = fftconvolve(clean, dn.make_psf("gaussian", shape=(15, 15), sigma=2.0), "same")
    assert blurred.min() < 0
    noisy = synthesize(blurred, noise, seed=0, **({"read_noise": 0.0} if "-" in noise else {}))
    assert [w for w in recwarn if issubclass(w.category, UserWarning)] == []
    np.testing.assert_array_equal(noisy[blurred < 0], 0)
    # a real negative value (1e-3 of the peak) still warns, and only it is counted
    blurred[0, 0] = -1e-3
    with pytest.warns(UserWarning, match=r"1 of 2304 pixels.*lowest -0.001"):
        synthesize(blurred, noise, seed=0)


def test_negative_tensors_warn_too():
    import torch

    with pytest.warns(UserWarning, match="3 of 4 pixels"):
        synthesize(torch.tensor([-1.0, -2.0, -3.0, 4.0]), "poisson", seed=0)


@pytest.mark.parametrize(
    ("signal", "gain", "offset", "read_noise"),
    [
        (200.0, 2.0, 100.0, 3.0),
        (5.0, 0.5, 0.0, 1.5),
        (1000.0, 4.0, 50.0, 0.0),
        (0.0, 1.0, 10.0, 2.0),
    ],
)
def test_poisson_gaussian_noise_level_function(signal, gain, offset, read_noise):
    noisy = synthesize(
        np.full(SHAPE, signal),
        "poisson-gaussian",
        gain=gain,
        offset=offset,
        read_noise=read_noise,
        seed=0,
    )
    expected_var = signal / gain + (read_noise / gain) ** 2
    assert noisy.mean() == pytest.approx(
        signal + offset, abs=4 * np.sqrt(expected_var / noisy.size)
    )
    assert noisy.var() == pytest.approx(expected_var, rel=0.03)


def test_poisson_gaussian_variance_is_linear_in_the_signal():
    # Foi's noise level function: var = a * (mean - offset) + b over a ramp of levels.
    levels = np.repeat(np.linspace(0, 500, 8), 16384).reshape(8, -1)
    noisy = synthesize(levels, "poisson-gaussian", gain=2.5, offset=30, read_noise=4, seed=0)
    a, _ = np.polyfit(noisy.mean(axis=1) - 30, noisy.var(axis=1), 1)
    assert a == pytest.approx(1 / 2.5, rel=0.05)
    predicted = levels[:, 0] / 2.5 + (4 / 2.5) ** 2
    np.testing.assert_allclose(noisy.var(axis=1), predicted, rtol=0.04)


def test_poisson_gaussian_bit_depth_quantises_and_clips():
    clean = np.linspace(0, 400, 64 * 64).reshape(64, 64)
    noisy = synthesize(
        clean, "poisson-gaussian", gain=1.0, offset=5, read_noise=2, bit_depth=8, seed=0
    )
    assert np.array_equal(noisy, np.round(noisy))
    assert noisy.min() >= 0 and noisy.max() == 255
    assert (noisy == 255).mean() > 0.3  # everything above ~250 ADU saturates


def test_poisson_gaussian_peak_keeps_image_units():
    noisy = synthesize(np.full(SHAPE, 0.4), "poisson-gaussian", peak=100, read_noise=2, seed=0)
    assert noisy.mean() == pytest.approx(0.4, rel=0.01)
    assert noisy.var() == pytest.approx(0.4 / 100 + (2 / 100) ** 2, rel=0.03)


def test_salt_and_pepper_fractions():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.2, 0.8, SHAPE)
    clean[0, 0], clean[0, 1] = 0.1, 0.9  # the defaults for low and high
    noisy = synthesize(clean, "salt-and-pepper", amount=0.1, salt_vs_pepper=0.3, seed=0)
    changed = noisy != clean.astype(np.float32)
    assert (noisy == np.float32(0.9)).mean() == pytest.approx(0.03, abs=0.003)
    assert (noisy == np.float32(0.1)).mean() == pytest.approx(0.07, abs=0.003)
    assert changed.mean() == pytest.approx(0.1, abs=0.004)
    assert np.isin(noisy[changed], np.float32([0.1, 0.9])).all()


def test_salt_and_pepper_custom_values():
    noisy = synthesize(
        np.full((64, 64), 5.0), "salt-and-pepper", amount=1.0, low=-1, high=9, seed=0
    )
    assert set(np.unique(noisy)) == {-1.0, 9.0}


def test_speckle_is_multiplicative():
    rng = np.random.default_rng(0)
    clean = rng.uniform(1, 3, SHAPE)
    noisy = synthesize(clean, "speckle", sigma=0.2, seed=0)
    ratio = noisy / clean
    assert ratio.mean() == pytest.approx(1.0, abs=0.004)
    assert ratio.std() == pytest.approx(0.2, rel=0.02)


@pytest.mark.parametrize("noise", MODELS)
def test_same_seed_same_output_and_different_seed_differs(noise):
    clean = np.random.default_rng(0).uniform(0.1, 0.9, (48, 40))
    a = synthesize(clean, noise, seed=1)
    b = synthesize(clean, noise, seed=1)
    c = synthesize(clean, noise, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == clean.shape


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float64, bool])
def test_any_real_dtype_gives_float32(dtype):
    clean = (np.random.default_rng(0).random((10, 12)) * 2).astype(dtype)
    noisy = synthesize(clean, "gaussian", sigma=1.0, seed=0)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape


def test_input_is_not_modified():
    clean = np.random.default_rng(0).random((16, 16))
    before = clean.copy()
    synthesize(clean, "salt-and-pepper", amount=0.5, psf=np.ones((3, 3)), seed=0)
    np.testing.assert_array_equal(clean, before)


def test_clip():
    noisy = synthesize(np.full((64, 64), 0.5), "gaussian", sigma=1.0, clip=(0, 1), seed=0)
    assert noisy.min() == 0 and noisy.max() == 1


@pytest.mark.parametrize(
    ("shape", "psf_shape"),
    [
        ((20, 23), (3, 3)),
        ((20, 23), (4, 5)),
        ((3, 9, 8), (3, 4)),
        ((6, 7, 8), (3, 3, 3)),
        ((5, 7), (9, 11)),
    ],
)
def test_psf_blur_matches_scipy(shape, psf_shape):
    rng = np.random.default_rng(0)
    clean = rng.random(shape)
    psf = rng.random(psf_shape)
    full = (psf / psf.sum()).reshape((1,) * (clean.ndim - psf.ndim) + psf.shape)
    expected = ndimage.convolve(clean, full, mode="reflect")
    np.testing.assert_allclose(synthesize(clean, None, psf=psf), expected, atol=1e-6)
    tensor = synthesize(torch.from_numpy(clean), "none", psf=psf)
    np.testing.assert_allclose(tensor.numpy(), expected, atol=1e-5)


def test_psf_is_normalised_and_applied_before_noise():
    rng = np.random.default_rng(0)
    clean = rng.random((32, 32))
    psf = np.ones((5, 5))
    a = synthesize(clean, "gaussian", sigma=0.05, psf=psf, seed=4)
    b = synthesize(clean, "gaussian", sigma=0.05, psf=7 * psf, seed=4)
    np.testing.assert_allclose(a, b, atol=1e-6)
    blurred = synthesize(clean, None, psf=psf)
    noise_only = synthesize(np.zeros_like(clean), sigma=0.05, seed=4)
    np.testing.assert_allclose(a - blurred, noise_only, atol=1e-6)


# ---------------------------------------------------------------- torch


@pytest.mark.parametrize("noise", MODELS)
def test_torch_path_is_reproducible_and_stays_on_device(noise, device):
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 1, 40, 36, generator=gen, dtype=torch.float64).to(device)
    a = synthesize(clean, noise, seed=5)
    b = synthesize(clean, noise, seed=5)
    c = synthesize(clean, noise, seed=6)
    assert isinstance(a, torch.Tensor) and a.device == clean.device
    assert a.dtype == torch.float32 and a.shape == clean.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize(
    ("noise", "level", "params"),
    [
        ("gaussian", 0.5, {"sigma": 0.1}),
        ("poisson", 0.3, {"peak": 20.0}),
        ("poisson-gaussian", 50.0, {"gain": 2.0, "offset": 10.0, "read_noise": 3.0}),
        ("speckle", 2.0, {"sigma": 0.3}),
    ],
)
def test_torch_and_numpy_paths_agree_in_distribution(noise, level, params, device):
    clean = np.full((128, 128), level)
    a = synthesize(clean, noise, seed=0, **params).ravel()
    b = synthesize(torch.from_numpy(clean).to(device), noise, seed=0, **params).cpu().numpy()
    b = b.ravel()
    assert b.mean() == pytest.approx(a.mean(), abs=4 * a.std() * np.sqrt(2 / a.size))
    assert b.var() == pytest.approx(a.var(), rel=0.05)
    assert stats.ks_2samp(a, b).pvalue > 0.01


def test_torch_salt_and_pepper_fraction(device):
    clean = torch.full(SHAPE, 0.5, device=device)
    clean[0, 0], clean[0, 1] = 0.0, 1.0
    noisy = synthesize(clean, "salt-and-pepper", amount=0.2, salt_vs_pepper=0.5, seed=0)
    assert float((noisy == 1).float().mean()) == pytest.approx(0.1, abs=0.004)
    assert float((noisy == 0).float().mean()) == pytest.approx(0.1, abs=0.004)


def test_torch_accepts_a_generator():
    clean = torch.zeros(8, 8)
    a = synthesize(clean, seed=torch.Generator().manual_seed(3))
    b = synthesize(clean, seed=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("clean", "match"),
    [
        (np.ones((4, 4), complex), "complex"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[1.0, np.inf]]), "infinite"),
        (np.zeros((0, 4)), "empty"),
        (torch.ones(4, 4, dtype=torch.complex64), "complex"),
        (torch.tensor([[1.0, float("nan")]]), "NaN"),
        (torch.zeros(3, 0), "empty"),
    ],
)
def test_bad_images_raise(clean, match):
    with pytest.raises(ValueError, match=match):
        synthesize(clean, "gaussian", sigma=0.1)


def test_non_numeric_image_raises():
    with pytest.raises(TypeError, match="numeric"):
        synthesize(np.array([["a", "b"]]))


def test_unknown_noise_lists_accepted_names():
    with pytest.raises(ValueError, match="poisson-gaussian.*salt-and-pepper"):
        synthesize(np.zeros((4, 4)), "pink")


@pytest.mark.parametrize(
    ("noise", "params", "match"),
    [
        ("gaussian", {"sigma": -0.1}, "sigma"),
        ("speckle", {"sigma": -1}, "sigma"),
        ("gaussian", {"sigma": float("nan")}, "sigma"),
        ("poisson", {"peak": 0}, "gain"),
        ("poisson", {"peak": 1, "gain": 1}, "either peak or gain"),
        ("poisson-gaussian", {"read_noise": -2}, "read_noise"),
        ("poisson-gaussian", {"bit_depth": 0}, "bit_depth"),
        ("poisson-gaussian", {"bit_depth": 8.5}, "bit_depth"),
        ("salt-and-pepper", {"amount": 1.5}, "amount"),
        ("salt-and-pepper", {"salt_vs_pepper": -0.1}, "salt_vs_pepper"),
        ("salt-and-pepper", {"low": 5.0, "high": 1.0}, r"low=5 \(pepper\) is above high=1"),
        ("salt-and-pepper", {"low": 0.5}, r"low=0.5 \(pepper\) is above high=0"),
        ("gaussian", {"peak": 3}, "parameters are"),
    ],
)
def test_bad_parameters_raise(noise, params, match):
    with pytest.raises(ValueError, match=match):
        synthesize(np.zeros((4, 4)), noise, **params)


def test_non_numeric_parameter_raises():
    with pytest.raises(TypeError, match="sigma"):
        synthesize(np.zeros((4, 4)), "gaussian", sigma="big")


@pytest.mark.parametrize(
    ("psf", "match"),
    [
        (np.ones((3, 3, 3)), "dimensions"),
        (np.zeros((3, 3)), "sums to zero"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.ones((3, 3), complex), "real"),
    ],
)
def test_bad_psf_raises(psf, match):
    with pytest.raises(ValueError, match=match):
        synthesize(np.zeros((8, 8)), "gaussian", psf=psf)


@pytest.mark.parametrize("clip", [(1, 0), (0,), "ab"])
def test_bad_clip_raises(clip):
    with pytest.raises(ValueError, match="clip"):
        synthesize(np.zeros((4, 4)), clip=clip)


def test_synthesize_iter_says_nan_for_salt_and_pepper_on_a_nan_image():
    """Its automatic low/high are the image's min and max, computed before the
    image was checked: "low must be finite, not nan" instead of the NaN message."""
    from napari_deconvnet.core.generators import drain
    from napari_deconvnet.core.operations import synthesize_iter

    x = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    x[3, 3] = np.nan
    for noise in ("salt-and-pepper", "gaussian"):
        with pytest.raises(ValueError, match="NaN or infinite"):
            drain(synthesize_iter(x, noise, seed=0))


@pytest.mark.parametrize(
    ("noise", "params"),
    [
        ("gaussian", {"sigma": 0.1}),
        ("poisson", {"peak": 20.0}),
        ("poisson-gaussian", {"peak": 20.0}),
        ("salt-and-pepper", {"amount": 0.1}),
        ("speckle", {"sigma": 0.1}),
    ],
)
def test_every_noise_takes_a_single_value_as_a_0d_image(noise, params):
    """One value is a 0-d image for every noise (the Poisson draws gave a bare int, whose
    missing .astype raised AttributeError); the draw equals the first pixel of an image of
    that value drawn with the same seed, where the noise draws pixel by pixel."""
    got = dn.synthesize(np.float32(0.5), noise, seed=3, **params)
    assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == np.float32
    assert np.isfinite(got)
    one = dn.synthesize(np.full((1,), 0.5, np.float32), noise, seed=3, **params)
    assert float(got) == pytest.approx(float(one[0]))


@pytest.mark.parametrize("seed", ["a", 1.5, True, [1, "x"]])
def test_a_seed_that_is_not_an_integer_or_a_generator_is_a_clear_type_error(seed):
    """numpy's own message ('SeedSequence expects int or sequence of ints for entropy
    not a') did not say which argument; the accepted kinds still draw as before."""
    x = np.full((16, 16), 0.5, np.float32)
    with pytest.raises(TypeError, match="seed must be None, an integer, a sequence"):
        synthesize(x, "poisson", peak=10, seed=seed)
    a = synthesize(x, "poisson", peak=10, seed=7)
    np.testing.assert_array_equal(a, synthesize(x, "poisson", peak=10, seed=np.int64(7)))
    np.testing.assert_array_equal(
        synthesize(x, "poisson", peak=10, seed=[7, 1]),
        synthesize(x, "poisson", peak=10, seed=np.array([7, 1])),
    )
    for generator in (np.random.PCG64(7), np.random.RandomState(7), np.random.SeedSequence(7)):
        assert synthesize(x, "poisson", peak=10, seed=generator).shape == x.shape


def test_a_clean_image_that_includes_the_offset_gets_it_once():
    """clean_includes_offset: a clean image in ADU with the camera's offset (the expected
    value of a noisy frame) keeps its mean, and only the signal above the offset draws
    photon noise: Var = (clean - offset) / gain + (read_noise / gain)**2."""
    clean = np.full((200, 200), 300.0, np.float32)
    clean[:, 100:] = 100.0  # the offset alone: no photons there
    noisy = dn.synthesize(
        clean, "poisson-gaussian", gain=2.0, offset=100.0, read_noise=3.0, seed=0,
        clean_includes_offset=True,
    )  # fmt: skip
    left, right = noisy[:, :100], noisy[:, 100:]
    assert left.mean() == pytest.approx(300.0, abs=0.2)
    assert right.mean() == pytest.approx(100.0, abs=0.1)
    assert left.var() == pytest.approx(200 / 2 + (3 / 2) ** 2, rel=0.05)
    assert right.var() == pytest.approx((3 / 2) ** 2, rel=0.05)
    default = dn.synthesize(clean, "poisson-gaussian", gain=2.0, offset=100.0, seed=0)
    assert default[:, 100:].mean() == pytest.approx(200.0, abs=0.2)  # signal above the offset


def test_a_psf_blurs_each_colour_of_an_rgb_image():
    # (Y, X, 3) as restore reads it: the trailing-axes blur put red light into green
    from napari_deconvnet.core.psf import blur

    red = np.zeros((48, 40, 3), np.float32)
    red[16:32, 12:28, 0] = 100.0
    psf = dn.make_psf("gaussian", shape=(9, 9), sigma=2.0)
    out = dn.synthesize(red, "none", psf=psf)
    np.testing.assert_allclose(out[..., 0], blur(red[..., 0], psf), atol=1e-4)
    assert out[..., 1].max() == 0 and out[..., 2].max() == 0


def test_synthesis_takes_every_seed_and_image_form_alike():
    from napari_deconvnet.core.operations import drain

    plane = np.full((16, 16), 0.5, np.float32)
    one = drain(dn.synthesize_iter(plane.tolist(), "gaussian", seed=3))  # a list: raw error
    np.testing.assert_array_equal(one, dn.synthesize(plane, "gaussian", seed=3))
    stack = drain(dn.synthesize_iter(torch.ones(2, 16, 16), "gaussian", seed=3))  # a tensor
    assert stack.shape == (2, 16, 16) and stack.std() > 0
    for seed in (torch.Generator().manual_seed(1), [1, 2], 2**70):
        assert dn.synthesize(plane, "gaussian", seed=seed).shape == plane.shape
        assert dn.synthesize(torch.from_numpy(plane), "gaussian", seed=seed).shape == (16, 16)
    with pytest.raises(TypeError, match="seed must be None, an integer"):
        drain(dn.synthesize_iter(plane, "gaussian", seed="a"))
    with pytest.raises(ValueError, match="seed must hold integers >= 0"):
        dn.synthesize(torch.from_numpy(plane), seed=-1)  # numpy refused it, torch took it


@pytest.mark.parametrize("peak", [1e-46, 1e39])
def test_a_peak_beyond_float32_is_refused_not_nan(peak):
    """Session 67: peak=1e39 or 1e-46 (both accepted) gave an all-NaN image with
    numpy's RuntimeWarnings only."""
    with pytest.raises(ValueError, match="beyond float32's range or NaN"):
        dn.synthesize(np.full((4, 4), 0.5), "poisson", peak=peak)
    with pytest.raises(ValueError, match="beyond float32's range or NaN"):
        dn.synthesize(np.full((4, 4), 0.5e30), "poisson", peak=1e10)
    assert np.isfinite(dn.synthesize(np.full((4, 4), 0.5), "poisson", peak=10, seed=0)).all()


def test_a_noise_dict_names_the_model_and_its_parameters():
    # session 73: synthesize refused the dict training takes (dict(model=..., ...)) as
    # "an unknown noise model"; estimate_noise's own dict goes straight back in too
    clean = np.full((64, 64), 0.5)
    plain = dn.synthesize(clean, "gaussian", sigma=0.03, seed=1)
    np.testing.assert_array_equal(
        dn.synthesize(clean, {"model": "gaussian", "sigma": 0.03}, seed=1), plain
    )
    found = dn.estimate_noise(plain)
    np.testing.assert_array_equal(
        dn.synthesize(clean, found, seed=2),
        dn.synthesize(clean, found["noise"], sigma=found["sigma"], seed=2),
    )
    counts = dn.synthesize(clean, {"noise": "poisson", "peak": 20}, seed=3)
    assert np.var(counts) == pytest.approx(0.5 / 20, rel=0.1)  # Poisson of 10 photons / 20
    with pytest.raises(ValueError, match="names its model with one key"):
        dn.synthesize(clean, {"sigma": 0.1})
    with pytest.raises(ValueError, match="given both in the noise dict and as keywords"):
        dn.synthesize(clean, {"noise": "gaussian", "sigma": 0.1}, sigma=0.2)
