"""Richardson-Lucy's fast paths: mirror-folded borders, transposing banded passes.

- ``pad=None`` equals scikit-image (float32 tolerance) on the banded path
  (separable PSFs on the CPU) and on the FFT path, in 2D and 3D;
- the default (``pad="reflect"``/``"symmetric"``, a mirror-symmetric PSF)
  equals a float64 numpy reference of its boundary rule: each blur is the
  image extended by its mirror image by the PSF's half-width, correlated in
  "valid" mode;
- it is the limit of the previous rule (scikit-image on the image extended
  by three PSF sizes, cropped back) as that padding widens;
- the operators under it equal scipy's correlations.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, signal
from skimage import restoration

import napari_deconvnet as dn
from napari_deconvnet.core import classical
from napari_deconvnet.core.deconv_operators import (
    BandedAxis,
    FoldedFFT,
    SeparableConvolution,
    extend_by_reflection,
    fold_indices,
)
from napari_deconvnet.core.psf import blur

_EPS = 1e-12


def _odd(psf):
    psf = np.asarray(psf, np.float64) / np.sum(psf)
    return np.pad(psf, [(0, 1 - s % 2) for s in psf.shape])


def _mirror_rl(image, psf, iterations, mode):
    """The default's boundary rule in float64: x <- x * H(y / H x), H folding the borders."""
    kernel = _odd(psf)
    lead = image.ndim - kernel.ndim
    widths = [(0, 0)] * lead + [(s // 2, s // 2) for s in kernel.shape]
    full = kernel.reshape((1,) * lead + kernel.shape)

    def h(x):
        return signal.correlate(np.pad(x, widths, mode=mode), full, mode="valid", method="direct")

    scale = np.abs(image).max()
    y = np.asarray(image, np.float64) / scale
    x = np.full_like(y, 0.5)
    for _ in range(iterations):
        x = x * h(y / (np.maximum(h(x), 0) + _EPS))
    return x * scale


def _padded_skimage(image, psf, iterations, sizes=3):
    """The previous default: scikit-image on the image reflected by three PSF sizes, cropped."""
    kernel = _odd(psf)
    widths = [(sizes * s, sizes * s) for s in kernel.shape]
    padded = np.pad(np.asarray(image, np.float64), widths, mode="reflect")
    out = restoration.richardson_lucy(padded, kernel, num_iter=iterations, clip=False)
    pairs = zip(kernel.shape, image.shape, strict=True)
    return out[tuple(slice(sizes * s, sizes * s + n) for s, n in pairs)]


def _blobs(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random(shape), 2.0)
    x = (x - x.min()) / (x.max() - x.min())
    return (x > 0.5) * x + 0.05


PSFS = {
    "gaussian-2d": lambda: dn.make_psf("gaussian", (9, 7), sigma=(1.5, 1.2)),
    "gaussian-3d": lambda: dn.make_psf("gaussian", (5, 9, 7), sigma=(1.0, 1.5, 1.2)),
    "airy-2d": lambda: dn.make_psf("airy", (11, 11)),
    "airy-3d": lambda: dn.make_psf("airy", (5, 9, 9)),
}
SHAPES = {2: (37, 30), 3: (11, 26, 23)}


def _case(name):
    psf = PSFS[name]()
    image = blur(_blobs(SHAPES[psf.ndim]), psf).astype(np.float32)
    return image, psf


@pytest.mark.parametrize("name", list(PSFS))
def test_pad_none_equals_skimage(name):
    image, psf = _case(name)
    assert (classical.separable_taps(_odd(psf)) is not None) == name.startswith("gaussian")
    out = dn.richardson_lucy(image, psf, 10, pad=None, device="cpu")
    ref = restoration.richardson_lucy(image.astype(np.float64), _odd(psf), 10, clip=False)
    # measured: up to 1.1e-6 of the peak
    np.testing.assert_allclose(out, ref, atol=1e-5 * ref.max())


@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
@pytest.mark.parametrize("name", list(PSFS))
def test_default_equals_the_mirror_reference(name, mode):
    image, psf = _case(name)
    out = dn.richardson_lucy(image, psf, 10, pad=mode, device="cpu")
    ref = _mirror_rl(image, psf, 10, mode)
    # measured: up to 3.1e-6 of the peak (float32 against float64)
    np.testing.assert_allclose(out, ref, atol=1e-5 * ref.max())


def test_default_fft_path_equals_the_banded_path(monkeypatch):
    image, psf = _case("gaussian-3d")
    banded = dn.richardson_lucy(image, psf, 10, device="cpu")
    monkeypatch.setattr(classical, "separable_taps", lambda kernel: None)
    fft = dn.richardson_lucy(image, psf, 10, device="cpu")
    np.testing.assert_allclose(fft, banded, atol=1e-5 * banded.max())


@pytest.mark.parametrize("name", ["gaussian-2d", "airy-2d"])
def test_the_previous_rule_tends_to_the_default_as_the_padding_widens(name):
    # The previous default (a finite reflection, zeros beyond) differs from
    # the mirror rule by the artefact its zeros leave; measured, 30 it.:
    # three PSF sizes 2.0e-5 (Gaussian) and 9.9e-7 (Airy) of the peak, six
    # 7.8e-7 and 9.9e-7 (float32 rounding). In 3D (10 it., 11x26x23):
    # three PSF sizes 6.3e-6 (Gaussian) and 8.0e-4 (Airy), six 4.3e-7, 8.1e-7.
    image, psf = _case(name)
    out = dn.richardson_lucy(image, psf, 30, device="cpu")
    np.testing.assert_allclose(out, _padded_skimage(image, psf, 30, 6), atol=5e-6 * out.max())
    np.testing.assert_allclose(out, _padded_skimage(image, psf, 30, 3), atol=1e-4 * out.max())


def test_a_2d_psf_on_a_stack_folds_each_plane():
    stack = np.stack([_blobs((30, 28), seed) for seed in range(3)]).astype(np.float32)
    psf = dn.make_psf("gaussian", (7, 7), sigma=1.3)
    out = dn.richardson_lucy(stack, psf, 8, device="cpu")
    ref = _mirror_rl(stack, psf, 8, "reflect")
    np.testing.assert_allclose(out, ref, atol=1e-5 * ref.max())
    for plane, expected in zip(stack, out, strict=True):
        alone = dn.richardson_lucy(plane, psf, 8, device="cpu")
        np.testing.assert_allclose(alone, expected, atol=1e-6 * expected.max())


def test_a_flat_image_stays_flat():
    # no boundary artefact at all: the mirror rule sees an endless flat image
    out = dn.richardson_lucy(np.full((24, 20), 3.0), dn.make_psf("gaussian", (9, 9)), 50)
    np.testing.assert_allclose(out, 3.0, rtol=1e-5)


def test_asymmetric_psf_and_tv_keep_the_padded_rule():
    image, _ = _case("gaussian-2d")
    psf = np.array([[0.0, 1, 2], [1, 4, 1], [0, 1, 0]])  # not a mirror image of itself
    out = dn.richardson_lucy(image, psf, 10, device="cpu")
    np.testing.assert_allclose(out, _padded_skimage(image, psf, 10), atol=1e-5 * image.max())


@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
@pytest.mark.parametrize(("n", "lo", "hi"), [(7, -3, 10), (4, -9, 13), (1, -2, 3), (2, -5, 6)])
def test_fold_indices_equal_np_pad(mode, n, lo, hi):
    x = np.arange(n)
    np.testing.assert_array_equal(x[fold_indices(n, lo, hi, mode)], np.pad(x, (-lo, hi - n), mode))


@pytest.mark.parametrize(("mode", "scipy_mode"), [("reflect", "mirror"), ("symmetric", "reflect")])
@pytest.mark.parametrize(
    ("shape", "axis", "size", "block", "transpose"),
    [
        ((2, 37, 41), 2, 9, 8, False),
        ((2, 37, 41), 1, 9, 8, False),
        ((2, 37, 41), 2, 9, 8, True),
        ((1, 5, 7), 2, 9, 16, True),  # taps longer than the axis is wide
        ((3, 70, 3), 1, 13, 16, False),
        ((3, 32, 20), 1, 9, 16, False),  # planes stacked: one product for all
        ((2, 4, 48, 5), 2, 13, 8, False),
        ((3, 16, 7), 1, 15, 8, False),  # no interior block
    ],
)
def test_banded_axis_folds_like_scipy(mode, scipy_mode, shape, axis, size, block, transpose):
    import torch

    rng = np.random.default_rng(0)
    x = rng.random(shape).astype(np.float32)
    taps = rng.random(size)
    for boundary, scipy_boundary in ((mode, scipy_mode), ("zero", "constant")):
        op = BandedAxis(taps, axis, shape, "cpu", block, boundary=boundary, transpose=transpose)
        for mirror, weights in ((False, taps), (True, taps[::-1])):
            ref = ndimage.correlate1d(x.astype(np.float64), weights, axis, mode=scipy_boundary)
            if transpose:
                ref = np.swapaxes(ref, -1, -2)
            out = op(torch.from_numpy(x), mirror).numpy()
            np.testing.assert_allclose(out, ref, atol=1e-5 * ref.max())


def test_separable_convolution_swaps_the_last_two_axes():
    import torch

    rng = np.random.default_rng(0)
    x = rng.random((2, 9, 20, 17)).astype(np.float32)
    taps = [rng.random(5), rng.random(7), rng.random(9)]
    full = np.multiply.outer(np.multiply.outer(taps[0], taps[1]), taps[2])[None]
    ref = ndimage.correlate(x.astype(np.float64), full, mode="constant")
    forward = SeparableConvolution(taps, x.shape, "cpu")
    out = forward(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, np.swapaxes(ref, -1, -2), atol=1e-5 * ref.max())
    back = SeparableConvolution([taps[0], taps[2], taps[1]], out.shape, "cpu")
    twice = ndimage.correlate(ref, full, mode="constant")
    np.testing.assert_allclose(back(torch.from_numpy(out)).numpy(), twice, atol=1e-5 * twice.max())


def test_folded_fft_equals_scipy():
    import torch

    rng = np.random.default_rng(0)
    x = rng.random((2, 13, 16)).astype(np.float32)
    kernel = rng.random((5, 7))
    op = FoldedFFT(kernel, x.shape, "symmetric", "cpu")
    # a convolution by the kernel, or a correlation if mirror
    for mirror, weights in ((False, kernel[::-1, ::-1]), (True, kernel)):
        ref = ndimage.correlate(x.astype(np.float64), weights[None], mode="reflect")
        out = op(torch.from_numpy(x), mirror).numpy()
        np.testing.assert_allclose(out, ref, atol=1e-5 * ref.max())


@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
def test_extend_by_reflection_equals_np_pad(mode):
    """The sliced extension writes np.pad's values (2D and 3D, widths up to one
    reflection, zero widths, corners)."""
    import torch

    rng = np.random.default_rng(2)
    cases = [
        ((2, 9, 7), [3, 6]),
        ((1, 20, 31), [11, 0]),
        ((3, 5, 6, 7), [2, 4, 6]),
        ((1, 2, 4), [1, 3]),
    ]
    for shape, half in cases:
        half = [min(c, n - (mode == "reflect")) for c, n in zip(half, shape[1:], strict=True)]
        x = torch.from_numpy(rng.random(shape).astype(np.float32))
        out = torch.full(
            [shape[0], *(n + 2 * c for n, c in zip(shape[1:], half, strict=True))], np.nan
        )
        extend_by_reflection(out, x, tuple(range(1, len(shape))), half, mode)
        ref = np.pad(x.numpy(), [(0, 0)] + [(c, c) for c in half], mode=mode)
        np.testing.assert_array_equal(out.numpy(), ref)


@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
@pytest.mark.parametrize(
    ("shape", "kernel_shape"),
    [((2, 40, 33), (9, 7)), ((1, 12, 30, 26), (5, 9, 7)), ((1, 4, 50), (11, 3))],
)
def test_folded_fft_slices_as_it_gathers(mode, shape, kernel_shape):
    """FoldedFFT extends by slices where one reflection reaches (the usual case) and
    by gathers where the kernel is wider than the image (4 samples against a
    half-width of 5): the same outputs either way, bit for bit."""
    import torch

    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.random(shape).astype(np.float32))
    kernel = rng.random(kernel_shape)
    sliced = FoldedFFT(kernel, shape, mode, "cpu")
    gathered = FoldedFFT(kernel, shape, mode, "cpu")
    gathered.sliced = False
    wide = any(c > n - (mode == "reflect") for c, n in zip(sliced.half, shape[1:], strict=True))
    assert sliced.sliced == (not wide)
    for mirror in (False, True):
        a, b = sliced(x, mirror).clone(), gathered(x, mirror).clone()
        assert torch.equal(a, b)


@pytest.mark.parametrize("shape", [(3, 5, 7), (1, 600, 520), (2, 1, 530, 500)])
def test_scaled_transpose(shape):
    import torch

    from napari_deconvnet.core.deconv_operators import scaled_transpose

    x = torch.from_numpy(np.random.default_rng(0).random(shape, dtype=np.float32))
    out = scaled_transpose(x, 0.5)
    assert out.is_contiguous()
    np.testing.assert_array_equal(out.numpy(), np.swapaxes(x.numpy(), -1, -2) * np.float32(0.5))
