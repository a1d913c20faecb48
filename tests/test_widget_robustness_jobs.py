"""Jobs that fail in unusual ways, Quality's reference, re-opened SSIM maps, refused runs.

- A RuntimeError (torch's shape errors, ``torch.OutOfMemoryError``) inside a
  generator job is one notification with its own message, and the widget
  (or the reader) is usable again: superqt's generator worker would take it
  for a deleted worker and never end the job.
- Quality never measures a layer against itself.
- An SSIM map saved with the plugin's writer opens as one layer, not restored.
- A refused run does not leave the previous run's status line.
"""

import numpy as np
import pytest
import torch

from napari_deconvnet.io import reader, registry, restored_reader
from napari_deconvnet.widgets import quality as quality_module
from napari_deconvnet.widgets import restore as restore_module
from napari_deconvnet.widgets._common import JobError, guarded, original_error
from napari_deconvnet.widgets.quality import QualityWidget
from napari_deconvnet.widgets.restore import RestoreWidget

TIMEOUT_MS = 60_000
ERRORS = {
    "oom": (torch.OutOfMemoryError, "CUDA out of memory. Tried to allocate 2.00 GiB"),
    "runtime": (RuntimeError, "The size of tensor a (64) must match the size of tensor b (3)"),
}


def _image(shape, seed=0, sigma=0.1):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    clean = (0.5 + 0.4 * np.sin(6 * sum(grids))).astype(np.float32)
    return (clean + sigma * rng.standard_normal(shape)).astype(np.float32), clean


def _wait_until_idle(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)


def _dock(viewer, name, kind):
    _dock_widget, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", name)
    assert isinstance(widget, kind)
    return widget


@pytest.fixture
def errors(monkeypatch):
    """Messages the widgets send to napari's show_error."""
    messages = []
    for module in (restore_module, quality_module):
        monkeypatch.setattr(module, "show_error", messages.append)
    return messages


@pytest.fixture
def restore_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = _dock(viewer, "Restore", RestoreWidget)
    widget.device.value = "cpu"
    yield viewer, widget
    if widget.worker is not None:
        widget.worker.quit()
        _wait_until_idle(qtbot, widget)


@pytest.fixture
def quality_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = _dock(viewer, "Quality", QualityWidget)
    yield viewer, widget
    if widget.worker is not None:
        widget.worker.quit()
        _wait_until_idle(qtbot, widget)


def _fail_once(real, error):
    """A generator function like `real` whose first call raises `error` after one step."""
    calls = []

    def steps(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            yield 0, 1
            raise error[0](error[1])
        return (yield from real(*args, **kwargs))

    return steps


# ------------------------------------------------------------ 1: RuntimeError in a job


def test_guarded_rewraps_runtime_errors_only():
    def gen(kind):
        yield 1
        if kind == "runtime":
            raise RuntimeError("boom")
        if kind == "value":
            raise ValueError("bad")
        return "ok"

    def run(kind):
        steps = guarded(gen)(kind)
        next(steps)
        with pytest.raises(StopIteration) as stop:
            next(steps)
        return stop.value.value

    assert run("ok") == "ok"
    with pytest.raises(JobError) as info:
        run("runtime")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert str(original_error(info.value)) == "boom"
    with pytest.raises(ValueError, match="bad"):
        run("value")
    with pytest.raises(JobError, match="plain"):
        guarded(lambda: (_ for _ in ()).throw(RuntimeError("plain")) and None)()


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_runtime_error_in_restore_is_one_notification(
    restore_widget, qtbot, errors, monkeypatch, kind
):
    import napari_deconvnet.core.operations as operations

    viewer, widget = restore_widget
    monkeypatch.setattr(
        operations, "run_method_iter", _fail_once(operations.run_method_iter, ERRORS[kind])
    )
    data, _clean = _image((32, 32))
    viewer.add_image(data, name="img")
    widget.image.value = viewer.layers["img"]
    widget.run()
    assert widget.worker is not None
    _wait_until_idle(qtbot, widget)
    qtbot.wait(50)  # any late signal
    assert len(errors) == 1, errors
    assert ERRORS[kind][1] in errors[0] and "JobError" not in errors[0]
    assert widget.status.value == "failed" and widget.job is None
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert [layer.name for layer in viewer.layers] == ["img"]

    # usable again: the next run works
    widget.run()
    _wait_until_idle(qtbot, widget)
    assert len(errors) == 1, errors
    assert len(viewer.layers) == 2 and widget.run_button.enabled


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_runtime_error_in_quality_is_one_notification(
    quality_widget, qtbot, errors, monkeypatch, kind
):
    import napari_deconvnet.core.measurement as measurement

    viewer, widget = quality_widget
    monkeypatch.setattr(
        measurement, "measure_iter", _fail_once(measurement.measure_iter, ERRORS[kind])
    )
    noisy, clean = _image((32, 32))
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    widget.compute()
    _wait_until_idle(qtbot, widget)
    qtbot.wait(50)
    assert len(errors) == 1, errors
    assert ERRORS[kind][1] in errors[0] and errors[0].startswith("Quality: ")
    assert widget.status.value == "failed" and widget.run_button.enabled
    assert "SSIM noisy vs clean" not in viewer.layers

    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert len(errors) == 1, errors
    assert "SSIM noisy vs clean" in viewer.layers and widget.status.value.startswith("SSIM ")


@pytest.fixture
def reader_messages(monkeypatch):
    shown = []
    monkeypatch.setattr(
        restored_reader, "notify", lambda kind, message: shown.append((kind, message))
    )
    monkeypatch.setattr(reader.settings, "device", "cpu")
    registry.clear()
    yield shown
    registry.clear()


def test_runtime_error_in_the_readers_restore_is_one_notification(
    make_napari_viewer, qtbot, tmp_path, monkeypatch, reader_messages
):
    import tifffile

    viewer = make_napari_viewer()
    data, _clean = _image((48, 48))
    tifffile.imwrite(tmp_path / "noisy.tif", data)
    monkeypatch.setattr(
        restored_reader, "_restore_job", _fail_once(restored_reader._restore_job, ERRORS["oom"])
    )
    layers = viewer.open(str(tmp_path / "noisy.tif"), plugin="napari-deconvnet")
    assert [layer.name for layer in layers] == ["noisy"]
    qtbot.waitUntil(lambda: not restored_reader._jobs, timeout=TIMEOUT_MS)
    qtbot.wait(50)
    assert len(reader_messages) == 1, reader_messages
    kind, message = reader_messages[0]
    assert kind == "error" and ERRORS["oom"][1] in message and "JobError" not in message
    assert [layer.name for layer in viewer.layers] == ["noisy"]

    # the next file opens and restores normally
    viewer.layers.clear()
    viewer.open(str(tmp_path / "noisy.tif"), plugin="napari-deconvnet")
    qtbot.waitUntil(lambda: "noisy restored" in viewer.layers, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not restored_reader._jobs, timeout=TIMEOUT_MS)
    assert len(reader_messages) == 1


# ------------------------------------------------------------ 2: never the result itself


def test_single_layer_has_no_reference_and_is_not_measured(quality_widget, qtbot, errors):
    viewer, widget = quality_widget
    noisy, clean = _image((32, 32))
    viewer.add_image(noisy, name="res")
    assert widget.default_pair() == (viewer.layers["res"], None)
    assert widget.result.value is viewer.layers["res"] and widget.reference.value is None
    widget.compute()
    assert widget.worker is None and len(errors) == 1 and "reference" in errors[0]
    assert [layer.name for layer in viewer.layers] == ["res"]

    # the user picks the result itself as reference: refused, in words
    widget.reference.value = viewer.layers["res"]
    widget.compute()
    assert widget.worker is None and len(errors) == 2
    assert "the reference must be another layer than the result" in errors[1]
    assert [layer.name for layer in viewer.layers] == ["res"]


def test_deleting_the_reference_empties_it(quality_widget, qtbot, errors):
    viewer, widget = quality_widget
    noisy, clean = _image((32, 32))
    viewer.add_image(noisy, name="res")
    viewer.add_image(clean, name="clean")
    widget.result.value, widget.reference.value = viewer.layers["res"], viewer.layers["clean"]
    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert errors == [] and "SSIM res vs clean" in viewer.layers
    viewer.layers.remove("SSIM res vs clean")

    viewer.layers.remove("clean")
    assert widget.reference.value is None and widget.result.value is viewer.layers["res"]
    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert len(errors) == 1 and "reference" in errors[0]
    assert [layer.name for layer in viewer.layers] == ["res"]
    assert not widget.status.value.startswith("SSIM")

    # a new reference is picked up again
    viewer.add_image(clean, name="clean")
    assert widget.reference.value is viewer.layers["clean"]


# ------------------------------------------------------------ 3: SSIM maps are not restored


def test_is_result_skips_measurements():
    from napari_deconvnet.core.provenance import layer_metadata, record

    assert restored_reader._is_result(layer_metadata(record("measure", ssim=0.5, psnr=20.0)))
    assert restored_reader._is_result(layer_metadata(record("measure", metric="ssim")))
    assert restored_reader._is_result(layer_metadata(record("restore", method="wiener")))
    assert not restored_reader._is_result(layer_metadata(record("synthesize", sample="x")))
    assert not restored_reader._is_result({})


@pytest.mark.parametrize("name", ["ssim.tif", "ssim.ome.tif", "ssim.ome.zarr"])
def test_saved_ssim_map_opens_without_restoring(
    quality_widget, qtbot, tmp_path, errors, reader_messages, name
):
    viewer, widget = quality_widget
    noisy, clean = _image((32, 32))
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    widget.compute()
    _wait_until_idle(qtbot, widget)
    smap = viewer.layers["SSIM noisy vs clean"]
    viewer.layers.selection = {smap}
    path = tmp_path / name
    assert viewer.layers.save(str(path), selected=True, plugin="napari-deconvnet") == [str(path)]
    expected = np.asarray(smap.data)

    viewer.layers.clear()
    layers = viewer.open(str(path), plugin="napari-deconvnet")
    assert [layer.name for layer in layers] == ["SSIM noisy vs clean"]
    assert not restored_reader._jobs  # nothing restores in the background
    qtbot.wait(100)
    assert [layer.name for layer in viewer.layers] == ["SSIM noisy vs clean"]
    assert reader_messages == [] and errors == []
    opened = viewer.layers["SSIM noisy vs clean"]
    np.testing.assert_allclose(np.asarray(opened.data), expected)
    assert opened.metadata["napari_deconvnet"]["operation"] == "measure"


# ------------------------------------------------------------ 4: status after a refused run


def test_refused_run_replaces_the_previous_status(quality_widget, qtbot, errors):
    viewer, widget = quality_widget
    noisy, clean = _image((32, 32))
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    viewer.add_image(np.zeros((16, 16), np.float32), name="small")
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert widget.status.value.startswith("SSIM ")

    widget.reference.value = viewer.layers["small"]
    widget.compute()
    assert widget.worker is None and len(errors) == 1 and "must match" in errors[0]
    assert widget.status.value.startswith("not run: ") and "SSIM" not in widget.status.value
    assert len(widget.status.value) <= 90 and widget.progress.value == 0
    assert widget.run_button.enabled


def test_a_jobs_warnings_are_notifications(restore_widget, qtbot, errors, monkeypatch):
    # session 73: superqt catches a job's warnings and emits them on `warned`, to which
    # nothing was connected: a tile overlap too small for the model (seams of 0.13 of
    # the range) said nothing in napari, where the API warns
    import napari.utils.notifications as notifications

    import napari_deconvnet as dn

    shown = []
    monkeypatch.setattr(notifications, "show_warning", shown.append)
    viewer, widget = restore_widget
    noisy, _clean = _image((128, 128))
    layer = viewer.add_image(noisy, name="noisy")
    widget.image.value = layer
    widget._by_hand = True
    widget.method.value = "denoise-2d"
    widget.params.current.fields["tile"].value = 64
    widget.params.current.fields["overlap"].value = 2
    widget.run()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    np.testing.assert_allclose(
        viewer.layers[-1].data,
        dn.restore(noisy, "denoise-2d", tile=64, overlap=2, device="cpu"), atol=1e-5,
    )  # fmt: skip
    assert len(shown) == 1 and "overlap 2 is smaller than the receptive-field" in shown[0]
    # a warning of the package's own RunWarning class (also a RuntimeWarning) too
    from napari_deconvnet.core._validation import RunWarning
    from napari_deconvnet.widgets._common import relay_warning

    said = set()
    relay_warning(said, (RunWarning("found almost no impulses"), RunWarning, "x", 1, None, None))
    relay_warning(said, (RunWarning("found almost no impulses"), RunWarning, "x", 1, None, None))
    relay_warning(said, (RuntimeWarning("invalid value"), RuntimeWarning, "x", 1, None, None))
    assert shown[1:] == ["found almost no impulses"]  # once; NumPy's numerics are not shown
    # one per message whatever its numbers (per plane: 12 notifications for 12 frames),
    # and at most RELAYED_PER_JOB in all (review)
    for plane in range(12):
        note = f"{86 + plane} of 4096 pixels of clean are below 0 (lowest -0.{plane}3)"
        relay_warning(said, (UserWarning(note), UserWarning, "x", 1, None, None))
    assert shown[2:] == ["86 of 4096 pixels of clean are below 0 (lowest -0.03)"]
    for c in (0, 1):  # each channel's note is its own (review)
        note = f"the centre of channel {c}'s PSF lies off its middle pixel (Y +{c + 2}.0)"
        relay_warning(said, (UserWarning(note), UserWarning, "x", 1, None, None))
    assert [x[:29] for x in shown[3:]] == ["the centre of channel 0's PSF"]  # (3 shown)
    assert len(said) == 4  # the fourth logged, not shown
