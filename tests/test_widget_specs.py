"""The widgets render the specs: an operation registered in a test alone is offered and runs.

A classical method, a noise model and a PSF kind are registered by fixtures
(and unregistered after); the Restore and Noise widgets list them, render
their parameters (label, default) and run them through the core's
generators, with exact results. Also: the method preselected for a layer and
the viewer, and the PSF pickers' defaults (the PSF spec's).
"""

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.core.operations import drain, synthesize_iter
from napari_deconvnet.core.specs import Param, Spec, list_psfs, register, unregister
from napari_deconvnet.widgets import noise as noise_module
from napari_deconvnet.widgets import restore as restore_module
from napari_deconvnet.widgets._forms import ParamForm, param_widget
from napari_deconvnet.widgets._psf import build_psf

TIMEOUT_MS = 60_000


def _scale(image, *, factor=2.0, negate=False):
    return image * (-factor if negate else factor)


def _shift_noise(clean, rng, *, amount=0.5, how="add"):
    return clean + amount if how == "add" else clean * amount


def _box(shape=None, *, width=3):
    return np.ones(shape if shape is not None else (width, width))


@pytest.fixture
def scale_method():
    spec = register(
        Spec(
            "method",
            "scale-by-test",
            "Multiply every pixel by a factor (registered by a test).",
            params=(
                Param("factor", "float", 2.0, low=0.0, high=10.0, label="Scale factor", help="x"),
                Param("negate", "bool", False, label="Negate", help="Flip the sign"),
            ),
            function=_scale,
            kind="classical",
            ndim=(2,),
        )
    )
    yield spec
    unregister("method", spec.name)


@pytest.fixture
def shift_noise():
    spec = register(
        Spec(
            "noise",
            "shift-test",
            "Add (or multiply by) a constant (registered by a test).",
            params=(
                Param("amount", "float", 0.5, low=0.0, label="Shift amount", help="Added"),
                Param("how", "choice", "add", choices=("add", "multiply"), label="How"),
            ),
            function=_shift_noise,
        )
    )
    yield spec
    unregister("noise", spec.name)


@pytest.fixture
def box_psf():
    spec = register(
        Spec(
            "psf",
            "box-test",
            "A flat square (registered by a test).",
            params=(Param("width", "int", 3, low=1, high=15, label="Box width", help="Pixels"),),
            function=_box,
            ndim=(2,),
        )
    )
    yield spec
    unregister("psf", spec.name)


@pytest.fixture
def errors(monkeypatch):
    messages = []
    monkeypatch.setattr(restore_module, "show_error", messages.append)
    monkeypatch.setattr(noise_module, "show_error", messages.append)
    return messages


def _dock(viewer, name):
    _dock_widget, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", name)
    return widget


def _wait(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)


def _image(shape=(24, 32), seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


# ------------------------------------------------------------------ forms


def test_fields_are_rendered_from_params(qtbot):
    spin = param_widget(Param("sigma", "float", 0.0123, low=0.0, high=5.0, label="Sigma"))
    assert spin.label == "Sigma" and (spin.min, spin.max) == (0.0, 5.0)
    assert spin.value == pytest.approx(0.0123)  # enough decimals for the default
    assert param_widget(Param("n", "int", 7, low=1, high=9)).value == 7
    assert param_widget(Param("on", "bool", True)).value is True
    combo = param_widget(Param("how", "choice", "b", choices=("a", "b")))
    assert combo.choices == ("a", "b") and combo.value == "b"
    auto = param_widget(Param("w", "float", None, optional=True, help="Weight"))
    assert auto.value == "" and "empty: automatic" in auto.tooltip

    spec = Spec(
        "method",
        "form-test",
        "",
        params=(
            Param("w", "float", None, low=0.0, optional=True, label="Weight"),
            Param("sigma", "floats", 1.0, low=0.0, label="Sigma"),
            Param("n", "int", 3, low=1, high=9),
        ),
    )
    form = ParamForm(spec)
    assert form.values() == {"w": None, "sigma": 1.0, "n": 3}
    form.set_values({"w": 0.25, "sigma": (2.0, 1.0, 1.0), "n": 5})
    assert form.fields["sigma"].value == "2, 1, 1"
    assert form.values() == {"w": 0.25, "sigma": (2.0, 1.0, 1.0), "n": 5}
    form.fields["w"].value = "-1"
    with pytest.raises(ValueError, match="^Weight: "):
        form.values()
    with pytest.raises(ValueError, match="does not take"):
        form.set_values({"nope": 1})
    form.reset()
    assert form.values() == spec.defaults()


# ------------------------------------------------- registered in the test


def test_a_registered_method_is_offered_rendered_and_run(
    make_napari_viewer, qtbot, errors, scale_method
):
    viewer = make_napari_viewer()
    widget = _dock(viewer, "Restore")
    assert "scale-by-test" in widget.method.choices
    image = _image()
    viewer.add_image(image, name="img", scale=(2, 3))
    widget.method.value = "scale-by-test"
    assert widget.description.value == scale_method.description
    form = widget.params.current
    assert list(form.fields) == ["factor", "negate"]
    assert form.fields["factor"].label == "Scale factor" and form.fields["factor"].value == 2.0
    assert form.fields["negate"].value is False
    assert widget.psf.native.isHidden()

    form.fields["factor"].value = 3.5
    widget.run()
    _wait(qtbot, widget)
    assert errors == []
    out = viewer.layers["img [scale-by-test]"]
    np.testing.assert_array_equal(out.data, image * 3.5)
    np.testing.assert_array_equal(out.scale, (2, 3))
    meta = out.metadata["napari_deconvnet"]
    assert meta["method"] == "scale-by-test" and meta["kind"] == "classical"
    assert meta["params"] == {"factor": 3.5, "negate": False, "mode": "auto"}

    form.fields["negate"].value = True
    widget.run()
    _wait(qtbot, widget)
    np.testing.assert_array_equal(viewer.layers["img [scale-by-test] (2)"].data, image * -3.5)


def test_a_registered_noise_model_is_offered_rendered_and_run(
    make_napari_viewer, qtbot, errors, shift_noise
):
    viewer = make_napari_viewer()
    widget = _dock(viewer, "Noise")
    assert "shift-test" in widget.noise.choices
    clean = _image((3, 16, 20))
    viewer.add_image(clean, name="clean")
    widget.noise.value = "shift-test"
    form = widget.params.current
    assert form.fields["amount"].label == "Shift amount" and form.fields["amount"].value == 0.5
    assert form.fields["how"].choices == ("add", "multiply")
    widget.params.set_values({"amount": 2.0, "how": "multiply"})

    widget.run()
    _wait(qtbot, widget)
    assert errors == []
    out = viewer.layers["clean noisy (shift-test)"]
    np.testing.assert_array_equal(out.data, clean * 2.0)
    meta = out.metadata["napari_deconvnet"]
    assert meta["noise"] == "shift-test" and meta["params"] == {"amount": 2.0, "how": "multiply"}
    assert widget.progress.max == 3  # one step per plane, the core's


def test_a_registered_psf_kind_is_offered_in_both_pickers_and_used(
    make_napari_viewer, qtbot, errors, box_psf
):
    viewer = make_napari_viewer()
    restore, noise = _dock(viewer, "Restore"), _dock(viewer, "Noise")
    restore.method.value = "wiener"
    for picker in (restore.psf, noise.psf):
        assert "box-test" in picker.source.choices
        picker.source.value = "box-test"
        field = picker.forms.current.fields["width"]
        assert field.label == "Box width" and field.value == 3

    clean = _image((32, 32))
    viewer.add_image(clean, name="clean")
    noise.noise.value = "none"
    noise.psf.forms.field("width").value = 5
    noise.run()
    _wait(qtbot, noise)
    assert errors == []
    out = viewer.layers["clean noisy (none)"]
    expected = dn.synthesize(clean, None, psf=np.ones((5, 5)))
    np.testing.assert_allclose(out.data, expected, atol=1e-6)
    assert out.metadata["napari_deconvnet"]["psf"] == {
        "kind": "box-test",
        "width": 5,
        "shape": [5, 5],
    }


# ------------------------------------------------------------- defaults


@pytest.mark.parametrize(
    "sample, expected",
    [("volume", "deconv-3d"), ("blurred", "deconv-2d"), ("noisy_camera", "denoise-2d")],
)
def test_restore_preselects_the_method_that_fits_the_sample(make_napari_viewer, sample, expected):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-deconvnet", sample)
    widget = _dock(viewer, "Restore")
    assert widget.image.value is viewer.layers[0]  # the degraded layer
    assert widget.method.value == expected


def test_preselection_follows_the_layer_until_a_method_is_picked(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = _dock(viewer, "Restore")
    assert widget.method.value == "denoise-2d"
    volume = viewer.add_image(_image((6, 24, 24)), name="volume")
    assert widget.method.value == "denoise-2d"  # a volume without a PSF: planes
    viewer.add_image(dn.make_psf("gaussian", (5, 5, 5)), name="psf")
    plane = viewer.add_image(_image(), name="plane")
    widget.image.value = volume
    assert widget.method.value == "deconv-3d"
    widget.image.value = plane
    # a 3D PSF does not fit a plane (deconv-2d with it was refused by Run): a denoiser
    assert widget.method.value == "denoise-2d"
    viewer.add_image(dn.make_psf("gaussian", (5, 5)), name="psf 2d")
    widget.image.value = volume
    widget.image.value = plane
    assert widget.method.value == "deconv-2d"  # a PSF it takes is there: deconvolution
    assert widget.psf.layer.value is viewer.layers["psf 2d"]

    widget.method.value = "median"  # by hand: the choice stays
    widget.image.value = volume
    assert widget.method.value == "median"
    viewer.layers.remove("psf")
    assert widget.method.value == "median"


def test_psf_pickers_default_to_the_gaussian_spec(make_napari_viewer):
    viewer = make_napari_viewer()
    restore, noise = _dock(viewer, "Restore"), _dock(viewer, "Noise")
    gaussian = list_psfs()["gaussian"]
    restore.method.value = "richardson-lucy"
    assert restore.psf.source.value == "gaussian"
    assert noise.psf.source.value == "none"  # noise adds no blur unless asked
    noise.psf.source.value = "gaussian"
    for picker in (restore.psf, noise.psf):
        description = picker.spec()
        assert description["params"] == gaussian.defaults()
        kernel, record = build_psf(description, 2, (64, 64))
        np.testing.assert_allclose(kernel, dn.make_psf("gaussian"), atol=1e-7)
        assert record["sigma"] == gaussian.param("sigma").default


def test_synthesize_iter_matches_what_the_noise_widget_records(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    widget = _dock(viewer, "Noise")
    clean = _image((2, 20, 24))
    viewer.add_image(clean, name="clean")
    widget.noise.value = "gaussian"
    widget.seed.value = 7
    widget.run()
    _wait(qtbot, widget)
    meta = viewer.layers["clean noisy (gaussian)"].metadata["napari_deconvnet"]
    again = drain(synthesize_iter(clean, meta["noise"], seed=meta["seed"], **meta["params"]))
    np.testing.assert_array_equal(viewer.layers["clean noisy (gaussian)"].data, again)


# ------------------------------------------------------------ worker base


def test_worker_base_runs_one_job_relays_events_and_notifies_errors(make_napari_viewer, qtbot):
    from napari_deconvnet.widgets._worker import Job, WorkerWidget

    messages, events, results = [], [], []

    def body(n):
        yield 1, 2
        yield f"event {n}"
        yield 2, 2
        return n * 10

    def done(result):
        if result > 10:
            raise ValueError("the result is too big")
        results.append(result)
        return "finished"

    class Echo(WorkerWidget):
        def __init__(self, viewer):
            super().__init__(viewer, title="Echo", notify=messages.append)
            self.n = 1
            self.extend(self.controls())

        def prepare(self):
            if self.n < 0:
                raise ValueError("n must be positive")
            return Job(body, (self.n,), failure="Echo failed", done=done, yielded=events.append)

    viewer = make_napari_viewer()
    widget = Echo(viewer)
    widget.run()
    first = widget.worker
    widget.run()  # one job at a time
    assert widget.worker is first and not widget.run_button.enabled
    _wait(qtbot, widget)
    assert results == [10] and events == ["event 1"] and messages == []
    assert widget.status.value == "finished" and widget.progress.value == widget.progress.max
    assert widget.run_button.enabled and not widget.cancel_button.enabled

    widget.n = 2  # `done` raises: one notification, no exception in a Qt slot
    widget.run()
    _wait(qtbot, widget)
    assert messages == ["Echo failed: the result is too big"] and widget.status.value == "failed"
    widget.n = -1  # bad input: notified, nothing starts
    widget.run()
    assert widget.worker is None and messages[-1] == "Echo: n must be positive"
    assert widget.run_button.enabled
