"""Exactly constant areas (zero padding, masks, clipping) carry no noise.

A stitched mosaic, a registered or rotated image with zero fill, a masked
image: counted as smooth blocks of zero variance, their pixels pulled the
noise estimate toward zero and made Gaussian noise look Poisson; the
light-noise guard then took a noisy image for a nearly clean one and
returned it almost unrestored (17.05 dB for 28.99 beside 60% padding).
"""

import numpy as np
import pytest
from skimage import data

import napari_deconvnet as dn
from napari_deconvnet.core.noise_estimation import _haar, live_blocks


def _scene(n=256):
    return 0.1 + 0.9 * data.camera()[100 : 100 + n, 100 : 100 + n] / 255.0


def _padded(image, fraction, value=0.0):
    n = image.shape[0]
    pad = int(round(image.shape[1] * fraction / (1 - fraction)))
    out = np.full((n, image.shape[1] + pad), value, np.float32)
    out[:, : image.shape[1]] = image
    return out


@pytest.mark.parametrize("fraction", [0.3, 0.8])
def test_noise_is_estimated_beside_padding_as_without_it(fraction):
    rng = np.random.default_rng(0)
    scene = _scene()
    gauss = (scene + rng.normal(0, 0.05, scene.shape)).astype(np.float32)
    alone = dn.estimate_noise(gauss)
    padded = dn.estimate_noise(_padded(gauss, fraction))
    assert padded["noise"] == alone["noise"] == "gaussian"
    assert padded["sigma"] == pytest.approx(alone["sigma"], rel=0.02)
    counts = (rng.poisson(scene * 20) / 20).astype(np.float32)
    alone = dn.estimate_noise(counts)
    padded = dn.estimate_noise(_padded(counts, fraction))
    assert padded["noise"] == alone["noise"] == "poisson"
    assert padded["gain"] == pytest.approx(alone["gain"], rel=0.03)
    # padding with a value inside the image's range, and whole blank planes of a stack
    mid = dn.estimate_noise(_padded(gauss, fraction, value=0.5))
    assert mid["noise"] == "gaussian" and mid["sigma"] == pytest.approx(0.05, rel=0.05)
    stack = np.stack([gauss, np.zeros_like(gauss), gauss[::-1], np.zeros_like(gauss)])
    assert dn.estimate_noise(stack)["sigma"] == pytest.approx(0.05, rel=0.05)


def test_images_without_constant_areas_are_measured_as_before():
    rng = np.random.default_rng(1)
    # sparse photon counts: many zeros, but no 18 x 18 window of them
    faint = rng.poisson(np.full((128, 128), 0.3)).astype(np.float32)
    assert live_blocks(_haar(faint[None].astype(np.float64))) is None
    noisy = (_scene(128) + rng.normal(0, 0.02, (128, 128))).astype(np.float64)
    assert live_blocks(_haar(noisy[None])) is None
    # an 8-bit photo with clipped (saturated) areas smaller than the window keeps them
    small = np.zeros((64, 64))
    small[10:20, 10:20] = 1.0
    small += rng.normal(0, 0.01, small.shape)
    small[10:20, 10:20] = 1.0  # a 10 x 10 constant patch: too small to be dead
    assert live_blocks(_haar(small[None])) is None


def test_a_padded_image_is_restored_as_the_image_alone():
    rng = np.random.default_rng(0)
    scene = _scene()
    noisy = (rng.poisson(scene * 20) / 20).astype(np.float32)
    alone = dn.restore(noisy, "denoise-2d", precision="float32")
    padded = dn.restore(_padded(noisy, 0.6), "denoise-2d", precision="float32")[:, :256]

    def psnr(x):
        return dn.psnr(scene, x, data_range=1.0)

    # before: the light-noise guard took the padding for a clean image (17.05 dB)
    assert psnr(padded) > psnr(alone) - 0.2
    assert psnr(padded) > psnr(noisy) + 10


def test_saturated_highlights_do_not_make_a_noisy_photo_look_clean():
    # an 8-bit photo with noise of 10 grey levels and its highlights clipped at 255:
    # the clipped pixels' lost noise read the level as 5.5 and the light-noise guard
    # undid most of the denoising (30.77 dB on the unclipped pixels for 33.72; 6% clipped)
    from napari_deconvnet.core.sure import _clipped_blocks

    rng = np.random.default_rng(0)
    sat = np.clip(_scene() * 1.2, 0, 1)
    photo = np.round(np.clip(sat + rng.normal(0, 10 / 255, sat.shape), 0, 1) * 255)
    photo = photo.astype(np.uint8)
    assert (photo == 255).mean() > 0.01
    guarded = dn.restore(photo, "denoise-2d", precision="float32") / 255
    unguarded = dn.restore(photo, "denoise-2d", precision="float32", light_noise_guard=False)
    unclipped = sat < 0.95

    def psnr(x):
        return 10 * np.log10(1 / np.mean((x[unclipped] - sat[unclipped]) ** 2))

    assert psnr(guarded) > psnr(unguarded / 255) - 0.1
    assert psnr(guarded) > psnr(photo / 255) + 5
    # photon counts' zeros are noise, not clipping: two photons per pixel keep them
    counts = rng.poisson(_scene() * 2).astype(np.float64)
    assert (counts == 0).mean() > 0.1 and _clipped_blocks(counts[None]) is None


def test_deconvolution_and_impulses_beside_padding_as_alone():
    # the data's border with the padding is a step no optics made: deconv-2d sharpened
    # it and rang into the crop (23.57 dB for 28.16 alone); filled with the nearest
    # data before the network, the crop restores as alone, the padding comes back as is
    from scipy import ndimage

    rng = np.random.default_rng(0)
    scene = _scene()
    psf = dn.make_psf("gaussian", sigma=1.6, ndim=2)
    blurred = ndimage.convolve(scene, psf, mode="reflect")
    noisy = (rng.poisson(blurred * 200) / 200).astype(np.float32)
    alone = dn.restore(noisy, "deconv-2d", psf=psf)
    padded = dn.restore(_padded(noisy, 0.6), "deconv-2d", psf=psf)

    def psnr(x):
        return dn.psnr(scene, x, data_range=1.0)

    assert psnr(padded[:, :256]) > psnr(alone) - 0.1
    assert (padded[:, 256:] == 0).all()  # the padding as it came
    # salt-and-pepper beside padding of an odd width: the zeros are no pepper
    speckled = dn.synthesize(scene.astype(np.float32), "salt-and-pepper", amount=0.05, seed=0)
    odd = _padded(speckled, 0.6)[:, :-1]
    assert odd.shape[1] % 2 == 1
    restored = dn.restore(odd, "salt-and-pepper")[:, :256]
    assert psnr(restored) > psnr(dn.restore(speckled, "salt-and-pepper")) - 0.1


def test_a_small_lazy_padded_image_equals_the_eager_restore():
    import dask.array as da

    speckled = dn.synthesize(_scene(128).astype(np.float32), "salt-and-pepper", seed=1)
    image = _padded(speckled, 0.5)
    lazy = dn.restore(da.from_array(image, chunks=(64, 96)), "salt-and-pepper").compute()
    eager = dn.restore(image, "salt-and-pepper")
    assert (eager[:, 128:] == 0).all()
    np.testing.assert_allclose(lazy, eager, atol=1e-5 * float(np.ptp(eager)))


def test_a_photon_counters_zero_background_is_not_padding():
    # sparse beads on an exactly zero background (photon counting, no read noise):
    # the zeros between them are background the data takes itself, not padding
    from napari_deconvnet.core import phantoms
    from napari_deconvnet.core.constant_areas import fill_constant_areas, padding_mask
    from napari_deconvnet.core.noise_estimation import live_pixels

    rng = np.random.default_rng(1)
    clean = phantoms.phantom((192, 192), ["beads"], rng)
    counts = (rng.poisson(clean / clean.max() * 20) / 20).astype(np.float32)
    assert live_pixels(counts) is not None  # constant areas there are
    assert padding_mask(counts) is None and fill_constant_areas(counts, 2) is None


def test_a_wiener_conditioned_model_is_not_filled():
    # the Wiener channel's balance is estimated from the image: padding filled with
    # repeated values, noise-free along them, read the noise low (deconv-3d beside
    # zero padding: 33.11 dB unfilled, 14.62 filled); such models are not filled
    from napari_deconvnet.core.kinds import kind_of

    assert kind_of(dn.load_model("deconv-2d")).fills_constant_areas
    assert not kind_of(dn.load_model("deconv-3d")).fills_constant_areas
    assert kind_of(dn.load_model("salt-and-pepper")).fills_constant_areas
    assert not kind_of(dn.load_model("denoise-2d")).fills_constant_areas
    from scipy import ndimage

    from napari_deconvnet.core import phantoms

    rng = np.random.default_rng(0)
    vol = phantoms.cells_3d(np.random.default_rng(3), (24, 48, 48)) * 0.9 + 0.1
    psf = dn.make_psf("gaussian", sigma=(2.0, 1.2, 1.2), ndim=3)
    noisy = (rng.poisson(ndimage.convolve(vol, psf, mode="reflect") * 100) / 100).astype(
        np.float32
    )
    padded = np.zeros((24, 48, 112), np.float32)
    padded[..., :48] = noisy

    def psnr(x):
        return dn.psnr(vol, x, data_range=float(np.ptp(vol)))

    alone = psnr(dn.restore(noisy, "deconv-3d", psf=psf))
    assert psnr(dn.restore(padded, "deconv-3d", psf=psf)[..., :48]) > alone - 0.5
