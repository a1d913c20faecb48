import dataclasses
import json

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet import DeconvNet, DeconvNetConfig, receptive_field


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("skip", ["add", "concat"])
def test_shapes_any_size(ndim, depth, skip):
    net = DeconvNet(ndim=ndim, depth=depth, base_channels=4, skip=skip)
    sizes = [(13, 17), (8, 8), (33, 20)] if ndim == 2 else [(5, 9, 11), (8, 8, 8)]
    for size in sizes:
        x = torch.randn(2, 1, *size)
        assert net(x).shape == x.shape


def test_channels():
    net = DeconvNet(in_channels=3, out_channels=3, base_channels=4)
    assert net(torch.randn(1, 3, 20, 24)).shape == (1, 3, 20, 24)
    net = DeconvNet(in_channels=2, out_channels=1, base_channels=4)
    assert net(torch.randn(1, 2, 20, 24)).shape == (1, 1, 20, 24)
    assert not net.residual


def test_decoder_uses_transposed_convolutions():
    net = DeconvNet(ndim=3, depth=2, base_channels=4)
    ups = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose3d)]
    assert len(ups) == 2
    assert all(m.stride == (2, 2, 2) for m in ups)


def test_residual_starts_as_identity():
    """A new network predicts zero correction: output equals input."""
    net = DeconvNet(base_channels=4)
    x = torch.randn(1, 1, 16, 16)
    assert torch.equal(net(x), x)


def test_config_json_roundtrip():
    cfg = DeconvNetConfig(ndim=3, depth=3, base_channels=12, activation="gelu")
    text = json.dumps(dataclasses.asdict(cfg))
    assert DeconvNetConfig.from_dict(json.loads(text)) == cfg


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ndim": 4}, "ndim"),
        ({"depth": -1}, "depth must be an integer >= 0"),
        ({"base_channels": 0}, "base_channels must be a positive integer"),
        ({"kernel_size": 4}, "kernel_size"),
        ({"activation": "tanhh"}, "activation"),
        ({"normalization": {"method": "zscore"}}, "normalization"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeconvNetConfig(**kwargs)


def test_from_dict_unknown_field():
    with pytest.raises(ValueError, match="unknown fields"):
        DeconvNetConfig.from_dict({"ndim": 2, "colour": 1})


def _empirical_extent(net, size=160):
    """Farthest input pixel (either side) any output pixel depends on, by autograd."""
    net = net.double()
    lo = hi = 0
    for c in range(net.config.grid):
        x = torch.randn(1, 1, size, size, dtype=torch.double, requires_grad=True)
        p = size // 2 + c
        net(x)[0, 0, p, p].backward()
        idx = torch.nonzero(x.grad[0, 0, p]).flatten()
        lo, hi = min(lo, int(idx.min()) - p), max(hi, int(idx.max()) - p)
    return lo, hi


@pytest.mark.parametrize("depth, convs", [(1, 2), (2, 2), (3, 1), (2, 3)])
def test_receptive_field_matches_autograd(random_net, depth, convs):
    net = random_net(depth=depth, convs_per_level=convs)
    size, extent = receptive_field(net.config)
    lo, hi = _empirical_extent(net)
    assert (-lo, hi) == (extent, extent)
    assert size == hi - lo + 1
    assert net.halo >= extent and net.halo % net.config.grid == 0


def test_wrong_input_rank():
    with pytest.raises(ValueError, match="expected a 4-D tensor"):
        DeconvNet()(torch.zeros(1, 8, 8))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ndim": 2, "depth": 2},
        {"ndim": 2, "depth": 3, "skip": "concat", "kernel_size": 5, "convs_per_level": 1},
        {"ndim": 3, "depth": 2},
        {"ndim": 3, "depth": 1, "in_channels": 2, "residual_input": 1},
    ],
)
def test_forward_center_equals_cropped_forward(kwargs):
    """The centre computed alone equals the whole forward's centre (halo = receptive field)."""
    torch.manual_seed(0)
    net = DeconvNet(base_channels=4, **kwargs).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, 0.0, 0.3)
    halo, grid, ndim = net.halo, net.config.grid, net.config.ndim
    shape = [2 * halo + grid * k for k in (3, 1, 2)][:ndim]
    x = torch.randn(2, net.config.in_channels, *shape)
    with torch.no_grad():
        full = net(x)[(slice(None), slice(None), *[slice(halo, s - halo) for s in shape])]
        centre = net.forward_center(x, halo)
    assert centre.shape == full.shape
    scale = float(full.abs().max())
    assert scale > 1.0  # the network is not the identity
    torch.testing.assert_close(centre, full, rtol=0, atol=1e-5 * scale)


def test_forward_center_refuses_a_short_halo():
    net = DeconvNet(ndim=2, depth=2, base_channels=4)
    grid = net.config.grid
    with pytest.raises(ValueError, match="receptive-field"):
        net.forward_center(torch.zeros(1, 1, 64, 64), net.halo - grid)
    with pytest.raises(ValueError, match="grid"):
        net.forward_center(torch.zeros(1, 1, 62, 64), net.halo)


@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 2, 2)])
def test_inference_pooling_by_strided_maxima_equals_max_pool3d(factors):
    from napari_deconvnet.core.model import _strided_max

    torch.manual_seed(0)
    # a cropped channels-last tile, as forward_center pools it; odd sizes
    x = torch.randn(2, 5, 10, 13, 15).contiguous(memory_format=torch.channels_last_3d)
    x = x[:, :, 1:, 2:, 1:]
    x[0, 1, 3, 4, 5] = float("nan")
    expected = torch.nn.functional.max_pool3d(x, factors)
    got = _strided_max(x, factors)
    assert got.shape == expected.shape
    assert torch.equal(torch.isnan(got), torch.isnan(expected))
    assert torch.equal(got.nan_to_num(), expected.nan_to_num())
    # the network gives the same output with and without it (training pools as before)
    net = DeconvNet(ndim=3, depth=2, base_channels=4, planar_levels=int(factors[0] == 1)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.2)
    volume = torch.rand(1, 1, 12, 20, 20)
    with torch.no_grad():
        inferred = net(volume)
    assert torch.equal(inferred, net(volume).detach())


@pytest.mark.parametrize(
    "config, size",
    [
        (dict(ndim=2, depth=2, base_channels=6, in_channels=2, residual_input=1), (37, 41)),
        (dict(ndim=3, depth=2, base_channels=4, planar_levels=1), (9, 20, 22)),
        (dict(ndim=2, depth=3, base_channels=4, pool="blur", top_skip=False), (40, 24)),
    ],
)
def test_widened_network_computes_what_the_narrow_one_did_then_learns(config, size):
    from napari_deconvnet.core.model import widen_channels

    torch.manual_seed(0)
    narrow = DeconvNet(**config)
    for p in narrow.parameters():  # a trained-looking network: no zero head
        torch.nn.init.normal_(p, std=0.2)
    wide = DeconvNet(**{**config, "base_channels": config["base_channels"] + 4})
    wide.load_state_dict(widen_channels(narrow.state_dict(), wide))
    # float64: the wider convolutions sum zeros in another order (and oneDNN
    # picks other kernels by thread count), so equality is up to rounding
    narrow, wide = narrow.double(), wide.double()
    x = torch.randn(2, config.get("in_channels", 1), *size, dtype=torch.float64)
    with torch.no_grad():
        before = wide(x)
        torch.testing.assert_close(before, narrow(x), rtol=1e-12, atol=1e-12)
        assert before.abs().max() > 1  # not a trivially zero output
    # the zero weights that read the new channels have gradients: one step changes the output
    head = wide.head.weight
    loss = (wide(x) - torch.zeros_like(before)).square().mean()
    loss.backward()
    n_old = config["base_channels"]
    assert head.grad[:, n_old:].abs().sum() > 0
    torch.optim.SGD(wide.parameters(), lr=1e-3).step()
    with torch.no_grad():
        assert not torch.equal(wide(x), before)


def test_widen_channels_refuses_what_it_cannot_keep():
    from napari_deconvnet.core.model import widen_channels

    narrow = DeconvNet(base_channels=4, depth=2)
    with pytest.raises(ValueError, match="different layers"):
        widen_channels(narrow.state_dict(), DeconvNet(base_channels=8, depth=3))
    with pytest.raises(ValueError, match="only more feature channels"):
        widen_channels(DeconvNet(base_channels=8).state_dict(), DeconvNet(base_channels=4))
    with pytest.raises(ValueError, match="skips by addition"):
        widen_channels(narrow.state_dict(), DeconvNet(base_channels=8, skip="concat"))


@pytest.mark.parametrize("ndim", [2, 3])
def test_a_depth_0_network_restores_tiled_as_untiled(ndim):
    """Session 70: depth 0 (one level, no pooling) was accepted and trained, but every
    restore failed with an IndexError in forward_center's plan."""
    torch.manual_seed(0)
    net = dn.DeconvNet(ndim=ndim, depth=0, base_channels=4)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    shape = (64, 64) if ndim == 2 else (8, 32, 32)
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    whole = dn.restore(image, net, device="cpu")
    assert np.abs(whole - image).max() > 1e-3  # (the network does something)
    x = torch.from_numpy(image)[None, None]
    halo = 4
    padded = torch.nn.functional.pad(x, (halo,) * (2 * ndim), mode="reflect")
    with torch.no_grad():
        centre = net.forward_center(padded, halo)
        np.testing.assert_allclose(centre, net(padded)[(..., *[slice(halo, -halo)] * ndim)],
                                   atol=1e-6)  # fmt: skip
    tiled = dn.restore(image, net, device="cpu", tile=16 if ndim == 2 else 8)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(kernel_size=3.0), TypeError, "kernel_size must be an integer, got 3.0"),
        (dict(kernel_size="3"), TypeError, "kernel_size must be an integer"),
        (dict(kernel_size=True), TypeError, "kernel_size must be an integer, got True"),
        (dict(depth=True), TypeError, "depth must be an integer, got True"),
        (dict(ndim=2.0), TypeError, "ndim must be an integer, got 2.0"),
        (dict(kernel_size=100001), ValueError, r"kernel_size 100001 gives the widest convolution"),
        (dict(activation=["relu"]), ValueError, r"activation \['relu'\] is unknown"),
        (dict(normalization={"method": "fixed", "scale": 2.0, "ofset": 100.0}), ValueError,
         r"'fixed' takes offset, scale; got unknown key\(s\) \['ofset'\]"),
        (dict(normalization={"method": "none", "low": 1}), ValueError, "takes nothing else"),
    ],
)  # fmt: skip
def test_configuration_values_of_the_wrong_type_are_named(kwargs, error, match):
    """Session 70: 3.0 and "3" gave raw torch or comparison errors, True was a kernel or
    a depth of 1, a kernel of 100001 asked for 640 GB, a misspelt normalization key was
    kept and ignored (the offset became 0)."""
    with pytest.raises(error, match=match):
        DeconvNetConfig(**kwargs)


def test_numpy_integers_are_taken_as_ints_and_save(tmp_path):
    """Session 70: np.int64 depth was refused as "not an integer"; np.int64 kernel_size
    was taken, trained, and then failed to save (not JSON-serialisable)."""
    config = DeconvNetConfig(depth=np.int64(2), kernel_size=np.int64(5), base_channels=np.int32(4))
    assert type(DeconvNetConfig(ndim=3, planar_levels=np.int64(1)).planar_levels) is int
    assert (config.depth, config.kernel_size, config.base_channels) == (2, 5, 4)
    assert all(type(v) is int for v in (config.depth, config.kernel_size, config.base_channels))
    net = DeconvNet(config)
    dn.save_model(net, tmp_path / "m.safetensors")
    assert dn.load_model(tmp_path / "m.safetensors").config.kernel_size == 5


def test_files_of_earlier_releases_still_read():
    """Review of session 70: the stricter checks of a new configuration must not refuse
    a model file an earlier release wrote: a kernel of 17, a count stored as true, a
    normalisation key its method never read (compute_normalization's "colour")."""
    assert DeconvNetConfig(kernel_size=17).kernel_size == 17
    old = {**DeconvNetConfig().to_dict(), "depth": True,
           "normalization": {"method": "fixed", "offset": 0.0, "scale": 100.0, "colour": "opponent"}}  # fmt: skip
    config = DeconvNetConfig.from_dict(old, stored=True)
    assert config.depth == 1 and type(config.depth) is int
    assert config.normalization == {"method": "fixed", "offset": 0.0, "scale": 100.0}
    with pytest.raises(TypeError, match="depth must be an integer, got True"):
        DeconvNetConfig.from_dict(old)  # a new configuration (e.g. dn.train's network=)


def test_a_resume_record_of_an_earlier_release_compares_as_read():
    """Review of session 70: an autosave whose network normalisation held a key its
    method never read (an earlier release kept it) could not be resumed: the record was
    compared raw with the configuration, which now drops the key."""
    from napari_deconvnet.core.model import stored_network

    norm = {"method": "fixed", "offset": 0.0, "scale": 100.0}
    config = DeconvNetConfig(normalization=norm)
    record = {**config.to_dict(), "normalization": {**norm, "colour": "opponent"}}
    assert stored_network(record) == config.to_dict()
    assert stored_network({"depth": "x"}) == {"depth": "x"}  # no configuration: as it is
