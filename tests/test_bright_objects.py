"""Bright objects in the training data: the generator, and the training scripts' use of it."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from napari_deconvnet.core.phantoms import BRIGHT_CONTRAST, bright_objects

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def test_objects_are_small_bright_and_seeded():
    peaks, covers = [], []
    for seed in range(40):
        objects, peak = bright_objects(seed, (128, 128))
        assert objects.dtype == np.float32 and objects.min() >= 0
        assert objects.max() == pytest.approx(peak, rel=1e-5)
        assert BRIGHT_CONTRAST[0] <= peak <= BRIGHT_CONTRAST[1]
        covers.append(np.mean(objects > 1e-3 * peak))
        peaks.append(peak)
    # log-uniform: about as many draws below the geometric middle as above
    middle = np.sqrt(np.prod(BRIGHT_CONTRAST))
    assert 0.25 < np.mean(np.array(peaks) < middle) < 0.75
    # a few objects, not a bright scene: they cover a small part of the image
    assert np.median(covers) < 0.1 and max(covers) < 0.5
    a, _ = bright_objects(7, (32, 48, 48))
    b, _ = bright_objects(7, (32, 48, 48))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (32, 48, 48)
    fixed, peak = bright_objects(1, (64, 64), contrast=50.0)
    assert peak == 50.0 and fixed.max() == pytest.approx(50.0)


@pytest.mark.parametrize("bad", [0.0, -3.0, float("nan"), float("inf")])
def test_bad_contrast_and_shape_are_refused(bad):
    with pytest.raises(ValueError, match="contrast"):
        bright_objects(0, (16, 16), contrast=bad)
    with pytest.raises(ValueError, match="2 or 3"):
        bright_objects(0, (16,))


def _strips():
    rng = np.random.default_rng(0)
    return {name: rng.random((320, 160)).astype(np.float32) for name in ("a", "b")}


def test_train_default_bright_validation_pairs_are_scored_around_the_objects():
    train_default = pytest.importorskip("train_default")
    plain = train_default.validation_set(_strips(), 0)
    bright = train_default.validation_set(_strips(), 0, bright=True)
    extra = bright[len(plain) :]
    assert len(extra) == 2 * len(train_default.BRIGHT_NOISES)
    for a, b in zip(plain, bright, strict=False):  # the other pairs stay as they were
        np.testing.assert_array_equal(a["noisy"], b["noisy"])
    for pair in extra:
        mask, clean = pair["mask"], pair["clean"]
        assert 0.5 < mask.mean() < 1.0  # most of the image is the scene around the objects
        assert clean[mask].max() < 3.0 and clean.max() >= 29.0  # the scene: 99.5th pct. at 1
    # scored on the mask: an output wrong only on the objects costs nothing
    pair = extra[0]
    spoiled_objects = np.where(pair["mask"], pair["clean"], 0.0).astype(np.float32)
    assert train_default.pair_psnr(pair, spoiled_objects) > 100
    spoiled_scene = pair["clean"] + 0.1 * pair["mask"]
    assert train_default.pair_psnr(pair, spoiled_scene) == pytest.approx(20.0, abs=1e-3)


def test_train_default_sampler_adds_objects_to_that_share_of_regions(monkeypatch):
    train_default = pytest.importorskip("train_default")
    rng = np.random.default_rng(1)
    cells = [rng.random((256, 256)).astype(np.float32) * 0.5]
    images = {"coffee": rng.random((300, 300)).astype(np.float32) * 0.5}
    degrade, regions = train_default.degrade, []

    def recording(rng, clean, *args):
        regions.append(clean)
        return degrade(rng, clean, *args)

    monkeypatch.setattr(train_default, "degrade", recording)

    def bright_share(share):
        regions.clear()
        sampler = train_default.Sampler(
            images, cells, np.random.default_rng(2), 64, (192, 256), 1, bright=share
        )
        sampler.names, sampler.weights = ["coffee"], np.array([1.0])
        xs, _ = sampler.batch(200)
        return float(np.mean([r.max() > 2.5 for r in regions])), xs

    share, xs = bright_share(0.0)
    assert share == 0.0 and float(xs.amax()) < 2.5
    share, xs = bright_share(0.5)
    assert 0.4 < share < 0.6
    assert float(xs.amax()) > 2.5  # normalised by percentiles: objects lie far above 1


def test_train_models_bright_objects_in_batches_and_validation(monkeypatch):
    shipped = pytest.importorskip("_shipped_data")
    train_models = pytest.importorskip("train_models")
    from napari_deconvnet.core.model import DeconvNet, DeconvNetConfig

    task = dataclasses.replace(train_models.TASKS["deconv-2d"], bright_objects=1.0)
    strips = {"a": np.random.default_rng(0).random((320, 160)).astype(np.float32)}
    plain = shipped.validation_set(train_models.TASKS["deconv-2d"], strips, 0)
    pairs = shipped.validation_set(task, strips, 0)
    extra = pairs[len(plain) :]
    assert len(extra) == len(shipped.GENERAL_VALIDATION_KINDS) * len(
        shipped.BRIGHT_VALIDATION_CONTRAST
    )
    for a, b in zip(plain, pairs, strict=False):
        np.testing.assert_array_equal(a["noisy"], b["noisy"])
    assert all(p["psf"] is not None and p["mask"].mean() > 0.5 for p in extra)
    # the batches keep the bright regions (the empty-region check looks around them)
    config = train_models.model_config(task)
    net = DeconvNet(DeconvNetConfig(**config))
    conditioning = train_models.CONDITIONING["deconv-2d"]
    net.metadata = {"name": "deconv-2d", "needs_psf": True, "conditioning": conditioning}
    phantoms = [np.random.default_rng(4).random((160, 160)).astype(np.float32) * 0.6]

    def one_bead(rng, shape):  # too small for the 99.5th percentile: it lies far above 1
        bead = np.zeros(shape, np.float32)
        bead[tuple(s // 2 for s in shape)] = 1.0
        bead = ndimage.gaussian_filter(bead, 1.0)
        return 300.0 * bead / bead.max(), 300.0

    monkeypatch.setattr(shipped, "bright_objects", one_bead)
    sampler = shipped.Sampler(task, {}, phantoms, net, np.random.default_rng(5))
    _, ys = sampler.batch(16)
    # objects far above the scene's 1 (normalised values above 10 used to be dropped as
    # "a nearly empty region"; the check now looks around the objects)
    assert float(ys.amax()) > 10
    with pytest.raises(SystemExit, match="bright-objects"):
        argv = ["--model", "salt-and-pepper", "--bright-objects", "0.2", "--steps", "1"]
        train_models.main(argv)


def test_range_hdr_mse_is_range_mse_in_range_and_relative_above():
    import torch

    shipped = pytest.importorskip("_shipped_data")
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 1, 8, 8, generator=g) * 0.9
    pred = target + 0.05 * torch.randn(3, 1, 8, 8, generator=g)
    pred = pred.clamp(max=1.0)
    weights = torch.tensor([1.0, 4.0, 0.5]).view(3, 1, 1, 1).expand(3, 1, 8, 8)
    y = torch.cat([target, weights], 1)
    assert float(shipped.range_hdr_mse(pred, y)) == pytest.approx(
        float(shipped.range_mse(pred, y))
    )
    # a bright pixel 10% off costs what 10% off costs anywhere above 1
    pred2, y2 = pred.clone(), y.clone()
    y2[0, 0, 4, 4], pred2[0, 0, 4, 4] = 300.0, 330.0
    excess = float(shipped.range_hdr_mse(pred2, y2) - shipped.range_hdr_mse(pred, y))
    assert 0 < excess < 1e-3
