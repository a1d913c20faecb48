"""Intensity jitter in training: one gain and offset per patch, for input and target alike."""

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core.train_setup import INTENSITY_JITTER_SCRATCH, build_trainer

SMALL = {"ndim": 2, "base_channels": 8, "depth": 1}


def _image(seed=0, shape=(96, 96)):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _one_step(*data, **options):
    """``dn.train`` for one step of two 32² patches on the CPU."""
    quick = dict(epochs=1, steps_per_epoch=1, patch_size=32, batch_size=2, device="cpu")
    return dn.train(*data, preview=False, **quick, **options)


def _first_batch(jitter, targets=None):
    img = _image()
    trainer = build_trainer(
        img,
        img.copy() if targets is None else targets,
        network=SMALL,
        patch_size=32,
        batch_size=8,
        epochs=1,
        steps_per_epoch=1,
        device="cpu",
        preview=False,
        intensity_jitter=jitter,
    )
    return trainer, trainer.data.batch(8)


@pytest.mark.parametrize("jitter", [0.25, 0.8])
def test_each_patch_gets_one_gain_and_offset_within_the_bounds(jitter):
    _, (x0, y0, _) = _first_batch(0.0)
    trainer, (x, y, _) = _first_batch(jitter)
    assert trainer.config.intensity_jitter == jitter
    # the jitter draws come after the patches', so the first batch has the same patches
    gains, offsets = [], []
    for a, b in zip(x0.reshape(8, -1).double(), x.reshape(8, -1).double(), strict=True):
        design = torch.stack([a, torch.ones_like(a)], 1)
        g, o = torch.linalg.lstsq(design, b[:, None]).solution[:, 0].tolist()
        assert torch.allclose(g * a + o, b, atol=1e-5)  # exactly affine
        gains.append(g)
        offsets.append(o)
    assert all(1 / (1 + jitter) - 1e-6 <= g <= 1 + jitter + 1e-6 for g in gains)
    assert all(abs(o) <= 0.4 * jitter + 1e-6 for o in offsets)
    assert np.std(gains) > 0.02 and np.std(offsets) > 0.01  # drawn per patch
    # the target follows its input: identical pairs stay identical
    assert torch.equal(x, y)
    assert not torch.equal(y, y0)


def test_defaults_on_for_a_new_denoiser_off_for_fine_tuning():
    trainer, _ = _first_batch(None)
    assert trainer.config.intensity_jitter == INTENSITY_JITTER_SCRATCH == 0.25
    img = _image()
    assert _one_step(img, img, model="default").config.intensity_jitter == 0.0
    # off: the batches are the unjittered ones, exactly
    _, (x0, _, _) = _first_batch(0.0)
    trainer, (x, _, _) = _first_batch(0.0)
    assert torch.equal(x, x0) and trainer.config.intensity_jitter == 0.0


def test_bad_intensity_jitter_is_refused():
    img = _image(shape=(64, 64))
    with pytest.raises(TypeError, match="intensity_jitter must be a number"):
        dn.train(img, img, intensity_jitter="0.2", epochs=1)
    with pytest.raises(TypeError, match="intensity_jitter must be a number"):
        dn.train(img, img, intensity_jitter=True, epochs=1)
    with pytest.raises(ValueError, match=r"intensity_jitter must be in \[0, 1\]"):
        dn.train(img, img, intensity_jitter=1.5, epochs=1)
    with pytest.raises(ValueError, match="for plain denoisers"):
        _one_step(img, img, model="deconv-2d", psf="gaussian", intensity_jitter=0.3)
    # and none is drawn for such a model by default
    assert _one_step(img, img, model="salt-and-pepper").config.intensity_jitter == 0.0


def test_synthetic_pairs_get_no_jitter_by_default():
    img = _image(shape=(64, 64))
    result = _one_step(img, noise={"model": "gaussian", "sigma": 0.1}, network=SMALL)
    assert result.config.mode == "synthetic" and result.config.intensity_jitter == 0.0
    result = _one_step(img, network=SMALL)
    assert result.config.mode == "self-supervised"
    assert result.config.intensity_jitter == INTENSITY_JITTER_SCRATCH
