"""Autosave and resume of dn.adapt, in the core and in the Train widget; Labels regions with RGB.

Runs are a few steps of tiny patches on 64-96 px images, bounded by steps (not time).
"""

import threading

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core.adapt import SCENES, SyntheticPairs, adapt_iter
from napari_deconvnet.core.adapt_record import read_adapt_record, record_path
from napari_deconvnet.core.checkpoint import resume_path
from napari_deconvnet.core.train_types import run_events
from napari_deconvnet.io.samples import blurred_phantom_data

TIMEOUT_MS = 120_000
SMALL = dict(patch_size=16, batch_size=2, device="cpu", preview=False)


def _without_time(history):
    return [{k: v for k, v in entry.items() if k != "seconds"} for entry in history]


def _stop_after_epoch(epoch):
    stop = threading.Event()

    def callback(event):
        if event.kind == "epoch" and event.epoch == epoch:
            stop.set()

    return stop, callback


def test_synthetic_pairs_skip_to_draws_the_batches_an_uninterrupted_stream_draws():
    camera = {"noise": "gaussian", "params": {"sigma": 0.1}, "offset": 0.0, "amplitude": 1.0}
    kw = dict(ndim=2, size=(16, 16), camera=camera, stats=(0.0, 1.0), seed=3, n_validation=1)
    stream = SyntheticPairs(**kw)
    batches = [stream.batch(2) for _ in range(5)]
    later = SyntheticPairs(**kw)
    later.skip_to(3)
    for expected in batches[3:]:
        x, y, _ = later.batch(2)
        assert np.array_equal(x.numpy(), expected[0].numpy())
        assert np.array_equal(y.numpy(), expected[1].numpy())
    assert not np.array_equal(batches[0][0].numpy(), batches[3][0].numpy())


def test_resumed_adapt_run_goes_on_exactly_as_an_uninterrupted_one(tmp_path):
    degraded, _, psf = blurred_phantom_data((64, 64), seed=0)
    kw = dict(psf=psf, seconds=None, steps=6, steps_per_epoch=2, **SMALL)
    full = run_events(adapt_iter("denoise-2d", degraded, **kw), None)
    assert full.steps == 6 and [h["step"] for h in full.history] == [0, 2, 4, 6]

    path = tmp_path / "run.safetensors"
    stop, callback = _stop_after_epoch(1)  # a crash after the first epoch's autosave
    first = run_events(
        adapt_iter("denoise-2d", degraded, stop=stop, autosave=path, **kw), callback
    )
    assert first.stop_reason == "stopped" and first.steps == 2
    assert resume_path(path).exists() and record_path(path).exists()
    record, saved_psf = read_adapt_record(path)
    assert record["camera"]["noise"] == full.model.metadata["training"]["noise"]["model"]
    np.testing.assert_allclose(saved_psf, psf / psf.sum(), rtol=1e-5, atol=1e-8)
    # the interrupted run is an exact prefix of the uninterrupted one
    assert _without_time(first.history) == _without_time(full.history)[: len(first.history)]

    # resume from the files alone: PSF, noise, phantoms and settings come from the record
    second = run_events(
        adapt_iter(
            None,
            degraded,
            resume=path,
            autosave=path,
            seconds=None,
            steps=6,
            device="cpu",
            preview=False,
        ),
        None,
    )
    assert second.steps == 6
    assert [h["step"] for h in second.history] == [0, 2, 4, 6]  # the step count went on
    assert _without_time(second.history) == _without_time(full.history)
    for a, b in zip(
        second.model.state_dict().values(), full.model.state_dict().values(), strict=True
    ):
        assert np.array_equal(a.numpy(), b.numpy())
    training = second.model.metadata["training"]
    assert training["resumed"] is True and training["steps"] == 6
    assert training["data"]["psf"]["shape"] == list(psf.shape)
    assert training["data"]["noise_source"].startswith("estimated")
    assert training["data"]["phantoms"] == record["kinds"]
    assert [s["step"] for s in training["validation"]["scores"]] == [0, 2, 4, 6]
    assert training["start_val_psnr"] == full.history[0]["val_psnr"]
    assert training["fine_tuned_from"]["name"] == "denoise-2d"
    assert len(training["fine_tuned_from"]["fingerprint"]) == 16
    # the autosaved best model is an ordinary model file with the same record
    saved = dn.load_model(path)
    assert saved.metadata["training"]["mode"] == SCENES["both"][1]  # the default scenes


def test_adapt_resume_refuses_contradicting_settings(tmp_path):
    degraded, _, psf = blurred_phantom_data((64, 64), seed=1)
    path = tmp_path / "run.safetensors"
    kw = dict(seconds=None, steps=2, steps_per_epoch=2, **SMALL)
    run_events(adapt_iter("denoise-2d", degraded, psf=psf, autosave=path, **kw), None)
    again = dict(resume=path, seconds=None, steps=4, device="cpu", preview=False)
    with pytest.raises(ValueError, match="batch_size=4.*used 2"):
        run_events(adapt_iter("denoise-2d", degraded, batch_size=4, **again), None)
    with pytest.raises(ValueError, match="psf"):
        other = dn.make_psf("gaussian", shape=(9, 9), sigma=1.0)
        run_events(adapt_iter("denoise-2d", degraded, psf=other, **again), None)
    with pytest.raises(ValueError, match="patch_size"):
        run_events(adapt_iter("denoise-2d", degraded, patch_size=32, **again), None)
    with pytest.raises(ValueError, match="another starting model"):
        start = dn.load_model("denoise-2d")
        with torch.no_grad():
            for p in start.parameters():
                p.mul_(0.5)
        run_events(adapt_iter(start, degraded, **again), None)
    with pytest.raises(ValueError, match="no resume state"):
        run_events(adapt_iter("denoise-2d", degraded, resume=tmp_path / "x.safetensors"), None)
    # another image: its scenes would be taken with the first image's camera
    with pytest.raises(ValueError, match="adapted to another image of this shape"):
        run_events(adapt_iter("denoise-2d", degraded[::-1] * 3, **again), None)
    with pytest.raises(ValueError, match=r"shape \(64, 64\), this one has shape \(48, 64\)"):
        run_events(adapt_iter("denoise-2d", degraded[:48], **again), None)
    with pytest.raises(ValueError, match="seconds=None needs steps"):
        run_events(adapt_iter("denoise-2d", degraded, seconds=None), None)
    # a dn.train autosave is not an adapt run
    trained = tmp_path / "train.safetensors"
    clean = degraded.astype(np.float32)
    dn.train(
        clean,
        clean,
        epochs=1,
        steps_per_epoch=1,
        patch_size=16,
        batch_size=2,
        network={"base_channels": 8},
        device="cpu",
        autosave=trained,
    )
    with pytest.raises(ValueError, match="no adapt record"):
        run_events(adapt_iter("denoise-2d", degraded, resume=trained, seconds=None, steps=2), None)


# ------------------------------------------------------------------ the Train widget


@pytest.fixture
def dock(make_napari_viewer, monkeypatch, tmp_path, qtbot):
    from napari_deconvnet.io import registry
    from napari_deconvnet.widgets import train as train_module

    monkeypatch.setenv("NAPARI_DECONVNET_SESSION", str(tmp_path / "session"))
    errors = []
    monkeypatch.setattr(train_module, "show_error", errors.append)
    docked = []

    def open_dock(viewer):
        _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Train")
        widget.device.value = "cpu"
        docked.append(widget)
        return widget

    yield open_dock, errors, train_module
    for widget in docked:
        if widget.worker is not None:
            widget.stop()
            qtbot.waitUntil(lambda w=widget: w.worker is None, timeout=TIMEOUT_MS)
    registry.clear()


def _short_adapt_epochs(monkeypatch, train_module, events):
    original = train_module._adapt_job

    def short_job(model, image, options, *args):
        gen = original(model, image, {**options, "steps_per_epoch": 2}, *args)
        try:
            while True:
                summary = next(gen)
                events.append(summary)
                yield summary
        except StopIteration as done:
            return done.value

    monkeypatch.setattr(train_module, "_adapt_job", short_job)


def test_widget_resumes_an_adapt_session_with_its_psf_and_noise(
    dock, make_napari_viewer, qtbot, monkeypatch
):
    from napari_deconvnet.widgets.train import ADAPT, TRAIN_LAYERS

    open_dock, errors, train_module = dock
    degraded, _, _psf = blurred_phantom_data((64, 64), seed=2)
    viewer = make_napari_viewer()
    viewer.add_image(degraded, name="blurred")
    widget = open_dock(viewer)
    events = []
    _short_adapt_epochs(monkeypatch, train_module, events)
    widget.mode.value = ADAPT
    assert not widget.resume.native.isHidden()  # offered in both modes
    assert not widget.resume.enabled  # nothing autosaved yet
    widget.adapt.psf.source.value = "gaussian"
    widget.adapt.psf.forms.set_values({"sigma": 1.5})
    widget.adapt.psf.size.value = 9
    widget.adapt.seconds.value = 900
    widget.adapt.scenes.value = "image"
    widget.patch_size.value = 16
    widget.batch_size.value = 2
    widget.train()
    qtbot.waitUntil(lambda: len(widget.train_line.get_xdata()) >= 2, timeout=TIMEOUT_MS)
    widget.stop()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert errors == []
    before = widget.result.history
    last_step = before[-1]["step"]
    assert widget.resume.enabled
    viewer.window.remove_dock_widget("all")  # the dock is closed (or napari crashed)

    other = make_napari_viewer()
    other.add_image(degraded, name="blurred")
    new = open_dock(other)
    assert new.mode.value == TRAIN_LAYERS and new.resume.enabled
    assert new.adapt.psf.source.value == "none" and new.adapt.seconds.value == 120
    new.resume.value = True  # the adapt session's settings come back
    assert new.mode.value == ADAPT
    assert new.adapt.psf.source.value == "gaussian" and new.adapt.psf.size.value == 9
    assert new.adapt.psf.forms.values()["sigma"] == pytest.approx(1.5)
    assert new.adapt.seconds.value == 900 and new.adapt.scenes.value == "image"
    assert new.patch_size.value == 16 and new.batch_size.value == 2
    # with a PSF, adaptation starts from the shipped deconvolution model
    assert new.start_from.value == "deconv-2d" and new.image.value.name == "blurred"
    assert "adapting deconv-2d to" in new.status.value
    events.clear()
    new.train()
    qtbot.waitUntil(lambda: len(new.train_line.get_xdata()) >= len(before) + 1, timeout=TIMEOUT_MS)
    new.stop()
    qtbot.waitUntil(lambda: new.worker is None, timeout=TIMEOUT_MS)
    assert errors == []
    assert events[0]["kind"] == "start" and events[0]["step"] == last_step
    history = new.result.history
    assert history[: len(before)] == before  # the history goes on
    assert history[-1]["step"] > last_step
    training = new.result.model.metadata["training"]
    assert training["resumed"] is True
    assert training["data"]["psf"]["shape"] == [9, 9]
    record, psf = read_adapt_record(new_autosave(monkeypatch))
    assert psf.shape == (9, 9) and record["seconds"] == 900
    assert record["camera"]["noise"] == training["noise"]["model"]
    # training in the other mode does not resume the adapt session
    new.mode.value = TRAIN_LAYERS
    new.resume.value = True
    new.train()
    assert "ran in mode" in errors[-1] and new.worker is None


def new_autosave(monkeypatch):
    from napari_deconvnet.widgets._train_session import autosave_path, session_folder

    return autosave_path(session_folder())


def _rgb_pair(shape=(96, 96), seed=0):
    from napari_deconvnet.core.adapt import phantom

    rng = np.random.default_rng(seed)
    clean = np.stack([phantom(shape, rng=rng) for _ in range(3)], axis=-1)
    clean = (clean * np.array([0.9, 0.6, 0.3], np.float32)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.12, clean.shape)).astype(np.float32)
    return noisy, clean


@pytest.mark.parametrize("layout", ["rgb", "channels"])
def test_labels_validation_region_trains_on_rgb_and_multichannel_layers(
    dock, make_napari_viewer, qtbot, monkeypatch, layout
):
    from skimage.metrics import peak_signal_noise_ratio as psnr

    from napari_deconvnet.widgets.train import NEW_NETWORK

    open_dock, errors, train_module = dock
    original = train_module._train_job

    def small_job(inputs, targets, options, *args):  # a tiny network and short epochs
        network = {"ndim": 2, "base_channels": 8}
        options = {**options, "steps_per_epoch": 8, "lr": 1e-2, "network": network}
        return (yield from original(inputs, targets, options, *args))

    monkeypatch.setattr(train_module, "_train_job", small_job)
    noisy, clean = _rgb_pair()
    if layout == "channels":  # a (C, Y, X) stack: channels are leading planes
        noisy, clean = np.moveaxis(noisy, -1, 0).copy(), np.moveaxis(clean, -1, 0).copy()
    viewer = make_napari_viewer()
    rgb = layout == "rgb"
    viewer.add_image(noisy, name="noisy", rgb=rgb)
    viewer.add_image(clean, name="clean", rgb=rgb)
    assert viewer.layers["noisy"].rgb is rgb
    # the validation area painted at half resolution (scale 2): the labels follow the world
    labels = np.zeros((48, 48), np.uint8)
    labels[:, 36:] = 1
    viewer.add_labels(labels, name="validate", scale=(2.0, 2.0))
    widget = open_dock(viewer)
    widget.image.value = viewer.layers["noisy"]
    widget.target.value = viewer.layers["clean"]
    widget.validation_region.value = viewer.layers["validate"]
    widget.start_from.value = NEW_NETWORK
    widget.patch_size.value = 16
    widget.batch_size.value = 8
    widget.epochs.value = 4
    widget.loss.value = "mse"
    widget.train()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert errors == []
    result = widget.result
    assert result.improved and result.history[-1]["step"] > 0
    assert result.model.metadata["training"]["regions"] is True
    # the held-out validation columns are restored better than the input
    name = widget.use_in_restore()
    axes = "YXS" if rgb else None
    out = dn.restore(noisy, result.model, axes=axes, device="cpu")
    assert out.shape == noisy.shape
    held = (slice(None), slice(72, None)) if rgb else (slice(None), slice(None), slice(72, None))
    before = psnr(clean[held], noisy[held], data_range=1.0)
    after = psnr(clean[held], out[held], data_range=1.0)
    assert after > before + 1.0
    assert name is not None


def test_session_settings_carry_the_synthetic_noise_and_psf(dock, make_napari_viewer):
    from napari_deconvnet.widgets._train_session import apply_settings, form_settings
    from napari_deconvnet.widgets.train import SYNTHETIC

    open_dock, errors, _ = dock
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64), np.float32), name="clean")
    widget = open_dock(viewer)
    widget.target.value = SYNTHETIC
    widget.synthetic.noise.value = "poisson"
    widget.synthetic.noise_params.set_values({"peak": 7.5})
    widget.synthetic.psf.source.value = "gaussian"
    widget.synthetic.psf.forms.set_values({"sigma": 2.5})
    settings = form_settings(widget)
    assert settings["synthetic"]["noise"] == "poisson"
    assert settings["synthetic"]["psf"]["source"] == "gaussian"

    other = make_napari_viewer()
    other.add_image(np.zeros((64, 64), np.float32), name="clean")
    new = open_dock(other)
    assert new.synthetic.noise.value != "poisson"
    apply_settings(new, settings)
    assert new.target.value == SYNTHETIC
    assert new.synthetic.noise.value == "poisson"
    assert new.synthetic.noise_params.values()["peak"] == pytest.approx(7.5)
    assert new.synthetic.psf.source.value == "gaussian"
    assert new.synthetic.psf.forms.values()["sigma"] == pytest.approx(2.5)
    assert errors == []
