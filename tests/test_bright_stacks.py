"""A stack whose frames hold bright objects: each frame decided and restored as alone.

``core.dynamic_range`` used to measure one scene range over all the frames of
a stack and split every frame with it; now a stack in which some image holds
bright objects is restored image by image (``restoration._image_by_image``).
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.core.axes import Layout
from napari_deconvnet.core.restoration import images_with_objects, private_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N = 96


def _scene(rng):
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.random((N, N)), 4)
    return 0.2 + 0.8 * (field - field.min()) / np.ptp(field)


def _beads(rng, contrast=100.0):
    yy, xx = np.mgrid[:N, :N]
    out = np.zeros((N, N))
    for _ in range(5):
        cy, cx = rng.uniform(10, N - 10, 2)
        out = np.maximum(out, np.exp(-0.5 * ((yy - cy) ** 2 + (xx - cx) ** 2) / 1.5**2))
    return contrast * out


@pytest.fixture(scope="module")
def stack():
    rng = np.random.default_rng(0)
    scene, beads = _scene(rng), _beads(rng)
    decay = np.geomspace(1, 0.1, 4)
    clean = np.stack([scene * d + (beads if t < 2 else 0) for t, d in enumerate(decay)])
    noisy = np.random.default_rng(1).poisson(clean * 100) / 100
    return noisy.astype(np.float32)


def test_only_the_frames_with_objects_are_found(stack):
    net = private_model("denoise-2d")
    layout = Layout("TYX", stack.shape, net)
    assert images_with_objects(stack, net, layout) == [True, True, False, False]
    # a channel axis or another kind is not served
    salt = private_model("salt-and-pepper")
    assert images_with_objects(stack, salt, Layout("TYX", stack.shape, salt)) == [False] * 4


def test_each_frame_is_restored_as_alone(stack):
    out = dn.restore(stack, "denoise-2d", axes="TYX", precision="float32")
    for t in range(len(stack)):
        alone = dn.restore(stack[t], "denoise-2d", precision="float32")
        np.testing.assert_array_equal(out[t], alone)
    # the frames without objects are restored in one pass with their own statistics,
    # not split with a range measured over the frames that have them
    plain = dn.restore(stack[2:], "denoise-2d", axes="TYX", precision="float32")
    np.testing.assert_allclose(out[2:], plain, atol=1e-6)  # tiles batched otherwise


def test_progress_spans_the_frames_and_cancel_stops(stack):
    seen = []
    dn.restore(
        stack,
        "denoise-2d",
        axes="TYX",
        precision="float32",
        progress=lambda d, t: seen.append((d, t)),
    )
    done = [d / t for d, t in seen]
    assert done == sorted(done) and done[-1] == 1.0
    assert len({t for _, t in seen}) >= 1
    gen = dn.restore_iter(stack, "denoise-2d", axes="TYX", precision="float32")
    next(gen)
    gen.close()  # a napari worker's quit: no error, nothing left running


def test_a_small_lazy_stack_restores_as_the_eager_one(stack):
    eager = dn.restore(stack, "denoise-2d", axes="TYX", precision="float32")
    lazy = dn.restore(
        da.from_array(stack, chunks=(1, 48, 48)), "denoise-2d", axes="TYX", precision="float32"
    )
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-6)


def test_deconvolution_stacks_too():
    rng = np.random.default_rng(2)
    scene, beads = _scene(rng), _beads(rng)
    psf = dn.make_psf("gaussian", sigma=1.2, ndim=2)
    from scipy import ndimage

    clean = np.stack([scene * 0.3, scene + beads])
    blurred = np.stack([ndimage.convolve(c, psf, mode="reflect") for c in clean])
    noisy = (rng.poisson(blurred * 200) / 200).astype(np.float32)
    out = dn.restore(noisy, "deconv-2d", psf=psf, axes="TYX", precision="float32")
    for t in range(2):
        alone = dn.restore(noisy[t], "deconv-2d", psf=psf, precision="float32")
        np.testing.assert_array_equal(out[t], alone)


def test_the_restore_widget_restores_such_a_stack_frame_by_frame(stack, make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    widget.device.value = "cpu"
    viewer.add_image(stack, name="lapse")
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    out = viewer.layers["lapse [denoise-2d]"].data
    assert out.shape == stack.shape
    for t in (0, 3):  # a frame with objects, one without: each as alone
        alone = dn.restore(stack[t], "denoise-2d", device="cpu")
        np.testing.assert_allclose(out[t], alone, atol=1e-5 * np.ptp(alone))


def test_channels_are_images_too():
    """Two fluorescence channels, beads in one: the channel axis used to keep the
    whole image out of the two ranges (the beads' channel lost 11.3 dB around
    them against that channel restored alone, 30.5 for 41.8; session 39)."""
    rng = np.random.default_rng(4)
    scene, other, beads = _scene(rng), _scene(rng), _beads(rng)
    clean = np.stack([scene + beads, other])
    noisy = (rng.poisson(clean * 200) / 200).astype(np.float32)
    out = dn.restore(noisy, "denoise-2d", axes="CYX", precision="float32")
    for c in range(2):
        alone = dn.restore(noisy[c], "denoise-2d", precision="float32")
        np.testing.assert_array_equal(out[c], alone)
    lazy = dn.restore(
        da.from_array(noisy, chunks=(1, 48, 48)), "denoise-2d", axes="CYX", precision="float32"
    )
    np.testing.assert_allclose(lazy.compute(), out, atol=1e-6)
