"""The Train dock widget in a real (headless) napari viewer.

Trainings are a few tiny epochs (8 px grid, 32 px patches) on 64-96 px layers.
"""

import re

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.io import registry
from napari_deconvnet.widgets import train as train_module
from napari_deconvnet.widgets._psf import FROM_LAYER
from napari_deconvnet.widgets._train_collect import collect_training
from napari_deconvnet.widgets.restore import RestoreWidget
from napari_deconvnet.widgets.train import (
    ADAPT,
    NEW_NETWORK,
    SELF_SUPERVISED,
    SYNTHETIC,
    TRAIN_LAYERS,
    TrainWidget,
    shapes_to_polygons,
)

TIMEOUT_MS = 120_000


def _pair(shape=(96, 96), seed=0):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    clean = (0.5 + 0.4 * np.sin(7 * sum(grids)) * np.cos(5 * grids[-1])).astype(np.float32)
    return (clean + rng.normal(0, 0.1, shape)).astype(np.float32), clean


def _record_draws(monkeypatch):
    """Every training patch drawn, as ``(source, lead index, origin)``."""
    from napari_deconvnet.core import patches

    draws, original = [], patches.PatchSampler.draw

    def recording(self, *args, **kwargs):
        drawn = original(self, *args, **kwargs)
        draws.append(drawn)
        return drawn

    monkeypatch.setattr(patches.PatchSampler, "draw", recording)
    return draws


def _shown(widget):
    """Whether a field is shown (the dock itself may be hidden in headless tests)."""
    return not widget.native.isHidden()


def _wait_until_idle(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)


def _train_one_3d_epoch(widget, qtbot, errors, patch):
    """Train the widget's 3D network for one epoch of `patch`-sized patches, without error."""
    widget.patch_size.value = patch
    widget.epochs.value = 1
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    assert widget.result.model.config.ndim == 3


@pytest.fixture
def viewer_widget(make_napari_viewer, qtbot, monkeypatch, tmp_path):
    """A viewer with the Train widget docked through the npe2 manifest, set up small."""
    monkeypatch.setenv("NAPARI_DECONVNET_SESSION", str(tmp_path / "session"))  # the autosaves
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Train")
    assert isinstance(widget, TrainWidget)
    widget.device.value = "cpu"
    widget.patch_size.value = 32
    widget.batch_size.value = 4
    widget.epochs.value = 3
    widget.start_from.value = NEW_NETWORK  # chosen: the task's suggestion no longer applies
    # a tiny network and short epochs, so that the tests take seconds
    original = train_module._train_job

    def small_job(inputs, targets, options, *args):
        options = {**options, "steps_per_epoch": 3}
        if "network" in options:
            options["network"] = {**options["network"], "base_channels": 8}
        return (yield from original(inputs, targets, options, *args))

    monkeypatch.setattr(train_module, "_train_job", small_job)
    yield viewer, widget
    if widget.worker is not None:
        widget.stop()
        _wait_until_idle(qtbot, widget)
    registry.clear()


def _noisy_and_clean(viewer, widget):
    """A noisy and a clean layer, chosen as the input and the target (supervised)."""
    noisy, clean = _pair()
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean, name="clean")
    widget.image.value = viewer.layers["noisy"]
    widget.target.value = viewer.layers["clean"]


@pytest.fixture
def errors(monkeypatch):
    messages = []
    monkeypatch.setattr(train_module, "show_error", messages.append)
    return messages


def test_supervised_training_plots_previews_saves_and_restores(
    viewer_widget, qtbot, errors, tmp_path
):
    viewer, widget = viewer_widget
    noisy, clean = _pair()
    viewer.add_image(noisy, name="noisy", scale=(2.0, 2.0))
    viewer.add_image(clean, name="clean", scale=(2.0, 2.0))
    widget.image.value = viewer.layers["noisy"]
    widget.target.value = viewer.layers["clean"]
    assert widget.start_from.value == NEW_NETWORK  # the user's choice stays
    assert widget.start_hint.value == "suggested: denoise-2d"
    assert not _shown(widget.synthetic)  # synthetic fields only for synthetic pairs

    widget.train()
    assert widget.worker is not None and not widget.train_button.enabled
    _wait_until_idle(qtbot, widget)

    assert errors == []
    result = widget.result
    assert result is not None and result.stop_reason == "epochs"
    # the curves got one point per epoch (validation includes epoch 0)
    assert list(widget.train_line.get_xdata()) == [1, 2, 3]
    assert list(widget.val_line.get_xdata()) == [0, 1, 2, 3]
    assert widget.progress.value == widget.progress.max
    preview = viewer.layers["noisy preview"]
    assert preview.data.shape == noisy.shape  # the visible slice, up to 256 px
    np.testing.assert_array_equal(preview.scale, (2.0, 2.0))
    assert widget.save_button.enabled and widget.use_button.enabled

    path = widget.save_model(tmp_path / "denoiser")
    assert path == tmp_path / "denoiser.safetensors"
    loaded = dn.load_model(path)
    assert loaded.metadata["training"]["mode"] == "supervised"
    assert loaded.metadata["training"]["data_shapes"] == [[96, 96]]

    # "Use in Restore": the Restore widget lists the model and restores with it
    restore_widget = RestoreWidget(viewer)
    name = widget.use_in_restore()
    assert name in restore_widget.model.choices
    restore_widget.model.value = name
    restore_widget.image.value = viewer.layers["noisy"]
    restore_widget.device.value = "cpu"
    restore_widget.run()
    qtbot.waitUntil(lambda: restore_widget.worker is None, timeout=TIMEOUT_MS)
    result_layer = viewer.layers[-1]
    assert result_layer.name.startswith("noisy [")  # "<input> [<method>]"
    restored = result_layer.data
    np.testing.assert_allclose(restored, dn.restore(noisy, result.model, device="cpu"), atol=1e-5)


def test_stop_keeps_the_best_model(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    noisy, _ = _pair()
    viewer.add_image(noisy, name="noisy")
    widget.target.value = SELF_SUPERVISED
    widget.epochs.value = 1000
    widget.train()
    qtbot.waitUntil(lambda: "step" in widget.status.value, timeout=TIMEOUT_MS)
    assert 0 <= widget.progress.value < widget.progress.max == 1000  # the engine's fraction
    worker = widget.worker
    widget.stop()
    assert not widget.stop_button.enabled and widget.status.value == "stopping..."
    # a graceful stop: Train comes back only when the worker has ended, with the best model
    assert widget.worker is worker and not widget.train_button.enabled
    widget.train()  # nothing while it runs
    assert widget.worker is worker
    _wait_until_idle(qtbot, widget)
    assert errors == []
    assert widget.result.stop_reason == "stopped"
    assert widget.status.value.startswith(widget.result.message + "; best epoch ")
    assert widget.progress.value == widget.progress.max
    assert widget.result.steps < 1000 * 3
    assert widget.train_button.enabled and widget.save_button.enabled
    assert widget.result.model.metadata["training"]["mode"] == "self-supervised"


def test_a_finished_run_lets_its_layer_data_go(viewer_widget, qtbot, errors):
    # session 70's note: the run's layer and array stayed held until the next run, so a
    # deleted layer's data stayed in memory
    viewer, widget = viewer_widget
    _noisy_and_clean(viewer, widget)
    widget.train()
    assert widget._running is not None
    assert widget._running["data"] is viewer.layers["noisy"].data
    _wait_until_idle(qtbot, widget)
    assert errors == [] and widget.result is not None
    assert widget._running is None and widget._preview_request is None


def test_synthetic_deconvolution_with_regions(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    _, clean = _pair((80, 80))
    viewer.add_image(clean, name="clean")
    rectangle = np.array([[0, 0], [0, 79], [40, 79], [40, 0]])
    viewer.add_shapes([rectangle], shape_type="rectangle", name="train here")
    labels = np.zeros(clean.shape, np.uint8)
    labels[44:, 40:] = 1
    viewer.add_labels(labels, name="check here")
    widget.image.value = viewer.layers["clean"]
    widget.target.value = SYNTHETIC
    synthetic = widget.synthetic
    # the fields are the noise model's spec, rendered: sigma for Gaussian noise
    assert _shown(synthetic) and list(synthetic.noise_params.current.fields) == ["sigma"]
    widget.noise.value = "poisson-gaussian"
    spec = dn.list_noise_models()["poisson-gaussian"]
    assert list(synthetic.noise_params.current.fields) == [p.name for p in spec.params]
    assert _shown(synthetic.noise_params.field("read_noise"))
    widget.noise.value = "gaussian"
    synthetic.noise_params.field("sigma").value = 0.02
    assert not _shown(synthetic.psf.forms)  # PSF "none" by default
    synthetic.psf.source.value = "gaussian"  # the dock widgets' one PSF picker
    assert _shown(synthetic.psf.forms.field("sigma"))
    widget.regions.value = viewer.layers["train here"]
    widget.validation_region.value = viewer.layers["check here"]
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    record = widget.result.model.metadata["training"]
    assert record["mode"] == "synthetic" and record["regions"] is True
    assert record["noise"] == {"model": "gaussian", "sigma": 0.02}
    assert record["psf"]["shape"][0] > 1
    assert record["validation"] == "regions"


def test_synthetic_salt_and_pepper_fine_tunes_the_shipped_impulse_model(
    viewer_widget, qtbot, errors
):
    from skimage import data

    viewer, widget = viewer_widget
    clean = data.brick()[:96, :96].astype(np.float32) / 255
    viewer.add_image(clean, name="clean")
    widget.image.value = viewer.layers["clean"]
    widget.start_from.value = "denoise-2d"
    widget._start_chosen = False  # as on a fresh widget: the suggestion follows the task
    widget.target.value = SYNTHETIC
    widget.noise.value = "salt-and-pepper"
    assert widget.start_from.value == "salt-and-pepper"
    widget.synthetic.noise_params.field("amount").value = 0.2
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    model = widget.result.model
    record = model.metadata["training"]
    assert record["mode"] == "synthetic" and record["noise"]["model"] == "salt-and-pepper"
    assert model.metadata["impulse_switch"] and model.config.in_channels == 2
    noisy = dn.synthesize(clean, "salt-and-pepper", amount=0.2, seed=3)
    restored = dn.restore(noisy, model)
    kept = (noisy > noisy.min()) & (noisy < noisy.max())
    np.testing.assert_array_equal(restored[kept], noisy[kept])  # only impulses change
    assert np.abs(restored - clean).mean() < 0.5 * np.abs(noisy - clean).mean()
    # Noise2Void cannot train it: said in the viewer, nothing raised
    widget.target.value = SELF_SUPERVISED
    widget.start_from.value = "salt-and-pepper"
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert len(errors) == 1 and "shows a masked pixel its own value" in errors[0]


def test_fine_tuning_a_deconvolution_model_on_pairs_asks_for_their_psf(
    viewer_widget, qtbot, errors
):
    viewer, widget = viewer_widget
    _, sharp = _pair((80, 80), seed=4)
    blurred = dn.synthesize(
        sharp, "gaussian", psf=dn.make_psf("gaussian", sigma=1.5), sigma=0.02, seed=5
    )
    viewer.add_image(sharp, name="sharp")
    viewer.add_image(np.asarray(blurred, np.float32), name="blurred")
    widget.image.value = viewer.layers["blurred"]
    widget.target.value = viewer.layers["sharp"]
    assert not _shown(widget.pair_psf)  # a new network takes no PSF
    widget.start_from.value = "deconv-2d"
    assert _shown(widget.pair_psf)  # a deconvolution model does
    widget.train()
    assert "choose the PSF the input layer is blurred with" in errors[-1]
    widget.target.value = SELF_SUPERVISED
    assert not _shown(widget.pair_psf)
    widget.train()
    assert "not self-supervised" in errors[-1]
    assert widget.worker is None and len(errors) == 2

    widget.target.value = viewer.layers["sharp"]
    widget.pair_psf.source.value = "gaussian"
    widget.pair_psf.forms.field("sigma").value = 1.5
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert len(errors) == 2
    model = widget.result.model
    record = model.metadata["training"]
    assert record["mode"] == "supervised" and record["psf"]["shape"][0] > 1
    assert model.metadata["needs_psf"] is True and model.config.in_channels == 2
    assert record["fine_tuned_from"]["name"] == "deconv-2d"
    # the live preview restores with the pairs' PSF (without it there is none)
    assert viewer.layers["blurred preview"].data.shape == blurred.shape


def test_bad_settings_are_reported_not_raised(viewer_widget, errors):
    viewer, widget = viewer_widget
    widget.train()
    assert "no image layer" in errors[-1]
    noisy, _ = _pair((64, 64))
    viewer.add_image(noisy, name="noisy")
    widget.target.value = viewer.layers["noisy"]
    widget.train()
    assert "target is the input" in errors[-1]
    widget.target.value = SYNTHETIC
    widget.noise.value = "none"
    widget.train()
    assert "noise model or a PSF" in errors[-1]
    widget.target.value = SELF_SUPERVISED
    widget.epochs.value = 0
    widget.train()
    assert "epochs or a time budget" in errors[-1]
    widget.epochs.value = 3
    widget.dims.value = "3D"
    widget.start_from.value = "default"
    widget.train()
    assert "not a 3D model" in errors[-1]
    assert widget.worker is None and len(errors) == 5


def test_errors_in_the_worker_are_shown(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    noisy, _ = _pair((16, 16))
    viewer.add_image(noisy, name="small")
    widget.target.value = SELF_SUPERVISED
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert len(errors) == 1 and "larger than" in errors[0]
    assert errors[0].startswith("Train: training on 'small' failed: ")
    assert widget.result is None and not widget.save_button.enabled
    assert widget.status.value == "failed" and widget.train_button.enabled


def test_shapes_to_polygons_goes_through_world_coordinates(make_napari_viewer):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((50, 50)), scale=(2, 2), translate=(10, 0))
    shapes = viewer.add_shapes(
        [np.array([[10, 0], [10, 40], [50, 40], [50, 0]]), np.array([[0, 0], [20, 20]])],
        shape_type=["rectangle", "line"],
    )
    (polygon,) = shapes_to_polygons(shapes, image)
    np.testing.assert_allclose(polygon.min(axis=0), (0, 0))
    np.testing.assert_allclose(polygon.max(axis=0), (20, 20))


def test_a_2d_shapes_layer_over_a_stack_applies_to_every_plane(make_napari_viewer, monkeypatch):
    # world_to_data filled the stack's leading axis with 0: the region was plane 0's

    viewer = make_napari_viewer()
    stack = np.random.default_rng(0).random((4, 96, 96)).astype(np.float32)
    image = viewer.add_image(stack)
    shapes = viewer.add_shapes([np.array([[0, 0], [0, 64], [96, 64], [96, 0]])])
    (polygon,) = shapes_to_polygons(shapes, image)
    assert polygon.shape[1] == 2
    draws = _record_draws(monkeypatch)
    dn.train(stack, axes="TYX", regions=[polygon], steps_per_epoch=12, epochs=1,
             patch_size=32, batch_size=2, device="cpu", validation=None)  # fmt: skip
    assert len({tuple(lead) for _, lead, _ in draws}) > 1  # patches from several frames


def test_3d_network_previews_the_visible_plane(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    volume = np.random.default_rng(0).random((20, 48, 48), dtype=np.float32)
    viewer.add_image(volume, name="volume", scale=(0.5, 0.2, 0.2), units=("micrometer",) * 3)
    viewer.dims.set_current_step(0, 13)
    widget.target.value = SELF_SUPERVISED
    widget.dims.value = "3D"
    _train_one_3d_epoch(widget, qtbot, errors, patch=16)
    preview = viewer.layers["volume preview"].data
    assert preview.shape == (48, 48)  # plane 13 of a restored slab around it
    # in the input's units (it was in pixels: napari then showed no units at all)
    assert [str(u) for u in viewer.layers["volume preview"].units] == ["micrometer"] * 2
    np.testing.assert_allclose(viewer.layers["volume preview"].scale, (0.2, 0.2))
    # the preview shows the last epoch's model; the result is the best one, close to it
    slab = dn.restore(volume[4:20], widget.result.model, device="cpu")
    np.testing.assert_allclose(preview, slab[9], atol=0.02)
    assert np.abs(preview - slab[8]).mean() > 0.1  # and not a neighbouring plane


def test_empty_loss_plot_shows_labelled_axes_and_no_data_text(viewer_widget):
    from napari_deconvnet.widgets._train_plot import EMPTY_TEXT, EMPTY_XLIM, EMPTY_YLIM

    _viewer, widget = viewer_widget
    plot = widget.plot
    plot.canvas.draw()  # limits as drawn, not as requested
    assert plot.empty and plot.empty_label.get_visible()
    assert plot.empty_label.get_text() == EMPTY_TEXT
    assert plot.axes.get_xlabel() == "epoch" and plot.axes.get_ylabel() == "loss"
    np.testing.assert_allclose(plot.axes.get_xlim(), EMPTY_XLIM)
    np.testing.assert_allclose(plot.axes.get_ylim(), EMPTY_YLIM)
    # a start entry without losses keeps the empty state; losses replace it
    widget._plot([{"epoch": 0}])
    plot.canvas.draw()
    assert plot.empty and plot.empty_label.get_visible()
    np.testing.assert_allclose(plot.axes.get_ylim(), EMPTY_YLIM)
    widget._plot([{"epoch": 0, "val_loss": 0.5}, {"epoch": 1, "train_loss": 0.2, "val_loss": 0.1}])
    plot.canvas.draw()
    assert not plot.empty and not plot.empty_label.get_visible()
    assert list(widget.val_line.get_xdata()) == [0, 1]
    low, high = plot.axes.get_ylim()
    assert low <= 0.1 and high >= 0.5 and plot.axes.get_yscale() == "log"
    # a SURE estimate below zero (self-supervised): drawn on a linear scale (session 70:
    # matplotlib dropped the validation curve on the log scale)
    widget._plot(
        [{"epoch": 0, "val_loss": 0.002}, {"epoch": 1, "train_loss": 0.01, "val_loss": -4e-4}]
    )
    plot.canvas.draw()
    assert plot.axes.get_yscale() == "linear"
    low, high = plot.axes.get_ylim()
    assert low <= -4e-4 and high >= 0.01
    widget._plot([{"epoch": 0}])
    assert plot.axes.get_yscale() == "log"  # the empty state again


def test_start_from_preselects_the_shipped_model_that_fits(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(_pair((64, 64))[0], name="noisy")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Train")
    # 2D self-supervised denoising (the default target): the shipped 2D denoiser
    assert widget.target.value == SELF_SUPERVISED
    assert widget.start_from.value == "denoise-2d"
    assert "denoise-2d" in widget.start_hint.value and _shown(widget.start_hint)
    widget.dims.value = "3D"
    assert widget.start_from.value == "denoise-3d"
    widget.dims.value = "2D"
    widget.target.value = viewer.layers["noisy"]  # a supervised pair
    assert widget.start_from.value == "denoise-2d"
    # synthetic deconvolution pairs fine-tune the shipped deconvolution model
    widget.target.value = SYNTHETIC
    assert widget.start_from.value == "denoise-2d"  # noise only: still denoising
    widget.synthetic.psf.source.value = "gaussian"
    assert widget.start_from.value == "deconv-2d"
    assert "with the chosen PSF" in widget.start_hint.value
    widget.synthetic.psf.source.value = "none"
    assert widget.start_from.value == "denoise-2d"
    # synthetic salt-and-pepper pairs fine-tune the shipped impulse-noise model
    widget.synthetic.noise.value = "salt-and-pepper"
    assert widget.start_from.value == "salt-and-pepper"
    assert "impulse-noise" in widget.start_hint.value
    widget.synthetic.noise.value = "gaussian"
    assert widget.start_from.value == "denoise-2d"
    # once the user chooses, the choice stays and the hint names the suggestion
    widget.start_from.value = NEW_NETWORK
    widget.target.value = SELF_SUPERVISED
    assert widget.start_from.value == NEW_NETWORK
    assert widget.start_hint.value == "suggested: denoise-2d"
    assert train_module.suggested_start(SYNTHETIC, 2, True, ["denoise-2d"])[0] == NEW_NETWORK
    assert train_module.suggested_start(SYNTHETIC, 3, True, ["deconv-3d"])[0] == "deconv-3d"
    assert train_module.suggested_start(SELF_SUPERVISED, 3, False, ["denoise-2d"])[0] == (
        NEW_NETWORK
    )


def test_blurred_pairs_suggest_the_deconvolution_model(make_napari_viewer):
    """Input a blurred copy of the target: Start from is deconv-2d, with a PSF to pick."""
    from skimage import data

    cam = data.camera()[128:256, 128:256].astype(np.float32) / 255
    psf = dn.make_psf("gaussian", (9, 9), sigma=1.5)
    viewer = make_napari_viewer()
    sharp = viewer.add_image(cam, name="sharp")
    blurred = viewer.add_image(
        np.asarray(dn.synthesize(cam, "gaussian", psf=psf, sigma=0.01, seed=0)), name="blurred"
    )
    noisy = viewer.add_image(
        np.asarray(dn.synthesize(cam, "gaussian", sigma=0.1, seed=1)), name="noisy"
    )
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Train")
    widget.image.value = blurred
    widget.target.value = sharp
    assert widget.start_from.value == "deconv-2d"
    assert "look blurred" in widget.start_hint.value and "Pairs' PSF" in widget.start_hint.value
    assert _shown(widget.pair_psf)  # the form asks for the PSF the pairs are blurred with
    assert "choose the PSF they are blurred with" in widget.start_hint.value
    viewer.add_image(psf, name="PSF")
    widget.pair_psf.source.value = "from layer"  # chosen: the hint no longer asks for it
    assert widget.pair_psf.layer.value is viewer.layers["PSF"]
    assert widget.start_hint.value.endswith("with the chosen Pairs' PSF")
    widget.image.value = noisy  # a noisy pair: the denoiser again
    assert widget.start_from.value == "denoise-2d"
    assert not _shown(widget.pair_psf)


def _events(widget, monkeypatch):
    """The training events the widget gets (summaries), recorded in order."""
    seen = []
    original = TrainWidget._on_event

    def record(self, summary):
        if self is widget:
            seen.append(summary)
        original(self, summary)

    monkeypatch.setattr(TrainWidget, "_on_event", record)
    return seen


def test_adapt_mode_previews_and_beats_the_shipped_model(
    viewer_widget, qtbot, errors, monkeypatch, tmp_path
):
    from napari_deconvnet.core.adapt import phantom
    from napari_deconvnet.core.metrics import psnr
    from napari_deconvnet.core.psf import blur

    viewer, widget = viewer_widget
    rng = np.random.default_rng(0)
    clean = phantom((96, 96), ["filaments"], rng).astype(np.float32) * 100 + 10
    psf = dn.make_psf("gaussian", shape=(9, 9), sigma=1.5).astype(np.float32)
    noisy = (blur(clean, psf) + rng.normal(0, 3, clean.shape)).astype(np.float32)
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(psf, name="psf")
    original = train_module._adapt_job

    def bounded(model, image, options, *args):  # 40 steps: reproducible, not timed
        options = {**options, "steps": 40, "steps_per_epoch": 10}
        return (yield from original(model, image, options, *args))

    monkeypatch.setattr(train_module, "_adapt_job", bounded)
    widget.image.value = viewer.layers["noisy"]
    # the layer named like a PSF is the adaptation's PSF; set back to none by hand here
    assert widget.adapt.psf.source.value == FROM_LAYER
    widget.adapt.psf.source.value = "none"
    widget.mode.value = ADAPT
    assert _shown(widget.adapt) and not _shown(widget.target) and not _shown(widget.synthetic)
    assert not any(_shown(w) for w in (widget.epochs, widget.loss, widget.regions))
    assert _shown(widget.resume)  # an adaptation autosaves and resumes too
    # the fixture chose a new network for training; adapting fine-tunes the shipped denoiser
    assert widget.start_from.value == "denoise-2d"
    assert widget.start_hint.value == "adapts denoise-2d to this image's noise"
    widget.adapt.psf.source.value = FROM_LAYER
    widget.adapt.psf.layer.value = viewer.layers["psf"]
    # with a PSF the shipped deconvolution model is suggested; the fixture chose "Start
    # from" itself, so the choice stays, and the denoiser learns the deconvolution
    assert widget.start_from.value == "denoise-2d"
    assert widget.start_hint.value == "suggested: deconv-2d"
    widget.adapt.seconds.value = 600
    events = _events(widget, monkeypatch)
    widget.train()
    _wait_until_idle(qtbot, widget)

    assert errors == []
    result = widget.result
    record = result.model.metadata["training"]
    assert record["mode"].startswith("adapt (synthetic") and record["psf_shape"] == [9, 9]
    assert result.steps == 40 and result.stop_reason == "epochs"
    # the status gives the score of the weights returned (read from the model file's
    # record, where an adaptation keeps it as best_val_psnr: it was left out)
    assert f"val PSNR {record['best_val_psnr']:.2f} dB" in widget.status.value
    shown = [e for e in events if e["kind"] in ("start", "epoch")]
    assert [e["epoch"] for e in shown] == [0, 1, 2, 3, 4]
    assert all(e["preview"].shape == noisy.shape for e in shown)  # a live preview every epoch
    np.testing.assert_array_equal(viewer.layers["noisy preview"].data, shown[-1]["preview"])
    assert list(widget.val_line.get_xdata()) == [0, 1, 2, 3, 4]
    # the adapted model deconvolves the layer better than the shipped one (measured +7 dB)
    span = float(clean.max() - clean.min())
    start = psnr(dn.restore(noisy, "denoise-2d", device="cpu"), clean, data_range=span)
    adapted = psnr(dn.restore(noisy, result.model, device="cpu"), clean, data_range=span)
    assert adapted > start + 3.0
    # and it is saved and offered to Restore like a trained model
    saved = widget.save_model(tmp_path / "adapted")
    assert dn.load_model(saved).metadata["training"]["fine_tuned_from"]["name"] == "denoise-2d"
    assert widget.use_in_restore() in RestoreWidget(viewer).model.choices
    widget.mode.value = TRAIN_LAYERS
    assert _shown(widget.target) and not _shown(widget.adapt) and _shown(widget.resume)


def test_adapt_mode_adapts_a_deconvolution_model_from_the_image(
    viewer_widget, qtbot, errors, monkeypatch
):
    from napari_deconvnet.core.adapt import phantom
    from napari_deconvnet.widgets._train_session import apply_settings, form_settings

    viewer, widget = viewer_widget
    clean = phantom((64, 64), rng=0).astype(np.float32)
    viewer.add_image(dn.synthesize(clean, "gaussian", sigma=0.1, seed=0), name="noisy")
    original = train_module._adapt_job

    def bounded(model, image, options, *args):
        options = {**options, "steps": 2, "steps_per_epoch": 1}
        return (yield from original(model, image, options, *args))

    monkeypatch.setattr(train_module, "_adapt_job", bounded)
    widget.image.value = viewer.layers["noisy"]
    widget.mode.value = ADAPT
    assert _shown(widget.adapt.scenes) and widget.adapt.scenes.value == "both"
    widget.adapt.scenes.value = "image"
    # a deconvolution model with a PSF kind (the form once refused every deconvolution model)
    widget.adapt.psf.source.value = "gaussian"
    widget.start_from.value = "deconv-2d"
    widget.train()
    _wait_until_idle(qtbot, widget)

    assert errors == []
    metadata = widget.result.model.metadata
    assert metadata["training"]["data"]["scenes"].startswith("the image's own structures")
    assert metadata["training"]["fine_tuned_from"]["name"] == "deconv-2d"
    assert metadata["training"]["psf_shape"] is not None
    settings = form_settings(widget)  # what the session (and Resume) keeps
    assert settings["adapt"]["scenes"] == "image"
    widget.adapt.scenes.value = "phantoms"
    apply_settings(widget, settings)
    assert widget.adapt.scenes.value == "image"


def test_adapt_mode_refuses_what_it_cannot_adapt(viewer_widget, qtbot, errors):
    viewer, widget = viewer_widget
    viewer.add_image(_pair((64, 64))[0], name="noisy")
    widget.mode.value = ADAPT
    widget.start_from.value = "deconv-2d"
    widget.train()  # a deconvolution model adapts with a PSF, and there is none
    assert "deconvolves with the image's PSF: choose the PSF" in errors[-1]
    widget.start_from.value = "denoise-2d"
    widget.dims.value = "3D"  # the user's choice stays; the hint names the fitting one
    widget.train()
    assert "'noisy' is 2D; a 3D network needs a 3D layer" in errors[-1]
    stack = np.random.default_rng(1).poisson(20, (8, 32, 32)).astype(np.float32)
    viewer.add_image(stack, name="stack")
    widget.image.value = viewer.layers["stack"]
    assert widget.start_hint.value == "suggested: denoise-3d"
    widget.train()
    assert "is a 2D model, but this adaptation is 3D" in errors[-1]
    widget.start_from.value = "denoise-3d"
    widget.adapt.seconds.value = 1
    widget.train()  # a 3D denoiser adapts to the volume without a PSF
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    assert len(errors) == 3 and widget.result.model.config.ndim == 3
    widget.image.value = viewer.layers["noisy"]
    widget.dims.value = "2D"
    widget.start_from.value = "salt-and-pepper"
    widget.train()  # the widget's words: the synthetic pairs that fine-tune it
    assert "removes impulse noise" in errors[-1] and "Target 'synthetic'" in errors[-1]
    assert widget.worker is None and len(errors) == 4


def test_resume_continues_the_autosaved_session(
    viewer_widget, make_napari_viewer, qtbot, errors, monkeypatch
):
    viewer, widget = viewer_widget
    noisy, _ = _pair()
    held_out = np.zeros(noisy.shape, np.uint8)
    held_out[:, -40:] = 1
    viewer.add_image(noisy, name="noisy")
    viewer.add_labels(held_out, name="held out")
    widget.target.value = SELF_SUPERVISED
    widget.epochs.value = 1000
    widget.loss.value = "l1"
    widget.validation_region.value = viewer.layers["held out"]
    assert not widget.resume.enabled  # nothing autosaved yet
    widget.train()
    qtbot.waitUntil(lambda: len(widget.train_line.get_xdata()) >= 2, timeout=TIMEOUT_MS)
    widget.stop()
    _wait_until_idle(qtbot, widget)
    before = widget.result.history
    last_step, last_epoch = before[-1]["step"], before[-1]["epoch"]
    assert last_epoch >= 2 and widget.resume.enabled
    viewer.window.remove_dock_widget("all")  # the dock is closed (or napari crashed)

    other = make_napari_viewer()
    other.add_image(noisy, name="noisy")
    other.add_labels(held_out, name="held out")
    _dock, new = other.window.add_plugin_dock_widget("napari-deconvnet", "Train")
    assert new.resume.enabled and not new.resume.value
    assert new.loss.value == "mse" and new.epochs.value != 1000
    new.resume.value = True  # the session's settings come back
    assert new.loss.value == "l1" and new.epochs.value == 1000
    # the validation region too (without it the resume drew other validation patches
    # and was refused as a run on other data); a run without one is resumed without
    from napari_deconvnet.widgets._train_session import apply_settings, form_settings

    assert new.validation_region.value is other.layers["held out"]
    settings = form_settings(new)
    apply_settings(new, {**settings, "validation_region": None})
    assert new.validation_region.value is None
    apply_settings(new, settings)
    assert new.validation_region.value is other.layers["held out"]
    assert new.target.value == SELF_SUPERVISED and new.start_from.value == NEW_NETWORK
    assert new.patch_size.value == 32 and new.device.value == "cpu"
    new.epochs.value = last_epoch + 2  # epochs count the whole run
    events = _events(new, monkeypatch)
    new.train()
    qtbot.waitUntil(lambda: new.worker is None, timeout=TIMEOUT_MS)
    assert errors == []
    assert events[0]["kind"] == "start" and events[0]["step"] == last_step
    steps = [e["step"] for e in events if e["kind"] == "step"]
    assert steps and steps[0] > last_step
    history = new.result.history
    assert history[: len(before)] == before  # the history goes on; the loss does not restart
    # epochs x steps_per_epoch steps in all, as without the stop (an epoch the stop cut
    # short is recorded as one of its own, and the next ends on the run's grid)
    assert [h["epoch"] for h in history] == list(range(len(history)))
    assert new.result.steps == history[-1]["step"] == (last_epoch + 2) * 3
    assert all(h["step"] % 3 == 0 for h in history[len(before) :])
    assert list(new.train_line.get_xdata()) == list(range(1, len(history)))
    assert new.result.model.metadata["training"]["mode"] == "self-supervised"


def test_keep_what_it_knew_sets_l2sp_and_rehearsal(viewer_widget, qtbot, errors):
    """Fine-tuning offers *Keep what it knew*; 'no' trains a specialist that says so."""
    viewer, widget = viewer_widget
    _noisy_and_clean(viewer, widget)
    assert widget.start_from.value == NEW_NETWORK and not _shown(widget.keep)
    widget.start_from.value = "denoise-2d"
    assert _shown(widget.keep) and widget.keep.value == "yes (default)"
    options = collect_training(widget)["options"]
    assert "l2sp" not in options and "rehearsal" not in options  # dn.train's defaults
    widget.keep.value = "weakly (L2-SP 10)"
    assert collect_training(widget)["options"]["l2sp"] == 10.0
    widget.keep.value = "no: my data only"
    options = collect_training(widget)["options"]
    assert options["l2sp"] == 0.0 and options["rehearsal"] == 0.0

    widget.epochs.value = 1
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    training = widget.result.model.metadata["training"]
    assert training["settings"]["l2sp"] == 0.0 and training["settings"]["rehearsal"] == 0.0
    if training["improved"] is not False:  # (else the start, with its own: none)
        assert training["conditions"]["rehearsed"] is False  # its restores are checked
    else:
        assert training["conditions"] is None
    widget.mode.value = ADAPT
    assert not _shown(widget.keep)  # adaptation has its own recipe


def test_adapt_suggests_the_deconvolution_model_when_there_is_a_psf():
    from napari_deconvnet.widgets._train_adapt import adapt_start

    both = ["denoise-2d", "deconv-2d", "denoise-3d", "deconv-3d"]
    assert adapt_start(2, True, both)[0] == "deconv-2d"
    assert adapt_start(3, True, both)[0] == "deconv-3d"
    assert adapt_start(2, False, both)[0] == "denoise-2d"
    assert adapt_start(3, True, ["denoise-3d"]) == (
        "denoise-3d",
        "adapts denoise-3d: with the PSF it learns the deconvolution",
    )
    assert adapt_start(2, True, [])[0] is None


def test_self_supervision_menu_reaches_the_engine(viewer_widget, qtbot, errors):
    """*Self-supervision* shows for self-supervised runs; automatic is the engine's default."""
    viewer, widget = viewer_widget
    _noisy_and_clean(viewer, widget)
    assert not _shown(widget.self_supervision)  # supervised: not offered
    widget.target.value = SELF_SUPERVISED
    assert _shown(widget.self_supervision) and widget.self_supervision.value == "automatic"
    assert "blind_spot" not in collect_training(widget)["options"]
    widget.self_supervision.value = "N2V2 (median of neighbours)"
    assert collect_training(widget)["options"]["blind_spot"] == "median"
    widget.self_supervision.value = "automatic"
    widget.epochs.value = 1
    widget.train()  # a new network: Neighbor2Neighbor
    _wait_until_idle(qtbot, widget)
    assert errors == []
    assert widget.result.config.blind_spot == "neighbor2neighbor"
    widget.self_supervision.value = "Noise2Void (random neighbour)"
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == [] and widget.result.config.blind_spot == "random"
    widget.mode.value = ADAPT
    assert not _shown(widget.self_supervision)


def test_the_adapt_and_pair_psfs_follow_the_image_calibration(viewer_widget):
    """Every PSF picker of the Train widget (adapt, synthetic pairs, the pairs' PSF)
    takes a calibrated image's pixel size and plane spacing for its optical kinds."""
    viewer, widget = viewer_widget
    stack = np.random.default_rng(0).random((8, 32, 32)).astype(np.float32)
    viewer.add_image(stack, name="cells", scale=(0.25, 0.1, 0.1), units=("micrometer",) * 3)
    widget.image.value = viewer.layers["cells"]
    for picker in (widget.adapt.psf, widget.synthetic.psf, widget.pair_psf):
        picker.source.value = "widefield"
        assert picker.forms.field("pixel_size").value == pytest.approx(100.0)
        assert picker.forms.field("z_step").value == pytest.approx(250.0)
        assert picker.calibration == pytest.approx({"pixel_size": 100.0, "z_step": 250.0})
    viewer.add_image(stack, name="finer", scale=(0.2, 0.05, 0.05), units=("micrometer",) * 3)
    widget.image.value = viewer.layers["finer"]
    picker = widget.adapt.psf
    picker.source.value = "airy"
    picker.source.value = "widefield"
    assert picker.forms.field("pixel_size").value == pytest.approx(50.0)
    assert picker.forms.field("z_step").value == pytest.approx(200.0)


def test_a_sample_preselects_its_clean_target_psf_and_dimensions(viewer_widget):
    """Opening a sample (noisy or blurred, clean, PSF) sets Train up for supervised
    fine-tuning of the model that fits, as Restore chooses: the clean layer as the
    target (it stayed self-supervised beside it), a volume's network 3D (it stayed
    2D) and the PSF layer as the pairs' PSF (it stayed none)."""
    viewer, widget = viewer_widget
    viewer.open_sample("napari-deconvnet", "volume")
    assert widget.image.value is viewer.layers["volume blurred"]
    assert widget.target.value is viewer.layers["volume clean"]
    assert widget.dims.value == "3D"
    # adapting (no clean data) beside the PSF layer adapts to that PSF
    assert widget.adapt.psf.source.value == "from layer"
    assert widget.adapt.psf.layer.value is viewer.layers["volume PSF"]
    assert widget.pair_psf.source.value == "none"  # (the fixture starts a new network)
    widget.start_from.value = "deconv-3d"
    assert widget.pair_psf.source.value == "from layer"
    assert widget.pair_psf.layer.value is viewer.layers["volume PSF"]
    # picks by hand stay when the layers change
    widget.target.value = "none: self-supervised"
    widget.dims.value = "2D"
    viewer.add_image(np.zeros((16, 16), np.float32), name="more clean")
    assert widget.target.value == "none: self-supervised" and widget.dims.value == "2D"


def test_a_clean_layer_of_another_shape_is_not_preselected(viewer_widget):
    viewer, widget = viewer_widget
    viewer.add_image(np.ones((32, 32), np.float32), name="noisy")
    viewer.add_image(np.ones((16, 16), np.float32), name="clean crop")
    widget.image.value = viewer.layers["noisy"]
    assert widget.target.value == SELF_SUPERVISED
    viewer.add_image(np.ones((32, 32), np.float32), name="clean")
    assert widget.target.value is viewer.layers["clean"]


def test_a_time_lapse_keeps_a_2d_network(viewer_widget):
    viewer, widget = viewer_widget
    viewer.open_sample("napari-deconvnet", "timelapse")
    assert widget.image.value is viewer.layers["moving noisy"]
    assert widget.target.value is viewer.layers["moving clean"]
    assert widget.dims.value == "2D"
    assert widget.pair_psf.source.value == "none"
    assert widget.adapt.psf.source.value == "none"  # no PSF layer


def test_the_two_colour_sample_trains_and_adapts_with_one_psf_per_channel(
    viewer_widget, qtbot, errors, monkeypatch
):
    """Beside a PSF layer of one PSF per channel (its c axis), Train fine-tunes
    deconv-2d on the two-channel pair and Adapt adapts it, each channel with its
    own PSF (training took one PSF and asked to split the channels before)."""
    viewer, widget = viewer_widget
    viewer.open_sample("napari-deconvnet", "two_colour")
    originals = {"_train_job": train_module._train_job, "_adapt_job": train_module._adapt_job}
    seen = {}

    def bounded(name):
        def job(first, second, options, *args):
            seen[name] = options
            options = {**options, "steps": 2, "steps_per_epoch": 1}
            if name == "_train_job":
                options = {k: v for k, v in options.items() if k != "steps"}
                options.update(epochs=1, max_seconds=None)
            return (yield from originals[name](first, second, options, *args))

        return job

    for name in originals:
        monkeypatch.setattr(train_module, name, bounded(name))
    assert widget.image.value is viewer.layers["two colour blurred"]
    assert widget.target.value is viewer.layers["two colour clean"]
    assert widget.start_hint.value == "suggested: deconv-2d"  # (the fixture chose new)
    widget.start_from.value = "deconv-2d"
    assert widget.pair_psf.layer.value is viewer.layers["two colour PSF"]
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    assert seen["_train_job"]["axes"] == "CYX"
    record = widget.result.model.metadata["training"]
    shapes = [p["shape"] for p in record["psf"]["per_channel"]]
    psf_layer = viewer.layers["two colour PSF"].data
    assert shapes == [list(psf_layer.shape[1:])] * 2
    if record["improved"] is not False:  # (else the start, with its own conditions)
        widths = record["conditions"]["psf_widths"]
        assert widths[0][0] < widths[1][0]  # the 520 nm PSF is wider than the 461 nm one

    widget.mode.value = ADAPT
    assert widget.adapt.psf.layer.value is viewer.layers["two colour PSF"]
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    assert seen["_adapt_job"]["axes"] == "CYX"
    training = widget.result.model.metadata["training"]
    assert training["axes"] == "CYX" and len(training["psf_shape"]) == 2


def test_split_channels_pair_with_their_own_clean_layer_and_psf(make_napari_viewer):
    """After Split Stack of the two_colour sample: the input's own channel's clean layer
    is the target and its own PSF layer the pairs' and adaptation's PSF (the first
    channel's were taken for every channel)."""
    from napari.layers._layer_actions import _split_stack

    viewer = make_napari_viewer()
    viewer.open_sample("napari-deconvnet", "two_colour")
    for name in ("two colour blurred", "two colour clean", "two colour PSF"):
        viewer.layers.selection = {viewer.layers[name]}
        _split_stack(viewer.layers)
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Train")
    for channel in (1, 0):
        widget.image.value = viewer.layers[f"two colour blurred layer {channel}"]
        assert widget.target.value is viewer.layers[f"two colour clean layer {channel}"]
        assert widget.start_from.value == "deconv-2d"  # the pairs look blurred
        assert widget.pair_psf.layer.value is viewer.layers[f"two colour PSF layer {channel}"]
        assert widget.adapt.psf.layer.value is viewer.layers[f"two colour PSF layer {channel}"]
    widget.target.value = viewer.layers["two colour clean layer 1"]  # by hand: it stays
    widget.image.value = viewer.layers["two colour blurred layer 1"]
    widget.image.value = viewer.layers["two colour blurred layer 0"]
    assert widget.target.value is viewer.layers["two colour clean layer 1"]


def test_also_train_on_pairs_each_layer_with_its_own_clean_layer(
    viewer_widget, qtbot, errors, monkeypatch
):
    """Several layers at once: each further input is trained against the clean layer of
    its shape named most like it; the regions stay the input's."""
    from napari_deconvnet.widgets._train_session import apply_settings, form_settings

    viewer, widget = viewer_widget
    for name, seed, shape in (("cells", 0, (64, 64)), ("beads", 1, (48, 80))):
        noisy, clean = _pair(shape, seed)
        viewer.add_image(noisy, name=f"{name} noisy")
        viewer.add_image(clean, name=f"{name} clean")
    widget.image.value = viewer.layers["cells noisy"]
    assert widget.target.value is viewer.layers["cells clean"]
    preview = {"napari_deconvnet": {"preview_of": "cells noisy"}}
    viewer.add_image(np.zeros((64, 64), np.float32), name="cells noisy preview", metadata=preview)
    offered = [layer.name for layer in widget.more.choices]
    assert offered == ["beads noisy", "beads clean"]  # not the input, its target, a preview
    widget.more.value = [viewer.layers["beads noisy"]]
    job = collect_training(widget)
    inputs, targets = job["data"], job["targets"]
    assert [np.shape(a) for a in inputs] == [(64, 64), (48, 80)]
    np.testing.assert_array_equal(targets[1], viewer.layers["beads clean"].data)
    np.testing.assert_array_equal(targets[0], viewer.layers["cells clean"].data)
    seen = {}
    original = train_module._train_job

    def recording(inputs, targets, options, *args):
        seen["inputs"] = inputs
        return (yield from original(inputs, targets, {**options, "epochs": 1}, *args))

    monkeypatch.setattr(train_module, "_train_job", recording)
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == [] and len(seen["inputs"]) == 2
    record = widget.result.model.metadata["training"]
    assert record["data_shapes"] == [[64, 64], [48, 80]]
    settings = form_settings(widget)  # kept for Resume
    assert settings["more"] == ["beads noisy"]
    widget.more.value = []
    apply_settings(widget, settings)
    assert [layer.name for layer in widget.more.value] == ["beads noisy"]
    # a further layer with no clean layer of its shape cannot train supervised
    viewer.add_image(_pair((40, 40), 2)[0], name="lone noisy")
    widget.more.value = [viewer.layers["lone noisy"]]
    with pytest.raises(ValueError, match="no clean layer of the shape of 'lone noisy'"):
        collect_training(widget)
    widget.target.value = SELF_SUPERVISED  # self-supervised: inputs alone
    job = collect_training(widget)
    assert job["targets"] is None and [np.shape(a) for a in job["data"]] == [(64, 64), (40, 40)]
    viewer.add_image(np.ones((2, 8, 8), np.float32), name="stack")
    widget.more.value = [viewer.layers["stack"]]
    with pytest.raises(ValueError, match="need the same number of dimensions"):
        collect_training(widget)


def test_an_rgb_layer_gets_a_colour_preview_of_its_own_region(
    viewer_widget, qtbot, errors, monkeypatch
):
    # it was a (96, 3) grey strip: one row of the image, its colours as the X axis
    viewer, widget = viewer_widget
    rgb = np.random.default_rng(0).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    viewer.add_image(rgb, name="photo")
    widget.image.value = viewer.layers["photo"]
    widget.epochs.value = 1
    shown = []
    original = train_module.show_preview

    def spy(viewer_, layer, image, request):
        shown.append(np.array(image))
        return original(viewer_, layer, image, request)

    monkeypatch.setattr(train_module, "show_preview", spy)
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == [] and len(shown) >= 2
    # the new network's residual output starts at zero: its first preview is the input
    np.testing.assert_allclose(shown[0], rgb.astype(np.float32), atol=1e-3)
    preview = viewer.layers["photo preview"]
    assert preview.rgb and preview.data.shape == rgb.shape


def test_adapting_to_a_lazy_layer_reads_it_in_the_worker(viewer_widget, qtbot, errors):
    # the Train button read the whole layer on the GUI thread before the job started
    import threading

    import dask.array as da

    viewer, widget = viewer_widget
    stack = np.random.default_rng(0).random((4, 64, 64)).astype(np.float32)
    readers = []

    def read(block):
        readers.append(threading.current_thread() is threading.main_thread())
        return block

    lazy = da.from_array(stack, chunks=(1, 64, 64)).map_blocks(read, dtype=np.float32)
    viewer.add_image(lazy, name="lazy stack", contrast_limits=(0, 1))
    readers.clear()  # napari reads the slice it shows
    widget.mode.value = ADAPT
    widget.image.value = viewer.layers["lazy stack"]
    widget.dims.value = "2D"  # four planes
    widget.start_from.value = "denoise-2d"
    widget.adapt.seconds.value = 1
    widget.train()
    on_gui_thread = sum(readers)  # read while the button's handler ran (the GUI thread)
    _wait_until_idle(qtbot, widget)
    assert errors == []
    assert on_gui_thread == 0
    assert readers.count(False) >= len(stack)  # every chunk, read by the worker


def test_further_layers_train_on_every_pixel_beside_a_validate_in_region(
    viewer_widget, qtbot, errors, monkeypatch
):
    # the further layers got validation_regions None, "the whole image": each was held
    # out of training entirely and served as validation only

    viewer, widget = viewer_widget
    for name, seed in (("a", 0), ("b", 1)):
        noisy, clean = _pair((96, 96), seed)
        viewer.add_image(noisy, name=f"{name} noisy")
        viewer.add_image(clean, name=f"{name} clean")
    mask = np.zeros((96, 96), np.int32)
    mask[:, 60:] = 1
    viewer.add_labels(mask, name="held out")
    widget.image.value = viewer.layers["a noisy"]
    widget.validation_region.value = viewer.layers["held out"]
    widget.more.value = [viewer.layers["b noisy"]]
    assert collect_training(widget)["options"]["validation_regions"][1] == []
    draws = _record_draws(monkeypatch)
    train = train_module._train_job

    def one_epoch(inputs, targets, options, *args):
        return (yield from train(inputs, targets, {**options, "epochs": 1}, *args))

    monkeypatch.setattr(train_module, "_train_job", one_epoch)
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == [] and {source for source, _, _ in draws} == {0, 1}  # both train


def test_pairs_psf_is_preselected_when_layers_come_after_the_widget(make_napari_viewer):
    """Session 67: docked first, then a blurred pair and a PSF layer added: *Start from*
    became deconv-2d but *Pairs' PSF* stayed none, and Train refused ("choose the PSF")."""
    from scipy.ndimage import gaussian_filter

    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Train")
    sharp = np.random.default_rng(0).random((96, 96)).astype(np.float32)
    viewer.add_image(gaussian_filter(sharp, 2), name="blurred")
    viewer.add_image(sharp, name="clean")
    viewer.add_image(dn.make_psf("gaussian", shape=(15, 15), sigma=2.0), name="PSF")
    assert widget.start_from.value == "deconv-2d"
    assert widget.pair_psf.source.value == FROM_LAYER
    assert widget.pair_psf.layer.value is viewer.layers["PSF"]


def test_a_removed_target_is_not_taken_as_a_pick_by_hand(viewer_widget):
    """Session 67: removing the preselected clean layer changed *Target* in the re-read
    of the layers, which was recorded as the user's pick: no clean layer was ever
    preselected again."""
    viewer, widget = viewer_widget
    noisy, clean = _pair()
    viewer.add_image(noisy, name="a noisy")
    viewer.add_image(clean, name="a clean")
    assert widget.target.value is viewer.layers["a clean"]
    viewer.layers.remove("a clean")
    assert widget.target.value == SELF_SUPERVISED and "target" not in widget._picked
    viewer.add_image(clean, name="b clean")
    assert widget.target.value is viewer.layers["b clean"]


def test_the_preview_lies_over_its_region_of_a_rotated_input_and_follows_a_rename(
    make_napari_viewer,
):
    """Session 67: the preview took the input's scale and translate only (a rotated or
    sheared input's preview lay elsewhere), and an input renamed during training got a
    second preview beside the first."""
    from napari_deconvnet.widgets._train_preview import show_preview

    viewer = make_napari_viewer()
    x = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    layer = viewer.add_image(x, name="rot", rotate=30, translate=(20, 30), scale=(0.5, 0.5))
    layer.shear = [0.2]
    show_preview(viewer, layer, x[10:40, 5:50], {"offset": (10, 5)})
    preview = viewer.layers["rot preview"]
    for pixel in [(0, 0), (29, 44), (7, 13)]:
        np.testing.assert_allclose(
            preview.data_to_world(pixel), layer.data_to_world(np.add(pixel, (10, 5))), atol=1e-9
        )
    layer.name = "renamed"
    show_preview(viewer, layer, x[10:40, 5:50], {"offset": (10, 5)})
    assert [la.name for la in viewer.layers] == ["renamed", "renamed preview"]
    # the plane's axis labels and units, the input's last two (session 73: "-2", "-1")
    stack = viewer.add_image(
        np.stack([x, x]), name="zyx", axis_labels=("z", "y", "x"), units=("um", "nm", "nm")
    )
    show_preview(viewer, stack, x[:32, :32], {"offset": (0, 0)})
    plane = viewer.layers["zyx preview"]
    assert tuple(plane.axis_labels) == ("y", "x")
    assert [str(u) for u in plane.units] == ["nanometer", "nanometer"]


def test_a_3d_network_on_a_time_lapse_is_refused_in_words(viewer_widget, errors):
    """A layer labelled t, y, x has no Z: Network 3D trained (and adapted) across its
    frames as the planes of a volume (Restore refuses a 3D model there)."""
    viewer, widget = viewer_widget
    rng = np.random.default_rng(0)
    frames = rng.random((16, 48, 48), dtype=np.float32)
    viewer.add_image(frames, name="tl", axis_labels=("t", "y", "x"))
    viewer.add_image(frames[::-1].copy(), name="vol", axis_labels=("z", "y", "x"))
    widget.image.value = viewer.layers["tl"]
    widget.target.value = SELF_SUPERVISED
    widget.dims.value = "3D"
    widget.run()
    assert widget.worker is None and "needs a Z axis" in errors[-1] and "'tl'" in errors[-1]
    widget.mode.value = ADAPT
    widget.run()
    assert widget.worker is None and "needs a Z axis" in errors[-1]
    # a volume beside it, with the time-lapse as a further layer: refused too
    widget.mode.value = TRAIN_LAYERS
    widget.image.value = viewer.layers["vol"]
    widget.target.value = SELF_SUPERVISED
    widget.dims.value = "3D"
    widget.more.value = [viewer.layers["tl"]]
    widget.run()
    assert widget.worker is None and "'tl' has none" in errors[-1]


def test_a_layer_with_a_channel_axis_trains_its_channels_as_channels(
    viewer_widget, qtbot, errors, monkeypatch
):
    """A layer labelled z, c, y, x goes to training with its axes, as Restore passes them
    (the engine guessed TZYX and trained the channels as the planes of 2-plane volumes);
    Shapes drawn over it leave their channel coordinate out, a pair's PSF is built for
    its Z, Y and X (it was cropped to (C, Y, X)), and the preview's depth is its Z."""
    viewer, widget = viewer_widget
    rng = np.random.default_rng(0)
    viewer.add_image(rng.random((12, 2, 40, 40), dtype=np.float32), name="zc",
                     axis_labels=("z", "c", "y", "x"))  # fmt: skip
    viewer.add_image(rng.random((2, 48, 48), dtype=np.float32), name="cyx",
                     axis_labels=("c", "y", "x"))  # fmt: skip
    box = np.array(
        [[z, 1, y, x] for z in (0, 11) for y, x in ((0, 0), (0, 39), (39, 39), (39, 0))]
    )
    viewer.add_shapes([box[:4], box[4:]], shape_type="polygon", name="here", ndim=4)
    widget.image.value = viewer.layers["zc"]
    widget.target.value = SELF_SUPERVISED
    widget.dims.value = "3D"
    widget.regions.value = viewer.layers["here"]
    options = collect_training(widget)["options"]
    assert options["axes"] == "ZCYX"
    assert [p.shape[1] for p in options["regions"]] == [3, 3]  # z, y, x
    viewer.dims.set_current_step(0, 9)
    viewer.dims.set_current_step(1, 1)
    request = train_module.preview_request(viewer, viewer.layers["zc"], 3)
    assert request["index"][:2] == (slice(0, 12), 1) and request["plane"] == 9
    # a deconvolution pair: the PSF fits the (Z, Y, X) of 12 x 40 x 40
    from napari_deconvnet.widgets._train_collect import _spatial_shape

    assert _spatial_shape(viewer.layers["zc"], viewer.layers["zc"].data, 3) == (12, 40, 40)
    assert _spatial_shape(viewer.layers["zc"], viewer.layers["zc"].data, 2) == (40, 40)
    draws = _record_draws(monkeypatch)
    _train_one_3d_epoch(widget, qtbot, errors, patch=8)
    # each channel a 12-plane volume of its own (as TZYX: one source of 2-plane volumes)
    assert {source for source, _, _ in draws} == {0, 1}
    assert {lead for _, lead, _ in draws} == {()}
    widget.image.value = viewer.layers["cyx"]
    widget.dims.value = "2D"
    widget.target.value = SELF_SUPERVISED
    widget.regions.value = None
    assert collect_training(widget)["options"]["axes"] == "CYX"
    # further layers of other axes are refused (the input's axes went to all of them:
    # a c, z, y, x layer beside a z, c, y, x input trained as 12 two-plane "channels")
    viewer.add_image(rng.random((2, 12, 40, 40), dtype=np.float32), name="cz",
                     axis_labels=("c", "z", "y", "x"))  # fmt: skip
    viewer.add_image(rng.random((3, 12, 40, 40), dtype=np.float32), name="tz")
    widget.image.value = viewer.layers["zc"]
    widget.dims.value = "3D"
    widget.target.value = SELF_SUPERVISED
    for other, words in (("cz", "('CZYX')"), ("tz", "(no channel axis)")):
        widget.more.value = [viewer.layers[other]]
        with pytest.raises(ValueError, match=f"'{other}' {re.escape(words)} cannot train"):
            collect_training(widget)


def test_the_preview_of_a_zoomed_out_multiscale_layer_lies_over_the_view(make_napari_viewer):
    """Session 69: the corners napari gives a multiscale layer are in the pixels of the
    level it draws; taken for the full resolution's, the preview of a view centred at
    (600, 512) restored the region around (300, 256)."""
    viewer = make_napari_viewer()
    big = np.random.default_rng(0).random((1024, 1024)).astype(np.float32)
    layer = viewer.add_image([big, big[::2, ::2], big[::4, ::4]], multiscale=True)
    layer.corner_pixels = np.array([[91, 0], [511, 511]])  # as napari sets them at level 1
    layer._data_level = 1
    request = train_module.preview_request(viewer, layer, 2)
    centre = [o + 128 for o in request["offset"]]
    np.testing.assert_allclose(centre, [(91 + 511) * 2 / 2, 512], atol=2)


def test_a_target_of_another_shape_is_refused_before_anything_runs(
    viewer_widget, errors, tmp_path
):
    """Session 69: a target layer of another shape (or RGB beside grey) was refused by the
    worker, after the run's autosave folder had been made; refused in prepare now."""
    viewer, widget = viewer_widget
    noisy, clean = _pair((64, 64))
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(clean[:48], name="clean crop")
    viewer.add_image(np.stack([clean] * 3, -1), name="clean rgb", rgb=True)
    widget.image.value = viewer.layers["noisy"]
    for name, words in (("clean crop", "(shape (48, 64))"), ("clean rgb", "RGB")):
        widget.target.value = viewer.layers[name]
        widget.run()
        assert widget.worker is None
        assert f"the target {name!r}" in errors[-1] and words in errors[-1]
    assert not (tmp_path / "session").exists() or not any((tmp_path / "session").iterdir())


def test_a_users_layer_named_like_a_preview_and_a_renamed_preview_are_left_alone(
    make_napari_viewer,
):
    """Session 70: a user's own layer called "<input> preview" (an image, or points) was
    taken over by the preview (its data lost; points raised in a Qt slot each epoch), and
    a preview the user renamed to keep it was renamed back and overwritten."""
    from napari_deconvnet.widgets._train_preview import show_preview

    viewer = make_napari_viewer()
    x = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    layer = viewer.add_image(x, name="a")
    mine = viewer.add_image(np.arange(100.0 * 100).reshape(100, 100), name="a preview")
    points = viewer.add_points(np.zeros((1, 3)), name="b preview")
    for _ in range(3):  # (review: a new preview every epoch beside the user's layer)
        show_preview(viewer, layer, x[:32, :32], {"offset": (0, 0)})
    assert mine.data.shape == (100, 100) and mine.name == "a preview"
    assert len(viewer.layers) == 4
    ours = [la for la in viewer.layers if la.name not in ("a", "a preview", "b preview")]
    assert len(ours) == 1 and ours[0].data.shape == (32, 32)
    kept = ours[0]
    kept.name = "kept result"
    show_preview(viewer, layer, x[:16, :16], {"offset": (0, 0)})
    assert kept.name == "kept result" and kept.data.shape == (32, 32)
    assert len(viewer.layers) == 5  # a new preview beside the kept one
    b = viewer.add_image(x, name="b")
    show_preview(viewer, b, x[:8, :8], {"offset": (0, 0)})
    assert len(points.data) == 1 and len(viewer.layers) == 7


def test_replacing_the_input_data_during_training_keeps_the_training(viewer_widget, qtbot, errors):
    """Session 70: a new, 3D array given to the input layer while it trained made the
    preview index it with the old region (an IndexError) and the whole training failed
    with no model kept; the run trains and previews what it took at Run."""
    viewer, widget = viewer_widget
    _noisy_and_clean(viewer, widget)
    widget.epochs.value = 4
    events = []
    original = widget._on_event

    def replace_once(value):
        original(value)
        events.append(value)
        if len(events) == 1:
            viewer.layers["noisy"].data = np.random.default_rng(1).random((8, 96, 96))
            viewer.dims.set_current_step(0, 4)

    widget._on_event = replace_once
    widget.train()
    _wait_until_idle(qtbot, widget)
    assert errors == []
    assert widget.result is not None and widget.status.value != "failed"


def test_the_loss_plot_follows_the_viewers_theme(viewer_widget):
    """Session 70: the plot kept the theme it was docked with (dark on a light viewer)."""
    from napari.utils.theme import get_theme

    viewer, widget = viewer_widget
    for name in ("light", "dark"):
        viewer.theme = name
        want = get_theme(name).background.as_hex()
        got = widget.plot.figure.get_facecolor()
        assert "#" + "".join(f"{round(c * 255):02x}" for c in got[:3]) == want.lower()[:7]
