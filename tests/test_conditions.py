"""Trained models record their training conditions; restores unlike them are reported."""

import warnings

import dask.array as da
import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.core.conditions import (
    ConditionsWarning,
    collect_conditions,
    noise_level,
    psf_widths,
)
from napari_deconvnet.io.registry import describe


def _scene(shape=(96, 96), seed=0):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    clean = 0.5 + 0.4 * np.sin(5 * sum(grids) + rng.uniform(0, 6))
    return clean.astype(np.float32)


def _noisy(clean, sigma, seed=1):
    rng = np.random.default_rng(seed)
    return (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)


def _conditions_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if issubclass(w.category, ConditionsWarning)]


def test_noise_level_ignores_offset_and_scale_and_follows_the_noise():
    clean = _scene((128, 128))
    level = noise_level(_noisy(clean, 0.05))
    # a camera's offset and gain do not change it
    assert noise_level(_noisy(clean, 0.05) * 37.0 + 100.0) == pytest.approx(level, rel=1e-3)
    # about sigma over the 1st-99.8th percentile range (a bit over 0.8 for this scene)
    assert 0.05 / 1.1 < level < 0.05 / 0.75
    levels = [noise_level(_noisy(clean, s)) for s in (0.01, 0.02, 0.05, 0.1, 0.2)]
    assert all(b > 1.4 * a for a, b in zip(levels, levels[1:], strict=False))
    assert levels[-1] > 8 * levels[0]
    assert noise_level(np.ones((64, 64), np.float32)) is None  # flat: unmeasurable


def test_psf_widths_are_the_standard_deviations_per_axis():
    psf = dn.make_psf("gaussian", shape=(31, 41), sigma=(2.0, 3.5))
    np.testing.assert_allclose(psf_widths(psf), [2.0, 3.5], rtol=0.02)
    assert psf_widths(None) is None


def _weakened(name):
    """Shipped model `name` with its last layer's weights scaled by 0.3: a start that a
    few steps of training beat (a fine-tuning that keeps its start unchanged hands it
    back with the start's conditions, none for a shipped model)."""
    import torch

    net = dn.load_model(name)
    with torch.no_grad():
        [p for p in net.parameters() if p.ndim > 1][-1].mul_(0.3)
    return net


def _fine_tune(*data, **options):
    """A few steps of `dn.train` (tiny patches and batches): its model."""
    settings = dict(epochs=1, steps_per_epoch=1, patch_size=32, batch_size=2, preview=False)
    return dn.train(*data, device="cpu", **{**settings, **options}).model


@pytest.fixture(scope="module")
def specialist():
    """`denoise-2d` fine-tuned without rehearsal on sigma 0.05 (a narrow specialist)."""
    clean = _scene((96, 96))
    specialist = _fine_tune(
        _noisy(clean, 0.05), clean, model=_weakened("default"), rehearsal=0, steps_per_epoch=2
    )
    assert specialist.metadata["training"]["improved"] is True
    return specialist


def test_training_records_its_conditions(specialist, tmp_path):
    conditions = specialist.metadata["training"]["conditions"]
    lo, hi = conditions["noise_level"]
    assert lo == hi == pytest.approx(noise_level(_noisy(_scene((96, 96)), 0.05)), rel=0.05)
    assert conditions["psf_widths"] is None and conditions["rehearsed"] is False
    # the model card (`napari-deconvnet info`) says so
    path = dn.save_model(specialist, tmp_path / "mine.safetensors")
    card = describe(dn.model_info(path), path)
    assert f"trained on noise levels {lo:.3g}-{hi:.3g} of the range" in card
    assert "outside 1.5x of that warn" in card


def test_restore_warns_outside_the_training_conditions(specialist, tmp_path):
    clean = _scene((96, 96), seed=3)
    same = _conditions_warnings(lambda: dn.restore(_noisy(clean, 0.05, 5), specialist))
    assert same == []
    noisier = _conditions_warnings(lambda: dn.restore(_noisy(clean, 0.2, 5), specialist))
    assert len(noisier) == 1 and "noisier than the data" in noisier[0]
    assert "'denoise-2d'" in noisier[0]  # the model it started from, to compare with
    cleaner = _conditions_warnings(lambda: dn.restore(_noisy(clean, 0.01, 5), specialist))
    assert len(cleaner) == 1 and "less noisy" in cleaner[0]
    # the record survives the model file; a lazy image is checked on a crop
    path = dn.save_model(specialist, tmp_path / "mine.safetensors")
    lazy = da.from_array(_noisy(clean, 0.2, 5), chunks=48)
    assert len(_conditions_warnings(lambda: dn.restore(lazy, path))) == 1
    # the shipped model records no conditions: never checked
    assert _conditions_warnings(lambda: dn.restore(_noisy(clean, 0.2, 5), "default")) == []


def test_an_impulse_model_is_not_checked_on_a_noise_level():
    # session 71: a salt-and-pepper model fine-tuned on impulses at the data's extremes
    # was told that the same impulses at 0 and 65535 were "11.9x less noisy"
    net = dn.load_model("salt-and-pepper")
    net.metadata = {**net.metadata, "training": {"conditions": {"noise_level": [0.3, 0.3]}}}
    rng = np.random.default_rng(0)
    noisy = (200 + 600 * _scene((96, 96), seed=3)).astype(np.uint16)
    noisy[rng.random(noisy.shape) < 0.1] = 65535
    assert _conditions_warnings(lambda: dn.restore(noisy, net)) == []
    plain = dn.load_model("denoise-2d")  # the same record on a denoiser is checked
    plain.metadata = {**plain.metadata, "training": {"conditions": {"noise_level": [0.3, 0.3]}}}
    assert len(_conditions_warnings(lambda: dn.restore(noisy, plain))) == 1


def test_collected_instead_of_warned_in_a_widget_thread(specialist):
    noisy = _noisy(_scene((96, 96)), 0.2, 5)
    with collect_conditions() as notes:
        caught = _conditions_warnings(lambda: dn.restore(noisy, specialist))
    assert caught == [] and len(notes) == 1 and "noisier" in notes[0]


def test_rehearsed_fine_tuning_is_not_checked_for_noise():
    clean = _scene((96, 96))
    net = _fine_tune(_noisy(clean, 0.05), clean, model=_weakened("default"))
    assert net.metadata["training"]["conditions"]["rehearsed"] is True
    assert _conditions_warnings(lambda: dn.restore(_noisy(clean, 0.2), net)) == []


def test_a_deconvolution_model_records_its_psf_and_is_checked_on_noise_only():
    """The PSF reaches these models through their classical channel: another PSF is not
    reported (measured: fine-tuned 3D models gained with a widefield PSF), other noise is."""
    clean = _scene((96, 96))
    psf = dn.make_psf("gaussian", shape=(15, 15), sigma=2.0)
    net = _fine_tune(
        clean,
        model="deconv-2d",
        psf=psf,
        noise={"model": "gaussian", "sigma": 0.02},
    )
    conditions = net.metadata["training"]["conditions"]
    np.testing.assert_allclose(conditions["psf_widths"], [2, 2], rtol=0.05)
    assert conditions["rehearsed"] is False  # deconvolution models rehearse nothing
    blurred = dn.synthesize(clean, "gaussian", sigma=0.02, psf=psf, seed=2)
    wide = dn.make_psf("gaussian", shape=(21, 21), sigma=3.0)
    assert _conditions_warnings(lambda: dn.restore(blurred, net, psf=wide)) == []
    noisier = dn.synthesize(clean, "gaussian", sigma=0.2, psf=psf, seed=2)
    assert len(_conditions_warnings(lambda: dn.restore(noisier, net, psf=psf))) == 1


def test_adapt_records_the_image_noise_and_warns_elsewhere():
    clean = _scene((96, 96))
    image = _noisy(clean, 0.05)
    net = dn.adapt("default", image, steps=1, seconds=None, device="cpu", preview=False)
    lo, hi = net.metadata["training"]["conditions"]["noise_level"]
    assert lo == hi == pytest.approx(noise_level(image), rel=1e-6)
    caught = _conditions_warnings(lambda: dn.restore(_noisy(clean, 0.25, 3), net))
    assert len(caught) == 1


def test_train_widget_preview_does_not_warn_every_time(specialist):
    """The live preview restores with the model in training: no warning per preview."""
    from napari_deconvnet.widgets._train_job import preview

    noisy = _noisy(_scene((96, 96)), 0.2, 5)
    request = {"index": (slice(None), slice(None)), "plane": None}
    caught = _conditions_warnings(lambda: preview(specialist, noisy, request, "cpu"))
    assert caught == []
    # the same restore outside the preview does warn
    assert len(_conditions_warnings(lambda: dn.restore(noisy, specialist))) == 1
