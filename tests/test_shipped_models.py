"""Every shipped model loads, is documented, and beats the degraded input on held-out data.

The held-out cases use the benchmark's test images (camera) and the package's
sample phantoms, which ``scripts/train_models.py`` never trains on (its
phantoms come from its own generators). The margins asserted sit below the
measured ones listed in the README.
"""

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from skimage import data

import napari_deconvnet as dn
from napari_deconvnet.core.psf import blur
from napari_deconvnet.io.samples import blurred_phantom_data, phantom_volume_data

WEIGHTS = Path(dn.__file__).parent / "weights"
SHIPPED = (
    "denoise-2d",
    "denoise-3d",
    "deconv-2d",
    "deconv-3d",
    "salt-and-pepper",
    "denoise-2d-nl",
)
TEST_IMAGES = {"camera", "astronaut", "coins", "moon", "chelsea", "cell"}


def _psnr(clean, image):
    return float(dn.psnr(clean, np.clip(image, 0, 1), data_range=1))


@pytest.fixture(scope="module")
def camera():
    return data.camera()[128:320, 160:352].astype(np.float32) / 255


@pytest.mark.parametrize("name", SHIPPED)
def test_model_is_shipped_and_documented(name):
    assert name in dn.list_models()
    path = WEIGHTS / f"{name}.safetensors"
    assert path.stat().st_size <= 10 * 1024 * 1024
    assert (WEIGHTS / f"{name}.log.json").is_file()
    net = dn.load_model(name)
    meta = net.metadata
    assert meta["name"] == name and meta["description"]
    training = meta["training"]
    assert training["seed"] == 0 and training["script"].startswith("scripts/train_")
    assert TEST_IMAGES <= set(training["data"]["never_used"])
    assert not TEST_IMAGES & set(training["data"]["images"])
    assert net.config.ndim == (3 if name.endswith("3d") else 2)
    assert bool(meta.get("needs_psf")) == name.startswith("deconv")


def test_salt_and_pepper_beats_the_median_filter(camera):
    noisy = dn.synthesize(camera, "salt-and-pepper", amount=0.2, low=0.0, high=1.0, seed=0)
    out = dn.restore(noisy, model="salt-and-pepper")
    best_median = max(_psnr(camera, ndimage.median_filter(noisy, size)) for size in (3, 5))
    switching = _psnr(camera, dn.denoise_switching_median(noisy))
    # measured: 33.46 dB, median 25.13 dB, switching median 33.02 dB
    assert _psnr(camera, out) - _psnr(camera, noisy) >= 15.0
    assert _psnr(camera, out) >= best_median + 3.0
    assert _psnr(camera, out) >= switching + 0.2
    clean_pixels = (noisy > 0) & (noisy < 1)  # the impulse switch keeps them exactly
    np.testing.assert_array_equal(out[clean_pixels], noisy[clean_pixels])


def test_deconv_2d_beats_richardson_lucy(camera):
    psf = dn.make_psf("gaussian", shape=(15, 15), sigma=2.0)
    degraded = blur(camera, psf) + np.random.default_rng(0).normal(0, 0.01, camera.shape)
    degraded = degraded.astype(np.float32)
    out = dn.restore(degraded, model="deconv-2d", psf=psf)
    rl30 = _psnr(camera, dn.richardson_lucy(np.clip(degraded, 0, None), psf, 30))
    # measured (2026-12-01, trained on with sharp scenes): +4.18 dB over the input,
    # +1.15 dB over its own 30 RL iterations (before: +3.82, +0.80; earlier +3.41, +0.38)
    assert _psnr(camera, out) - _psnr(camera, degraded) >= 3.9
    assert _psnr(camera, out) >= rl30 + 0.9


def test_deconv_2d_takes_an_airy_psf(camera):
    psf = dn.make_psf(
        "airy", shape=(15, 15), wavelength=520, na=1.2, refractive_index=1.518, pixel_size=80
    )
    rng = np.random.default_rng(1)
    degraded = (rng.poisson(blur(camera, psf) * 200) / 200).astype(np.float32)
    out = dn.restore(degraded, model="deconv-2d", psf=psf)
    rl = max(_psnr(camera, dn.richardson_lucy(degraded, psf, n)) for n in (10, 30))
    # measured: +4.19 dB over the input, +2.13 dB over the better RL (before: +4.09,
    # +2.03; earlier +3.37, +1.31)
    assert _psnr(camera, out) - _psnr(camera, degraded) >= 3.9
    assert _psnr(camera, out) >= rl + 1.8


def test_deconv_2d_on_sub_resolution_filaments_and_beads():
    """The *blurred* sample: one-pixel filaments and beads, Gaussian PSF sigma 2, noise 0.02.

    Sharp structures are where Richardson-Lucy's many iterations pay: trained on
    smoothed scenes only, ``deconv-2d`` was 1.28 dB below RL at 100 iterations here
    (22.76 against 24.04 dB). Trained on with sharp scenes (``--sharp-phantoms 0.3``)
    it is level: measured 23.99 dB, the input 20.90."""
    degraded, clean, psf = blurred_phantom_data()
    out = _psnr(clean, dn.restore(degraded, model="deconv-2d", psf=psf))
    rl = max(
        _psnr(clean, dn.richardson_lucy(np.clip(degraded, 0, None), psf, n)) for n in (30, 100)
    )
    assert out - _psnr(clean, degraded) >= 2.8
    assert out >= rl - 0.3


@pytest.fixture(scope="module")
def volume():
    degraded, clean, psf = phantom_volume_data(shape=(32, 64, 64), seed=3)
    return degraded, clean, psf


def test_denoise_3d_on_poisson_noise(volume):
    _, clean, _ = volume
    noisy = (np.random.default_rng(0).poisson(clean * 20) / 20).astype(np.float32)
    out = dn.restore(noisy, model="denoise-3d")
    assert out.shape == clean.shape
    # measured: +14.5 dB (2026-12-01, the continued training; the model before it: +12.2)
    assert _psnr(clean, out) - _psnr(clean, noisy) >= 13.5
    # and level with denoise-2d plane by plane at 20 photons: +0.13 dB since counts
    # are normalised dequantised (core.normalization.percentiles, which lifted the
    # planes by 1.9 dB) and denoise-2d was trained on (session 26); before both, +2.0
    planes = dn.restore(noisy, model="denoise-2d", axes="ZYX")
    assert _psnr(clean, out) >= _psnr(clean, planes) - 0.2


def test_deconv_3d_comes_close_to_richardson_lucy(volume):
    degraded, clean, psf = volume
    out = dn.restore(degraded, model="deconv-3d", psf=psf)
    rl = max(_psnr(clean, dn.richardson_lucy(degraded, psf, n)) for n in (5, 15))
    # measured: +8.35 dB over the input (35.58) but 0.68 dB below the best RL
    # (36.26, 5 iterations): a regression guard, the README states the
    # shortfall. The Wiener-only model shipped before session 28 was 0.15 dB
    # closer here (35.73) on this dense cells sample at 60 photons, and 0.4 to
    # 1.5 dB behind the present one on sparse scenes and the 3D benchmark tasks.
    assert _psnr(clean, out) - _psnr(clean, degraded) >= 7.5
    assert _psnr(clean, out) >= rl - 0.85


def test_rgb_denoising_in_luminance_and_chroma():
    rgb = data.astronaut()[100:228, 100:228].astype(np.float32) / 255
    noisy = rgb + np.random.default_rng(0).normal(0, 25 / 255, rgb.shape).astype(np.float32)
    out = dn.restore(noisy)  # axes "YXS": luminance and chroma (core.colour)
    assert out.shape == rgb.shape
    assert _psnr(rgb, out) - _psnr(rgb, noisy) >= 6.0
    per_channel = np.stack([dn.restore(noisy[..., c]) for c in range(3)], -1)
    # colour by colour, as restore did before: the opponent space is ahead
    assert _psnr(rgb, out) > _psnr(rgb, per_channel) + 0.2


@pytest.mark.parametrize("sigma", [10, 25, 50])
def test_noise_conditioned_denoiser_on_held_out_gaussian_noise(sigma):
    """denoise-2d-nl (told the noise level) on camera, a test image: close to the blind model.

    It was level or better (-0.02, +0.04, +0.04 dB at sigma 10, 25, 50) against the
    denoise-2d it was fine-tuned from; the blind model trained on since (2026-12-01, +0.22
    dB validation) is now ahead (measured -0.08, -0.10, -0.08; with session 27's -0.23 at
    sigma 25) until -nl is re-derived."""
    cam = data.camera().astype(np.float32) / 255
    noisy = cam + np.random.default_rng(0).normal(0, sigma / 255, cam.shape).astype(np.float32)
    blind = _psnr(cam, dn.restore(noisy, model="denoise-2d", device="cpu"))
    told = _psnr(cam, dn.restore(noisy, model="denoise-2d-nl", device="cpu"))
    assert told > blind - 0.3, (sigma, told, blind)
    assert told > _psnr(cam, noisy) + 3.5


def test_noise_conditioned_denoiser_in_camera_units():
    """Poisson-Gaussian noise in ADU with an offset: the noise map follows the signal."""
    cam = data.camera()[:256, :256].astype(np.float32) / 255
    signal = cam * 30 / 2.0
    noisy = dn.synthesize(
        signal, "poisson-gaussian", gain=2.0, offset=100.0, read_noise=1.5, seed=0
    )
    clean = signal + 100
    span = float(np.ptp(clean))

    def score(out):
        return float(dn.psnr(clean, np.clip(out, clean.min(), clean.max()), data_range=span))

    told = score(dn.restore(noisy, model="denoise-2d-nl", device="cpu"))
    # -0.16 dB since the blind model was trained on (2026-12-01; it was level before),
    # -0.35 since it was trained on with bright objects too (2026-12-03: blind 32.61 dB)
    assert told > score(dn.restore(noisy, model="denoise-2d", device="cpu")) - 0.45
    assert told > score(noisy) + 8
