"""Restore and Noise widgets: axis labels (a t, y, x time-lapse is no volume), PSF layers
chosen as the PSF source, and NaN with salt-and-pepper's automatic extremes."""

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.widgets import noise as noise_module
from napari_deconvnet.widgets import restore as restore_module
from napari_deconvnet.widgets._methods import labelled_axes, plane_axes
from napari_deconvnet.widgets._psf import FROM_LAYER

TIMEOUT_MS = 120_000


def _movie():
    """Eight frames, the first bright: restoring across time would leak its brightness."""
    rng = np.random.default_rng(0)
    movie = np.full((8, 32, 32), 0.1, np.float32)
    movie[0] = 0.9
    return movie + rng.normal(0, 0.01, movie.shape).astype(np.float32)


def _wait(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)


@pytest.fixture
def errors(monkeypatch):
    messages = []
    monkeypatch.setattr(restore_module, "show_error", messages.append)
    monkeypatch.setattr(noise_module, "show_error", messages.append)
    return messages


@pytest.fixture
def dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    docked = []

    def add(name):
        _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", name)
        if hasattr(widget, "device"):
            widget.device.value = "cpu"
        docked.append(widget)
        return widget

    yield viewer, add
    for widget in docked:
        if widget.worker is not None:
            widget.worker.quit()
            _wait(qtbot, widget)


def _run(qtbot, widget, viewer):
    before = len(viewer.layers)
    widget.run()
    _wait(qtbot, widget)
    return viewer.layers[-1] if len(viewer.layers) > before else None


# ----------------------------------------------------------------- helpers


def test_labelled_axes_and_plane_axes(make_napari_viewer):
    viewer = make_napari_viewer()
    movie = viewer.add_image(np.zeros((3, 8, 8), np.float32), axis_labels=("t", "y", "x"))
    plain = viewer.add_image(np.zeros((3, 8, 8), np.float32))
    assert labelled_axes(movie) == "TYX"
    assert labelled_axes(plain) is None  # napari's "axis -3"... : guessed from the shape
    assert plane_axes("TYX") == "TYX" and plane_axes("ZYX") == "TYX"
    assert plane_axes("TZYX") == "TCYX" and plane_axes("TZCYX") is None


# ----------------------------------------------------------------- Restore


def test_restore_tyx_denoise_2d_frame_by_frame(dock, qtbot, errors):
    viewer, add = dock
    widget = add("Restore")
    movie = _movie()
    viewer.add_image(movie, name="movie", axis_labels=("t", "y", "x"))
    widget.image.value = viewer.layers["movie"]
    widget.method.value = "denoise-2d"
    out = _run(qtbot, widget, viewer)
    assert errors == []
    assert out.metadata["napari_deconvnet"]["axes"] == "TYX"
    expected = dn.restore(movie, "denoise-2d", axes="TYX", device="cpu")
    np.testing.assert_allclose(np.asarray(out.data), expected, atol=1e-4)


def test_restore_tyx_auto_choice_is_2d_and_uses_the_psf_layer(dock, qtbot, errors):
    viewer, add = dock
    widget = add("Restore")
    movie = _movie()
    psf = dn.make_psf("gaussian", (9, 9), sigma=1.5).astype(np.float32)
    viewer.add_image(movie, name="movie", axis_labels=("t", "y", "x"))
    viewer.add_image(psf, name="PSF")
    widget.image.value = viewer.layers["movie"]
    spec = widget.spec()
    assert spec.ndim == (2,) and spec.needs_psf  # never deconv-3d for a time-lapse
    assert widget.psf.source.value == FROM_LAYER and widget.psf.layer.value.name == "PSF"
    out = _run(qtbot, widget, viewer)
    assert errors == []
    meta = out.metadata["napari_deconvnet"]
    assert meta["axes"] == "TYX" and meta["psf"]["layer"] == "PSF"
    means = np.asarray(out.data).mean(axis=(1, 2))
    assert means[0] > 0.6 and np.all(means[1:] < 0.3)  # frames not mixed
    expected = dn.restore(movie, widget.method.value, psf=psf, axes="TYX", device="cpu")
    np.testing.assert_allclose(np.asarray(out.data), expected, atol=1e-4)


def test_restore_tyx_refuses_3d_model_and_3d_volume(dock, qtbot, errors):
    viewer, add = dock
    widget = add("Restore")
    layer = viewer.add_image(_movie(), name="movie", axis_labels=("t", "y", "x"))
    widget.image.value = layer
    widget.method.value = "denoise-3d"
    assert _run(qtbot, widget, viewer) is None  # nothing added
    assert len(errors) == 1 and "no Z axis" in errors[0] and "'TYX'" in errors[0]
    errors.clear()
    widget.method.value = "richardson-lucy"
    widget.mode.value = "3D volume"
    _run(qtbot, widget, viewer)
    assert len(errors) == 1 and "Z axis" in errors[0]


def test_a_six_d_layer_is_refused_in_napari_words_before_running(dock, qtbot, errors):
    # session 73: a model failed in the worker with "pass axes= with one letter per
    # dimension", which a napari user cannot do; classical methods said this up front
    viewer, add = dock
    widget = add("Restore")
    data = np.random.default_rng(0).random((2, 2, 2, 2, 16, 16)).astype(np.float32)
    widget.image.value = viewer.add_image(data, name="6d")
    for method in ("denoise-2d", "tv"):
        errors.clear()
        widget.method.value = method
        assert _run(qtbot, widget, viewer) is None  # nothing added
        assert len(errors) == 1 and "2-D to 5-D" in errors[0], errors
        assert "axes=" not in errors[0] and widget.worker is None


def test_restore_tyx_classical_plane_by_plane(dock, qtbot, errors):
    viewer, add = dock
    widget = add("Restore")
    movie = _movie()
    viewer.add_image(movie, name="movie", axis_labels=("t", "y", "x"))
    widget.image.value = viewer.layers["movie"]
    classical = [n for n, s in widget._methods.items() if s.kind != "model" and s.needs_psf]
    widget.method.value = classical[0]
    widget.psf.source.value = "gaussian"
    out = _run(qtbot, widget, viewer)
    assert errors == []
    assert out.metadata["napari_deconvnet"]["axes"] == "TYX"
    means = np.asarray(out.data).mean(axis=(1, 2))
    assert means[0] > 0.6 and np.all(means[1:] < 0.3)


def test_restore_tzyx_volumes_one_time_point_at_a_time(dock, qtbot, errors):
    # a labelled time-lapse of volumes: denoise-3d restores each time point as a
    # volume, never across time (the first time point is bright), and the 2D
    # denoiser restores its planes
    viewer, add = dock
    widget = add("Restore")
    rng = np.random.default_rng(1)
    movie = np.full((3, 8, 32, 32), 0.1, np.float32)
    movie[0] = 0.9
    movie += rng.normal(0, 0.01, movie.shape).astype(np.float32)
    viewer.add_image(movie, name="movie", axis_labels=("t", "z", "y", "x"))
    widget.image.value = viewer.layers["movie"]
    widget.method.value = "denoise-3d"
    out = _run(qtbot, widget, viewer)
    assert errors == []
    assert out.metadata["napari_deconvnet"]["axes"] == "TZYX"
    assert np.shape(out.data) == movie.shape
    expected = dn.restore(movie, "denoise-3d", axes="TZYX", device="cpu")
    np.testing.assert_allclose(np.asarray(out.data), expected, atol=1e-4)
    means = np.asarray(out.data).mean(axis=(1, 2, 3))
    assert means[0] > 0.6 and np.all(means[1:] < 0.3)  # time points not mixed
    widget.method.value = "denoise-2d"
    out = _run(qtbot, widget, viewer)
    assert errors == []
    assert out.metadata["napari_deconvnet"]["axes"] == "TZYX"
    expected = dn.restore(movie, "denoise-2d", axes="TZYX", device="cpu")
    np.testing.assert_allclose(np.asarray(out.data), expected, atol=1e-4)


def test_restore_unlabelled_volume_unchanged_and_psf_layer_used(dock, qtbot, errors):
    viewer, add = dock
    widget = add("Restore")
    rng = np.random.default_rng(0)
    vol = rng.random((8, 32, 32)).astype(np.float32)
    psf = dn.make_psf("gaussian", (5, 9, 9), sigma=(1, 1.5, 1.5)).astype(np.float32)
    viewer.add_image(vol, name="vol")
    viewer.add_image(psf, name="PSF")
    widget.image.value = viewer.layers["vol"]
    assert widget.method.value == "deconv-3d"
    assert widget.psf.source.value == FROM_LAYER and widget.psf.layer.value.name == "PSF"
    out = _run(qtbot, widget, viewer)
    assert errors == []
    meta = out.metadata["napari_deconvnet"]
    assert meta["psf"]["layer"] == "PSF" and meta["axes"] == "ZYX"
    expected = dn.restore(vol, "deconv-3d", psf=psf, device="cpu")
    np.testing.assert_allclose(np.asarray(out.data), expected, atol=1e-4)


def test_psf_source_by_hand_is_kept(dock, errors):
    viewer, add = dock
    widget = add("Restore")
    viewer.add_image(np.zeros((8, 32, 32), np.float32), name="vol")
    widget.psf.source.value = "airy"  # by hand, before any PSF layer
    viewer.add_image(dn.make_psf("gaussian", (9, 9), sigma=1.5), name="PSF")
    assert widget.psf.source.value == "airy"


def test_psf_source_follows_the_psf_layer(dock, errors):
    viewer, add = dock
    widget = add("Restore")
    default = widget.psf.source.value
    viewer.add_image(np.zeros((32, 32), np.float32), name="img")
    viewer.add_image(dn.make_psf("gaussian", (9, 9), sigma=1.5), name="PSF")
    assert widget.psf.source.value == FROM_LAYER
    viewer.layers.remove("PSF")
    assert widget.psf.source.value == default


# ------------------------------------------------------------------- Noise


def test_noise_tyx_refuses_3d_psf(dock, qtbot, errors):
    viewer, add = dock
    widget = add("Noise")
    layer = viewer.add_image(_movie(), name="movie", axis_labels=("t", "y", "x"))
    widget.image.value = layer
    widget.noise.value = "none"
    widget.psf.source.value = "gaussian"
    widget.psf.forms.set_values({"sigma": (2.0, 1.0, 1.0)})
    assert _run(qtbot, widget, viewer) is None  # nothing added
    assert len(errors) == 1 and "Z axis" in errors[0] and "'TYX'" in errors[0]


def test_noise_tyx_2d_psf_per_frame(dock, qtbot, errors):
    viewer, add = dock
    widget = add("Noise")
    movie = _movie()
    viewer.add_image(movie, name="movie", axis_labels=("t", "y", "x"))
    widget.image.value = viewer.layers["movie"]
    widget.noise.value = "none"
    widget.psf.source.value = "gaussian"
    widget.psf.forms.set_values({"sigma": 1.0})
    out = _run(qtbot, widget, viewer)
    assert errors == []
    assert out.metadata["napari_deconvnet"]["axes"] == "TYX"
    means = np.asarray(out.data).mean(axis=(1, 2))
    np.testing.assert_allclose(means, movie.mean(axis=(1, 2)), atol=0.02)


def test_noise_labelled_volume_blurs_a_psf_kind_in_3d(dock, qtbot, errors):
    # session 73: a z, y, x layer was blurred plane by plane with the kind's 2D default,
    # where `napari-deconvnet synthesize --psf gaussian` and synthesize_iter blur in 3D
    from napari_deconvnet.core.operations import drain, synthesize_iter

    viewer, add = dock
    widget = add("Noise")
    vol = _movie()
    viewer.add_image(vol, name="vol", axis_labels=("z", "y", "x"))
    widget.image.value = viewer.layers["vol"]
    widget.noise.value = "none"
    widget.psf.source.value = "gaussian"
    widget.psf.forms.set_values({"sigma": 1.0})
    out = _run(qtbot, widget, viewer)
    assert errors == []
    want = drain(synthesize_iter(vol, "none", psf={"kind": "gaussian", "sigma": 1.0}, axes="ZYX"))
    # (the widget crops the kernel to the layer's 8 planes: 2e-4 off)
    np.testing.assert_allclose(np.asarray(out.data), want, atol=1e-3)
    assert len(out.metadata["napari_deconvnet"]["psf"]["shape"]) == 3
    assert np.asarray(out.data)[1].mean() > 0.15  # the bright plane's light along Z


def test_noise_unlabelled_volume_3d_psf_unchanged(dock, qtbot, errors):
    viewer, add = dock
    widget = add("Noise")
    vol = _movie()
    viewer.add_image(vol, name="vol")
    widget.image.value = viewer.layers["vol"]
    widget.noise.value = "none"
    widget.psf.source.value = "gaussian"
    widget.psf.forms.set_values({"sigma": (2.0, 1.0, 1.0)})
    out = _run(qtbot, widget, viewer)
    assert errors == []
    means = np.asarray(out.data).mean(axis=(1, 2))
    assert means[1] > 0.15  # a volume: blurred along Z, as before
    assert "axes" not in out.metadata["napari_deconvnet"]


def test_noise_salt_and_pepper_nan_says_nan(dock, qtbot, errors):
    viewer, add = dock
    widget = add("Noise")
    data = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    data[2, 2] = np.nan
    layer = viewer.add_image(data, name="nan")
    widget.image.value = layer
    widget.noise.value = "salt-and-pepper"
    assert _run(qtbot, widget, viewer) is None
    assert len(errors) == 1 and "NaN or infinite" in errors[0], errors
