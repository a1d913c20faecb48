"""Dead-leaves scenes (core.phantoms.dead_leaves) and the denoise-2d script's share of them."""

import sys
from pathlib import Path

import numpy as np
import pytest

from napari_deconvnet.core.phantoms import dead_leaves

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def _radial_spectrum_slope(image: np.ndarray) -> float:
    """Slope of log power against log frequency, over the middle frequencies."""
    f = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))) ** 2
    h, w = image.shape
    yy, xx = np.indices(f.shape)
    r = np.hypot(yy - h // 2, xx - w // 2).astype(int)
    power = np.bincount(r.ravel(), f.ravel()) / np.maximum(np.bincount(r.ravel()), 1)
    k = np.arange(4, h // 4)
    return float(np.polyfit(np.log(k), np.log(power[k]), 1)[0])


def test_dead_leaves_are_seeded_bounded_and_cover_the_image():
    a = dead_leaves(np.random.default_rng(3), (96, 128))
    b = dead_leaves(np.random.default_rng(3), (96, 128))
    c = dead_leaves(np.random.default_rng(4), (96, 128))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (96, 128) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    # a scene, not a flat field: contrast over the whole range
    assert a.std() > 0.1 and a.max() - a.min() > 0.6


def test_dead_leaves_have_the_power_spectrum_of_photographs():
    # natural photographs fall off close to 1/f**2; white noise is flat and one
    # smooth blob falls far faster
    slopes = [
        _radial_spectrum_slope(dead_leaves(np.random.default_rng(s), (256, 256))) for s in range(4)
    ]
    assert all(-3.2 < s < -1.4 for s in slopes), slopes


def test_dead_leaves_without_texture_or_blur_are_piecewise_flat():
    image = dead_leaves(np.random.default_rng(5), (128, 128), texture=0.0, blur=(0.0, 0.0))
    # flat shapes: most pixels equal their right-hand neighbour, and few grey levels
    same = np.mean(image[:, 1:] == image[:, :-1])
    assert same > 0.5
    assert len(np.unique(image)) < 0.5 * image.size
    textured = dead_leaves(np.random.default_rng(5), (128, 128), texture=1.0, blur=(0.0, 0.0))
    assert np.mean(textured[:, 1:] == textured[:, :-1]) < same


def test_dead_leaves_refuse_an_empty_shape():
    with pytest.raises(ValueError, match="shape must be positive"):
        dead_leaves(np.random.default_rng(0), (0, 32))


def test_the_denoise_2d_sampler_draws_that_share_of_photograph_regions_from_dead_leaves():
    train_default = pytest.importorskip("train_default")
    rng = np.random.default_rng(1)
    cells = [np.full((256, 256), 0.5, np.float32)]
    scenes = [dead_leaves(rng, (300, 300)) + 10.0 for _ in range(2)]  # marked by their level
    images = {"coffee": rng.random((300, 300)).astype(np.float32)}

    def share(p):
        leaves = (p, scenes) if p > 0 else None
        sampler = train_default.Sampler(
            images, cells, np.random.default_rng(2), 64, (192, 256), 4, leaves=leaves
        )
        sampler.names, sampler.weights = ["coffee"], np.array([1.0])
        regions = [sampler._region() for _ in range(2000)]
        return np.mean([r.min() >= 10.0 for r in regions])

    # 80% of regions are photographs; 30% of those dead leaves
    assert share(0.3) == pytest.approx((1 - train_default.PHANTOM_WEIGHT) * 0.3, abs=0.03)
    assert share(0.0) == 0.0


def test_the_denoise_2d_sampler_without_dead_leaves_draws_as_before():
    train_default = pytest.importorskip("train_default")
    images = {"coffee": np.random.default_rng(0).random((300, 300)).astype(np.float32)}
    cells = [np.full((256, 256), 0.5, np.float32)]

    def regions(**kwargs):
        sampler = train_default.Sampler(
            images, cells, np.random.default_rng(2), 64, (192, 256), 4, **kwargs
        )
        sampler.names, sampler.weights = ["coffee"], np.array([1.0])
        return [sampler._region() for _ in range(20)]

    for a, b in zip(regions(), regions(leaves=None), strict=True):
        np.testing.assert_array_equal(a, b)
