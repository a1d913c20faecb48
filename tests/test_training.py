"""The training engine: the three modes, control, data, reproducibility and bad input.

Trainings are tiny (8-channel networks, 32 px patches) and bounded by epochs
and by a time budget, so the suite stays fast on a small CPU.
"""

import copy
import json
import threading

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

import napari_deconvnet as dn
from napari_deconvnet.core import patches as patches_module
from napari_deconvnet.core.losses import lr_factor
from napari_deconvnet.core.patches import PatchSampler, blind_spot
from napari_deconvnet.core.training import train

TINY = {"base_channels": 8}
FAST = dict(patch_size=32, batch_size=8, network=TINY, device="cpu")


def _phantom(shape, rng):
    """Smooth blobs in [0, 1]: the 'clean' image of the tests."""
    grids = np.meshgrid(*(np.arange(n) / n for n in shape), indexing="ij")
    img = np.zeros(shape, np.float32)
    for _ in range(12):
        centre = rng.random(len(shape))
        radius = 0.05 + 0.15 * rng.random()
        dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
        img += (0.2 + 0.8 * rng.random()) * np.exp(-dist2 / (2 * radius**2))
    return (img / img.max()).astype(np.float32)


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    clean = _phantom((128, 128), rng)
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    return noisy, clean


@pytest.fixture
def held_out():
    rng = np.random.default_rng(1)
    clean = _phantom((128, 128), rng)
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    return noisy, clean


def _psnr(image, reference):
    return peak_signal_noise_ratio(reference, image, data_range=1.0)


def _gaussian_psf(sigma=1.5, half=6):
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    psf = np.exp(-(yy**2 + xx**2) / (2 * sigma**2))
    return psf / psf.sum()


# ---------------------------------------------------------------- the three modes


def test_supervised_gains_3db_in_160_steps(pair, held_out):
    noisy, clean = pair
    result = train(noisy, clean, epochs=8, steps_per_epoch=20, max_seconds=900, **FAST)
    before = result.history[0]["input_val_psnr"]
    assert max(h["val_psnr"] for h in result.history) >= before + 3, result.history
    assert result.history[result.best_epoch]["val_loss"] == min(
        h["val_loss"] for h in result.history
    )
    # and on an image it never saw, through the public restore
    test_noisy, test_clean = held_out
    restored = dn.restore(test_noisy, result.model, device="cpu")
    gain = _psnr(restored, test_clean) - _psnr(test_noisy, test_clean)
    assert gain >= 3, (gain, result.steps, result.history)


def test_self_supervised_improves_on_pixel_independent_noise(pair, held_out):
    noisy, _ = pair
    result = train(noisy, epochs=5, steps_per_epoch=20, max_seconds=900, lr=3e-3, **FAST)
    assert result.config.mode == "self-supervised"
    assert "val_psnr" not in result.history[-1]  # no targets, no PSNR
    assert result.history[result.best_epoch]["val_loss"] < result.history[0]["val_loss"]
    test_noisy, test_clean = held_out
    restored = dn.restore(test_noisy, result.model, device="cpu")
    assert _psnr(restored, test_clean) > _psnr(test_noisy, test_clean) + 1


def _sharp_phantom(shape, rng, n=60):
    """Sharp-edged disks: detail that a blur destroys."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.full(shape, 0.1, np.float32)
    for _ in range(n):
        (cy, cx), r = rng.random(2) * shape, 1.5 + 5 * rng.random()
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 0.3 + 0.7 * rng.random()
    return img


def test_synthetic_pairs_with_gaussian_psf_beat_the_blurred_input():
    clean = _sharp_phantom((128, 128), np.random.default_rng(0))
    psf = _gaussian_psf()
    noise = dict(model="gaussian", sigma=0.01)
    result = train(
        clean, noise=noise, psf=psf, epochs=5, steps_per_epoch=20, max_seconds=900, **FAST
    )
    assert result.config.mode == "synthetic"
    best = result.history[result.best_epoch]
    assert best["val_psnr"] > result.history[0]["input_val_psnr"] + 0.5
    test_clean = _sharp_phantom((128, 128), np.random.default_rng(1))
    blurred = dn.synthesize(test_clean, "gaussian", sigma=0.01, psf=psf, seed=5)
    restored = dn.restore(blurred, result.model, device="cpu")
    assert _psnr(restored, test_clean) > _psnr(blurred, test_clean) + 0.5
    record = result.model.metadata["training"]
    assert record["noise"] == {"model": "gaussian", "sigma": 0.01}
    assert record["psf"]["shape"] == [13, 13]


def test_3d_network_on_a_volume_and_2d_network_on_a_stack():
    rng = np.random.default_rng(0)
    volume = rng.random((16, 32, 32), dtype=np.float32)
    result = train(
        volume,
        volume,
        epochs=1,
        steps_per_epoch=2,
        patch_size=(8, 16, 16),
        batch_size=2,
        network={"base_channels": 4},
        device="cpu",
    )
    assert result.model.config.ndim == 3
    assert result.model.metadata["training"]["data_shapes"] == [[16, 32, 32]]
    assert dn.restore(volume, result.model, device="cpu").shape == volume.shape
    # the same stack, plane by plane, with a 2D network, and a list of inputs
    result = train(
        [volume, volume[:4]],
        epochs=1,
        steps_per_epoch=2,
        patch_size=16,
        batch_size=2,
        network={"base_channels": 4},
        device="cpu",
    )
    assert result.model.config.ndim == 2


def test_automatic_patch_size_fits_small_images_beside_their_validation(held_out):
    # A 96 x 96 pair used to fail with the fixed 64 x 64 default: its one 64 x 64
    # validation patch left no room for a training patch. patch_size=None picks
    # the largest automatic size that fits, and the run still learns.
    rng = np.random.default_rng(3)
    clean = _phantom((96, 96), rng)
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    with pytest.raises(ValueError, match="no \\(64, 64\\) training patch fits"):
        train(noisy, clean, epochs=1, steps_per_epoch=1, patch_size=64, network=TINY)
    result = train(noisy, clean, epochs=6, steps_per_epoch=20, batch_size=8, network=TINY)
    assert result.config.patch_size == (48, 48)
    test_noisy, test_clean = held_out
    restored = dn.restore(test_noisy, result.model, device="cpu")
    assert _psnr(restored, test_clean) >= _psnr(test_noisy, test_clean) + 3
    # a 3D volume of 12 planes: the automatic 32 x 64 x 64 shrinks to fit it
    volume = rng.random((12, 40, 40), dtype=np.float32)
    result = train(
        volume, volume, epochs=1, steps_per_epoch=1, batch_size=2, network={"ndim": 3, **TINY}
    )
    assert result.config.patch_size[0] <= 12 and result.model.config.ndim == 3


def test_automatic_patch_sizes():
    from napari_deconvnet.core.train_setup import auto_patch_sizes

    assert auto_patch_sizes(2, 4, [(512, 512)])[0] == (64, 64)
    assert auto_patch_sizes(2, 4, [(96, 96)])[:3] == [(64, 64), (48, 48), (32, 32)]
    assert auto_patch_sizes(2, 4, [(200, 30), (50, 300)])[0] == (48, 28)  # smallest input
    assert auto_patch_sizes(3, 4, [(12, 200, 200)])[:2] == [(12, 64, 64), (12, 48, 48)]
    assert auto_patch_sizes(3, 4, [(100, 100, 100)])[0] == (32, 64, 64)
    assert auto_patch_sizes(2, 4, [(20, 20)])[-1] == (8, 8)
    assert auto_patch_sizes(3, 4, [(96, 96)]) == [(32, 64, 64)]  # 2D data: refused later


# ---------------------------------------------------------------- control


def test_stop_ends_within_one_step_and_keeps_the_best_model(pair):
    noisy, clean = pair
    stop = threading.Event()
    steps = []

    def callback(event):
        if event.kind == "step":
            steps.append(event.step)
            if event.step == 3:
                stop.set()

    result = train(
        noisy, clean, epochs=5, steps_per_epoch=50, callback=callback, stop=stop, **FAST
    )
    assert steps == [1, 2, 3]
    assert result.steps == 3 and result.stop_reason == "stopped"
    assert result.history[-1]["step"] == 3  # the partial epoch was validated
    assert isinstance(result.model, dn.DeconvNet)


def test_stop_set_before_the_start_trains_nothing(pair):
    noisy, clean = pair
    stop = threading.Event()
    stop.set()
    result = train(noisy, clean, epochs=2, steps_per_epoch=5, stop=stop, **FAST)
    assert result.steps == 0 and result.stop_reason == "stopped"
    assert len(result.history) == 1


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_model(pair):
    noisy, clean = pair
    calls = []

    def exploding(pred, target):
        calls.append(1)
        value = torch.mean((pred - target) ** 2)
        return value * float("nan") if len(calls) > 6 else value

    with pytest.warns(RuntimeWarning, match="loss became nan"):
        result = train(noisy, clean, epochs=3, steps_per_epoch=4, loss=exploding, **FAST)
    assert result.stop_reason == "non-finite loss"
    assert "nan" in result.message and "kept" in result.message
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert np.isfinite(dn.restore(noisy, result.model, device="cpu")).all()


def test_same_seed_same_history_on_cpu(pair):
    noisy, clean = pair

    def losses(seed):
        result = train(noisy, clean, epochs=2, steps_per_epoch=3, seed=seed, **FAST)
        return [(h["train_loss"], h["val_loss"], h["val_psnr"]) for h in result.history]

    assert losses(0) == losses(0)
    assert losses(0) != losses(1)


def test_early_stopping_with_patience(pair):
    noisy, clean = pair

    def flat(pred, target):  # no gradient: validation never improves
        return (pred * 0).sum() + 1.0

    result = train(
        noisy,
        clean,
        epochs=10,
        steps_per_epoch=2,
        loss=flat,
        patience=2,
        weight_decay=0.0,
        **FAST,
    )
    assert result.stop_reason == "early stopping"
    assert len(result.history) == 3  # epoch 0 and two epochs without improvement
    assert result.best_epoch == 0


def test_best_model_by_validation_is_returned(pair):
    noisy, clean = pair
    states = {}

    def callback(event):
        if event.kind in ("start", "epoch"):
            states[event.epoch] = copy.deepcopy(event.model.state_dict())

    result = train(noisy, clean, epochs=3, steps_per_epoch=3, lr=0.05, callback=callback, **FAST)
    val = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(val))
    for key, value in result.model.state_dict().items():
        torch.testing.assert_close(value, states[result.best_epoch][key].cpu())


def test_events_report_progress_lr_time_and_preview(pair):
    noisy, clean = pair
    events = []
    train(noisy, clean, epochs=2, steps_per_epoch=2, callback=events.append, **FAST)
    kinds = [e.kind for e in events]
    assert kinds == ["start", "step", "step", "epoch", "step", "step", "epoch", "end"]
    step = events[1]
    assert step.lr > 0 and step.train_loss > 0 and step.elapsed > 0 and 0 < step.progress <= 1
    epoch = events[3]
    assert epoch.val_loss is not None and "val_psnr" in epoch.metrics
    assert set(epoch.preview) == {"input", "output", "target"}
    assert epoch.preview["output"].shape == (32, 32)
    assert events[-1].progress == 1.0


def test_lr_schedules():
    assert lr_factor("constant", 0.5) == 1.0
    assert lr_factor("cosine", 0.0) < 0.05 and lr_factor("cosine", 1.0) < 0.02
    assert lr_factor("cosine", 0.05) == pytest.approx(1.0)
    assert lr_factor("one-cycle", 0.0) == pytest.approx(1 / 25)
    assert lr_factor("one-cycle", 0.3) == pytest.approx(1.0)
    assert lr_factor("one-cycle", 1.0) < 1e-4


# ---------------------------------------------------------------- data


def _record_draws(monkeypatch):
    drawn = []
    original = PatchSampler.draw

    def draw(self, *args, **kwargs):
        position = original(self, *args, **kwargs)
        drawn.append(position)
        return position

    monkeypatch.setattr(PatchSampler, "draw", draw)
    return drawn


def test_shapes_regions_restrict_patch_origins(pair, monkeypatch):
    noisy, clean = pair
    drawn = _record_draws(monkeypatch)
    rectangle = np.array([[10, 20], [10, 90], [70, 90], [70, 20]])  # rows 10-70, cols 20-90
    result = train(
        noisy, clean, epochs=1, steps_per_epoch=5, regions=[rectangle], validation=0, **FAST
    )
    assert len(drawn) == 5 * 8 + 1  # the batches, and one draw that checks the set-up
    for _source, _lead, (y, x) in drawn:
        assert 10 <= y and y + 32 <= 71 and 20 <= x and x + 32 <= 91
    assert result.model.metadata["training"]["regions"] is True


def test_labels_validation_region_is_never_trained_on(pair, monkeypatch):
    noisy, clean = pair
    drawn = _record_draws(monkeypatch)
    labels = np.zeros(noisy.shape, np.uint8)
    labels[64:, 64:] = 2  # the bottom-right quarter checks
    events = []
    train(
        noisy,
        clean,
        epochs=1,
        steps_per_epoch=5,
        validation_regions=labels,
        callback=events.append,
        **FAST,
    )
    for _source, _lead, (y, x) in drawn:
        assert y + 32 <= 64 or x + 32 <= 64
    np.testing.assert_allclose(events[0].preview["target"], clean[64:96, 64:96], atol=1e-6)


def test_validation_regions_none_for_one_input_means_no_validation_there(
    pair, held_out, monkeypatch
):
    """Per input, None is the whole input for regions= but nothing for
    validation_regions=: [None, polygon] held out all of input 0 (never trained on)."""
    drawn = _record_draws(monkeypatch)
    events = []
    square = np.array([[0, 0], [0, 63], [63, 63], [63, 0]])
    train(
        [pair[0], held_out[0]],
        [pair[1], held_out[1]],
        epochs=1,
        steps_per_epoch=5,
        validation_regions=[None, [square]],
        callback=events.append,
        **FAST,
    )
    sources = [s for s, _l, _o in drawn]
    assert sources.count(0) > 0  # input 0 trains
    for s, _lead, (y, x) in drawn:  # and input 1 outside its square
        assert s == 0 or y >= 64 or x >= 64
    np.testing.assert_allclose(events[0].preview["target"], held_out[1][:32, :32], atol=1e-6)


def test_a_validation_region_too_small_for_a_patch_is_said(pair):
    small = np.array([[0, 0], [0, 20], [20, 20], [20, 0]])
    big = np.array([[64, 64], [64, 127], [127, 127], [127, 64]])
    with pytest.warns(UserWarning, match=r"1 validation region\(s\) hold no \[32, 32\] patch"):
        train(*pair, epochs=1, steps_per_epoch=2, validation_regions=[small, big], **FAST)


def test_one_input_takes_the_per_input_region_form(pair, monkeypatch):
    """[mask], [None] and [[polygons]] with one input, as with several (the list was
    read as polygons: "a region polygon must be an (N, D) array")."""
    noisy, clean = pair
    mask = np.zeros(noisy.shape, bool)
    mask[:, :48] = True
    square = np.array([[0, 0], [0, 47], [47, 47], [47, 0]])
    for regions, right in (([mask], 48), ([[square]], 48), ([None], 128)):
        drawn = _record_draws(monkeypatch)
        train([noisy], [clean], epochs=1, steps_per_epoch=2, regions=regions, validation=0, **FAST)
        assert drawn and all(x + 32 <= right for _s, _l, (_y, x) in drawn)
        monkeypatch.undo()
    events = []
    train(
        noisy,
        clean,
        epochs=1,
        steps_per_epoch=2,
        validation_regions=[mask],
        callback=events.append,
        **FAST,
    )
    np.testing.assert_allclose(events[0].preview["target"], clean[:32, :32], atol=1e-6)
    # one polygon given as nested lists stays one polygon (not polygons of vertices)
    drawn = _record_draws(monkeypatch)
    train(
        noisy, clean, epochs=1, steps_per_epoch=2, regions=[square.tolist()], validation=0, **FAST
    )
    assert drawn and all(x + 32 <= 48 for _s, _l, (_y, x) in drawn)
    monkeypatch.undo()
    # a channel axis: [mask] is the input's mask for every channel
    two = np.stack([noisy, noisy * 2])
    train(two, np.stack([clean, clean * 2]), axes="CYX", epochs=1, steps_per_epoch=2,
          regions=[mask], validation=0, **FAST)  # fmt: skip
    # ...and with the channel axis last, whose trailing axes are not the mask's (session
    # 72: "a region polygon must be an (N, D) array" for a (Y, X) mask of a (Y, X, 2) pair)
    last = np.moveaxis(two, 0, -1)
    drawn = _record_draws(monkeypatch)
    train(last, np.moveaxis(np.stack([clean, clean * 2]), 0, -1), axes="YXC", epochs=1,
          steps_per_epoch=2, regions=[mask], validation=0, **FAST)  # fmt: skip
    assert drawn and all(x + 32 <= 48 for _s, _l, (_y, x) in drawn)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"give no region on any input \(None for each\)"):
        train(noisy, clean, epochs=1, steps_per_epoch=2, validation_regions=[None], **FAST)


def test_synthetic_noise_with_an_offset_in_the_clean_image_warns_of_nothing(pair):
    """resolve_noise checks the noise on a probe of zeros, which lies below a camera's
    offset: every run with clean_includes_offset=True warned "clean is below 0"."""
    import warnings

    clean = pair[1] * 100 + 110
    noise = dict(
        model="poisson-gaussian", gain=0.5, read_noise=3, offset=100, clean_includes_offset=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(clean, noise=noise, epochs=1, steps_per_epoch=2, validation=0, **FAST)


def test_polygon_on_one_plane_of_a_stack(monkeypatch):
    rng = np.random.default_rng(0)
    stack = rng.random((3, 64, 64), dtype=np.float32)
    drawn = _record_draws(monkeypatch)
    triangle = np.array([[1, 0, 0], [1, 0, 63], [1, 63, 0]])
    target = 1 - stack  # any target but the input itself (refused: nothing to learn)
    train(stack, target, epochs=1, steps_per_epoch=2, regions=[triangle], validation=0, **FAST)
    assert {lead for _s, lead, _o in drawn} == {(1,)}
    assert all(y + x + 62 <= 63 + 1 for _s, _l, (y, x) in drawn)


def test_patches_are_read_lazily_from_dask():
    da = pytest.importorskip("dask.array")
    computed = set()

    def block(x, block_id=None):
        computed.add(block_id)
        rng = np.random.default_rng(block_id[0] * 1000 + block_id[1])
        return rng.random(x.shape, dtype=np.float32)

    # over the 4 M values that statistics read whole (core.normalization.WHOLE_BLOCKS):
    # a sample of 64 chunks, and the patches' own
    zeros = da.zeros((2048, 2560), np.float32, chunks=64)
    image = da.map_blocks(block, zeros, dtype=np.float32)
    total = image.npartitions
    result = train(image, epochs=1, steps_per_epoch=2, validation=0.01, **FAST)
    assert result.steps == 2
    assert 0 < len(computed) < total / 2


def test_fine_tuning_starts_from_the_given_weights(pair, random_net, tmp_path):
    noisy, clean = pair
    net = random_net(ndim=2)
    path = dn.save_model(net, tmp_path / "start.safetensors")
    before = copy.deepcopy(net.state_dict())
    seen = {}

    def callback(event):
        if event.kind == "start":
            seen.update({k: v.detach().cpu().clone() for k, v in event.model.state_dict().items()})

    for model in (net, str(path)):
        seen.clear()
        result = train(
            noisy,
            clean,
            model=model,
            epochs=1,
            steps_per_epoch=2,
            patch_size=32,
            batch_size=4,
            device="cpu",
            callback=callback,
        )
        for key, value in before.items():
            torch.testing.assert_close(seen[key], value)
            torch.testing.assert_close(net.state_dict()[key], value)  # never modified
        assert result.model.metadata["training"]["fine_tuned_from"]["name"] == "random-2d"
        assert result.model.metadata["name"] == "random-2d-finetuned"


def test_metadata_records_the_training_and_is_saved(pair, tmp_path):
    noisy, clean = pair
    result = train(noisy, clean, epochs=1, steps_per_epoch=2, name="my-denoiser", **FAST)
    record = result.model.metadata["training"]
    assert record["mode"] == "supervised" and record["loss"] == "mse"
    assert record["data_shapes"] == [[128, 128]]
    assert record["targets"] == [{"shape": [128, 128], "dtype": "float32"}]
    assert record["epochs"] == 1 and record["steps"] == 2 and record["seconds"] > 0
    assert set(record["versions"]) >= {"napari_deconvnet", "torch", "numpy", "python"}
    assert record["settings"]["patch_size"] == [32, 32]
    json.dumps(result.model.metadata)
    path = dn.save_model(result.model, tmp_path / "m.safetensors")
    loaded = dn.load_model(path)
    assert loaded.metadata["name"] == "my-denoiser"
    assert loaded.metadata["training"] == record


def test_explicit_validation_data(pair, held_out):
    noisy, clean = pair
    result = train(noisy, clean, epochs=1, steps_per_epoch=2, validation=held_out, **FAST)
    assert result.config.validation == "data"
    assert result.model.metadata["training"]["validation"] == "data"
    result = train(noisy, clean, epochs=1, steps_per_epoch=2, validation=None, **FAST)
    assert result.history[-1]["val_loss"] is None


def test_blind_spot_masks_replace_pixels_by_neighbours():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 36 * 36, dtype=torch.float32).reshape(2, 1, 36, 36)
    masked, mask = blind_spot(x, gen)
    assert mask.sum() == 2 * 36  # one pixel per 6x6 cell
    assert (masked[mask] != x[mask]).all()  # all values are distinct, so never itself
    assert torch.equal(masked[~mask], x[~mask])
    b, _, ys, xs = torch.nonzero(mask, as_tuple=True)
    for bi, yi, xi in zip(b[:20], ys[:20], xs[:20], strict=True):
        value = masked[bi, 0, yi, xi]
        window = x[bi, 0, max(yi - 2, 0) : yi + 3, max(xi - 2, 0) : xi + 3]
        assert (window == value).any()


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(targets=np.zeros((64, 60), np.float32)), ValueError, "equal shapes"),
        (dict(patch_size=256), ValueError, "larger than"),
        (dict(patch_size=30), ValueError, "multiple of the network's grid"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(loss="psnr"), ValueError, "unknown loss"),
        (dict(loss="ssim"), ValueError, "self-supervised"),
        # (SSIM's own refusal advised a larger region, in napari a larger crop)
        (
            dict(loss="mse+ssim", patch_size=8, targets=np.zeros((128, 128), np.float32)),
            ValueError,
            r"window is 11 pixels, but patch_size is \(8, 8\)",
        ),
        (dict(mode="n2n"), ValueError, "unknown mode"),
        (dict(mode="supervised"), ValueError, "needs targets"),
        (dict(regions=[np.array([[500, 500], [500, 600], [600, 600]])]), ValueError, "empty"),
        (dict(regions=np.zeros((128, 128), bool)), ValueError, "empty"),
        (dict(regions=[np.array([[0, 0], [0, 8], [8, 8], [8, 0]])]), ValueError, "fits inside"),
        (
            dict(patch_size=(16, 16, 16), network={"ndim": 2}),
            ValueError,
            "3D but the network is 2D",
        ),
        (dict(patch_size=(16, 16, 16)), ValueError, "2D .* but the network is 3D"),
        (dict(patch_size=(16, 16, 16), model="default"), ValueError, "network is 2D"),
        (dict(noise="pink"), ValueError, "unknown noise"),
        (dict(noise="gaussian", targets=np.zeros((128, 128))), ValueError, "not both"),
        (dict(schedule="step"), ValueError, "unknown schedule"),
        (dict(validation=1.5), ValueError, "validation"),
        (dict(epochs=0), ValueError, "epochs"),
        (dict(inputs=[1, 2, 3]), TypeError, "numpy or dask array"),
        (dict(inputs=np.zeros((128, 128), complex)), TypeError, "real data"),
    ],
)
def test_bad_input_is_refused_clearly(kwargs, error, match):
    image = np.random.default_rng(0).random((128, 128), dtype=np.float32)
    inputs = kwargs.pop("inputs", image)
    targets = kwargs.pop("targets", None)
    options = {**FAST, **kwargs}
    if "model" in options:
        options.pop("network")
    with pytest.raises(error, match=match):
        train(inputs, targets, epochs=options.pop("epochs", 1), **options)


@pytest.mark.parametrize("where", ["inputs", "targets"])
def test_nan_in_the_data_is_refused(where):
    image = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    bad = image.copy()
    bad[5, 7] = np.nan
    inputs, targets = (bad, image) if where == "inputs" else (image, bad)
    with pytest.raises(ValueError, match="NaN"):
        train(inputs, targets, epochs=1, **FAST)


def test_nan_in_a_dask_array_is_refused_when_read():
    da = pytest.importorskip("dask.array")
    image = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    image[:, 40:] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train(da.from_array(image, chunks=32), epochs=1, **FAST)


def test_core_training_imports_no_gui():
    import subprocess
    import sys

    code = (
        "import sys, napari_deconvnet.core.training, napari_deconvnet.core.patches; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'magicgui', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
    assert patches_module.__name__ == "napari_deconvnet.core.patches"


@pytest.mark.parametrize("loss", ["l1", "ssim", "mse+ssim", "balanced-mse", "hdr-mse"])
def test_other_losses(pair, loss):
    noisy, clean = pair
    result = train(noisy, clean, epochs=1, steps_per_epoch=2, loss=loss, **FAST)
    assert result.model.metadata["training"]["loss"] == loss
    assert np.isfinite(result.history[-1]["train_loss"])
    assert 0 < result.history[-1]["val_ssim"] <= 1


def test_trains_on_every_available_device(pair, device):
    noisy, clean = pair
    options = {**FAST, "device": device}
    result = train(noisy, clean, epochs=1, steps_per_epoch=2, **options)
    assert result.config.device.startswith(device)
    # mixed precision (float16 with loss scaling) on CUDA, float32 elsewhere
    assert result.config.precision == ("float16" if device == "cuda" else "float32")
    assert next(result.model.parameters()).device.type == "cpu"


def test_default_learning_rate_of_a_new_network_depends_on_its_dimensionality():
    """3e-3 for a new 2D network; 1e-3 for a new 3D one, where 3e-3 diverges (README)."""
    from napari_deconvnet.core.train_setup import LR_SCRATCH, LR_SCRATCH_3D

    rng = np.random.default_rng(0)
    volume = rng.random((16, 32, 32), dtype=np.float32)
    quick = dict(epochs=1, steps_per_epoch=1, batch_size=2, device="cpu")
    quick["network"] = {"base_channels": 4}
    clean = 1 - volume  # any target but the input itself (refused: nothing to learn)
    new_3d = train(volume, clean, patch_size=(8, 16, 16), **quick)
    assert new_3d.model.config.ndim == 3
    assert new_3d.model.metadata["training"]["settings"]["lr"] == LR_SCRATCH_3D == 1e-3
    new_2d = train(volume[0], clean[0], patch_size=16, **quick)
    assert new_2d.model.metadata["training"]["settings"]["lr"] == LR_SCRATCH == 3e-3
    given = train(volume, clean, patch_size=(8, 16, 16), lr=5e-4, **quick)
    assert given.model.metadata["training"]["settings"]["lr"] == 5e-4


def test_a_noise_dict_may_name_its_model_with_kind_as_a_psf_dict_does():
    """{'kind': ...} (the key of a PSF dict) names the noise as {'model': ...} does."""
    from napari_deconvnet.core.trainset import resolve_noise

    by_model = resolve_noise({"model": "gaussian", "sigma": 0.1}, None, 2)
    by_kind = resolve_noise({"kind": "gaussian", "sigma": 0.1}, None, 2)
    assert by_kind[:2] == by_model[:2] == ("gaussian", {"sigma": 0.1}, None)[:2]


def test_an_ssim_loss_trains_with_the_automatic_patch_size():
    # the window check took the automatic list's smallest fallback (8, 8) and refused
    # every SSIM training left at the default patch size (the Train widget's too)
    rng = np.random.default_rng(0)
    clean = rng.random((128, 128)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    result = dn.train(
        noisy, clean, loss="mse+ssim", epochs=1, steps_per_epoch=1, batch_size=1, device="cpu"
    )
    assert min(result.config.patch_size) >= 11 and result.steps == 1
    # no automatic size reaches the window (a stack of 6 planes): refused before the
    # work, in training's words (it started and failed in the metric's)
    stack = rng.random((6, 48, 48)).astype(np.float32)
    with pytest.raises(ValueError, match=r"the images allow patches of \(4, 48, 48\)"):
        dn.train(stack, stack, loss="mse+ssim", epochs=1, batch_size=1, device="cpu",
                 network={"ndim": 3, "base_channels": 4, "depth": 2})  # fmt: skip
