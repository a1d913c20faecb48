"""dn.restore with PSF-conditioned deconvolution models (core/conditioning.py).

Small random models stand in for the shipped ones: what is checked here is the
input the network receives, tiling, and the refusals.
"""

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core.classical import estimate_balance
from napari_deconvnet.core.conditioning import conditioning_channels, needs_psf


def _deconv_net(ndim=2, scale=1.0, seed=0):
    torch.manual_seed(seed)
    net = dn.DeconvNet(ndim=ndim, in_channels=2, out_channels=1, depth=2, base_channels=8)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    net.metadata = {
        "name": f"deconv-test-{ndim}d",
        "needs_psf": True,
        "conditioning": {"method": "wiener", "balance_scale": scale},
    }
    return net.eval()


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    clean = np.zeros((48, 56), np.float32)
    clean[rng.integers(0, 48, 30), rng.integers(0, 56, 30)] = 1
    blurred = dn.core.psf.blur(clean, dn.make_psf("gaussian", shape=(9, 9), sigma=1.5))
    return blurred + rng.normal(0, 0.01, blurred.shape).astype(np.float32)


def _reference(net, image, psf):
    """The network input built by hand: [image, Wiener(image)], normalised alike.

    Tiled restore sees a reflected image around every tile, so the reference
    network call gets the input reflected by more than its receptive field.
    """
    lo, hi = np.percentile(image.astype(np.float64), [0.5, 99.5])
    scale = hi - lo
    balance = net.metadata["conditioning"]["balance_scale"] * estimate_balance(
        image, grouped=False
    )
    pre = dn.wiener(image, psf, balance)
    x = np.stack([(image - lo) / scale, (pre - lo) / scale])[None].astype(np.float32)
    m = 40
    x = np.pad(x, [(0, 0), (0, 0), (m, m), (m, m)], mode="reflect")
    fixed = dn.DeconvNet(net.config, normalization={"method": "none"})
    fixed.load_state_dict(net.state_dict())
    with torch.no_grad():
        y = fixed(torch.from_numpy(x))[0, 0, m:-m, m:-m].numpy()
    return y * scale + lo


def test_input_is_the_image_and_its_wiener_deconvolution(image):
    net = _deconv_net(scale=0.5)
    psf = dn.make_psf("gaussian", shape=(9, 9), sigma=1.5)
    out = dn.restore(image, net, psf=psf)
    ref = _reference(net, image, psf)
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.ptp(ref))


def test_psf_as_name_dict_or_array_gives_the_same_result(image):
    net = _deconv_net()
    array = dn.make_psf("gaussian", shape=(13, 13), sigma=2.0)
    a = dn.restore(image, net, psf=array)
    b = dn.restore(image, net, psf={"kind": "gaussian", "sigma": 2.0, "shape": (13, 13)})
    c = dn.restore(image, net, psf=array * 7.0)  # normalised to sum 1
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, c, atol=1e-5)
    # the PSF matters: another PSF gives another result
    d = dn.restore(image, net, psf={"kind": "gaussian", "sigma": 0.7})
    assert np.abs(a - d).max() > 1e-3


def test_tiled_equals_untiled(image):
    net = _deconv_net()
    whole = dn.restore(image, net, psf="gaussian")
    tiled = dn.restore(image, net, psf="gaussian", tile=16)
    np.testing.assert_allclose(tiled, whole, atol=1e-5 * np.ptp(whole))


def test_frames_are_deconvolved_independently(image):
    net = _deconv_net()
    # fixed intensity statistics: percentiles of the whole stack differ slightly
    net.config.normalization = {"method": "fixed", "offset": 0.0, "scale": 1.0}
    stack = np.stack([image, image[::-1].copy()])
    out = dn.restore(stack, net, psf="gaussian", axes="TYX")
    # batches of one or two tiles round differently: a tolerance relative to the range
    atol = 1e-5 * np.ptp(out)
    np.testing.assert_allclose(out[0], dn.restore(image, net, psf="gaussian"), atol=atol)
    flipped = image[::-1].copy()
    np.testing.assert_allclose(out[1], dn.restore(flipped, net, psf="gaussian"), atol=atol)


def test_3d_model_with_3d_psf():
    net = _deconv_net(ndim=3)
    rng = np.random.default_rng(1)
    vol = rng.random((16, 24, 24)).astype(np.float32)
    psf = dn.make_psf("gaussian", shape=(5, 7, 7), sigma=(1.5, 1.0, 1.0))
    out = dn.restore(vol, net, psf=psf)
    assert out.shape == vol.shape
    pre = conditioning_channels(vol[None], dn.core.psf.as_psf(psf), net)[0]
    np.testing.assert_allclose(pre, dn.wiener(vol, psf, estimate_balance(vol)), atol=1e-5)


@pytest.mark.parametrize(
    ("psf", "message"),
    [
        (None, "needs the image's PSF"),
        (np.full((3, 3), np.nan), "NaN"),
        (np.zeros((5, 5)), "sums to zero"),
        (np.array([[1.0, -1.0], [0.5, -0.5]]), "negative values"),
        (np.ones((64, 3)), "bigger than the image"),
        (np.ones((3, 3, 3)), "dimensions"),
        ("no-such-psf", "no-such-psf"),
    ],
)
def test_bad_psf_is_refused_with_a_clear_message(image, psf, message):
    with pytest.raises(ValueError, match=message):
        dn.restore(image, _deconv_net(), psf=psf)


def test_3d_model_refuses_a_2d_psf():
    vol = np.random.default_rng(0).random((16, 24, 24)).astype(np.float32)
    with pytest.raises(ValueError, match="needs a 3D PSF"):
        dn.restore(vol, _deconv_net(ndim=3), psf=np.ones((3, 3)))


def test_denoiser_refuses_a_psf(image, random_net):
    net = random_net()
    assert not needs_psf(net)
    with pytest.raises(ValueError, match="not a deconvolution model"):
        dn.restore(image, net, psf="gaussian")


def test_dask_input_is_restored_block_by_block_for_deconvolution(image):
    da = pytest.importorskip("dask.array")
    net = _deconv_net()
    lazy = dn.restore(da.from_array(image, chunks=24), net, psf="gaussian")
    whole = dn.restore(image, net, psf="gaussian")
    np.testing.assert_allclose(lazy.compute(), whole, atol=1e-4 * np.ptp(whole))


def test_saved_deconvolution_model_keeps_its_conditioning(image, tmp_path):
    net = _deconv_net(scale=0.25)
    path = tmp_path / "deconv.safetensors"
    dn.save_model(net, path)
    loaded = dn.load_model(path)
    assert needs_psf(loaded)
    assert loaded.metadata["conditioning"] == {"method": "wiener", "balance_scale": 0.25}
    np.testing.assert_allclose(
        dn.restore(image, path, psf="gaussian"), dn.restore(image, net, psf="gaussian"), atol=1e-6
    )


def test_residual_on_the_wiener_channel():
    net = dn.DeconvNet(ndim=2, in_channels=2, out_channels=1, depth=1, residual_input=1)
    x = torch.randn(1, 2, 16, 16)
    with torch.no_grad():
        # a fresh residual network starts as the identity on its residual channel
        np.testing.assert_allclose(net(x)[:, 0].numpy(), x[:, 1].numpy(), atol=1e-6)
    plain = dn.DeconvNet(ndim=2, in_channels=2, out_channels=1, depth=1)
    assert not plain.residual
    with pytest.raises(ValueError, match="residual_input"):
        dn.DeconvNetConfig(in_channels=2, out_channels=1, residual_input=2)


def test_richardson_lucy_conditioning(image):
    net = _deconv_net()
    net.metadata["conditioning"] = {"method": "richardson-lucy", "iterations": 7}
    psf = dn.make_psf("gaussian", shape=(9, 9), sigma=1.5)
    offset = image + 3.0  # RL runs on the image shifted to a zero minimum
    pre = conditioning_channels(offset[None], dn.core.psf.as_psf(psf), net)[0]
    low = offset.min()
    expected = dn.richardson_lucy(offset - low, psf, 7) + low
    np.testing.assert_allclose(pre, expected, rtol=1e-5, atol=1e-5)
    out = dn.restore(offset, net, psf=psf)
    assert out.shape == image.shape and np.isfinite(out).all()
    net.metadata["conditioning"] = {"method": "magic"}
    with pytest.raises(ValueError, match="unknown conditioning method 'magic'"):
        dn.restore(offset, net, psf=psf)


def test_switching_median_conditioning_and_impulse_switch():
    # a fresh residual network outputs its conditioning channel: here the
    # switching median; the impulse switch then keeps every clean pixel exactly
    net = dn.DeconvNet(ndim=2, in_channels=2, out_channels=1, depth=1, residual_input=1)
    net.metadata = {
        "name": "sp-test",
        "conditioning": {"method": "switching-median", "largest": 7},
        "impulse_switch": True,
    }
    rng = np.random.default_rng(2)
    clean = rng.uniform(0.2, 0.8, (32, 40)).astype(np.float32)
    noisy = dn.synthesize(clean, "salt-and-pepper", amount=0.2, low=0.0, high=1.0, seed=3)
    out = dn.restore(noisy, net)
    np.testing.assert_allclose(out, dn.denoise_switching_median(noisy), atol=1e-5)
    kept = (noisy > 0) & (noisy < 1)
    np.testing.assert_array_equal(out[kept], noisy[kept])
    with pytest.raises(ValueError, match="not a deconvolution model"):
        dn.restore(noisy, net, psf="gaussian")
    da = pytest.importorskip("dask.array")
    lazy = dn.restore(da.from_array(noisy, chunks=16), net)
    np.testing.assert_allclose(lazy.compute(), out, atol=1e-5)


def test_impulse_switch_on_a_plain_model(random_net):
    net = random_net()
    flat = np.full((24, 24), 0.5, np.float32)
    noisy = dn.synthesize(flat, "salt-and-pepper", amount=0.1, low=0.0, high=1.0, seed=0)
    plain = dn.restore(noisy, net)
    net.metadata["impulse_switch"] = True
    switched = dn.restore(noisy, net)
    impulses = (noisy == 0) | (noisy == 1)
    np.testing.assert_array_equal(switched[~impulses], noisy[~impulses])
    # the impulses take the network's estimate, kept between the impulse levels; those
    # lie half a unit beyond data of one value, so restore moves them to one float32 step
    # beyond it first (core.impulse_gap): the fill-ins are that value, to a step
    assert (plain[impulses] > 1).any()  # (this random network overshoots)
    assert np.abs(switched[impulses] - 0.5).max() <= np.spacing(np.float32(0.5))
    lazy = dn.restore(pytest.importorskip("dask.array").from_array(noisy, chunks=12), net)
    np.testing.assert_array_equal(np.asarray(lazy)[~impulses], noisy[~impulses])


def test_impulses_are_the_whole_stacks_extremes_for_channel_and_switch():
    # one definition of an impulse (the whole stack's minimum and maximum) in
    # the switching-median channel and in the impulse switch: a clean plane whose
    # own extremes are not the stack's keeps every pixel in both
    net = dn.DeconvNet(ndim=2, in_channels=2, out_channels=1, depth=1, residual_input=1)
    net.metadata = {
        "name": "sp-test",
        "conditioning": {"method": "switching-median", "largest": 7},
        "impulse_switch": True,
    }
    rng = np.random.default_rng(4)
    clean = rng.uniform(0.3, 0.7, (2, 32, 40)).astype(np.float32)
    noisy = clean.copy()
    noisy[0] = dn.synthesize(clean[0], "salt-and-pepper", amount=0.2, low=0.0, high=1.0, seed=5)
    channel = conditioning_channels(noisy, None, net)
    np.testing.assert_array_equal(channel[1], noisy[1])
    np.testing.assert_allclose(channel[0], dn.denoise_switching_median(noisy[0], 0.0, 1.0))
    out = dn.restore(noisy, net, axes="ZYX")
    np.testing.assert_array_equal(out[1], noisy[1])
    # impulses at 0 and 1 lie 0.75 of the data's range (0.3-0.7) beyond it: restore moves
    # them to just beyond the data first (core.impulse_gap), so the fill-ins are the
    # switching median of the image so moved, within the data's range
    from napari_deconvnet.core.impulse_gap import across_gap, impulse_gap

    gap = impulse_gap(noisy, net)
    moved = across_gap(noisy, gap)[0]
    fill = dn.denoise_switching_median(moved, gap["pepper"], gap["salt"])
    np.testing.assert_allclose(out[0], fill, atol=1e-5)
    assert out[0].min() >= gap["pepper"] and out[0].max() <= gap["salt"]


@pytest.mark.parametrize("psf", ["gaussian", {"kind": "gaussian", "sigma": 1.5}])
def test_a_named_psf_is_made_in_the_models_dimensions(psf):
    """README, Big data: ``model="deconv-3d", psf="gaussian"``. A named PSF was
    made 2D (make_psf's default) and refused by the 3D model."""
    x = np.random.default_rng(0).random((24, 40, 40)).astype(np.float32)
    spec = {"kind": psf} if isinstance(psf, str) else dict(psf)
    kind = spec.pop("kind")
    explicit = dn.make_psf(kind, ndim=3, **spec)
    assert explicit.ndim == 3
    np.testing.assert_array_equal(
        dn.restore(x, "deconv-3d", psf=psf), dn.restore(x, "deconv-3d", psf=explicit)
    )
    # a 2D model keeps 2D PSFs, and a dict's own shape still decides
    assert dn.restore(x[0], "deconv-2d", psf=psf).shape == (40, 40)
    with pytest.raises(ValueError, match="needs a 3D PSF"):
        dn.restore(x, "deconv-3d", psf={"kind": "gaussian", "shape": (9, 9)})


def test_sparse_counts_get_a_wiener_balance_from_their_noise():
    # mostly zeros (5 photons on cells): the plain median of the finest coefficients
    # is exactly 0, the balance sat at its floor, the Wiener channel was amplified
    # noise, and deconv-3d came out 12 dB below its own input (24.07 -> 11.30 dB)
    from scipy import ndimage

    from napari_deconvnet.core import phantoms
    from napari_deconvnet.core.kinds import kind_of

    psf = dn.make_psf("gaussian", sigma=(2, 1.5, 1.5), shape=(15, 13, 13))
    clean = phantoms.cells_3d(np.random.default_rng(7), (16, 64, 64)).astype(float) * 5
    blurred = ndimage.convolve(clean, psf.astype(float), mode="reflect")
    counts = np.random.default_rng(1).poisson(blurred).astype(np.float32)
    assert estimate_balance(counts, grouped=False) == 1e-4  # the floor
    net = dn.load_model("deconv-3d")
    balance = kind_of(net).input_statistics(counts[None])[0]["balance"]
    scale = net.metadata["conditioning"].get("balance_scale", 1.0)
    assert balance == pytest.approx(scale * estimate_balance(counts, grouped=True))
    out = dn.restore(counts, net, psf=psf, device="cpu")
    assert dn.psnr(clean, out, data_range=5.0) > dn.psnr(clean, counts, data_range=5.0) + 8


def test_a_line_psf_and_a_one_plane_volume_psf_restore_a_plane_with_deconv_2d():
    # the docstring promised deconv-2d for a 1D PSF, which then refused it; a (1, Y, X)
    # PSF picked deconv-3d, whose refusal advised deconv-2d, which refused it too
    image = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    plane = dn.make_psf("gaussian", sigma=1.5, shape=(9, 9))
    line = plane[4] / plane[4].sum()
    np.testing.assert_array_equal(
        dn.restore(image, psf=line, device="cpu"), dn.restore(image, psf=line[None], device="cpu")
    )
    want = dn.restore(image, "deconv-2d", psf=plane, device="cpu")
    for model in ("default", "deconv-2d"):
        for psf in (plane[None], plane[None].tolist()):  # (a nested list failed raw)
            got = dn.restore(image, model, psf=psf, device="cpu")
            np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"got shape \(3, 9, 9\)"):
        dn.restore(image, "deconv-2d", psf=np.stack([plane] * 3).tolist(), device="cpu")
    # on a volume the default stays the PSF's own dimensions: deconv-3d
    from napari_deconvnet.core.restoration import restore_arguments

    volume = np.random.default_rng(2).random((8, 32, 32)).astype(np.float32)
    assert restore_arguments(volume, "default", plane[None])[1] == "deconv-3d"
    assert restore_arguments(image, "default", plane[None])[1] == "deconv-2d"


def test_the_command_line_deconvolves_a_plane_with_a_one_plane_psf_file(tmp_path):
    # it chose deconv-3d for a (1, Y, X) PSF file and then refused the plane
    tifffile = pytest.importorskip("tifffile")
    from napari_deconvnet.cli import main

    image = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    plane = dn.make_psf("gaussian", sigma=1.5, shape=(9, 9)).astype(np.float32)
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "psf.tif", plane[None])
    args = ["restore", str(tmp_path / "img.tif"), "--psf", str(tmp_path / "psf.tif")]
    assert main([*args, "-o", str(tmp_path / "out.tif"), "--device", "cpu", "--quiet"]) == 0
    want = dn.restore(image, "deconv-2d", psf=plane, device="cpu")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "out.tif"), want, atol=1e-6)
