"""Property tests (hypothesis): invariants that hold for every shape, tile, dtype and seed.

Small images and a few examples per property keep these fast; hypothesis
derandomises (a fixed seed per test) so that CI runs are reproducible.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import napari_deconvnet as dn

FAST = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
DTYPES = [
    np.bool_,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
]


@pytest.fixture(scope="module")
def default_model():
    return dn.load_model("default")


def _image(seed: int, shape, dtype=np.float32, low=0.0, high=1.0) -> np.ndarray:
    """A smooth random image with noise, in [low, high], as `dtype`."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    phase = rng.uniform(0, 6, len(shape))
    smooth = 0.5 + 0.4 * np.sin(sum(3 * g + p for g, p in zip(grids, phase, strict=True)))
    x = np.clip(smooth + rng.normal(0, 0.05, shape), 0, 1) * (high - low) + low
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        x = np.rint(x)
    return x.astype(dtype)


def _rel_max_diff(a, b) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-6))


# ---------------------------------------------------------------- restore


@FAST
@given(
    seed=st.integers(0, 2**16),
    height=st.integers(8, 48),
    width=st.integers(8, 48),
    scale=st.sampled_from([1e-3, 1.0, 255.0, 6e4, 1e6]),
    offset=st.sampled_from([-1e3, 0.0, 100.0]),
)
def test_restore_is_finite_for_finite_input(default_model, seed, height, width, scale, offset):
    x = _image(seed, (height, width), np.float64, offset, offset + scale)
    out = dn.restore(x, default_model)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    # in the input's intensity scale (the network only removes noise)
    assert abs(float(out.mean()) - float(x.mean())) < 0.2 * scale


@FAST
@given(seed=st.integers(0, 2**16), value=st.floats(-1e6, 1e6, allow_nan=False, width=32))
def test_constant_images_come_back_unchanged(default_model, seed, value):
    """A constant has no noise, and blurring it changes nothing: every model returns it."""
    out = dn.restore(np.full((20, 24), value, np.float32), default_model)
    assert out.dtype == np.float32 and (out == np.float32(value)).all()


def test_a_constant_image_through_every_model_and_its_refusals():
    for model, psf in (("denoise-2d", None), ("deconv-2d", "gaussian")):
        for x in (np.zeros((32, 40), np.uint16), np.full((32, 40), 0.01, np.float32)):
            out = dn.restore(x, model, psf=psf)
            np.testing.assert_array_equal(out, x.astype(np.float32))
    vol = np.full((8, 32, 32), 3.0, np.float32)
    np.testing.assert_array_equal(dn.restore(vol, "denoise-3d"), vol)
    with pytest.raises(ValueError, match="tile"):  # still checked
        dn.restore(np.zeros((32, 32), np.float32), "denoise-2d", tile=64)


@FAST
@given(
    seed=st.integers(0, 2**16),
    height=st.integers(17, 64),
    width=st.integers(17, 64),
    tile_y=st.integers(1, 48),
    tile_x=st.integers(1, 48),
    batch=st.integers(1, 4),
)
def test_tiled_equals_untiled(default_model, seed, height, width, tile_y, tile_x, batch):
    x = _image(seed, (height, width))
    untiled = dn.restore(x, default_model, tile=(height, width))
    tile = (min(tile_y, height), min(tile_x, width))  # a tile is no larger than the image
    tiled = dn.restore(x, default_model, tile=tile, batch_size=batch)
    assert _rel_max_diff(tiled, untiled) <= 1e-4


@settings(FAST, max_examples=6)
@given(
    seed=st.integers(0, 2**16),
    depth=st.integers(2, 4),
    height=st.integers(12, 32),
    tile=st.integers(4, 12),
)
def test_tiled_equals_untiled_on_stacks(default_model, seed, depth, height, tile):
    # a 2D model over a ZYX stack: planes one by one, tiled within each plane
    x = _image(seed, (depth, height, height + 3))
    untiled = dn.restore(x, default_model, axes="ZYX")
    tiled = dn.restore(x, default_model, axes="ZYX", tile=tile, batch_size=3)
    assert _rel_max_diff(tiled, untiled) <= 1e-4


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@settings(FAST, max_examples=2)
@given(seed=st.integers(0, 2**16))
def test_every_dtype_restores_like_its_float_values(default_model, dtype, seed):
    if dtype == np.bool_:
        high = 1
    elif np.issubdtype(dtype, np.integer):
        high = min(int(np.iinfo(dtype).max), 5000)
    else:
        high = 1.0
    x = _image(seed, (24, 28), dtype, 0, high)
    out = dn.restore(x, default_model)
    assert out.dtype == np.float32 and out.shape == x.shape
    reference = dn.restore(x.astype(np.float64), default_model)
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5 * high)


# ---------------------------------------------------------------- metrics


@FAST
@given(
    seed=st.integers(0, 2**16),
    shape=st.sampled_from([(11, 11), (16, 24), (33, 17), (12, 14, 20)]),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64]),
)
def test_ssim_of_an_image_with_itself_is_one(seed, shape, dtype):
    x = _image(seed, shape, dtype, 0, 200)
    score, smap = dn.ssim(x, x, full=True)
    assert score == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(smap, 1.0, atol=1e-5)
    assert dn.psnr(x, x, data_range=200) == np.inf


@FAST
@given(
    seed=st.integers(0, 2**16),
    shape=st.sampled_from([(11, 11), (16, 24), (33, 17), (12, 14, 20)]),
    sigma=st.floats(0.01, 0.5),
)
def test_ssim_and_psnr_are_symmetric(seed, shape, sigma):
    a = _image(seed, shape)
    b = a + np.random.default_rng(seed + 1).normal(0, sigma, shape).astype(np.float32)
    ab, map_ab = dn.ssim(a, b, data_range=1.0, full=True)
    ba, map_ba = dn.ssim(b, a, data_range=1.0, full=True)
    assert ab == pytest.approx(ba, abs=1e-6)
    np.testing.assert_allclose(map_ab, map_ba, atol=1e-4)  # float32 moments
    assert -1 <= ab < 1
    assert dn.psnr(a, b, data_range=1.0) == pytest.approx(dn.psnr(b, a, data_range=1.0))


# ------------------------------------------------------- noise round trip


_SMOOTH = None


def _smooth():
    global _SMOOTH
    if _SMOOTH is None:
        yy, xx = np.mgrid[0:96, 0:96] / 96
        _SMOOTH = 0.2 + 0.6 * (0.5 + 0.5 * np.sin(6 * xx) * np.cos(4 * yy))
    return _SMOOTH


@FAST
@given(seed=st.integers(0, 2**16), sigma=st.floats(0.01, 0.3))
def test_gaussian_noise_round_trips_through_estimate_noise(seed, sigma):
    noisy = dn.synthesize(_smooth(), "gaussian", sigma=sigma, seed=seed)
    estimate = dn.estimate_noise(noisy)
    # the model may come out as poisson-gaussian at high sigma; its noise level must not
    for level in (0.3, 0.5, 0.7):
        assert _noise_std(estimate, level) == pytest.approx(sigma, rel=0.15), (level, estimate)


@FAST
@given(seed=st.integers(0, 2**16), peak=st.floats(10, 1000))
def test_poisson_noise_round_trips_through_estimate_noise(seed, peak):
    noisy = dn.synthesize(_smooth(), "poisson", peak=peak, seed=seed)
    estimate = dn.estimate_noise(noisy)
    assert estimate["noise"] in ("poisson", "poisson-gaussian")
    for level in (0.3, 0.5, 0.7):
        expected = np.sqrt(level / peak)
        assert _noise_std(estimate, level) == pytest.approx(expected, rel=0.2), (level, estimate)


def _noise_std(estimate: dict, level: float) -> float:
    """The noise standard deviation that `estimate` predicts at intensity `level`."""
    if estimate["noise"] == "gaussian":
        return estimate["sigma"]
    # Var = (x - offset) / gain + (read_noise / gain) ** 2 (see dn.synthesize)
    gain = estimate["gain"]
    shot = max(level - estimate.get("offset", 0.0), 0.0) / gain
    return float(np.sqrt(shot + (estimate.get("read_noise", 0.0) / gain) ** 2))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@settings(FAST, max_examples=5)
@given(
    noise=st.sampled_from(["gaussian", "poisson", "salt-and-pepper", "speckle", "none"]),
    seed=st.integers(0, 2**16),
)
def test_synthesize_takes_every_dtype_and_is_reproducible(dtype, noise, seed):
    x = _image(seed, (12, 10), dtype, 0, 1 if dtype == np.bool_ else 100)
    a = dn.synthesize(x, noise, seed=seed)
    b = dn.synthesize(x, noise, seed=seed)
    assert a.dtype == np.float32 and a.shape == x.shape
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
