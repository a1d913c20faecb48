"""Adapting to a stack whose images differ in brightness (channels, a bleaching
time-lapse): pairs at each image's brightness, in its own statistics."""

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.core.adapt import LEVELS_APART, image_levels
from napari_deconvnet.core.persistence import load_model
from napari_deconvnet.core.synthetic_pairs import SyntheticPairs


def _camera(amplitude=800.0):
    return {"noise": "poisson", "params": {"gain": 1.0}, "offset": 0.0, "amplitude": amplitude}


def test_pairs_take_each_images_brightness_and_statistics():
    levels = [(800.0, 20.0, 780.0), (40.0, 5.0, 38.0)]
    data = SyntheticPairs(
        ndim=2, size=(32, 32), camera=_camera(), stats=(20.0, 780.0), kinds=["nuclei"],
        n_validation=32, pool=4, seed=1, levels=levels,
    )  # fmt: skip
    # validation: each pair in the statistics of the image it was drawn at, both present
    offsets, scales = np.asarray(data.val["offset"]), np.asarray(data.val["scale"])
    assert set(np.round(scales).tolist()) == {780.0, 38.0}
    np.testing.assert_array_equal(offsets == 5.0, scales == 38.0)
    # in the network's units every pair spans about its image's range (0.6-1.3 of it),
    # the dim image's too; at the stack's statistics the dim pairs were 20x fainter
    y = data.val["y"].numpy().reshape(32, -1)
    tops = y.max(axis=1)
    assert np.all(tops > 0.4) and np.all(tops < 1.6), tops
    # photon noise at each image's own level: relatively stronger in the dim pairs
    x = data.val["x"].numpy().reshape(32, -1)
    spread = np.std(x - y, axis=1)
    dim, bright = scales == 38.0, scales == 780.0
    assert np.median(spread[dim]) > 2 * np.median(spread[bright])
    # training batches too, and the same batches again for the same seed (resume)
    again = SyntheticPairs(
        ndim=2, size=(32, 32), camera=_camera(), stats=(20.0, 780.0), kinds=["nuclei"],
        n_validation=32, pool=4, seed=1, levels=levels,
    )  # fmt: skip
    for _ in range(2):
        (xa, ya, _), (xb, yb, _) = data.batch(16), again.batch(16)
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())


def test_image_levels_only_for_stacks_of_different_brightness():
    net = load_model("denoise-2d")
    rng = np.random.default_rng(0)
    bright = rng.poisson(rng.random((48, 48)) * 800).astype(np.float32)
    dim = rng.poisson(rng.random((48, 48)) * 40).astype(np.float32)
    camera = _camera()
    assert image_levels(net, bright, camera, 2) is None  # one image
    similar = np.stack([bright, bright * 1.1])
    assert image_levels(net, similar, camera, 2) is None  # one brightness
    levels = image_levels(net, np.stack([bright, dim]), camera, 2)
    assert levels is not None and len(levels) == 2
    assert levels[0][0] / levels[1][0] > LEVELS_APART  # amplitudes
    assert levels[1][2] == pytest.approx(float(np.ptp(np.percentile(dim, [0.5, 99.5]))), rel=0.05)


def test_adapting_a_two_channel_image_records_its_levels_and_keeps_both_channels():
    """A bright and a dim channel adapted together: the record has both images'
    levels, and the dim channel gains over the start (at the stack's brightness
    alone it lost 1.8 dB here, and 1.3 to 4.2 dB in benchmarks/adapt_channels.py)."""
    from skimage import data as images
    from skimage.transform import resize

    rng = np.random.default_rng(0)
    a = resize(images.camera().astype(np.float32) / 255, (64, 64))
    b = resize(images.moon().astype(np.float32) / 255, (64, 64))
    clean = np.stack([a * 800 + 20, b * 40 + 5]).astype(np.float32)
    noisy = rng.poisson(clean).astype(np.float32)
    model = dn.adapt("denoise-2d", noisy, steps=60, seed=0)
    levels = model.metadata["training"]["image_levels"]
    assert len(levels) == 2 and levels[0][0] > 10 * levels[1][0]
    shipped = dn.restore(noisy, "denoise-2d", axes="CYX")
    adapted = dn.restore(noisy, model, axes="CYX")
    span = float(np.ptp(clean[1]))
    start = dn.psnr(clean[1], shipped[1], data_range=span)
    # (30.92 -> 31.64 dB; drawn at the stack's brightness alone: 29.13)
    assert dn.psnr(clean[1], adapted[1], data_range=span) >= start + 0.3
    span = float(np.ptp(clean[0]))
    start = dn.psnr(clean[0], shipped[0], data_range=span)
    assert dn.psnr(clean[0], adapted[0], data_range=span) >= start - 0.1
