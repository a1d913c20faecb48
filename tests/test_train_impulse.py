"""Fine-tuning the shipped salt-and-pepper model: its switching-median channel in training."""

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio

import napari_deconvnet as dn

FAST = dict(epochs=4, steps_per_epoch=10, batch_size=8, patch_size=32, device="cpu", seed=0)


def _psnr(image, reference):
    return peak_signal_noise_ratio(reference, image, data_range=1.0)


@pytest.fixture(scope="module")
def brick():
    """A texture unlike the model's training data, 30% impulses; halves to train and test."""
    clean = data.brick()[:192, :192].astype(np.float32) / 255
    noisy = dn.synthesize(clean, "salt-and-pepper", amount=0.3, seed=1)
    return noisy[:, :96], clean[:, :96], noisy[:, 96:], clean[:, 96:]


def test_supervised_fine_tuning_of_salt_and_pepper_gains_on_held_out_texture(brick, tmp_path):
    train_noisy, train_clean, test_noisy, test_clean = brick
    shipped = _psnr(dn.restore(test_noisy, "salt-and-pepper"), test_clean)
    result = dn.train(train_noisy, train_clean, model="salt-and-pepper", **FAST)
    assert result.improved, result.message
    model = result.model
    assert model.metadata["impulse_switch"] and model.config.in_channels == 2
    assert model.metadata["conditioning"]["method"] == "switching-median"
    restored = dn.restore(test_noisy, model)
    assert _psnr(restored, test_clean) >= shipped + 1.0, (shipped, result.history)
    # the impulse switch is kept: every pixel that is not an impulse is the input's
    kept = (test_noisy > test_noisy.min()) & (test_noisy < test_noisy.max())
    np.testing.assert_array_equal(restored[kept], test_noisy[kept])
    path = tmp_path / "sp.safetensors"
    dn.save_model(model, path)
    np.testing.assert_array_equal(dn.restore(test_noisy, path), restored)


def test_synthetic_salt_and_pepper_pairs_fine_tune_it(brick):
    # clean inputs only: impulses are synthesised at the source's own extremes
    # (restore's definition of an impulse), not at each patch's
    _, train_clean, test_noisy, test_clean = brick
    shipped = _psnr(dn.restore(test_noisy, "salt-and-pepper"), test_clean)
    noise = dict(model="salt-and-pepper", amount=0.3)
    result = dn.train(train_clean, model="salt-and-pepper", noise=noise, **FAST)
    assert result.improved, result.message
    assert _psnr(dn.restore(test_noisy, result.model), test_clean) >= shipped + 1.0


def test_impulses_of_synthetic_patches_sit_at_the_source_extremes():
    from napari_deconvnet.core.train_setup import build_trainer

    rng = np.random.default_rng(0)
    clean = rng.uniform(0.2, 0.7, (64, 64)).astype(np.float32)
    clean[0, 0], clean[-1, -1] = 0.1, 0.9  # the extremes lie outside most patches
    trainer = build_trainer(
        clean,
        model="salt-and-pepper",
        noise=dict(model="salt-and-pepper", amount=0.2),
        epochs=1,
        steps_per_epoch=1,
        batch_size=4,
        patch_size=16,
        device="cpu",
    )
    x, _, _ = trainer.data.batch(4)
    src = trainer.data.sources[0]
    low = (0.1 - src.offset) / src.scale
    high = (0.9 - src.offset) / src.scale
    image = x[:, 0].numpy()
    impulses = np.isclose(image, low, atol=1e-6) | np.isclose(image, high, atol=1e-6)
    assert 0.1 < impulses.mean() < 0.3  # about the 20% asked for
    # and the switching median (channel 1) replaced every one of them
    channel = x[:, 1].numpy()
    assert not (np.isclose(channel, low, atol=1e-6) | np.isclose(channel, high, atol=1e-6))[
        impulses
    ].any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(), "switching median of its input, which shows a masked pixel"),
        (dict(noise=dict(model="gaussian", sigma=0.1)), "noise='salt-and-pepper'"),
    ],
)
def test_salt_and_pepper_training_that_cannot_work_is_refused(kwargs, match):
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        dn.train(image, model="salt-and-pepper", epochs=1, device="cpu", **kwargs)


def test_a_stacks_impulse_levels_in_training_are_the_pair_restore_takes():
    """Session 70: restore takes one pair of impulse levels for a stack (its whole
    minimum and maximum); training took each frame's own (and the middle frame's for
    the synthetic impulses), so a dim frame was conditioned unlike its restore."""
    from napari_deconvnet.core.train_setup import build_trainer

    rng = np.random.default_rng(0)
    bright = rng.uniform(0.2, 0.9, (64, 64)).astype(np.float32)
    stack = np.stack([bright, bright * 0.1])  # a frame ten times dimmer
    trainer = build_trainer(
        stack, model="salt-and-pepper", noise=dict(model="salt-and-pepper", amount=0.1),
        epochs=1, steps_per_epoch=1, batch_size=4, patch_size=16, device="cpu",
    )  # fmt: skip
    data_set = trainer.data
    src = data_set.sources[0]
    want = {"minimum": float(stack.min()), "maximum": float(stack.max())}
    for lead in [(0,), (1,)]:
        got = data_set._image_condition(src, lead)
        assert got["minimum"] == pytest.approx(want["minimum"])
        assert got["maximum"] == pytest.approx(want["maximum"])
