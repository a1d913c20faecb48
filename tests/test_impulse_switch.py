"""Impulses through the blind denoisers: replaced by a switching median first."""

import dask.array as da
import numpy as np
import pytest
import zarr
from scipy import ndimage
from skimage import data

import napari_deconvnet as dn
from napari_deconvnet.core.impulse_switch import (
    detect_impulses,
    impulse_mask,
    switch_applies,
    switch_impulses,
)
from napari_deconvnet.core.phantoms import cells_2d, phantom


def _psnr(clean, image):
    return float(dn.psnr(clean, np.clip(image, 0, 1), data_range=1))


def _mixed(clean, sigma=0.03, amount=0.05):
    noisy = dn.synthesize(clean, "gaussian", sigma=sigma, seed=1)
    return np.clip(dn.synthesize(noisy, "salt-and-pepper", amount=amount, seed=2), 0, 1).astype(
        np.float32
    )


@pytest.fixture(scope="module")
def camera():
    return (data.camera()[100:292, 80:304] / 255).astype(np.float32)


def test_gaussian_noise_with_impulses_is_denoised(camera):
    noisy = _mixed(camera)
    on = dn.restore(noisy, precision="float32")
    off = dn.restore(noisy, precision="float32", impulse_switch=False)
    # measured on this crop: 17.2 dB in, 21.4 without the switch, 35.5 with it
    assert _psnr(camera, on) > _psnr(camera, off) + 10
    assert _psnr(camera, on) > _psnr(camera, ndimage.median_filter(noisy, 3)) + 3
    # before the network only the impulses changed: extreme pixels that stand out
    values = {"minimum": float(noisy.min()), "maximum": float(noisy.max())}
    mask = impulse_mask(noisy, values)
    switched = switch_impulses(noisy[None], values, 2)[0]
    np.testing.assert_array_equal(switched[~mask], noisy[~mask])
    assert 0.03 < mask.mean() < 0.06  # 5% impulses, a few at their own value's extreme
    assert (switched[mask] != noisy[mask]).mean() > 0.95  # replaced by their neighbours' median
    # the zeros of a background clipped at 0 are data, not impulses
    dark = np.clip(np.random.default_rng(0).normal(0.0, 0.05, (64, 64)), 0, 1)
    dark[0, 0] = 1.0
    assert not impulse_mask(dark, {"minimum": 0.0, "maximum": 1.0})[dark == 0].any()


def test_lazy_streamed_and_rgb_restores_agree(camera, tmp_path):
    noisy = _mixed(camera)
    eager = dn.restore(noisy, precision="float32")
    lazy = dn.restore(da.from_array(noisy, chunks=(70, 90)), precision="float32", tile=64)
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-5)
    out = dn.restore_to_zarr(
        noisy, tmp_path / "o.ome.zarr", "default", precision="float32", chunks=64
    )
    np.testing.assert_allclose(np.asarray(zarr.open(f"{out}/0", mode="r")), eager, atol=1e-5)
    assert '"impulses_replaced"' in (tmp_path / "o.ome.zarr" / ".zattrs").read_text()
    rgb = (data.astronaut()[100:228, 100:228] / 255).astype(np.float32)
    noisy_rgb = _mixed(rgb)
    on = dn.restore(noisy_rgb, precision="float32")
    off = dn.restore(noisy_rgb, precision="float32", impulse_switch=False)
    assert _psnr(rgb, on) > _psnr(rgb, off) + 10  # measured 18.1 -> 34.6 dB
    lazy_rgb = dn.restore(da.from_array(noisy_rgb, chunks=(50, 60, 3)), precision="float32")
    np.testing.assert_allclose(lazy_rgb.compute(), on, atol=1e-5)


def test_volumes_through_denoise_3d():
    clean = phantom((16, 64, 64), ["nuclei", "filaments"], np.random.default_rng(4))
    clean = (clean / clean.max()).astype(np.float32)
    noisy = _mixed(clean, sigma=0.05)
    on = dn.restore(noisy, "denoise-3d", precision="float32")
    off = dn.restore(noisy, "denoise-3d", precision="float32", impulse_switch=False)
    assert _psnr(clean, on) > _psnr(clean, off) + 6


def test_images_without_impulses_are_left_alone():
    rng = np.random.default_rng
    camera = (data.camera() / 255).astype(np.float32)
    cells = cells_2d(rng(5), 256).astype(np.float32)
    cases = [camera, np.rint(camera * 255).astype(np.uint8), cells]
    for clean in (camera, cells):
        for sigma in (2, 25, 75):  # clipped to [0, 1]: heavy noise fills whole regions with 0/1
            cases.append(
                np.clip(dn.synthesize(clean, "gaussian", sigma=sigma / 255, seed=1), 0, 1)
            )
        for peak in (1.0, 2.0, 20.0):  # the zeros of photon counts are not pepper
            cases.append(dn.synthesize(clean, "poisson", peak=peak, seed=1))
        cases.append(dn.synthesize(clean, "speckle", sigma=0.2, seed=1))
    for image in cases:
        assert detect_impulses(np.asarray(image)[None], 1, 2) is None
    noisy = np.clip(dn.synthesize(cells, "gaussian", sigma=0.05, seed=1), 0, 1).astype(np.float32)
    np.testing.assert_array_equal(
        dn.restore(noisy, precision="float32"),
        dn.restore(noisy, precision="float32", impulse_switch=False),
    )


def test_which_models_and_where_it_is_a_parameter():
    assert switch_applies(dn.load_model("denoise-2d"), None)
    assert switch_applies(dn.load_model("denoise-3d"), None)
    assert not switch_applies(dn.load_model("denoise-2d"), False)
    # deconvolution and noise-conditioned models too: their channels see the switched image
    for name in ("deconv-2d", "deconv-3d", "denoise-2d-nl"):
        assert switch_applies(dn.load_model(name), None), name
    assert not switch_applies(dn.load_model("salt-and-pepper"), None)
    with pytest.raises(ValueError, match="plain kind"):
        switch_applies(dn.load_model("salt-and-pepper"), True)
    specs = dn.list_methods()
    names = {m: [p.name for p in specs[m].params] for m in ("denoise-2d", "deconv-2d")}
    assert "impulse_switch" in names["denoise-2d"] and "light_noise_guard" in names["denoise-2d"]
    assert "impulse_switch" in names["deconv-2d"] and "light_noise_guard" not in names["deconv-2d"]
    assert "impulse_switch" not in [p.name for p in specs["salt-and-pepper"].params]


def _hot_camera_frame(clean, share, seed=4):
    """ADU of a camera at 50 photons (gain 2 ADU/e-, offset 100) with saturated hot pixels."""
    rng = np.random.default_rng(seed)
    adu = (rng.poisson(clean * 50) + rng.normal(0, 1.5, clean.shape)) * 2 + 100
    adu[rng.random(clean.shape) < share] = 4000
    return np.rint(adu).astype(np.float32)


def test_a_few_hot_pixels_are_replaced_before_the_denoiser():
    clean = cells_2d(np.random.default_rng(7), 256).astype(np.float32)
    for share in (3e-4, 1e-3):  # far below the 0.2% that estimate_noise calls salt-and-pepper
        adu = _hot_camera_frame(clean, share)
        assert dn.estimate_noise(adu)["noise"] != "salt-and-pepper"
        on = (dn.restore(adu, precision="float32") - 100) / 100
        off = (dn.restore(adu, precision="float32", impulse_switch=False) - 100) / 100
        # measured on a 256² scene: 29.3 / 24.5 dB without the switch, 38.8 with it
        assert _psnr(clean, on) > _psnr(clean, off) + 6, share
        assert _psnr(clean, on) > 36.0


def test_deconvolution_replaces_impulses_before_its_classical_channel(tmp_path):
    clean = cells_2d(np.random.default_rng(7), 160).astype(np.float32)
    psf = dn.make_psf("gaussian", sigma=2.0)
    blurred = dn.synthesize(clean, "poisson", psf=psf, peak=300.0, seed=1).astype(np.float32)
    noisy = blurred.copy()
    noisy[np.random.default_rng(2).random(noisy.shape) < 0.005] = 1.5
    on = dn.restore(noisy, "deconv-2d", psf=psf, precision="float32")
    off = dn.restore(noisy, "deconv-2d", psf=psf, precision="float32", impulse_switch=False)
    without = dn.restore(blurred, "deconv-2d", psf=psf, precision="float32")
    # measured on a 256² scene: 26.4 dB without the switch, 38.0 with it or without impulses
    assert _psnr(clean, on) > _psnr(clean, off) + 6
    assert _psnr(clean, on) > _psnr(clean, without) - 0.3
    # lazy and streamed restores replace the same pixels, with the channel's context
    lazy = dn.restore(
        da.from_array(noisy, chunks=(70, 90)), "deconv-2d", psf=psf, precision="float32"
    )
    np.testing.assert_allclose(lazy.compute(), on, atol=1e-5 * np.ptp(on))
    out = dn.restore_to_zarr(
        noisy, tmp_path / "d.ome.zarr", "deconv-2d", psf=psf, precision="float32", chunks=64
    )
    streamed = np.asarray(zarr.open(f"{out}/0", mode="r"))
    np.testing.assert_allclose(streamed, on, atol=1e-5 * np.ptp(on))


def test_clipped_heavy_noise_is_not_taken_for_hot_pixels():
    """At sigma 100/255 clipped to [0, 1] a few isolated pixels sit at 0 or 1 (0.01-0.07%),
    but the switch would replace 15-25% of the image there (measured: 7-9 dB lost)."""
    rng = np.random.default_rng
    scenes = [
        (data.camera()[:256, :256] / 255).astype(np.float32),
        cells_2d(rng(3), 256, sharp=1.0).astype(np.float32),
        np.clip(phantom((256, 256), ("beads", "filaments"), rng(2), mix=2), 0, 1),
    ]
    for clean in scenes:
        noisy = np.clip(dn.synthesize(clean, "gaussian", sigma=100 / 255, seed=1), 0, 1)
        assert detect_impulses(np.asarray(noisy)[None], 1, 2) is None
    # a float image with 0.03% isolated hot pixels is found (hot pixels above the range)
    noisy = scenes[1] + rng(5).normal(0, 0.05, scenes[1].shape).astype(np.float32)
    noisy[rng(6).random(noisy.shape) < 3e-4] = 1.5
    assert detect_impulses(noisy[None], 1, 2) is not None


def test_impulses_in_frames_other_than_the_middle_one_are_found():
    """A time-lapse whose middle frame is clean while its first and last frames hold
    salt-and-pepper: the middle frame alone decided, and those frames kept their
    impulses (24.9 dB against 35.6 restored alone; session 39)."""
    from napari_deconvnet.core.impulse_switch import PROBED_IMAGES, probed_images

    assert probed_images(()) == [()]
    assert probed_images((5,)) == [(2,), (0,), (1,), (3,), (4,)]
    many = probed_images((3, 100))
    assert many[0] == (1, 50) and len(many) <= PROBED_IMAGES + 1
    assert (0, 0) in many and (2, 99) in many
    clean = data.camera()[64:256, 64:256].astype(np.float32) / 255
    rng = np.random.default_rng(0)
    frames = []
    for t in range(5):
        x = np.clip(clean + rng.normal(0, 10 / 255, clean.shape), 0, 1).astype(np.float32)
        if t in (0, 4):
            m = rng.random(clean.shape)
            x[m < 0.01], x[m > 0.99] = 0, 1
        frames.append(x)
    stack = np.stack(frames)
    out = dn.restore(stack, "denoise-2d", axes="TYX", precision="float32")
    for t in (0, 4):
        alone = dn.restore(stack[t], "denoise-2d", precision="float32")
        assert dn.psnr(clean, out[t], data_range=1) > dn.psnr(clean, alone, data_range=1) - 0.2
        assert dn.psnr(clean, out[t], data_range=1) > 33  # measured 35.6 (24.9 before)
