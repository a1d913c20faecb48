"""The Restore dock widget in a real (headless) napari viewer."""

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.widgets import restore as restore_module
from napari_deconvnet.widgets.restore import BROWSE, RestoreWidget, axes_for

TIMEOUT_MS = 60_000


def _noisy(shape, seed=0):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    clean = 0.5 + 0.4 * np.sin(6 * sum(grids))
    return (clean + rng.normal(0, 0.1, shape)).astype(np.float32)


def _wait_until_idle(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)


@pytest.fixture
def viewer_widget(make_napari_viewer, qtbot):
    """A viewer with the Restore widget docked through the npe2 manifest."""
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    assert isinstance(widget, RestoreWidget)
    widget.device.value = "cpu"
    yield viewer, widget
    if widget.worker is not None:  # never leave a thread running into the next test
        widget.worker.quit()
        _wait_until_idle(qtbot, widget)


@pytest.fixture
def errors(monkeypatch):
    """Messages the widget sends to napari's show_error."""
    messages = []
    monkeypatch.setattr(restore_module, "show_error", messages.append)
    return messages


def test_restore_adds_layer_with_geometry_and_provenance(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    data = _noisy((64, 80))
    viewer.add_image(data, name="noisy", scale=(2, 0.5), translate=(10, -5), units=("nm", "nm"))
    assert widget.image.value is viewer.layers["noisy"]

    widget.run()
    assert widget.worker is not None
    assert not widget.run_button.enabled and widget.cancel_button.enabled
    _wait_until_idle(qtbot, widget)

    assert errors == []
    out = viewer.layers["noisy restored"]
    assert out.data.dtype == np.float32 and out.data.shape == data.shape
    np.testing.assert_allclose(out.data, dn.restore(data, "default", device="cpu"), atol=1e-5)
    np.testing.assert_array_equal(out.scale, (2, 0.5))
    np.testing.assert_array_equal(out.translate, (10, -5))
    assert tuple(str(u) for u in out.units) == tuple(str(u) for u in viewer.layers[0].units)
    low, high = out.contrast_limits
    assert out.data.min() <= low < high <= out.data.max()
    meta = out.metadata["napari_deconvnet"]
    assert meta["model"] == "default"
    assert meta["seconds"] > 0
    assert meta["source"] == "noisy"
    assert meta["device"] == "cpu"
    assert meta["axes"] == "YX"
    assert meta["version"] == dn.__version__
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert widget.progress.value == widget.progress.max

    # a second run adds another layer, it never overwrites the first
    widget.image.value = viewer.layers["noisy"]
    widget.run()
    _wait_until_idle(qtbot, widget)
    assert [layer.name for layer in viewer.layers] == [
        "noisy",
        "noisy restored",
        "noisy restored (2)",
    ]


def test_cancel_adds_nothing_and_is_ready_again(viewer_widget, qtbot, errors):
    from napari_deconvnet.core.tiling import plan_tiles

    viewer, widget = viewer_widget
    data = _noisy((128, 128))
    viewer.add_image(data, name="big")
    widget.tile.value = 8
    plan = plan_tiles(data.shape, dn.load_model("default"), tile=8)
    assert plan["n_tiles"] >= 3 * plan["batch_size"], "too few batches to cancel in between"

    widget.run()
    qtbot.waitUntil(lambda: widget.progress.value > 0, timeout=TIMEOUT_MS)
    assert widget.progress.value < widget.progress.max
    worker = widget.worker
    widget.cancel()
    assert worker.abort_requested
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert widget.progress.value == 0
    _wait_until_idle(qtbot, widget)
    qtbot.wait(50)  # let any late signal from the thread arrive

    assert [layer.name for layer in viewer.layers] == ["big"]
    assert errors == []
    assert widget.status.value == "cancelled"


def test_error_is_notified_and_viewer_keeps_working(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    viewer.add_image(np.ones((2, 2), np.float32), name="tiny")
    widget.run()
    _wait_until_idle(qtbot, widget)

    assert len(errors) == 1
    assert "tiny" in errors[0] and "smaller" in errors[0]
    assert [layer.name for layer in viewer.layers] == ["tiny"]
    assert widget.run_button.enabled

    viewer.add_image(_noisy((32, 40)), name="ok")
    widget.image.value = viewer.layers["ok"]
    widget.run()
    _wait_until_idle(qtbot, widget)
    assert "ok restored" in viewer.layers
    assert len(errors) == 1


def test_bad_choices_are_refused_before_any_work(viewer_widget, errors):
    viewer, widget = viewer_widget
    widget.run()
    assert widget.worker is None
    assert "no image layer" in errors[-1]

    viewer.add_image(_noisy((32, 40)), name="img")
    assert widget.model_file.native.isHidden()
    widget.model.value = BROWSE
    assert not widget.model_file.native.isHidden()  # shown on demand
    widget.run()
    assert widget.worker is None
    assert "no model file" in errors[-1]

    widget.model.value = "default"
    widget.mode.value = "3D volume"
    widget.run()
    assert widget.worker is None
    assert "3D volume" in errors[-1]


def test_model_file_from_disk(viewer_widget, qtbot, errors, tmp_path):
    viewer, widget = viewer_widget
    path = tmp_path / "mine.safetensors"
    dn.save_model(dn.load_model("default"), path)
    data = _noisy((32, 48))
    viewer.add_image(data, name="img")
    widget.model.value = BROWSE
    widget.model_file.value = path
    widget.run()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    out = viewer.layers["img restored"]
    assert out.metadata["napari_deconvnet"]["model"] == str(path)
    np.testing.assert_allclose(out.data, dn.restore(data, path, device="cpu"), atol=1e-5)


def test_rgb_layer_is_restored_per_sample(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    rgb = (np.random.default_rng(0).random((32, 40, 3)) * 255).astype(np.uint8)
    viewer.add_image(rgb, name="photo")
    assert viewer.layers["photo"].rgb
    widget.run()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    out = viewer.layers["photo restored"]
    assert out.rgb and out.data.shape == rgb.shape
    assert out.metadata["napari_deconvnet"]["axes"] == "YXS"
    np.testing.assert_allclose(
        out.data, dn.restore(rgb, "default", axes="YXS", device="cpu"), atol=1e-4
    )


def test_layer_choices_follow_the_viewer(viewer_widget):
    viewer, widget = viewer_widget
    assert widget.image.choices == ()
    a = viewer.add_image(np.zeros((16, 16), np.float32), name="a")
    viewer.add_labels(np.zeros((16, 16), np.int32), name="labels")
    b = viewer.add_image(np.zeros((16, 16), np.float32), name="b")
    assert widget.image.choices == (a, b)
    widget.image.value = b
    b.name = "renamed"
    assert widget.image.value is b
    assert widget.image.get_choice("renamed") is b
    viewer.layers.remove(b)
    assert widget.image.choices == (a,)
    assert widget.image.value is a


def test_sample_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-deconvnet", "noisy_camera")
    noisy, clean = viewer.layers["camera noisy"], viewer.layers["camera clean"]
    assert noisy.data.dtype == clean.data.dtype == np.float32
    assert 0 <= clean.data.min() and clean.data.max() <= 1
    assert abs(float(np.std(noisy.data - clean.data)) - 25 / 255) < 0.005


@pytest.mark.parametrize(
    "mode, ndim, rgb, expected",
    [
        ("auto", 2, False, None),
        ("auto", 3, False, None),
        ("auto", 3, True, "YXS"),
        ("2D slices", 2, False, "YX"),
        ("2D slices", 3, False, "ZYX"),
        ("2D slices", 4, True, "TYXS"),
        ("3D volume", 3, False, "ZYX"),
        ("3D volume", 4, False, "TZYX"),
        ("3D volume", 5, False, "TZCYX"),
        ("3D volume", 4, True, "ZYXS"),
    ],
)
def test_axes_for(mode, ndim, rgb, expected):
    assert axes_for(mode, ndim, rgb) == expected


def test_axes_for_refuses_impossible_modes():
    with pytest.raises(ValueError, match="3D volume"):
        axes_for("3D volume", 2)
    with pytest.raises(ValueError, match="2-D to 5-D"):
        axes_for("2D slices", 6)
    with pytest.raises(ValueError, match="unknown mode"):
        axes_for("4D", 2)


def test_closed_widget_stops_listening_to_the_viewer(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    with qtbot.waitSignal(widget.native.destroyed, timeout=5000):
        widget.native.deleteLater()  # as when the viewer's window is closed
    calls = []
    widget.reset_choices = lambda *_: calls.append(1)  # a dead Qt widget must not be touched
    viewer.add_image(np.zeros((8, 8), np.float32))
    assert calls == []


def test_demo_command_opens_the_sample_and_docks_restore(make_napari_viewer, monkeypatch):
    import napari

    from napari_deconvnet.cli import main

    viewers = []

    def make_viewer(**kwargs):
        viewers.append(make_napari_viewer(**kwargs))
        return viewers[-1]

    monkeypatch.setattr(napari, "Viewer", make_viewer)
    monkeypatch.setattr(napari, "run", lambda *args, **kwargs: None)
    assert main(["demo"]) == 0
    (viewer,) = viewers
    assert [layer.name for layer in viewer.layers] == ["camera noisy", "camera clean"]
    (widget,) = viewer.window.dock_widgets.values()
    assert isinstance(widget, RestoreWidget)
    assert widget.image.value is viewer.layers["camera noisy"]
