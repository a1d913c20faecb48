"""Fine-tuning that does not forget: the default recipe against an unprotected one.

The shipped ``denoise-2d`` is fine-tuned for a fixed number of steps on a
texture with spatially correlated Gaussian noise (noise it does not know),
once with the default recipe (L2-SP and rehearsal) and once with both off,
same seed and same learning rate. On a different image type with
Poisson-Gaussian noise (membranes and beads, noise the shipped model knows)
the default recipe must lose much less than the unprotected run, and on a
held-out image of the task it must still beat the shipped model. Small
images, fixed steps, no timing.
"""

import numpy as np
import pytest
import torch
from scipy import ndimage

import napari_deconvnet as dn
from napari_deconvnet.core.phantoms import phantom
from napari_deconvnet.core.train_setup import L2SP_FINE_TUNE, REHEARSAL_FINE_TUNE

SHAPE = (128, 128)
STEPS = dict(epochs=2, steps_per_epoch=5, patch_size=32, batch_size=8, device="cpu")


def _correlated(seed):
    """A texture with white Gaussian noise blurred by sigma 1 px (std 0.1)."""
    clean = phantom(SHAPE, "textures", rng=seed, mix=1)
    field = ndimage.gaussian_filter(np.random.default_rng(seed + 100).standard_normal(SHAPE), 1.0)
    return (clean + 0.1 * field / field.std()).astype(np.float32), clean.astype(np.float32)


def _poisson_gaussian(seed):
    """Membranes and beads, peak 20 photons, read noise 2 e-, offset 100."""
    clean = 20.0 * phantom(SHAPE, ["membranes", "beads"], rng=seed, mix=2)
    noisy = dn.synthesize(
        clean, "poisson-gaussian", seed=seed + 100, gain=1.0, offset=100.0, read_noise=2.0
    )
    return np.asarray(noisy, np.float32), (clean + 100.0).astype(np.float32)


def _psnr(model, pair):
    noisy, clean = pair
    out = dn.restore(noisy, model, device="cpu")
    return float(dn.psnr(out, clean, data_range=float(clean.max() - clean.min())))


@pytest.fixture(scope="module")
def runs():
    return _measure()


def _measure():
    """Fine-tune with the defaults and without protection; score both images."""
    torch.manual_seed(0)
    train, task, probe = _correlated(0), _correlated(1), _poisson_gaussian(2)
    shipped = dn.load_model("default")
    protected = dn.train(*train, model="default", seed=0, preview=False, **STEPS)
    free = dn.train(*train, model="default", l2sp=0, rehearsal=0, seed=0, preview=False, **STEPS)
    return {
        "config": protected.config,
        "steps": (protected.steps, free.steps),
        "task": {k: _psnr(m, task) for k, m in _models(shipped, protected, free)},
        "probe": {k: _psnr(m, probe) for k, m in _models(shipped, protected, free)},
    }


def _models(shipped, protected, free):
    return (("shipped", shipped), ("protected", protected.model), ("free", free.model))


def test_the_defaults_are_the_fine_tuning_recipe(runs):
    config = runs["config"]
    assert config.fine_tuning
    assert config.l2sp == L2SP_FINE_TUNE > 0
    assert config.rehearsal == REHEARSAL_FINE_TUNE > 0
    assert runs["steps"] == (10, 10)


def test_default_fine_tuning_forgets_less_than_an_unprotected_one(runs):
    probe = runs["probe"]
    lost_protected = probe["shipped"] - probe["protected"]
    lost_free = probe["shipped"] - probe["free"]
    # measured (2026-11-30): the unprotected run loses 4.6 dB, the default recipe 0.3 dB;
    # with the denoise-2d shipped in session 26 (2026-12-02): 5.7 and 1.5 dB (README,
    # *Fine-tuning that does not forget*)
    assert lost_free > 2.0, probe
    assert lost_protected < 2.0, probe
    assert lost_free - lost_protected > 2.0, probe


def test_default_fine_tuning_still_gains_on_the_unknown_noise(runs):
    task = runs["task"]
    # measured: +1.2 dB over the shipped model on a held-out texture (unprotected: +1.3)
    assert task["protected"] > task["shipped"] + 0.5, task
