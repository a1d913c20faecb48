"""SSIM and PSNR: equality with scikit-image, the torch path, gradients and errors."""

import doctest

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import napari_deconvnet as dn
from napari_deconvnet.core import metrics as metrics_module
from napari_deconvnet.core import ssim_cpu
from napari_deconvnet.core.metrics import SSIMLoss, psnr, ssim

TOL = 1e-4


def _skimage_ssim(x, y, **kwargs):
    kwargs.setdefault("sigma", 1.5)
    return structural_similarity(
        x, y, gaussian_weights=True, use_sample_covariance=False, full=True, **kwargs
    )


def _pair(shape, dtype=np.float32, scale=1.0, noise=0.15, seed=0):
    """A smooth reference and a noisy version of it, both of `dtype`."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    clean = 0.5 + 0.35 * np.sin(5 * sum(grids)) * np.cos(3 * grids[-1])
    noisy = np.clip(clean + noise * rng.standard_normal(shape), 0, 1)
    if np.issubdtype(dtype, np.integer):
        return (noisy * scale).round().astype(dtype), (clean * scale).round().astype(dtype)
    return (noisy * scale).astype(dtype), (clean * scale).astype(dtype)


def test_docstring_examples():
    result = doctest.testmod(metrics_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_public_names():
    assert dn.ssim is ssim and dn.psnr is psnr and dn.SSIMLoss is SSIMLoss


# ---------------------------------------------------------------- SSIM == skimage


@pytest.mark.parametrize(
    "shape", [(11, 11), (64, 80), (37, 53), (200, 129), (12, 20, 24), (11, 16, 13)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ssim_equals_skimage(shape, dtype):
    x, y = _pair(shape, dtype)
    expected, expected_map = _skimage_ssim(x, y, data_range=1.0)
    score, smap = ssim(x, y, data_range=1.0, full=True)
    assert isinstance(score, float)
    assert smap.dtype == np.float32 and smap.shape == shape
    assert score == pytest.approx(expected, abs=TOL)
    np.testing.assert_allclose(smap, expected_map, atol=TOL)
    assert ssim(x, y, data_range=1.0) == score


@pytest.mark.parametrize(
    ("dtype", "scale", "data_range"),
    [
        (np.uint8, 255, 255),
        (np.uint16, 4000, 4095),
        (np.int16, 1000, 2000),
        (np.float32, 255, 255),
        (np.float64, 0.01, 0.01),
        (np.float32, 1.0, 0.5),
    ],
)
def test_ssim_equals_skimage_over_dtypes_and_ranges(dtype, scale, data_range):
    x, y = _pair((48, 57), dtype, scale=scale)
    expected, expected_map = _skimage_ssim(x, y, data_range=data_range)
    score, smap = ssim(x, y, data_range=data_range, full=True)
    assert score == pytest.approx(expected, abs=TOL)
    np.testing.assert_allclose(smap, expected_map, atol=TOL)


@pytest.mark.parametrize(
    ("shape", "channel_axis"),
    [((40, 50, 3), -1), ((40, 50, 3), 2), ((2, 40, 50), 0), ((12, 3, 16, 18), 1)],
)
def test_ssim_channel_axis_equals_skimage(shape, channel_axis):
    x, y = _pair(shape)
    expected, expected_map = _skimage_ssim(x, y, data_range=1.0, channel_axis=channel_axis)
    score, smap = ssim(x, y, data_range=1.0, full=True, channel_axis=channel_axis)
    assert score == pytest.approx(expected, abs=TOL)
    assert smap.shape == shape
    np.testing.assert_allclose(smap, expected_map, atol=TOL)


@pytest.mark.parametrize(("sigma", "win_size"), [(1.0, None), (0.8, 5), (3.0, 7), (1.5, 11)])
def test_ssim_sigma_and_win_size_equal_skimage(sigma, win_size):
    x, y = _pair((12, 14))  # sigma 3 reaches further than the image: repeated reflection
    expected, expected_map = _skimage_ssim(x, y, data_range=1.0, sigma=sigma, win_size=win_size)
    score, smap = ssim(x, y, data_range=1.0, full=True, sigma=sigma, win_size=win_size)
    assert score == pytest.approx(expected, abs=TOL)
    np.testing.assert_allclose(smap, expected_map, atol=TOL)


def test_ssim_keeps_precision_far_from_zero():
    # camera counts on a large offset: float32 on raw values would lose the variances
    rng = np.random.default_rng(0)
    clean = 5000 + 500 * rng.random((64, 64))
    noisy = clean + rng.normal(0, 30, clean.shape)
    expected, expected_map = _skimage_ssim(noisy, clean, data_range=500.0)
    score, smap = ssim(noisy, clean, data_range=500.0, full=True)
    assert score == pytest.approx(expected, abs=TOL)
    np.testing.assert_allclose(smap, expected_map, atol=TOL)


def test_blocked_cpu_path_equals_plain_path(monkeypatch):
    x, y = _pair((2, 100, 131))  # rows not a multiple of the strip height
    fast = ssim(x, y, data_range=1.0, full=True, channel_axis=0)
    monkeypatch.setattr(metrics_module, "_BLOCKED_MIN_PIXELS", 10**12)
    plain = ssim(x, y, data_range=1.0, full=True, channel_axis=0)
    assert fast[0] == pytest.approx(plain[0], abs=1e-6)
    np.testing.assert_allclose(fast[1], plain[1], atol=1e-5)
    expected = _skimage_ssim(x, y, data_range=1.0, channel_axis=0)
    np.testing.assert_allclose(fast[1], expected[1], atol=TOL)


# ---------------------------------------------------------------- data_range rule


def test_default_data_range_uint8_is_255_as_skimage():
    x, y = _pair((40, 40), np.uint8, scale=255)
    assert ssim(x, y) == pytest.approx(_skimage_ssim(x, y)[0], abs=TOL)
    assert psnr(x, y) == pytest.approx(peak_signal_noise_ratio(y, x), abs=1e-6)


def test_default_data_range_of_floats_is_the_reference_span():
    x, y = _pair((40, 40), np.float32, scale=3.0)
    span = float(y.max()) - float(y.min())
    assert span != pytest.approx(2.0)  # never a float dtype's range
    assert ssim(x, y) == pytest.approx(ssim(x, y, data_range=span), abs=1e-7)
    assert psnr(x, y) == pytest.approx(psnr(x, y, data_range=span), abs=1e-9)


def test_default_data_range_bool():
    rng = np.random.default_rng(0)
    y = rng.random((32, 32)) > 0.5
    x = y.copy()
    x[:4] = ~x[:4]
    assert ssim(x, y) == pytest.approx(_skimage_ssim(x, y, data_range=1)[0], abs=TOL)


# ---------------------------------------------------------------- torch path


def test_torch_input_gives_torch_and_equals_numpy(device):
    x, y = _pair((40, 52))
    expected, expected_map = ssim(x, y, data_range=1.0, full=True)
    score, smap = ssim(
        torch.from_numpy(x).to(device), torch.from_numpy(y).to(device), data_range=1.0, full=True
    )
    assert isinstance(score, torch.Tensor) and score.ndim == 0
    assert smap.device.type == device and smap.dtype == torch.float32
    assert float(score) == pytest.approx(expected, abs=1e-5)
    np.testing.assert_allclose(smap.cpu().numpy(), expected_map, atol=1e-5)


@pytest.mark.parametrize("spatial", [(36, 40), (12, 14, 16)])
def test_batched_tensors_are_maps_per_item_and_channel(spatial):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, *spatial, generator=gen)
    y = (x + 0.2 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    score, smap = ssim(x, y, data_range=1.0, full=True)
    assert smap.shape == x.shape
    per_item = [
        _skimage_ssim(x[b].numpy(), y[b].numpy(), data_range=1.0, channel_axis=0) for b in range(2)
    ]
    np.testing.assert_allclose(smap.numpy(), np.stack([m for _, m in per_item]), atol=TOL)
    assert float(score) == pytest.approx(np.mean([s for s, _ in per_item]), abs=TOL)


def test_mixed_numpy_and_torch():
    x, y = _pair((32, 32))
    score = ssim(x, torch.from_numpy(y), data_range=1.0)
    assert isinstance(score, torch.Tensor)
    assert float(score) == pytest.approx(ssim(x, y, data_range=1.0), abs=1e-6)


def test_ssim_gradcheck_float64():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 12, 13, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 12, 13, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: ssim(a, y, data_range=1.0), (x,))
    assert torch.autograd.gradcheck(lambda a: ssim(a, y, data_range=1.0, full=True)[1].sum(), (x,))


@pytest.mark.parametrize("shape", [(4, 1, 32, 32), (2, 2, 16, 20, 24)])
def test_ssim_loss_gradients_are_finite_and_descend(shape, device):
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(shape, generator=gen).to(device)
    pred = (target + 0.3 * torch.randn(shape, generator=gen).to(device)).requires_grad_()
    loss_fn = SSIMLoss(data_range=1.0)
    loss = loss_fn(pred, target)
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0
    with torch.no_grad():
        stepped = pred - 50 * pred.grad
    assert loss_fn(stepped, target) < loss
    # at the optimum the gradient exists and is zero
    same = target.clone().requires_grad_()
    zero = loss_fn(same, target)
    zero.backward()
    assert float(zero.detach()) == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(same.grad).all() and same.grad.abs().max() < 1e-5


def test_ssim_loss_reduction_none_and_equality_with_ssim():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 2, 24, 24, generator=gen)
    pred = target + 0.1 * torch.randn(target.shape, generator=gen)
    per_item = SSIMLoss(1.0, reduction="none")(pred, target)
    assert per_item.shape == (3,)
    for b in range(3):
        assert float(per_item[b]) == pytest.approx(
            1 - float(ssim(pred[b : b + 1], target[b : b + 1], data_range=1.0)), abs=1e-6
        )
    mean = SSIMLoss(1.0)(pred, target)
    assert float(mean) == pytest.approx(1 - float(ssim(pred, target, data_range=1.0)), abs=1e-6)


def test_half_precision_tensors_are_computed_in_float32():
    x, y = _pair((32, 32))
    score = ssim(torch.from_numpy(x).half(), torch.from_numpy(y).half(), data_range=1.0)
    assert score.dtype == torch.float32
    assert float(score) == pytest.approx(ssim(x, y, data_range=1.0), abs=1e-3)


# ---------------------------------------------------------------- PSNR


@pytest.mark.parametrize(
    ("dtype", "scale", "data_range"),
    [
        (np.float32, 1.0, 1.0),
        (np.float64, 1.0, 1.0),
        (np.float32, 1.0, 0.7),
        (np.uint8, 255, 255),
        (np.uint16, 4000, 4095),
        (np.int16, 500, 1000),
    ],
)
@pytest.mark.parametrize("shape", [(33, 47), (8, 9, 10)])
def test_psnr_equals_skimage(dtype, scale, data_range, shape):
    x, y = _pair(shape, dtype, scale=scale)
    expected = peak_signal_noise_ratio(y, x, data_range=data_range)
    assert psnr(x, y, data_range=data_range) == pytest.approx(expected, abs=1e-6)


def test_psnr_identical_images_is_infinite():
    x, _ = _pair((16, 16))
    assert psnr(x, x, data_range=1.0) == np.inf
    assert float(psnr(torch.from_numpy(x), torch.from_numpy(x), data_range=1.0)) == np.inf


def test_psnr_torch_is_differentiable_and_equals_numpy(device):
    x, y = _pair((40, 40))
    tx = torch.from_numpy(x).double().to(device).requires_grad_()
    value = psnr(tx, torch.from_numpy(y).double().to(device), data_range=1.0)
    value.backward()
    assert float(value) == pytest.approx(psnr(x.astype(float), y, data_range=1.0), abs=1e-6)
    assert torch.isfinite(tx.grad).all()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("metric", [ssim, psnr])
def test_mismatched_shapes_raise(metric):
    with pytest.raises(ValueError, match="same shape"):
        metric(np.zeros((16, 16)), np.zeros((16, 17)), data_range=1.0)


@pytest.mark.parametrize("metric", [ssim, psnr])
@pytest.mark.parametrize("data_range", [0, -1.0, float("nan"), float("inf")])
def test_bad_data_range_raises(metric, data_range):
    x, y = _pair((16, 16))
    with pytest.raises(ValueError, match="data_range"):
        metric(x, y, data_range=data_range)


@pytest.mark.parametrize("metric", [ssim, psnr])
def test_constant_reference_needs_a_data_range(metric):
    with pytest.raises(ValueError, match="constant.*data_range"):
        metric(np.random.default_rng(0).random((16, 16)), np.ones((16, 16)))


@pytest.mark.parametrize("metric", [ssim, psnr])
@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (np.full((16, 16), np.nan), ValueError, "NaN"),
        (np.ones((16, 16), complex), ValueError, "complex"),
        (np.full((16, 16), "a"), TypeError, "numeric"),
        ("image", TypeError, "numpy array or a torch tensor"),
        (torch.ones(16, 16, dtype=torch.complex64), ValueError, "complex"),
    ],
)
def test_bad_images_raise(metric, x, error, match):
    with pytest.raises(error, match=match):
        metric(x, np.ones((16, 16)), data_range=1.0)


def test_data_range_of_wrong_type_raises():
    with pytest.raises(TypeError, match="data_range"):
        ssim(np.ones((16, 16)), np.ones((16, 16)), data_range="1")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"win_size": 4}, ValueError, "odd"),
        ({"win_size": 0}, ValueError, "odd"),
        ({"win_size": 2.5}, TypeError, "win_size"),
        ({"sigma": 0}, ValueError, "sigma"),
        ({"sigma": -1.0}, ValueError, "sigma"),
        ({"sigma": "wide"}, TypeError, "sigma"),
        ({"channel_axis": 3}, ValueError, "channel_axis"),
        ({"channel_axis": 1.0}, TypeError, "channel_axis"),
    ],
)
def test_bad_ssim_options_raise(kwargs, error, match):
    x, y = _pair((16, 16))
    with pytest.raises(error, match=match):
        ssim(x, y, data_range=1.0, **kwargs)


def test_image_smaller_than_window_raises():
    x, y = _pair((10, 40))
    with pytest.raises(ValueError, match="win_size 11 exceeds"):
        ssim(x, y, data_range=1.0)
    assert np.isfinite(ssim(x, y, data_range=1.0, win_size=7, sigma=1.0))


def test_batched_tensor_with_other_channel_axis_raises():
    x = torch.rand(1, 2, 16, 16)
    with pytest.raises(ValueError, match=r"\(B, C, \*spatial\)"):
        ssim(x, x, data_range=1.0, channel_axis=-1)


def test_ssim_loss_errors():
    with pytest.raises(ValueError, match="reduction"):
        SSIMLoss(reduction="sum")
    with pytest.raises(ValueError, match="data_range"):
        SSIMLoss(data_range=0)
    loss = SSIMLoss(1.0)
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 17))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        loss(torch.rand(16, 16), torch.rand(16, 16))
    with pytest.raises(TypeError, match="tensors"):
        loss(np.zeros((1, 1, 16, 16)), torch.rand(1, 1, 16, 16))


@pytest.fixture
def torch_threads():
    """torch at 2 intra-op threads (enough for the threaded blocked path), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def test_blocked_path_leaves_torch_threads_alone(torch_threads, monkeypatch):
    import threading

    monkeypatch.setattr(ssim_cpu, "_POOLS", {})  # the pool is made (and torch touched) now
    made = []
    real_pool = ssim_cpu.single_threaded_pool
    monkeypatch.setattr(ssim_cpu, "single_threaded_pool", lambda n: made.append(n) or real_pool(n))
    x, y = _pair((256, 300))
    score = ssim(x, y, data_range=1.0)  # large enough for the threaded, blocked path
    assert made == [1]  # it did take the threaded path
    assert score == pytest.approx(_skimage_ssim(x, y, data_range=1.0)[0], abs=TOL)
    assert torch.get_num_threads() == torch_threads
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert seen == [torch_threads]  # threads started later get the default, not 1
    ssim_cpu._POOLS[1].shutdown()


def test_blocked_path_workers_run_single_threaded_ops(torch_threads, monkeypatch):
    monkeypatch.setattr(ssim_cpu, "_POOLS", {})
    pool = ssim_cpu.single_threaded_pool(1)
    assert torch.get_num_threads() == torch_threads
    assert pool.submit(torch.get_num_threads).result() == 1
    x = torch.rand(64, 64)
    assert pool.submit(lambda: (x @ x).sum() > 0).result()
    assert pool.submit(torch.get_num_threads).result() == 1
    assert ssim_cpu.single_threaded_pool(1) is pool  # made once per size
    pool.shutdown()


def test_data_range_of_and_squared_error():
    assert metrics_module.data_range_of(np.zeros((4, 4), np.uint8)) == 255.0
    assert metrics_module.data_range_of(np.array([[1.5, -0.5]])) == 2.0
    with pytest.raises(ValueError, match="constant.*data range"):
        metrics_module.data_range_of(np.ones((4, 4)))
    x, y = _pair((16, 24))
    total, count = metrics_module.squared_error(x, y)
    assert count == x.size
    assert total == pytest.approx(float(np.sum((x.astype(np.float64) - y) ** 2)), rel=1e-6)


def test_an_image_against_itself_scores_at_most_one():
    # float32 rounding gave 1.0000000083 (SSIM cannot exceed 1)
    for seed in range(20):
        x = np.random.default_rng(seed).random((64, 64)).astype(np.float32) * 1000
        assert dn.ssim(x, x) <= 1.0 and dn.measure(x, x).ssim <= 1.0
        assert dn.ssim(x, x) == pytest.approx(1.0, abs=1e-7)


def test_float64_images_far_from_zero_keep_their_precision():
    # 1e7 + [0, 10): float32 kept under 1e-6 of the spread, and SSIM moved by 0.007
    rng = np.random.default_rng(0)
    y = rng.random((64, 64)) * 10 + 1e7
    x = y + rng.standard_normal(y.shape)
    ref = structural_similarity(
        x, y, data_range=10, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert dn.ssim(x, y, data_range=10) == pytest.approx(ref, abs=2e-4)
    assert dn.measure(x, y, data_range=10).ssim == pytest.approx(ref, abs=2e-4)
    assert dn.psnr(x, y, data_range=10) == pytest.approx(dn.psnr(x - 1e7, y - 1e7, data_range=10))


def test_a_per_channel_data_range_holds_numbers():
    x, y = np.random.default_rng(0).random((2, 2, 32, 32))
    with pytest.raises(TypeError, match="data_range must be a number, not 'a'"):
        dn.measure(x, y, axes="CYX", data_range=["a", 1])  # it was numpy's ValueError
    with pytest.raises(TypeError, match="per channel must hold numbers"):
        dn.measure(x, y, axes="CYX", data_range=[None, 1])  # it was an AttributeError


def test_32_bit_integers_beyond_float32s_exact_range_are_measured_exactly():
    """Session 67: int32/uint32 went through float32, which holds integers only up to
    2**24: uint32 values of 3e9 + [0, 200) read as a constant reference, int32 ones of
    1e8 + [0, 100) moved SSIM by 0.006 and PSNR by 0.26 dB. As int64 now."""
    rng = np.random.default_rng(0)
    u = (3_000_000_000 + rng.integers(0, 200, (64, 64))).astype(np.uint32)
    assert dn.ssim(u + 7, u) == pytest.approx(
        dn.ssim((u + 7).astype(np.int64), u.astype(np.int64))
    )
    assert dn.measure(u + 7, u).ssim == pytest.approx(1.0, abs=1e-9)
    ref = (100_000_000 + rng.integers(0, 100, (64, 64))).astype(np.int32)
    res = ref + rng.integers(-20, 21, ref.shape).astype(np.int32)
    wide = res.astype(np.int64), ref.astype(np.int64)
    assert dn.ssim(res, ref) == pytest.approx(dn.ssim(*wide), abs=1e-12)
    assert dn.psnr(res, ref) == pytest.approx(dn.psnr(*wide), abs=1e-9)
    # and a mixed pair (an int32 result beside a float64 reference)
    assert dn.ssim(res, ref.astype(np.float64)) == pytest.approx(dn.ssim(*wide), abs=1e-12)
    # torch integer tensors alike (session 69: int32 ones of 1e8 + [0, 100) went
    # through float32, PSNR 26.0 dB for 29.8)
    t_res, t_ref = torch.from_numpy(res), torch.from_numpy(ref)
    assert float(dn.psnr(t_res, t_ref)) == pytest.approx(dn.psnr(*wide), abs=1e-9)
    assert float(dn.ssim(t_res, t_ref)) == pytest.approx(dn.ssim(*wide), abs=1e-9)
    big = torch.from_numpy(wide[0] + 3_000_000_000), torch.from_numpy(wide[1] + 3_000_000_000)
    assert float(dn.psnr(*big)) == pytest.approx(dn.psnr(*wide), abs=1e-9)
    # unsigned 32- and 64-bit tensors, which torch cannot take abs() nor max() of
    for dtype in (torch.uint32, torch.uint64):
        small = torch.from_numpy(res - 99_999_000).to(dtype), torch.from_numpy(ref - 99_999_000)
        expected = dn.psnr(res - 99_999_000, ref - 99_999_000)
        assert float(dn.psnr(small[0], small[1].to(dtype))) == pytest.approx(expected, abs=1e-6)


def test_the_blocked_path_shifts_a_small_range_far_from_zero_before_scaling_it():
    """Session 69: float32 data of 1e-3 + 1e-8 * [0, 1) (a range outside the blocked
    path's) were scaled to unit range before their shift was taken off, ~1e5 + [0, 1)
    in float32: SSIM 0.7765 for 0.7770, map pixels up to 0.03 off. As in float64 now."""
    rng = np.random.default_rng(0)
    ref = rng.random((200, 200))
    res = ref + 0.05 * rng.standard_normal(ref.shape)
    ref32, res32 = (1e-3 + 1e-8 * ref).astype(np.float32), (1e-3 + 1e-8 * res).astype(np.float32)
    exact, exact_map = dn.ssim(res32.astype(np.float64), ref32.astype(np.float64), full=True)
    value, smap = dn.ssim(res32, ref32, full=True)
    assert value == pytest.approx(exact, abs=1e-6)
    np.testing.assert_allclose(smap, exact_map, atol=1e-4)


@pytest.mark.parametrize("span", [1e-11, 1e10])
def test_the_blocked_path_measures_tiny_and_huge_ranges_as_unit_ones(span):
    """Session 67: the blocked CPU path (planes of 192² and more) only shifted the images,
    so its fourth powers underflowed (range 1e-11) or overflowed (1e10) float32: a NaN
    map refused as "not finite". It equals the same images in unit range now."""
    rng = np.random.default_rng(0)
    ref = rng.random((256, 256)).astype(np.float32)
    res = ref + (0.1 * rng.standard_normal(ref.shape)).astype(np.float32)
    unit = dn.ssim(res, ref, data_range=1.0)
    scaled = dn.ssim(res * np.float32(span), ref * np.float32(span), data_range=span)
    assert scaled == pytest.approx(unit, abs=1e-6)
    assert dn.measure(res * np.float32(span), ref * np.float32(span)).ssim == pytest.approx(
        dn.measure(res, ref).ssim, abs=1e-6
    )


@pytest.mark.parametrize("scale", [1e20, 1e-25])
def test_psnr_does_not_depend_on_the_scale_of_float32_images(scale):
    """float32 squared differences overflowed beyond 1.8e19 (PSNR -inf, NaN for
    tensors) and vanished below 1e-19 (+inf, "identical"), where SSIM was exact
    (session 70): squared in float64 then, for arrays, tensors and dn.measure."""
    rng = np.random.default_rng(0)
    a = rng.random((48, 48)).astype(np.float32)
    b = a + rng.normal(0, 0.1, a.shape).astype(np.float32)
    want = dn.psnr(b, a)
    assert dn.psnr(b * scale, a * scale) == pytest.approx(want, abs=1e-4)
    assert dn.measure(b * scale, a * scale).psnr == pytest.approx(want, abs=1e-4)
    value = dn.psnr(torch.from_numpy(b * scale), torch.from_numpy(a * scale))
    assert value.dtype == torch.float32 and float(value) == pytest.approx(want, abs=1e-3)
    assert dn.psnr(a * scale, a * scale) == np.inf  # identical images still score inf
