"""Correlated noise through a blind 2D denoiser: screened, pixel-shuffled where it pays."""

import numpy as np
import pytest
from scipy import ndimage

import napari_deconvnet as dn
from napari_deconvnet.core import decorrelate as dc


def _scene(side=128):
    from skimage import data

    image = data.camera().astype(np.float64) / 255
    top = (image.shape[0] - side) // 2
    return image[top : top + side, top : top + side]


def _smoothed_noise(shape, sigma, width, seed):
    white = np.random.default_rng(seed).normal(0, 1, shape)
    smooth = ndimage.gaussian_filter(white, width)
    return smooth * (sigma / smooth.std())


def _psnr(clean, out):
    return dn.psnr(clean, np.clip(out, 0, 1), data_range=1)


def test_shuffled_and_assemble_are_inverse_for_any_size():
    rng = np.random.default_rng(0)
    for shape in ((8, 8), (9, 7), (33, 64), (5, 2)):
        image = rng.random(shape).astype(np.float32)
        parts = dc.shuffled(image)
        assert len(parts) == 4 and parts[0].shape == ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
        np.testing.assert_array_equal(dc.assemble(parts, shape), image)


def test_the_screen_tells_white_from_correlated_noise():
    clean = _scene(192)
    for seed in range(4):
        for sigma in (10 / 255, 25 / 255):
            white = clean + np.random.default_rng(seed).normal(0, sigma, clean.shape)
            assert dc.screen_ratio(white) < 1.5, (seed, sigma)
            correlated = clean + _smoothed_noise(clean.shape, sigma, 0.7, seed)
            assert dc.screen_ratio(correlated) > dc.SCREEN_RATIO, (seed, sigma)
    assert dc.screen_ratio(np.zeros((64, 64))) == 0.0  # nothing to tell
    assert dc.screen_ratio(np.random.default_rng(0).random((16, 16))) == 0.0  # too small


def test_correlated_noise_is_removed_and_white_noise_restores_as_before():
    clean = _scene(128)
    correlated = (clean + _smoothed_noise(clean.shape, 25 / 255, 0.7, 1)).astype(np.float32)
    before = dn.restore(correlated)  # off by default
    np.testing.assert_array_equal(before, dn.restore(correlated, decorrelate=False))
    now = dn.restore(correlated, decorrelate=True)
    assert _psnr(clean, before) - _psnr(clean, correlated) < 0.5  # taken for structure
    assert _psnr(clean, now) - _psnr(clean, before) > 4, (_psnr(clean, before), _psnr(clean, now))
    # what the pixel-shuffled restore is: the four sub-images restored alone, put back
    parts = [dn.restore(p, decorrelate=False) for p in dc.shuffled(correlated)]
    np.testing.assert_array_equal(now, dc.assemble(parts, correlated.shape))
    white = (clean + np.random.default_rng(2).normal(0, 25 / 255, clean.shape)).astype(np.float32)
    np.testing.assert_array_equal(dn.restore(white, decorrelate=True), dn.restore(white))


def test_each_image_of_a_stack_is_decided_alone():
    clean = _scene(96)
    correlated = clean + _smoothed_noise(clean.shape, 25 / 255, 0.7, 3)
    white = clean + np.random.default_rng(4).normal(0, 25 / 255, clean.shape)
    stack = np.stack([white, correlated, white]).astype(np.float32)
    out = dn.restore(stack, decorrelate=True)
    for k in range(3):  # as alone (up to the batching's rounding)
        np.testing.assert_allclose(out[k], dn.restore(stack[k], decorrelate=True), atol=1e-5)
    assert not np.array_equal(out[1], dn.restore(stack[1]))


def test_integer_images_and_the_api_paths():
    clean = _scene(128)
    noisy = clean + _smoothed_noise(clean.shape, 20 / 255, 0.7, 5)
    as_uint8 = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    now = dn.restore(as_uint8, decorrelate=True) / 255
    before = dn.restore(as_uint8) / 255
    assert _psnr(clean, now) - _psnr(clean, before) > 3
    # the generator form and run_method agree with restore
    from napari_deconvnet.core.operations import run_method
    from napari_deconvnet.core.restoration import restore_iter

    gen = restore_iter(as_uint8, "default", decorrelate=True)
    steps = []
    try:
        while True:
            steps.append(next(gen))
    except StopIteration as done:
        np.testing.assert_array_equal(done.value, dn.restore(as_uint8, decorrelate=True))
    assert steps[-1][0] == steps[-1][1] and all(0 <= d <= t for d, t in steps)
    fractions = [d / t for d, t in steps]  # the plain restore is the first half
    assert fractions == sorted(fractions) and fractions[0] <= 0.5 < fractions[1]
    np.testing.assert_array_equal(run_method(as_uint8, "denoise-2d"), dn.restore(as_uint8))
    on = run_method(as_uint8, "denoise-2d", decorrelate=True)
    np.testing.assert_array_equal(on, dn.restore(as_uint8, decorrelate=True))


def test_what_does_not_decorrelate():
    clean = _scene(64)
    noisy = (clean + _smoothed_noise(clean.shape, 25 / 255, 0.7, 6)).astype(np.float32)
    net = dn.load_model("default")
    assert dc.decorrelation_applies(net, "YX", True)
    assert not dc.decorrelation_applies(net, "YX", None)  # off unless asked
    assert not dc.decorrelation_applies(net, "YX", False)
    assert dc.decorrelation_applies(dn.load_model("denoise-3d"), "ZYX", True)
    with pytest.raises(ValueError, match="one-channel denoiser without conditioning"):
        dc.decorrelation_applies(dn.load_model("deconv-2d"), "YX", True)
    with pytest.raises(ValueError, match="one-channel denoiser without conditioning"):
        dc.decorrelation_applies(dn.load_model("deconv-3d"), "ZYX", True)
    with pytest.raises(TypeError, match="decorrelate"):
        dn.restore(noisy, decorrelate="yes")
    # fixed statistics: the sub-images are restored with them too
    fixed = {"offset": 0.0, "scale": 1.0}
    parts = [dn.restore(p, normalization=fixed) for p in dc.shuffled(noisy)]
    out = dn.restore(noisy, normalization=fixed, decorrelate=True)
    plain = dn.restore(noisy, normalization=fixed)
    assert np.array_equal(out, dc.assemble(parts, noisy.shape)) or np.array_equal(out, plain)
    # dask input and a streamed restore go without it, and say so
    da = pytest.importorskip("dask.array")
    with pytest.warns(UserWarning, match="not applied to a dask image"):
        lazy = dn.restore(da.from_array(noisy, chunks=64), decorrelate=True).compute()
    np.testing.assert_allclose(lazy, dn.restore(noisy), atol=1e-5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # not asked: nothing said
        dn.restore(da.from_array(noisy, chunks=64), decorrelate=False).compute()


def test_a_streamed_restore_asked_to_decorrelate_says_it_does_not(tmp_path):
    clean = _scene(64)
    noisy = (clean + _smoothed_noise(clean.shape, 25 / 255, 0.7, 6)).astype(np.float32)
    with pytest.warns(UserWarning, match="streamed restore"):
        dn.restore_to_zarr(noisy, tmp_path / "o.ome.zarr", "default", decorrelate=True)


def test_a_nearly_clean_textured_photo_is_why_it_is_not_the_default():
    """The coins photo with white noise of half a grey level passes both stages:
    asked for, the pixel-shuffled restore takes its texture (measured 28.4 dB
    from 54.2); by default the restore leaves the photo nearly as it is."""
    from skimage import data

    photo = data.coins()[100:292, 100:292].astype(np.float64)
    clean = ((photo - photo.min()) / np.ptp(photo)).astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 0.5 / 255, clean.shape)
    noisy = np.clip(clean + noise, 0, 1).astype(np.float32)
    before = _psnr(clean, noisy)
    assert _psnr(clean, dn.restore(noisy)) > before - 5.5
    assert _psnr(clean, dn.restore(noisy, decorrelate=True)) < before - 15


def test_colour_images_and_channels():
    """RGB: one image, screened by its samples' mean, its sub-images restored in colour;
    a C axis: each channel a gray image of its own."""
    from skimage import data

    clean = data.astronaut()[100:228, 100:228].astype(np.float64) / 255
    rng = np.random.default_rng(5)
    smooth = ndimage.gaussian_filter(rng.normal(0, 1, clean.shape), (0.7, 0.7, 0))
    correlated = (clean + smooth * (25 / 255 / smooth.std())).astype(np.float32)
    before, now = dn.restore(correlated), dn.restore(correlated, decorrelate=True)
    assert _psnr(clean, now) > _psnr(clean, before) + 4, (_psnr(clean, before), _psnr(clean, now))
    parts = [dn.restore(p, decorrelate=False) for p in dc.shuffled(correlated)]
    np.testing.assert_array_equal(now, dc.assemble(parts, correlated.shape))
    white = (clean + rng.normal(0, 25 / 255, clean.shape)).astype(np.float32)
    np.testing.assert_array_equal(dn.restore(white, decorrelate=True), dn.restore(white))
    # channels first (C): each channel decided and restored as the gray image it is
    channels = np.stack([white[..., 0], correlated[..., 1]])
    out = dn.restore(channels, axes="CYX", decorrelate=True)
    for c in range(2):
        np.testing.assert_allclose(
            out[c], dn.restore(channels[c], decorrelate=True), atol=1e-5 * np.ptp(out[c])
        )
    assert not np.array_equal(out[1], dn.restore(channels, axes="CYX")[1])


def test_volumes_through_a_3d_model():
    """A 3D model's volume is screened by its planes' mean and restored as the four
    sub-volumes of every second pixel along Y and X."""
    from napari_deconvnet.core.phantoms import phantom

    clean = phantom((12, 64, 64), ["nuclei", "filaments"], np.random.default_rng(4))
    clean = clean / clean.max()
    rng = np.random.default_rng(7)
    noise = rng.poisson(clean * 50) / 50 - clean
    smooth = ndimage.gaussian_filter(noise, (0, 0.7, 0.7))
    correlated = (clean + smooth * (noise.std() / smooth.std())).astype(np.float32)
    before = dn.restore(correlated, "denoise-3d")
    now = dn.restore(correlated, "denoise-3d", decorrelate=True)
    # measured: 33.06 dB plain, 36.48 decorrelated
    gain = _psnr(clean, now) - _psnr(clean, before)
    assert gain > 2.5, (_psnr(clean, before), _psnr(clean, now))
    parts = [dn.restore(p, "denoise-3d") for p in dc.shuffled(correlated, start=1)]
    np.testing.assert_array_equal(now, dc.assemble(parts, correlated.shape, start=1))
    white = (clean + noise).astype(np.float32)
    np.testing.assert_array_equal(
        dn.restore(white, "denoise-3d", decorrelate=True), dn.restore(white, "denoise-3d")
    )
    # a deskew's interpolation along one axis: under the photos' screen (1.8), over the
    # volumes' (1.3), chosen on validation volumes
    from napari_deconvnet.io.samples import phantom_volume_data

    sample = phantom_volume_data((16, 64, 64), 9305)[1].astype(np.float64)
    sample /= sample.max()
    counts = np.random.default_rng(5).poisson(sample * 50) / 50 - sample
    along_x = ndimage.gaussian_filter(counts, (0.5, 0, 0.8))
    deskewed = (sample + along_x * (counts.std() / along_x.std())).astype(np.float32)
    screen = np.mean([dc.screen_ratio(plane) for plane in deskewed])
    assert dc.VOLUME_SCREEN_RATIO <= screen < dc.SCREEN_RATIO, screen
    plain = _psnr(sample, dn.restore(deskewed, "denoise-3d"))
    fixed = _psnr(sample, dn.restore(deskewed, "denoise-3d", decorrelate=True))
    assert fixed > plain + 5, (plain, fixed)  # measured 27.02 -> 34.51 dB
    # the Restore widget's box and the CLI's --param, as for denoise-2d
    specs = dn.list_methods()
    for name in ("denoise-2d", "denoise-3d"):
        assert "decorrelate" in [param.name for param in specs[name].params], name
    assert "decorrelate" not in [param.name for param in specs["deconv-3d"].params]
