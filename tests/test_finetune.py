"""Training a user can trust: never worse than the start, resume, channels.

Tiny networks and a few steps, so the file runs in well under a minute on a
small CPU.
"""

import json
import threading
import warnings

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

import napari_deconvnet as dn
from napari_deconvnet.core.checkpoint import resume_path

TINY = {"base_channels": 8}
FAST = dict(patch_size=32, batch_size=8, device="cpu")


def _phantom(shape, seed):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.arange(n) / n for n in shape), indexing="ij")
    img = np.zeros(shape, np.float32)
    for _ in range(12):
        centre = rng.random(len(shape))
        radius = 0.05 + 0.15 * rng.random()
        dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
        img += (0.2 + 0.8 * rng.random()) * np.exp(-dist2 / (2 * radius**2))
    return (img / img.max()).astype(np.float32)


def _noisy(clean, sigma, seed):
    return clean + np.random.default_rng(seed).normal(0, sigma, clean.shape).astype(np.float32)


def _states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_that_can_only_hurt_returns_the_start_bit_identical():
    # a learning rate a thousand times too high wrecks the shipped model within
    # a step or two: nothing can beat it on the validation split
    clean = _phantom((96, 96), 0)
    noisy = _noisy(clean, 0.1, 1)
    start = dn.load_model("default")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the loss may blow up
        result = dn.train(
            noisy, clean, model=start, epochs=2, steps_per_epoch=3, lr=1.0, l2sp=0, **FAST
        )
    assert result.steps >= 1
    assert result.improved is False
    assert result.best_epoch == 0
    assert _states_equal(result.model, start)
    assert "returned unchanged" in result.message
    assert result.model.metadata["training"]["improved"] is False
    assert result.history[0]["epoch"] == 0 and result.history[0]["step"] == 0
    # handed back under the start's name and conditions: it was renamed "-finetuned"
    # and warned that a noisier image lay outside this run's data
    assert result.model.metadata["name"] == start.metadata["name"]
    # and its description (session 67: "2D model from supervised training")
    assert result.model.metadata["description"] == start.metadata["description"]
    assert result.model.metadata["training"]["conditions"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", dn.ConditionsWarning)
        dn.restore(_noisy(clean, 0.3, 2), result.model)


def test_fine_tuning_that_helps_says_so():
    clean = _phantom((96, 96), 3)
    noisy = _noisy(clean, 0.15, 4)
    result = dn.train(noisy, clean, model="default", epochs=2, steps_per_epoch=4, **FAST)
    assert result.config.fine_tuning and result.config.lr == pytest.approx(1e-3)
    assert result.config.l2sp == 100 and result.config.rehearsal == 1.0
    if result.improved:
        assert result.best_epoch > 0 and "improved" in result.message
        assert result.history[result.best_epoch]["val_loss"] < result.history[0]["val_loss"]
    else:
        assert result.best_epoch == 0


def test_l2sp_keeps_the_weights_near_the_start():
    clean = _phantom((64, 64), 5)
    noisy = _noisy(clean, 0.2, 6)
    start = dn.load_model("default")
    kw = dict(model=start, epochs=1, steps_per_epoch=6, lr=3e-3, validation=None, **FAST)
    free = dn.train(noisy, clean, l2sp=0, **kw).model
    pulled = dn.train(noisy, clean, l2sp=200, **kw).model

    def distance(net):
        return sum(
            float((p - q).detach().pow(2).sum())
            for p, q in zip(net.parameters(), start.parameters(), strict=True)
        )

    assert distance(pulled) < 0.8 * distance(free)


def test_autosave_and_resume_continue_the_run(tmp_path):
    clean = _phantom((96, 96), 7)
    noisy = _noisy(clean, 0.3, 8)
    path = tmp_path / "run.safetensors"
    kw = dict(network=TINY, steps_per_epoch=5, seed=0, lr=1e-2, **FAST)
    first = dn.train(noisy, clean, epochs=3, autosave=path, **kw)
    assert path.exists() and resume_path(path).exists()
    saved = dn.load_model(path)  # the best model so far is an ordinary model file
    assert _states_equal(saved, first.model)
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind

    second = dn.train(noisy, clean, epochs=6, resume=path, autosave=path, **kw)
    steps = [h["step"] for h in second.history]
    assert steps[:4] == [h["step"] for h in first.history]  # the old record goes on
    assert steps[4:] == [20, 25, 30]
    assert second.steps == 30
    # the loss does not jump back: the first epoch after resuming goes on from
    # where the first part ended, well below the run's first epoch
    resumed = second.history[4]
    assert resumed["train_loss"] < 0.8 * first.history[1]["train_loss"]
    assert resumed["train_loss"] < 1.1 * first.history[3]["train_loss"]
    assert resumed["val_loss"] < first.history[3]["val_loss"]
    record = json.loads(json.dumps(second.model.metadata["training"]))
    assert record["steps"] == 30


def test_a_run_stopped_mid_epoch_resumes_to_the_steps_of_the_uninterrupted_run(tmp_path):
    clean = _phantom((64, 64), 7)
    noisy = _noisy(clean, 0.3, 8)
    path = tmp_path / "run.safetensors"
    kw = dict(network=TINY, steps_per_epoch=2, seed=0, **FAST)
    stop = threading.Event()
    events = dn.train_iter(noisy, clean, epochs=4, autosave=path, stop=stop, **kw)
    for event in events:
        if event.kind == "step" and event.step == 3:  # half-way through epoch 2
            stop.set()
    second = dn.train(noisy, clean, epochs=4, resume=path, autosave=path, **kw)
    assert second.steps == 8  # epochs x steps_per_epoch, as without the stop
    # validated after the cut-short epoch, then at the uninterrupted run's steps
    assert [h["step"] for h in second.history] == [0, 2, 3, 4, 6, 8]
    # the message says what the record holds (session 73: "finished 4 epochs" beside 5)
    assert second.model.metadata["training"]["epochs"] == 5
    assert "finished 4 epochs (8 steps), recorded as 5 validated epochs" in second.message
    again = dn.train(noisy, clean, epochs=4, resume=path, **kw)
    assert again.steps == 8 and "nothing left to do" in again.message
    # resume= alone goes on autosaving there: a second crash keeps the resumed part
    stop.clear()
    events = dn.train_iter(noisy, clean, epochs=6, resume=path, stop=stop, **kw)
    for event in events:
        if event.kind == "step" and event.step == 9:
            stop.set()
    from napari_deconvnet.core.checkpoint import read_resume

    assert read_resume(path)["step"] == 9  # (it stayed at 8)
    # resumed from the resume file's own path: the best model still goes to the model file
    state_file = resume_path(path)
    final = dn.train(noisy, clean, epochs=6, resume=state_file, **kw)
    assert final.steps == 12 and read_resume(path)["step"] == 12
    assert _states_equal(dn.load_model(path), final.model)


@pytest.mark.parametrize("steps_per_epoch", [1, 4])
def test_a_diverging_run_stops_with_a_warning_and_keeps_the_start(steps_per_epoch):
    # lr 1e20: the first step wrecks the weights; the validation after it (one step
    # an epoch) or the next step's loss (four) finds it, and the start comes back
    clean = _phantom((64, 64), 2)
    noisy = _noisy(clean, 0.1, 3)
    start = dn.DeconvNet(dn.DeconvNetConfig(**TINY))
    for validation in (0.25, None):
        with pytest.warns(RuntimeWarning, match="training stopped: the .* (loss|output)"):
            result = dn.train(
                noisy, clean, model=start, lr=1e20, l2sp=0, epochs=3, seed=0,
                steps_per_epoch=steps_per_epoch, validation=validation, **FAST,
            )  # fmt: skip
        assert result.stop_reason == "non-finite loss" and result.best_epoch == 0
        assert _states_equal(result.model, start)
        assert "starting" in result.message or "unchanged" in result.message


def test_resume_refuses_a_missing_or_different_run(tmp_path):
    clean = _phantom((64, 64), 9)
    with pytest.raises(ValueError, match="no resume state"):
        dn.train(clean, clean, resume=tmp_path / "none.safetensors", network=TINY, **FAST)
    with pytest.raises(ValueError, match="safetensors"):
        dn.train(clean, clean, autosave=tmp_path / "x.pt", network=TINY, **FAST)
    path = tmp_path / "run.safetensors"
    target = 0.5 * clean  # (a target identical to its input is refused)
    dn.train(clean, target, epochs=1, steps_per_epoch=1, autosave=path, network=TINY, **FAST)
    with pytest.raises(ValueError, match="patch_size"):
        dn.train(clean, clean, resume=path, network=TINY, **{**FAST, "patch_size": 16})
    # other images: the best kept and the start's score were the first run's numbers,
    # and a "best" never scored on the new data came back as improved
    other = _phantom((64, 64), 10)
    with pytest.raises(ValueError, match="saved by a run on other data"):
        dn.train(
            _noisy(other, 0.3, 1), other, resume=path, epochs=2, steps_per_epoch=1,
            network=TINY, **FAST,
        )  # fmt: skip
    # the same images resume
    again = dn.train(clean, target, epochs=2, steps_per_epoch=1, resume=path, network=TINY, **FAST)
    assert again.steps == 2


def test_rgb_training_restores_a_held_out_crop_better():
    rng = np.random.default_rng(10)
    clean = np.stack([_phantom((128, 128), s) for s in (11, 12, 13)], axis=-1)
    clean *= np.array([1.0, 0.6, 0.3], np.float32)  # channels of different brightness
    noisy = (clean + rng.normal(0, 0.15, clean.shape)).astype(np.float32)
    train_in, train_tg = noisy[:, :80], clean[:, :80]
    result = dn.train(
        train_in, train_tg, epochs=3, steps_per_epoch=8, lr=1e-2, network=TINY, **FAST
    )
    assert result.config.axes == "YXS"
    assert result.improved
    held_in, held_tg = noisy[:, 80:], clean[:, 80:]
    out = dn.restore(held_in, result.model, axes="YXS", device="cpu")
    assert out.shape == held_in.shape
    before = peak_signal_noise_ratio(held_tg, held_in, data_range=1.0)
    after = peak_signal_noise_ratio(held_tg, out, data_range=1.0)
    assert after > before + 1.0


def test_channels_first_multichannel_with_explicit_axes():
    clean = np.stack([_phantom((64, 64), s) for s in (14, 15)])
    noisy = _noisy(clean, 0.1, 16)
    result = dn.train(noisy, clean, axes="CYX", epochs=1, steps_per_epoch=2, network=TINY, **FAST)
    assert result.config.axes == "CYX"
    assert result.model.metadata["training"]["data_shapes"] == [[2, 64, 64]]
    with pytest.raises(ValueError, match="letters"):
        dn.train(noisy, clean, axes="YX", network=TINY, **FAST)


def test_rehearsal_mixes_known_noise_into_fine_tuning_batches(monkeypatch):
    from napari_deconvnet.core.adapt import RehearsalPairs

    sizes = []
    original = RehearsalPairs.batch

    def batch(self, n):
        sizes.append(n)
        return original(self, n)

    monkeypatch.setattr(RehearsalPairs, "batch", batch)
    clean = _phantom((64, 64), 17)
    noisy = _noisy(clean, 0.1, 18)
    for targets in (clean, None):  # supervised, and self-supervised with a supervised term
        result = dn.train(
            noisy, targets, model="default", rehearsal=0.25, epochs=1, steps_per_epoch=2, **FAST
        )
        assert result.config.rehearsal == 0.25
        assert np.isfinite(result.history[-1]["train_loss"])
    assert sizes == [2, 2, 2, 2]  # a quarter of the batch of 8, every step
    with pytest.raises(ValueError, match=r"rehearsal must be a number in \[0, 4\]"):
        dn.train(noisy, clean, model="default", rehearsal=5, **FAST)


def test_the_verdict_quotes_the_scores_of_the_weights_kept():
    """When the weights' moving average won, the message gives its scores, not the raw ones."""
    from types import SimpleNamespace

    from napari_deconvnet.core.trainer import Trainer

    trainer = object.__new__(Trainer)
    trainer.config = SimpleNamespace(fine_tuning=True, mode="supervised")
    trainer.sure = None
    start = {"epoch": 0, "val_loss": -32.27, "val_psnr": 32.27}
    best = {"epoch": 12, "val_loss": -32.15, "val_psnr": 32.15}
    best |= {"ema_val_loss": -32.29, "ema_val_psnr": 32.29}
    trainer.history = [start, best]
    trainer.best = {"epoch": 12, "weights": "ema"}
    text = trainer.verdict(True, best)
    assert "-32.27 -> -32.29" in text and "(PSNR +0.02 dB)" in text and "moving average" in text
    trainer.best = {"epoch": 12, "weights": "raw"}
    text = trainer.verdict(True, best)
    assert "-32.27 -> -32.15" in text and "(PSNR -0.12 dB: the loss over all the" in text
    assert "mean of the patches' PSNRs did not; compare the restored images)" in text
    assert "moving average" not in text


def _scripted_scores(monkeypatch, scores):
    """Validations that return `scores` in turn: (loss, SSIM) of the weights, no EMA."""
    from napari_deconvnet.core.trainer import Trainer

    queue = list(scores)

    def score(self, net, preview=True):
        loss, ssim = queue.pop(0)
        return loss, {"val_psnr": -10 * np.log10(loss), "val_ssim": ssim}, None

    monkeypatch.setattr(Trainer, "score", score)
    monkeypatch.setattr(Trainer, "validate", lambda self: self.score(self.net))


@pytest.mark.parametrize(
    ("scores", "best_epoch"),
    [
        # a lower loss with a lower SSIM than the start is refused; a later one that
        # keeps the SSIM is kept
        ([(1.0, 0.80), (0.5, 0.79), (0.8, 0.81)], 2),
        # every lower loss comes with a lower SSIM: the start is returned
        ([(1.0, 0.80), (0.5, 0.70), (0.6, 0.799)], 0),
        # the SSIM floor is the start's, not the best so far
        ([(1.0, 0.80), (0.9, 0.85), (0.8, 0.82)], 2),
    ],
)
def test_fine_tuning_never_keeps_weights_whose_ssim_fell_below_the_start(
    monkeypatch, scores, best_epoch
):
    _scripted_scores(monkeypatch, scores)
    clean = _phantom((96, 96), 5)
    start = dn.load_model("default")
    result = dn.train(
        _noisy(clean, 0.1, 6), clean, model=start, epochs=2, steps_per_epoch=1, ema=None, **FAST
    )
    assert result.best_epoch == best_epoch
    assert result.improved is (best_epoch > 0)
    if best_epoch == 0:
        assert _states_equal(result.model, start)
        assert "returned unchanged" in result.message
        assert "2 validation(s) had a lower loss but a lower SSIM" in result.message
        assert "0.800" in result.message
    elif scores[1][1] < scores[0][1]:
        assert "1 validation(s) with a lower loss but an SSIM below" in result.message
    else:
        assert "SSIM below" not in result.message


def test_rgb_trains_in_the_opponent_colour_space_restore_applies_it_in():
    from napari_deconvnet.core.colour import to_opponent
    from napari_deconvnet.core.train_setup import by_channel, trains_in_opponent_colour

    rng = np.random.default_rng(3)
    rgba = rng.random((2, 40, 48, 4)).astype(np.float32)  # T, Y, X, RGBA
    planes = by_channel([rgba], "TYXS", 2, opponent=True)
    assert len(planes) == 3  # luminance and two chroma channels; alpha is not trained on
    expected = to_opponent(rgba[..., :3], 3)
    for c, plane in enumerate(planes):
        np.testing.assert_allclose(plane, expected[..., c], rtol=1e-6)
    plain, pair = dn.DeconvNet(dn.DeconvNetConfig(**TINY)), [rgba[0]]
    assert trains_in_opponent_colour(plain, "YXS", pair, "supervised", None)
    assert not trains_in_opponent_colour(plain, "YXC", pair, "supervised", None)  # channels
    assert trains_in_opponent_colour(plain, "YXS", pair, "synthetic", {"model": "gaussian"})
    # Poisson noise is added to red, green and blue: those pairs stay channel by channel
    assert not trains_in_opponent_colour(plain, "YXS", pair, "synthetic", "poisson")
    two = dn.DeconvNet(dn.DeconvNetConfig(in_channels=2, **TINY))
    assert not trains_in_opponent_colour(two, "YXS", pair, "supervised", None)


def test_rgb_training_records_its_colour_space_and_takes_images_of_several_sizes():
    rng = np.random.default_rng(4)
    clean = rng.random((64, 64, 3)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    kw = dict(epochs=1, steps_per_epoch=1, network=TINY, **FAST)
    # no axes: (Y, X, 3) images of two sizes are RGB, as one size is
    result = dn.train([noisy, noisy[:48]], [clean, clean[:48]], **kw)
    assert result.config.axes == "YXS"
    assert result.model.metadata["training"]["colour"] == "opponent"
    poisson = dn.train(clean, noise="poisson", axes="YXS", **kw)  # channel by channel
    assert "colour" not in poisson.model.metadata["training"]
