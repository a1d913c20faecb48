"""Lazy (dask) restore: blocks on the grid, one normalisation, every model, progress and stop."""

import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import napari_deconvnet as dn
from napari_deconvnet.core.normalization import sample_values

da = pytest.importorskip("dask.array")


def _rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.ptp(b))


def test_last_chunk_smaller_than_the_halo_stays_on_the_grid():
    # the repro: chunks (70, 100) of a 70 x 300 image, tile 64
    x = np.random.default_rng(0).random((70, 300)).astype(np.float32)
    lazy = dn.restore(da.from_array(x, chunks=(70, 100)), "default", tile=64)
    assert isinstance(lazy, da.Array)
    assert _rel(lazy.compute(), dn.restore(x, "default", tile=64)) <= 1e-5


@settings(max_examples=20, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(16, 72), st.integers(16, 72)),
    chunk=st.tuples(st.integers(5, 72), st.integers(5, 72)),
    tile=st.integers(8, 72),
    seed=st.integers(0, 2**16),
)
def test_lazy_equals_eager_for_any_shape_chunks_and_tile(shape, chunk, tile, seed):
    from conftest import _random_net

    net = _random_net(ndim=2, seed=1)
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    tile = min(tile, shape[1], shape[2])
    lazy_x = da.from_array(x, chunks=(1, *chunk))
    lazy = dn.restore(lazy_x, net, axes="TYX", tile=tile)
    # each plane's statistics from its sample of the chunks: the same numbers for eager
    stats = dn.compute_normalization(lazy_x, net, axes="TYX", per_image=True)
    eager = dn.restore(x, net, axes="TYX", normalization=stats)
    assert lazy.shape == x.shape
    assert _rel(lazy.compute(), eager) <= 1e-5
    # images this small are read whole (at most 1,024 chunks): the eager restore's own
    # statistics, so lazy equals eager as it is
    assert _rel(lazy.compute(), dn.restore(x, net, axes="TYX")) <= 1e-5


def test_lazy_3d_and_channels(random_net):
    net3 = random_net(ndim=3, depth=1)
    vol = np.random.default_rng(1).random((2, 10, 24, 20)).astype(np.float32)
    lazy = dn.restore(da.from_array(vol, chunks=(1, 5, 9, 16)), net3, axes="TZYX", tile=8)
    assert _rel(lazy.compute(), dn.restore(vol, net3, axes="TZYX")) <= 1e-5
    # a one-channel model on a C axis: each channel its own statistics
    net = random_net(ndim=2)
    x = np.random.default_rng(2).random((40, 44, 2)).astype(np.float32)
    x[..., 1] *= 100
    lazy = dn.restore(da.from_array(x, chunks=(20, 20, 2)), net, axes="YXC")
    assert _rel(lazy.compute(), dn.restore(x, net, axes="YXC")) <= 1e-5


def test_lazy_progress_and_stop(random_net):
    net = random_net(ndim=2)
    x = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    calls = []
    lazy = dn.restore(da.from_array(x, chunks=32), net, progress=lambda d, n: calls.append((d, n)))
    lazy.compute(scheduler="synchronous")
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    stop = threading.Event()
    stop.set()
    lazy = dn.restore(da.from_array(x, chunks=32), net, stop=stop)
    with pytest.raises(dn.Cancelled, match="0 of 4 blocks"):
        lazy.compute(scheduler="synchronous")


def test_lazy_leaves_the_model_alone(random_net):
    net = random_net(ndim=2).train()
    x = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    dn.restore(da.from_array(x, chunks=20), net).compute()
    assert net.training and all(p.is_contiguous() for p in net.parameters())


# --------------------------------------------------------------- normalisation


def test_one_normalisation_exact_in_memory_sampled_lazily():
    rng = np.random.default_rng(0)
    x = rng.normal(100, 20, (96, 96)).astype(np.float32)
    exact = np.percentile(x.astype(np.float64), [0.5, 99.5])
    stats = dn.compute_normalization(x)
    assert stats["offset"] == pytest.approx(exact[0], rel=1e-6)
    assert stats["scale"] == pytest.approx(exact[1] - exact[0], rel=1e-5)
    # few small chunks: the lazy sample is every value, so it equals the exact one
    lazy = dn.compute_normalization(da.from_array(x, chunks=32))
    assert lazy == pytest.approx(stats, rel=1e-6)
    # a small image in many chunks (144): read whole, exact too
    small = rng.normal(size=(96, 96)).astype(np.float32)
    np.testing.assert_array_equal(
        np.sort(sample_values(da.from_array(small, chunks=8))), np.sort(small.ravel())
    )
    # more chunks than 16 x 64: a deterministic sample of some of them (small chunks: as
    # many as the budget holds, at most 16 x 64 and a quarter of them; session 72)
    big = da.from_array(rng.normal(size=(264, 264)).astype(np.float32), chunks=8)
    assert big.npartitions > 1024
    first, second = sample_values(big), sample_values(big)
    np.testing.assert_array_equal(first, second)
    assert 64 * 64 < first.size <= big.npartitions // 4 * 64
    # 16-bit integers: exact percentiles from a histogram, as numpy's
    u = rng.integers(0, 4096, (50, 70)).astype(np.uint16)
    got = dn.compute_normalization(u)
    want = np.percentile(u, [0.5, 99.5])
    assert got["offset"] == pytest.approx(want[0]) and got["scale"] == pytest.approx(np.ptp(want))


def test_integer_counts_a_few_levels_apart_get_the_same_statistics_lazily():
    """Camera counts of 2.5 ADU a photon, rounded, lie 2 or 3 apart: in memory the
    uint16 image's lattice of step 1 dequantises them; the lazy sample was cast to
    float64 first, lost that step, and restored 2.7% of the range off eager."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    lam = gaussian_filter((rng.random((160, 200)) < 0.02).astype(float), 2) * 60 + 1
    img = np.round(100 + 2.5 * rng.poisson(lam)).astype(np.uint16)
    stack = np.stack([img, img[::-1]])
    eager = dn.compute_normalization(img, "denoise-2d")
    assert eager["offset"] != pytest.approx(100.0)  # dequantised: not the raw 100
    assert dn.compute_normalization(da.from_array(img, chunks=64), "denoise-2d") == (
        pytest.approx(eager, rel=1e-7)
    )
    out = np.asarray(dn.restore(stack, "denoise-2d", axes="TYX", device="cpu"))
    lazy = dn.restore(da.from_array(stack, chunks=(1, 64, 64)), "denoise-2d", axes="TYX")
    assert np.abs(lazy.compute() - out).max() <= 1e-5 * np.ptp(out)
    assert sample_values(da.from_array(img, chunks=64)).dtype == np.uint16


def test_fixed_statistics_make_blocks_and_machines_agree(random_net):
    net = random_net(ndim=2)
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 50.0, (64, 80)).astype(np.float32)
    stats = dn.compute_normalization(x, net)
    np.testing.assert_allclose(
        dn.restore(x, net, normalization=stats), dn.restore(x, net), rtol=1e-6, atol=1e-4
    )
    fixed = {"offset": 10.0, "scale": 300.0}
    eager = dn.restore(x, net, normalization=fixed)
    lazy = dn.restore(da.from_array(x, chunks=32), net, normalization=fixed)
    assert _rel(lazy.compute(), eager) <= 1e-5
    # the network sees (x - offset) / scale: a fixed pair that differs changes the result
    assert _rel(dn.restore(x, net, normalization={"offset": 0.0, "scale": 30.0}), eager) > 1e-3


@pytest.mark.parametrize(
    "normalization, exc, match",
    [
        ([1, 2], TypeError, "dict"),
        ({"offset": 1.0}, ValueError, "offset' and 'scale"),
        ({"offset": 1.0, "scale": 0.0}, ValueError, "> 0"),
        ({"offset": [1.0, 2.0], "scale": 1.0}, ValueError, "channels"),
        ({"offset": float("nan"), "scale": 1.0}, ValueError, "finite"),
    ],
)
def test_bad_fixed_statistics(random_net, normalization, exc, match):
    x = np.zeros((32, 32), np.float32)
    with pytest.raises(exc, match=match):
        dn.restore(x, random_net(), normalization=normalization)


# ------------------------------------------------------ conditioned models


def _conditioned_net(ndim, conditioning):
    torch.manual_seed(0)
    net = dn.DeconvNet(ndim=ndim, in_channels=2, out_channels=1, depth=1, base_channels=4)
    net.metadata = {"name": f"deconv-{ndim}d", "needs_psf": True, "conditioning": conditioning}
    return net.eval()


def _blurred(shape, psf, seed=0):
    rng = np.random.default_rng(seed)
    clean = np.zeros(shape, np.float32)
    clean[tuple(rng.integers(0, s, 200) for s in shape)] = 1
    out = dn.core.psf.blur(clean, psf)
    return out + rng.normal(0, 0.01, shape).astype(np.float32)


def test_deconvolution_models_lazily_equal_eager():
    # tolerance: 1e-4 of the range (the classical channel is computed per block
    # with three PSF sizes of context; measured ~4e-6)
    psf = dn.make_psf("gaussian", shape=(7, 7), sigma=1.2)
    img = _blurred((128, 136), psf)
    for conditioning in (
        {"method": "richardson-lucy", "iterations": 10},
        {"method": "wiener", "balance_scale": 1.0},
    ):
        net = _conditioned_net(2, conditioning)
        eager = dn.restore(img, net, psf=psf)
        lazy = dn.restore(da.from_array(img, chunks=(32, 40)), net, psf=psf)
        assert _rel(lazy.compute(), eager) <= 1e-4
    psf3 = dn.make_psf("gaussian", shape=(3, 5, 5), sigma=0.8)
    vol = _blurred((12, 48, 44), psf3)
    net3 = _conditioned_net(3, {"method": "wiener", "balance_scale": 1.0})
    lazy = dn.restore(da.from_array(vol, chunks=(6, 24, 24)), net3, psf=psf3)
    assert _rel(lazy.compute(), dn.restore(vol, net3, psf=psf3)) <= 1e-4


def test_salt_and_pepper_lazily_equals_eager():
    rng = np.random.default_rng(5)
    clean = rng.uniform(0.2, 0.8, (2, 64, 72)).astype(np.float32)
    noisy = dn.synthesize(clean, "salt-and-pepper", amount=0.2, seed=1)
    eager = dn.restore(noisy, "salt-and-pepper", axes="ZYX")
    lazy = dn.restore(da.from_array(noisy, chunks=(1, 24, 40)), "salt-and-pepper", axes="ZYX")
    assert _rel(lazy.compute(), eager) <= 1e-5
    kept = (noisy > noisy.min()) & (noisy < noisy.max())
    np.testing.assert_array_equal(lazy.compute()[kept], noisy[kept])


@pytest.mark.parametrize("signal", [0.0, 0.02, 0.2])
def test_wiener_conditioned_lazy_equals_eager_on_noise_dominated_images(signal):
    # Pure noise estimates a noise-to-signal balance without bound (1e11 for
    # white noise), and the Wiener-Hunt channel then reaches far beyond three
    # PSF sizes: blocks with a small last chunk differed from the eager restore
    # by 0.75 of the range (a deconv-3d restore of a 34x67x37 noise volume,
    # chunks 61 along Y). The balance is capped and the margin follows it.
    from napari_deconvnet.core.conditioning import conditioning_statistics

    rng = np.random.default_rng(3)
    psf = dn.make_psf("gaussian", shape=(5, 5), sigma=1.0)
    img = signal * _blurred((48, 300), psf, seed=1) + rng.random((48, 300)).astype(np.float32)
    net = _conditioned_net(2, {"method": "wiener", "balance_scale": 1.0})
    balance = conditioning_statistics(img[None], net)[0]["balance"]
    assert balance > 1 and balance <= dn.core.classical.BALANCE_MAX
    eager = dn.restore(img, net, psf=psf)
    lazy = dn.restore(da.from_array(img, chunks=(48, 261)), net, psf=psf).compute()
    assert _rel(lazy, eager) <= 1e-5


def test_wiener_margin_grows_with_the_balance():
    from napari_deconvnet.core.conditioning import conditioning_margin

    net = _conditioned_net(2, {"method": "wiener", "balance_scale": 1.0})
    psf = dn.make_psf("gaussian", shape=(7, 5), sigma=1.0)
    assert conditioning_margin(net, psf) == (21, 15)
    assert conditioning_margin(net, psf, [{"balance": 0.01}]) == (21, 15)
    # two PSF sizes plus 12 pixels per fourth root of the largest balance
    many = [{"balance": 1.0}, {"balance": 1e4}]
    assert conditioning_margin(net, psf, many) == (14 + 120, 10 + 120)
    rl = _conditioned_net(2, {"method": "richardson-lucy", "iterations": 10})
    assert conditioning_margin(rl, psf, [{"low": 0.0}]) == (21, 15)


def test_a_rewritten_file_is_sampled_afresh(tmp_path):
    """The sample is kept per array object, not per dask name: ``da.from_zarr``
    of one path gives the same name before and after the file is rewritten."""
    pytest.importorskip("zarr")
    rng = np.random.default_rng(5)
    values = rng.normal(100, 10, (64, 64)).astype(np.float32)
    path = str(tmp_path / "x.zarr")
    da.from_array(values, chunks=16).to_zarr(path)
    before = da.from_zarr(path)
    first = dn.compute_normalization(before)
    assert dn.compute_normalization(before) == first  # the same object: read once
    da.from_array(values * 10 + 5000, chunks=16).to_zarr(path, overwrite=True)
    after = da.from_zarr(path)
    assert after.name == before.name  # why the name cannot be the key
    again = dn.compute_normalization(after)
    assert again["offset"] == pytest.approx(first["offset"] * 10 + 5000, rel=1e-5)
    assert again["scale"] == pytest.approx(first["scale"] * 10, rel=1e-5)


@pytest.mark.parametrize("streamed", [False, True])
def test_nan_in_a_chunk_the_statistics_never_read_is_refused(tmp_path, random_net, streamed):
    """1225 chunks: the statistics sample some of them, and the NaN's chunk is not among
    them; the block that reads it refuses it, as eager restore refuses the image."""
    from napari_deconvnet.core.normalization import (
        SAMPLE_BLOCKS,
        SAMPLE_VALUES,
        WHOLE_BLOCKS,
        image_sample_plan,
    )

    net = random_net(ndim=2)
    x = np.random.default_rng(4).random((700, 700)).astype(np.float32)
    lazy = da.from_array(x, chunks=20)
    assert lazy.npartitions > WHOLE_BLOCKS * SAMPLE_BLOCKS
    sampled = dn.compute_normalization(lazy, net)
    read = {index for index, _ in image_sample_plan(lazy.chunks, SAMPLE_VALUES, SAMPLE_BLOCKS)}
    y, x_ = next(i for i in np.ndindex(*lazy.numblocks) if i not in read)
    x[20 * y + 10, 20 * x_ + 10] = np.nan
    lazy = da.from_array(x, chunks=20)
    assert dn.compute_normalization(lazy, net) == sampled  # the sample never sees it
    with pytest.raises(ValueError, match="NaN or infinite"):
        dn.restore(x, net)
    with pytest.raises(ValueError, match=r"NaN or infinite values \(read for the block"):
        if streamed:
            dn.restore_to_zarr(lazy, tmp_path / "out.ome.zarr", net, client=False)
        else:
            dn.restore(lazy, net).compute()
    if streamed:  # unfinished: no image metadata
        assert not (tmp_path / "out.ome.zarr" / ".zattrs").exists() or (
            "multiscales" not in (tmp_path / "out.ome.zarr" / ".zattrs").read_text()
        )


def test_lazy_progress_counts_blocks_per_compute_and_each_call_keeps_its_callbacks(random_net):
    net = random_net(ndim=2)
    x = np.random.default_rng(6).random((144, 144)).astype(np.float32)
    lazy = da.from_array(x, chunks=48)  # 9 blocks (twice the halo of 24, session 72)
    seen = []
    out = dn.restore(lazy, net, progress=lambda d, n: seen.append((d, n)))
    first = out.compute()
    assert sorted(seen) == [(k, 9) for k in range(1, 10)]
    seen.clear()
    np.testing.assert_array_equal(out.compute(), first)  # computed again: counted afresh
    assert sorted(seen) == [(k, 9) for k in range(1, 10)]
    seen.clear()
    out[:48, :48].compute()
    assert seen and all(d <= n == 9 for d, n in seen)  # never "10 of 9"
    # after a partial compute (the slices napari views), the whole counts 1 to 9 (the
    # partial's blocks stayed counted: it ended at 2 of 9, and so did every later one)
    seen.clear()
    out.compute()
    assert [d for d, _ in seen] == list(range(1, 10))
    # two restores of one array with their own callbacks, computed together
    a, b = [], []
    ra = dn.restore(lazy, net, progress=lambda d, n: a.append(d))
    rb = dn.restore(lazy, net, progress=lambda d, n: b.append(d))
    assert ra.name != rb.name
    da.compute(ra, rb)
    assert sorted(a) == sorted(b) == list(range(1, 10))


@pytest.mark.parametrize("model", ["denoise-2d-nl", "denoise-2d"])
def test_a_constant_image_comes_back_as_that_constant_lazily_and_streamed(model, tmp_path):
    # restore returns a constant image as it is; lazily the network ran over it and
    # moved it by up to 2.6e-3 (denoise-2d-nl), and streamed RGB was mixed wrongly
    zarr = pytest.importorskip("zarr")
    for x in (np.ones((145, 22), np.uint16), np.full((40, 50, 3), 0.25, np.float32)):
        lazy_x = da.from_array(x, chunks=16)
        assert np.unique(dn.restore(x, model)).tolist() == [float(x.flat[0])]
        lazy = dn.restore(lazy_x, model)
        assert lazy.chunks == lazy_x.chunks
        np.testing.assert_array_equal(lazy.compute(), np.full(x.shape, x.flat[0], np.float32))
        seen = []
        target = tmp_path / f"{model}-{x.ndim}.ome.zarr"
        report = seen.append
        dn.restore_to_zarr(lazy_x, target, model, progress=lambda d, n, r=report: r((d, n)))
        level0 = zarr.open_array(str(target / "0"), mode="r")[:]
        assert np.unique(level0).tolist() == [float(x.flat[0])] and seen[-1][0] == seen[-1][1]
    # one other value anywhere: restored, not taken for a constant
    x = np.ones((64, 64), np.float32)
    x[63, 63] = 2
    assert np.ptp(dn.restore(da.from_array(x, chunks=32), model).compute()) > 0


def test_a_small_array_of_several_images_is_read_whole_for_each(random_net):
    # two channels in 23 x 23 chunks each: each image's share of the chunk budget (32)
    # was under its 529 chunks, so each was sampled and lazy missed eager by 3.9e-3
    from napari_deconvnet.core.normalization import image_sample_budget

    net = random_net(ndim=2)
    x = np.random.default_rng(0).random((1, 67, 67, 2)).astype(np.float32)
    x[..., 1] *= 50
    lazy_x = da.from_array(x, chunks=(1, 3, 3, 2))
    assert image_sample_budget(2, lazy_x) == (1 << 22, 64)
    lazy = dn.restore(lazy_x, net, axes="TYXC").compute()
    assert _rel(lazy, dn.restore(x, net, axes="TYXC")) <= 1e-5


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_a_non_finite_value_in_a_lazy_or_streamed_image_is_named(tmp_path, value):
    # the search for very bright objects ran first and failed with "OverflowError:
    # cannot convert float infinity to integer"
    x = np.random.default_rng(0).poisson(200, (128, 128)).astype(np.float32)
    x[10, 10] = value
    with pytest.raises(ValueError, match="NaN or infinite values"):
        dn.restore(da.from_array(x, chunks=32), "denoise-2d").compute()
    target = tmp_path / "out.ome.zarr"
    with pytest.raises(ValueError, match="NaN or infinite values"):
        dn.restore_to_zarr(x, target, model="denoise-2d", chunks=32, client=False)
    assert not target.exists()


def test_progress_and_stop_are_refused_under_the_processes_scheduler():
    import dask

    image = da.from_array(np.random.default_rng(0).random((64, 70)).astype(np.float32))
    with dask.config.set(scheduler="processes"):
        with pytest.raises(ValueError, match="need dask's threaded scheduler"):
            dn.restore(image, progress=lambda done, total: None)
        assert dn.restore(image).shape == (64, 70)  # without them: as before (built lazily)


def test_small_chunks_make_blocks_of_at_least_twice_the_halo():
    # session 72: a volume chunked one plane per chunk (as light-sheet files are) made
    # blocks of 4 planes, each reading 24 planes of halo on either side: 5 to 7 times the
    # work of the eager restore, for the same result
    vol = np.random.default_rng(3).poisson(20, (32, 96, 96)).astype(np.uint16)
    halo = dn.load_model("denoise-3d").halo
    lazy = dn.restore(da.from_array(vol, chunks=(1, 96, 96)), "denoise-3d", axes="ZYX")
    assert min(lazy.chunks[0]) >= min(2 * halo, 32)
    assert _rel(lazy.compute(), dn.restore(vol, "denoise-3d", axes="ZYX")) <= 1e-5


def test_tiny_chunks_are_sampled_to_the_budget():
    # session 72: 2,048 chunks of 256 values were sampled in 64 of them (16,384 values of
    # a 4 M budget), and the scale came out 22 % below the exact one on sparse nuclei
    rng = np.random.default_rng(1)
    vol = np.full((32, 128, 128), 10.0)
    zz, yy, xx = np.mgrid[:32, :128, :128]
    for _ in range(25):
        c, r = rng.uniform([8, 40, 40], [24, 88, 88]), rng.uniform(3, 7)
        vol += 50 * np.exp(
            -(((zz - c[0]) * 2) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) / (2 * r * r)
        )
    counts = rng.poisson(vol).astype(np.uint16)
    lazy = da.from_array(counts, chunks=(1, 16, 16))
    assert sample_values(lazy).size >= 1 << 16  # (was 16,384)
    exact = dn.compute_normalization(counts, "denoise-3d")
    sampled = dn.compute_normalization(lazy, "denoise-3d")
    assert abs(sampled["scale"] - exact["scale"]) <= 0.03 * exact["scale"]
