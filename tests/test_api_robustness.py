"""The API's front door: options and inputs users pass in forms other than the
plain Python ones (numpy scalars, cast models, filtered dask arrays)."""

import numpy as np
import pytest
import torch

import napari_deconvnet as dn

da = pytest.importorskip("dask.array")


def _light_noise_photo():
    from skimage import data

    rng = np.random.default_rng(0)
    clean = data.camera()[200:328, 200:328].astype(np.float32) / 255
    return clean + rng.normal(0, 1 / 255, clean.shape).astype(np.float32)


def test_numpy_booleans_switch_the_guard_and_other_values_are_refused():
    noisy = _light_noise_photo()
    on = dn.restore(noisy, light_noise_guard=True)
    off = dn.restore(noisy, light_noise_guard=False)
    assert np.abs(on - off).max() > 1e-3  # the guard acts on this image
    np.testing.assert_array_equal(dn.restore(noisy, light_noise_guard=np.False_), off)
    np.testing.assert_array_equal(dn.restore(noisy, light_noise_guard=np.True_), on)
    for bad in (0, "false", 1.0):
        with pytest.raises(TypeError, match="light_noise_guard must be None .*True, False or the"):
            dn.restore(noisy, light_noise_guard=bad)
        with pytest.raises(TypeError, match="impulse_switch must be None .*True or False"):
            dn.restore(noisy, impulse_switch=bad)


def test_impulse_switch_off_as_a_numpy_boolean():
    noisy = _light_noise_photo()
    rng = np.random.default_rng(1)
    idx = rng.choice(noisy.size, 30, replace=False)
    noisy.flat[idx] = 1.0  # hot pixels
    on = dn.restore(noisy, impulse_switch=True)
    off = dn.restore(noisy, impulse_switch=False)
    assert np.abs(on - off).max() > 1e-3
    np.testing.assert_array_equal(dn.restore(noisy, impulse_switch=np.False_), off)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_model_cast_to_half_precision_restores_as_its_float32_self(dtype):
    x = np.random.default_rng(2).random((48, 56)).astype(np.float32)
    model = dn.load_model("default")
    half = model.to(dtype)
    expected = dn.restore(x, dn.load_model("default").to(dtype).float())
    np.testing.assert_array_equal(dn.restore(x, half, precision="float32"), expected)
    assert next(half.parameters()).dtype == dtype  # the caller's model is left as it was


def test_numpy_integers_for_batch_size_and_clear_errors_for_other_tiles():
    x = np.random.default_rng(3).random((64, 64)).astype(np.float32)
    np.testing.assert_array_equal(
        dn.restore(x, batch_size=np.int64(2), tile=32), dn.restore(x, batch_size=2, tile=32)
    )
    for bad in (32.0, "32", {"y": 32}):
        with pytest.raises(ValueError, match="tile must be a positive integer or 2 positive"):
            dn.restore(x, tile=bad)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        dn.restore(x, batch_size=np.True_)


def test_unknown_dask_chunk_sizes_are_refused_with_what_to_do():
    x = da.from_array(np.random.default_rng(4).random((64, 64)).astype(np.float32), chunks=32)
    filtered = x[x[:, 0] > -1]
    with pytest.raises(ValueError, match="unknown chunk sizes .*compute_chunk_sizes"):
        dn.restore(filtered)
    filtered.compute_chunk_sizes()
    assert dn.restore(filtered).shape == (64, 64)


def test_a_masked_array_is_restored_as_its_data_with_a_warning_when_values_are_masked():
    """The mask cannot be honoured (every pixel is restored, and a masked pixel's value
    reaches its neighbours): restore says so and restores the data under it, exactly as
    the plain array; a masked array with nothing masked restores silently."""
    rng = np.random.default_rng(0)
    image = rng.normal(0.5, 0.1, (48, 48)).astype(np.float32)
    plain = dn.restore(image, precision="float32")
    masked = np.ma.masked_greater(image, 0.7)
    assert masked.mask.any()
    with pytest.warns(UserWarning, match=r"masked array with \d+ masked values.*filled"):
        out = dn.restore(masked, precision="float32")
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, plain)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(dn.restore(np.ma.asarray(image), precision="float32"), plain)


def _small():
    return np.random.default_rng(1).normal(0.5, 0.1, (48, 48)).astype(np.float32)


@pytest.mark.parametrize(
    "call",
    [
        lambda x, **kw: dn.restore(x, **kw),
        lambda x, **kw: dn.run_method(x, "median", **kw),
    ],
    ids=["restore", "run_method"],
)
def test_progress_and_stop_that_cannot_work_are_refused_and_a_callable_stop_works(call):
    """An int as `progress` failed with "'int' object is not callable" and as `stop`
    with a bare AttributeError ('is_set'); both are TypeErrors that say what is taken
    now. A callable `stop` (no argument, True to stop) works like a set event."""
    x = _small()
    with pytest.raises(TypeError, match="progress must be a callable taking"):
        call(x, progress=5)
    with pytest.raises(TypeError, match="stop must be a threading.Event .* or a callable"):
        call(x, stop=5)
    with pytest.raises(dn.Cancelled):
        call(x, stop=lambda: True)
    seen = []
    out = call(x, stop=lambda: False, progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(out, call(x))  # never stopped: the same result
    assert seen and seen[-1][0] == seen[-1][1]


def test_training_takes_a_callable_stop_and_refuses_a_bad_callback(tmp_path):
    """dn.train: a callable `stop` ends the run after its first check (the start comes
    back); a callback that cannot be called is refused before any set-up."""
    x = np.random.default_rng(1).normal(0.5, 0.1, (128, 128)).astype(np.float32)
    calls = []

    def stop_after_first_check():
        calls.append(1)
        return len(calls) > 1

    result = dn.train(
        x, x, model="denoise-2d", epochs=2, steps_per_epoch=2, patch_size=32,
        batch_size=2, stop=stop_after_first_check, seed=0,
    )  # fmt: skip
    assert len(calls) >= 2 and result.stop_reason == "stopped"
    with pytest.raises(TypeError, match="callback must be a callable taking one TrainEvent"):
        dn.train(x, x, model="denoise-2d", epochs=1, callback="print")
    with pytest.raises(TypeError, match="stop must be a threading.Event"):
        dn.train(x, x, model="denoise-2d", epochs=1, stop="yes")


def test_receptive_field_takes_a_model_name_a_network_or_a_config():
    """dn.receptive_field("denoise-2d") raised AttributeError ('str' has no 'ndim')."""
    net = dn.load_model("denoise-2d")
    want = dn.receptive_field(net.config)
    assert dn.receptive_field("denoise-2d") == want == dn.receptive_field(net)
    assert want[0] == net.receptive_field and want[0] > 2 * want[1] - 2
    with pytest.raises(TypeError, match="receptive_field takes a DeconvNetConfig"):
        dn.receptive_field(3)
    with pytest.raises(ValueError, match="unknown model"):
        dn.receptive_field("nope")


def test_restore_to_zarr_refuses_a_bad_progress_before_writing_anything(tmp_path):
    target = tmp_path / "out.ome.zarr"
    with pytest.raises(TypeError, match="progress must be a callable taking"):
        dn.restore_to_zarr(_small(), target, progress="bar")
    with pytest.raises(TypeError, match="stop must be a threading.Event"):
        dn.restore_to_zarr(_small(), target, stop=1)
    assert not target.exists()


# ------------------------------------------------- restore_to_zarr's target and flags


@pytest.mark.parametrize(
    "target, kwargs, error, message",
    [
        ("out.tif", {}, ValueError, "names a .tif file"),
        ("image.tif/out.ome.zarr", {}, ValueError, "which is a file, not a folder"),
        (5, {}, TypeError, "target must be a path"),
        ("out.ome.zarr", {"resume": "yes"}, TypeError, "resume must be True or False"),
        ("out.ome.zarr", {"overwrite": 1}, TypeError, "overwrite must be True or False"),
        ("out.ome.zarr", {"client": 5}, TypeError, "client must be a dask.distributed Client"),
        ("out.ome.zarr", {"name": 5}, TypeError, "name must be a non-empty string"),
        ("out.ome.zarr", {"name": " "}, TypeError, "name must be a non-empty string"),
    ],
)
def test_restore_to_zarr_refuses_a_bad_target_or_flag_before_writing(
    tmp_path, monkeypatch, target, kwargs, error, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "image.tif").write_bytes(b"a file")
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    with pytest.raises(error, match=message):
        dn.restore_to_zarr(image, target, device="cpu", **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.tif"]  # nothing written


# ------------------------------------------------- sizes typed an order of magnitude off


def test_an_overlap_wider_than_the_image_is_cut_to_it():
    # overlap=10**6 was refused as a tile needing 2 million GB
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    expected = dn.restore(image, device="cpu")
    np.testing.assert_array_equal(dn.restore(image, overlap=10**6, device="cpu"), expected)
    tiled = dn.restore(image, tile=32, overlap=10**6, device="cpu")
    assert np.abs(tiled - expected).max() <= 1e-5 * np.ptp(expected)


def test_a_batch_or_a_network_too_big_for_any_machine_is_refused_at_once():
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    with pytest.raises(ValueError, match="batch_size must be at most 4096"):
        dn.train(image, image, batch_size=10**7, epochs=1, device="cpu")  # minutes, before
    with pytest.raises(ValueError, match="400000 channels at its bottleneck"):
        dn.train(image, image, network={"base_channels": 10**5}, epochs=1, device="cpu")
    with pytest.raises(ValueError, match="depth 9 is deeper than 8"):
        dn.DeconvNetConfig(ndim=2, depth=9, base_channels=1)


# ------------------------------------------------- tensors for training, as for restore


def test_train_and_adapt_take_torch_tensors_as_restore_does():
    # both raised "Cannot interpret 'torch.float32' as a data type"
    rng = np.random.default_rng(0)
    clean = rng.random((48, 48)).astype(np.float32)
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    options = {"epochs": 1, "steps_per_epoch": 2, "device": "cpu", "seed": 0}
    from_numpy = dn.train(noisy, clean, **options)
    from_tensor = dn.train(torch.from_numpy(noisy), torch.from_numpy(clean), **options)
    for a, b in zip(
        from_numpy.model.state_dict().values(),
        from_tensor.model.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)  # the same run, seeded
    adapted = dn.adapt("denoise-2d", torch.from_numpy(noisy), seconds=1, device="cpu")
    assert np.isfinite(dn.restore(noisy, adapted, device="cpu")).all()


def test_every_entry_point_says_a_masked_arrays_mask_is_not_applied():
    # session 73: only restore said so; SSIM against a masked reference whose 64 masked
    # pixels held 1000 read 0.9965 where the truth is 0.4967, without a word
    import warnings

    rng = np.random.default_rng(0)
    clean = rng.random((48, 48)).astype(np.float32)
    mask = np.zeros(clean.shape, bool)
    mask[:8, :8] = True
    junk = np.ma.masked_array(np.where(mask, 1000.0, clean).astype(np.float32), mask)
    calls = [
        ("y (the reference)", lambda: dn.ssim(clean, junk)),
        ("y (the reference)", lambda: dn.psnr(clean, junk)),
        ("result", lambda: dn.measure(junk, clean)),
        ("clean", lambda: dn.synthesize(junk, "gaussian", sigma=0.1, seed=0)),
        ("image", lambda: dn.denoise_median(junk)),
    ]
    for name, call in calls:
        with pytest.warns(UserWarning, match="masked array with 64 masked values") as said:
            call()
        assert str(said[0].message).startswith(name)
    with pytest.warns(UserWarning, match="masked array with 64"):
        dn.estimate_noise(junk)
    nothing = np.ma.masked_array(clean, np.zeros(clean.shape, bool))  # none masked: quiet
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(dn.psnr(nothing, clean)) == float("inf")
