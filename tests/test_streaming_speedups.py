"""Automatic tiles of lazy and streamed restores are planned per block: same output, less work.

Before, the tiles of every block were planned for the whole image (e.g. 512 x 632
pixels for a 16384² image) and then cut to the block (1024²): a tile that does not
divide the block overlaps itself inside each block, ~20% more network work than an
in-memory restore. These tests hold the new plan to the old plan's output and to
the eager restore's, and check the plan itself; none measures time.
"""

import json

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.core import tiling
from napari_deconvnet.core.blocks import make_job
from napari_deconvnet.core.restoration import prepare_restore

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")

# the tile an image of 300² gets from the small budget below, planned on the whole image
OLD_TILE = (60, 76)


@pytest.fixture
def small_budget(monkeypatch, random_net):
    """A tile budget of ~120² haloed pixels for the test network, so tiles are small."""
    net = random_net()
    bpp = net.activation_bytes_per_pixel(4, center=False)
    monkeypatch.setitem(tiling._CPU_TILE_BUDGET, 2, int(bpp * 120**2))
    assert tiling.plan_tiles((300, 300), net)["tile"] == OLD_TILE
    assert tiling.plan_tiles((128, 128), net)["tile"] == (64, 64)
    return net


def _image(shape=(300, 300), seed=0):
    return (np.random.default_rng(seed).random(shape) * 4000).astype(np.uint16)


def _close(a, b, reference):
    return float(np.abs(a - b).max()) <= 1e-5 * float(np.ptp(reference))


def test_streamed_tiles_are_planned_per_block_with_the_same_output(tmp_path, small_budget):
    net = small_budget
    x = _image()
    src = tmp_path / "in.zarr"
    arr = zarr.open_array(str(src), mode="w", shape=x.shape, chunks=(128, 128), dtype=x.dtype)
    arr[:] = x
    new, old = tmp_path / "new.ome.zarr", tmp_path / "old.ome.zarr"
    dn.restore_to_zarr(src, new, net, chunks=128)
    # an explicit tile keeps the old path: planned on the image, then cut to the block
    dn.restore_to_zarr(src, old, net, chunks=128, tile=OLD_TILE)
    tile_of = {
        p: json.loads((p / ".zattrs").read_text())["napari_deconvnet_layer"]["metadata"][
            "napari_deconvnet"
        ]["tile"]
        for p in (new, old)
    }
    assert tile_of[new] == [64, 64]  # divides the 128² block: 4 tiles, none overlapping
    assert tile_of[old] == list(OLD_TILE)
    y_new = zarr.open_array(str(new / "0"), mode="r")[:]
    y_old = zarr.open_array(str(old / "0"), mode="r")[:]
    stats = dn.compute_normalization(da.from_zarr(str(src)), net)
    eager = dn.restore(x, net, normalization=stats)
    assert _close(y_new, y_old, eager)
    assert _close(y_new, eager, eager)
    # and not trivially: the restored image is not the input
    assert np.abs(y_new - x).max() > 0.01 * np.ptp(x)


def test_lazy_tiles_are_planned_per_block_with_the_same_output(small_budget):
    net = small_budget
    x = _image(seed=1)
    lazy_x = da.from_array(x, chunks=(128, 128))
    stats = dn.compute_normalization(lazy_x, net)
    new = dn.restore(lazy_x, net).compute()
    old = dn.restore(lazy_x, net, tile=OLD_TILE).compute()
    eager = dn.restore(x, net, normalization=stats)
    assert new.shape == x.shape and new.dtype == np.float32
    assert _close(new, old, eager)
    assert _close(new, eager, eager)


def test_a_chosen_tile_larger_than_the_block_is_still_accepted(tmp_path, random_net):
    net = random_net()
    x = _image((200, 180), seed=2)
    out = tmp_path / "out.ome.zarr"
    dn.restore_to_zarr(x, out, net, chunks=64, tile=160)  # 160 > block 64, <= image
    stats = dn.compute_normalization(x, net)
    eager = dn.restore(x, net, normalization=stats)
    assert _close(zarr.open_array(str(out / "0"), mode="r")[:], eager, eager)
    with pytest.raises(ValueError, match="larger than the image"):
        dn.restore_to_zarr(x, tmp_path / "bad.ome.zarr", net, chunks=64, tile=256)


def _haloed_pixels_per_block(tile, block, halo):
    """Network input pixels for one block: tiles cover it, each with its halo."""
    n = [-(-b // t) for t, b in zip(tile, block, strict=True)]
    return int(np.prod(n)) * int(np.prod([t + 2 * halo for t in tile]))


def test_the_default_model_on_16384_squared_gets_tiles_that_divide_its_blocks():
    """The benchmark's case (benchmarks/scale.py), planned only: no network runs."""
    x = da.zeros((16384, 16384), dtype=np.uint16, chunks=(1024, 1024))
    net, _, layout, dev, dtype = prepare_restore(x, "denoise-2d", None, None, "cpu", "float32")
    job = make_job(
        x,
        net,
        layout,
        tile=None,
        overlap=None,
        dev=dev,
        dtype=dtype,
        batch_size=None,
        precision="float32",
        device="cpu",
        normalization={"offset": 0.0, "scale": 1.0},
        block=(1024, 1024),
    )
    assert job.block == (1024, 1024)
    assert all(b % t == 0 for t, b in zip(job.tile, job.block, strict=True)), job.tile
    image_tile = tiling.plan_tiles((16384, 16384), net)["tile"]
    before = _haloed_pixels_per_block(image_tile, job.block, job.halo)
    after = _haloed_pixels_per_block(job.tile, job.block, job.halo)
    assert after < before  # e.g. 4 x 560² against 4 x 560 x 680 pixels


def test_a_reflected_block_equals_the_index_gather_for_every_window():
    """run_tiles reads each tile by slicing and np.pad: the same values as reflect_index.

    Windows inside the image, across one border or both, and ones needing more
    than one reflection (images smaller than the halo), in 2D and 3D.
    """
    rng = np.random.default_rng(0)
    kinds = ("inside", "halo", "wild")
    views = 0
    for trial in range(600):
        ndim = 2 if trial % 2 else 3
        kind = kinds[trial % 3]
        spatial = tuple(int(rng.integers(1 if kind == "wild" else 12, 48)) for _ in range(ndim))
        image = rng.random((int(rng.integers(1, 3)), *spatial)).astype(np.float32)
        windows = []
        for size in spatial:
            if kind == "inside":
                start = int(rng.integers(0, size))
                windows.append((start, int(rng.integers(start + 1, size + 1))))
            elif kind == "halo":  # a tile and its halo of up to 8 (one reflection)
                halo = int(rng.integers(0, 9))
                start = int(rng.integers(0, size))
                stop = int(rng.integers(start + 1, size + 1))
                windows.append((start - halo, stop + halo))
            else:
                start = int(rng.integers(-30, size + 5))
                windows.append((start, start + int(rng.integers(1, 60))))
        index = [tiling.reflect_index(a, b, n) for (a, b), n in zip(windows, spatial, strict=True)]
        expected = image[np.ix_(np.arange(image.shape[0]), *index)]
        block = tiling.reflected_block(image, windows)
        np.testing.assert_array_equal(block, expected)
        views += bool(np.shares_memory(block, image))
    assert views >= 150  # windows inside the image are views: no copy at all
