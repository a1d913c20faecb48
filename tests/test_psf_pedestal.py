"""A measured PSF (a bead's crop) that still sits on the camera's offset."""

import warnings

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.core.conditions import ConditionsWarning
from napari_deconvnet.core.psf import as_psf, psf_pedestal, remove_pedestal


def _bead(psf, offset, peak, seed=0, read=1.5):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(offset + peak * psf / psf.max()).astype(np.float64)
    return counts + rng.normal(0, read, psf.shape)


def _theoretical():
    """make_psf kernels in the crops users cut: none sits on a pedestal."""
    for sigma in (0.5, 1, 2, 3, 4, 8):
        for n in (5, 9, 15, 25):
            yield dn.make_psf("gaussian", (n, n), sigma=sigma)
            shape, sigmas = (max(3, n // 2 | 1), n, n), (2 * sigma, sigma, sigma)
            yield dn.make_psf("gaussian", shape, sigma=sigmas)
    for na, ri in ((0.8, 1.0), (1.2, 1.33), (1.4, 1.518)):
        for n in (7, 15, 25):
            for px in (50, 100, 200):
                yield dn.make_psf("airy", (n, n), na=na, refractive_index=ri, pixel_size=px)
        for shape in ((9, 15, 15), (31, 25, 25), (21, 64, 64)):
            for px, dz in ((100, 250), (65, 200), (200, 1000)):
                yield dn.make_psf("widefield", shape, na=na, refractive_index=ri,
                                  pixel_size=px, z_step=dz)  # fmt: skip


def test_theoretical_psfs_have_no_pedestal_and_pass_unchanged():
    count = 0
    for kernel in _theoretical():
        assert psf_pedestal(kernel) is None, kernel.shape
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no note either
            expected = kernel / kernel.sum()
            np.testing.assert_allclose(as_psf(kernel), expected, rtol=1e-6, atol=1e-12)
        count += 1
    assert count > 100


def test_a_background_subtracted_noisy_bead_has_no_pedestal():
    psf = dn.make_psf("gaussian", (25, 25), sigma=2.0)
    for seed in range(5):
        assert psf_pedestal(_bead(psf, 100, 1000, seed) - 100) is None


@pytest.mark.parametrize("sigma, size", [(1.0, 15), (1.5, 25), (2.0, 31)])
@pytest.mark.parametrize("offset, peak", [(100, 3000), (100, 300), (400, 1000), (1000, 5000)])
def test_a_bead_on_the_camera_offset_is_found_and_cleaned(sigma, size, offset, peak):
    psf = dn.make_psf("gaussian", (size, size), sigma=sigma)
    crop = _bead(psf, offset, peak, seed=size)
    level, noise = psf_pedestal(crop)
    assert abs(level - offset) < 0.4 * np.sqrt(offset)  # the border's median: the offset
    assert 0.5 * np.sqrt(offset) < noise < 2 * np.sqrt(offset + 1.5**2)
    cleaned = remove_pedestal(crop)
    cleaned /= cleaned.sum()
    raw = crop / crop.sum()
    # what was a blur mostly of the floor is now the bead's PSF
    before, now = np.abs(raw - psf).sum(), np.abs(cleaned - psf).sum()
    assert before > 0.9  # most of the kernel's mass was the floor's
    # the wings under 3 noise deviations go with it: more of them for a dim bead
    assert now < 0.2 * before and now < (0.06 if peak >= 3000 else 0.3), (before, now)
    assert (cleaned >= 0).all()


def test_a_noise_free_pedestal_comes_off_exactly():
    psf = dn.make_psf("gaussian", (21, 21), sigma=2.0)
    with pytest.warns(ConditionsWarning, match="flat background of 100 "):
        np.testing.assert_allclose(as_psf(1000 * psf / psf.max() + 100), psf, atol=1e-6)
    # 3D: a bead stack on an offset
    psf3 = dn.make_psf("gaussian", (15, 17, 17), sigma=(3.0, 1.5, 1.5))
    with pytest.warns(ConditionsWarning, match="flat background of 50"):
        np.testing.assert_allclose(as_psf(200 * psf3 / psf3.max() + 50), psf3, atol=1e-6)


def test_what_is_not_a_pedestal_is_left():
    # a box blur, a PSF wider than its crop, a line (motion) blur, small kernels
    line = np.zeros((15, 15))
    line[7, :] = 1
    for kernel in (np.ones((9, 9)), dn.make_psf("gaussian", (9, 9), sigma=6.0), line,
                   np.ones((5, 5)) + np.eye(5)):  # fmt: skip
        assert psf_pedestal(kernel) is None
        np.testing.assert_allclose(remove_pedestal(kernel), kernel)
    # a measured bead whose tails still reach the crop's border is left as given
    psf = dn.make_psf("gaussian", (15, 15), sigma=3.0)
    assert psf_pedestal(100 + 3000 * psf / psf.max()) is None


def test_restore_with_a_raw_bead_crop_nearly_equals_the_exact_psf(monkeypatch):
    from skimage import data

    from napari_deconvnet.core import psf as psf_module

    clean = data.camera()[192:320, 192:320].astype(np.float64) / 255
    psf = dn.make_psf("gaussian", (25, 25), sigma=1.5)
    noisy = dn.synthesize(clean, "poisson-gaussian", psf=psf, peak=300, read_noise=1.0, seed=3)
    crop = _bead(psf, 100, 3000, seed=4)

    def score(kernel):
        out = dn.richardson_lucy(noisy, kernel, 10)
        return dn.psnr(clean, np.clip(out, 0, 1), data_range=1)

    with pytest.warns(ConditionsWarning, match=r"flat background of 99\.\d.*subtracted"):
        now = score(crop)
    exact = score(psf)
    assert abs(now - exact) < 0.1, (now, exact)
    with pytest.warns(ConditionsWarning):  # the check does not depend on the crop's scale
        assert score(crop / crop.sum()) == pytest.approx(now)
    monkeypatch.setattr(psf_module, "PEDESTAL_MIN_MASS", float("inf"))  # as before the check
    with pytest.warns(ConditionsWarning, match="border of the PSF lies well above zero"):
        before = score(crop)
    assert now - before > 3, (now, before)


def test_a_one_row_psf_passes_without_numpy_warnings():
    """A line profile's PSF (1 x 9): the pedestal search had no second ring and no
    steps along the short axis, and numpy warned "Mean of empty slice" on every
    restore, Wiener filter and Richardson-Lucy run with it (session 58)."""
    import warnings

    row = dn.make_psf("gaussian", (9, 9), sigma=1.5)[4:5]
    image = np.random.default_rng(0).random((32, 48)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = dn.wiener(image, row)
        dn.richardson_lucy(image, row, 5)
        dn.restore(image, "deconv-2d", psf=row, device="cpu")
    assert np.isfinite(out).all()


def test_an_airy_ring_along_the_crop_is_no_pedestal():
    """Session 67: a make_psf Airy kernel whose first bright ring runs along its edge
    (9×9, NA 1.4 at 65 nm) was taken for a bead on a background: about 8 % of its light
    was subtracted before every blur, by name, dict or array, with a warning."""
    import itertools

    kw = dict(na=1.4, pixel_size=65, refractive_index=1.518)
    p = dn.make_psf("airy", (9, 9), **kw)
    assert psf_pedestal(p) is None
    image = np.zeros((33, 33), np.float32)
    image[16, 16] = 1
    for psf in (p, {"kind": "airy", "shape": (9, 9), **kw}):
        blurred = dn.synthesize(image, None, psf=psf)
        np.testing.assert_allclose(blurred[12:21, 12:21], p, atol=1e-6)  # the kernel itself
    for n, na, px in itertools.product(range(7, 33, 2), (0.8, 1.2, 1.4), (40, 65, 100, 130)):
        assert psf_pedestal(dn.make_psf("airy", (n, n), na=na, pixel_size=px,
                                        refractive_index=1.518)) is None  # fmt: skip
    # a bead of that pattern, measured on an offset, still has its pedestal
    rng = np.random.default_rng(0)
    big = dn.make_psf("airy", (25, 25), **kw)
    measured = rng.poisson(big / big.max() * 2000 + 100).astype(float)
    assert psf_pedestal(measured) is not None and abs(psf_pedestal(measured)[0] - 100) < 5


@pytest.mark.parametrize("peak", [300, 3000])
def test_a_tight_crop_on_an_offset_is_used_as_given_with_a_warning(peak):
    # session 72: an 11-pixel crop of a bead about 4 pixels wide on an offset of 100 is
    # no flat pedestal (the wings reach the border) and cost 1 to 7 dB without a word
    psf = dn.make_psf("gaussian", shape=(11, 11), sigma=1.8)
    bead = _bead(psf, 100, peak)
    assert psf_pedestal(bead) is None
    with pytest.warns(ConditionsWarning, match="border of the PSF lies well above zero") as said:
        kernel = as_psf(bead)
    np.testing.assert_allclose(kernel, bead / bead.sum())  # as given
    assert "crop wider around the bead, or subtract the background" in str(said[0].message)


@pytest.mark.parametrize(
    "kernel",
    [
        dn.make_psf("gaussian", shape=(9, 9), sigma=2.0),  # computed, cut by its crop
        dn.make_psf("widefield", na=0.8, refractive_index=1.0),  # defocused planes
        dn.make_psf("airy", shape=(15, 15), na=1.2, refractive_index=1.33, pixel_size=65),
    ],
)
def test_wings_without_a_background_say_nothing(kernel):
    rng = np.random.default_rng(4)
    measured = rng.poisson(kernel / kernel.max() * 5000).astype(np.float64)  # a bead, no offset
    for psf in (kernel, measured):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConditionsWarning)
            as_psf(psf)
