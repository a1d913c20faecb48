"""dn.adapt in 3D: CARE-like defaults (4 patches of 16 x 48 x 48), a pool renewed every few
batches, exact resume, and a gain over the start on a held-out volume with a known PSF.

Tiny volumes and a fixed number of steps (seconds=None), seeded.
"""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

import napari_deconvnet as dn
from napari_deconvnet.core.adapt import DEFAULTS, PATCH_3D, POOL_3D, SyntheticPairs
from napari_deconvnet.core.phantoms import phantom
from napari_deconvnet.core.psf import blur


def _psf() -> np.ndarray:
    z, y, x = np.meshgrid(*[np.arange(n) - n // 2 for n in (7, 5, 5)], indexing="ij")
    k = np.exp(-0.5 * ((z / 1.5) ** 2 + (y / 1.0) ** 2 + (x / 1.0) ** 2))
    return (k / k.sum()).astype(np.float32)


def _volume(shape, seed, psf, peak=30.0):
    clean = phantom(shape, ("nuclei", "beads"), rng=seed) * peak
    blurred = np.clip(blur(clean[None], psf)[0], 0, None)
    noisy = dn.synthesize(blurred, "poisson-gaussian", gain=1.0, read_noise=1.0, seed=seed + 100)
    return np.asarray(noisy, np.float32), clean


def _psnr(clean, restored):
    scale = np.percentile(clean, 99.5)
    return peak_signal_noise_ratio(clean / scale, np.clip(restored / scale, 0, 1), data_range=1)


CAMERA = {"noise": "poisson-gaussian", "params": {"gain": 1.0, "read_noise": 1.0}}


def test_3d_pool_renewed_every_k_batches_resumes_exactly():
    camera = {**CAMERA, "offset": 0.0, "amplitude": 30.0}
    kw = dict(
        ndim=3, size=(8, 16, 16), camera=camera, stats=(0.0, 30.0), psf=_psf(), seed=5,
        pool=3, renew=1, renew_every=3, n_validation=1,
    )  # fmt: skip
    stream = SyntheticPairs(**kw)
    assert stream.margin == (4, 3, 3) and stream.full == (16, 22, 22)  # per axis in 3D
    assert [len(stream._slots(s)) for s in range(6)] == [1, 0, 0, 1, 0, 0]
    batches = [stream.batch(2) for _ in range(7)]
    later = SyntheticPairs(**kw)
    later.skip_to(4)  # between renewals
    for expected in batches[4:]:
        x, y, _ = later.batch(2)
        assert np.array_equal(x.numpy(), expected[0].numpy())
        assert np.array_equal(y.numpy(), expected[1].numpy())
    assert x.shape == (2, 1, 8, 16, 16)
    with pytest.raises(ValueError, match="renew_every"):
        SyntheticPairs(**{**kw, "renew_every": 0})


def test_adapt_3d_uses_care_like_defaults():
    psf = _psf()
    noisy, _ = _volume((16, 40, 40), 0, psf)
    model = dn.adapt(
        "denoise-3d", noisy, psf=psf, noise="auto", seconds=None, steps=1, device="cpu",
        preview=False,
    )  # fmt: skip
    settings = model.metadata["training"]["settings"]
    assert settings["batch_size"] == 4
    assert tuple(settings["patch_size"]) == PATCH_3D == (16, 48, 48)
    assert DEFAULTS["batch_size"] == 16  # 2D unchanged
    assert model.metadata["training"]["steps"] == 1
    assert f"every {POOL_3D['renew_every']} batches" in model.metadata["training"]["data"]["kind"]
    with pytest.raises(ValueError, match="patch_size"):
        dn.adapt("denoise-3d", noisy, psf=psf, seconds=None, steps=1, patch_size=(8, 8))


def test_a_3d_denoiser_adapts_to_a_volume_without_a_psf():
    # it used to be refused: "model 'denoise-3d' is not a 2D model (the image is 2D)"
    noisy, _ = _volume((16, 40, 40), 0, np.ones((1, 1, 1)))
    model = dn.adapt(
        "denoise-3d", noisy, seconds=None, steps=2, device="cpu", preview=False
    )  # fmt: skip
    training = model.metadata["training"]
    assert model.config.ndim == 3 and training["steps"] == 2
    assert tuple(training["settings"]["patch_size"]) == PATCH_3D
    assert training["psf_shape"] is None
    # a 2D model on the same volume still adapts plane by plane
    assert dn.adapt("denoise-2d", noisy, seconds=None, steps=1, device="cpu").config.ndim == 2


def test_adapt_3d_beats_the_start_on_a_held_out_volume():
    psf = _psf()
    noisy, _ = _volume((16, 40, 40), 0, psf)
    held_in, held_clean = _volume((16, 40, 40), 1, psf)
    start = dn.load_model("denoise-3d")
    model = dn.adapt(
        start, noisy, psf=psf, noise="auto", seconds=None, steps=24, steps_per_epoch=8,
        patch_size=(8, 24, 24), batch_size=4, seed=0, device="cpu", preview=False,
    )  # fmt: skip
    assert model.metadata["training"]["improved"]
    before = _psnr(held_clean, dn.restore(held_in, start, device="cpu"))
    after = _psnr(held_clean, dn.restore(held_in, model, device="cpu"))
    # measured: 19.69 -> 20.22 dB (+0.53) from the shipped denoise-3d of 2026-12-01; from
    # the earlier, less trained one 18.86 -> 19.86 (+1.00): a better start gains less, and
    # ends higher
    assert after > before + 0.4, (after, before)
    assert after > 20.0, after
