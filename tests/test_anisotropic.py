"""Anisotropic pooling (``planar_levels``): levels that pool Y and X but keep every Z plane."""

import dask.array as da
import numpy as np
import pytest
import torch
from scipy import ndimage

import napari_deconvnet as dn
from napari_deconvnet import DeconvNet, DeconvNetConfig, receptive_field


def _rel_max_diff(a, b):
    return float(np.abs(a - b).max() / (b.max() - b.min()))


def test_planar_levels_pool_y_and_x_only():
    net = DeconvNet(ndim=3, depth=2, base_channels=4, planar_levels=1)
    assert net.config.pool_factors() == [(1, 2, 2), (2, 2, 2)]
    assert net.config.grid_shape == (2, 4, 4)
    assert net.config.grid == 4  # a multiple of every axis's grid
    ups = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose3d)]
    # the decoder runs from the deepest level up: its last up-sampling is the planar one
    assert [m.stride for m in ups] == [(2, 2, 2), (1, 2, 2)]
    # every plane survives the first pooling: odd and tiny Z sizes pass through
    for shape in [(3, 20, 24), (5, 9, 11), (1, 8, 8)]:
        x = torch.randn(1, 1, *shape)
        assert net(x).shape == x.shape
    flat = DeconvNet(ndim=3, depth=2, base_channels=4, planar_levels=2)
    assert flat.config.grid_shape == (1, 4, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ndim": 2, "planar_levels": 1}, "3D network"),
        ({"ndim": 3, "depth": 2, "planar_levels": 3}, "from 0 to depth"),
        ({"ndim": 3, "planar_levels": -1}, "from 0 to depth"),
        ({"ndim": 3, "planar_levels": True}, "integer"),
    ],
)
def test_planar_levels_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeconvNetConfig(**kwargs)


def _extent_3d(net, size=(56, 64, 64)):
    """Per axis, the farthest input voxel (either side) an output voxel depends on (autograd)."""
    net = net.double()
    lo, hi = [0, 0, 0], [0, 0, 0]
    for c in range(net.config.grid):  # every position on the pooling grid
        x = torch.randn(1, 1, *size, dtype=torch.double, requires_grad=True)
        p = [s // 2 + c for s in size]
        net(x)[(0, 0, *p)].backward()
        grad = x.grad[0, 0]
        for axis in range(3):
            line = [p[0], p[1], p[2]]
            line[axis] = slice(None)
            idx = torch.nonzero(grad[tuple(line)]).flatten()
            lo[axis] = min(lo[axis], int(idx.min()) - p[axis])
            hi[axis] = max(hi[axis], int(idx.max()) - p[axis])
    return lo, hi


@pytest.mark.parametrize(
    "kwargs",
    [
        {"planar_levels": 0},
        {"planar_levels": 1},
        {"planar_levels": 2},
        {"planar_levels": 1, "pool": "blur"},
        {"planar_levels": 1, "top_skip": False},
    ],
)
def test_receptive_field_per_axis_matches_autograd(kwargs):
    torch.manual_seed(0)
    net = DeconvNet(ndim=3, depth=2, base_channels=2, **kwargs).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, 0.0, 0.3)
    per_axis = receptive_field(net.config, per_axis=True)
    lo, hi = _extent_3d(net)
    for axis, (size, extent) in enumerate(per_axis):
        assert (-lo[axis], hi[axis]) == (extent, extent), axis
        assert size == hi[axis] - lo[axis] + 1
    if kwargs["planar_levels"]:  # Z sees less than Y and X
        assert per_axis[0][1] < per_axis[1][1] == per_axis[2][1]
    assert receptive_field(net.config) == max(per_axis)
    assert net.halo >= max(e for _, e in per_axis) and net.halo % net.config.grid == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"depth": 2, "planar_levels": 1},
        {"depth": 2, "planar_levels": 2, "pool": "blur"},
        {"depth": 3, "planar_levels": 2, "skip": "concat"},
        {"depth": 2, "planar_levels": 1, "top_skip": False, "in_channels": 2, "residual_input": 1},
    ],
)
def test_forward_center_equals_cropped_forward_planar(kwargs):
    """Tiles' centres computed alone equal the whole forward's centre with planar levels."""
    torch.manual_seed(0)
    net = DeconvNet(ndim=3, base_channels=4, **kwargs).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, 0.0, 0.3)
    halo, grid = net.halo, net.config.grid
    shape = [2 * halo + grid * k for k in (1, 2, 1)]
    x = torch.randn(1, net.config.in_channels, *shape)
    with torch.no_grad():
        full = net(x)[(slice(None), slice(None), *[slice(halo, s - halo) for s in shape])]
        centre = net.forward_center(x, halo)
    scale = float(full.abs().max())
    assert scale > 1.0  # the network is not the identity
    torch.testing.assert_close(centre, full, rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize("shape, tile", [((13, 30, 27), 8), ((7, 33, 20), (4, 8, 12))])
def test_tiled_and_lazy_equal_untiled_planar(random_net, shape, tile):
    net = random_net(ndim=3, planar_levels=1)
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    untiled = dn.restore(x, net, tile=shape)
    assert np.abs(untiled - x).max() > 1e-2  # the network changes the image
    assert _rel_max_diff(dn.restore(x, net, tile=tile), untiled) <= 1e-4
    stats = dn.compute_normalization(x, net)
    lazy = dn.restore(da.from_array(x, chunks=(5, 11, 13)), net, tile=tile, normalization=stats)
    eager = dn.restore(x, net, tile=tile, normalization=stats)
    assert _rel_max_diff(np.asarray(lazy), eager) <= 1e-5


def test_planar_model_file_round_trip(random_net, tmp_path):
    net = random_net(ndim=3, planar_levels=2)
    path = tmp_path / "planar.safetensors"
    dn.save_model(net, path)
    back = dn.load_model(path)
    assert back.config.planar_levels == 2
    x = torch.randn(1, 1, 6, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x))


def test_train_a_planar_network_denoises_a_held_out_volume():
    """dn.train builds an anisotropic network from ``network=`` and it learns to denoise."""
    rng = np.random.default_rng(0)

    def volume(seed):
        r = np.random.default_rng(seed).random((12, 48, 48))
        clean = ndimage.gaussian_filter(r, (0.7, 2.0, 2.0))
        return ((clean - clean.min()) / np.ptp(clean)).astype(np.float32)

    clean, test_clean = volume(1), volume(2)
    noisy = clean + rng.normal(0, 0.15, clean.shape).astype(np.float32)
    test_noisy = test_clean + rng.normal(0, 0.15, clean.shape).astype(np.float32)
    torch.manual_seed(0)
    result = dn.train(
        noisy,
        clean,
        epochs=4,
        steps_per_epoch=10,
        patch_size=(8, 16, 16),
        batch_size=4,
        network={"ndim": 3, "base_channels": 8, "planar_levels": 1},
        lr=3e-3,
        device="cpu",
        seed=0,
    )
    assert result.model.config.planar_levels == 1
    restored = dn.restore(test_noisy, result.model, device="cpu")

    def psnr(a):
        return 10 * np.log10(1.0 / np.mean((a - test_clean) ** 2))

    assert psnr(restored) > psnr(test_noisy) + 2.0


def test_streaming_restore_of_a_planar_model_equals_eager(random_net, tmp_path):
    zarr = pytest.importorskip("zarr")
    net = random_net(ndim=3, planar_levels=1)
    x = np.random.default_rng(1).random((10, 40, 36)).astype(np.float32)
    stats = dn.compute_normalization(x, net)
    out = tmp_path / "out.ome.zarr"
    dn.restore_to_zarr(x, out, net, chunks=(6, 16, 16), normalization=stats)
    eager = dn.restore(x, net, normalization=stats)
    assert _rel_max_diff(zarr.open_array(str(out / "0"), mode="r")[:], eager) <= 1e-5


def test_planar_model_exports_to_torchscript_and_onnx(random_net, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from napari_deconvnet.core.export import GridPadded

    net = random_net(ndim=3, planar_levels=1)
    x = torch.from_numpy(np.random.default_rng(2).random((1, 1, 30, 32, 36), dtype=np.float32))
    with torch.no_grad():
        expected = GridPadded(net)(x).numpy()
    assert np.abs(expected - x.numpy()).max() > 1e-2
    scripted = torch.jit.load(str(dn.export(net, tmp_path / "m.pt")))
    session = ort.InferenceSession(
        str(dn.export(net, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"]
    )
    with torch.no_grad():
        ts = scripted(x).numpy()
    onnx_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    for out in (ts, onnx_out):
        assert _rel_max_diff(out, expected) <= 1e-4


def test_cli_trains_a_planar_network(tmp_path):
    from napari_deconvnet.cli import main

    rng = np.random.default_rng(3)
    volume = ndimage.gaussian_filter(rng.random((12, 32, 32)), (0.7, 2, 2)).astype(np.float32)
    np.save(tmp_path / "clean.npy", volume)
    out = tmp_path / "planar.safetensors"
    args = ["train", "--input", str(tmp_path / "clean.npy"), "--noise", "gaussian:sigma=0.05"]
    args += ["--network", "ndim=3,base_channels=4,planar_levels=1", "--epochs", "1"]
    args += ["--patch-size", "8", "--batch-size", "2", "--device", "cpu", "-o", str(out)]
    assert main(args) == 0
    model = dn.load_model(out)
    assert model.config.planar_levels == 1 and model.config.ndim == 3
    strides = [m.stride for m in model.modules() if isinstance(m, torch.nn.ConvTranspose3d)]
    assert strides == [(2, 2, 2), (1, 2, 2)]


def test_a_planar_network_trains_on_a_stack_of_few_planes():
    """Session 70: a 3D network that never pools Z restores stacks of any depth, but
    training asked for Z patches on the whole 2**depth grid (a 3-plane stack found no
    patch; patch_size=(3, 32, 32) was refused)."""
    x = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    net = {"ndim": 3, "planar_levels": 2, "base_channels": 4}
    options = dict(epochs=1, steps_per_epoch=2, batch_size=2, device="cpu")
    result = dn.train(x + 0.1, x, network=net, **options)
    assert result.config.patch_size[0] == 3
    result = dn.train(x + 0.1, x, network=net, patch_size=(3, 32, 32), **options)
    assert dn.restore(x, result.model, device="cpu").shape == x.shape
    with pytest.raises(ValueError, match=r"grid of \(1, 4, 4\) pixels"):
        dn.train(x + 0.1, x, network=net, patch_size=(3, 30, 32), **options)
