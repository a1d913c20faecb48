"""Noise estimation: accuracy over three noise levels per model, model choice and errors."""

import doctest

import numpy as np
import pytest
import torch
from scipy import ndimage

import napari_deconvnet as dn
from napari_deconvnet.core import noise_estimation as estimation_module
from napari_deconvnet.core.noise import estimate_noise, synthesize
from napari_deconvnet.core.noise_estimation import noise_level_function


def _phantom(shape=(256, 256), seed=0, dark=True):
    """Smooth blobs on a faint ramp in [0, 1], with a zero-signal band on the left."""
    rng = np.random.default_rng(seed)
    image = np.zeros(shape)
    for y, x in rng.integers(0, min(shape), (40, 2)):
        image[y, x] = rng.uniform(0.5, 1)
    image = ndimage.gaussian_filter(image, 6)
    image /= image.max()
    yy, xx = np.mgrid[: shape[0], : shape[1]] / shape[0]
    image = 0.8 * image + 0.2 * xx * yy
    if dark:
        image[:, : shape[1] // 6] = 0
    return image / image.max()


@pytest.fixture(scope="module")
def phantom():
    return _phantom()


@pytest.fixture(scope="module")
def camera():
    from skimage.data import camera

    return camera() / 255.0


def test_docstring_examples():
    result = doctest.testmod(estimation_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
    assert dn.estimate_noise is estimate_noise


# ---------------------------------------------------------------- accuracy


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.2])
def test_gaussian_sigma_within_10_percent(phantom, sigma):
    noisy = synthesize(phantom, "gaussian", sigma=sigma, seed=0)
    params = estimate_noise(noisy)
    assert params["noise"] == "gaussian"
    assert params["sigma"] == pytest.approx(sigma, rel=0.10)
    assert estimate_noise(noisy, "gaussian")["sigma"] == pytest.approx(sigma, rel=0.10)


@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.2])
def test_gaussian_sigma_on_a_textured_photo(camera, sigma):
    noisy = synthesize(camera, "gaussian", sigma=sigma, seed=0)
    assert estimate_noise(noisy, "gaussian")["sigma"] == pytest.approx(sigma, rel=0.10)


@pytest.mark.parametrize("peak", [5.0, 50.0, 500.0])
def test_poisson_gain_within_10_percent(phantom, peak):
    noisy = synthesize(phantom, "poisson", peak=peak, seed=0)
    params = estimate_noise(noisy)
    assert params["noise"] == "poisson"
    assert params["gain"] == pytest.approx(peak, rel=0.10)


@pytest.mark.parametrize(
    ("gain", "read_noise", "offset", "signal"),
    [(0.5, 1.5, 100.0, 2000.0), (2.0, 3.0, 0.0, 500.0), (8.0, 6.0, 0.0, 100.0)],
)
def test_poisson_gaussian_within_10_and_15_percent(phantom, gain, read_noise, offset, signal):
    clean = phantom * signal
    noisy = synthesize(
        clean, "poisson-gaussian", gain=gain, read_noise=read_noise, offset=offset, seed=0
    )
    for params in (estimate_noise(noisy), estimate_noise(noisy, offset=offset)):
        assert params["noise"] == "poisson-gaussian"
        assert params["gain"] == pytest.approx(gain, rel=0.10)
        assert params["read_noise"] == pytest.approx(read_noise, rel=0.15)
        assert params["offset"] == pytest.approx(offset, abs=0.5)


def test_poisson_gaussian_offset_given_by_the_user_is_kept(phantom):
    noisy = synthesize(phantom * 300, "poisson-gaussian", gain=2, read_noise=4, offset=100, seed=0)
    params = estimate_noise(noisy, "poisson-gaussian", offset=100)
    assert params["offset"] == 100.0
    assert params["read_noise"] == pytest.approx(4.0, rel=0.15)


@pytest.mark.parametrize("amount", [0.01, 0.05, 0.2])
def test_salt_and_pepper_is_detected_and_measured(phantom, amount):
    noisy = synthesize(phantom, "salt-and-pepper", amount=amount, salt_vs_pepper=0.3, seed=0)
    params = estimate_noise(noisy)
    assert params["noise"] == "salt-and-pepper"
    assert params["amount"] == pytest.approx(amount, rel=0.10)
    assert params["salt_vs_pepper"] == pytest.approx(0.3, abs=0.05)
    assert (params["low"], params["high"]) == (0.0, 1.0)
    # impulses=False skips the impulse test: "auto" then chooses among the other models
    assert estimate_noise(noisy, impulses=False)["noise"] != "salt-and-pepper"
    assert estimate_noise(noisy, "salt-and-pepper", impulses=False)["noise"] == "salt-and-pepper"


@pytest.mark.parametrize("amount", [0.2, 0.3])
@pytest.mark.parametrize("salt", [1.0, 0.5])
def test_dense_impulses_are_counted_at_their_rate(amount, salt):
    # an impulse widened its own margin through its neighbours' medians, and was
    # dropped more often than the pixels it is counted among: salt alone at 20 % and
    # 30 % read 16 % and 20 %
    ramp = np.tile(np.linspace(0.3, 0.7, 256), (256, 1)).astype(np.float32)
    rates = [
        estimate_noise(
            synthesize(ramp, "salt-and-pepper", amount=amount, salt_vs_pepper=salt, seed=s)
        )
        for s in range(2)
    ]
    assert np.mean([r["amount"] for r in rates]) == pytest.approx(amount, rel=0.05)
    assert np.mean([r["salt_vs_pepper"] for r in rates]) == pytest.approx(salt, abs=0.03)


def test_one_photon_spots_are_not_dense_pepper(benchmark_script):
    # the spread of the pixels two away, tried for every image, took the zeros of
    # one-photon spots on black for pepper at rates of 0.56 and 0.68 (and the impulse
    # switch would have replaced them); it is for dense impulses only
    from napari_deconvnet.core.impulse_switch import holds_impulses

    sparse_counts = benchmark_script("sparse_counts")
    for seed in (1, 2):
        _, counts = sparse_counts.frame(seed, (256, 256), 1.5, 1, 0.0)
        assert estimate_noise(counts)["noise"] != "salt-and-pepper"
        assert not holds_impulses(counts.astype(np.float64))


def test_salt_and_pepper_on_noisy_8_bit_images(camera):
    noisy = synthesize(camera * 255, "gaussian", sigma=5, seed=0, clip=(0, 255))
    noisy = synthesize(noisy.round().astype(np.uint8), "salt-and-pepper", amount=0.05, seed=1)
    params = estimate_noise(noisy.astype(np.uint8))
    assert params["noise"] == "salt-and-pepper"
    assert params["amount"] == pytest.approx(0.05, rel=0.15)


@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.3])
def test_speckle_sigma_within_10_percent(phantom, sigma):
    noisy = synthesize(phantom + 0.5, "speckle", sigma=sigma, seed=0)
    assert estimate_noise(noisy, "speckle")["sigma"] == pytest.approx(sigma, rel=0.10)


@pytest.mark.parametrize(
    ("noise", "params"),
    [
        ("poisson", {"peak": 3.0}),
        ("gaussian", {"sigma": 3.0}),  # 8-bit quantised
        ("poisson-gaussian", {"gain": 1.0, "read_noise": 1.0, "bit_depth": 8}),
    ],
)
def test_discrete_noise_is_not_taken_for_salt_and_pepper(phantom, noise, params):
    clean = phantom * (1 if noise == "poisson" else 200)
    noisy = synthesize(clean, noise, seed=0, **params)
    if noise == "gaussian":
        noisy = np.clip(noisy.round(), 0, 255).astype(np.uint8)
    assert estimate_noise(noisy)["noise"] != "salt-and-pepper"


def test_clean_photo_is_not_salt_and_pepper(camera):
    assert estimate_noise(camera)["noise"] != "salt-and-pepper"
    assert estimate_noise((camera * 255).astype(np.uint8))["noise"] != "salt-and-pepper"


# ---------------------------------------------------------------- round trip and inputs


@pytest.mark.parametrize(
    ("noise", "params"),
    [
        ("gaussian", {"sigma": 0.08}),
        ("poisson", {"peak": 40.0}),
        ("poisson-gaussian", {"gain": 2.0, "read_noise": 3.0, "offset": 0.0}),
    ],
)
def test_estimate_then_synthesize_reproduces_the_noise(phantom, noise, params):
    clean = phantom * (300 if noise == "poisson-gaussian" else 1)
    real = synthesize(clean, noise, seed=0, **params)
    estimated = estimate_noise(real)
    assert estimated["noise"] == noise
    fake = synthesize(clean, seed=1, **estimated)
    # the noise has the same variance at low and at high intensities
    for part in (clean < np.percentile(clean, 50), clean > np.percentile(clean, 90)):
        assert np.var((fake - clean)[part]) == pytest.approx(np.var((real - clean)[part]), rel=0.1)


def test_values_are_plain_floats_and_synthesize_accepts_them(phantom):
    noisy = synthesize(phantom * 300, "poisson-gaussian", gain=2, read_noise=3, seed=0)
    params = estimate_noise(noisy)
    assert all(type(v) in (str, float) for v in params.values())
    synthesize(phantom, **params)


def test_stacks_channels_and_tensors(phantom):
    stack = np.stack([synthesize(phantom, "gaussian", sigma=0.1, seed=s) for s in range(3)])
    assert estimate_noise(stack)["sigma"] == pytest.approx(0.1, rel=0.1)
    rgb = np.moveaxis(stack, 0, -1)
    assert estimate_noise(rgb, channel_axis=-1)["sigma"] == pytest.approx(0.1, rel=0.1)
    tensor = torch.from_numpy(stack)
    assert estimate_noise(tensor) == estimate_noise(stack)


def test_noise_level_function_is_linear_for_camera_noise(phantom):
    noisy = synthesize(phantom * 400, "poisson-gaussian", gain=2, read_noise=4, seed=0)
    nlf = noise_level_function(noisy)
    assert np.all(np.diff(nlf["mean"]) >= 0)
    predicted = nlf["mean"] / 2 + (4 / 2) ** 2
    inner = nlf["mean"] > 5
    np.testing.assert_allclose(nlf["variance"][inner], predicted[inner], rtol=0.3)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("image", "kwargs", "error", "match"),
    [
        (np.zeros((64, 64)), {"model": "pink"}, ValueError, "unknown noise model"),
        (np.zeros((8, 64)), {}, ValueError, "16x16"),
        (np.zeros(300), {}, ValueError, "16x16"),
        (np.zeros((64, 64, 3)), {}, ValueError, "RGB.*channel_axis=-1"),
        (np.full((32, 32), np.nan), {}, ValueError, "NaN"),
        (np.ones((32, 32), complex), {}, ValueError, "complex"),
        (np.full((32, 32), "a"), {}, TypeError, "numeric"),
        ("noisy.tif", {}, TypeError, "array"),
        (np.zeros((32, 32)), {"offset": float("nan")}, ValueError, "offset"),
        (np.zeros((32, 32)), {"offset": "dark"}, TypeError, "offset"),
        (np.zeros((3, 32, 32)), {"channel_axis": 3}, ValueError, "channel_axis"),
    ],
)
def test_bad_input_raises(image, kwargs, error, match):
    with pytest.raises(error, match=match):
        estimate_noise(image, **kwargs)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("dtype", [bool, np.uint8, np.float32])
def test_noise_free_flat_images_measure_zero_without_numerical_warnings(dtype):
    """A mask or a piecewise-constant image: every bin's variance is 0, which
    the line fit once squared below the smallest double (division by zero)."""
    mask = np.zeros((128, 128), bool)
    mask[30:90, 40:100] = True
    image = mask.astype(dtype) if dtype is bool else mask.astype(dtype) * 200
    assert estimate_noise(image) == {"noise": "gaussian", "sigma": 0.0}
    assert estimate_noise(np.full((64, 64), 3, dtype))["sigma"] == 0.0


def test_a_line_with_an_intercept_needs_contrast():
    flat = synthesize(np.full((64, 64), 0.5), "gaussian", sigma=0.1, seed=0)
    with pytest.raises(ValueError, match="too little to measure"):
        estimate_noise(flat, "poisson-gaussian")
    assert estimate_noise(flat)["noise"] == "gaussian"


@pytest.mark.parametrize("seed", [1, 2])
def test_poisson_and_speckle_are_fitted_on_a_flat_field(seed):
    # session 73: both grow from zero (lines through the origin), so one level gives
    # their parameter, as a flat field calibrates a camera's gain; they were refused
    # ("too little to measure") while model="auto" read the same frame as Poisson
    flat = np.full((256, 256), 0.5, np.float32)
    counts = synthesize(flat, "poisson", peak=10, seed=seed)
    assert estimate_noise(counts, "poisson")["gain"] == pytest.approx(10.0, rel=0.05)
    speckled = synthesize(flat, "speckle", sigma=0.1, seed=seed)
    assert estimate_noise(speckled, "speckle")["sigma"] == pytest.approx(0.1, rel=0.05)
    # fully developed speckle (its deviation is its level) on a bright field (review: it
    # was refused as "not clearly above zero")
    strong = synthesize(np.full((256, 256), 100.0), "speckle", sigma=1.0, seed=seed)
    assert estimate_noise(strong, "speckle")["sigma"] == pytest.approx(1.0, rel=0.15)
    photons = np.random.default_rng(seed).poisson(50, (256, 256)).astype(np.uint16)
    assert estimate_noise(photons, "poisson")["gain"] == pytest.approx(1.0, rel=0.05)
    # a flat field not clearly above zero cannot give the line's slope (review: a dark
    # frame around 0 read as speckle of 50), nor levels at or below zero: said so
    dark = synthesize(np.full((128, 128), 0.3), "gaussian", sigma=1.0, seed=seed)
    for model in ("poisson", "speckle"):
        with pytest.raises(ValueError, match="not clearly above zero"):
            estimate_noise(dark, model)
    for model in ("poisson", "speckle"):
        with pytest.raises(ValueError, match="(at or below|not clearly above) zero"):
            estimate_noise(synthesize(np.zeros((128, 128)), "gaussian", sigma=0.1, seed=seed)
                           - 1.0, model)  # fmt: skip


@pytest.mark.parametrize(
    "name", ["camera", "astronaut", "coins", "page"]
)  # photos with texture at the scale of faint noise
def test_faint_gaussian_noise_on_textured_photos_is_measured_on_smooth_blocks(name):
    from skimage import color, data, img_as_float

    image = getattr(data, name)()
    clean = img_as_float(color.rgb2gray(image) if image.ndim == 3 else image)
    sigma = 5 / 255
    noisy = clean + np.random.default_rng(0).normal(0.0, sigma, clean.shape)
    # all blocks: texture added 17-40 % (and camera read as Poisson-Gaussian)
    assert estimate_noise(noisy, "gaussian")["sigma"] == pytest.approx(sigma, rel=0.08)
    if name != "coins":  # coins' bright texture still reads as signal-dependent noise
        params = estimate_noise(noisy)
        assert params["noise"] == "gaussian"
        assert params["sigma"] == pytest.approx(sigma, rel=0.08)


@pytest.mark.parametrize("name", ["astronaut", "moon", "grass"])
def test_a_few_zero_counts_of_a_dim_photon_image_are_not_salt_and_pepper(name):
    from skimage import color, data, img_as_float

    image = getattr(data, name)()
    clean = img_as_float(color.rgb2gray(image) if image.ndim == 3 else image)
    noisy = synthesize(clean, "poisson", gain=10, seed=0)
    # one or two zeros among the few bright neighbourhoods used to read as 0.3-4 %
    assert estimate_noise(noisy)["noise"] != "salt-and-pepper"
    impulses = synthesize(noisy, "salt-and-pepper", amount=0.01, seed=1)
    # real impulses on the same image still are (their amount is overestimated
    # here, up to 4x on moon: the Poisson zeros count as pepper)
    assert estimate_noise(impulses)["noise"] == "salt-and-pepper"


def test_wiener_balance_keeps_the_average_noise_level_of_all_blocks():
    """Wiener's automatic balance (and so deconv-3d's channel) weighs the image's
    noise as all blocks show it, texture included, as the shipped model was
    trained with; the smooth-block sigma of estimate_noise is lower."""
    from skimage import data, img_as_float

    from napari_deconvnet.core.classical import estimate_balance
    from napari_deconvnet.core.noise_estimation import diagonal_mad_sigma

    clean = img_as_float(data.camera())
    noisy = clean + np.random.default_rng(0).normal(0.0, 5 / 255, clean.shape)
    hh = estimation_module._haar(noisy[None].astype(np.float64))["hh"]
    sigma_all = float(np.median(np.abs(hh)) / 0.6744897501960817)
    assert diagonal_mad_sigma(noisy) == pytest.approx(sigma_all, rel=1e-12)
    assert estimate_noise(noisy, "gaussian")["sigma"] < 0.9 * sigma_all
    expected = sigma_all**2 / (noisy.var() - sigma_all**2)
    assert estimate_balance(noisy) == pytest.approx(expected, rel=1e-9)


def test_impulse_count_skips_the_filters_only_when_too_few_pixels_sit_at_the_extremes(
    monkeypatch,
):
    """The shortcut is exact: impulses are pixels at the minimum or maximum, so
    with fewer pixels there than the threshold the answer is none, and with
    enough of them the neighbourhood filters still decide."""
    rng = np.random.default_rng(3)
    smooth = ndimage.gaussian_filter(rng.random((1, 96, 96)), 4) * 0.5 + 0.25
    noisy = smooth + rng.normal(0, 0.02, smooth.shape)  # one pixel at each extreme

    calls = []
    ranks = estimation_module.ring_ranks
    monkeypatch.setattr(
        estimation_module, "ring_ranks", lambda *a, **k: calls.append(1) or ranks(*a, **k)
    )
    found = estimation_module.impulse_count(noisy)
    assert found["count"] == 0 and found["amount"] == 0.0 and calls == []
    assert found["low"] == noisy.min() and found["high"] == noisy.max()

    def with_hot_pixels(n):
        image = noisy.copy()
        flat = rng.choice(image.size, n, replace=False)
        image.reshape(-1)[flat] = 2.0  # isolated saturated pixels, far from their neighbours
        return image

    # 12 at the maximum (and one at the minimum) reach the threshold of 10: counted
    found = estimation_module.impulse_count(with_hot_pixels(12), min_share=0.0)
    assert found["count"] == 12 and calls
    # 8 there (plus the one pixel at the minimum) cannot reach it: skipped, none
    calls.clear()
    found = estimation_module.impulse_count(with_hot_pixels(8), min_share=0.0)
    assert found["count"] == 0 and calls == []


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ring_ranks_equal_scipy_rank_filters(dtype):
    """The sorting network gives exactly ndimage's median and 75th percentile over
    the 8 neighbours, mirror borders included, on ties (counts) and odd shapes."""
    import itertools

    for bits in itertools.product((0, 1), repeat=8):  # 0-1 principle: it sorts
        v = list(bits)
        for layer in estimation_module._SORT8:
            for i, j in layer:
                v[i], v[j] = min(v[i], v[j]), max(v[i], v[j])
        assert v == sorted(v)
    ring = np.ones((1, 3, 3), bool)
    ring[0, 1, 1] = False
    rng = np.random.default_rng(5)
    for shape in [(1, 64, 80), (3, 17, 33), (2, 1, 5), (1, 2, 2), (1, 300, 1000)]:
        for x in (rng.poisson(2, shape).astype(dtype), rng.random(shape).astype(dtype)):
            median, upper = estimation_module.ring_ranks(x, (4, 6))
            assert median.dtype == dtype
            np.testing.assert_array_equal(
                median, ndimage.median_filter(x, footprint=ring, mode="reflect")
            )
            np.testing.assert_array_equal(
                upper, ndimage.percentile_filter(x, 75, footprint=ring, mode="reflect")
            )


@pytest.mark.parametrize("chunk", [7, 64, 2**14])
def test_ring_ranks_of_any_ranks_equal_rank_filter_in_chunks(monkeypatch, chunk):
    """Only the compare-exchanges the requested ranks need are evaluated, into reused
    buffers: each rank, and every set of them asked for at once, still equals
    ``ndimage.rank_filter`` exactly, across chunk borders and a short last chunk."""
    monkeypatch.setattr(estimation_module, "_RING_CHUNK", chunk)
    ring = np.ones((1, 3, 3), bool)
    ring[0, 1, 1] = False
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.random((1, 23, 19)), rng.poisson(1.5, (1, 23, 19))]).astype(np.float32)
    reference = [ndimage.rank_filter(x, r, footprint=ring, mode="reflect") for r in range(8)]
    for ranks in [(4,), (6,), (0, 1, 6, 7), (7, 0), (2, 3, 5), tuple(range(8))]:
        got = estimation_module.ring_ranks(x, ranks)
        for rank, values in zip(ranks, got, strict=True):
            np.testing.assert_array_equal(values, reference[rank], err_msg=str((ranks, rank)))
    # the median needs 17 of the network's 19 exchanges, 27 of their 38 minima and maxima
    median = estimation_module._selection((4,))
    assert sum(map(len, median)) == 17
    assert sum(low + high for layer in median for _, _, low, high in layer) == 27
    assert estimation_module.ring_ranks(np.zeros((0, 5, 5), np.float32), (4,))[0].shape == (
        0,
        5,
        5,
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.5, 4.0])
def test_gaussian_sigma_of_integer_data_is_not_snapped_to_the_lattice(dtype, sigma):
    """Integers' finest Haar coefficients lie on multiples of 0.5, so their plain
    median snapped sigma to multiples of 0.741 (0.0 below about 0.5, 0.741 for
    1.04, 2.224 for 2.52): the grouped median within the step fixes it."""
    from napari_deconvnet.core.noise_estimation import diagonal_mad_sigma

    ramp = np.tile(np.linspace(40, 215, 256), (256, 1))
    rng = np.random.default_rng(0)
    image = np.clip(np.rint(ramp + rng.normal(0, sigma, ramp.shape)), 0, 255).astype(dtype)
    true = float((image - ramp).std())  # the rounding's share included
    assert estimate_noise(image)["sigma"] == pytest.approx(true, rel=0.12 if sigma < 1 else 0.04)
    flat = image.astype(np.float64)  # the same values as floats: the same estimate
    assert estimate_noise(flat)["sigma"] == pytest.approx(estimate_noise(image)["sigma"])
    assert diagonal_mad_sigma(image) == pytest.approx(true, rel=0.12 if sigma < 1 else 0.05)


def test_a_lattice_finer_than_the_noise_takes_the_plain_median():
    """A few averaged values among 8-bit ones made a lattice step of 1e-9 and 10**9 bins
    (seconds per estimate); such a lattice is no lattice: the plain median, the same value."""
    from napari_deconvnet.core.noise_estimation import _MAD_TO_SIGMA, _mad_sigma

    values = np.random.default_rng(0).normal(0, 0.05, 10_000)
    plain = float(np.median(np.abs(values)) * _MAD_TO_SIGMA)
    assert _mad_sigma(values, quantum=1e-9) == plain
    assert _mad_sigma(values, quantum=0.0) == plain
    # a real lattice (integers) still takes the grouped median: not the plain one
    counts = np.rint(values * 40)
    assert _mad_sigma(counts, quantum=1.0) != float(np.median(np.abs(counts)) * _MAD_TO_SIGMA)


def test_hot_pixels_of_any_value_do_not_change_the_noise_estimate():
    """0.1% of hot pixels made a camera frame's gain 3.4 times too low and 1% made its
    Poisson-Gaussian noise read as Gaussian; their 2x2 blocks are now left out."""
    from napari_deconvnet.core.impulse_switch import outlier_candidates
    from napari_deconvnet.core.phantoms import cells_2d

    clean = cells_2d(np.random.default_rng(5), 192)
    rng = np.random.default_rng(1)
    frame = np.rint((rng.poisson(clean * 50) + rng.normal(0, 1.5, clean.shape)) * 2 + 100)
    plain = estimate_noise(frame)
    assert plain["noise"] == "poisson-gaussian" and 0.45 < plain["gain"] < 0.55  # 2 ADU/e-
    assert outlier_candidates(frame[None]) is None  # nothing left out: measured as before
    for share in (1e-3, 3e-3, 1e-2):
        hot = frame.copy()
        where = np.random.default_rng(2).random(frame.shape) < share
        hot[where] += np.random.default_rng(3).uniform(50, 1000, int(where.sum()))
        found = estimate_noise(hot)
        assert found["noise"] == "poisson-gaussian", share
        assert abs(found["gain"] / plain["gain"] - 1) < 0.1, (share, found)
        assert abs(found["offset"] - plain["offset"]) < 1.0, (share, found)
    # Gaussian noise on a photo, with or without hot pixels: the same sigma
    from skimage import data

    photo = np.asarray(data.camera()[:192, :192], np.float64) / 255
    noisy = photo + np.random.default_rng(4).normal(0, 0.05, photo.shape)
    hot = noisy.copy()
    hot[where] += 2.0
    assert abs(estimate_noise(hot)["sigma"] - estimate_noise(noisy)["sigma"]) < 0.003


def _sparse_counts(seed, photons=300, side=128, count=60):
    """Sub-pixel spots (sigma 0.35 px) on a black background, as photon counts."""
    from napari_deconvnet.core.dark_scenes import integrated_spots

    rng = np.random.default_rng(seed)
    clean = integrated_spots(rng, (side, side), count, 0.35)
    clean /= clean.max()
    return clean, rng.poisson(clean * photons).astype(np.float32)


@pytest.mark.parametrize("seed", [21, 22, 23])
@pytest.mark.parametrize("step", [1.0, 2.0, 1 / 300])
def test_near_empty_photon_counts_read_as_one_photon_per_count(seed, step):
    # 97 % zeros: the only blocks above zero are the spots' edges (or hot-pixel
    # suspects), whose texture read as noise: gains of 0.005-0.29 for a true 1
    _, counts = _sparse_counts(seed)
    assert (counts == 0).mean() > 0.9
    params = estimate_noise((counts * step).astype(np.float32))
    assert params["noise"] == "poisson", params
    assert params["gain"] == pytest.approx(1 / step, rel=0.01)


def test_photon_step_is_for_non_negative_discrete_data_only():
    _, counts = _sparse_counts(21)
    assert estimation_module.photon_step(counts[None]) == 1.0
    assert estimation_module.photon_step(3 * counts[None]) == 3.0
    assert estimation_module.photon_step(counts[None] - 1) is None  # negative values
    rng = np.random.default_rng(0)
    assert estimation_module.photon_step(rng.random((1, 64, 64))) is None  # continuous
    few = np.zeros((1, 64, 64))
    few[0, :3, 0] = 5  # fewer positive values than witnesses
    assert estimation_module.photon_step(few) is None
    mask = np.zeros((1, 64, 64))
    mask[0, 10:30, 10:30] = 200  # one positive value: a mask, not counts
    assert estimation_module.photon_step(mask) is None


@pytest.mark.parametrize("adu_per_photon", [2.5, 4.0])
def test_counts_of_a_camera_gain_above_one_keep_their_fitted_gain(phantom, adu_per_photon):
    # pure Poisson counts times a camera gain, rounded to whole ADU: no positive
    # value lies below one photon's step (up to half a quantum), so the fit stands
    rng = np.random.default_rng(3)
    adu = np.round(rng.poisson(phantom * 200) * adu_per_photon)
    params = estimate_noise(adu)
    assert params["noise"] == "poisson", params
    assert params["gain"] == pytest.approx(1 / adu_per_photon, rel=0.1)


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_denoise_2d_keeps_sparse_photon_counts_it_cannot_improve(seed):
    # before: 41.3 / 43.3 / 45.3 dB against inputs of 48.4 / 49.1 / 49.6 (the noise
    # taken for 3.7-14 times its level, or for none, the light-noise guard let the
    # network smooth the spots)
    from skimage.metrics import peak_signal_noise_ratio as psnr

    torch.manual_seed(0)
    clean, counts = _sparse_counts(seed)
    out = dn.restore(counts, "denoise-2d")
    before = psnr(clean, counts / 300, data_range=1)
    assert psnr(clean, out / 300, data_range=1) > before - 0.5


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_counts_of_spots_over_a_flat_background_read_as_poisson(seed):
    # the smooth blocks span less than one noise deviation of levels (the
    # background); a line through the spots' flanks above it read Gaussian noise
    # or Poisson-Gaussian noise of gain 0.02-0.08 with the background as offset
    from napari_deconvnet.core.dark_scenes import integrated_spots

    rng = np.random.default_rng(seed)
    spots = integrated_spots(rng, (128, 128), 60, 0.7)
    clean = 0.1 + 0.9 * spots / spots.max()
    counts = rng.poisson(clean * 300).astype(np.float32)
    params = estimate_noise(counts)
    assert params["noise"] == "poisson", params
    assert params["gain"] == pytest.approx(1.0, rel=0.1)
    # not counts (continuous, Gaussian noise at the same level): the level is all
    # that can be measured, as Gaussian noise
    gaussian = estimate_noise(clean * 300 + rng.normal(0, 5.5, clean.shape))
    assert gaussian["noise"] == "gaussian" and gaussian["sigma"] == pytest.approx(5.5, rel=0.1)


@pytest.mark.parametrize("seed", [31, 32, 33, 34])
def test_bright_sub_pixel_spots_over_a_background_read_at_the_background_level(seed):
    # 1000-photon spots of sigma 0.35 px over 100 photons: the top level bins are
    # the spots' flanks (variance 13-45 times the background's within a tenth of
    # its level), so their levels spanned more than a noise deviation, and the
    # line through them read Poisson-Gaussian noise of gain 0.01-0.05. One level
    # is left, the background's, with no value near zero: Poisson counts there look
    # like a camera's offset with read noise (session 71), so its level is read
    from napari_deconvnet.core.dark_scenes import integrated_spots

    rng = np.random.default_rng(seed)
    spots = integrated_spots(rng, (128, 128), 60, 0.35)
    counts = rng.poisson((0.1 + 0.9 * spots / spots.max()) * 1000).astype(np.float32)
    params = estimate_noise(counts)
    assert params["noise"] == "gaussian", params
    assert params["sigma"] == pytest.approx(10.0, rel=0.1)  # the background's sqrt(100)
    # the flanks are what the rule finds: with it off, the line through them is back
    planes = estimation_module._planes(counts, None)
    flanks = estimation_module._object_flanks(
        np.array([100.0, 100.5, 101.0, 112.0]), np.array([100.0, 104.0, 98.0, 2000.0]), 1.0
    )
    assert flanks.tolist() == [False, False, False, True]
    assert not estimation_module._object_flanks(
        np.array([100.0, 100.5, 101.0, 112.0]), np.array([100.0, 104.0, 98.0, 2000.0]), None
    ).any()  # (not counts: nothing flagged)
    assert estimation_module.photon_step(planes) is not None


def test_counts_with_levels_that_rise_as_shot_noise_keep_every_bin():
    # a Poisson gradient: variance = level; no bin is a flank, whatever the slack
    levels = np.linspace(20.0, 200.0, 24)
    assert not estimation_module._object_flanks(levels, levels * 1.1, 1.0).any()


def test_the_moon_in_photon_counts_reads_as_poisson():
    # smooth blocks over a narrow span of levels: read as Gaussian before
    from skimage import data, img_as_float

    moon = img_as_float(data.moon())
    counts = np.random.default_rng(1).poisson(moon / moon.max() * 10).astype(np.uint16)
    params = estimate_noise(counts)
    assert params["noise"] == "poisson" and params["gain"] == pytest.approx(1.0, rel=0.05)


def test_the_impulse_switch_keeps_the_line_its_constants_were_chosen_with():
    # kinds.noise_line(one_level=False) fits the line through the spots' flanks as
    # before; the level-only reading is what estimate_noise and noise maps get
    from napari_deconvnet.core.dark_scenes import integrated_spots
    from napari_deconvnet.core.kinds import noise_line

    rng = np.random.default_rng(31)
    spots = integrated_spots(rng, (128, 128), 60, 0.7)
    counts = rng.poisson((0.1 + 0.9 * spots / spots.max()) * 300).astype(np.float32)
    level = noise_line(counts)
    assert level["a"] == pytest.approx(1.0, rel=0.1) and level["b"] == 0.0
    fitted = noise_line(counts, one_level=False)
    assert fitted != level
    # (at the background, both describe the noise about as it is: 30 photons)
    assert fitted["a"] * 30 + fitted["b"] == pytest.approx(30, rel=0.5)


def test_impulses_on_images_of_a_few_grey_levels_are_found():
    # a flat or binary image with impulses (values 0, 0.5 and 1) was read as a lattice
    # of step 0.5, and an impulse had to stand out by 6 steps: none was ever found
    flat = np.full((128, 128), 0.5, np.float32)
    noisy = dn.synthesize(flat, "salt-and-pepper", amount=0.05, low=0.0, high=1.0, seed=0)
    found = dn.estimate_noise(noisy)
    assert found["noise"] == "salt-and-pepper" and type(found["amount"]) is float
    assert found["amount"] == pytest.approx(0.05, rel=0.1)
    binary = np.where(np.add.outer(np.arange(128), np.arange(128)) % 40 < 20, 0.2, 0.8)
    noisy = dn.synthesize(binary, "salt-and-pepper", amount=0.05, low=0.0, high=1.0, seed=1)
    assert dn.estimate_noise(noisy)["amount"] == pytest.approx(0.05, rel=0.1)
    counts = dn.synthesize(flat, "poisson", peak=2, seed=0)  # a lattice still: counts
    assert dn.estimate_noise(counts)["noise"] == "poisson"


def test_a_lazy_image_is_estimated_from_the_planes_it_reads():
    # the Noise widget's Match noise of passed np.asarray(layer.data): a lazy layer
    # larger than memory was read whole
    import dask.array as da

    from napari_deconvnet.core.noise import synthesize

    clean = np.tile(np.linspace(0.2, 0.8, 64, dtype=np.float32), (24, 64, 1))
    stack = synthesize(clean, "gaussian", sigma=0.05, seed=0).astype(np.float32)
    assert estimate_noise(da.from_array(stack, chunks=(5, 32, 32))) == estimate_noise(stack)
    rgb = np.stack([stack[0], stack[1], stack[2]], axis=-1)
    assert estimate_noise(da.from_array(rgb, chunks=(32, 32, 1)), channel_axis=-1) == (
        estimate_noise(rgb, channel_axis=-1)
    )

    class Recorded:  # a zarr-like array that records what is read of it
        def __init__(self, shape):
            self.shape, self.dtype, self.chunks, self.ndim = shape, np.dtype("float32"), (
                1, 512, 512)[-len(shape):], len(shape)  # fmt: skip
            self.read = 0

        def __getitem__(self, key):
            block = np.zeros(self.shape, bool)[key].shape
            self.read += int(np.prod(block))
            rng = np.random.default_rng(abs(hash(str(key))) % 2**32)
            return (0.5 + 0.05 * rng.standard_normal(block)).astype(np.float32)

    tall = Recorded((400, 512, 512))  # 105 M values; 16 planes of 512² are read
    found = estimate_noise(tall)
    assert found["noise"] == "gaussian" and found["sigma"] == pytest.approx(0.05, rel=0.05)
    assert tall.read == 16 * 512 * 512
    wide = Recorded((1, 4096, 4096))
    assert estimate_noise(wide)["sigma"] == pytest.approx(0.05, rel=0.05)
    assert wide.read == 2048 * 2048


@pytest.mark.parametrize("name", ["camera", "astronaut"])
@pytest.mark.parametrize("sigma", [5, 15])
def test_gaussian_noise_clipped_at_black_and_white_is_read_as_gaussian(name, sigma):
    """Session 67: an 8-bit photo's noise clipped at 0 and 255 kept less than its
    variance near the limits, the variance seemed to grow with the level, and Gaussian
    noise of 5 grey levels read as Poisson-Gaussian (gain 11.9, read noise 43)."""
    from skimage import color, data

    image = data.camera() if name == "camera" else color.rgb2gray(data.astronaut()) * 255
    image = np.asarray(image, np.float64)  # 512²
    noisy = np.clip(dn.synthesize(image, "gaussian", sigma=sigma, seed=1), 0, 255)
    for x in (noisy, np.round(noisy).astype(np.uint8)):
        found = dn.estimate_noise(x)
        assert found["noise"] == "gaussian"
        assert found["sigma"] == pytest.approx(sigma, rel=0.1)


def test_photon_counts_in_the_dark_are_not_taken_for_clipping():
    """Counts whose zeros are their noise (a sparse scene on black) keep every block:
    more than half of them at the floor is no clipping (CLIPPED_MOST)."""
    rng = np.random.default_rng(2)
    clean = np.zeros((128, 128))
    clean[rng.integers(0, 128, 60), rng.integers(0, 128, 60)] = 1.0
    from scipy import ndimage

    clean = ndimage.gaussian_filter(clean, 2.0)
    counts = rng.poisson(clean / clean.max() * 20 + 0.05).astype(np.float32)
    found = dn.estimate_noise(counts)
    assert found["noise"] == "poisson" and found["gain"] == pytest.approx(1.0, rel=0.15)


def test_channel_axis_must_be_an_integer():
    x = np.random.default_rng(0).random((64, 64, 3))
    for bad in (-1.0, True, "c"):
        with pytest.raises(TypeError, match="channel_axis must be an integer"):
            dn.estimate_noise(x, channel_axis=bad)
    assert dn.estimate_noise(x, channel_axis=np.int64(-1)) == dn.estimate_noise(x, channel_axis=-1)


def test_a_noiseless_image_is_not_read_as_photon_counts():
    """Session 69: a clean 8-bit ramp read as Poisson noise of one photon per grey level,
    a float ramp as gain 10, and a clean blurred phantom on a background of 26 as gain
    1/26 (synthesized, std 47 grey levels): their smooth blocks above zero do not vary,
    which counts of one photon and more always do. Near-empty counts stay Poisson."""
    from scipy import ndimage
    from skimage import data as skdata

    blobs = skdata.binary_blobs(256, blob_size_fraction=0.1, volume_fraction=0.3, rng=0)
    phantom = np.rint(26 + 204 * ndimage.gaussian_filter(blobs.astype(float), 2))
    for clean in (
        np.tile(np.arange(256, dtype=np.uint8), (256, 1)),
        np.tile(np.linspace(0.1, 0.9, 256), (256, 1)),
        phantom.astype(np.uint8),
    ):
        params = estimate_noise(clean)
        assert params["noise"] == "gaussian" and params["sigma"] < 0.3, params
    _, counts = _sparse_counts(21)
    assert estimate_noise(counts) == {"noise": "poisson", "gain": pytest.approx(1.0)}
    counts[110:116, 10:50] = 200  # a burned-in scale bar: one constant level
    assert estimate_noise(counts) == {"noise": "poisson", "gain": pytest.approx(1.0)}


@pytest.mark.parametrize(("adu_per_e", "read_e"), [(0.5, 1.0), (2.0, 1.5), (3.0, 3.0)])
def test_dim_camera_frames_over_an_offset_are_not_counts_through_zero(adu_per_e, read_e):
    """Session 71: sCMOS frames of 2 photons at most over an offset of 100 ADU, rounded
    to integers, read as Poisson counts through zero (gain 1.2 to 284 for a true 0.33 to
    2 with an offset of 100): dn.adapt trained on pairs 8 times brighter than the data
    and noiseless in the dark. One level cannot tell them from counts: its level is read."""
    from napari_deconvnet.core.phantoms import phantom

    rng = np.random.default_rng(7)
    scene = phantom((256, 256), rng=1)
    scene = np.clip(scene / np.percentile(scene, 99.9), 0, None)
    electrons = rng.poisson(2.0 * scene) + rng.normal(0, read_e, scene.shape)
    frame = np.round(100 + adu_per_e * electrons).astype(np.uint16)
    params = estimate_noise(frame)
    assert params["noise"] == "gaussian", params
    # the read noise in ADU, and a little of the shot noise of at most 2 photons
    assert adu_per_e * read_e <= params["sigma"] <= 1.3 * adu_per_e * np.hypot(read_e, 1.0)
