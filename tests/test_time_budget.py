"""The time budget (`seconds` of dn.adapt, `max_seconds` of dn.train) counts the set-up too."""

import importlib
import time

import napari_deconvnet as dn
from napari_deconvnet.core import train_setup
from napari_deconvnet.core.phantoms import phantom

# the module, not the function that napari_deconvnet.core re-exports under its name
adapt_module = importlib.import_module("napari_deconvnet.core.adapt")


def _slow(function, seconds):
    def wrapped(*args, **kwargs):
        time.sleep(seconds)
        return function(*args, **kwargs)

    return wrapped


def test_adapt_counts_the_scenes_restore_in_its_seconds(monkeypatch):
    # A set-up (the starting model's restore of the image) longer than the whole
    # budget leaves no time to train: the starting model comes back, after no step.
    noisy = dn.synthesize(phantom((64, 64), rng=0), "gaussian", sigma=0.1, seed=0)
    monkeypatch.setattr(adapt_module, "_image_scenes", _slow(adapt_module._image_scenes, 1.5))
    options = dict(batch_size=2, patch_size=32, steps_per_epoch=1, device="cpu", preview=False)
    result = adapt_module.adapt_iter("default", noisy, seconds=1.0, **options)
    while True:
        try:
            next(result)
        except StopIteration as end:
            outcome = end.value
            break
    assert outcome.steps == 0 and outcome.stop_reason == "max_seconds"
    assert outcome.improved is False
    assert outcome.seconds >= 1.5  # the set-up is on the clock


def test_train_counts_its_set_up_in_max_seconds(monkeypatch):
    rng_image = phantom((64, 64), rng=1)
    noisy = dn.synthesize(rng_image, "gaussian", sigma=0.1, seed=1)
    monkeypatch.setattr(train_setup, "rehearsal_pairs", _slow(train_setup.rehearsal_pairs, 1.5))
    result = dn.train(
        noisy,
        rng_image,
        model="default",
        max_seconds=1.0,
        patch_size=32,
        batch_size=2,
        device="cpu",
        preview=False,
    )
    assert result.steps == 0 and result.stop_reason == "max_seconds"
    assert result.seconds >= 1.5
    # without the delay, the same budget trains
    monkeypatch.undo()
    result = dn.train(
        noisy,
        rng_image,
        model="default",
        max_seconds=3.0,
        patch_size=32,
        batch_size=2,
        device="cpu",
        preview=False,
    )
    assert result.steps > 0
