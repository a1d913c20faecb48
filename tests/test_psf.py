"""PSFs: normalisation, symmetry, physics of the Airy/widefield model, blurring and errors."""

import doctest
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage, special

import napari_deconvnet as dn
from napari_deconvnet.core import psf as psf_module
from napari_deconvnet.core.noise import synthesize
from napari_deconvnet.core.psf import as_psf, blur, make_psf

WIDEFIELD = {"wavelength": 500.0, "na": 1.0, "pixel_size": 50.0, "refractive_index": 1.33}


def test_docstring_examples():
    result = doctest.testmod(psf_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
    assert dn.make_psf is make_psf


@pytest.mark.parametrize(
    ("kind", "shape", "params"),
    [
        ("gaussian", None, {"sigma": 2.0}),
        ("gaussian", (9, 12), {"sigma": (1.0, 2.5)}),
        ("gaussian", (5, 15, 15), {"sigma": 1.5}),
        ("gaussian", None, {"sigma": (0.0, 1.0)}),
        ("airy", None, {}),
        ("airy", (20, 21), WIDEFIELD),
        ("widefield", None, {}),
        ("widefield", (11, 17, 17), WIDEFIELD),
    ],
)
def test_psfs_are_normalised_non_negative_and_symmetric(kind, shape, params):
    psf = make_psf(kind, shape, **params)
    assert psf.dtype == np.float32
    if shape is not None:
        assert psf.shape == shape
    assert psf.sum() == pytest.approx(1.0, abs=1e-5)
    assert psf.min() >= 0
    for axis in range(psf.ndim):
        np.testing.assert_allclose(psf, np.flip(psf, axis), atol=1e-7)
    if all(n % 2 for n in psf.shape):  # odd sizes: the maximum is the centre pixel
        assert psf[tuple(n // 2 for n in psf.shape)] == psf.max()


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.5, 4.0])
def test_gaussian_has_the_requested_variance(sigma):
    psf = make_psf("gaussian", sigma=sigma).astype(np.float64)
    x = np.arange(psf.shape[1]) - psf.shape[1] // 2
    variance = (psf.sum(axis=0) * x**2).sum()
    assert variance == pytest.approx(sigma**2 + 1 / 12, rel=1e-3)  # + pixel integration
    assert psf.shape == (2 * int(np.ceil(4 * sigma)) + 1,) * 2


def test_gaussian_per_axis_and_zero_sigma():
    psf = make_psf("gaussian", sigma=(0, 2.0))
    assert psf.shape == (1, 17)
    psf = make_psf("gaussian", shape=(5, 9), sigma=(0, 2.0))
    np.testing.assert_array_equal(psf[[0, 1, 3, 4]], 0)
    assert make_psf("gaussian", sigma=(1, 1, 1)).ndim == 3
    assert make_psf("gaussian", ndim=3, sigma=1).shape == (9, 9, 9)


def test_airy_matches_the_bessel_formula_and_first_zero():
    params = {"wavelength": 500.0, "na": 1.0, "pixel_size": 20.0, "oversample": 1}
    psf = make_psf("airy", shape=(1, 101), **params)[0].astype(np.float64)
    r = (np.arange(101) - 50) * 20.0
    v = 2 * np.pi * 1.0 * r / 500.0
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(v == 0, 1.0, (2 * special.j1(v) / v) ** 2)
    np.testing.assert_allclose(psf / psf.max(), expected, atol=1e-6)
    first_zero = 0.61 * 500.0 / 1.0  # 305 nm: about 15 pixels of 20 nm
    assert np.argmin(psf[50 : 60 + 10]) == pytest.approx(first_zero / 20, abs=1)


def test_widefield_focal_plane_is_airy_and_spreads_axially():
    psf = make_psf("widefield", shape=(21, 31, 31), **WIDEFIELD).astype(np.float64)
    focus = psf[10] / psf[10].sum()
    airy = make_psf("airy", shape=(31, 31), **WIDEFIELD)
    np.testing.assert_allclose(focus, airy, atol=1e-6)
    peaks = psf.max(axis=(1, 2))
    assert peaks.argmax() == 10 and peaks[0] < 0.1 * peaks[10]
    # paraxial theory: the axial intensity is sinc^2(u / 4pi) with u = k NA^2 z / n
    z = (np.arange(21) - 10) * 250.0
    u = 2 * np.pi / 500.0 * 1.0**2 * z / 1.33
    expected = np.sinc(u / (4 * np.pi)) ** 2
    np.testing.assert_allclose(psf[:, 15, 15] / psf[10, 15, 15], expected, atol=0.02)


def test_airy_with_a_3d_shape_is_widefield():
    a = make_psf("airy", shape=(9, 15, 15))
    b = make_psf("widefield", shape=(9, 15, 15))
    np.testing.assert_array_equal(a, b)
    assert make_psf("widefield", ndim=2).ndim == 2


def test_default_widefield_shape_covers_the_pattern():
    psf = make_psf("widefield", **WIDEFIELD)
    assert psf.ndim == 3 and all(n % 2 for n in psf.shape)
    # the border holds a small fraction of the peak
    assert psf[0].max() < 0.1 * psf.max() and psf[:, 0].max() < 0.05 * psf.max()


# ---------------------------------------------------------------- as_psf


def test_as_psf_accepts_arrays_names_and_dicts():
    user = np.arange(9.0).reshape(3, 3) + 1
    np.testing.assert_allclose(as_psf(user), user / user.sum())
    np.testing.assert_allclose(as_psf(torch.ones(2, 2)), np.full((2, 2), 0.25))
    np.testing.assert_allclose(as_psf("gaussian"), make_psf("gaussian"), atol=1e-7)
    spec = {"kind": "gaussian", "sigma": 2.0, "shape": (7, 9)}
    np.testing.assert_allclose(as_psf(spec), make_psf("gaussian", (7, 9), sigma=2.0), atol=1e-7)


def test_small_negative_values_of_a_measured_psf_are_clipped_with_a_warning():
    # a Gaussian bead "measured" with background noise, the background subtracted
    rng = np.random.default_rng(0)
    clean = make_psf("gaussian", (15, 15), sigma=2.0).astype(np.float64)
    measured = clean + rng.normal(0, 2e-4, clean.shape)
    assert (measured < 0).sum() > 20
    with pytest.warns(UserWarning, match=r"negative values \(\d+\.\d+% of its positive sum"):
        kernel = as_psf(measured)
    assert kernel.min() == 0.0 and kernel.sum() == pytest.approx(1.0)
    expected = np.clip(measured, 0, None)
    np.testing.assert_allclose(kernel, expected / expected.sum())
    # a non-negative PSF passes without a warning, unchanged up to the scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(as_psf(clean * 3), clean / clean.sum())


def test_restore_and_richardson_lucy_refuse_a_sharpening_kernel_as_psf():
    laplacian = np.array([[0, -1, 0], [-1, 6, -1], [0, -1, 0]], float)
    image = np.random.default_rng(0).random((32, 32))
    with pytest.raises(ValueError, match="non-negative blur kernel"):
        dn.richardson_lucy(image, laplacian)
    with pytest.raises(ValueError, match="non-negative blur kernel"):
        dn.restore(image, "deconv-2d", psf=laplacian)


@pytest.mark.parametrize(
    ("psf", "error", "match"),
    [
        (np.ones((3, 3, 3)), ValueError, "dimensions"),
        (np.zeros((3, 3)), ValueError, "sums to zero"),
        (np.array([[1.0, -1.0]]), ValueError, "negative values weighing 100%"),
        (-np.ones((3, 3)), ValueError, "no positive values"),
        (np.array([[0, -1, 0], [-1, 6, -1], [0, -1, 0]]), ValueError, "not a PSF|non-negative"),
        (np.array([[1.0, np.nan]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf]]), ValueError, "infinite"),
        (np.ones((3, 3), complex), ValueError, "real"),
        (np.zeros((0, 3)), ValueError, "non-empty"),
        ("bessel", ValueError, "unknown PSF"),
        ({"sigma": 2}, ValueError, "kind"),
        (3.0, TypeError, "psf must be"),
    ],
)
def test_bad_psfs_raise(psf, error, match):
    with pytest.raises(error, match=match):
        as_psf(psf, ndim=2)


@pytest.mark.parametrize("scale", [1e-15, 1e-300, 1e300])
def test_a_psf_in_any_units_is_the_same_psf(scale):
    """Session 59 (odd PSF layers in the Restore and Noise widgets): a positive PSF of
    values under 1e-12 (physical units, or a float64 array scaled down) was refused as
    having "no positive values"; it is normalised like any other."""
    kernel = make_psf("gaussian", (7, 7), sigma=1.5).astype(np.float64)
    np.testing.assert_allclose(as_psf(kernel * scale, ndim=2), as_psf(kernel, ndim=2), rtol=1e-12)
    image = np.random.default_rng(4).random((24, 28)).astype(np.float32)
    np.testing.assert_array_equal(
        dn.richardson_lucy(image, kernel * scale, 5), dn.richardson_lucy(image, kernel, 5)
    )


@pytest.mark.parametrize(
    ("kind", "shape", "params", "error", "match"),
    [
        ("gaussian", None, {"sigma": -1}, ValueError, "sigma"),
        ("gaussian", None, {"sigma": float("nan")}, ValueError, "sigma"),
        ("gaussian", None, {"sigma": "wide"}, TypeError, "sigma"),
        ("gaussian", (5, 5), {"sigma": (1, 2, 3)}, ValueError, "axes"),
        ("gaussian", (5, 0), {}, ValueError, "shape"),
        ("gaussian", (5, 2.5), {}, ValueError, "shape"),
        ("gaussian", None, {"width": 2}, ValueError, "parameters are"),
        ("airy", None, {"na": 0}, ValueError, "na"),
        ("airy", None, {"na": 1.4}, ValueError, "refractive_index"),
        ("airy", None, {"wavelength": -500}, ValueError, "wavelength"),
        ("airy", None, {"pixel_size": float("inf")}, ValueError, "pixel_size"),
        ("airy", None, {"oversample": 0}, ValueError, "oversample"),
        ("widefield", (5, 5, 5, 5), {}, ValueError, "2D or 3D"),
        ("widefield", (5, 5), {"ndim": 3}, ValueError, "ndim"),
        ("confocal", None, {}, ValueError, "accepted names"),
    ],
)
def test_bad_make_psf_arguments_raise(kind, shape, params, error, match):
    with pytest.raises(error, match=match):
        make_psf(kind, shape, **params)


# ---------------------------------------------------------------- blur


@pytest.mark.parametrize("shape", [(3, 5), (8, 9), (10, 13), (4, 6, 8)])
def test_blur_matches_scipy_for_small_and_large_kernels(shape):
    # up to 64 taps blur convolves directly, above through FFTs: the same result,
    # even sizes and kernels larger than the image included
    rng = np.random.default_rng(1)
    image = rng.random((5, 9, 12))
    kernel = rng.random(shape)
    full = kernel.reshape((1,) * (image.ndim - kernel.ndim) + kernel.shape) / kernel.sum()
    expected = ndimage.convolve(image, full, mode="reflect")
    np.testing.assert_allclose(blur(image, kernel), expected, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 6), (7, 3), (9, 13, 13), (4, 6, 8), (17, 5, 5)])
def test_separable_kernels_blur_axis_by_axis_as_scipy(shape, monkeypatch):
    """A separable PSF blurs with one 1D pass per axis (even sizes and large ones included)."""
    from napari_deconvnet.core import deconv_operators

    rng = np.random.default_rng(2)
    image = rng.random((3, 10, 18, 20))
    kernel = np.ones(())
    for n in shape:
        kernel = np.multiply.outer(kernel, rng.random(n) + 0.1)
    full = kernel.reshape((1,) * (image.ndim - kernel.ndim) + kernel.shape) / kernel.sum()
    expected = ndimage.convolve(image, full, mode="reflect")
    seen = []
    original = deconv_operators.separable_taps
    monkeypatch.setattr(
        deconv_operators, "separable_taps", lambda k, *a: seen.append(1) or original(k, *a)
    )
    np.testing.assert_allclose(blur(image, kernel), expected, atol=1e-6)
    np.testing.assert_allclose(blur(torch.from_numpy(image), kernel).numpy(), expected, atol=1e-6)
    assert seen  # the separable path ran


@pytest.mark.parametrize(
    "psf", ["gaussian", {"kind": "airy", "na": 0.5}, {"kind": "gaussian", "sigma": (1, 2, 2)}]
)
def test_blur_matches_scipy_for_named_psfs(psf):
    rng = np.random.default_rng(0)
    image = rng.random((6, 30, 32))
    kernel = as_psf(psf)
    full = kernel.reshape((1,) * (image.ndim - kernel.ndim) + kernel.shape)
    expected = ndimage.convolve(image, full, mode="reflect")
    np.testing.assert_allclose(blur(image, psf), expected, atol=1e-6)
    np.testing.assert_allclose(blur(torch.from_numpy(image), psf).numpy(), expected, atol=1e-5)


def test_blur_preserves_the_mean_and_flat_images():
    rng = np.random.default_rng(0)
    image = rng.random((64, 64))
    out = blur(image, make_psf("airy"))
    np.testing.assert_allclose(blur(np.full((20, 20), 3.0), "airy"), 3.0, rtol=1e-6)
    assert out.mean() == pytest.approx(image.mean(), rel=0.01)
    assert out.std() < image.std()


def test_blur_is_self_adjoint_for_symmetric_psfs_on_periodic_images():
    # with a symmetric PSF and circular boundaries, <A x, y> = <x, A y>
    rng = np.random.default_rng(0)
    psf = as_psf({"kind": "gaussian", "sigma": (1.0, 2.0), "shape": (7, 9)})
    x, y = rng.random((32, 32)), rng.random((32, 32))

    def forward(a):
        return ndimage.convolve(a, psf, mode="wrap")

    assert np.vdot(forward(x), y) == pytest.approx(np.vdot(x, forward(y)), rel=1e-12)
    # and blur() agrees with that operator away from the borders
    inner = (slice(8, -8),) * 2
    np.testing.assert_allclose(blur(x, psf)[inner], forward(x)[inner], atol=1e-6)


def test_synthesize_accepts_psf_names_and_dicts():
    rng = np.random.default_rng(0)
    clean = rng.random((32, 32))
    spec = {"kind": "gaussian", "sigma": 1.5}
    a = synthesize(clean, "gaussian", sigma=0.01, psf=spec, seed=0)
    b = synthesize(clean, "gaussian", sigma=0.01, psf=make_psf("gaussian", sigma=1.5), seed=0)
    np.testing.assert_allclose(a, b, atol=1e-6)
    c = synthesize(torch.from_numpy(clean), None, psf="airy")
    np.testing.assert_allclose(c.numpy(), blur(clean, "airy"), atol=1e-5)
    with pytest.raises(ValueError, match="dimensions"):
        synthesize(clean, psf={"kind": "widefield"})


def test_generated_psfs_are_cropped_to_a_thin_stack():
    """A named or dict PSF has the package's size (27 planes for the 3D widefield
    PSF): on a stack with fewer planes it is cropped to fit, with a warning when the
    crop leaves out light; arrays and dicts with a shape stay refused."""
    from napari_deconvnet.core.conditions import ConditionsWarning
    from napari_deconvnet.core.phantoms import phantom
    from napari_deconvnet.core.psf import crop_to, fit_psf

    kernel = dn.make_psf("gaussian", sigma=(1.5, 1.0, 1.0))
    assert kernel.shape == (13, 9, 9)
    cropped = crop_to(kernel, (6, 64, 64))
    assert cropped.shape == (5, 9, 9) and abs(cropped.sum() - 1) < 1e-12
    # the centre plane is the kernel's, rescaled by the light kept
    np.testing.assert_allclose(cropped[2] * kernel[4:9].sum(), kernel[6], rtol=1e-6)
    spec = {"kind": "gaussian", "sigma": (1.5, 1.0, 1.0)}
    with pytest.warns(ConditionsWarning, match=r"cropped to \(5, 9, 9\).*leaves out 10%"):
        assert fit_psf(spec, kernel, (6, 64, 64)).shape == (5, 9, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 10 planes keep all but 0.3% of the light: no warning
        assert fit_psf(spec, kernel, (10, 64, 64)).shape == (9, 9, 9)
        assert fit_psf(spec, kernel, (13, 64, 64)) is kernel  # fits: untouched
    assert fit_psf(kernel, kernel, (6, 64, 64)) is kernel  # an array: the user's
    assert fit_psf({**spec, "shape": (13, 9, 9)}, kernel, (6, 64, 64)) is kernel

    clean = phantom((12, 48, 48), rng=3, mix=2)
    psf = {"kind": "widefield", "na": 1.0}
    generated = dn.make_psf(**psf, ndim=3)
    assert generated.shape[0] > 12
    fitted = crop_to(generated, clean.shape)
    blurred = dn.synthesize(clean, "poisson", psf=fitted, peak=300, seed=2)
    for run in (
        lambda p: dn.restore(blurred, "deconv-3d", psf=p, precision="float32"),
        lambda p: dn.richardson_lucy(blurred, p, 10),
        lambda p: dn.run_method(blurred, "wiener", psf=p, axes="ZYX"),
    ):
        with pytest.warns(ConditionsWarning, match="widefield"):
            out = run({**psf, "ndim": 3})
        np.testing.assert_allclose(out, run(fitted), atol=1e-5)  # as with the crop given
    assert dn.psnr(clean, out, data_range=1) > dn.psnr(clean, blurred, data_range=1)
    with pytest.raises(ValueError, match="bigger than the image"):
        dn.restore(blurred, "deconv-3d", psf=generated)  # the array: refused as before


@pytest.mark.parametrize(
    "kind, kwargs, message",
    [
        ("widefield", {"shape": (5000, 5000, 5000)}, "pass the PSF's own shape"),
        ("gaussian", {"shape": (100000, 100000), "sigma": 1.0}, "pass the PSF's own shape"),
        ("gaussian", {"sigma": 1e5}, "with sigma=100000.0 the PSF spans"),
        ("widefield", {"na": 0.01}, "check the parameters' units"),
    ],
)
def test_a_psf_too_big_for_memory_is_refused_before_it_is_made(kind, kwargs, message):
    # a 5000-cube widefield PSF (an image's shape typed for the PSF's) was killed by the
    # kernel's out-of-memory killer; now refused at once
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:  # the address space in use now, in pages
        used = int(f.read().split()[0]) * resource.getpagesize()
    limit = used + (4 << 30) if hard == resource.RLIM_INFINITY else min(used + (4 << 30), hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))  # a MemoryError, not a kill
    try:
        with pytest.raises(ValueError, match=message):
            dn.make_psf(kind, **kwargs)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_a_psf_array_beside_an_image_in_another_axis_order_is_warned_about():
    """Session 70: a PSF array is read in Z, Y, X order whatever the image's `axes`; an
    anisotropic one stored like an "XY" image was read along the wrong axes silently.
    Restore and run_method warn (saying the transposition); alike PSFs and names do not."""
    clean = np.zeros((32, 40), np.float32)
    clean[10:22:4, 10:30:5] = 1
    psf = dn.make_psf("gaussian", shape=(9, 15), sigma=(1.0, 3.0))
    img = dn.synthesize(clean, "gaussian", psf=psf, seed=0, sigma=0.01)
    with pytest.warns(UserWarning, match=r"read in YX order.*'XY'.*transpose\(\(1, 0\)\)"):
        dn.restore(img.T, "deconv-2d", psf=psf, axes="XY", device="cpu")
    with pytest.warns(UserWarning, match="read in YX order"):
        dn.run_method(img.T, "richardson-lucy", psf=psf, axes="XY", iterations=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dn.restore(img, "deconv-2d", psf=psf, axes="YX", device="cpu")
        dn.restore(img.T, "deconv-2d", psf="gaussian", axes="XY", device="cpu")
        round_psf = dn.make_psf("gaussian", shape=(9, 9), sigma=2.0)
        dn.run_method(img.T, "richardson-lucy", psf=round_psf, axes="XY", iterations=2)
        # (review: a plane's PSF one plane deep beside a YXZ volume is that plane's PSF)
        volume = np.stack([img] * 4, axis=-1)
        dn.restore(volume, "deconv-2d", psf=psf[None], axes="YXZ", device="cpu")
