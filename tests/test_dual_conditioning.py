"""Deconvolution models conditioned on both Wiener and Richardson-Lucy (two extra channels).

``{"method": "wiener+richardson-lucy", "balance_scale": s, "iterations": n}``
gives the network the image, its Wiener and its Richardson-Lucy
pre-deconvolutions. Every path must build the same three channels: eager,
lazy and streamed restores, training batches, adaptation, bioimage.io export.
A one-channel model widened with zero weights for the new channel restores
exactly as it did.
"""

import copy
from dataclasses import asdict as dataclasses_asdict

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core.classical import estimate_balance
from napari_deconvnet.core.kinds import WIENER_AND_RL, kind_of
from napari_deconvnet.core.model import widen_input
from napari_deconvnet.core.normalization import percentiles
from napari_deconvnet.core.psf import as_psf, blur
from napari_deconvnet.core.trainset import PSFChannel

PSF = dn.make_psf("gaussian", shape=(9, 9), sigma=1.5)
DUAL = {"method": WIENER_AND_RL, "balance_scale": 0.5, "iterations": 6}


def _random_net(in_channels, seed=0, scale=0.2):
    net = dn.DeconvNet(
        ndim=2, in_channels=in_channels, out_channels=1, depth=2, base_channels=8, residual_input=1
    )
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return net.eval()


def _dual_net(seed=0):
    net = _random_net(3, seed)
    net.metadata = {"name": "dual-test", "needs_psf": True, "conditioning": dict(DUAL)}
    return net


@pytest.fixture
def image():
    rng = np.random.default_rng(3)
    clean = np.zeros((56, 72), np.float32)
    clean[rng.integers(0, 56, 40), rng.integers(0, 72, 40)] = 1.0
    clean += 0.2
    noisy = rng.poisson(200 * blur(clean, PSF)) / 200.0
    return noisy.astype(np.float32) + 5.0  # an offset: RL runs on the image shifted to 0


def test_the_channels_are_wiener_then_richardson_lucy(image):
    net = _dual_net()
    kind = kind_of(net)
    assert kind.extra_channels == 2
    kernel = as_psf(PSF, 2)
    stats = kind.input_statistics(image[None])
    assert set(stats[0]) == {"balance", "low"}
    stack = kind.channel_stack(image[None], kernel, statistics=stats)
    assert stack.shape == (1, 2, *image.shape)
    balance = 0.5 * estimate_balance(image, grouped=False)  # as the models were trained
    np.testing.assert_allclose(stack[0, 0], dn.wiener(image, kernel, balance), atol=1e-5)
    low = float(image.min())
    expected = dn.richardson_lucy(image - low, kernel, 6) + low
    np.testing.assert_allclose(stack[0, 1], expected, rtol=1e-5, atol=1e-5)
    # the two channels differ: the network gets two views, not one twice
    assert np.abs(stack[0, 0] - stack[0, 1]).max() > 0.05 * np.ptp(image)
    # the margin covers both filters
    one = kind_of({"needs_psf": True, "conditioning": {"method": "richardson-lucy"}})
    wiener = kind_of({"needs_psf": True, "conditioning": {"method": "wiener"}})
    margin = kind.input_margin(kernel, 2, stats)
    for other in (one, wiener):
        other_stats = [{"balance": stats[0]["balance"], "low": low}]
        assert all(
            a >= b for a, b in zip(margin, other.input_margin(kernel, 2, other_stats), strict=True)
        )
    # a single-channel kind keeps its (N, *spatial) channel; channel_stack adds the axis
    assert one.extra_channels == 1
    assert one.channel_stack(image[None], kernel).shape == (1, 1, *image.shape)


def test_the_network_input_is_built_by_hand_from_the_three_channels(image):
    net = _dual_net()
    kernel = as_psf(PSF, 2)
    stack = kind_of(net).channel_stack(image[None], kernel)[0]
    # the models' percentiles: these photon counts (divided by 200, plus 5) lie on a
    # lattice, so they are taken dequantised (core.normalization.percentiles)
    lo, hi = percentiles(image.astype(np.float64), [0.5, 99.5])
    x = (np.concatenate([image[None], stack]) - lo) / (hi - lo)
    m = 40
    x = np.pad(x, [(0, 0), (m, m), (m, m)], mode="reflect")[None].astype(np.float32)
    fixed = dn.DeconvNet(net.config, normalization={"method": "none"})
    fixed.load_state_dict(net.state_dict())
    with torch.no_grad():
        expected = fixed(torch.from_numpy(x))[0, 0, m:-m, m:-m].numpy() * (hi - lo) + lo
    got = dn.restore(image, net, psf=PSF, precision="float32", tile=None)
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.ptp(expected))


def test_a_widened_one_channel_model_restores_exactly_as_before(image):
    """The training script starts a dual model from the Wiener one: zero weights, same output."""
    single = _random_net(2, seed=4)
    single.metadata = {
        "name": "wiener-test",
        "needs_psf": True,
        "conditioning": {"method": "wiener", "balance_scale": 0.5},
    }
    dual = _random_net(3, seed=9)
    dual.load_state_dict(widen_input(single.state_dict(), dual))
    dual.metadata = {**copy.deepcopy(single.metadata), "conditioning": dict(DUAL)}
    a = dn.restore(image, single, psf=PSF, precision="float32")
    b = dn.restore(image, dual, psf=PSF, precision="float32")
    np.testing.assert_allclose(b, a, atol=1e-5 * np.ptp(a))


def test_a_richardson_lucy_model_widens_with_its_channel_moved_behind_wiener(image):
    """deconv-2d corrects an RL channel: widened, its weights and residual sit on channel 2."""
    single = _random_net(2, seed=5)
    single.metadata = {
        "name": "rl-test",
        "needs_psf": True,
        "conditioning": {"method": "richardson-lucy", "iterations": 6},
    }
    config = dict(dataclasses_asdict(single.config), in_channels=3, residual_input=2)
    dual = dn.DeconvNet(**config)
    dual.load_state_dict(widen_input(single.state_dict(), dual, positions=[0, 2]))
    dual.metadata = {**copy.deepcopy(single.metadata), "conditioning": dict(DUAL)}
    a = dn.restore(image, single, psf=PSF, precision="float32")
    b = dn.restore(image, dual, psf=PSF, precision="float32")
    np.testing.assert_allclose(b, a, atol=1e-5 * np.ptp(a))
    # the default order would put the RL weights on the Wiener channel: not the same model
    wrong = dn.DeconvNet(**config)
    wrong.load_state_dict(widen_input(single.state_dict(), wrong))
    wrong.metadata = dual.metadata
    c = dn.restore(image, wrong, psf=PSF, precision="float32")
    assert np.abs(c - a).max() > 1e-2 * np.ptp(a)
    for bad in ([0], [0, 0], [0, 3], [-1, 2]):
        with pytest.raises(ValueError, match="positions"):
            widen_input(single.state_dict(), dual, positions=bad)


def test_lazy_and_streamed_restores_equal_eager(image, tmp_path):
    da = pytest.importorskip("dask.array")
    net = _dual_net(seed=2)
    eager = dn.restore(image, net, psf=PSF, precision="float32")
    lazy = dn.restore(da.from_array(image, chunks=(24, 32)), net, psf=PSF, precision="float32")
    np.testing.assert_allclose(np.asarray(lazy), eager, atol=1e-4 * np.ptp(eager))
    path = dn.save_model(net, tmp_path / "dual.safetensors")
    loaded = dn.load_model(path)
    assert loaded.metadata["conditioning"] == DUAL
    assert loaded.config.in_channels == 3
    zarr = pytest.importorskip("zarr")
    out = tmp_path / "out.zarr"
    dn.restore_to_zarr(image, out, model=path, psf=PSF, chunks=(24, 32), precision="float32")
    streamed = np.asarray(zarr.open(str(out / "0"), mode="r"))
    np.testing.assert_allclose(streamed, eager, atol=1e-4 * np.ptp(eager))


def test_training_batches_carry_both_channels_of_the_whole_image(image):
    """Fine-tuning a dual model: every patch gets restore's two channels, in order."""
    from napari_deconvnet.core.train_setup import build_trainer

    net = _dual_net()
    clean = image - 0.1
    trainer = build_trainer(
        image, clean, model=net, psf=PSF, patch_size=16, validation=0.25, augment=False
    )
    val = trainer.data.val
    x = val["x"].numpy()
    assert x.shape[1] == 3
    kind = kind_of(net)
    kernel = as_psf(PSF, 2)
    whole = kind.channel_stack(image[None], kernel, statistics=kind.input_statistics(image[None]))
    off, sc = val["offset"][0], val["scale"][0]
    for i, (_, _, origin) in enumerate(val["positions"]):
        window = tuple(slice(o, o + 16) for o in origin)
        for c in range(2):
            np.testing.assert_allclose(x[i, 1 + c] * sc + off, whole[0, c][window], atol=1e-4)
    xb, yb, _ = trainer.data.batch(4)
    assert xb.shape == (4, 3, 16, 16) and yb.shape == (4, 1, 16, 16)
    # a patch's own channels (computed with its margin) come in the same (C, ...) layout
    channel = PSFChannel(net, kernel)
    assert channel.whole(image, kind.input_statistics(image[None])[0]).shape == (2, *image.shape)


def test_fine_tuning_and_adapting_keep_the_dual_conditioning(image):
    net = _dual_net()
    result = dn.train(
        image,
        image - 0.1,
        model=net,
        psf=PSF,
        patch_size=16,
        epochs=1,
        steps_per_epoch=2,
        batch_size=2,
        device="cpu",
        preview=False,
    )
    assert result.steps == 2
    tuned = result.model
    assert tuned.config.in_channels == 3
    assert tuned.metadata["conditioning"] == DUAL
    assert np.isfinite(dn.restore(image, tuned, psf=PSF)).all()
    adapted = dn.adapt(net, image, psf=PSF, steps=2, device="cpu")
    assert adapted.metadata["conditioning"] == DUAL
    assert dn.restore(image, adapted, psf=PSF).shape == image.shape


def test_bioimageio_export_has_a_two_channel_conditioning_input(image, tmp_path):
    pytest.importorskip("onnx")
    import io
    import zipfile

    import yaml

    net = _dual_net(seed=1)
    net.metadata["description"] = "a dual-conditioned test model"
    path = dn.export_bioimageio(
        net, tmp_path / "dual.zip", test_image=image, psf=PSF, authors=["Test Author"]
    )
    with zipfile.ZipFile(path) as zf:
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
        cond = np.load(io.BytesIO(zf.read("test_conditioning.npy")))
        test_in = np.load(io.BytesIO(zf.read("test_input.npy")))
        test_out = np.load(io.BytesIO(zf.read("test_output.npy")))
        readme = zf.read("README.md").decode()
    spec = next(t for t in rdf["inputs"] if t["id"] == "conditioning")
    channel_axis = next(a for a in spec["axes"] if a["type"] == "channel")
    assert channel_axis["channel_names"] == ["wiener", "richardson-lucy"]
    assert cond.shape == (1, 2, *test_in.shape[2:])
    assert "two channels" in readme
    # the package's output is dn.restore's, mapped by the input's percentiles (the
    # format's plain ones, which restore is given: for these counts its own are
    # dequantised, see the README's bioimage.io section)
    source = test_in[0, 0]
    lo, hi = np.percentile(source.astype(np.float64), [0.5, 99.5])
    restored = dn.restore(source, net, psf=PSF, normalization={"offset": lo, "scale": hi - lo})
    expected = (restored - lo) / (hi - lo)
    assert np.abs(test_out[0, 0] - expected).max() <= 1e-4 * np.ptp(expected)
    loaded = dn.load_model(path)
    assert loaded.metadata["conditioning"] == DUAL
