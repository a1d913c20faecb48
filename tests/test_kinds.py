"""Model kinds (core/kinds.py): chosen from metadata in one place, used by every restore path."""

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core.kinds import (
    KINDS,
    ImpulseSwitched,
    ModelKind,
    Plain,
    PSFConditioned,
    kind_of,
    register_kind,
    unregister_kind,
)
from napari_deconvnet.core.model_specs import shipped_model_specs
from napari_deconvnet.core.persistence import list_models, load_model, model_info


@pytest.mark.parametrize(
    ("name", "kind", "needs_psf"),
    [
        ("denoise-2d", "plain", False),
        ("denoise-3d", "plain", False),
        ("deconv-2d", "psf-conditioned", True),
        ("deconv-3d", "psf-conditioned", True),
        ("salt-and-pepper", "impulse-switched", False),
        ("denoise-2d-nl", "noise-conditioned", False),
    ],
)
def test_each_shipped_model_gets_its_kind(name, kind, needs_psf):
    net = load_model(name)
    chosen = kind_of(net)
    assert chosen.name == kind
    assert chosen.needs_psf is needs_psf
    # the kind's extra channels are what the network takes beyond the image
    assert net.config.in_channels - chosen.extra_channels == net.config.out_channels
    # the header alone (no weights) gives the same kind; the specs agree
    assert kind_of(model_info(name)["metadata"]).name == kind
    assert shipped_model_specs()[name].needs_psf is needs_psf


def test_every_shipped_model_has_a_kind():
    assert {kind_of(model_info(n)["metadata"]).name for n in list_models()} == {
        "plain",
        "psf-conditioned",
        "impulse-switched",
        "noise-conditioned",
    }


def test_flags_choose_the_built_in_kinds():
    assert type(kind_of({})) is Plain
    assert type(kind_of({"needs_psf": True})) is PSFConditioned
    switched = kind_of({"impulse_switch": True})
    assert type(switched) is ImpulseSwitched
    assert (switched.extra_channels, switched.switch) == (0, True)
    training = kind_of({"conditioning": {"method": "switching-median"}})
    assert (training.extra_channels, training.switch) == (1, False)
    assert kind_of({"kind": "plain", "needs_psf": True}).name == "plain"


def test_unknown_kind_and_bad_registrations_are_refused():
    with pytest.raises(ValueError, match="kind 'nope' is unknown"):
        kind_of({"kind": "nope"})
    with pytest.raises(TypeError, match="ModelKind subclass"):
        register_kind(dict)

    class Clash(ModelKind):
        name = "plain"

    with pytest.raises(ValueError, match="registered already"):
        register_kind(Clash)
    with pytest.raises(ValueError, match="built-in"):
        unregister_kind("plain")


def test_unknown_conditioning_method_is_refused(random_net):
    net = random_net(in_channels=2, out_channels=1)
    net.metadata = {"name": "odd", "needs_psf": True, "conditioning": {"method": "magic"}}
    with pytest.raises(ValueError, match="unknown conditioning method 'magic'"):
        dn.restore(np.ones((32, 32), np.float32), net, psf="gaussian")


class _Squared(ModelKind):
    """A test kind: the image squared as a second channel; the result capped at the median."""

    name = "test-squared"
    extra_channels = 1

    def input_statistics(self, images):
        return [{}] * images.shape[0]

    def input_channels(self, images, kernel, *, device="cpu", statistics=None):
        return np.asarray(images, np.float32) ** 2

    def output_statistics(self, image):
        # a whole-image statistic: lazy and streamed blocks must get this one
        return {"high": float(np.median(np.asarray(image)))}

    def postprocess(self, x, y, values):
        np.minimum(y, values["high"], out=y)


@pytest.fixture
def squared_kind():
    register_kind(_Squared)
    yield _Squared
    unregister_kind(_Squared.name)
    assert _Squared.name not in KINDS


def test_a_kind_registered_here_is_chosen_and_used_everywhere(squared_kind, random_net, tmp_path):
    net = random_net(in_channels=2, out_channels=1)
    net.metadata = {"name": "squared", "kind": "test-squared"}
    assert isinstance(kind_of(net), squared_kind)
    x = np.random.default_rng(0).random((40, 48)).astype(np.float32) * 2 + 1
    # by hand: both channels normalised with the image's statistics, the
    # reflect-padded network, denormalised, then the kind's clip
    lo, hi = np.percentile(x, [0.5, 99.5])
    halo = net.halo
    channels = np.stack([(x - lo) / (hi - lo), (x**2 - lo) / (hi - lo)])
    xp = np.pad(channels, ((0, 0), (halo, halo), (halo, halo)), mode="reflect")
    with torch.inference_mode():
        y = net(torch.from_numpy(xp.astype(np.float32))[None])[0, 0].numpy()
    expected = np.minimum(y[halo:-halo, halo:-halo] * (hi - lo) + lo, np.median(x))
    assert 0.1 < (expected == np.median(x)).mean() < 0.9  # the post-processing matters
    eager = dn.restore(x, net, tile=16)
    np.testing.assert_allclose(eager, expected, rtol=0, atol=1e-4 * np.ptp(expected))
    da = pytest.importorskip("dask.array")
    lazy = np.asarray(dn.restore(da.from_array(x, chunks=16), net))
    np.testing.assert_allclose(lazy, eager, rtol=0, atol=1e-4 * np.ptp(eager))
    pytest.importorskip("zarr")
    import zarr

    path = dn.restore_to_zarr(x, tmp_path / "out.ome.zarr", net, chunks=16, client=False)
    streamed = zarr.open_array(str(tmp_path / "out.ome.zarr" / "0"), mode="r")[:]
    assert path.endswith("out.ome.zarr")
    np.testing.assert_allclose(streamed, eager, rtol=0, atol=1e-4 * np.ptp(eager))


def test_salt_and_pepper_model_says_when_it_finds_no_impulses():
    """Outliers that are not at the extremes (hot pixels) are not its impulses: it says so."""
    import warnings

    from skimage import data

    import napari_deconvnet as dn

    clean = data.brick()[:96, :96].astype(np.float32) / 255
    rng = np.random.default_rng(0)
    hot = clean.copy()
    mask = rng.random(hot.shape) < 0.05
    hot[mask] = rng.uniform(0.2, 0.9, int(mask.sum()))  # never the extremes
    with pytest.warns(RuntimeWarning, match="found almost no impulses: 2 of 9216"):
        out = dn.restore(hot, "salt-and-pepper", precision="float32")
    changed = out != hot
    assert changed.sum() == 2  # only the minimum and the maximum pixel
    speckled = np.asarray(dn.synthesize(clean, "salt-and-pepper", amount=0.05, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fixed = dn.restore(speckled, "salt-and-pepper", precision="float32")
    assert dn.psnr(clean, fixed, data_range=1) > dn.psnr(clean, speckled, data_range=1) + 10


def test_salt_and_pepper_fill_in_stays_between_the_impulse_values():
    """The network could overshoot the image's extremes (65,951 on a uint16 image); an
    impulse's true value lies between them, like every pixel's."""
    from skimage import data

    import napari_deconvnet as dn

    clean = data.camera()[100:228, 100:228].astype(np.float32) / 255
    speckled = dn.synthesize(clean, "salt-and-pepper", amount=0.3, seed=1)
    counts = np.rint(np.asarray(speckled) * 65535).astype(np.uint16)
    out = dn.restore(counts, "salt-and-pepper", precision="float32")
    # synthesize puts the impulses at the image's own extremes: 771 (3/255) and 65535
    low, high = int(counts.min()), int(counts.max())
    assert (low, high) == (771, 65535)
    assert out.min() >= low and out.max() <= high
    impulses = (counts == low) | (counts == high)
    np.testing.assert_array_equal(out[~impulses], counts[~impulses])
    assert dn.psnr(clean, out / 65535, data_range=1) > 30
