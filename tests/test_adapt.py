"""dn.adapt: a shipped model fine-tuned to an image's PSF and noise, without clean data."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

import napari_deconvnet as dn
from napari_deconvnet.core.adapt import PHANTOMS, SyntheticPairs, camera_from, phantom
from napari_deconvnet.io.samples import blurred_phantom_data


@pytest.mark.parametrize("kind", PHANTOMS)
@pytest.mark.parametrize("shape", [(48, 40), (12, 20, 16)])
def test_phantoms_are_finite_seeded_and_scaled(kind, shape):
    a = phantom(shape, kind, rng=3)
    assert a.shape == shape and a.dtype == np.float32
    assert np.isfinite(a).all() and a.min() >= 0
    assert np.percentile(a, 99.5) == pytest.approx(1.0, rel=1e-4)
    assert np.array_equal(a, phantom(shape, kind, rng=3))
    assert not np.array_equal(a, phantom(shape, kind, rng=4))


def test_synthetic_pairs_have_the_camera_of_the_image():
    # a camera image: offset 100 ADU, gain 2 electrons/ADU, read noise 3 electrons
    clean = 100 + 400 * phantom((128, 128), rng=0)
    noisy = dn.synthesize(
        clean - 100, "poisson-gaussian", gain=2, offset=100, read_noise=3, seed=1
    )
    camera = camera_from(noisy, dict(noise="poisson-gaussian", gain=2, offset=100, read_noise=3))
    assert camera["offset"] == 100 and camera["amplitude"] > 200
    stats = (float(np.percentile(noisy, 0.5)), float(np.ptp(np.percentile(noisy, [0.5, 99.5]))))
    data = SyntheticPairs(ndim=2, size=(32, 32), camera=camera, stats=stats, seed=0)
    x, y, mask = data.batch(8)
    assert mask is None and x.shape == y.shape == (8, 1, 32, 32)
    raw_x, raw_y = x.numpy() * stats[1] + stats[0], y.numpy() * stats[1] + stats[0]
    assert raw_y.min() >= 100 - 1e-3  # the target keeps the camera offset
    # Poisson-Gaussian: the residual variance grows with the signal as 1/gain
    resid, level = (raw_x - raw_y).ravel(), (raw_y - 100).ravel()
    bright, dark = level > np.percentile(level, 80), level < np.percentile(level, 20)
    slope = (resid[bright].var() - resid[dark].var()) / (level[bright].mean() - level[dark].mean())
    assert slope == pytest.approx(0.5, rel=0.3)
    with pytest.raises(ValueError, match="noise model"):
        camera_from(noisy, dict(noise="salt-and-pepper", amount=0.1))


def test_adapt_beats_the_shipped_model_on_a_held_out_blurred_noisy_image():
    degraded, _, psf = blurred_phantom_data((128, 128), seed=0)
    held_in, held_clean, _ = blurred_phantom_data((128, 128), seed=1)
    start = dn.load_model("default")
    events = []
    model = dn.adapt(
        start,
        degraded,
        psf=psf,
        seconds=600,
        steps=40,
        steps_per_epoch=20,
        patch_size=32,
        batch_size=8,
        lr=1e-3,
        device="cpu",
        callback=events.append,
    )
    assert events[0].kind == "start" and events[-1].kind == "end"
    record = model.metadata["training"]
    assert record["camera"]["noise"] == "gaussian" and record["psf_shape"] == [17, 17]
    assert record["steps"] == 40
    shipped = peak_signal_noise_ratio(held_clean, dn.restore(held_in, start, device="cpu"))
    adapted = peak_signal_noise_ratio(held_clean, dn.restore(held_in, model, device="cpu"))
    assert adapted > shipped + 0.5, (adapted, shipped)
    # the starting model is a copy, never modified
    assert np.array_equal(
        start.state_dict()["encoder.0.0.weight"].numpy(),
        dn.load_model("default").state_dict()["encoder.0.0.weight"].numpy(),
    )


def test_adapt_refuses_what_it_cannot_do():
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    with pytest.raises(ValueError, match="deconvolves with the image's PSF: pass psf="):
        dn.adapt("deconv-2d", image, seconds=1)
    with pytest.raises(ValueError, match="removes impulse noise.*noise=dict\\(model='salt-and"):
        dn.adapt("salt-and-pepper", image, seconds=1)
    with pytest.raises(ValueError, match="'denoise-3d' is a 3D model, but this adaptation is 2D"):
        dn.adapt("denoise-3d", image, seconds=1)
    volume = np.random.default_rng(0).random((16, 48, 48)).astype(np.float32)
    with pytest.raises(ValueError, match=r"adaptation is 2D \(its PSF's.*or give a 3D PSF"):
        dn.adapt("deconv-3d", volume, psf=dn.make_psf("gaussian", shape=(9, 9)), seconds=1)
    with pytest.raises(ValueError, match="seconds"):
        dn.adapt("default", image, seconds=0)
    # off the network's grid: refused as dn.train refuses it (it was taken and padded)
    with pytest.raises(ValueError, match=r"patch_size \(30, 30\) is not a multiple.*e\.g\. 32"):
        dn.adapt("default", image, seconds=1, patch_size=30)
    with pytest.raises(ValueError, match="NaN"):
        dn.adapt("default", np.full((64, 64), np.nan), seconds=1)
    with pytest.raises(TypeError, match="noise"):
        dn.adapt("default", image, noise=3, seconds=1)
    # a constant image: no noise, no brightness to learn (it adapted to sigma 0)
    for noise in ("auto", {"noise": "gaussian", "sigma": 0.1}):
        with pytest.raises(ValueError, match=r"holds one value \(0\.5\) everywhere"):
            dn.adapt("default", np.full((64, 64), 0.5, np.float32), noise=noise, seconds=1)
    with pytest.raises(ValueError, match="kinds"):
        dn.adapt("default", image, seconds=1, kinds=["stars"])
    with pytest.raises(ValueError, match="precision 'float16' needs a GPU"):
        dn.adapt("default", image, seconds=1, device="cpu", precision="float16")
    # an RGB image: refused with a way forward (it failed inside the noise estimate,
    # advising a channel_axis= that adapt does not take)
    rgb = np.random.default_rng(1).random((64, 64, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"looks like an RGB\(A\) image.*mean\(axis=-1\)"):
        dn.adapt("denoise-2d", rgb, seconds=1)


def test_a_deconvolution_model_adapts_with_its_classical_channel():
    """deconv-2d adapts: every synthetic patch gets its Richardson-Lucy channel."""
    from napari_deconvnet.core.kinds import kind_of
    from napari_deconvnet.core.psf import blur

    rng = np.random.default_rng(5)
    clean = phantom((96, 96), ["filaments", "nuclei"], rng=rng).astype(np.float32)
    psf = dn.make_psf("gaussian", (9, 9), sigma=1.5)
    noisy = dn.synthesize(blur(clean, psf) * 50, "poisson", gain=1.0, seed=2).astype(np.float32)
    events = []
    model = dn.adapt("deconv-2d", noisy, psf=psf, steps=2, device="cpu", callback=events.append)
    assert events[-1].kind == "end"
    assert kind_of(model).name == "psf-conditioned" and model.metadata["needs_psf"] is True
    assert model.metadata["conditioning"] == dn.load_model("deconv-2d").metadata["conditioning"]
    assert dn.restore(noisy, model, psf=psf, device="cpu").shape == noisy.shape
    # the channel of a synthetic batch is the kind's channel of its degraded patch
    calls = []

    def channel(patches):
        calls.append(patches.shape)
        return patches * 2.0

    pairs = SyntheticPairs(
        ndim=2,
        size=(32, 32),
        camera=camera_from(noisy, "auto"),
        stats=(0.0, 10.0),
        psf=psf,
        condition=channel,
    )
    x, y, _ = pairs.batch(3)
    assert x.shape == (3, 2, 32, 32) and y.shape == (3, 1, 32, 32)
    assert calls[-1] == (3, *pairs.full)  # computed with the blur's margin, then cropped
    assert np.allclose(x[:, 1].numpy(), 2.0 * x[:, 0].numpy())  # normalised like the image


def test_a_generated_psf_deeper_than_the_stack_is_cropped_for_adapt():
    """psf="widefield" (27 planes) on a 12-plane stack: cropped, as restore does."""
    from napari_deconvnet.core.conditions import ConditionsWarning
    from napari_deconvnet.core.psf import crop_to

    clean = phantom((12, 48, 48), ["nuclei", "beads"], rng=7).astype(np.float32)
    fitted = crop_to(dn.make_psf("widefield"), clean.shape)
    noisy = dn.synthesize(clean, "poisson", psf=fitted, peak=100, seed=3)
    events = []
    with pytest.warns(ConditionsWarning, match="cropped to"):
        model = dn.adapt(
            "deconv-3d", noisy, psf="widefield", steps=2, device="cpu", callback=events.append
        )
    assert events[-1].kind == "end"
    with pytest.warns(ConditionsWarning, match="cropped to"):
        out = dn.restore(noisy, model, psf="widefield", device="cpu", precision="float32")
    expected = dn.restore(noisy, model, psf=fitted, device="cpu", precision="float32")
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_a_narrow_image_says_its_validation_shares_the_training_structures():
    # the record said "a held-out strip ... (never trained on)" when the image was too
    # narrow to hold one out and both used the whole scene
    from scipy.ndimage import convolve

    from napari_deconvnet.core.phantoms import phantom

    psf = dn.make_psf("gaussian", shape=(9, 9), sigma=1.5)
    clean = phantom((64, 64), rng=0) * 100
    image = convolve(clean, psf) + np.random.default_rng(0).normal(0, 3, (64, 64))
    options = dict(seconds=None, steps=2, steps_per_epoch=2, patch_size=32, batch_size=2)
    with pytest.warns(UserWarning, match="too narrow to hold out a validation strip"):
        model = dn.adapt("deconv-2d", image.astype(np.float32), psf=psf, device="cpu", **options)
    assert "shared with training" in model.metadata["training"]["validation"]["source"]


def test_an_adaptation_that_keeps_its_start_hands_back_the_start():
    # it was renamed "-adapted" and recorded the image's conditions, so that a
    # restore of another image warned about data the weights never trained on
    import warnings

    rng = np.random.default_rng(3)
    clean = phantom((96, 96), ["nuclei", "textures"], rng=rng).astype(np.float32)
    noisy = dn.synthesize(clean, "gaussian", sigma=0.05, seed=1).astype(np.float32)
    start = dn.load_model("denoise-2d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the loss may blow up
        model = dn.adapt(start, noisy, steps=2, lr=1.0, l2sp=0, device="cpu", seed=0)
    assert model.metadata["training"]["improved"] is False
    assert all(torch.equal(a, b) for a, b in zip(
        model.state_dict().values(), start.state_dict().values(), strict=True))  # fmt: skip
    assert model.metadata["name"] == "denoise-2d"
    assert model.metadata["training"]["conditions"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", dn.ConditionsWarning)
        dn.restore(dn.synthesize(clean, "gaussian", sigma=0.3, seed=2), model)


def test_a_named_psf_is_made_in_the_3d_models_dimensions_and_resumes(tmp_path):
    # dn.adapt("deconv-3d", volume, psf="gaussian") made a 2D Gaussian and was refused;
    # once made 3D, its resume made it 2D again and refused the run's own PSF
    rng = np.random.default_rng(0)
    volume = np.zeros((16, 48, 48), np.float32)
    volume[4:12, 12:36, 12:36] = 1
    volume += 0.05 * rng.standard_normal(volume.shape).astype(np.float32)
    path = tmp_path / "run.safetensors"
    options = {"seed": 0, "patch_size": 16, "device": "cpu"}
    first = dn.adapt("deconv-3d", volume, psf="gaussian", steps=2, autosave=path, **options)
    assert first.config.ndim == 3 and len(first.metadata["training"]["psf_shape"]) == 3
    again = dn.adapt("deconv-3d", volume, psf="gaussian", steps=3, resume=path, **options)
    assert again.metadata["training"]["steps"] == 3


def test_noise_given_by_name_alone_is_estimated_and_other_models_are_refused(tmp_path):
    """Session 69: dict(noise="gaussian") without a sigma trained on pairs of synthesize's
    default sigma (1e-3 of the image's noise), speckle was accepted and built inputs
    without the dark level, the record named the channels-first shape, and an adapt
    record passed to resume= was called "the best model"."""
    clean = 500 + 3000 * phantom((96, 96), rng=3)
    image = np.round(dn.synthesize(clean, "gaussian", sigma=60, seed=1)).astype(np.uint16)
    camera = camera_from(image, {"noise": "gaussian"})
    assert camera["params"]["sigma"] == pytest.approx(60, rel=0.15)
    kept = camera_from(image, {"noise": "poisson-gaussian", "gain": 0.5})
    assert kept["params"] == {"gain": 0.5}  # a level given: nothing estimated beside it
    with pytest.raises(
        ValueError, match="among gaussian, poisson, poisson-gaussian, got 'speckle'"
    ):
        camera_from(image, {"noise": "speckle", "sigma": 0.1})
    two = np.stack([image, image]).transpose(1, 2, 0)  # (Y, X, C)
    small = {"steps": 1, "steps_per_epoch": 1, "batch_size": 2, "patch_size": 32}
    saved = tmp_path / "run.safetensors"
    model = dn.adapt("denoise-2d", two, axes="YXC", device="cpu", autosave=saved, **small)
    assert model.metadata["training"]["data"]["image"] == {"shape": [96, 96, 2], "dtype": "uint16"}
    with pytest.raises(
        ValueError, match="is an adaptation's record: resume from .*run.safetensors"
    ):
        dn.adapt(None, two, axes="YXC", resume=tmp_path / "run.adapt.safetensors", device="cpu")


def test_a_noise_dicts_estimate_keeps_the_offset_given_and_says_when_it_cannot():
    """Review of session 69: the level estimated for dict(noise="poisson-gaussian",
    offset=100) was fitted at the estimator's own offset (1312: read noise 19 for 4);
    a flat image's estimate failed advising model='gaussian' (adapt's network argument);
    "Gaussian" in capitals was refused."""
    clean = 50 * phantom((128, 128), rng=2)
    image = dn.synthesize(clean, "poisson-gaussian", gain=0.5, offset=100, read_noise=4, seed=1)
    camera = camera_from(image, {"noise": "poisson-gaussian", "offset": 100})
    assert camera["params"]["offset"] == 100 and camera["params"]["read_noise"] < 10
    flat = np.random.default_rng(0).normal(1000, 10, (64, 64)).astype(np.float32)
    with pytest.raises(ValueError, match=r"give the level \(e.g. gain=...\), or noise='auto'"):
        camera_from(flat, {"noise": "poisson-gaussian"})
    # Poisson through the origin is fitted on one level (session 73): variance 100 at
    # 1000 is a gain of 10
    assert camera_from(flat, {"noise": "poisson"})["params"]["gain"] == pytest.approx(10, rel=0.1)
    assert camera_from(flat, {"noise": "Gaussian"})["noise"] == "gaussian"
