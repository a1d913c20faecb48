"""dn.train's options and data as users pass them: validation pairs, the
autosave when nothing beats the start, optimiser options, channel masks."""

import warnings

import numpy as np
import pytest
import torch

import napari_deconvnet as dn

NET = {"base_channels": 4}


def _pair(shape=(96, 96), seed=0):
    rng = np.random.default_rng(seed)
    clean = rng.random(shape).astype(np.float32)
    return clean + rng.normal(0, 0.1, shape).astype(np.float32), clean


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.values(), b.values(), strict=True))


@pytest.mark.parametrize(
    ("validation", "match"),
    [
        (lambda n, c: (n, c[:80, :80]), "validation data: input 0 has shape"),
        (lambda n, c: (n[:64, :64], c), "validation data: input 0 has shape"),
        (lambda n, c: ([n, n], [c]), "validation data: 2 inputs but 1 targets"),
        (lambda n, c: ([n], [c, c]), "validation data: 1 inputs but 2 targets"),
    ],
)
def test_explicit_validation_pairs_are_checked_like_the_training_pairs(validation, match):
    noisy, clean = _pair()
    with pytest.raises(ValueError, match=match):
        dn.train(noisy, clean, epochs=1, network=NET, validation=validation(noisy, clean))


def test_the_autosave_is_this_runs_start_when_nothing_beats_it(tmp_path):
    noisy, clean = _pair()
    path = tmp_path / "run.safetensors"
    first = dn.train(noisy, clean, epochs=2, steps_per_epoch=5, network=NET, autosave=path,
                     name="first-run")  # fmt: skip
    assert first.improved and dn.load_model(path).metadata["name"] == "first-run"
    other_noisy, other_clean = _pair(seed=1)
    second = dn.train(other_noisy, other_clean, epochs=1, steps_per_epoch=2, lr=1e-12,
                      network=NET, autosave=path, name="second-run")  # fmt: skip
    assert not second.improved
    saved = dn.load_model(path)  # this run's start, not the first run's model
    assert saved.metadata["name"] == "second-run"
    assert _same(saved.state_dict(), second.model.state_dict())
    # a fresh path gets a model file too, and without validation the last weights
    fresh = tmp_path / "fresh.safetensors"
    last = dn.train(noisy, clean, epochs=2, steps_per_epoch=3, network=NET, autosave=fresh,
                    validation=None)  # fmt: skip
    assert _same(dn.load_model(fresh).state_dict(), last.model.state_dict())


@pytest.mark.parametrize(
    ("option", "value", "error", "match"),
    [
        ("clip_norm", -1.0, ValueError, "clip_norm must be a positive number.*reverse"),
        ("clip_norm", "a", TypeError, "clip_norm must be a positive number"),
        ("weight_decay", -1.0, ValueError, "weight_decay must be a number >= 0"),
        ("weight_decay", "a", TypeError, "weight_decay must be a number >= 0"),
        ("ssim_weight", "a", TypeError, "ssim_weight must be a number in"),
        ("augment", "no", TypeError, "augment must be True or False"),
    ],
)
def test_optimiser_options_are_checked(option, value, error, match):
    noisy, clean = _pair()
    with pytest.raises(error, match=match):
        dn.train(noisy, clean, epochs=1, network=NET, **{option: value})


def test_clip_norm_zero_means_no_clipping():
    """0 turns an option off, as for l2sp and rehearsal (it froze training: every
    gradient clipped to norm 0)."""
    noisy, clean = _pair()
    # no intensity jitter: three steps from scratch must show the learning
    kw = dict(epochs=1, steps_per_epoch=3, batch_size=4, network=NET, seed=0, intensity_jitter=0)
    off = dn.train(noisy, clean, clip_norm=0, **kw)
    none = dn.train(noisy, clean, clip_norm=None, **kw)
    assert _same(off.model.state_dict(), none.model.state_dict())
    assert off.improved  # it learns (with every gradient clipped to 0 it never did)


def test_a_mask_of_the_whole_rgb_shape_is_split_by_channel():
    rng = np.random.default_rng(2)
    clean = rng.random((96, 96, 3)).astype(np.float32)
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    mask = np.zeros(clean.shape, bool)
    mask[:, :64] = True  # the left two thirds, in every channel
    result = dn.train(noisy, clean, axes="YXS", regions=mask, epochs=1, steps_per_epoch=2,
                      patch_size=16, network=NET)  # fmt: skip
    assert result.steps == 2
    flat = mask[..., 0]  # the spatial mask works as before, alike for every channel
    again = dn.train(noisy, clean, axes="YXS", regions=flat, epochs=1, steps_per_epoch=2,
                     patch_size=16, network=NET)  # fmt: skip
    assert _same(result.model.state_dict(), again.model.state_dict())


@pytest.mark.parametrize("name", ["l2sp", "rehearsal"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_l2sp_and_rehearsal_are_refused_by_name(name, value):
    # NaN slipped past the range check and failed later as "x contains NaN"
    noisy, clean = _pair(shape=(64, 64))
    with pytest.raises(ValueError, match=f"{name} must be a number"):
        dn.train(noisy, clean, model="default", epochs=1, **{name: value})


def test_images_too_small_to_train_on_are_named_so():
    tiny = np.random.default_rng(0).random((5, 5)).astype(np.float32)
    with pytest.raises(ValueError, match=r"too small to train on \(spatial shape \(5, 5\)\)"):
        dn.train(tiny, tiny, epochs=1, device="cpu")
    # a large image whose drawn regions leave no room keeps the regions' advice only
    big = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    region = np.zeros((64, 64), bool)
    region[:6, :6] = True
    with pytest.raises(ValueError) as info:
        dn.train(big, big, regions=region, patch_size=16, epochs=1, device="cpu")
    assert "too small to train on" not in str(info.value)


def test_a_target_identical_to_its_input_warns():
    """The same file or layer given as input and target (session 58's CLI sweep):
    training learned to change nothing and reported a perfect validation (PSNR 100)
    without a word; now it says why."""
    import warnings

    rng = np.random.default_rng(0)
    noisy = rng.random((64, 64), dtype=np.float32)
    fast = dict(epochs=1, steps_per_epoch=1, device="cpu")
    with pytest.warns(UserWarning, match="every target is identical to its input"):
        dn.train(noisy, noisy.copy(), **fast)
    with pytest.warns(UserWarning, match="give no targets"):
        dn.train([noisy, noisy], [noisy, noisy], **fast)
    clean = np.clip(noisy - 0.1, 0, 1)
    with warnings.catch_warnings():  # one real pair among identical ones: no warning
        warnings.filterwarnings("error", message="every target is identical")
        dn.train([noisy, noisy], [clean, noisy], **fast)


def test_targets_in_another_order_than_their_inputs_warn():
    """Session 73: `--input a b --target b_clean a_clean` trained without a word
    (validation PSNR 6.6 dB against about 20 for the right pairs). Noisy, dim and
    blurred true pairs say nothing."""
    import warnings

    from skimage import data

    camera = data.camera().astype(np.float32) / 255
    clean = [camera[100:196, 100:196], camera[300:396, 300:396]]
    rng = np.random.default_rng(0)
    noisy = [c + rng.normal(0, 0.1, c.shape).astype(np.float32) for c in clean]
    fast = dict(epochs=1, steps_per_epoch=1, device="cpu", patch_size=32)
    with pytest.warns(UserWarning, match=r"inputs 0, 1 look unrelated to their targets") as said:
        dn.train(noisy, clean[::-1], **fast)
    assert "in the order of the inputs" in str(said[0].message)
    dim = [rng.poisson(c * 2.0).astype(np.float32) for c in clean]  # 2 photons
    blurred = [dn.synthesize(c, "poisson", peak=50, psf={"kind": "gaussian", "sigma": 2.0},
                             seed=1) for c in clean]  # fmt: skip
    for inputs in (noisy, dim, blurred):
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*unrelated")
            dn.train(inputs, clean, **fast)
    # structure in two corners of a flat image: the whole image is compared (a central
    # crop read a true pair as unrelated, review)
    from napari_deconvnet.core.train_setup import check_related

    corners = np.zeros((512, 512), np.float32)
    corners[:96, :96] = camera[200:296, 200:296]
    corners[-96:, -96:] = camera[300:396, 300:396]
    noisy_corners = corners + rng.normal(0, 0.1, corners.shape).astype(np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*unrelated")
        check_related([noisy_corners], [corners], 2)
    with pytest.warns(UserWarning, match=r"input 0 looks unrelated to its target"):
        check_related([noisy_corners], [np.fliplr(corners).copy()], 2)


@pytest.mark.parametrize("seed", [-1, 2**63, np.int64(-5)])
def test_seeds_out_of_range_are_refused_naming_the_range(seed):
    """numpy's "expected non-negative integer" and torch's overflow named no range."""
    x = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\*\*63 - 1"):
        dn.train(x, epochs=1, seed=seed, device="cpu")


def test_a_bad_noise_parameter_names_the_noise():
    x = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    with pytest.raises(ValueError, match=r"^noise 'gaussian': sigma must be >= 0"):
        dn.train(x, noise={"model": "gaussian", "sigma": -1}, epochs=1, device="cpu")


@pytest.mark.parametrize("value", [True, float("inf"), float("nan"), 0, -1.0, "60"])
def test_a_time_budget_that_is_no_number_of_seconds_is_refused(value):
    # True trained for one second, inf forever
    image = np.zeros((32, 32), np.float32)
    with pytest.raises(ValueError, match="max_seconds must be a positive, finite number"):
        dn.train(image, noise="gaussian", max_seconds=value, device="cpu")


def test_validation_data_and_validation_regions_are_alternatives():
    # the validation pairs were ignored without a word
    rng = np.random.default_rng(0)
    clean, other = rng.random((128, 128), dtype=np.float32), rng.random((64, 64), dtype=np.float32)
    mask = np.zeros((128, 128), bool)
    mask[:, 90:] = True
    with pytest.raises(
        ValueError, match="validation= data and validation_regions= are alternatives"
    ):
        dn.train(
            clean + 0.1, clean, validation=(other + 0.1, other), validation_regions=mask,
            steps_per_epoch=2, epochs=1, patch_size=32, batch_size=2, device="cpu",
        )  # fmt: skip


@pytest.mark.parametrize("share", [0.3, 0, None])
def test_a_validation_share_beside_validation_regions_is_said_to_be_unused(share):
    # session 70's note: validation=0.3 with validation_regions was ignored without a word
    rng = np.random.default_rng(0)
    clean = rng.random((128, 128), dtype=np.float32)
    mask = np.zeros((128, 128), bool)
    mask[:, 90:] = True
    small = dict(steps_per_epoch=2, epochs=1, patch_size=32, batch_size=2, device="cpu")
    with pytest.warns(UserWarning, match=rf"validation={share!r} is not applied"):
        result = dn.train(clean + 0.1, clean, validation=share, validation_regions=mask, **small)
    assert result.history[-1]["val_loss"] is not None  # the regions were scored
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the default share says nothing
        dn.train(clean + 0.1, clean, validation_regions=mask, **small)


SMALL = dict(network={"depth": 2, "base_channels": 8}, epochs=1, steps_per_epoch=2,
             batch_size=2, patch_size=32, device="cpu")  # fmt: skip


def test_numpy_scalars_are_numbers_and_infinite_rates_are_refused():
    """Session 67: np.float32(0.2) as validation was taken as data, np.float32 lr and
    max_seconds and dn.adapt's np.int64 seed/steps were refused as "not a number";
    lr=inf (train) and l2sp=nan/inf (adapt) ran to a NaN loss."""
    noisy, clean = _pair()
    a = dn.train(noisy, clean, validation=np.float32(0.2), seed=0, **SMALL)
    b = dn.train(noisy, clean, validation=0.2, seed=0, **SMALL)
    assert _same(a.model.state_dict(), b.model.state_dict())
    dn.train(noisy, clean, lr=np.float32(1e-3), **SMALL)
    dn.train(noisy, clean, max_seconds=np.float32(2), **{**SMALL, "epochs": None})
    for lr in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="lr must be a positive, finite number"):
            dn.train(noisy, clean, lr=lr, **SMALL)
    adapt = dict(seconds=None, steps=np.int64(2), steps_per_epoch=2, patch_size=32, device="cpu")
    dn.adapt("denoise-2d", noisy, seed=np.int64(1), batch_size=np.int64(2), **adapt)
    for bad in ({"l2sp": float("nan")}, {"l2sp": float("inf")}, {"lr": 0.0}):
        with pytest.raises(ValueError, match="must be a finite number"):
            dn.adapt("denoise-2d", noisy, batch_size=2, **adapt, **bad)


def test_validation_that_does_not_fit_the_mode_or_the_inputs_is_refused_in_words():
    """Session 67: an (inputs, targets) tuple in self-supervised training was read as two
    images (a clean one scored as noisy); grey validation beside RGB inputs failed in
    numpy's "axes don't match array"; a list of RGB and grey inputs trained the colour
    image as planes 3 or 4 pixels wide."""
    rng = np.random.default_rng(0)
    grey = rng.random((96, 96)).astype(np.float32)
    rgb = rng.random((96, 96, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="validates on images alone"):
        dn.train(grey, validation=(grey, grey), **SMALL)
    with pytest.raises(ValueError, match="do not have the inputs' axes 'YXS'"):
        dn.train(rgb, rgb, validation=(grey, grey), **SMALL)
    with pytest.raises(ValueError, match="input 0 looks like RGB"):
        dn.train([rgb, grey], [rgb, grey], **SMALL)


def test_a_resume_without_the_validation_it_was_saved_with_is_refused(tmp_path):
    """Session 67: validation=None on resume dropped the interrupted run's best model and
    the never-worse promise, and returned the last weights."""
    import threading

    noisy, clean = _pair()
    stop = threading.Event()
    run = dict(network={"depth": 2, "base_channels": 8}, epochs=4, steps_per_epoch=3,
               batch_size=4, patch_size=32, device="cpu")  # fmt: skip
    path = tmp_path / "a.safetensors"

    def press(event):
        if event.kind == "step" and event.step >= 4:
            stop.set()

    dn.train(noisy, clean, autosave=path, stop=stop, callback=press, **run)
    with pytest.raises(ValueError, match="was saved by a run with a validation split"):
        dn.train(noisy, clean, resume=path, validation=None, **run)
    assert dn.train(noisy, clean, resume=path, **run).steps == 12


def test_a_loss_callable_that_returns_a_number_is_refused_in_words():
    noisy, clean = _pair()
    with pytest.raises(TypeError, match="the loss must be a scalar tensor"):
        dn.train(noisy, clean, loss=lambda out, target: 0.5, **SMALL)


def test_a_run_without_validation_resumes_and_stacks_take_plane_validation(tmp_path):
    """Session 67 review: the refusal of a resume without its validation split refused
    every resume of a run that never had one; the axes check of validation data refused
    a plane beside a stack of planes (axes TYX), which trains on planes."""
    import threading

    noisy, clean = _pair()
    stop = threading.Event()
    run = dict(network={"depth": 2, "base_channels": 8}, epochs=4, steps_per_epoch=3,
               batch_size=4, patch_size=32, device="cpu", validation=None)  # fmt: skip

    def press(event):
        if event.kind == "step" and event.step >= 4:
            stop.set()

    path = tmp_path / "b.safetensors"
    dn.train(noisy, clean, autosave=path, stop=stop, callback=press, **run)
    assert dn.train(noisy, clean, resume=path, **run).steps == 12
    rng = np.random.default_rng(1)
    stack = rng.random((3, 64, 64)).astype(np.float32)
    noisy_stack = stack + 0.1 * rng.standard_normal(stack.shape).astype(np.float32)
    dn.train(noisy_stack, stack, axes="TYX", validation=(noisy_stack[0], stack[0]), **SMALL)
    dn.train(noisy_stack, axes="TYX", validation=noisy_stack[0], **SMALL)
    # a tuple of three images in self-supervised training is three images, as before
    dn.train(noisy_stack[0], validation=(noisy_stack[1], noisy_stack[2], noisy_stack[0]), **SMALL)


def test_plane_validation_beside_a_stack_in_any_axis_order():
    """Session 67 review: a plane beside a YXT stack met numpy's "axes don't match array"
    (the stack's axes are moved, the plane's cannot be); a volume of other axes is
    refused in words."""
    rng = np.random.default_rng(0)
    stack = rng.random((64, 64, 3)).astype(np.float32)
    dn.train(stack, axes="YXT", validation=rng.random((64, 64)).astype(np.float32), **SMALL)
    with pytest.raises(ValueError, match="do not have the inputs' axes 'YXT'"):
        dn.train(stack, axes="YXT", validation=rng.random((2, 64, 64, 3)).astype(np.float32),
                 **SMALL)  # fmt: skip


def test_validation_noise_of_a_supervised_run_is_named_as_ignored():
    """Session 69: validation_noise (how self-supervised runs are scored) was ignored
    without a word by supervised and synthetic runs."""
    x = np.random.default_rng(0).random((48, 48)).astype(np.float32)
    small = {"epochs": 1, "steps_per_epoch": 1, "patch_size": 16, "device": "cpu",
             "network": {"ndim": 2, "base_channels": 4}}  # fmt: skip
    with pytest.warns(UserWarning, match="this supervised run is scored against its targets") as w:
        dn.train(x, x, validation_noise=False, **small)
    named = [r.filename for r in w if "validation_noise" in str(r.message)]
    assert named == [__file__]  # the user's line, not the package's (review)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=".*(narrow|validation strip|patch).*")
        dn.train(x, validation_noise=False, **small)  # self-supervised: used, no warning


def test_synthetic_training_normalises_each_frame_and_uses_the_models_noise_window():
    """Session 69: synthetic pairs of a stack took one set of statistics for all frames
    (a frame 100 times dimmer reached the network at 0-0.01; restore puts it at 0-1);
    a noise-conditioned model's noise map was built with a window of 3 whatever its
    metadata said (restore takes the metadata's); and dn.adapt's statistics gave a
    scale of 1 where the percentiles coincide (restore: the spread to the maximum)."""
    from napari_deconvnet.core.kinds import kind_of
    from napari_deconvnet.core.normalization import offset_scale, percentile_range
    from napari_deconvnet.core.patches import normalization_of
    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.train_setup import build_trainer

    base = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    stack = np.stack([base, base * 100])
    small = {"patch_size": 32, "validation": None, "augment": False, "max_seconds": 5,
             "device": "cpu", "preview": False}  # fmt: skip
    noise = {"model": "gaussian", "sigma": 0.01}
    network = {"ndim": 2, "depth": 2, "base_channels": 8}
    trainer = build_trainer(stack, mode="synthetic", noise=noise, network=network, **small)
    src = trainer.data.sources[0]
    for t in range(2):
        lo, hi = percentile_range(stack[t], 0.5, 99.5)
        assert src.lead_offset[t] == pytest.approx(lo, abs=0.02 * (hi - lo))
        assert src.lead_scale[t] == pytest.approx(hi - lo, rel=0.05)

    net = load_model("denoise-2d-nl")
    net.metadata["conditioning"] = {"method": "noise-level", "window": 7}
    ramp = np.tile(np.linspace(5, 200, 96), (96, 1))
    image = np.random.default_rng(0).poisson(ramp).astype(np.float32)
    trainer = build_trainer(image, model=net, targets=image, batch_size=2, **small)
    data, drawn = trainer.data, []
    draw = data.sampler.draw
    data.sampler.draw = lambda *a: drawn.append(draw(*a)) or drawn[-1]
    x, _, _ = data.batch(2)
    src = data.sources[0]
    channel = kind_of(net).input_channels(image[None], None, statistics=[src.line])[0]
    inside = tuple(slice(o + 8, o + 24) for o in drawn[0][2])
    expected = (channel[inside] - src.offset) / src.scale
    np.testing.assert_allclose(x[0, 1].numpy()[8:24, 8:24], expected, atol=1e-5)

    beads = np.full((128, 128), 100.0, np.float32)
    beads[::16, ::16] = 1100.0
    beads[0, 1] = 100.001  # (off an integer lattice)
    norm = {"method": "percentile", "low": 0.5, "high": 99.5}
    assert normalization_of(norm, beads) == pytest.approx(offset_scale(beads, norm))
    assert normalization_of(norm, beads)[1] == pytest.approx(1000.0)


def _best_shift(x, y):
    """The half-pixel shift (-0.5, 0 or 0.5 on both axes) that best maps the centred blur
    of target `y` onto input `x` (their inner parts)."""
    from scipy import ndimage

    from napari_deconvnet.core.psf import subpixel_shift

    inner = (slice(8, -8), slice(8, -8))
    target = ndimage.gaussian_filter(y, 1.5)
    errors = {}
    for s in (-0.5, 0.0, 0.5):
        errors[s] = np.abs(subpixel_shift(target, (s, s))[inner] - x[inner]).mean()
    return min(errors, key=errors.get)


def test_a_deconvolution_models_training_inputs_are_registered_as_restore_registers_them():
    """Session 69: with an even-sized PSF (centred between pixels), training and adapting
    a deconvolution model gave it inputs half a pixel off their targets, while restore
    resamples the image channel by that half pixel (psf.subpixel_shift): the model then
    learned a shift restore had already made. Supervised pairs (augmented too), synthetic
    pairs and dn.adapt's pairs are resampled as restore resamples them now."""
    from scipy import ndimage

    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.psf import blur
    from napari_deconvnet.core.synthetic_pairs import SyntheticPairs
    from napari_deconvnet.core.train_setup import build_trainer

    yy, xx = np.mgrid[:8, :8] - 3.5
    psf = np.exp(-(yy**2 + xx**2) / 4.5)
    psf /= psf.sum()
    clean = ndimage.gaussian_filter(np.random.default_rng(0).random((128, 128)), 2)
    clean = clean.astype(np.float32)
    blurred = np.asarray(blur(clean, psf), np.float32)
    small = {"patch_size": 64, "batch_size": 2, "validation": None, "max_seconds": 5,
             "device": "cpu", "preview": False}  # fmt: skip
    runs = [
        {"inputs": blurred, "targets": clean, "augment": True},
        {"inputs": clean, "mode": "synthetic", "noise": {"model": "gaussian", "sigma": 1e-5}},
    ]
    for run in runs:
        trainer = build_trainer(model=load_model("deconv-2d"), psf=psf, **run, **small)
        x, y, _ = trainer.data.batch(2)
        assert [_best_shift(x[i, 0].numpy(), y[i, 0].numpy()) for i in range(2)] == [0.0, 0.0]
    caught = {}
    original = SyntheticPairs.__init__

    def keep(self, **kw):
        original(self, **kw)
        caught["pairs"] = self

    import unittest.mock

    with unittest.mock.patch.object(SyntheticPairs, "__init__", keep):
        noise = {"noise": "gaussian", "sigma": 1e-3}
        dn.adapt("deconv-2d", blurred * 100, psf=psf, noise=noise, steps=1,
                 steps_per_epoch=1, batch_size=2, patch_size=32, device="cpu")  # fmt: skip
    pairs = caught["pairs"]
    crops = np.stack([clean[:64, :64], clean[32:96, 32:96]])[:, None] * 100
    pad = [(0, 0), (0, 0)] + [(m, m) for m in pairs.margin]
    x, y = pairs._degrade(np.pad(crops[:, 0], pad[1:], mode="reflect"), np.random.default_rng(0))[
        :2
    ]
    assert [_best_shift(x[i, 0].numpy(), y[i, 0].numpy()) for i in range(2)] == [0.0, 0.0]


def test_registration_moves_off_centre_psfs_whole_and_frame_statistics_read_whole():
    """Review of session 69: a supervised PSF whose centre lies half a pixel or more off
    its origin was resampled by its rest alone, while restore also reads such an input
    whole pixels further: training moves it by both now (registered, flips included).
    And each frame's synthetic statistics came from two crops, which missed a 768²
    frame's objects in a corner (scales 26 times too small): an image up to 1024² is
    degraded whole, a larger one in crops on a grid over all of it."""
    from scipy import ndimage

    from napari_deconvnet.core.adapt import phantom
    from napari_deconvnet.core.normalization import offset_scale
    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.psf import blur
    from napari_deconvnet.core.train_setup import build_trainer

    yy, xx = np.mgrid[:9, :9]
    clean = ndimage.gaussian_filter(np.random.default_rng(0).random((128, 128)), 2)
    clean = clean.astype(np.float32)
    small = {"patch_size": 64, "batch_size": 2, "validation": None, "device": "cpu",
             "preview": False}  # fmt: skip
    for centre in (4.5, 5.5, 6.0):  # half, one and a half and two pixels off
        psf = np.exp(-((yy - centre) ** 2 + (xx - centre) ** 2) / 2)
        psf /= psf.sum()
        pair = np.asarray(blur(clean, psf), np.float32), clean
        trainer = build_trainer(*pair, model=load_model("deconv-2d"), psf=psf, **small)
        x, y, _ = trainer.data.batch(2)
        assert [_best_shift(x[i, 0].numpy(), y[i, 0].numpy()) for i in range(2)] == [0.0, 0.0]

    norm = {"method": "percentile", "low": 0.5, "high": 99.5}
    for side in (768, 1100):
        frame = np.full((side, side), 100.0, np.float32)
        frame[:256, :256] += 2000 * phantom((256, 256), rng=1)
        expected = offset_scale(frame, norm)[1]
        for stack in (np.stack([frame] * 2), frame):
            trainer = build_trainer(stack, model="denoise-2d", mode="synthetic",
                                    noise={"model": "gaussian", "sigma": 10}, patch_size=64,
                                    validation=None, device="cpu", preview=False)  # fmt: skip
            src = trainer.data.sources[0]
            scales = src.lead_scale if stack.ndim == 3 else [src.scale]
            # whole up to 1024² a frame (2048² alone); larger frames in 16 crops on a grid
            loose = side > 1024 and stack.ndim == 3
            np.testing.assert_allclose(scales, expected, rtol=0.3 if loose else 0.05)


def test_training_leaves_the_callers_torch_random_stream_alone():
    """Session 70: the returned network was built with random weights (overwritten by
    the best ones) drawn from torch's global generator, moving the caller's stream."""
    x = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    dn.train(x + 0.1, x, epochs=1, patch_size=32, batch_size=2, steps_per_epoch=2,
             network={"base_channels": 4}, device="cpu")  # fmt: skip
    assert torch.equal(torch.rand(3), want)


def test_validation_images_thinned_to_64_patches_say_so():
    """Session 70: explicit validation images of more than 64 patches were scored on
    64 random ones without a word, though the docstring said every pixel."""
    rng = np.random.default_rng(0)
    clean = rng.random((96, 96)).astype(np.float32)
    noisy = clean + 0.1 * rng.standard_normal(clean.shape).astype(np.float32)
    vc = rng.random((160, 160)).astype(np.float32)
    vn = vc + 0.1 * rng.standard_normal(vc.shape).astype(np.float32)
    options = dict(patch_size=16, epochs=1, batch_size=2, steps_per_epoch=1,
                   network={"base_channels": 4}, device="cpu")  # fmt: skip
    with pytest.warns(UserWarning, match=r"covers 100 patches of \[16, 16\]; 64 of them"):
        dn.train(noisy, clean, validation=(vn, vc), **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 64 patches or fewer: all scored, no warning
        dn.train(noisy, clean, validation=(vn[:128, :128], vc[:128, :128]), **options)


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_validation_is_refused_as_what_it_is(value):
    """Session 70: validation=True was told that supervised validation data must be a
    tuple of pairs."""
    x = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    with pytest.raises(TypeError, match=r"fraction in \[0, 1\), validation data or None, got"):
        dn.train(x + 0.1, x, validation=value, epochs=1, patch_size=32, device="cpu")
