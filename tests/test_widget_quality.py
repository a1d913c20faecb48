"""The Quality dock widget in a real (headless) napari viewer."""

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.widgets import quality as quality_module
from napari_deconvnet.widgets.quality import CURRENT, PLANES, VOLUME, QualityWidget

TIMEOUT_MS = 60_000


def _wait_until_idle(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)


@pytest.fixture
def viewer_widget(make_napari_viewer, qtbot):
    """A viewer with the Quality widget docked through the npe2 manifest."""
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Quality")
    assert isinstance(widget, QualityWidget)
    yield viewer, widget
    if widget.worker is not None:
        widget.worker.quit()
        _wait_until_idle(qtbot, widget)


@pytest.fixture
def errors(monkeypatch):
    messages = []
    monkeypatch.setattr(quality_module, "show_error", messages.append)
    return messages


def _pair(shape, sigma=0.1, seed=0):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    clean = (0.5 + 0.4 * np.sin(5 * sum(grids))).astype(np.float32)
    return (clean + sigma * rng.standard_normal(shape)).astype(np.float32), clean


def test_ssim_overlay_equals_dn_ssim(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    noisy, clean = _pair((96, 128))
    viewer.add_image(noisy, name="noisy", scale=(2, 0.5), translate=(10, -5))
    viewer.add_image(clean, name="clean", scale=(2, 0.5), translate=(10, -5))
    widget.result.value = viewer.layers["noisy"]
    widget.reference.value = viewer.layers["clean"]
    assert widget.scope.native.isHidden()  # 2D: nothing to choose

    widget.compute()
    _wait_until_idle(qtbot, widget)

    assert errors == []
    layer = viewer.layers["SSIM noisy vs clean"]
    score, smap = dn.ssim(noisy, clean, full=True)
    np.testing.assert_allclose(layer.data, smap, atol=1e-6)
    np.testing.assert_array_equal(layer.scale, (2, 0.5))
    np.testing.assert_array_equal(layer.translate, (10, -5))
    assert layer.blending == "additive" and 0 < layer.opacity < 1
    assert tuple(layer.contrast_limits) == (0.0, 1.0)
    assert layer.colormap.name == "SSIM (bright = low)"
    meta = layer.metadata["napari_deconvnet"]
    assert meta["ssim"] == pytest.approx(score, abs=1e-9)
    assert meta["psnr"] == pytest.approx(dn.psnr(noisy, clean), abs=1e-9)
    assert meta["data_range"] == pytest.approx(float(clean.max()) - float(clean.min()))
    assert (meta["result"], meta["reference"]) == ("noisy", "clean")
    assert f"SSIM {score:.4f}" in widget.status.value and "dB" in widget.status.value

    # computing again updates the same layer instead of piling up copies
    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert [la.name for la in viewer.layers].count("SSIM noisy vs clean") == 1


def test_several_results_in_a_table(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    noisy, clean = _pair((64, 64), sigma=0.2)
    better = (clean + 0.5 * (noisy - clean)).astype(np.float32)
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(better, name="better")
    viewer.add_image(clean, name="clean")
    widget.result.value = viewer.layers["better"]
    widget.reference.value = viewer.layers["clean"]
    widget.others.value = [viewer.layers["noisy"]]
    widget.compute()
    _wait_until_idle(qtbot, widget)

    assert errors == []
    table = widget.table.value
    assert list(table["index"]) == ["better", "noisy"]
    for row, image in zip(table["data"], (better, noisy), strict=True):
        assert row[0] == pytest.approx(dn.ssim(image, clean), abs=1e-4)
        assert row[1] == pytest.approx(dn.psnr(image, clean), abs=0.01)
    assert table["data"][0][0] > table["data"][1][0]
    compared = viewer.layers["SSIM better vs clean"].metadata["napari_deconvnet"]["compared"]
    assert set(compared) == {"better", "noisy"}


def test_manual_data_range(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    noisy, clean = _pair((48, 48))
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    assert widget.data_range.native.isHidden()
    widget.auto_range.value = False
    assert not widget.data_range.native.isHidden()
    widget.data_range.value = 0.0
    widget.compute()
    assert widget.worker is None and "data_range must be a finite number > 0" in errors[-1]
    widget.data_range.value = 2.0
    widget.compute()
    _wait_until_idle(qtbot, widget)
    layer = viewer.layers["SSIM noisy vs clean"]
    np.testing.assert_allclose(
        layer.data, dn.ssim(noisy, clean, data_range=2.0, full=True)[1], atol=1e-6
    )
    assert layer.metadata["napari_deconvnet"]["data_range"] == 2.0


def test_mismatched_shapes_are_notified(viewer_widget, errors):
    viewer, widget = viewer_widget
    viewer.add_image(np.zeros((32, 32), np.float32), name="a")
    viewer.add_image(np.zeros((32, 40), np.float32), name="b")
    widget.result.value, widget.reference.value = viewer.layers["a"], viewer.layers["b"]
    widget.compute()
    assert widget.worker is None
    assert "must match" in errors[-1] and "(32, 40)" in errors[-1]
    assert len(viewer.layers) == 2


def test_constant_reference_with_auto_range_is_notified(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    viewer.add_image(np.random.default_rng(0).random((32, 32)).astype(np.float32), name="a")
    viewer.add_image(np.ones((32, 32), np.float32), name="flat")
    widget.result.value, widget.reference.value = viewer.layers["a"], viewer.layers["flat"]
    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert len(errors) == 1 and "constant" in errors[0] and "data range" in errors[0]
    assert widget.status.value == "failed"


def test_volume_current_slice_follows_the_sliders(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    noisy, clean = _pair((6, 40, 48))
    viewer.add_image(noisy, name="noisy", scale=(3, 1, 1))
    viewer.add_image(clean, name="clean", scale=(3, 1, 1))
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    assert not widget.scope.native.isHidden()
    widget.scope.value = CURRENT
    viewer.dims.set_current_step(0, 2)

    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    layer = viewer.layers["SSIM noisy vs clean"]
    span = float(clean.max()) - float(clean.min())  # the whole reference's range, for every slice
    assert layer.data.shape == (1, 40, 48)
    np.testing.assert_allclose(
        layer.data[0], dn.ssim(noisy[2], clean[2], data_range=span, full=True)[1], atol=1e-6
    )
    assert layer.translate[0] == pytest.approx(2 * 3)
    assert layer.metadata["napari_deconvnet"]["index"] == [2]

    viewer.dims.set_current_step(0, 4)
    qtbot.waitUntil(
        lambda: layer.metadata["napari_deconvnet"]["index"] == [4] and widget.worker is None,
        timeout=TIMEOUT_MS,
    )
    np.testing.assert_allclose(
        layer.data[0], dn.ssim(noisy[4], clean[4], data_range=span, full=True)[1], atol=1e-6
    )
    assert layer.translate[0] == pytest.approx(4 * 3)
    assert layer in viewer.layers and len(viewer.layers) == 3


def test_volume_every_slice_and_3d(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    noisy, clean = _pair((12, 32, 36))
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    span = float(clean.max()) - float(clean.min())

    widget.scope.value = PLANES
    widget.compute()
    _wait_until_idle(qtbot, widget)
    layer = viewer.layers["SSIM noisy vs clean"]
    planes = [dn.ssim(n, c, data_range=span, full=True) for n, c in zip(noisy, clean, strict=True)]
    np.testing.assert_allclose(layer.data, np.stack([m for _, m in planes]), atol=1e-6)
    meta = layer.metadata["napari_deconvnet"]
    assert meta["ssim"] == pytest.approx(np.mean([s for s, _ in planes]), abs=1e-6)
    assert meta["psnr"] == pytest.approx(dn.psnr(noisy, clean, data_range=span), abs=1e-4)

    widget.scope.value = VOLUME
    widget.compute()
    _wait_until_idle(qtbot, widget)
    score, smap = dn.ssim(noisy, clean, data_range=span, full=True)
    np.testing.assert_allclose(layer.data, smap, atol=1e-6)
    assert layer.metadata["napari_deconvnet"]["ssim"] == pytest.approx(score, abs=1e-6)
    assert errors == []


def test_rgb_layers_give_a_mean_map(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(0)
    clean = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    layer = viewer.layers["SSIM noisy vs clean"]
    score, smap = dn.ssim(noisy, clean, channel_axis=-1, full=True)
    np.testing.assert_allclose(layer.data, smap.mean(axis=-1), atol=1e-6)
    assert layer.metadata["napari_deconvnet"]["ssim"] == pytest.approx(score, abs=1e-9)
    assert layer.metadata["napari_deconvnet"]["data_range"] == 255.0


# ------------------------------------------------------------- defaults


def test_defaults_restored_result_and_clean_reference(viewer_widget):
    from napari_deconvnet.core.provenance import layer_metadata, record

    viewer, widget = viewer_widget
    noisy, clean = _pair((32, 32))
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    restored = layer_metadata(record("restore", model="denoise-2d", source="noisy"))
    viewer.add_image((noisy + clean) / 2, name="noisy restored", metadata=restored)
    assert widget.result.value is viewer.layers["noisy restored"]
    assert widget.reference.value is viewer.layers["clean"]
    # a newer restoration becomes the result; the reference stays
    viewer.add_image(clean + 0.01, name="noisy restored (2)", metadata=restored)
    assert widget.result.value is viewer.layers["noisy restored (2)"]
    assert widget.reference.value is viewer.layers["clean"]
    # what the user chooses stays chosen as layers come
    widget.result.value = viewer.layers["noisy"]
    viewer.add_image(clean, name="other restored", metadata=restored)
    assert widget.result.value is viewer.layers["noisy"]
    assert widget.reference.value is viewer.layers["clean"]


def test_default_reference_is_never_the_result(viewer_widget):
    viewer, widget = viewer_widget
    noisy, clean = _pair((32, 32))
    viewer.add_image(clean, name="cells 2", metadata={"napari_deconvnet": {"clean": True}})
    viewer.add_image(noisy, name="cells")
    viewer.add_image(noisy, name="GT-ish? no", visible=False)
    # nothing restored: the first layer that does not look like a reference
    assert widget.result.value is viewer.layers["cells"]
    assert widget.reference.value is viewer.layers["cells 2"]
    assert widget.reference.value is not widget.result.value
    widget.result.value = viewer.layers["cells"]
    viewer.add_image(noisy, name="more")
    assert widget.reference.value is not widget.result.value


def test_sample_layers_get_the_clean_reference(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-deconvnet", "noisy_camera")
    widget = QualityWidget(viewer)
    assert "clean" in widget.reference.value.name
    assert widget.result.value is not widget.reference.value


# ------------------------------------------------------- widget == CLI


def _cli_report(*args):
    import json
    from contextlib import redirect_stdout
    from io import StringIO

    from napari_deconvnet.cli import main

    out = StringIO()
    with redirect_stdout(out):
        assert main(["evaluate", *map(str, args), "--json", "-q"]) == 0
    return json.loads(out.getvalue())


@pytest.mark.parametrize(
    "shape, per", [((2, 3, 24, 28), "auto"), ((12, 20, 24), "volume")], ids=["TZYX", "ZYX"]
)
def test_widget_and_cli_evaluate_agree_with_dn_measure(
    viewer_widget, qtbot, errors, tmp_path, shape, per
):
    import tifffile

    viewer, widget = viewer_widget
    noisy, clean = _pair(shape, seed=3)
    tifffile.imwrite(tmp_path / "noisy.tif", noisy, photometric="minisblack")
    tifffile.imwrite(tmp_path / "clean.tif", clean, photometric="minisblack")
    report = _cli_report(tmp_path / "noisy.tif", tmp_path / "clean.tif", "--per", per)

    viewer.open(tmp_path / "noisy.tif", plugin="napari-deconvnet")
    viewer.open(tmp_path / "clean.tif", plugin="napari-deconvnet")
    widget.result.value = viewer.layers["noisy"]
    widget.reference.value = viewer.layers["clean"]
    widget.scope.value = per
    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    meta = viewer.layers["SSIM noisy vs clean"].metadata["napari_deconvnet"]

    expected = dn.measure(noisy, clean, per=per)
    assert expected.per == ("slice" if len(shape) == 4 else "volume")
    for found in (report, meta):
        assert found["ssim"] == pytest.approx(expected.ssim, abs=1e-6)
        assert found["psnr"] == pytest.approx(expected.psnr, abs=1e-6)
        assert found["per"] == expected.per and found["data_range"] == expected.data_range
    assert meta["operation"] == "measure"
    np.testing.assert_array_equal(viewer.layers["SSIM noisy vs clean"].data, expected.ssim_map)


# ------------------------------------------------------- worker (run, cancel)


def _gated(monkeypatch, gate, first_free=0):
    """Replace the worker body with the real one that waits for `gate` after `first_free` calls."""
    real, calls = quality_module.measure, []

    def measure(*args, **kwargs):
        calls.append(tuple(kwargs["index"]))
        if len(calls) > first_free:
            assert gate.wait(TIMEOUT_MS / 1000)
        return (yield from real(*args, **kwargs))

    monkeypatch.setattr(quality_module, "measure", measure)
    return calls


def test_cancel_adds_nothing_and_measure_works_again(viewer_widget, qtbot, errors, monkeypatch):
    import threading

    viewer, widget = viewer_widget
    noisy, clean = _pair((32, 32))
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    gate = threading.Event()
    calls = _gated(monkeypatch, gate)
    assert widget.run_button.text == "Measure" and not widget.cancel_button.enabled

    widget.compute()
    assert not widget.run_button.enabled and widget.cancel_button.enabled
    widget.cancel()
    gate.set()
    _wait_until_idle(qtbot, widget)
    assert [layer.name for layer in viewer.layers] == ["noisy", "clean"]
    assert widget.status.value == "cancelled" and errors == []
    assert widget.run_button.enabled and not widget.cancel_button.enabled

    widget.run_button.clicked.emit()  # the Measure button
    _wait_until_idle(qtbot, widget)
    layer = viewer.layers["SSIM noisy vs clean"]
    np.testing.assert_allclose(layer.data, dn.ssim(noisy, clean, full=True)[1], atol=1e-6)
    assert widget.status.value.startswith("SSIM ") and calls[-1] == ()


def test_deleting_the_result_stops_the_measurement(viewer_widget, qtbot, errors, monkeypatch):
    import threading

    viewer, widget = viewer_widget
    noisy, clean = _pair((32, 32))
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    gate = threading.Event()
    _gated(monkeypatch, gate)
    widget.compute()
    viewer.layers.remove("noisy")
    gate.set()
    _wait_until_idle(qtbot, widget)
    assert [layer.name for layer in viewer.layers] == ["clean"]
    assert len(errors) == 1 and "'noisy' was deleted" in errors[0]
    assert errors[0].startswith("Quality: ") and widget.status.value.startswith("stopped")


def _at_slice_2(viewer, widget, shape):
    """A noisy and a clean volume chosen as result and reference, measured at the
    current slice, the sliders at plane 2."""
    noisy, clean = _pair(shape)
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    widget.scope.value = CURRENT
    viewer.dims.set_current_step(0, 2)
    return noisy, clean


def test_slice_moved_while_measuring_is_measured_after(viewer_widget, qtbot, errors, monkeypatch):
    import threading

    viewer, widget = viewer_widget
    noisy, clean = _at_slice_2(viewer, widget, (6, 24, 28))
    gate = threading.Event()
    calls = _gated(monkeypatch, gate, first_free=1)
    widget.compute()
    _wait_until_idle(qtbot, widget)
    layer = viewer.layers["SSIM noisy vs clean"]

    viewer.dims.set_current_step(0, 3)  # measured (waits for the gate)
    assert widget.worker is not None
    viewer.dims.set_current_step(0, 4)  # while measuring: once that one ends
    viewer.dims.set_current_step(0, 5)
    gate.set()
    qtbot.waitUntil(
        lambda: layer.metadata["napari_deconvnet"]["index"] == [5] and widget.worker is None,
        timeout=TIMEOUT_MS,
    )
    assert calls == [(2,), (3,), (5,)] and errors == []
    span = float(clean.max()) - float(clean.min())
    np.testing.assert_allclose(
        layer.data[0], dn.ssim(noisy[5], clean[5], data_range=span, full=True)[1], atol=1e-6
    )


def test_channels_of_a_labelled_layer_in_their_own_ranges(viewer_widget, qtbot, errors):
    """A c-labelled two-channel pair: every slice, and the current slice of each
    channel, in that channel's range (as dn.measure with axes CYX)."""
    viewer, widget = viewer_widget
    rng = np.random.default_rng(1)
    clean = np.stack([rng.random((40, 40)) * 800 + 20, rng.random((40, 40)) * 36 + 5])
    clean = clean.astype(np.float32)
    noisy = (clean + rng.normal(0, 3, clean.shape)).astype(np.float32)
    labels = ("c", "y", "x")
    viewer.add_image(noisy, name="noisy", axis_labels=labels)
    viewer.add_image(clean, name="clean", axis_labels=labels)
    widget.result.value, widget.reference.value = viewer.layers["noisy"], viewer.layers["clean"]
    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    record = viewer.layers["SSIM noisy vs clean"].metadata["napari_deconvnet"]
    m = dn.measure(noisy, clean, axes="CYX")
    assert record["psnr"] == pytest.approx(m.psnr) and record["ssim"] == pytest.approx(m.ssim)
    assert record["data_range"] == pytest.approx(list(m.data_range))
    widget.scope.value = CURRENT
    viewer.dims.set_current_step(0, 1)
    widget.compute()
    _wait_until_idle(qtbot, widget)
    layer = viewer.layers["SSIM noisy vs clean"]
    span = float(np.ptp(clean[1]))  # the dim channel's own range
    np.testing.assert_allclose(
        layer.data[0], dn.ssim(noisy[1], clean[1], data_range=span, full=True)[1], atol=1e-6
    )
    assert layer.metadata["napari_deconvnet"]["data_range"] == pytest.approx(span)


def test_measuring_again_takes_the_results_new_geometry(viewer_widget, qtbot, errors):
    """Session 67: the overlay reused for a new measurement followed the result's
    translate only: a result rescaled or rotated since left it covering another area."""
    viewer, widget = viewer_widget
    noisy, clean = _pair((64, 64))
    result = viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    widget.result.value, widget.reference.value = result, viewer.layers["clean"]
    widget.compute()
    _wait_until_idle(qtbot, widget)
    result.scale, result.translate, result.rotate = (0.5, 0.5), (3, 3), 30
    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    overlay = viewer.layers["SSIM noisy vs clean"]
    np.testing.assert_allclose(overlay.scale, (0.5, 0.5))
    np.testing.assert_allclose(overlay.translate, (3, 3))
    np.testing.assert_allclose(overlay.rotate, result.rotate)
    np.testing.assert_allclose(overlay.affine.affine_matrix, result.affine.affine_matrix)


def test_a_bad_also_compare_layer_is_named(viewer_widget, qtbot, errors):
    """Session 67: NaN in an 'Also compare' layer was reported as "measuring 'result'
    failed: x contains NaN" (the result was fine)."""
    viewer, widget = viewer_widget
    noisy, clean = _pair((64, 64))
    viewer.add_image(noisy, name="result")
    viewer.add_image(clean, name="clean")
    bad = viewer.add_image(np.where(noisy > 0.9, np.nan, noisy), name="nanlayer")
    widget.result.value, widget.reference.value = viewer.layers["result"], viewer.layers["clean"]
    widget.others.value = [bad]
    widget.compute()
    _wait_until_idle(qtbot, widget)
    assert errors and "'nanlayer' (in 'Also compare'): it contains NaN" in errors[-1]
    assert "x contains" not in errors[-1]


@pytest.mark.parametrize("removed", ["noisy", "clean"])
def test_following_stops_when_a_measured_layer_is_removed(viewer_widget, qtbot, errors, removed):
    """Session 70: with the followed result (or reference) removed, each slider step
    measured whatever else was chosen, or notified an error, though nothing was pressed."""
    viewer, widget = viewer_widget
    _at_slice_2(viewer, widget, (6, 40, 48))
    widget.compute()
    _wait_until_idle(qtbot, widget)
    overlay = viewer.layers["SSIM noisy vs clean"]
    before = overlay.data.copy()
    viewer.layers.remove(removed)
    for step in (3, 4, 5):
        viewer.dims.set_current_step(0, step)
        qtbot.wait(50)
        _wait_until_idle(qtbot, widget)
    assert errors == []
    assert overlay.metadata["napari_deconvnet"]["index"] == [2]
    np.testing.assert_array_equal(overlay.data, before)
