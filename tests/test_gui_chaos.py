"""GUI chaos: what a user does to the viewer while a job runs, with a real viewer.

Each case ends with a clear message (napari's show_error) or a clean stop,
never an exception in a Qt slot (pytest-qt fails the test on one) or a hang,
and the worker thread has ended. Jobs are made slow enough to be caught
running: Richardson-Lucy with many iterations, a worker body that runs until
it is stopped, or trainings with a long budget.
"""

import threading

import numpy as np
import pytest

from napari_deconvnet.io import registry
from napari_deconvnet.widgets import _worker
from napari_deconvnet.widgets import restore as restore_module
from napari_deconvnet.widgets import train as train_module
from napari_deconvnet.widgets.restore import RestoreWidget
from napari_deconvnet.widgets.train import TrainWidget

TIMEOUT_MS = 60_000


def _noisy(shape, seed=0):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    clean = 0.5 + 0.4 * np.sin(6 * sum(grids))
    return (clean + rng.normal(0, 0.1, shape)).astype(np.float32)


def _until_stopped(*_args, **_kwargs):
    """A worker body that runs (and reports progress) until its worker is stopped."""
    pause = threading.Event()
    step = 0
    while True:
        step += 1
        pause.wait(0.005)  # in the worker thread: keeps the GUI's signal queue short
        yield step % 100, 100


def _ended(worker):
    return not worker.is_running


@pytest.fixture
def errors(monkeypatch):
    messages = []
    monkeypatch.setattr(restore_module, "show_error", messages.append)
    monkeypatch.setattr(train_module, "show_error", messages.append)
    return messages


@pytest.fixture
def restore_dock(make_napari_viewer):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    assert isinstance(widget, RestoreWidget)
    widget.device.value = "cpu"
    viewer.add_image(_noisy((64, 64)), name="img")
    return viewer, dock, widget


@pytest.fixture
def train_dock(make_napari_viewer, monkeypatch):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Train")
    assert isinstance(widget, TrainWidget)
    widget.device.value = "cpu"
    widget.patch_size.value = 32
    widget.batch_size.value = 2
    widget.epochs.value = 10_000  # runs until stopped
    original = train_module._train_job

    def small_job(inputs, targets, options, *args):
        options = {**options, "steps_per_epoch": 2}
        if "network" in options:
            options["network"] = {**options["network"], "base_channels": 8}
        return (yield from original(inputs, targets, options, *args))

    monkeypatch.setattr(train_module, "_train_job", small_job)
    viewer.add_image(_noisy((64, 64), seed=1), name="a")
    viewer.add_image(_noisy((64, 64), seed=2), name="b")
    yield viewer, dock, widget
    registry.clear()


def _start_endless_restore(monkeypatch, qtbot, widget):
    monkeypatch.setattr(restore_module, "restore_job", _until_stopped)
    widget.run()
    worker = widget.worker
    assert worker is not None
    qtbot.waitUntil(lambda: widget.progress.value > 0, timeout=TIMEOUT_MS)
    return worker


# ------------------------------------------------------------------ Restore


def test_deleting_the_source_layer_stops_the_run(restore_dock, qtbot, errors, monkeypatch):
    viewer, _dock, widget = restore_dock
    worker = _start_endless_restore(monkeypatch, qtbot, widget)
    viewer.layers.remove("img")
    qtbot.waitUntil(lambda: _ended(worker) and widget.worker is None, timeout=TIMEOUT_MS)
    assert len(errors) == 1 and "'img' was deleted" in errors[0] and "stopped" in errors[0]
    assert len(viewer.layers) == 0
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert "deleted" in widget.status.value


def test_deleting_the_source_of_a_real_job_adds_nothing(restore_dock, qtbot, errors):
    viewer, _dock, widget = restore_dock
    widget.method.value = "richardson-lucy"
    widget.params.field("iterations").value = 10_000
    widget.run()
    worker = widget.worker
    qtbot.waitUntil(lambda: widget.progress.value > 0, timeout=TIMEOUT_MS)
    viewer.layers.remove("img")
    qtbot.waitUntil(lambda: _ended(worker) and widget.worker is None, timeout=TIMEOUT_MS)
    qtbot.wait(50)  # any late signal of the thread
    assert len(viewer.layers) == 0 and len(errors) == 1


def test_deleting_qualitys_reference_stops_the_measurement(make_napari_viewer, qtbot, monkeypatch):
    # session 73: only the result was the job's source; with the reference deleted the
    # SSIM map "vs" a layer gone was still added, without a word
    from napari_deconvnet.widgets import quality as quality_module

    messages = []
    monkeypatch.setattr(quality_module, "show_error", messages.append)
    monkeypatch.setattr(quality_module, "measure", _until_stopped)
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Quality")
    viewer.add_image(_noisy((64, 64), seed=1), name="result")
    viewer.add_image(_noisy((64, 64), seed=2), name="clean")
    widget.result.value, widget.reference.value = viewer.layers["result"], viewer.layers["clean"]
    widget.run()
    worker = widget.worker
    qtbot.waitUntil(lambda: widget.progress.value > 0, timeout=TIMEOUT_MS)
    viewer.layers.remove("clean")
    qtbot.waitUntil(lambda: _ended(worker) and widget.worker is None, timeout=TIMEOUT_MS)
    qtbot.wait(50)
    assert [layer.name for layer in viewer.layers] == ["result"]
    assert len(messages) == 1 and "'clean' was deleted" in messages[0]


def test_closing_the_dock_widget_stops_the_run(restore_dock, qtbot, errors, monkeypatch):
    viewer, dock, widget = restore_dock
    worker = _start_endless_restore(monkeypatch, qtbot, widget)
    viewer.window.remove_dock_widget(dock)
    qtbot.waitUntil(lambda: _ended(worker), timeout=TIMEOUT_MS)
    assert worker.abort_requested
    assert errors == [] and [layer.name for layer in viewer.layers] == ["img"]


def test_closing_the_viewer_stops_the_run(restore_dock, qtbot, errors, monkeypatch):
    viewer, _dock, widget = restore_dock
    worker = _start_endless_restore(monkeypatch, qtbot, widget)
    viewer.close()
    qtbot.waitUntil(lambda: _ended(worker), timeout=TIMEOUT_MS)
    qtbot.wait(50)  # any late signal
    # napari removes the layers before it closes the window: the job stops then
    assert worker.abort_requested and len(errors) == 1 and "'img' was deleted" in errors[0]


def test_pressing_run_twice_starts_one_job(restore_dock, qtbot, errors, monkeypatch):
    viewer, _dock, widget = restore_dock
    started = []
    real = _worker.make_worker

    def counting(*args, **kwargs):
        started.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(_worker, "make_worker", counting)
    widget.method.value = "median"
    widget.run_button.clicked.emit()  # what a click does
    first = widget.worker
    assert not widget.run_button.enabled  # a disabled button cannot be clicked again...
    widget.run()  # ...and a second call (a script, a shortcut) does nothing
    widget.run_button.clicked.emit()
    assert widget.worker is first and len(started) == 1
    qtbot.waitUntil(lambda: _ended(first) and widget.worker is None, timeout=TIMEOUT_MS)
    assert [layer.name for layer in viewer.layers] == ["img", "img [median]"]
    assert errors == [] and widget.run_button.enabled


def test_run_after_cancel_waits_for_the_worker(restore_dock, qtbot, errors, monkeypatch):
    _viewer, _dock, widget = restore_dock
    worker = _start_endless_restore(monkeypatch, qtbot, widget)
    widget.cancel()
    widget.run()  # the cancelled job may still be in its step: no second job
    assert widget.worker is worker and not widget.run_button.enabled
    qtbot.waitUntil(lambda: _ended(worker) and widget.worker is None, timeout=TIMEOUT_MS)
    assert widget.run_button.enabled and widget.status.value == "cancelled" and errors == []


# -------------------------------------------------------------------- Train


def _start_training(qtbot, widget):
    widget.image.value = widget._viewer.layers["a"]
    widget.train()
    worker = widget.worker
    assert worker is not None
    qtbot.waitUntil(lambda: "epoch" in widget.status.value, timeout=TIMEOUT_MS)
    return worker


def test_closing_the_viewer_stops_training(train_dock, qtbot, errors):
    viewer, _dock, widget = train_dock
    worker = _start_training(qtbot, widget)
    viewer.close()
    qtbot.waitUntil(lambda: _ended(worker), timeout=TIMEOUT_MS)
    assert errors == []


def test_closing_the_dock_stops_training(train_dock, qtbot, errors):
    viewer, dock, widget = train_dock
    worker = _start_training(qtbot, widget)
    viewer.window.remove_dock_widget(dock)
    qtbot.waitUntil(lambda: _ended(worker), timeout=TIMEOUT_MS)
    assert errors == [] and {layer.name for layer in viewer.layers} <= {"a", "b", "a preview"}


def test_changing_layers_during_training(train_dock, qtbot, errors):
    viewer, _dock, widget = train_dock
    worker = _start_training(qtbot, widget)
    widget.train()  # pressing Train again does nothing
    assert widget.worker is worker
    widget.image.value = viewer.layers["b"]  # another input...
    widget.dims.value = "3D"  # ...and settings change: the running job keeps its own
    viewer.add_image(_noisy((32, 32), seed=3), name="c")
    viewer.layers.remove("b")
    viewer.layers.move(0, 1)
    viewer.dims.set_point(0, 10.0)
    epoch = widget.status.value
    qtbot.waitUntil(lambda: widget.status.value != epoch, timeout=TIMEOUT_MS)
    viewer.layers.remove("a")  # the input itself: training goes on, previews stop
    epoch = widget.status.value
    qtbot.waitUntil(lambda: widget.status.value != epoch, timeout=TIMEOUT_MS)
    widget.stop()
    qtbot.waitUntil(lambda: _ended(worker) and widget.worker is None, timeout=TIMEOUT_MS)
    assert errors == []
    assert widget.result is not None and widget.result.model.config.ndim == 2
    assert widget.train_button.enabled
