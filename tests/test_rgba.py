"""An RGBA image's fourth sample is opacity, a mask: every restore path keeps it as it is."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import zarr

import napari_deconvnet as dn

KINDS = {
    "default": {},
    "salt-and-pepper": {},
    "deconv-2d": {"psf": dn.make_psf("gaussian", sigma=1.5)},
}


@pytest.fixture(scope="module")
def rgba():
    """A noisy 64x64 photo crop with a disc cut out (opacity 0 outside, 255 inside)."""
    from skimage import data

    rgb = data.coffee()[120:184, 220:284].astype(np.float32)
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 15, rgb.shape), 0, 255)
    y, x = np.mgrid[:64, :64]
    alpha = np.where((y - 32) ** 2 + (x - 30) ** 2 < 22**2, 255.0, 0.0)
    return np.concatenate([noisy, alpha[..., None]], axis=-1).astype(np.float32)


@pytest.mark.parametrize("model", list(KINDS))
def test_opacity_is_kept_and_the_colours_restored_as_without_it(rgba, model):
    out = dn.restore(rgba, model, axes="YXS", device="cpu", **KINDS[model])
    assert out.shape == rgba.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    alone = dn.restore(rgba[..., :3], model, axes="YXS", device="cpu", **KINDS[model])
    np.testing.assert_array_equal(out[..., :3], alone)
    assert np.abs(out[..., :3] - rgba[..., :3]).max() > 1  # the colours are restored


@pytest.mark.parametrize("model", list(KINDS))
def test_lazy_and_streamed_restores_keep_opacity_too(rgba, model, tmp_path):
    eager = dn.restore(rgba, model, axes="YXS", device="cpu", precision="float32", **KINDS[model])
    lazy = dn.restore(
        da.from_array(rgba, chunks=(32, 32, 4)),
        model,
        axes="YXS",
        device="cpu",
        precision="float32",
        **KINDS[model],
    )
    lazy = np.asarray(lazy)
    np.testing.assert_array_equal(lazy[..., 3], rgba[..., 3])
    np.testing.assert_allclose(lazy, eager, rtol=0, atol=1e-5 * 255)
    np.save(tmp_path / "in.npy", rgba)
    target = dn.restore_to_zarr(
        tmp_path / "in.npy",
        tmp_path / "out.ome.zarr",
        model,
        axes="YXS",
        chunks=32,
        device="cpu",
        precision="float32",
        **KINDS[model],
    )
    streamed = np.moveaxis(zarr.open(f"{target}/0", mode="r")[:], 0, -1)  # NGFF: CYX
    np.testing.assert_array_equal(streamed[..., 3], rgba[..., 3])
    np.testing.assert_allclose(streamed, eager, rtol=0, atol=1e-5 * 255)


def test_fixed_statistics_name_four_channels_and_keep_the_old_behaviour(rgba):
    # normalization= given per channel (opacity among them): every sample is restored
    stats = {"offset": [0.0, 0.0, 0.0, 0.0], "scale": [255.0, 255.0, 255.0, 255.0]}
    out = dn.restore(rgba, "salt-and-pepper", axes="YXS", device="cpu", normalization=stats)
    assert out.shape == rgba.shape


@pytest.fixture(scope="module")
def grey_alpha(rgba):
    """The same crop as grey with opacity: two samples (PNG's LA)."""
    return np.ascontiguousarray(np.stack([rgba[..., 1], rgba[..., 3]], axis=-1))


@pytest.mark.parametrize("model", list(KINDS))
def test_a_grey_image_keeps_its_opacity_on_every_path(grey_alpha, model, tmp_path):
    options = {"axes": "YXS", "device": "cpu", "precision": "float32", **KINDS[model]}
    out = dn.restore(grey_alpha, model, **options)
    assert out.shape == grey_alpha.shape
    np.testing.assert_array_equal(out[..., 1], grey_alpha[..., 1])
    alone = dn.restore(grey_alpha[..., :1], model, **options)
    np.testing.assert_array_equal(out[..., :1], alone)
    assert np.abs(out[..., 0] - grey_alpha[..., 0]).max() > 1  # the grey is restored
    lazy = np.asarray(dn.restore(da.from_array(grey_alpha, chunks=(32, 32, 2)), model, **options))
    np.testing.assert_array_equal(lazy[..., 1], grey_alpha[..., 1])
    np.testing.assert_allclose(lazy, out, rtol=0, atol=1e-5 * 255)
    np.save(tmp_path / "in.npy", grey_alpha)
    target = dn.restore_to_zarr(
        tmp_path / "in.npy", tmp_path / "o.ome.zarr", model, chunks=32, **options
    )
    streamed = np.moveaxis(zarr.open(f"{target}/0", mode="r")[:], 0, -1)
    np.testing.assert_array_equal(streamed[..., 1], grey_alpha[..., 1])
    np.testing.assert_allclose(streamed, out, rtol=0, atol=1e-5 * 255)


def test_statistics_of_a_grey_image_with_opacity_are_of_its_grey(grey_alpha, tmp_path):
    stats = dn.compute_normalization(grey_alpha, axes="YXS")
    assert np.asarray(stats["offset"]).size == 1 and np.asarray(stats["scale"]).size == 1
    plain = dn.restore(grey_alpha, axes="YXS", device="cpu")
    fixed = dn.restore(grey_alpha, axes="YXS", device="cpu", normalization=stats)
    np.testing.assert_allclose(fixed, plain, rtol=0, atol=1e-5 * 255)
    np.save(tmp_path / "in.npy", grey_alpha)
    target = dn.restore_to_zarr(
        tmp_path / "in.npy", tmp_path / "o.ome.zarr", axes="YXS", chunks=32, normalization=stats
    )
    streamed = np.moveaxis(zarr.open(f"{target}/0", mode="r")[:], 0, -1)
    np.testing.assert_array_equal(streamed[..., 1], grey_alpha[..., 1])
    np.testing.assert_allclose(streamed, plain, rtol=0, atol=1e-5 * 255)


def test_an_s_axis_of_more_than_four_samples_is_refused_with_what_to_use():
    image = np.zeros((32, 32, 5), np.float32)
    with pytest.raises(ValueError, match=r"axis of 5 values as 'S'.*axes='YXC'"):
        dn.restore(image, axes="YXS")
    # training refuses it alike (it trained on five "colours" that restore refuses)
    noisy = np.random.default_rng(0).random((32, 32, 5)).astype(np.float32)
    with pytest.raises(ValueError, match=r"axis of 5 values as 'S'.*axes='YXC'"):
        dn.train(noisy, noisy, axes="YXS", max_seconds=1)


def test_an_rgb_ome_zarr_of_this_package_streams_as_colour(tmp_path):
    # the writers store colour as NGFF's C and note S in the layer document: the CLI
    # streamed it as colour, dn.restore_to_zarr as three channels (56 of 266 off)
    from napari_deconvnet.io.image_files import read_image
    from napari_deconvnet.io.writer import write_ome_zarr

    rgb = (np.random.default_rng(3).random((48, 64, 3)) * 255).astype(np.uint8)
    write_ome_zarr(tmp_path / "in.ome.zarr", rgb, {"rgb": True})
    out = dn.restore_to_zarr(tmp_path / "in.ome.zarr", tmp_path / "out.ome.zarr", "denoise-2d")
    back = read_image(out)
    assert back.rgb and back.axes == "YXS"
    expected = dn.restore(rgb, "denoise-2d")
    np.testing.assert_allclose(np.asarray(back.data), expected, rtol=0, atol=1e-5 * 255)


@pytest.mark.parametrize("method", ["switching-median", "median", "tv", "nlm"])
def test_classical_methods_keep_opacity_too(method):
    """run_method filtered an RGBA or grey-with-opacity image's opacity as an image: the
    switching median took its 0 and 255 as impulse levels and moved a soft mask's edge
    by up to 127 (session 68)."""
    yy, xx = np.indices((48, 56))
    alpha = np.clip((20 - np.hypot(yy - 24, xx - 28)) * 128 + 128, 0, 255).astype(np.uint8)
    grey = (np.random.default_rng(0).random((48, 56)) * 200 + 20).astype(np.uint8)
    rgba = np.concatenate([np.stack([grey, grey[::-1], grey[:, ::-1]], -1), alpha[..., None]], -1)
    out = dn.run_method(rgba, method, axes="YXS")
    np.testing.assert_array_equal(out[..., 3], alpha.astype(np.float32))
    np.testing.assert_array_equal(out[..., :3], dn.run_method(rgba[..., :3], method, axes="YXS"))
    lazy = dn.run_method(da.from_array(rgba, chunks=(24, 56, 4)), method, axes="YXS")
    np.testing.assert_array_equal(np.asarray(lazy)[..., 3], alpha.astype(np.float32))
    la = np.stack([grey, alpha], -1)
    out = dn.run_method(la, method, axes="YXS")
    np.testing.assert_array_equal(out[..., 1], alpha.astype(np.float32))
