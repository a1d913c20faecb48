"""RGB through one-channel denoisers: the opponent colour space (core.colour)."""

import numpy as np
import pytest
from skimage import data

import napari_deconvnet as dn
from napari_deconvnet.core.colour import OPPONENT, from_opponent, to_opponent


def test_the_transform_is_orthonormal_and_keeps_white_noise_white():
    np.testing.assert_allclose(OPPONENT @ OPPONENT.T, np.eye(3), atol=1e-12)
    rng = np.random.default_rng(0)
    rgba = rng.random((3, 20, 20, 4)).astype(np.float32)
    for axis in (3, 0):
        x = np.moveaxis(rgba, 3, axis)
        back = from_opponent(to_opponent(x, axis), axis)
        np.testing.assert_allclose(back, x, atol=1e-6)
    mixed = to_opponent(rgba, 3)
    np.testing.assert_array_equal(mixed[..., 3], rgba[..., 3])  # alpha kept
    np.testing.assert_allclose(mixed[..., 0], rgba[..., :3].sum(-1) / np.sqrt(3), rtol=1e-5)
    noise = to_opponent(rng.normal(0, 0.1, (200, 200, 3)), 2)
    np.testing.assert_allclose(noise.reshape(-1, 3).std(0), 0.1, rtol=0.02)
    np.testing.assert_allclose(np.corrcoef(noise.reshape(-1, 3).T), np.eye(3), atol=0.02)


def _noisy_rgb(seed=0, sigma=25 / 255):
    clean = data.coffee()[80:208, 200:360].astype(np.float32) / 255  # not a test image
    noise = np.random.default_rng(seed).normal(0, sigma, clean.shape).astype(np.float32)
    return clean, clean + noise


def test_rgb_denoised_in_luminance_and_chroma_beats_channel_by_channel():
    clean, noisy = _noisy_rgb()
    joint = dn.restore(noisy, "denoise-2d", precision="float32")
    separate = np.stack(
        [dn.restore(noisy[..., k], "denoise-2d", precision="float32") for k in range(3)], -1
    )

    def score(out):
        return dn.psnr(clean, np.clip(out, 0, 1), data_range=1)

    # measured: +0.6 dB on this crop; +0.2 to +2.1 dB on whole images at sigma 15-50
    assert score(joint) > score(separate) + 0.3, (score(joint), score(separate))
    assert joint.dtype == np.float32 and joint.shape == noisy.shape


def test_lazy_rgb_restore_equals_the_eager_one():
    da = pytest.importorskip("dask.array")
    _, noisy = _noisy_rgb(1)
    eager = dn.restore(noisy, "denoise-2d", precision="float32")
    lazy = dn.restore(da.from_array(noisy, chunks=(64, 96, 3)), "denoise-2d", precision="float32")
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-5 * np.ptp(eager))


def test_channels_that_are_not_colour_stay_channel_by_channel():
    _, noisy = _noisy_rgb(2)
    per_channel = [dn.restore(noisy[..., k], "denoise-2d", precision="float32") for k in range(3)]
    # fluorescence channels (C) are separate stains: never mixed
    out = dn.restore(noisy, "denoise-2d", axes="YXC", precision="float32")
    np.testing.assert_allclose(out, np.stack(per_channel, -1), atol=1e-5)
    # impulse noise hits each colour on its own: the salt-and-pepper model keeps them apart
    speckled = np.asarray(dn.synthesize(noisy.clip(0, 1), "salt-and-pepper", amount=0.1, seed=0))
    impulse = dn.restore(speckled, "salt-and-pepper", precision="float32")
    alone = dn.restore(speckled[..., 1], "salt-and-pepper", precision="float32")
    # (the impulse levels move to just beyond the data of the whole image, its three
    # colours', core.impulse_gap: 4e-5 here, 8e-4 beyond green's alone; mixed colours
    # would differ by far more)
    np.testing.assert_allclose(impulse[..., 1], alone, atol=1e-3)
    mixed = dn.restore(speckled, "denoise-2d", precision="float32")[..., 1]
    assert np.abs(mixed - alone).max() > 1e-2
    # fixed statistics are in RGB units: the channels stay as they are
    stats = {"offset": [0.0, 0.0, 0.0], "scale": [1.0, 1.0, 1.0]}
    fixed = dn.restore(noisy, "denoise-2d", precision="float32", normalization=stats)
    one = {"offset": 0.0, "scale": 1.0}
    single = dn.restore(noisy[..., 0], "denoise-2d", precision="float32", normalization=one)
    np.testing.assert_allclose(fixed[..., 0], single, atol=1e-5)


def test_streamed_rgb_equals_the_lazy_and_eager_restores_and_resumes(tmp_path):
    import threading

    zarr = pytest.importorskip("zarr")
    da = pytest.importorskip("dask.array")
    _, noisy = _noisy_rgb(3)
    path = tmp_path / "rgb.zarr"
    source = zarr.open_array(str(path), mode="w", shape=noisy.shape, chunks=(64, 64, 3))
    source[:] = noisy
    lazy = dn.restore(da.from_zarr(str(path)), "denoise-2d", precision="float32").compute()
    whole = tmp_path / "whole.ome.zarr"
    seen = []
    dn.restore_to_zarr(
        path, whole, "denoise-2d", chunks=64, precision="float32",
        progress=lambda d, n: seen.append((d, n)),
    )  # fmt: skip
    assert seen[-1] == (6, 6)  # 2 x 3 places, each with its three colours
    level0 = zarr.open_array(str(whole / "0"), mode="r")[:]  # NGFF order: c, y, x
    np.testing.assert_allclose(np.moveaxis(level0, 0, -1), lazy, atol=1e-5 * np.ptp(lazy))
    attrs = (whole / ".zattrs").read_text()
    assert "opponent" in attrs
    # killed after two places, resumed: the same result
    part, stop = tmp_path / "part.ome.zarr", threading.Event()
    with pytest.raises(dn.Cancelled, match="2 of 6 blocks"):
        dn.restore_to_zarr(
            path, part, "denoise-2d", chunks=64, precision="float32", stop=stop,
            progress=lambda d, n: stop.set() if d == 2 else None,
        )  # fmt: skip
    dn.restore_to_zarr(path, part, "denoise-2d", chunks=64, precision="float32")
    np.testing.assert_array_equal(zarr.open_array(str(part / "0"), mode="r")[:], level0)
    # an array in memory: exact statistics, as the eager restore
    eager = dn.restore(noisy, "denoise-2d", precision="float32")
    memory = tmp_path / "memory.ome.zarr"
    dn.restore_to_zarr(noisy, memory, "denoise-2d", chunks=64, precision="float32", client=False)
    level0 = np.moveaxis(zarr.open_array(str(memory / "0"), mode="r")[:], 0, -1)
    np.testing.assert_allclose(level0, eager, atol=1e-5 * np.ptp(eager))


def test_streamed_rgb_on_a_cluster_equals_the_local_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    _, noisy = _noisy_rgb(4)
    local = tmp_path / "local.ome.zarr"
    dn.restore_to_zarr(noisy, local, "denoise-2d", chunks=64, precision="float32", client=False)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = tmp_path / "remote.ome.zarr"
        dn.restore_to_zarr(
            noisy, remote, "denoise-2d", chunks=64, precision="float32", client=client
        )
    np.testing.assert_array_equal(
        zarr.open_array(str(remote / "0"), mode="r")[:],
        zarr.open_array(str(local / "0"), mode="r")[:],
    )


def test_statistics_from_compute_normalization_restore_rgb_as_without_them(tmp_path):
    # they are the luminance's and chroma's, marked so; before, they were the RGB
    # channels' and the restore then ran channel by channel (-1.4 dB on a photo)
    zarr = pytest.importorskip("zarr")
    da = pytest.importorskip("dask.array")
    _, noisy = _noisy_rgb(4)
    alpha = noisy[..., :1]
    opacity = np.linspace(0, 1, alpha.size, dtype=np.float32).reshape(alpha.shape)
    for image in (noisy, np.concatenate([noisy, opacity], -1)):  # RGB and RGBA
        stats = dn.compute_normalization(image, "denoise-2d")
        assert stats["colour"] == "opponent" and len(stats["offset"]) == 3
        lazy_image = da.from_array(image, chunks=(64, 64, image.shape[-1]))
        assert dn.compute_normalization(lazy_image, "denoise-2d") == stats  # used whole
        want = dn.restore(image, "denoise-2d", precision="float32")
        atol = 1e-5 * np.ptp(want)
        for got in (
            dn.restore(image, "denoise-2d", precision="float32", normalization=stats),
            dn.restore(lazy_image, "denoise-2d", precision="float32", normalization=stats),
        ):
            np.testing.assert_allclose(np.asarray(got), want, atol=atol)
        target = tmp_path / f"{image.shape[-1]}.ome.zarr"
        dn.restore_to_zarr(image, target, "denoise-2d", precision="float32", normalization=stats)
        level0 = np.moveaxis(zarr.open_array(str(target / "0"), mode="r")[:], 0, -1)
        np.testing.assert_allclose(level0, want, atol=atol)
        np.testing.assert_array_equal(level0[..., 3:], image[..., 3:])  # opacity kept
    # the same numbers without the mark are RGB units: channel by channel, as before
    plain = {"offset": stats["offset"], "scale": stats["scale"]}
    separate = dn.restore(noisy, "denoise-2d", precision="float32", normalization=plain)
    joint = dn.restore(noisy, "denoise-2d", precision="float32", normalization=stats)
    assert np.abs(separate - joint).max() > 0.01


def test_opponent_statistics_on_an_image_not_restored_that_way_are_refused():
    _, noisy = _noisy_rgb(5)
    stats = dn.compute_normalization(noisy, "denoise-2d")
    with pytest.raises(ValueError, match="luminance and chroma"):
        dn.restore(noisy[..., 0], "denoise-2d", normalization=stats)
    with pytest.raises(ValueError, match="luminance and chroma"):
        dn.restore(noisy, "denoise-2d", axes="YXC", normalization=stats)
    with pytest.raises(ValueError, match="'opponent'"):
        dn.restore(noisy, "denoise-2d", normalization=stats | {"colour": "lab"})
    assert "colour" not in dn.compute_normalization(noisy, "denoise-2d", axes="YXC")


def test_per_image_opponent_statistics_of_an_rgba_stack_stream_as_restored(tmp_path):
    zarr = pytest.importorskip("zarr")
    da = pytest.importorskip("dask.array")
    _, noisy = _noisy_rgb(6)
    rgb = np.stack([noisy[:64, :64], 0.5 * noisy[:64, :64]])  # two frames, two brightnesses
    rgba = np.concatenate([rgb, np.ones((*rgb.shape[:-1], 1), np.float32)], -1)
    stats = dn.compute_normalization(rgba, "denoise-2d", axes="TYXS", per_image=True)
    assert np.shape(stats["offset"]) == (2, 3) and stats["colour"] == "opponent"
    want = dn.restore(rgba, "denoise-2d", axes="TYXS", precision="float32")
    got = dn.restore(rgba, "denoise-2d", axes="TYXS", precision="float32", normalization=stats)
    np.testing.assert_allclose(got, want, atol=1e-5 * np.ptp(want))
    target = tmp_path / "stack.ome.zarr"
    lazy = da.from_array(rgba, chunks=(1, 32, 32, 4))
    kw = {"axes": "TYXS", "precision": "float32", "normalization": stats}
    dn.restore_to_zarr(lazy, target, "denoise-2d", **kw)
    level0 = np.moveaxis(zarr.open_array(str(target / "0"), mode="r")[:], 1, -1)  # t, c, y, x
    np.testing.assert_allclose(level0, want, atol=1e-5 * np.ptp(want))
