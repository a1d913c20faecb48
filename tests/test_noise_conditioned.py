"""The noise-conditioned model kind (core/kinds.py): a noise map as the second channel."""

import dask.array as da
import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core.kinds import NoiseConditioned, kind_of, noise_line
from napari_deconvnet.core.model import DeconvNet, widen_input
from napari_deconvnet.core.noise import synthesize
from napari_deconvnet.core.persistence import load_model
from napari_deconvnet.core.phantoms import cells_2d

METADATA = {"kind": "noise-conditioned", "conditioning": {"method": "noise-level", "window": 3}}


def _clean(seed=0, size=128):
    return cells_2d(np.random.default_rng(seed), size).astype(np.float32)


def _conditioned_net(seed=0) -> DeconvNet:
    torch.manual_seed(seed)
    net = DeconvNet(ndim=2, in_channels=2, out_channels=1, residual_input=0, base_channels=8)
    with torch.no_grad():  # the last layer starts at zero: make every layer matter
        for p in net.parameters():
            p.normal_(0.0, 0.1)
    net.metadata = dict(METADATA, name="test-nl")
    return net.eval()


def test_kind_is_chosen_from_metadata():
    kind = kind_of(METADATA)
    assert type(kind) is NoiseConditioned
    assert (kind.extra_channels, kind.needs_psf) == (1, False)
    assert kind.input_margin(None, 2) == (1, 1)
    assert kind.input_margin(None, 3) == (1, 1, 1)
    with pytest.raises(ValueError, match="noise-level"):
        kind_of({"kind": "noise-conditioned", "conditioning": {"method": "bm3d"}}).input_margin(
            None, 2
        )


@pytest.mark.parametrize("sigma", [0.03, 0.1])
def test_gaussian_noise_gives_a_flat_map_of_its_sigma(sigma):
    clean = 0.2 + 0.6 * _clean()
    noisy = synthesize(clean, "gaussian", sigma=sigma, seed=3)
    line = noise_line(noisy)
    assert line["a"] == 0.0
    assert np.sqrt(line["b"]) == pytest.approx(sigma, rel=0.1)
    channel = NoiseConditioned(METADATA).input_channels(noisy[None], None)[0]
    assert np.allclose(channel - noisy, np.sqrt(line["b"]), atol=1e-6)


def test_poisson_gaussian_map_follows_the_signal():
    """A camera image: the map is the Poisson-Gaussian sigma at each pixel's level."""
    clean = _clean(1, 192)
    gain, offset, read = 2.0, 100.0, 1.5
    signal = clean * 40.0 / gain  # a peak of 40 photons, in ADU above the offset
    camera = {"gain": gain, "offset": offset, "read_noise": read}
    noisy = synthesize(signal, "poisson-gaussian", seed=4, **camera)
    line = noise_line(noisy)
    assert line["a"] == pytest.approx(1 / gain, rel=0.2)
    channel = NoiseConditioned(METADATA).input_channels(noisy[None], None)[0]
    sigma_map = channel - noisy
    truth = np.sqrt((signal + offset - offset) / gain + (read / gain) ** 2)
    bright = signal > np.percentile(signal, 90)
    dark = signal < np.percentile(signal, 10)
    # brighter pixels are noisier, by the right amount
    assert sigma_map[bright].mean() > 1.5 * sigma_map[dark].mean()
    assert sigma_map[bright].mean() == pytest.approx(truth[bright].mean(), rel=0.2)


def test_the_map_is_invariant_to_the_intensity_scale():
    """Normalised like the image, channel - image is the same at any gain and offset."""
    noisy = synthesize(0.2 + 0.6 * _clean(2), "gaussian", sigma=0.05, seed=5)
    kind = NoiseConditioned(METADATA)
    maps = []
    for scale, offset in [(1.0, 0.0), (300.0, 1000.0)]:
        image = noisy * scale + offset
        maps.append((kind.input_channels(image[None], None)[0] - image) / scale)
    assert np.allclose(maps[0], maps[1], rtol=1e-3, atol=1e-6)


def test_widened_blind_model_restores_exactly_like_it():
    """Zero weights on the new channel: the widened denoise-2d is the blind one."""
    blind = load_model("denoise-2d")
    net = DeconvNet(dict(blind.config.to_dict(), in_channels=2, residual_input=0))
    net.load_state_dict(widen_input(blind.state_dict(), net))
    net.metadata = dict(METADATA, name="widened")
    noisy = synthesize(_clean(3, 96), "gaussian", sigma=0.1, seed=6)
    a = dn.restore(noisy, model=blind, device="cpu")
    b = dn.restore(noisy, model=net, device="cpu")
    assert np.abs(a - b).max() < 1e-5
    # and the noise map does reach the network once the new weights move
    with torch.no_grad():
        net.encoder[0][0].weight[:, 1] += 0.05
    c = dn.restore(noisy, model=net, device="cpu")
    assert np.abs(c - a).max() > 1e-3


def test_widen_refuses_other_shape_changes():
    net = DeconvNet(ndim=2, base_channels=8)
    other = DeconvNet(ndim=2, base_channels=16)
    with pytest.raises(ValueError, match="only more input channels"):
        widen_input(other.state_dict(), net)


def test_tiled_and_lazy_restore_equal_the_whole_image():
    net = _conditioned_net()
    noisy = synthesize(_clean(4, 150), "poisson-gaussian", peak=30.0, read_noise=1.0, seed=7)
    noisy = (noisy * 50 + 100).astype(np.float32)
    whole = dn.restore(noisy, model=net, device="cpu")
    tiled = dn.restore(noisy, model=net, device="cpu", tile=64)
    lazy = dn.restore(da.from_array(noisy, chunks=(70, 64)), model=net, device="cpu", tile=64)
    span = float(np.ptp(whole))
    assert np.abs(tiled - whole).max() < 1e-5 * span
    assert np.abs(np.asarray(lazy) - whole).max() < 1e-5 * span


def test_the_noise_level_changes_the_output():
    """The network sees the map: the same pixels with a different noise line differ."""
    net = _conditioned_net(1)
    noisy = synthesize(_clean(5, 64), "gaussian", sigma=0.05, seed=8)
    kind = NoiseConditioned(METADATA)
    low = kind.input_channels(noisy[None], None, statistics=[{"a": 0.0, "b": 0.01**2}])
    high = kind.input_channels(noisy[None], None, statistics=[{"a": 0.0, "b": 0.2**2}])
    assert np.allclose(high - low, 0.19, atol=1e-6)
    x = torch.from_numpy(np.stack([np.stack([noisy, low[0]]), np.stack([noisy, high[0]])]))
    with torch.no_grad():
        y = net(x)
    assert (y[0] - y[1]).abs().max() > 1e-4


# ------------------------------------------------------------------ training


def _widened_denoise_2d() -> DeconvNet:
    blind = load_model("denoise-2d")
    net = DeconvNet(dict(blind.config.to_dict(), in_channels=2, residual_input=0))
    net.load_state_dict(widen_input(blind.state_dict(), net))
    net.metadata = dict(METADATA, name="widened")
    return net


def test_training_map_equals_the_restore_map():
    """The torch map of a normalised batch is restore's map, normalised alike."""
    from napari_deconvnet.core.conditioning import noise_map_channel, normalised_line

    noisy = synthesize(_clean(6, 48), "poisson-gaussian", peak=20.0, read_noise=1.0, seed=9)
    raw = (noisy * 300 + 50).astype(np.float32)
    kind = NoiseConditioned(METADATA)
    line = kind.input_statistics(raw[None])[0]
    offset, scale = 40.0, 250.0
    expected = (kind.input_channels(raw[None], None, statistics=[line])[0] - offset) / scale
    x = torch.from_numpy((raw - offset) / scale)[None, None]
    got = noise_map_channel(x, [normalised_line(line, offset, scale)])
    assert got.shape == (1, 2, 48, 48)
    assert torch.equal(got[0, 0], x[0, 0])
    assert np.allclose(got[0, 1].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("mode", ["supervised", "self-supervised", "synthetic"])
def test_a_noise_conditioned_model_fine_tunes_in_every_mode(mode):
    clean = _clean(7, 96)
    noisy = synthesize(clean, "gaussian", sigma=0.1, seed=10).astype(np.float32)
    kw = {"supervised": {"targets": clean}, "self-supervised": {}}.get(mode, {})
    if mode == "synthetic":
        kw = {"noise": {"model": "gaussian", "sigma": 0.1}}
    inputs = clean if mode == "synthetic" else noisy
    result = dn.train(
        inputs,
        kw.pop("targets", None),
        model=_widened_denoise_2d(),
        epochs=1,
        steps_per_epoch=3,
        patch_size=32,
        batch_size=4,
        seed=0,
        device="cpu",
        preview=False,
        **kw,
    )
    model = result.model
    assert result.steps == 3
    # the result is used as its start was: with its noise map
    assert kind_of(model).name == "noise-conditioned" and model.config.in_channels == 2
    score = model.metadata["training"]["settings"]["validation_score"]
    if mode == "self-supervised":
        assert "noise map" in score  # SURE would need the map's divergence: masked loss
    restored = dn.restore(noisy, model=model, device="cpu")
    assert (
        dn.psnr(np.clip(restored, 0, 1), clean, data_range=1)
        > dn.psnr(noisy, clean, data_range=1) + 5
    )


def test_rehearsal_pairs_carry_their_own_noise_map():
    from napari_deconvnet.core.synthetic_pairs import RehearsalPairs

    pairs = RehearsalPairs(ndim=2, size=(32, 32), device="cpu", seed=3, noise_map=True)
    x, y, mask = pairs.batch(6)
    assert x.shape == (6, 2, 32, 32) and y.shape == (6, 1, 32, 32) and mask is None
    level = x[:, 1] - x[:, 0]
    assert bool((level > 0).all())  # every sample is noisy, by its own amount
    plain = RehearsalPairs(ndim=2, size=(32, 32), device="cpu", seed=3)
    assert plain.batch(6)[0].shape == (6, 1, 32, 32)


def test_psf_conditioned_models_are_not_trained_self_supervised():
    noisy = synthesize(_clean(8, 64), "gaussian", sigma=0.1, seed=11)
    with pytest.raises(ValueError, match="self-supervised training cannot learn a deconv"):
        dn.train(noisy, model="deconv-2d", epochs=1, steps_per_epoch=1, device="cpu")


def test_adapt_keeps_the_noise_map():
    noisy = synthesize(0.1 + 0.8 * _clean(9, 96), "gaussian", sigma=0.08, seed=12)
    adapted = dn.adapt(_widened_denoise_2d(), noisy, steps=2, device="cpu")
    assert kind_of(adapted).name == "noise-conditioned"
    assert dn.restore(noisy, model=adapted, device="cpu").shape == noisy.shape


def test_noise_line_never_fails_on_odd_images(monkeypatch):
    """Whatever estimate_noise makes of an image, a line comes back (restore must run)."""
    rng = np.random.default_rng(0)
    for seed in range(12):
        clean = cells_2d(np.random.default_rng(seed), 64).astype(np.float32)
        noisy = rng.poisson(clean * 30 + 1).astype(np.float32) / 30
        for scale, shift in [(1.0, 0.0), (50.0, -200.0), (0.01, 0.0), (3.0, 300.0)]:
            line = noise_line(noisy * scale + shift)
            assert line["a"] >= 0 and np.isfinite(line["b"])
    from napari_deconvnet.core import noise_estimation

    real = noise_estimation._estimate  # (estimate_noise's body, which noise_line calls)

    def failing(image, model, *args, **kw):
        if model == "auto":
            raise ValueError("cannot fit")
        return real(image, model, *args, **kw)

    monkeypatch.setattr(noise_estimation, "_estimate", failing)
    noisy = synthesize(_clean(10, 64), "gaussian", sigma=0.1, seed=13)
    line = noise_line(noisy)
    assert line["a"] == 0.0 and np.sqrt(line["b"]) == pytest.approx(0.1, rel=0.15)
