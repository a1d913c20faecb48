"""``restore(..., ensemble=n)``: the mean of the restorations of rotated and mirrored views.

Checked against a reference written without the module's helpers (the eight
symmetries of the square as transposes and reversed slices), for symmetry
(the full ensemble commutes with a quarter turn of the image and its PSF),
for a PSNR gain, in 3D (Z is never turned) and for its errors.
"""

import threading

import dask.array as da
import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.core.ensemble import VIEWS, from_view, to_view
from napari_deconvnet.core.metrics import psnr
from napari_deconvnet.core.psf import blur


def _t(a):
    return np.swapaxes(a, -1, -2)


def _flip_y(a):
    return a[..., ::-1, :]


def _flip_x(a):
    return a[..., :, ::-1]


def _half_turn(a):
    return a[..., ::-1, ::-1]


#: (forward, inverse) pairs on the last two axes, written by hand
SYMMETRIES = [
    (lambda a: a, lambda a: a),
    (_flip_y, _flip_y),
    (_flip_x, _flip_x),
    (_half_turn, _half_turn),
    (_t, _t),
    (lambda a: _half_turn(_t(a)), lambda a: _t(_half_turn(a))),
    (lambda a: _flip_y(_t(a)), lambda a: _t(_flip_y(a))),
    (lambda a: _flip_x(_t(a)), lambda a: _t(_flip_x(a))),
]


def _image(shape=(72, 88), sigma=0.1, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    clean = 0.5 + 0.3 * np.sin(xx / 5.0) * np.cos(yy / 9.0) + 0.2 * (xx > yy)
    clean = (clean / clean.max()).astype(np.float32)
    noisy = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
    return clean, noisy.astype(np.float32)


def test_the_views_are_the_eight_symmetries_of_the_square_and_invert():
    a = np.arange(12.0).reshape(3, 4)
    seen = {to_view(a, v, 0, 1).tobytes() + bytes(to_view(a, v, 0, 1).shape) for v in VIEWS}
    assert len(seen) == 8
    np.testing.assert_array_equal(to_view(a, VIEWS[1], 0, 1), a.T)  # the second is the transpose
    for v in VIEWS:
        np.testing.assert_array_equal(from_view(to_view(a, v, 0, 1), v, 0, 1), a)
    # the first two and the first four are groups: closed under composition
    for n in (2, 4):
        images = {to_view(a, v, 0, 1).tobytes() for v in VIEWS[:n]}
        for v in VIEWS[:n]:
            for w in VIEWS[:n]:
                twice = to_view(to_view(a, v, 0, 1), w, 0, 1)
                assert twice.tobytes() in images


def test_eight_views_equal_the_mean_over_the_hand_written_symmetries():
    """A deconvolution with an anisotropic PSF: each view gets the PSF turned with it."""
    clean, _ = _image((64, 80))
    psf = dn.make_psf("gaussian", shape=(13, 9), sigma=(2.0, 0.8))
    rng = np.random.default_rng(2)
    blurred = (blur(clean, psf) + rng.normal(0, 0.01, clean.shape)).astype(np.float32)
    got = dn.restore(blurred, "deconv-2d", psf=psf, precision="float32", ensemble=8)
    outs = [
        inv(dn.restore(np.ascontiguousarray(fwd(blurred)), "deconv-2d",
                       psf=np.ascontiguousarray(fwd(psf)), precision="float32"))
        for fwd, inv in SYMMETRIES
    ]  # fmt: skip
    np.testing.assert_allclose(got, np.mean(outs, axis=0), atol=2e-6 * np.ptp(got))
    # the PSF really turns: with the PSF as given, the turned views are worse
    wrong = [
        inv(dn.restore(np.ascontiguousarray(fwd(blurred)), "deconv-2d", psf=psf,
                       precision="float32"))
        for fwd, inv in SYMMETRIES
    ]  # fmt: skip
    assert psnr(clean, np.mean(wrong, 0), data_range=1) < psnr(clean, got, data_range=1) - 0.3


def test_the_full_ensemble_commutes_with_a_quarter_turn():
    _, noisy = _image((64, 96), seed=3)
    one = dn.restore(noisy, "denoise-2d", precision="float32", ensemble=8)
    turned = dn.restore(np.rot90(noisy).copy(), "denoise-2d", precision="float32", ensemble=8)
    np.testing.assert_allclose(np.rot90(one), turned, atol=2e-6 * np.ptp(one))
    single = dn.restore(noisy, "denoise-2d", precision="float32")
    single_turned = dn.restore(np.rot90(noisy).copy(), "denoise-2d", precision="float32")
    # one view does not commute: what the ensemble averages away
    assert np.abs(np.rot90(single) - single_turned).max() > 1e-3 * np.ptp(single)


def test_more_views_restore_better_and_one_view_is_the_plain_restore():
    clean, noisy = _image((96, 96), sigma=25 / 255, seed=4)
    plain = dn.restore(noisy, "denoise-2d", precision="float32")
    np.testing.assert_array_equal(
        dn.restore(noisy, "denoise-2d", precision="float32", ensemble=1), plain
    )
    scores = {
        n: psnr(clean, np.clip(dn.restore(noisy, "denoise-2d", precision="float32",
                                          ensemble=n), 0, 1), data_range=1)
        for n in (1, 8)
    }  # fmt: skip
    assert scores[8] > scores[1] + 0.02


def test_volumes_turn_in_y_and_x_only_and_progress_and_stop_work():
    rng = np.random.default_rng(5)
    vol = rng.normal(0.5, 0.1, (16, 40, 48)).astype(np.float32)
    calls = []
    got = dn.restore(
        vol, "denoise-3d", precision="float32", ensemble=2, progress=lambda *a: calls.append(a)
    )
    swap = np.swapaxes  # view 2 is the transpose of Y and X, Z kept in place
    t = swap(dn.restore(swap(vol, 1, 2).copy(), "denoise-3d", precision="float32"), 1, 2)
    expected = (dn.restore(vol, "denoise-3d", precision="float32") + t) / 2
    np.testing.assert_allclose(got, expected, atol=2e-6 * np.ptp(got))
    done = [d for d, _ in calls]
    assert (
        done == sorted(done) and calls[-1][0] == calls[-1][1] and len({t for _, t in calls}) == 1
    )
    stop = threading.Event()
    stop.set()
    with pytest.raises(dn.Cancelled):
        dn.restore(vol, "denoise-3d", ensemble=2, stop=stop)


def test_bad_ensembles_and_lazy_input_are_refused(tmp_path):
    _, noisy = _image((32, 32))
    for bad, err in ((0, ValueError), (9, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(err, match="ensemble"):
            dn.restore(noisy, "denoise-2d", ensemble=bad)
    with pytest.raises(ValueError, match="in memory"):
        dn.restore(da.from_array(noisy, chunks=16), "denoise-2d", ensemble=4)
    with pytest.raises(ValueError, match="ensemble=1 only"):
        dn.restore_to_zarr(noisy, tmp_path / "out.ome.zarr", "denoise-2d", ensemble=2)
    assert not (tmp_path / "out.ome.zarr").exists()


def test_the_method_spec_and_run_method_take_the_ensemble():
    from napari_deconvnet.core.operations import method_spec, run_method

    _, noisy = _image((48, 48), seed=6)
    spec = method_spec("denoise-2d")
    assert "ensemble" in [p.name for p in spec.params]
    out = run_method(noisy, "denoise-2d", ensemble="4", precision="float32")
    np.testing.assert_allclose(
        out, dn.restore(noisy, "denoise-2d", ensemble=4, precision="float32"), atol=1e-7
    )


@pytest.mark.parametrize("ensemble", [2, 3, 5, 8])
def test_a_constant_image_comes_back_exactly_with_any_ensemble(ensemble):
    """README: a constant image in memory comes back unchanged, exactly. Eight
    float32 views summed and divided gave 0.10000001 for 0.1."""
    for value in (0.1, 0.3, 1234.567):
        x = np.full((32, 32), value, np.float32)
        out = dn.restore(x, ensemble=ensemble)
        assert out.dtype == np.float32 and np.all(out == np.float32(value)), (value, out.flat[0])


def test_an_even_psf_is_mirrored_about_its_origin():
    # an even axis mirrored moved the PSF's origin (index n // 2) by a pixel: every
    # mirrored view deconvolved with a misplaced PSF (ensemble=8 lost 2.2 dB)
    clean, _ = _image((64, 64), sigma=0.0)
    psf = dn.make_psf("gaussian", (12, 12), sigma=2)
    blurred = dn.synthesize(clean, "poisson", psf=psf, peak=300, seed=0)
    odd = np.pad(psf, ((0, 1), (0, 1)))  # the same PSF about the same origin
    one = dn.restore(blurred, "deconv-2d", psf=psf, device="cpu")
    eight = dn.restore(blurred, "deconv-2d", psf=psf, ensemble=8, device="cpu")
    np.testing.assert_allclose(
        eight, dn.restore(blurred, "deconv-2d", psf=odd, ensemble=8, device="cpu"), atol=1e-5
    )
    assert psnr(eight, clean, data_range=1.0) > psnr(one, clean, data_range=1.0)
