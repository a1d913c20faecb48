"""The shipped default model: it loads, and it denoises images it was never trained on.

The benchmark images (camera here) are excluded from training by
``scripts/train_default.py``, which also reports the camera gain it reached.
"""

from pathlib import Path

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio as psnr

import napari_deconvnet as dn
from napari_deconvnet.core.noise import synthesize

WEIGHTS = Path(dn.__file__).parent / "weights" / "denoise-2d.safetensors"


@pytest.fixture(scope="module")
def model():
    return dn.load_model("default")


@pytest.fixture
def camera():
    return data.camera().astype(np.float32) / 255


def test_default_resolves_to_the_shipped_denoiser(model):
    assert model.metadata["name"] == "denoise-2d"
    assert Path(model.metadata["path"]).resolve() == WEIGHTS.resolve()
    assert WEIGHTS.stat().st_size < 10 * 1024 * 1024
    assert model.config.ndim == 2 and model.config.in_channels == 1
    assert model.config.normalization == {"method": "percentile", "low": 0.5, "high": 99.5}
    assert "description" in model.metadata and model.metadata["training"]["seed"] == 0
    assert "camera" in model.metadata["training"]["data"]["never_used"]


def test_gaussian_noise_on_camera(model, camera):
    rng = np.random.default_rng(0)
    noisy = camera + rng.normal(0, 25 / 255, camera.shape).astype(np.float32)
    out = dn.restore(noisy, model=model)
    assert out.dtype == np.float32 and out.shape == camera.shape
    gain = psnr(camera, out, data_range=1) - psnr(camera, noisy, data_range=1)
    assert gain >= 6.0


@pytest.mark.parametrize("sigma", [10, 50])
def test_gaussian_noise_other_levels(model, camera, sigma):
    rng = np.random.default_rng(0)
    noisy = camera + rng.normal(0, sigma / 255, camera.shape).astype(np.float32)
    out = dn.restore(noisy, model=model)
    gain = psnr(camera, out, data_range=1) - psnr(camera, noisy, data_range=1)
    assert gain >= {10: 3.0, 50: 11.0}[sigma]


def test_poisson_gaussian_camera_noise_in_adu(model, camera):
    # 30 photons at full scale, a camera with 2 e-/ADU, 100 ADU offset and 2 e- read noise.
    rng = np.random.default_rng(0)
    peak, gain, offset = 30.0, 2.0, 100.0
    signal = camera * (peak / gain)  # expected ADU above the offset
    noisy = synthesize(
        signal, "poisson-gaussian", gain=gain, offset=offset, read_noise=2.0, seed=rng
    )
    clean = signal + offset
    out = dn.restore(noisy, model=model)
    data_range = peak / gain
    before = psnr(clean, noisy, data_range=data_range)
    after = psnr(clean, out, data_range=data_range)
    assert after - before >= 9.0
    assert abs(out.mean() - clean.mean()) < 0.01 * data_range  # stays in ADU


def test_uint8_input_keeps_its_intensity_scale(model, camera):
    rng = np.random.default_rng(0)
    clean = data.camera().astype(np.float64)
    noisy = np.clip(np.rint(clean + rng.normal(0, 25, clean.shape)), 0, 255).astype(np.uint8)
    out = dn.restore(noisy, model=model)
    assert out.dtype == np.float32 and out.shape == noisy.shape
    assert abs(out.mean() - noisy.mean()) < 0.01 * 255
    gain = psnr(clean, out, data_range=255) - psnr(clean, noisy.astype(np.float64), data_range=255)
    assert gain >= 7.0


def test_restore_is_invariant_to_intensity_scale_and_offset(model):
    # Percentile normalisation: restore(a * x + b) == a * restore(x) + b.
    rng = np.random.default_rng(0)
    clean = data.camera()[200:328, 200:328].astype(np.float32) / 255
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    out = dn.restore(noisy, model=model)
    scaled = dn.restore(noisy * 1000 + 50, model=model)
    np.testing.assert_allclose(scaled, out * 1000 + 50, rtol=1e-4, atol=0.05)
