"""Shipped models on held-out conditions of issue 11: 3D at tens of photons, sCMOS units.

The scenes are drawn here with their own seeds (random blobs and filaments),
never seen by ``scripts/train_models.py`` nor by the benchmark's tuning. The
margins asserted sit below the measured ones given in the comments.
"""

import numpy as np
import pytest
from scipy import ndimage

import napari_deconvnet as dn


def _scene(shape, seed):
    """Sparse beads and filaments plus a dim background, in [0, 1]."""
    rng = np.random.default_rng(seed)
    image = np.zeros(shape, np.float32)
    n = int(np.prod(shape) / 400)
    idx = tuple(rng.integers(0, s, n) for s in shape)
    image[idx] = rng.uniform(0.3, 1.0, n)
    for _ in range(max(2, n // 20)):  # filaments: random walks
        p = np.array([rng.uniform(0, s) for s in shape])
        step = rng.normal(size=len(shape))
        for _ in range(3 * max(shape)):
            step = 0.9 * step + 0.3 * rng.normal(size=len(shape))
            p = np.clip(p + step / np.linalg.norm(step), 0, np.array(shape) - 1)
            image[tuple(p.astype(int))] = 0.8
    image = ndimage.gaussian_filter(image, 1.0)
    image = image / image.max() * 0.9 + 0.05
    return image.astype(np.float32)


def _psnr(clean, image):
    return float(dn.psnr(clean, np.clip(image, 0, None), data_range=float(clean.max())))


@pytest.fixture(scope="module")
def low_photon_volume():
    clean = _scene((32, 64, 64), seed=1234)
    psf = dn.make_psf("gaussian", shape=(15, 15, 15), sigma=(2.4, 1.2, 1.2))  # z 2x lateral
    blurred = dn.synthesize(clean, "none", psf=psf)
    photons = 20.0
    # gain in electrons per unit of intensity: a peak of 20 photons, read noise 1 e-
    noisy = dn.synthesize(blurred, "poisson-gaussian", gain=photons, read_noise=1.0, seed=99)
    return clean, noisy.astype(np.float32), psf


def _scores(volume):
    clean, noisy, psf = volume
    ours = _psnr(clean, dn.restore(noisy, model="deconv-3d", psf=psf))
    # RL's iteration count tuned on the test volume itself: a generous baseline
    rl = max(
        _psnr(clean, dn.richardson_lucy(np.clip(noisy, 0, None), psf, n)) for n in (2, 5, 10, 20)
    )
    wiener = _psnr(clean, dn.wiener(noisy, psf))
    return ours, rl, wiener, _psnr(clean, noisy)


def test_deconv_3d_at_20_photons_regression_guard(low_photon_volume):
    """Measured: input 21.74, ours 28.56, Wiener 27.47, tuned RL 28.56 (5 iterations).

    With its Wiener channel alone (before session 28) the shipped 3D model was
    level with Wiener (27.52) and 1.0 dB below tuned RL here; with the
    Richardson-Lucy channel beside it, it is level with RL (+0.00 dB), short of
    the +1 dB target (the xfail below). This guards against getting worse.
    """
    ours, rl, wiener, raw = _scores(low_photon_volume)
    assert ours >= raw + 6.0
    assert ours >= wiener + 0.8
    assert ours >= rl - 0.3


@pytest.mark.xfail(
    strict=True, reason="issue 11 target not met yet: deconv-3d is level with tuned RL, not +1 dB"
)
def test_deconv_3d_beats_tuned_richardson_lucy_at_20_photons(low_photon_volume):
    ours, rl, _, _ = _scores(low_photon_volume)
    assert ours >= rl + 1.0


def test_denoise_2d_restores_scmos_units_with_offset():
    """Data as it comes off an sCMOS: 2 ADU per electron, 100 ADU offset, peak 20 e-."""
    clean = _scene((192, 192), seed=4321)
    gain, offset, peak = 2.0, 100.0, 20.0
    electrons = np.random.default_rng(7).poisson(clean * peak)
    read = np.random.default_rng(8).normal(0, 1.5, clean.shape)
    adu = ((electrons + read) * gain + offset).astype(np.float32)
    clean_adu = (clean * peak * gain + offset).astype(np.float32)
    out = dn.restore(adu, model="denoise-2d")
    # intensities stay in ADU with the offset in place (no shift, no rescale);
    # measured: mean off by 0.01 ADU, +10.7 dB over the raw frame
    assert abs(float(out.mean()) - float(clean_adu.mean())) < 0.25
    span = peak * gain
    gain_db = float(
        dn.psnr(clean_adu, out, data_range=span) - dn.psnr(clean_adu, adu, data_range=span)
    )
    assert gain_db >= 8.0


@pytest.mark.parametrize(
    ("task_name", "margin"), [("3d-lowlight-10", 0.3), ("3d-lowlight-20", 0.5)]
)
def test_deconv_3d_gains_over_its_wiener_channel_at_tens_of_photons(
    quality_benchmark, task_name, margin
):
    """A validation volume of the quality benchmark (seed 8201, never trained on, never a
    test volume) at its low-photon 3D conditions. Measured 2026-12-01 (the weights
    interpolated toward the range-mse run): +0.52 and +0.75 dB over Wiener, where the
    weights before them were level with it (+0.01, +0.02)."""
    q = quality_benchmark
    task = {t.name: t for t in q.TASKS}[task_name]
    psf = task.make_psf()
    clean = q._volume((32, 128, 128), 8201)
    noisy = q.degrade(
        task, clean, np.random.default_rng([0, q.TASK_NAMES.index(task_name), 7, 0]), psf
    )
    ours = q.score(np.asarray(dn.restore(noisy, model="deconv-3d", psf=psf)), clean)[0]
    wiener = q.score(np.asarray(dn.wiener(noisy, psf)), clean)[0]
    assert ours >= wiener + margin
