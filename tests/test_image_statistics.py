"""Every image of a stack is normalised by its own statistics (normalization.image_statistics).

A time-lapse that bleaches, planes far from the focus, a blank frame: with
one set of statistics for the whole stack, a dim frame reached the network
as a small part of its range, unlike any image it was trained on. Restore
now normalises each time point (each plane under a 2D model) as if it were
restored alone, eagerly, lazily, streamed and in training alike.
"""

import dask.array as da
import numpy as np
import pytest
import torch
from skimage import data

import napari_deconvnet as dn
from napari_deconvnet.core import lazy as lazy_module
from napari_deconvnet.core import normalization
from napari_deconvnet.core.normalization import image_statistics
from napari_deconvnet.core.trainset import TrainingSet

NORM = {"method": "percentile", "low": 0.5, "high": 99.5}


def _bleaching(frames=6, photons=200, n=96, seed=0):
    """Camera crops fading 20x over `frames`, with Poisson noise; (clean, noisy)."""
    scene = 0.05 + 0.95 * data.camera()[100 : 100 + n, 200 : 200 + n] / 255.0
    decay = np.geomspace(1.0, 0.05, frames)
    clean = np.stack([scene * d for d in decay])
    rng = np.random.default_rng(seed)
    return clean, (rng.poisson(clean * photons) / photons).astype(np.float32)


def _psnr(clean, x):
    return dn.psnr(clean, x, data_range=float(np.ptp(clean)))


def test_exact_statistics_per_image_in_memory():
    rng = np.random.default_rng(1)
    x = rng.random((3, 2, 20, 24)).astype(np.float32) * np.array([1, 10, 100])[:, None, None, None]
    offsets, scales = image_statistics(x, 2, NORM)
    assert offsets.shape == scales.shape == (3, 2, 1, 1)
    for i in np.ndindex(3, 2):
        lo, hi = np.percentile(x[i], [0.5, 99.5])
        assert offsets[i].item() == pytest.approx(lo, rel=1e-6)
        assert scales[i].item() == pytest.approx(hi - lo, rel=1e-5)
    # the model's own channel axis after the leading one: per image and channel
    offsets, scales = image_statistics(x, 1, NORM, channel_axis=0)
    assert offsets.shape == (3, 2, 1, 1)
    assert offsets[2, 1].item() == pytest.approx(np.percentile(x[2, 1], 0.5), rel=1e-6)


def test_lazy_statistics_whole_when_small_and_sampled_by_budget(monkeypatch):
    rng = np.random.default_rng(2)
    x = (rng.random((5, 40, 48)) * np.arange(1, 6)[:, None, None]).astype(np.float32)
    eager = image_statistics(x, 1, NORM)
    lazy = image_statistics(da.from_array(x, chunks=(1, 20, 16)), 1, NORM)
    np.testing.assert_allclose(lazy[0], eager[0], rtol=1e-6)
    np.testing.assert_allclose(lazy[1], eager[1], rtol=1e-6)
    # over the budget: at most IMAGE_SAMPLE_BLOCKS chunks per image are read,
    # deterministically, and each image's numbers stay its own
    monkeypatch.setattr(normalization, "SAMPLE_VALUES", 64)
    monkeypatch.setattr(normalization, "SAMPLE_BLOCKS", 4)
    monkeypatch.setattr(normalization, "IMAGE_SAMPLE_VALUES", 256)
    monkeypatch.setattr(normalization, "IMAGE_SAMPLE_BLOCKS", 2)
    reads = []

    def count(block, block_info=None):
        if block_info is not None:
            reads.append(block_info[0]["chunk-location"])
        return block

    src = da.from_array(x, chunks=(1, 20, 16)).map_blocks(count, dtype=x.dtype)
    reads.clear()
    first = image_statistics(src, 1, NORM)
    # (the first chunk and the one 0.618 of the way on: chunks picked by the golden ratio,
    # session 72; at even steps they were the first and the last)
    assert sorted(reads) == sorted({(t, 0, 0) for t in range(5)} | {(t, 1, 0) for t in range(5)})
    second = image_statistics(src, 1, NORM)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_allclose(first[1].ravel(), eager[1].ravel(), rtol=0.15)


def test_bleaching_time_lapse_each_frame_as_if_alone():
    clean, noisy = _bleaching()
    out = dn.restore(noisy, "denoise-2d", axes="TYX", precision="float32")
    last = dn.restore(noisy[-1], "denoise-2d", precision="float32")
    assert np.abs(out[-1] - last).max() <= 1e-5 * np.ptp(last)
    # one set of statistics for the stack (the old default, now asked for):
    # the 20x dimmer frame loses over a decibel
    stats = dn.compute_normalization(noisy, "denoise-2d", axes="TYX")
    shared = dn.restore(noisy, "denoise-2d", axes="TYX", normalization=stats, precision="float32")
    gain = _psnr(clean[-1], out[-1]) - _psnr(clean[-1], shared[-1])
    assert gain > 0.7, gain
    # the brightest frame, whose range the stack's was, is the same either way
    assert abs(_psnr(clean[0], out[0]) - _psnr(clean[0], shared[0])) < 0.05


def test_lazy_and_streamed_stacks_equal_eager(tmp_path, random_net):
    net = random_net(ndim=2)
    rng = np.random.default_rng(3)
    x = (rng.random((4, 40, 56)) * np.array([1, 3, 30, 300])[:, None, None]).astype(np.float32)
    eager = dn.restore(x, net, axes="TYX")
    lazy = dn.restore(da.from_array(x, chunks=(1, 24, 40)), net, axes="TYX", tile=32)
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-5 * np.ptp(eager))
    dn.restore_to_zarr(x, tmp_path / "out.ome.zarr", model=net, axes="TYX", chunks=32)
    import zarr

    streamed = np.asarray(zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r")["0"])
    np.testing.assert_allclose(streamed, eager, atol=1e-5 * np.ptp(eager))


def test_per_image_fixed_statistics_round_trip_and_errors(random_net):
    net = random_net(ndim=2)
    rng = np.random.default_rng(4)
    x = (rng.random((3, 32, 36)) * np.array([1, 5, 50])[:, None, None]).astype(np.float32)
    stats = dn.compute_normalization(x, net, axes="TYX", per_image=True)
    assert np.shape(stats["offset"]) == (3,)
    own = dn.restore(x, net, axes="TYX")
    np.testing.assert_allclose(
        dn.restore(x, net, axes="TYX", normalization=stats), own, atol=1e-6 * np.ptp(own)
    )
    whole = dn.compute_normalization(x, net, axes="TYX")
    assert isinstance(whole["offset"], float)
    assert whole["scale"] > max(stats["scale"][:2])
    with pytest.raises(ValueError, match="one per image"):
        dn.restore(x, net, axes="TYX", normalization={"offset": [0, 1], "scale": [1, 1]})
    with pytest.raises(ValueError, match="must be > 0"):
        dn.restore(x, net, axes="TYX", normalization={"offset": [0, 0, 0], "scale": [1, 0, 1]})


@pytest.mark.parametrize("axes", ["TCYX", "CTYX"])
def test_per_image_statistics_of_a_stack_with_channels_restore_as_without(axes):
    """compute_normalization(per_image=True) of a TCYX stack is (T, C); its restore goes
    channel by channel (the impulse switch's route), which passed the (T, C) set whole to
    each channel and refused it (session 68)."""
    rng = np.random.default_rng(0)
    shape = (3, 2, 48, 48) if axes == "TCYX" else (2, 3, 48, 48)
    scales = np.array([1.0, 4.0, 30.0])[:, None, None, None]
    x = rng.poisson(50, shape) * (scales if axes == "TCYX" else scales.transpose(1, 0, 2, 3))
    x = x.astype(np.float32)
    stats = dn.compute_normalization(x, "denoise-2d", axes=axes, per_image=True)
    assert np.shape(stats["offset"]) == shape[:2]
    own = np.asarray(dn.restore(x, "denoise-2d", axes=axes, device="cpu"))
    given = np.asarray(dn.restore(x, "denoise-2d", axes=axes, normalization=stats, device="cpu"))
    np.testing.assert_allclose(given, own, atol=1e-6 * np.ptp(own))
    lazy = dn.restore(
        da.from_array(x, chunks=(1, 1, 48, 48)), "denoise-2d", axes=axes, normalization=stats
    )
    np.testing.assert_allclose(lazy.compute(), own, atol=1e-5 * np.ptp(own))
    # a shape that is none of those is refused naming the image's channels (each
    # channel's restore said the image "has 1 channels")
    # one number however nested, and one per channel as (C, 1), as before
    for given in (
        {"offset": [0.0], "scale": [1.0]},
        {"offset": [[0.0], [0.1]], "scale": [[1.0], [2.0]]},
    ):
        one = dn.restore(x[0] if axes == "TCYX" else x[:, 0], "denoise-2d", axes="CYX",
                         normalization=given, device="cpu")  # fmt: skip
        assert np.isfinite(one).all()
    wrong = {"offset": np.zeros((2, 2)), "scale": np.ones((2, 2))}
    with pytest.raises(ValueError, match=r"shape \(2, 2\) but the image has \d channels"):
        dn.restore(x, "denoise-2d", axes=axes, normalization=wrong, device="cpu")
    with pytest.raises(ValueError, match="has 2 channels"):
        dn.restore(x[0] if axes == "TCYX" else x[:, 0], "denoise-2d", axes="CYX",
                   normalization={"offset": [0, 1, 2], "scale": [1, 1, 1]}, device="cpu")  # fmt: skip


def _training_set(mode, inputs, targets, net, validation=0.1, **options):
    """A TrainingSet of 32 x 32 patches, 10% held out, no noise, seed 0, on the CPU."""
    options.setdefault("noise", ("none", {}, None))
    return TrainingSet(
        mode=mode,
        inputs=inputs,
        targets=targets,
        net=net,
        size=(32, 32),
        regions=None,
        validation=validation,
        validation_regions=None,
        rng=np.random.default_rng(0),
        device=torch.device("cpu"),
        augment=False,
        seed=0,
        **options,
    )


def test_training_normalises_each_frame_as_restore_does():
    _, noisy = _bleaching(frames=4, n=64)
    net = dn.DeconvNet(ndim=2, depth=2, base_channels=4)
    data_set = _training_set("self-supervised", [noisy], None, net)
    src = data_set.sources[0]
    for t in range(4):
        lo, hi = np.percentile(noisy[t], [0.5, 99.5])
        assert src.stats((t,))[0] == pytest.approx(lo, abs=0.02)
        assert src.stats((t,))[1] == pytest.approx(hi - lo, rel=0.05)
    # every validation patch is normalised by its own frame's numbers
    val = data_set.val
    for (_, lead, _), offset in zip(val["positions"], val["offset"], strict=True):
        assert offset == src.stats(tuple(lead))[0]


def test_a_lazy_stack_samples_only_the_frames_that_are_computed(random_net, monkeypatch):
    # each frame's statistics are a task of the graph beside its blocks: building the
    # restore reads nothing but the light-noise guard's frame, a frame reads only itself
    net = random_net(ndim=2)
    rng = np.random.default_rng(5)
    x = (rng.random((40, 48, 64)) * np.geomspace(1, 30, 40)[:, None, None]).astype(np.float32)
    reads = []

    def count(block, block_info=None):
        if block_info is not None:
            reads.append(block_info[0]["chunk-location"][0])
        return block

    src = da.from_array(x, chunks=(1, 24, 32)).map_blocks(count, dtype=x.dtype)
    reads.clear()
    # (as an array too big to be searched whole for bright objects)
    monkeypatch.setattr(lazy_module, "LAZY_SCENE_LIMIT", 0)
    lazy = dn.restore(src, net, axes="TYX", light_noise_guard=False)
    assert reads == []
    frame = lazy[7].compute()
    assert set(reads) == {7}
    np.testing.assert_allclose(frame, dn.restore(x[7], net), atol=1e-5 * np.ptp(frame))
    # over the sample's budget: the graph's numbers are image_statistics' (compute_normalization)
    monkeypatch.setattr(normalization, "SAMPLE_VALUES", 64)
    monkeypatch.setattr(normalization, "SAMPLE_BLOCKS", 4)
    monkeypatch.setattr(normalization, "IMAGE_SAMPLE_VALUES", 300)
    monkeypatch.setattr(normalization, "IMAGE_SAMPLE_BLOCKS", 3)
    lazy_x = da.from_array(x[:6], chunks=(2, 24, 32))
    stats = dn.compute_normalization(lazy_x, net, axes="TYX", per_image=True)
    assert (
        stats["offset"]
        != dn.compute_normalization(x[:6], net, axes="TYX", per_image=True)["offset"]
    )  # a sample, not every value
    eager = dn.restore(x[:6], net, axes="TYX", normalization=stats)
    got = dn.restore(lazy_x, net, axes="TYX", light_noise_guard=False).compute()
    np.testing.assert_allclose(got, eager, atol=1e-5 * np.ptp(eager))


def test_compute_normalization_reads_a_tensor_and_a_masked_array_as_restore_does():
    """A torch tensor (restore takes one) gave numpy's bare "Cannot interpret
    'torch.float32' as a data type"; now its numbers equal the NumPy array's, and
    a masked array's are its data's, with restore's warning about masked values."""
    x = np.random.default_rng(4).gamma(2.0, 30.0, (3, 40, 48)).astype(np.float32)
    want = dn.compute_normalization(x, "denoise-2d", axes="TYX", per_image=True)
    assert dn.compute_normalization(torch.from_numpy(x), "denoise-2d", axes="TYX",
                                    per_image=True) == want  # fmt: skip
    masked = np.ma.masked_greater(x, 200)
    with pytest.warns(UserWarning, match="masked values"):
        got = dn.compute_normalization(masked, "denoise-2d", axes="TYX", per_image=True)
    assert got == want


def test_training_takes_each_frames_classical_channel_statistics():
    """A bleaching time-lapse through a deconvolution model: each frame's classical
    channel (Wiener balance, Richardson-Lucy floor) with that frame's statistics, as
    restore computes them per image (the middle frame's served every frame)."""
    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.psf import blur
    from napari_deconvnet.core.trainset import PSFChannel

    clean, _ = _bleaching(frames=4, n=64)
    psf = dn.make_psf("gaussian", (9, 9), sigma=1.5)
    rng = np.random.default_rng(2)
    blurred = np.stack([blur(frame, psf) for frame in clean])
    noisy = (rng.poisson(np.clip(blurred, 0, None) * 200) / 200).astype(np.float32)
    net = load_model("deconv-2d")
    data_set = _training_set(
        "supervised", [noisy], [clean.astype(np.float32)], net, condition_psf=psf
    )
    src = data_set.sources[0]
    reference = PSFChannel(net, psf)
    each = [reference.statistics(frame) for frame in noisy]
    assert each[0] != each[3]  # a frame 20 times dimmer: other statistics
    for t in range(4):
        assert data_set._image_condition(src, (t,)) == each[t]
        whole = data_set._source_channel(src, (t,))
        np.testing.assert_allclose(whole, reference.whole(noisy[t], each[t]), atol=1e-6)


def test_a_small_array_in_many_chunks_is_read_whole():
    # a 2 x 17 x 33 volume in chunks of one value (1,122 chunks) was sampled in 64
    # values, and its lazy denoise-3d restore was 4.4% of the range off the eager one
    rng = np.random.default_rng(0)
    grid = np.indices((2, 17, 33)).sum(0)
    x = (np.sin(grid / 3) * 0.3 + 0.5 + rng.normal(0, 0.05, grid.shape)).astype(np.float32)
    lazy = da.from_array(x, chunks=1)
    assert normalization.sample_values(lazy).size == x.size
    assert dn.compute_normalization(lazy, "denoise-3d") == dn.compute_normalization(
        x, "denoise-3d"
    )
    big = da.zeros((300, 300), chunks=5)  # 90,000 values in 3,600 chunks: still sampled
    assert normalization.sample_values(big).size < big.size


@pytest.mark.parametrize("shape", [(50, 50), (64, 80), (33, 97)])
def test_validation_pairs_are_scored_on_every_pixel(shape):
    # a 50 x 50 pair with 32-pixel patches scored 1,024 of its 2,500 pixels
    rng = np.random.default_rng(0)
    clean, v_clean = rng.random((96, 96), np.float32), rng.random(shape, np.float32)
    v_noisy = v_clean + rng.normal(0, 0.1, shape).astype(np.float32)
    net = dn.DeconvNet(ndim=2, depth=2, base_channels=4)
    data_set = _training_set(
        "supervised", [clean + 0.1], [clean], net, validation=(v_noisy, v_clean)
    )
    covered = np.zeros(shape, bool)
    for _, _, (y, x) in data_set.val["positions"]:
        covered[y : y + 32, x : x + 32] = True
    assert covered.all()
    # each patch is the pair at its place
    for raw, (_, _, (y, x)) in zip(data_set.val["raw"], data_set.val["positions"], strict=True):
        np.testing.assert_array_equal(raw, v_noisy[y : y + 32, x : x + 32])


def test_synthetic_salt_and_pepper_goes_to_each_sources_own_extremes():
    """Session 70: a network other than the impulse model got its training impulses at
    the whole batch's extremes (a 0.1..0.9 float image's patches beside a uint8 one got
    salt at 225, 280 times their range) and its validation impulses at each patch's own."""
    yy, xx = np.mgrid[:96, :96]
    a = (0.5 + 0.4 * np.sin(xx / 5) * np.cos(yy / 7)).astype(np.float32)
    b = (a * 250).astype(np.uint8)
    net = dn.DeconvNet(ndim=2, depth=2, base_channels=4)
    options = dict(noise=("salt-and-pepper", {"amount": 0.1}, None), validation=0.3)
    data_set = _training_set("synthetic", [a, b], None, net, **options)
    x, y, _ = data_set.batch(8)
    for sample, clean in zip(x, y, strict=True):
        # impulses where the clean patch's own extremes are not: at its source's
        changed = (sample != clean).squeeze(0)
        assert changed.any()
        values = torch.unique(sample.squeeze(0)[changed])
        assert len(values) <= 2 and float(values.max()) < 1.2 and float(values.min()) > -0.2
    val = data_set.val
    for raw, (s, _, _) in zip(val["raw"], val["positions"], strict=True):
        source = [a, b][s].astype(np.float64)
        impulses = set(np.unique(raw)) & {float(source.min()), float(source.max())}
        assert impulses, "validation impulses at the source's extremes"
