"""Classical methods on noise-free images: constant planes (a blank or dark frame),
linear ramps, and one-pixel-high planes."""

import numpy as np
import pytest

import napari_deconvnet as dn

METHODS = ["tv", "nlm", "wavelet", "bm3d"]


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("method", METHODS)
def test_a_noise_free_image_comes_back_unchanged_not_nan(method):
    """scikit-image's noise estimate is NaN there (no non-zero wavelet
    coefficient): tv, wavelet and bm3d returned all-NaN images, nlm an error."""
    if method == "bm3d":
        pytest.importorskip("bm3d")
    if method == "wavelet":
        pytest.importorskip("pywt")
    constant = np.full((64, 64), 5.0, np.float32)
    ramp = np.tile(np.arange(64, dtype=np.float32), (64, 1))
    np.testing.assert_array_equal(dn.run_method(constant, method), constant)
    smooth = dn.run_method(ramp, method)  # nearly noise-free: all but unchanged
    assert np.isfinite(smooth).all()
    np.testing.assert_allclose(smooth, ramp, rtol=0, atol=1e-3 * np.ptp(ramp))
    # in a stack, a blank plane stays blank beside a noisy one
    rng = np.random.default_rng(0)
    stack = np.stack([constant, constant + rng.normal(0, 0.5, constant.shape)]).astype(np.float32)
    out = dn.run_method(stack, method)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], constant)
    assert out[1].std() < stack[1].std()


@pytest.mark.parametrize("shape", [(1, 64), (64, 1)])
def test_richardson_lucy_on_a_one_pixel_high_plane(shape):
    """The banded (separable) path swapped a one-pixel axis into a broadcast:
    a torch error. It equals the same row inside an image of identical rows."""
    x = np.random.default_rng(1).random(shape).astype(np.float32) + 0.1
    psf = dn.make_psf("gaussian", shape=tuple(9 if n > 1 else 1 for n in shape))
    out = dn.richardson_lucy(x, psf, iterations=5)
    rows = np.repeat(x.reshape(1, -1), 3, axis=0)
    reference = dn.richardson_lucy(rows, np.pad(psf.reshape(1, -1), ((1, 1), (0, 0))), 5)[1]
    np.testing.assert_allclose(out.reshape(-1), reference, rtol=0, atol=1e-5)
