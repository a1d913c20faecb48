"""Classical methods: Richardson-Lucy (vs scikit-image), Wiener and denoiser wrappers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data, restoration
from skimage.metrics import peak_signal_noise_ratio

import napari_deconvnet as dn
from napari_deconvnet.core.classical import CLASSICAL_METHODS, richardson_lucy_iter
from napari_deconvnet.core.psf import blur
from napari_deconvnet.core.wiener_filter import wiener_context


def _psnr(ref, x):
    return peak_signal_noise_ratio(ref, x, data_range=1.0)


def _skimage_rl(image, psf, iterations, pad="reflect"):
    """scikit-image's RL on the padded image (PSF made odd as documented), cropped."""
    psf = np.asarray(psf, dtype=np.float64) / np.sum(psf)
    psf = np.pad(psf, [(0, 1 - s % 2) for s in psf.shape])
    widths = [(3 * s, 3 * s) for s in psf.shape]
    padded = np.pad(np.asarray(image, dtype=np.float64), widths, mode=pad)
    out = restoration.richardson_lucy(padded, psf, num_iter=iterations, clip=False)
    return out[tuple(slice(3 * s, 3 * s + n) for s, n in zip(psf.shape, image.shape, strict=True))]


def _phantom(shape, rng):
    """Smooth blobs in [0, 1] (a small fluorescence-like phantom)."""
    from scipy import ndimage

    x = ndimage.gaussian_filter(rng.random(shape), 2.0)
    x = (x - x.min()) / (x.max() - x.min())
    return (x > 0.55) * x + 0.05


@pytest.mark.parametrize("psf_shape", [(5, 5), (4, 6), (3, 4)])
def test_rl_equals_skimage_2d(psf_shape):
    rng = np.random.default_rng(0)
    image = data.camera()[::8, ::8][:60, :50].astype(np.float64) / 255
    psf = rng.random(psf_shape) + 0.2
    blurred = blur(image, psf)
    out = dn.richardson_lucy(blurred, psf, 15, device="cpu")
    ref = _skimage_rl(blurred, psf, 15)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, ref, atol=1e-4)


@pytest.mark.parametrize("psf_shape", [(3, 5, 5), (2, 4, 3)])
def test_rl_equals_skimage_3d(psf_shape):
    rng = np.random.default_rng(0)
    volume = _phantom((12, 24, 20), rng)
    psf = rng.random(psf_shape) + 0.2
    blurred = blur(volume, psf)
    out = dn.richardson_lucy(blurred, psf, 10, device="cpu")
    np.testing.assert_allclose(out, _skimage_rl(blurred, psf, 10), atol=1e-4)


@pytest.mark.parametrize("psf_shape", [(31, 9), (8, 30), (31, 30)])
def test_rl_with_a_psf_as_large_as_the_image_equals_skimage(psf_shape):
    # the FFT grid is only n + (s - 1) // 2 long: nothing may wrap onto the image
    rng = np.random.default_rng(0)
    image = _phantom((31, 30), rng)
    psf = rng.random(psf_shape) + 0.2
    out = dn.richardson_lucy(image, psf, 6, pad=None, device="cpu")
    odd = np.pad(psf / psf.sum(), [(0, 1 - s % 2) for s in psf_shape])
    ref = restoration.richardson_lucy(image, odd, num_iter=6, clip=False)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    np.testing.assert_allclose(
        dn.richardson_lucy(image, psf, 6, device="cpu"), _skimage_rl(image, psf, 6), atol=1e-4
    )


@pytest.mark.parametrize(
    ("shape", "psf"),
    [
        ((40, 36), ("gaussian", (9, 7), 1.5)),
        ((12, 30, 26), ("gaussian", (5, 9, 7), (1.0, 1.5, 1.2))),
        ((3, 30, 26), ("gaussian", (9, 7), 1.5)),  # a 2D PSF on a stack
    ],
)
@pytest.mark.parametrize("regularization", [None, 0.01])
def test_rl_separable_psf_path_equals_the_fft_path(monkeypatch, shape, psf, regularization):
    from napari_deconvnet.core import classical

    rng = np.random.default_rng(0)
    kernel = dn.make_psf(psf[0], psf[1], sigma=psf[2])
    # no flat regions: there TV's unit gradients are rounding noise in any implementation
    image = blur(rng.random(shape) + 0.2, kernel)
    assert classical.separable_taps(kernel / kernel.sum()) is not None
    kwargs = dict(regularization=regularization, device="cpu")
    banded = dn.richardson_lucy(image, kernel, 8, **kwargs)
    monkeypatch.setattr(classical, "separable_taps", lambda kernel: None)
    fft = dn.richardson_lucy(image, kernel, 8, **kwargs)
    # TV's unit gradients amplify rounding where the gradient is small
    tol = 2e-5 if regularization is None else 1e-3
    np.testing.assert_allclose(banded, fft, atol=tol * image.max())
    if regularization is None and image.ndim == kernel.ndim:
        np.testing.assert_allclose(banded, _skimage_rl(image, kernel, 8), atol=1e-4)


@pytest.mark.parametrize(
    ("shape", "axis", "size", "block"),
    [
        ((2, 37, 41), 2, 9, 8),  # last axis: one product per block
        ((2, 37, 41), 1, 9, 8),  # other axes: the interior blocks batched
        ((1, 5, 7), 1, 9, 32),  # one block, wider than the axis
        ((3, 70, 3), 1, 13, 16),
        ((64, 40), 0, 5, 8),
    ],
)
def test_banded_axis_equals_a_zero_padded_correlation(shape, axis, size, block):
    import torch
    from scipy import ndimage

    from napari_deconvnet.core.deconv_operators import BandedAxis

    rng = np.random.default_rng(0)
    x = rng.random(shape).astype(np.float32)
    taps = rng.random(size)
    op = BandedAxis(taps, axis, shape, "cpu", block)
    for mirror, weights in ((False, taps), (True, taps[::-1])):
        ref = ndimage.correlate1d(x.astype(np.float64), weights, axis=axis, mode="constant")
        once = op(torch.from_numpy(x), mirror)
        np.testing.assert_allclose(once.numpy(), ref, atol=1e-5 * ref.max())
        # its own result as input (copied first), and a strided input
        twice = ndimage.correlate1d(ref, weights, axis=axis, mode="constant")
        np.testing.assert_allclose(op(once, mirror).numpy(), twice, atol=1e-5 * twice.max())
        wide = torch.from_numpy(np.concatenate([x, x], axis=-1))[..., : shape[-1]]
        np.testing.assert_allclose(op(wide, mirror).numpy(), ref, atol=1e-5 * ref.max())


def test_rl_separability_check():
    from napari_deconvnet.core.deconv_operators import separable_taps

    a, b = np.array([1.0, 2, 1]), np.array([1.0, 3, 3, 1, 0])
    taps = separable_taps(np.multiply.outer(a, b) / 32)
    assert taps is not None
    np.testing.assert_allclose(np.multiply.outer(*taps), np.multiply.outer(a, b) / 32)
    airy = dn.make_psf("airy", (15, 15))
    assert separable_taps(airy / airy.sum()) is None
    assert separable_taps(np.ones((67, 3)) / 201) is None  # too long: FFTs are faster


def test_rl_fft_sizes_are_even_and_fast():
    from napari_deconvnet.core.deconv_operators import fft_shape

    sizes = fft_shape((2138, 118, 1, 7), (15, 9, 1, 3))
    assert sizes == [2160, 128, 2, 8]
    for n, s, size in zip((2138, 118, 1, 7), (15, 9, 1, 3), sizes, strict=True):
        assert size >= n + (s - 1) // 2 and size % 2 == 0
        for p in (2, 3, 5):
            while size % p == 0:
                size //= p
        assert size == 1


def test_rl_without_padding_equals_skimage():
    rng = np.random.default_rng(0)
    image = _phantom((40, 36), rng)
    psf = dn.make_psf("gaussian", (7, 7), sigma=1.2)
    out = dn.richardson_lucy(image, psf, 10, pad=None, device="cpu")
    ref = restoration.richardson_lucy(image, psf, num_iter=10, clip=False)
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_rl_filter_epsilon_equals_skimage():
    rng = np.random.default_rng(0)
    image = _phantom((32, 32), rng)
    psf = dn.make_psf("gaussian", (5, 5), sigma=1.0)
    out = dn.richardson_lucy(image, psf, 5, pad=None, filter_epsilon=0.1, device="cpu")
    ref = restoration.richardson_lucy(image, psf, num_iter=5, clip=False, filter_epsilon=0.1)
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_rl_keeps_the_intensity_scale_and_dtype():
    rng = np.random.default_rng(0)
    image = _phantom((32, 32), rng)
    psf = dn.make_psf("gaussian", (5, 5), sigma=1.0)
    blurred = blur(image, psf)
    ref = dn.richardson_lucy(blurred, psf, 8, device="cpu")
    big = dn.richardson_lucy((blurred * 4000).astype(np.uint16), psf, 8, device="cpu")
    np.testing.assert_allclose(big / 4000, ref, atol=1e-3)
    clipped = dn.richardson_lucy(blurred, psf, 8, clip=True, device="cpu")
    assert clipped.min() >= blurred.min() and clipped.max() <= blurred.max()


def test_rl_even_psf_is_centred_like_blur():
    image = np.zeros((33, 33))
    image[16, 16] = 1.0
    psf = np.ones((4, 4))
    out = dn.richardson_lucy(blur(image, psf) + 1e-3, psf, 200, device="cpu")
    assert np.unravel_index(np.argmax(out), out.shape) == (16, 16)


def test_rl_psf_with_fewer_dims_deconvolves_each_plane():
    rng = np.random.default_rng(0)
    stack = _phantom((3, 32, 32), rng)
    psf = dn.make_psf("gaussian", (5, 5), sigma=1.0)
    blurred = blur(stack, psf)
    out = dn.richardson_lucy(blurred, psf, 5, device="cpu")
    plane = dn.richardson_lucy(blurred[1], psf, 5, device="cpu")
    np.testing.assert_allclose(out[1], plane, atol=1e-5)


def test_rl_and_wiener_beat_the_blurred_noisy_input():
    rng = np.random.default_rng(0)
    image = data.camera()[::4, ::4][:96, :96].astype(np.float64) / 255
    psf = dn.make_psf("gaussian", (9, 9), sigma=1.5)
    noisy = blur(image, psf) + 0.01 * rng.standard_normal(image.shape)
    base = _psnr(image, noisy)
    rl = dn.richardson_lucy(np.clip(noisy, 0, None), psf, 20, device="cpu")
    tv = dn.richardson_lucy(np.clip(noisy, 0, None), psf, 20, regularization=0.002, device="cpu")
    wi = dn.wiener(noisy, psf)
    assert _psnr(image, rl) > base + 1.0
    assert _psnr(image, tv) > base + 1.0
    assert _psnr(image, wi) > base + 1.0


def test_rl_tv_regularization_helps_on_strong_noise():
    rng = np.random.default_rng(0)
    image = _phantom((64, 64), rng)
    psf = dn.make_psf("gaussian", (9, 9), sigma=1.5)
    noisy = np.clip(blur(image, psf) + 0.05 * rng.standard_normal(image.shape), 0, None)
    plain = dn.richardson_lucy(noisy, psf, 40, device="cpu")
    tv = dn.richardson_lucy(noisy, psf, 40, regularization=0.01, device="cpu")
    assert _psnr(image, tv) > _psnr(image, plain)


def test_rl_has_no_border_artefact_on_a_flat_image():
    psf = dn.make_psf("gaussian", (9, 9), sigma=1.5)
    out = dn.richardson_lucy(np.full((40, 40), 7.0), psf, 30, device="cpu")
    np.testing.assert_allclose(out, 7.0, rtol=1e-3)
    odd = dn.richardson_lucy(np.full((40, 40), 7.0), np.ones((4, 4)), 10, device="cpu")
    np.testing.assert_allclose(odd, 7.0, rtol=1e-3)


@pytest.mark.parametrize("pad", ["reflect", None])
def test_rl_takes_negative_values_as_zero(pad):
    # negative values (noise about a subtracted background) with an Airy PSF, whose
    # rings have zeros: the estimate was clamped to 0, a dim area's blur reached 0,
    # and y / (H x + eps) of its noise blew up into an all-zero result
    rng = np.random.default_rng(0)
    clean = np.zeros((64, 64), np.float32)
    clean[20:40, 20:40] = 1
    clean[30, 50] = 5
    psf = dn.make_psf("airy", (25, 25))
    image = (blur(clean, psf) + rng.normal(0, 0.01, clean.shape)).astype(np.float32)
    assert image.min() < 0
    out = dn.richardson_lucy(image, psf, 30, pad=pad, device="cpu")
    assert np.isfinite(out).all() and out.max() > 1.0
    assert dn.psnr(clean, out, data_range=5.0) > dn.psnr(clean, image, data_range=5.0) + 2
    if pad is None:  # scikit-image's on the image clipped at zero
        expected = restoration.richardson_lucy(
            np.clip(image, 0, None), psf / psf.sum(), 30, clip=False
        )
        np.testing.assert_allclose(out, expected, atol=1e-4)
    # one dead pixel far below the noise changes nothing beyond its own value
    dead = image.copy()
    dead[5, 5] = -1000.0
    np.testing.assert_allclose(
        dn.richardson_lucy(dead, psf, 30, pad=pad, device="cpu")[20:, 20:],
        dn.richardson_lucy(np.where(dead < 0, 0, dead), psf, 30, pad=pad, device="cpu")[20:, 20:],
        atol=1e-4,
    )
    # each plane on its own: planes do not reach each other (the whole stack's
    # minimum decided how every plane ran)
    stack = np.stack([image, image * 10, image + 1.0])
    planes = dn.richardson_lucy(stack, psf, 30, pad=pad, device="cpu")
    for plane, alone in zip(planes, stack, strict=True):
        np.testing.assert_allclose(
            plane, dn.richardson_lucy(alone, psf, 30, pad=pad, device="cpu"), atol=2e-3
        )


def test_rl_iter_yields_progress():
    image = np.ones((20, 20))
    gen = richardson_lucy_iter(image, np.ones((3, 3)), 4, device="cpu")
    steps = []
    with pytest.raises(StopIteration) as stop:
        while True:
            steps.append(next(gen))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    np.testing.assert_allclose(stop.value.value, 1.0, atol=1e-5)


@pytest.mark.parametrize("psf_shape", [(5, 5), (4, 6)])
def test_wiener_equals_skimage(psf_shape):
    rng = np.random.default_rng(0)
    image = _phantom((40, 48), rng)
    psf = rng.random(psf_shape) + 0.2
    blurred = blur(image, psf)
    out = dn.wiener(blurred, psf, 0.05)
    odd = np.pad(psf / psf.sum(), [(0, 1 - s % 2) for s in psf_shape])
    # three PSF sizes of mirror image per side, or more for a larger balance
    context = wiener_context(odd.shape, 0.05)
    assert context == [max(3 * s, 2 * s + 6) for s in odd.shape]  # 12 * 0.05 ** 0.25 -> 6
    padded = np.pad(blurred.astype(np.float64), [(c, c) for c in context], mode="reflect")
    ref = restoration.wiener(padded, odd, 0.05, clip=False)
    ref = ref[tuple(slice(c, c + n) for c, n in zip(context, image.shape, strict=True))]
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, ref, atol=1e-5)
    unpadded = dn.wiener(blurred, psf, 0.05, pad=None)
    np.testing.assert_allclose(
        unpadded, restoration.wiener(blurred.astype(np.float64), odd, 0.05, clip=False), atol=1e-5
    )


def test_wiener_improves_a_noiseless_blur():
    image = data.camera()[::4, ::4][:96, :96].astype(np.float64) / 255
    psf = dn.make_psf("gaussian", (9, 9), sigma=1.5)
    blurred = blur(image, psf)
    assert _psnr(image, dn.wiener(blurred, psf)) > _psnr(image, blurred) + 1.0


@pytest.mark.parametrize(
    ("psf", "match"),
    [
        (np.full((3, 3), np.nan), "NaN"),
        (np.array([[1.0, -1.0], [1.0, -1.0]]), "negative values"),
        (np.ones((3, 3, 3, 3)), "dimensions"),
        (np.ones((41, 3)), "bigger than the image"),
        (np.ones((3, 3), dtype=complex), "real"),
    ],
)
@pytest.mark.parametrize("method", [dn.richardson_lucy, dn.wiener])
def test_bad_psf(method, psf, match):
    with pytest.raises(ValueError, match=match):
        method(np.ones((40, 40, 4)).mean(-1), psf)


def test_bad_arguments():
    image = np.ones((32, 32))
    psf = np.ones((3, 3))
    with pytest.raises(ValueError, match="iterations"):
        dn.richardson_lucy(image, psf, 0)
    with pytest.raises(TypeError, match="iterations"):
        dn.richardson_lucy(image, psf, 2.5)
    with pytest.raises(ValueError, match="regularization"):
        dn.richardson_lucy(image, psf, regularization=0.3)
    with pytest.raises(ValueError, match="regularization"):
        dn.richardson_lucy(image, psf, regularization=-1)
    with pytest.raises(ValueError, match="pad"):
        dn.richardson_lucy(image, psf, pad="zeros")
    with pytest.raises(ValueError, match="balance"):
        dn.wiener(image, psf, 0)
    with pytest.raises(TypeError, match="balance"):
        dn.wiener(image, psf, "high")
    bad = image.copy()
    bad[3, 3] = np.nan
    for method in (dn.richardson_lucy, dn.wiener, dn.denoise_tv):
        with pytest.raises(ValueError, match="NaN"):
            method(bad, psf) if method is not dn.denoise_tv else method(bad)
    with pytest.raises(ValueError, match="complex"):
        dn.richardson_lucy(image + 1j, psf)
    with pytest.raises(ValueError, match="complex"):
        dn.denoise_nlm(image + 1j)
    with pytest.raises(TypeError, match="image"):
        dn.wiener("image", psf)


def _noisy(rng, shape=(64, 64), scale=1.0):
    image = data.camera()[::8, ::8][: shape[0], : shape[1]].astype(np.float64) / 255
    return image * scale, (image + 0.08 * rng.standard_normal(image.shape)) * scale


def test_nlm_wraps_skimage():
    rng = np.random.default_rng(0)
    clean, noisy = _noisy(rng)
    sigma = float(restoration.estimate_sigma(noisy))
    ref = restoration.denoise_nl_means(
        noisy.astype(np.float32), patch_size=7, patch_distance=11, h=0.8 * sigma, sigma=sigma
    )
    out = dn.denoise_nlm(noisy)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert _psnr(clean, out) > _psnr(clean, noisy)


def test_nlm_refuses_more_than_three_spatial_axes_and_run_method_filters_them_by_plane():
    """A TZYX stack ran scikit-image's 4D search (23**4 offsets per pixel; a 2x6x20x20
    stack did not finish in five minutes); now a ValueError points to run_method,
    which filters it plane by plane, each plane equal to denoise_nlm of that plane."""
    rng = np.random.default_rng(3)
    stack = rng.normal(0.5, 0.1, (2, 3, 24, 24)).astype(np.float32)
    with pytest.raises(ValueError, match="2D image or a 3D volume, got 4 spatial axes"):
        dn.denoise_nlm(stack)
    out = dn.run_method(stack, "nlm", axes="TZYX")
    np.testing.assert_allclose(out[1, 2], dn.denoise_nlm(stack[1, 2]), atol=1e-6)
    colour = rng.random((3, 24, 24, 3)).astype(np.float32)  # a colour volume: 3 spatial axes
    assert dn.denoise_nlm(colour, channel_axis=-1, patch_distance=2).shape == colour.shape


def test_nlm_keeps_the_intensity_scale():
    rng = np.random.default_rng(0)
    _, noisy = _noisy(rng)
    ref = dn.denoise_nlm(noisy)
    big = dn.denoise_nlm(np.round(noisy * 1000 + 2000).astype(np.uint16))
    assert abs(float(big.mean()) - (1000 * float(ref.mean()) + 2000)) < 5


def test_tv_wraps_skimage():
    rng = np.random.default_rng(0)
    clean, noisy = _noisy(rng)
    out = dn.denoise_tv(noisy, weight=0.1)
    ref = restoration.denoise_tv_chambolle(noisy.astype(np.float32), weight=0.1)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    auto = dn.denoise_tv(noisy)
    assert auto.dtype == np.float32 and _psnr(clean, auto) > _psnr(clean, noisy)


def test_wavelet_wraps_skimage():
    pytest.importorskip("pywt")
    rng = np.random.default_rng(0)
    clean, noisy = _noisy(rng)
    out = dn.denoise_wavelet(noisy)
    ref = restoration.denoise_wavelet(noisy.astype(np.float32), rescale_sigma=True)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert _psnr(clean, out) > _psnr(clean, noisy)
    big = dn.denoise_wavelet(noisy * 1000)  # not clipped to [0, 1]
    assert big.max() > 100


def test_bm3d_wraps_bm3d():
    bm3d = pytest.importorskip("bm3d")
    rng = np.random.default_rng(0)
    clean, noisy = _noisy(rng, (48, 48))
    out = dn.denoise_bm3d(noisy, sigma=0.08)
    ref = bm3d.bm3d(noisy.astype(np.float32), sigma_psd=0.08)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert out.dtype == np.float32 and _psnr(clean, out) > _psnr(clean, noisy)
    with pytest.raises(ValueError, match="2D"):
        dn.denoise_bm3d(np.ones((4, 16, 16)))


@pytest.mark.parametrize("shape", [(8, 8), (3, 40), (40, 5), (4, 8, 8)])
def test_bm3d_refuses_images_under_nine_pixels_a_side(shape):
    # an 8 x 8 image is a segmentation fault inside the bm3d package: napari would die.
    # Asked here, in this process: without the check the test run itself crashes
    pytest.importorskip("bm3d")
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    with pytest.raises(ValueError, match="at least 9 x 9 pixels"):
        if len(shape) == 2:
            dn.denoise_bm3d(image, sigma=0.1)
        else:
            dn.run_method(image, "bm3d", sigma=0.1)  # plane by plane


@pytest.mark.parametrize("shape", [(1, 64), (64, 1), (3, 1, 64)])
def test_nlm_keeps_axes_of_length_one(shape):
    # scikit-image drops them: a one-row image came back 1-D (the Restore widget failed)
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    assert dn.denoise_nlm(image, sigma=0.1).shape == shape
    assert dn.run_method(image, "nlm").shape == shape


def test_bm3d_missing_package_is_a_clear_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "bm3d" else real(name, *a)
    )
    with pytest.raises(ImportError, match="pip install bm3d"):
        dn.denoise_bm3d(np.ones((16, 16)))


def test_median_equals_scipy():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    clean = _phantom((48, 48), rng)
    noisy = clean.copy()
    hit = rng.random(clean.shape) < 0.05
    noisy[hit] = rng.choice([0.0, 1.0], size=int(hit.sum()))
    out = dn.denoise_median(noisy)
    assert out.dtype == np.float32 and out.shape == noisy.shape
    np.testing.assert_array_equal(out, ndimage.median_filter(noisy.astype(np.float32), size=3))
    assert _psnr(clean, out) > _psnr(clean, noisy) + 3
    # the intensity scale is kept (no rescale of integer images)
    big = dn.denoise_median((noisy * 1000).astype(np.uint16), size=5)
    ref = ndimage.median_filter((noisy * 1000).astype(np.uint16), size=5)
    np.testing.assert_array_equal(big, ref.astype(np.float32))


def test_median_axes():
    from scipy import ndimage

    stack = np.random.default_rng(0).random((4, 6, 16, 16)).astype(np.float32)
    # an int filters the trailing 3 axes, a pair each plane on its own
    np.testing.assert_array_equal(
        dn.denoise_median(stack, 3), ndimage.median_filter(stack, size=(1, 3, 3, 3))
    )
    np.testing.assert_array_equal(
        dn.denoise_median(stack[0], (3, 5)), ndimage.median_filter(stack[0], size=(1, 3, 5))
    )


@pytest.mark.parametrize(
    "image, size, error, match",
    [
        (np.ones(16), 3, ValueError, "dimension"),
        (np.ones((8, 8)) + 1j, 3, ValueError, "complex"),
        (np.full((8, 8), np.nan), 3, ValueError, "NaN"),
        (np.array([["a"]]), 3, TypeError, "numeric"),
        ("image", 3, TypeError, "array"),
        (np.ones((8, 8)), 4, ValueError, "odd"),
        (np.ones((8, 8)), 0, ValueError, "odd"),
        (np.ones((8, 8)), 2.5, TypeError, "integer"),
        (np.ones((8, 8)), True, TypeError, "integer"),
        (np.ones((8, 8)), (3, 3, 3), ValueError, "2 or 3 axes"),
        (np.ones((8, 8, 8)), (3,), ValueError, "2 or 3 axes"),
    ],
)
def test_median_bad_input(image, size, error, match):
    with pytest.raises(error, match=match):
        dn.denoise_median(image, size=size)


def test_classical_methods_table():
    assert set(CLASSICAL_METHODS) == {
        "richardson-lucy",
        "wiener",
        "nlm",
        "tv",
        "wavelet",
        "bm3d",
        "median",
        "switching-median",
    }
    for entry in CLASSICAL_METHODS.values():
        assert callable(entry["function"]) and entry["description"]
    assert CLASSICAL_METHODS["wiener"]["psf"] and not CLASSICAL_METHODS["tv"]["psf"]


def _switching_median_reference(image, low, high, largest=7):
    """Pixel by pixel: the median of the clean pixels in the smallest window with any."""
    out = image.astype(np.float32).copy()
    bad = (image <= low) | (image >= high)
    padded = {s: np.pad(np.where(bad, np.nan, image), s // 2, mode="reflect") for s in (3, 5, 7)}
    for y, x in zip(*np.nonzero(bad), strict=True):
        for s in range(3, largest + 1, 2):
            window = padded[s][y : y + s, x : x + s]
            if not np.isnan(window).all():
                out[y, x] = np.nanmedian(window)
                break
    return out


def test_switching_median_replaces_only_impulses():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.1, 0.9, (40, 36)).astype(np.float32)
    noisy = dn.synthesize(clean, "salt-and-pepper", amount=0.3, low=0.0, high=1.0, seed=1)
    out = dn.denoise_switching_median(noisy, 0.0, 1.0)
    np.testing.assert_allclose(out, _switching_median_reference(noisy, 0.0, 1.0), atol=1e-6)
    untouched = (noisy > 0) & (noisy < 1)
    np.testing.assert_array_equal(out[untouched], noisy[untouched])
    # default impulse values: the image's min and max
    np.testing.assert_array_equal(dn.denoise_switching_median(noisy), out)
    stack = dn.denoise_switching_median(np.stack([noisy, noisy]), 0.0, 1.0)
    assert stack.shape == (2, 40, 36)
    with pytest.raises(ValueError, match="odd integer"):
        dn.denoise_switching_median(noisy, largest=4)
    # NumPy integers are integers (np.int64(5) was refused as "not an odd integer")
    np.testing.assert_array_equal(
        dn.denoise_switching_median(noisy, 0.0, 1.0, largest=np.int64(7)), out
    )
    with pytest.raises(TypeError, match="odd integer"):
        dn.denoise_switching_median(noisy, largest=5.0)
    with pytest.raises(TypeError, match="low must be a number"):
        dn.denoise_switching_median(noisy, low="a")  # (float()'s own words before)
    with pytest.raises(ValueError, match="high must be a finite"):
        dn.denoise_switching_median(noisy, high=np.inf)
    with pytest.raises(ValueError):
        dn.denoise_switching_median(np.full((8, 8), np.nan))


def test_switching_median_rows_equal_numpy_nanmedian():
    """The switching median's fill (sorted rows) is np.nanmedian's, bit for bit."""
    import warnings

    from napari_deconvnet.core.denoisers import _row_medians

    rng = np.random.default_rng(11)
    for width in (9, 25, 49):
        for dtype in (np.float32, np.float64):
            rows = rng.random((4000, width)).astype(dtype)
            rows[rng.random(rows.shape) < rng.random((4000, 1))] = np.nan  # 0-100% missing
            rows[np.isnan(rows).all(axis=1), 0] = 0.25  # each row has a value
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = np.nanmedian(rows, axis=1)
            got = _row_medians(rows)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape", [(2, 96, 80), (1, 20, 48, 40)])
def test_wiener_on_torch_equals_the_scipy_path(shape):
    """The GPU path of the Wiener filter (torch FFTs), run here on the CPU, against scipy's.

    A non-trivial check: at balance 1e-3 the filter amplifies the noise of
    these random planes, so the two paths' transforms must agree closely.
    """
    from napari_deconvnet.core.psf import gaussian_psf
    from napari_deconvnet.core.wiener_filter import wiener_planes, wiener_planes_torch

    rng = np.random.default_rng(0)
    planes = rng.random(shape, dtype=np.float32)
    kernel = gaussian_psf(sigma=1.6, ndim=len(shape) - 1).astype(np.float32)
    for balance in (1e-3, 0.5, 1e3):
        ref = wiener_planes(planes, kernel, balance)
        out = wiener_planes_torch(planes, kernel, balance, "cpu")
        assert out.dtype == np.float32 and out.shape == ref.shape
        # float32 rounding of the values (a large balance leaves a range of 0.01 around 0.5)
        assert np.abs(out - ref).max() <= 2e-6 * np.abs(ref).max(), balance


def test_wiener_sends_a_gpu_device_to_torch_and_keeps_the_cpu_on_scipy(monkeypatch):
    from napari_deconvnet.core import wiener_filter
    from napari_deconvnet.core.psf import gaussian_psf

    calls = []

    def spy(planes, kernel, balance, device):
        calls.append(device.type)
        return np.zeros(planes.shape, np.float32)

    monkeypatch.setattr(wiener_filter, "wiener_planes_torch", spy)
    image = data.camera()[:64, :64].astype(np.float32) / 255
    kernel = gaussian_psf(sigma=1.5, ndim=2)
    on_cpu = dn.wiener(image, kernel, 0.01, device="cpu")
    np.testing.assert_array_equal(on_cpu, dn.wiener(image, kernel, 0.01))  # bit for bit
    assert calls == []
    wiener_filter.wiener_planes(image[None], kernel, 0.01, device="meta")
    assert calls == ["meta"]


@pytest.mark.parametrize("method", ["median", "nlm", "wavelet"])
def test_run_method_takes_nested_lists_as_restore_does(method):
    # a list raised AttributeError ('list' object has no attribute 'shape')
    image = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    np.testing.assert_array_equal(
        dn.run_method(image.tolist(), method), dn.run_method(image, method)
    )


def test_bm3d_of_a_lazy_stack_runs_one_plane_at_a_time():
    # dask computes a lazy stack's planes in threads, and the bm3d library aborted the
    # process (SIGABRT in its thread pool) or hung when called from two at once; run in
    # a child process so that a regression fails this test instead of killing pytest
    import subprocess
    import sys

    pytest.importorskip("bm3d")
    script = (
        "import numpy as np, dask, dask.array as da, napari_deconvnet as dn\n"
        "v = (np.random.default_rng(0).random((4, 48, 40)) * 100 + 100).astype(np.float32)\n"
        "with dask.config.set(scheduler='threads', num_workers=4):\n"
        "    lazy = np.asarray(dn.run_method(da.from_array(v, chunks=(1, 48, 40)), 'bm3d',\n"
        "                                    axes='TYX', sigma=10.0))\n"
        "eager = dn.run_method(v, 'bm3d', axes='TYX', sigma=10.0)\n"
        "print(float(np.abs(lazy - eager).max() / np.ptp(eager)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # bm3d itself differs from run to run by about 1e-5 of the range (its own threads)
    assert float(done.stdout.split()[-1]) < 1e-3


@pytest.mark.parametrize("pad", ["reflect", None])
def test_richardson_lucy_with_a_psf_lit_to_one_side_of_its_origin_stays_finite(pad):
    # a drift streak starting at the bead: the pixels at the border the PSF points away
    # from are reached by no estimate; their ratio of about 1e12 through FFT round-off
    # made the result NaN within ten iterations
    rng = np.random.default_rng(3)
    clean = ndimage.gaussian_filter(rng.random((96, 96)), 3)
    clean = (clean - clean.min()) / np.ptp(clean)
    streak = np.zeros((9, 9))
    streak[4, 5:9], streak[3, 6:8] = 1.0, 1.0
    streak /= streak.sum()
    blurred = ndimage.convolve(clean, streak, mode="mirror")
    out = dn.richardson_lucy(blurred, streak, 30, pad=pad, device="cpu")
    assert np.isfinite(out).all() and out.max() < 10.0  # was 1e12 after 3, then NaN
    if pad == "reflect":
        assert dn.psnr(out, clean, data_range=1.0) > dn.psnr(blurred, clean, data_range=1.0) + 5


def test_wiener_without_padding_says_what_the_image_is_too_small_for():
    # an even PSF as large as the image (made odd: one larger), or planes the 3x3x3
    # regulariser does not fit, failed in numpy's "could not broadcast"
    image = np.random.default_rng(0).random((8, 8))
    with pytest.raises(ValueError, match=r"PSF made odd \(\(9, 9\)\).*pad='reflect'"):
        dn.wiener(image, np.ones((8, 8)), 0.1, pad=None)
    thin = np.random.default_rng(0).random((2, 30, 30))
    with pytest.raises(ValueError, match=r"and 3 pixels"):
        dn.wiener(thin, dn.make_psf("gaussian", shape=(1, 7, 7)), 0.1, pad=None)
    assert dn.wiener(image, np.ones((8, 8)), 0.1).shape == (8, 8)  # padded: fine


def test_nlm_names_h_and_make_psf_takes_sigmas_as_an_array():
    with pytest.raises(ValueError, match="^h must be finite and >= 0"):
        dn.denoise_nlm(np.random.default_rng(0).random((32, 32)), h=-1)  # it said "sigma"
    np.testing.assert_array_equal(  # an array of sigmas was "sigma must be a number"
        dn.make_psf("gaussian", sigma=np.array([1.0, 2.0])), dn.make_psf("gaussian", sigma=(1, 2))
    )


@pytest.mark.parametrize("k", [1e-6, 1e-12, 2.0**40])
def test_the_classical_denoisers_and_wieners_balance_do_not_depend_on_the_scale(k):
    # below 2**-4 the methods' absolute floors took over (BM3D of a crop scaled by 1e-6
    # came back worse than its input; the wavelets left 1e-8 as it was), above 2**24
    # float32 squares overflowed (TV, the wavelets, Wiener's automatic balance)
    clean = data.camera()[100:164, 100:164].astype(np.float64)
    noisy = clean + 20 * np.random.default_rng(0).standard_normal(clean.shape)
    psf = dn.make_psf("gaussian", sigma=1.5)
    for method, run in [
        ("wavelet", lambda a, s: dn.denoise_wavelet(a)),
        ("tv", lambda a, s: dn.denoise_tv(a, weight=s / 2)),
        ("wiener", lambda a, s: dn.wiener(a, psf)),
    ] + ([("bm3d", lambda a, s: dn.denoise_bm3d(a, sigma=s))] if _has_bm3d() else []):
        at_one = run(noisy, 20.0).astype(np.float64)
        scaled = run(noisy * k, 20.0 * k).astype(np.float64) / k
        assert np.abs(scaled - at_one).max() < 1e-3 * 255, method


def _has_bm3d():
    import importlib.util

    return importlib.util.find_spec("bm3d") is not None


def test_a_one_plane_psf_is_a_planes_for_every_classical_path():
    """A (1, Y, X) PSF (a PSF layer or TIFF of one plane) is a plane's, as dn.restore
    takes it: richardson_lucy, wiener, synthesize and run_method refused it beside a
    plane, and run_method took a TYX stack beside it as volumes."""
    rng = np.random.default_rng(0)
    img = (rng.random((48, 48)) * 100).astype(np.float32)
    stack = np.stack([img, img[::-1]])
    plane = dn.make_psf("gaussian", (9, 9), sigma=1.5)
    one = plane[None]
    runs = [
        lambda p: dn.richardson_lucy(img, p, 5),
        lambda p: dn.wiener(img, p, 0.1),
        lambda p: dn.synthesize(img, None, psf=p),
        lambda p: dn.run_method(img, "richardson-lucy", psf=p, iterations=5),
        lambda p: dn.run_method(stack, "richardson-lucy", psf=p, iterations=5, axes="TYX"),
        lambda p: dn.run_method(stack, "wiener", psf=p, axes="TYX"),
    ]
    for run in runs:
        np.testing.assert_array_equal(np.asarray(run(one)), np.asarray(run(plane)))
    # beside RGB(A) it is the plane's too; beside an unlabelled volume a volume's
    rgba = rng.random((48, 48, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        dn.run_method(rgba, "wiener", psf=one), dn.run_method(rgba, "wiener", psf=plane)
    )
    volume = np.stack([img, img[::-1], img[:, ::-1]])
    np.testing.assert_array_equal(
        dn.run_method(volume, "wiener", psf=one),
        dn.run_method(volume, "wiener", psf=one, axes="ZYX"),
    )
    # a one-plane stack, planes as time: still each restored alone, as with the 2D PSF
    out = dn.run_method(stack, "richardson-lucy", psf=one, iterations=5, axes="TYX")
    np.testing.assert_array_equal(
        out[1], dn.run_method(stack[1], "richardson-lucy", psf=plane, iterations=5)
    )


def test_a_one_plane_psf_trains_and_adapts_a_2d_network():
    """dn.train's synthetic pairs and dn.adapt take a (1, Y, X) PSF as the plane's, with
    the same result as the 2D PSF (refused: "psf has 3 dimensions but the network is 2D",
    "a 3D PSF needs a 3D image")."""
    from napari_deconvnet.core.operations import drain, synthesize_iter

    rng = np.random.default_rng(0)
    img = rng.random((48, 48)).astype(np.float32)
    plane = dn.make_psf("gaussian", (5, 5), sigma=1.0)
    stack = np.stack([img, img[::-1]])
    one, two = (
        drain(synthesize_iter(stack, "none", psf=p, axes="TYX")) for p in (plane[None], plane)
    )
    np.testing.assert_array_equal(np.asarray(one), np.asarray(two))
    opts = dict(epochs=1, steps_per_epoch=1, batch_size=2, network={"base_channels": 4},
                device="cpu", validation=0)  # fmt: skip
    noise = dict(model="gaussian", sigma=0.05)
    a = dn.train(img, noise=noise, psf=plane[None], **opts).model
    b = dn.train(img, noise=noise, psf=plane, **opts).model
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    adapted = dn.adapt("deconv-2d", img, psf=plane[None], steps=1, device="cpu")
    assert adapted.config.ndim == 2


def test_out_of_range_inputs_of_the_classical_methods_are_refused_in_words():
    """Session 69: a 1-D signal with Wiener's automatic balance raised an IndexError; a
    PSF of 1e308s summed to inf and became zeros (Richardson-Lucy returned zeros, Wiener
    NaN); make_psf(ndim=2.0) failed in the kind with a bare TypeError; finite float64
    values beyond float32 were called "NaN or infinite"; an image of 1e-42 "diverged";
    a switching median with low above high returned its input unchanged."""
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="2x2 blocks.*got shape \\(200,\\); pass a balance"):
        dn.wiener(rng.random(200), np.ones(3))
    image = rng.random((24, 24))
    huge = np.full((3, 3), 1e308)
    np.testing.assert_allclose(
        dn.richardson_lucy(image, huge, 3), dn.richardson_lucy(image, np.ones((3, 3)), 3)
    )
    np.testing.assert_allclose(dn.wiener(image, huge, 0.1), dn.wiener(image, np.ones((3, 3)), 0.1))
    with pytest.raises(ValueError, match="ndim must be the integer 1, 2 or 3, got 2.0"):
        dn.make_psf("gaussian", ndim=2.0)
    with pytest.raises(ValueError, match="beyond float32's range"):
        dn.wiener(np.full((24, 24), 1e300), "gaussian")
    with pytest.raises(ValueError, match="too small for float32 arithmetic"):
        dn.richardson_lucy(np.full((24, 24), 1e-42, np.float32), "gaussian", 3)
    with pytest.raises(ValueError, match="low=200, high=10"):
        dn.run_method((image * 255).astype(np.uint8), "switching-median", low=200, high=10)


@pytest.mark.parametrize("name", ["denoise_tv", "denoise_wavelet", "denoise_nlm"])
def test_a_length_one_axis_is_no_side_of_the_image(name):
    # session 73: scikit-image's noise estimate of a one-plane stack (1, Y, X) or a
    # (Y, X, 1) image was 6e-9 where the plane's is 0.1, and these returned the noisy
    # image (20.0 dB where the plane alone gives 26.8-30.2)
    pytest.importorskip("pywt")
    from skimage import data
    from skimage.metrics import peak_signal_noise_ratio as psnr

    clean = data.camera()[200:296, 200:296].astype(np.float32) / 255
    noisy = clean + np.random.default_rng(0).normal(0, 0.1, clean.shape).astype(np.float32)
    method = getattr(dn, name)
    plane = method(noisy)
    assert psnr(clean, plane, data_range=1) > psnr(clean, noisy, data_range=1) + 5
    for shape in ((1, 96, 96), (96, 96, 1), (1, 1, 96, 96)):
        out = method(noisy.reshape(shape))
        assert out.shape == shape
        np.testing.assert_allclose(out.reshape(96, 96), plane, atol=1e-6)
    line = method(noisy[:1])  # one row: smoothed along it
    assert line.shape == (1, 96) and np.abs(line - noisy[:1]).max() > 0.05
    # a channel axis of length 1, or beside a unit axis: as before (review: NLM failed)
    for shape, axis in (((96, 96, 1), -1), ((1, 96, 3), -1), ((96, 96, 1), 2)):
        x = np.repeat(noisy[: shape[0], :, None], shape[2], axis=2).reshape(shape)
        assert method(x, channel_axis=axis).shape == shape
