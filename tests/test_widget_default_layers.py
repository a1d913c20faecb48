"""The layers each widget picks before the user does, whatever order they were opened in.

A PSF or a clean image opened first is napari's first layer; the pickers took it:
Restore offered to denoise the PSF, Quality scored the clean image against the
noisy one (session 63's user check of the widgets).
"""

import numpy as np
import pytest

import napari_deconvnet as dn

TIMEOUT_MS = 60_000


def _dock(viewer, name):
    return viewer.window.add_plugin_dock_widget("napari-deconvnet", name)[1]


def _viewer_with(make_napari_viewer, *, psf_name, psf_first):
    """A viewer with a volume ("stack") and a PSF opened in that order, and the stack."""
    viewer = make_napari_viewer()
    stack = np.random.default_rng(0).random((16, 48, 48)).astype(np.float32)
    psf = dn.make_psf("gaussian", shape=(9, 15, 15), sigma=(2.0, 1.5, 1.5))
    layers = [(psf, psf_name), (stack, "stack")]
    for data, name in layers if psf_first else layers[::-1]:
        viewer.add_image(data, name=name)
    return viewer, stack


def test_a_psf_opened_first_is_never_the_image_the_widgets_work_on(make_napari_viewer):
    viewer, _ = _viewer_with(make_napari_viewer, psf_name="psf", psf_first=True)
    restore = _dock(viewer, "Restore")
    assert restore.image.value is viewer.layers["stack"]
    # ... and with it the method a volume beside a PSF layer gets, with that PSF
    assert restore.method.value == "deconv-3d"
    assert restore.psf.layer.value is viewer.layers["psf"]
    assert _dock(viewer, "Noise").image.value is viewer.layers["stack"]
    assert _dock(viewer, "Train").image.value is viewer.layers["stack"]


def test_the_widgets_leave_a_psf_the_user_picked(make_napari_viewer):
    viewer, stack = _viewer_with(make_napari_viewer, psf_name="psf bead", psf_first=False)
    restore = _dock(viewer, "Restore")
    restore.image.value = viewer.layers["psf bead"]
    restore.image.native.activated.emit(1)  # as Qt signals a pick in the list
    viewer.add_image(stack[:8], name="another")  # the choices are read again
    assert restore.image.value is viewer.layers["psf bead"]


def test_quality_scores_the_noisy_layer_against_the_clean_one_opened_first(
    make_napari_viewer, qtbot
):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(1)
    clean = rng.random((64, 64)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.2, clean.shape)).astype(np.float32)
    viewer.add_image(clean, name="clean")
    viewer.add_image(noisy, name="noisy")
    quality = _dock(viewer, "Quality")
    assert quality.result.value is viewer.layers["noisy"]
    assert quality.reference.value is viewer.layers["clean"]
    quality.compute()
    qtbot.waitUntil(lambda: quality.worker is None, timeout=TIMEOUT_MS)
    meta = viewer.layers["SSIM noisy vs clean"].metadata["napari_deconvnet"]
    assert meta["ssim"] == pytest.approx(dn.ssim(noisy, clean), abs=1e-9)
    assert meta["psnr"] == pytest.approx(dn.psnr(noisy, clean), abs=1e-9)


def test_quality_scores_the_noise_widgets_result_against_its_clean_source(
    make_napari_viewer, qtbot
):
    # the Noise widget names its result after its source ("clean noisy (gaussian)"),
    # which read as a reference by its name: Quality scored the clean layer against it
    viewer = make_napari_viewer()
    clean = np.random.default_rng(2).random((64, 64)).astype(np.float32)
    viewer.add_image(clean, name="clean")
    noise = _dock(viewer, "Noise")
    noise.noise.value = "gaussian"
    noise.params.field("sigma").value = 0.1
    noise.run()
    qtbot.waitUntil(lambda: noise.worker is None, timeout=TIMEOUT_MS)
    noisy = viewer.layers["clean noisy (gaussian)"]
    quality = _dock(viewer, "Quality")
    assert quality.result.value is noisy
    assert quality.reference.value is viewer.layers["clean"]


def test_a_3d_psf_is_not_preselected_for_a_time_lapse(make_napari_viewer):
    # deconv-2d was preselected with the 3D PSF layer beside a t, y, x layer; Run refused it
    viewer = make_napari_viewer()
    psf = dn.make_psf("gaussian", shape=(9, 15, 15), sigma=(2.0, 1.5, 1.5))
    viewer.add_image(psf, name="psf")
    frames = np.random.default_rng(0).random((6, 48, 48)).astype(np.float32)
    viewer.add_image(frames, name="frames", axis_labels=("t", "y", "x"))
    restore = _dock(viewer, "Restore")
    assert restore.image.value is viewer.layers["frames"]
    assert not restore.method.value.startswith("deconv")
    volume = np.random.default_rng(1).random((16, 48, 48)).astype(np.float32)
    viewer.add_image(volume, name="volume")
    restore.image.value = viewer.layers["volume"]
    assert restore.method.value == "deconv-3d"
    assert restore.psf.layer.value is viewer.layers["psf"]
