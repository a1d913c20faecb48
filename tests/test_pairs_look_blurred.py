"""Telling blurred training pairs from noisy ones (the Train widget's Start from hint)."""

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage
from skimage import data

import napari_deconvnet as dn
from napari_deconvnet.core.noise_estimation import blur_correlation, pairs_look_blurred


@pytest.fixture(scope="module")
def camera():
    return data.camera()[:256, :256].astype(np.float32) / 255


def _correlated(shape, seed):
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), 1.0)
    return 0.1 * field / field.std()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_of_any_kind_is_not_a_blur(camera, seed):
    rng = np.random.default_rng(seed)
    noisy = {
        "white": camera + rng.normal(0, 0.1, camera.shape),
        "weak": camera + rng.normal(0, 0.02, camera.shape),
        "poisson": rng.poisson(camera * 20) / 20,
        "correlated": camera + _correlated(camera.shape, seed),
    }
    for name, image in noisy.items():
        assert abs(blur_correlation(image, camera)) < 0.05, name
        assert not pairs_look_blurred(image, camera), name


@pytest.mark.parametrize(
    "sigma, noise", [(0.7, 0.02), (1.0, 0.01), (1.0, 0.05), (2.0, 0.01), (2.0, 0.1)]
)
def test_a_blur_is_found_through_noise_offset_and_gain(camera, sigma, noise):
    psf = dn.make_psf("gaussian", (15, 15), sigma=sigma)
    blurred = np.asarray(dn.synthesize(camera, "gaussian", psf=psf, sigma=noise, seed=3))
    c = blur_correlation(blurred, camera)
    assert c > 0.25, c
    # camera units: an offset and a gain change nothing
    assert blur_correlation(100 + 40 * blurred, camera) == pytest.approx(c, abs=1e-6)
    assert pairs_look_blurred(100 + 40 * blurred, camera)


def test_stacks_read_their_middle_plane_crop_only(camera):
    psf = dn.make_psf("gaussian", (9, 9), sigma=1.5)
    blurred = np.asarray(dn.synthesize(camera, "gaussian", psf=psf, sigma=0.01, seed=4))
    stack = np.stack([camera + 5 * np.random.default_rng(5).random(camera.shape), blurred, camera])
    clean = np.stack([camera, camera, camera])
    # the middle plane of three (index 1) is the blurred one
    assert pairs_look_blurred(da.from_array(stack, chunks=(1, 64, 64)), clean)
    assert blur_correlation(stack, clean, max_side=64) > 0.25  # a 64x64 central crop


def test_pairs_of_other_shapes_or_values_are_refused(camera):
    with pytest.raises(ValueError, match="one shape"):
        blur_correlation(camera, camera[:100])
    bad = camera.copy()
    bad[128, 128] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        blur_correlation(bad, camera)
    assert blur_correlation(np.ones((8, 8)), np.ones((8, 8))) == 0.0  # nothing to correlate


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.float32])
def test_a_pair_equal_up_to_gain_and_offset_is_no_blur(dtype):
    # a binary mask and its scaled float copy read 0.9 (rounding follows the edges):
    # the Train widget then preselected deconv-2d and asked for a PSF
    rng = np.random.default_rng(0)
    image = (rng.random((64, 64)) * (2 if dtype is bool else 200)).astype(dtype)
    for target in (image, image.astype(np.float32) * 0.9 + 3):
        assert blur_correlation(image, target) == 0.0
        assert not pairs_look_blurred(image, target)
