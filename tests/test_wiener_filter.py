"""The float32 real-FFT Wiener filter against scikit-image's float64 one."""

import numpy as np
import pytest
from skimage import restoration

import napari_deconvnet as dn
from napari_deconvnet.core.psf import blur
from napari_deconvnet.core.wiener_filter import wiener_context


def _skimage_padded(image, psf, balance):
    odd = np.pad(psf / psf.sum(), [(0, 1 - s % 2) for s in psf.shape])
    context = wiener_context(odd.shape, balance)  # 3 PSF sizes, more for a large balance
    padded = np.pad(image.astype(np.float64), [(c, c) for c in context], mode="reflect")
    ref = restoration.wiener(padded, odd, balance, clip=False)
    return ref[tuple(slice(c, c + n) for c, n in zip(context, image.shape, strict=True))]


@pytest.mark.parametrize("balance", [1e-3, 0.05])
def test_3d_anisotropic_psf_matches_skimage(balance):
    rng = np.random.default_rng(3)
    volume = rng.random((12, 20, 24)).astype(np.float32)
    psf = dn.make_psf("gaussian", shape=(7, 5, 5), sigma=(1.5, 0.8, 0.8))
    blurred = blur(volume, psf) + rng.normal(0, 0.01, volume.shape).astype(np.float32)
    out = dn.wiener(blurred, psf, balance)
    ref = _skimage_padded(blurred, psf, balance)
    assert out.dtype == np.float32 and out.shape == volume.shape
    assert np.abs(out - ref).max() <= 1e-5 * np.ptp(ref)


def test_stack_of_planes_shares_one_filter_and_equals_each_plane():
    rng = np.random.default_rng(4)
    stack = rng.random((3, 32, 36)).astype(np.float32)
    psf = rng.random((5, 4)) + 0.1
    out = dn.wiener(stack, psf, 0.02)
    for plane, result in zip(stack, out, strict=True):
        np.testing.assert_allclose(result, _skimage_padded(plane, psf, 0.02), atol=1e-5)
        np.testing.assert_array_equal(result, dn.wiener(plane, psf, 0.02))


def test_fast_fft_lengths_only_for_psfs_without_negative_lobes():
    """Gaussian and Airy PSFs get an FFT domain of fast lengths; a box or widefield PSF not."""
    from napari_deconvnet.core.classical import _non_negative_otf

    def unit(k):
        k = np.asarray(k, np.float64)
        return k / k.sum()

    assert _non_negative_otf(unit(dn.make_psf("gaussian", sigma=(2.0, 1.0, 1.0))))
    airy = dn.make_psf("airy", wavelength=520, na=1.4, pixel_size=65, refractive_index=1.518)
    assert _non_negative_otf(unit(airy))
    widefield = dn.make_psf("widefield", na=1.2, refractive_index=1.33, pixel_size=100, z_step=300)
    assert not _non_negative_otf(unit(widefield))
    assert not _non_negative_otf(unit(np.ones((5, 5))))
    assert not _non_negative_otf(unit(np.random.default_rng(0).random((5, 4)) + 0.1))
    # the extended domain (an awkward 2 x 167-sample axis made 336) changes nothing that counts
    rng = np.random.default_rng(5)
    psf = dn.make_psf("gaussian", shape=(9, 9), sigma=1.5)
    clean = rng.random((60, 280)).astype(np.float32)  # padded: 114 x 334 (2 x 167) samples
    image = blur(clean, psf) + rng.normal(0, 0.01, clean.shape).astype(np.float32)
    out = dn.wiener(image, psf, 0.01)
    ref = _skimage_padded(image, psf, 0.01)
    assert np.abs(out - ref).max() <= 1e-5 * np.ptp(ref)


def test_the_automatic_balance_of_integer_data_is_not_snapped_to_zero_noise():
    """A nearly noise-free uint8 image: the plain median of its diagonal Haar
    coefficients (multiples of 0.5) read no noise, so Wiener's balance fell to
    its 1e-4 floor; the grouped median measures the rounding's noise. The
    deconvolution models' channel keeps the plain one, as they were trained."""
    from napari_deconvnet.core.classical import estimate_balance
    from napari_deconvnet.core.noise_estimation import diagonal_mad_sigma

    yy, xx = np.mgrid[:128, :128]
    scene = 100 + 20 * (((yy // 32) + (xx // 32)) % 2)  # flat patches, an edge between
    noisy = scene + np.random.default_rng(0).normal(0, 0.3, scene.shape)
    image = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    true = float((image - scene).std())
    assert diagonal_mad_sigma(image, grouped=False) == 0.0  # the snapped estimate
    assert diagonal_mad_sigma(image) == pytest.approx(true, rel=0.15)
    assert estimate_balance(image.astype(np.float32), grouped=False) == 1e-4  # the floor
    assert estimate_balance(image.astype(np.float32)) > 1e-4
