"""A dim scene beside very bright objects, found and restored in its own range (dynamic_range)."""

import numpy as np
import pytest
from scipy import ndimage
from skimage import data

import napari_deconvnet as dn
from napari_deconvnet.core import dynamic_range, restoration
from napari_deconvnet.core.dynamic_range import scene_range


def _scene(n=128, seed=0):
    """The camera photo (a test image no model trains on), dim floor, 99.5th pct at 1."""
    rng = np.random.default_rng(seed)
    y, x = rng.integers(0, 512 - n, 2)
    image = data.camera()[y : y + n, x : x + n].astype(np.float64)
    image = image / np.percentile(image, 99.5)
    return 0.05 + 0.95 * image


def _beads(n=128, contrast=100.0, seed=1, count=6, sigma=1.5):
    rng = np.random.default_rng(seed)
    out = np.zeros((n, n))
    for _ in range(count):
        out[tuple(rng.integers(10, n - 10, 2))] = rng.uniform(0.5, 1.0)
    out = ndimage.gaussian_filter(out, sigma)
    return contrast * out / out.max()


def _poisson(image, photons, seed):
    return (np.random.default_rng(seed).poisson(image * photons) / photons).astype(np.float32)


def test_found_only_for_a_few_objects_far_above_the_scene():
    scene = _scene()
    assert scene_range(scene[None], 2) is None  # an ordinary photo
    assert scene_range(np.random.default_rng(0).random((1, 64, 64)), 2) is None
    assert scene_range((scene + _beads(contrast=8.0))[None], 2) is None  # not far enough
    hot = scene.copy()
    hot[40, 40], hot[90, 17] = 500.0, 300.0  # lone hot pixels are no objects
    assert scene_range(hot[None], 2) is None
    r = scene_range((scene + _beads())[None], 2)
    assert r is not None and 0 < r.share < 0.02
    # its range is that of the scene alone (the 99.5th percentile above the 0.5th)
    lo, hi = np.percentile(scene, [0.5, 99.5])
    assert r.offset == pytest.approx(lo, abs=0.02) and r.scale == pytest.approx(hi - lo, rel=0.05)
    assert r.clip == pytest.approx(r.offset + dynamic_range.CLIP * r.scale)
    # a bright part bigger than MAX_OBJECT_SHARE is the scene itself
    big = scene.copy()
    big[:40, :40] *= 100
    assert scene_range(big[None], 2) is None
    # 3D: beads in a volume
    volume = np.repeat(scene[None, :64, :64], 8, axis=0)
    volume[3:6, 30:33, 30:33] = 100.0  # a bead blurred over three planes
    assert scene_range(volume[None], 3) is not None
    assert (
        scene_range(np.zeros((1, 8, 8)), 2) is None and scene_range(np.zeros((0, 8, 8)), 2) is None
    )


def _around(objects):
    return ndimage.distance_transform_edt(objects < 1e-3 * objects.max()) >= 3


def _psnr(a, b, mask):
    return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64)[mask] - b[mask]) ** 2))


@pytest.fixture
def without_split(monkeypatch):
    """The restore as it was before: one pass whatever the image."""

    def off():
        monkeypatch.setattr(restoration, "scene_range", lambda *a, **k: None)

    return off


def test_denoising_around_bright_beads_is_that_of_the_scene_alone(without_split):
    scene, beads = _scene(), _beads()
    noisy, alone = _poisson(scene + beads, 20, 3), _poisson(scene, 20, 3)
    around = _around(beads)
    out = dn.restore(noisy, "denoise-2d", precision="float32")
    ref = dn.restore(alone, "denoise-2d", precision="float32")
    # measured: 25.17 dB around the beads against 25.23 for the scene alone
    assert _psnr(out, scene + beads, around) > _psnr(ref, scene, around) - 0.5
    # the beads themselves are restored as well as before
    on = beads > 0.25 * beads.max()
    without_split()
    before = dn.restore(noisy, "denoise-2d", precision="float32")
    # measured: 21.59 dB before, the scene squeezed into a hundredth of the range
    assert _psnr(before, scene + beads, around) < _psnr(out, scene + beads, around) - 2
    err_now = np.abs(out - (scene + beads))[on].mean()
    err_before = np.abs(before - (scene + beads))[on].mean()
    assert err_now < 1.1 * err_before


def test_ordinary_images_are_restored_exactly_as_before(without_split):
    noisy = _poisson(_scene() + _beads(contrast=5.0), 20, 4)  # bright, but not far above
    out = dn.restore(noisy, "denoise-2d", precision="float32")
    without_split()
    np.testing.assert_array_equal(out, dn.restore(noisy, "denoise-2d", precision="float32"))


def test_deconvolution_subtracts_the_blurred_objects(without_split):
    scene, beads = _scene(seed=2), _beads(seed=5, sigma=1.0)
    psf = dn.make_psf("gaussian", sigma=1.5)
    blur = lambda a: ndimage.convolve(a, psf, mode="reflect")  # noqa: E731
    noisy, alone = _poisson(blur(scene + beads), 200, 6), _poisson(blur(scene), 200, 6)
    around = _around(beads)
    out = dn.restore(noisy, "deconv-2d", psf=psf, precision="float32")
    ref = dn.restore(alone, "deconv-2d", psf=psf, precision="float32")
    without_split()
    before = dn.restore(noisy, "deconv-2d", psf=psf, precision="float32")
    now, alone_db = _psnr(out, scene + beads, around), _psnr(ref, scene, around)
    # measured: 25.91 dB around the beads, 25.96 for the scene alone, 22.74 before
    assert now > alone_db - 0.5
    assert _psnr(before, scene + beads, around) < now - 2


def test_progress_covers_both_passes_and_cancel_stops_them():
    import threading

    noisy = _poisson(_scene() + _beads(), 20, 7)
    seen = []
    dn.restore(noisy, "denoise-2d", tile=64, progress=lambda d, t: seen.append((d, t)))
    totals = {t for _, t in seen}
    assert len(totals) == 1 and seen[-1][0] == seen[-1][1]
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1][1] == 2 * 4  # two passes of four 64² tiles
    stop = threading.Event()

    def cancel(done, total):
        if done > total // 2:  # in the scene's pass
            stop.set()

    with pytest.raises(dn.Cancelled):
        dn.restore(noisy, "denoise-2d", tile=64, progress=cancel, stop=stop)


def test_split_objects_takes_out_what_lies_above_the_scene():
    r = dynamic_range.SceneRange(offset=0.0, scale=1.0, peak=100.0, share=0.01)
    image = np.full((1, 16, 16), 0.5, np.float32)
    image[0, 8, 8] = 100.0
    from napari_deconvnet.core.axes import Layout

    layout = Layout("ZYX", (1, 16, 16), dn.load_model("denoise-2d"))
    objects, rest = dynamic_range.split_objects(image, image, r, None, layout)
    assert objects[0, 8, 8] == pytest.approx(100.0 - r.clip) and objects.sum() == objects[0, 8, 8]
    np.testing.assert_allclose(rest, np.where(image > 1, r.clip, image))
    # a deconvolution model: the objects are estimated by Richardson-Lucy in the image
    # itself (not the network's, which may spread a halo), and taken out blurred
    psf = dn.make_psf("gaussian", sigma=1.0)
    sharp = np.full((1, 32, 32), 0.5, np.float32)
    sharp[0, 16, 16] = 200.0
    blurred = ndimage.convolve(sharp[0], psf, mode="reflect")[None].astype(np.float32)
    first = sharp.copy()
    first[0, 5, 5] = 50.0  # a halo the network spread where the image has no object
    layout = Layout("ZYX", (1, 32, 32), dn.load_model("denoise-2d"))
    objects, rest = dynamic_range.split_objects(blurred, first, r, psf, layout)
    assert objects[0, 5, 5] == 0 and objects[0, 16, 16] == pytest.approx(200 - r.clip, rel=0.1)
    assert objects.sum() == pytest.approx(200 - r.clip, rel=0.1)  # the bead's light, in one place
    # what is left is the scene (0.5) around the object (its light, 200 x 0.16 at one
    # pixel off, taken out), and at most the clip level where it was
    yy, xx = np.indices((32, 32))
    away = (yy - 16) ** 2 + (xx - 16) ** 2 >= 9
    assert np.abs(rest[0][away] - 0.5).max() < 0.1
    assert rest.max() <= r.offset + dynamic_range.REST_CLIP * r.scale


@pytest.mark.parametrize("model", ["denoise-2d", "deconv-2d"])
def test_a_lazy_restore_takes_the_objects_out_as_the_eager_one_does(model, without_split):
    da = pytest.importorskip("dask.array")
    scene, beads = _scene(n=160, seed=3), _beads(n=160, seed=4)
    psf = dn.make_psf("gaussian", sigma=1.5) if model == "deconv-2d" else None
    clean = scene + beads
    if psf is not None:
        clean = ndimage.convolve(clean, psf, mode="reflect")
    noisy = _poisson(clean, 50, 8)[:150, :130]  # sizes off the grid
    kw = {"psf": psf, "precision": "float32"}
    eager = dn.restore(noisy, model, **kw)
    lazy = dn.restore(da.from_array(noisy, chunks=(70, 60)), model, tile=64, **kw)
    assert lazy.chunks == ((70, 70, 10), (60, 60, 10))
    lazy = lazy.compute()
    assert np.abs(lazy - eager).max() <= 1e-5 * float(np.ptp(eager))
    without_split()
    one_pass = dn.restore(noisy, model, **kw)
    assert np.abs(one_pass - eager).max() > 0.1  # the two ranges were used (scene ~1)


def test_a_streamed_restore_says_it_runs_one_pass_on_such_an_image(tmp_path):
    import warnings

    pytest.importorskip("zarr")
    bright = _poisson(_scene(n=96) + _beads(n=96), 20, 9)
    with pytest.warns(UserWarning, match="far brighter"):
        dn.restore_to_zarr(bright, tmp_path / "a.ome.zarr", "denoise-2d", precision="float32")
    plain = _poisson(_scene(n=96), 20, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        dn.restore_to_zarr(plain, tmp_path / "b.ome.zarr", "denoise-2d", precision="float32")


def test_fixed_statistics_on_such_an_image_say_they_are_one_range(tmp_path):
    import warnings

    da = pytest.importorskip("dask.array")
    bright = _poisson(_scene(n=96) + _beads(n=96), 20, 10)
    stats = dn.compute_normalization(bright, "denoise-2d")
    for image in (bright, da.from_array(bright, chunks=48)):
        with pytest.warns(UserWarning, match="fixes one intensity range"):
            dn.restore(image, "denoise-2d", precision="float32", normalization=stats)
    with pytest.warns(UserWarning, match="far brighter"):
        dn.restore_to_zarr(
            bright, tmp_path / "a.ome.zarr", "denoise-2d", precision="float32", normalization=stats
        )
    plain = _poisson(_scene(n=96), 20, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        dn.restore(plain, "denoise-2d", precision="float32", normalization=stats)


def test_the_restore_widget_restores_such_a_layer_in_two_ranges(make_napari_viewer, qtbot):
    from napari_deconvnet.widgets.restore import RestoreWidget

    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    assert isinstance(widget, RestoreWidget)
    widget.device.value = "cpu"
    scene, beads = _scene(n=96), _beads(n=96)
    noisy = _poisson(scene + beads, 20, 10)
    viewer.add_image(noisy, name="beads")
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    out = viewer.layers["beads [denoise-2d]"].data
    np.testing.assert_allclose(out, dn.restore(noisy, "denoise-2d", device="cpu"), atol=1e-5)
    around = _around(beads)
    alone = dn.restore(_poisson(scene, 20, 10), "denoise-2d", device="cpu")
    assert _psnr(out, scene + beads, around) > _psnr(alone, scene, around) - 0.5
