"""run_method_iter and synthesize_iter on layer-shaped arrays: axes, blocks, progress, stop."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy import ndimage

import napari_deconvnet as dn
from napari_deconvnet.core import denoisers
from napari_deconvnet.core.operations import drain, synthesize_iter


def _noisy(shape, seed=0):
    return np.random.default_rng(seed).normal(0.5, 0.1, shape).astype(np.float32)


def _steps(gen):
    steps = []
    try:
        while True:
            steps.append(next(gen))
    except StopIteration as finished:
        return steps, finished.value


def test_rgb_runs_per_channel():
    rgb = _noisy((20, 24, 3))
    out = dn.run_method(rgb, "median", axes="YXS", size=3)
    for c in range(3):
        expected = ndimage.median_filter(rgb[..., c], size=3, mode="reflect")
        np.testing.assert_array_equal(out[..., c], expected)


def test_z_in_axes_runs_volumes_else_planes():
    stack = _noisy((5, 16, 16))
    volume = dn.run_method(stack, "median", axes="ZYX", size=3)
    np.testing.assert_array_equal(volume, ndimage.median_filter(stack, size=3, mode="reflect"))
    planes = dn.run_method(stack, "median", axes="TYX", size=3)
    for t in range(5):
        expected = ndimage.median_filter(stack[t], size=3, mode="reflect")
        np.testing.assert_array_equal(planes[t], expected)
    np.testing.assert_array_equal(dn.run_method(stack, "median", size=3), planes)  # default


def test_a_3d_psf_deconvolves_volumes_and_a_2d_psf_every_plane():
    stack = _noisy((6, 32, 32))
    psf3 = dn.make_psf("gaussian", (3, 5, 5), sigma=1.0)
    out = dn.run_method(stack, "wiener", psf=psf3, balance=0.01)
    np.testing.assert_allclose(out, dn.wiener(stack, psf3, 0.01), atol=1e-6)
    psf2 = dn.make_psf("gaussian", (5, 5), sigma=1.0)
    steps, out = _steps(dn.run_method_iter(stack, "wiener", psf=psf2, axes="ZYX", balance=0.01))
    np.testing.assert_allclose(out, dn.wiener(stack, psf2, 0.01), atol=1e-6)
    assert steps == [(0, 0), (1, 1)]  # one volume: busy, then done
    with pytest.raises(ValueError, match="PSF is 3D"):
        dn.run_method(stack, "wiener", psf=psf3, axes="TYX")
    with pytest.raises(ValueError, match="needs a psf"):
        dn.run_method(stack, "wiener")
    # a 3D PSF on a plane: said so, with the cure (it said "pass a larger image")
    for method in ("wiener", "richardson-lucy"):
        with pytest.raises(ValueError, match=r"PSF is 3D .* image has 2 dimension.*a 2D PSF"):
            dn.run_method(stack[0], method, psf=psf3)


def test_richardson_lucy_yields_per_iteration():
    stack = _noisy((2, 24, 24))
    psf = dn.make_psf("gaussian", (5, 5), sigma=1.0)
    gen = dn.run_method_iter(stack, "richardson-lucy", psf=psf, iterations=4, device="cpu")
    steps, out = _steps(gen)
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    np.testing.assert_allclose(out, dn.richardson_lucy(stack, psf, 4, device="cpu"), atol=1e-6)


def test_non_local_means_of_a_large_plane_runs_tile_by_tile(monkeypatch):
    monkeypatch.setattr(denoisers, "NLM_TILE", 40)
    plane = _noisy((90, 100))
    steps, out = _steps(dn.run_method_iter(plane, "nlm"))
    assert steps[0] == (0, 9) and steps[-1] == (9, 9)  # 3 x 3 tiles
    np.testing.assert_allclose(out, dn.denoise_nlm(plane), atol=1e-5)


def test_lazy_input_gives_a_lazy_result_computed_per_plane():
    da = pytest.importorskip("dask.array")
    data = _noisy((6, 20, 24))
    computed = []

    def count(block):
        computed.append(1)
        return block

    lazy = da.from_array(data, chunks=(1, 20, 24)).map_blocks(count, dtype=data.dtype)
    computed.clear()  # dask's own probe of the function
    steps, out = _steps(dn.run_method_iter(lazy, "median", axes="TYX", size=3))
    assert steps == [(0, 0)] and isinstance(out, da.Array) and len(computed) == 1
    expected = ndimage.median_filter(data[4], size=3, mode="reflect")
    np.testing.assert_array_equal(np.asarray(out[4]), expected)
    assert len(computed) == 2  # the first plane and the one read, not all six


def test_a_lazy_result_reports_progress_and_stops_as_its_blocks_are_computed():
    # run_method on dask input reported (0, 0) once and never stopped
    da = pytest.importorskip("dask.array")
    data = _noisy((5, 20, 24))
    lazy = da.from_array(data, chunks=(1, 20, 24))
    calls = []
    out = dn.run_method(lazy, "median", axes="TYX", size=3, progress=lambda *a: calls.append(a))
    assert calls == []  # (the first plane is computed to check the method, counted when read)
    np.testing.assert_array_equal(
        np.asarray(out), dn.run_method(data, "median", axes="TYX", size=3)
    )
    assert sorted(set(calls)) == [(k, 5) for k in range(1, 6)]
    out.compute(scheduler="synchronous")  # read again: a new count, never past 5
    assert max(calls) == (5, 5) and calls[-1] == (5, 5)
    stop = threading.Event()
    out = dn.run_method(lazy, "median", axes="TYX", size=3, stop=stop)
    stop.set()
    with pytest.raises(dn.Cancelled, match="cancelled after 0 of 5 blocks"):
        out.compute(scheduler="synchronous")
    # a model through restore's lazy path: its blocks likewise
    calls.clear()
    net = dn.run_method(
        lazy, "denoise-2d", axes="TYX", device="cpu", progress=lambda *a: calls.append(a)
    )
    net.compute(scheduler="synchronous")
    assert calls and calls[-1][0] == calls[-1][1]
    with pytest.raises(TypeError, match="progress must be a callable"):
        dn.run_method(lazy, "median", axes="TYX", progress=3)


def test_models_run_through_restore_iter():
    plane = _noisy((48, 40))
    out = dn.run_method(plane, "denoise-2d", device="cpu", tile=32)
    np.testing.assert_allclose(out, dn.restore(plane, "denoise-2d", device="cpu", tile=32))
    with pytest.raises(ValueError, match=r"tile must be >= 8"):
        dn.run_method(plane, "denoise-2d", tile=4)
    with pytest.raises(ValueError, match="unknown model or method 'nope'"):
        dn.run_method(plane, "nope")


def test_stop_and_close_cancel_at_the_next_step():
    stack = _noisy((4, 16, 16))
    stop = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 2:
            stop.set()

    with pytest.raises(dn.Cancelled):
        dn.run_method(stack, "median", progress=progress, stop=stop)
    assert seen == [0, 1, 2]
    gen = dn.run_method_iter(stack, "median")
    next(gen)
    gen.close()  # a napari worker's quit


def test_bad_axes_raise():
    with pytest.raises(ValueError, match="3 letters but the image has 2"):
        dn.run_method(_noisy((8, 8)), "median", axes="ZYX")
    with pytest.raises(ValueError, match="unknown letters"):
        dn.run_method(_noisy((8, 8)), "median", axes="YQ")


# --------------------------------------------------------------- synthesis


def test_synthesize_iter_of_one_plane_is_synthesize():
    plane = _noisy((32, 32))
    for noise, params in [("poisson-gaussian", {"gain": 20}), ("salt-and-pepper", {})]:
        one = drain(dn.synthesize_iter(plane, noise, seed=5, psf="gaussian", **params))
        whole = dn.synthesize(plane, noise, seed=5, psf="gaussian", **params)
        np.testing.assert_array_equal(one, whole)


def test_synthesize_iter_is_deterministic_and_per_plane():
    stack = _noisy((3, 24, 24))
    steps, a = _steps(dn.synthesize_iter(stack, "poisson", peak=50, seed=1))
    b = drain(dn.synthesize_iter(stack, "poisson", peak=50, seed=1))
    assert steps == [(0, 3), (1, 3), (2, 3), (3, 3)]
    np.testing.assert_array_equal(a, b)
    # one generator draws the planes in order
    rng = np.random.default_rng(1)
    expected = [dn.synthesize(p, "poisson", peak=50, seed=rng) for p in stack]
    np.testing.assert_array_equal(a, np.stack(expected))


def test_synthesize_iter_blurs_rgb_per_channel_with_whole_image_defaults():
    rgb = _noisy((24, 24, 3))
    out = drain(
        dn.synthesize_iter(rgb, "salt-and-pepper", axes="YXS", psf="gaussian", seed=0, amount=0.5)
    )
    blurred = np.stack([dn.synthesize(rgb[..., c], None, psf="gaussian") for c in range(3)], -1)
    low, high = blurred.min(), blurred.max()
    replaced = (out == low) | (out == high)
    np.testing.assert_allclose(out[~replaced], blurred[~replaced], atol=1e-6)
    assert 0.4 < replaced.mean() < 0.6
    # the salt and pepper values are the whole (blurred) image's, not each channel's
    assert set(np.unique(out[replaced])) == {low, high}


def test_run_method_reads_an_rgb_array_as_restore_does():
    # (Y, X, 3) without axes: each colour a plane, as dn.restore reads it (it denoised
    # (Y, 3) slices, with scikit-image warning once per slice)
    import warnings

    rng = np.random.default_rng(0)
    clean = rng.random((48, 40, 3)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        guessed = dn.run_method(noisy, "nlm")
    np.testing.assert_array_equal(guessed, dn.run_method(noisy, "nlm", axes="YXS"))
    video = np.stack([noisy, noisy[::-1]])
    np.testing.assert_array_equal(
        dn.run_method(video, "median", size=3), dn.run_method(video, "median", size=3, axes="TYXS")
    )


def test_switching_median_takes_the_impulse_levels_of_the_whole_stack():
    """Session 67: run plane by plane, each plane's own extremes were its impulse levels:
    a clean plane had its darkest and brightest pixels replaced as pepper and salt."""
    import dask.array as da

    rng = np.random.default_rng(0)
    clean = (0.25 + 0.5 * rng.random((3, 32, 32))).astype(np.float32)
    noisy = dn.synthesize(clean, "salt-and-pepper", seed=0)  # levels: the stack's extremes
    noisy[1] = clean[1]  # a plane without impulses
    out = dn.run_method(noisy, "switching-median")
    np.testing.assert_array_equal(out[1], noisy[1])
    for i in (0, 2):  # the others: each plane as the function with the stack's levels
        expected = dn.denoise_switching_median(noisy[i], float(noisy.min()), float(noisy.max()))
        np.testing.assert_array_equal(out[i], expected)
    lazy = dn.run_method(da.from_array(noisy, chunks=(1, 32, 32)), "switching-median")
    np.testing.assert_array_equal(lazy.compute(), out)
    # levels given by hand are taken: a pepper level of 0.3 also replaces clean pixels
    assert (dn.run_method(noisy, "switching-median", low=0.3)[1] != noisy[1]).sum() > 10


def test_switching_median_takes_each_channels_own_levels():
    """Session 67 review: the whole image's extremes, taken across channels too, left a
    channel in 200-800 beside one in 0-1 with most of its impulses (its levels are 100
    and 1000); planes and frames of one channel share theirs."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    clean = np.stack(
        [
            ndimage.gaussian_filter(rng.uniform(lo, hi, (64, 64)), 3)
            for lo, hi in ((0.2, 0.8), (200, 800))
        ]
    ).astype(np.float32)
    noisy = clean.copy()
    pepper, salt = rng.random(clean.shape) < 0.05, rng.random(clean.shape) < 0.05
    for c, (low, high) in enumerate(((0.0, 1.0), (100.0, 1000.0))):
        noisy[c][pepper[c]], noisy[c][salt[c]] = low, high
    out = np.asarray(dn.run_method(noisy, "switching-median", axes="CYX"))
    error = np.abs(out - clean).mean(axis=(1, 2))
    assert error[0] < 0.001 and error[1] < 0.5  # the noisy channel 1 is 44 off
    stack = np.asarray(dn.run_method(np.stack([noisy, noisy]), "switching-median", axes="TCYX"))
    np.testing.assert_array_equal(stack[1], out)


@pytest.mark.parametrize("method", ["richardson-lucy", "wiener"])
def test_a_named_psf_beside_axes_with_a_z_is_made_in_3d(method):
    """Session 69: ``psf="gaussian"`` with ``axes="ZYX"`` deconvolved the volume plane by
    plane with the 2D default (0.46 of a 200 range off the 3D result; the CLI alike on a
    ZYX file), as restore makes a name in the model's dimensions; without a Z (or without
    axes) a name stays the plane's."""
    vol = (np.random.default_rng(0).random((6, 24, 28)) * 200).astype(np.float32)
    params = {"iterations": 3} if method == "richardson-lucy" else {}
    run = {"richardson-lucy": dn.richardson_lucy, "wiener": dn.wiener}[method]
    for psf in ("gaussian", {"kind": "gaussian", "sigma": 1.5}):
        as_3d = {"kind": "gaussian", "ndim": 3} if isinstance(psf, str) else {**psf, "ndim": 3}
        out = dn.run_method(vol, method, psf=psf, axes="ZYX", device="cpu", **params)
        np.testing.assert_allclose(out, run(vol, as_3d, *params.values()), atol=1e-4)
        planes = np.stack([run(p, psf, *params.values()) for p in vol])
        for axes in ("TYX", None):
            out = dn.run_method(vol, method, psf=psf, axes=axes, device="cpu", **params)
            np.testing.assert_allclose(out, planes, atol=1e-3)
    # synthesis alike
    blurred = drain(synthesize_iter(vol, None, psf="gaussian", axes="ZYX"))
    volume_blur = dn.synthesize(vol, None, psf={"kind": "gaussian", "ndim": 3})
    np.testing.assert_allclose(blurred, volume_blur, atol=1e-4)


def test_synthesis_keeps_the_opacity_of_rgba_and_grey_with_opacity():
    """Session 69: synthesize_iter with ``axes="YXS"`` (the Noise widget's) put noise and
    blur on an RGBA image's opacity, which run_method and restore keep bit for bit."""
    rng = np.random.default_rng(0)
    mask = np.zeros((40, 40), np.uint8)
    mask[8:30, 5:33] = 255
    for samples in (4, 2):
        image = np.concatenate(
            [(rng.random((40, 40, samples - 1)) * 255).astype(np.uint8), mask[..., None]], -1
        )
        for noise, psf, params in (("gaussian", None, {"sigma": 10.0}), (None, "gaussian", {})):
            out = drain(synthesize_iter(image, noise, psf=psf, axes="YXS", seed=1, **params))
            assert out.shape == image.shape and out.dtype == np.float32
            np.testing.assert_array_equal(out[..., -1], mask)
            assert np.abs(out[..., :-1] - image[..., :-1]).mean() > 3


def test_a_per_channel_list_makes_its_psf_names_alike():
    """Review of session 69: with a Z in the axes, "gaussian" was made 3D beside a 2D-only
    "airy": synthesis refused the mix and run_method deconvolved one channel in 3D, the
    other in 2D. Both are planes' now, as before; two 3D-capable names are volumes'."""
    x = (np.random.default_rng(0).random((6, 2, 32, 32)) * 100).astype(np.float32)
    rl = {"iterations": 3, "device": "cpu"}
    out = dn.run_method(x, "richardson-lucy", psf=["gaussian", "airy"], axes="ZCYX", **rl)
    for c, kind in enumerate(("gaussian", "airy")):
        alone = dn.run_method(x[:, c], "richardson-lucy", psf=kind, axes="TYX", **rl)
        np.testing.assert_allclose(out[:, c], alone, atol=1e-4)
    blurred = drain(synthesize_iter(x, None, psf=["gaussian", "airy"], axes="ZCYX"))
    assert blurred.shape == x.shape
    both = dn.run_method(x, "richardson-lucy", psf=["gaussian", "gaussian"], axes="ZCYX", **rl)
    volume = dn.run_method(x[:, 0], "richardson-lucy", psf="gaussian", axes="ZYX", **rl)
    np.testing.assert_allclose(both[:, 0], volume, atol=1e-4)
