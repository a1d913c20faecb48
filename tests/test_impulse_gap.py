"""Salt or pepper far beyond the data: the salt-and-pepper model brings them near it.

Before (session 71): camera data in 0-1000 with 10 % pepper at 0 and 10 %
salt at 65535 restored at 17.8 dB, where the switching median alone gives
33.9; the percentiles that normalise the input were the impulse levels, so
the data filled 1.5 % of the network's range.
"""

import dask.array as da
import numpy as np
import pytest
from skimage import data

import napari_deconvnet as dn
from napari_deconvnet.core.impulse_gap import across_gap, impulse_gap
from napari_deconvnet.core.persistence import load_model


def _scene(salt, pepper=0, fraction=0.2, seed=0, shape=(128, 192)):
    clean = data.camera()[160 : 160 + shape[0], 160 : 160 + shape[1]].astype(np.float64)
    clean = (20 + clean / 255 * 980).astype(np.uint16)  # data in 20-1000
    rng = np.random.default_rng(seed)
    noisy = clean.copy()
    u = rng.random(clean.shape)
    noisy[u < fraction / 2] = pepper
    noisy[(u >= fraction / 2) & (u < fraction)] = salt
    return clean, noisy


def _psnr(clean, restored):
    return dn.psnr(clean.astype(np.float64), restored, data_range=980.0)


@pytest.fixture(scope="module")
def model():
    return load_model("salt-and-pepper")


def test_salt_at_the_type_limit_restores_like_salt_at_the_data(model):
    clean, noisy = _scene(65535)
    restored = dn.restore(noisy, model)
    median = dn.denoise_switching_median(noisy.astype(np.float32), 0, 65535)
    # 17.8 dB before, against the switching median's 33.9 on the same pixels
    assert _psnr(clean, restored) > _psnr(clean, median) - 0.5
    assert _psnr(clean, restored) > 30.0
    # the same scene with its salt at the data's own maximum: about as good
    _, near = _scene(int(clean.max()))
    assert _psnr(clean, restored) > _psnr(clean, dn.restore(near, model)) - 1.0
    # every pixel that was not an impulse is kept exactly; fill-ins lie within the data
    kept = (noisy != 0) & (noisy != 65535)
    np.testing.assert_array_equal(restored[kept], noisy[kept].astype(np.float32))
    inner = noisy[kept]
    assert inner.min() - 1e-3 < restored.min() and restored.max() < inner.max() + 1e-3


def test_far_levels_go_one_float32_step_beyond_the_data(model):
    clean, noisy = _scene(1000)  # salt at the data's own maximum: nothing moves
    assert impulse_gap(noisy, model) is None
    restored = []
    for salt, pepper in ((1300, 0), (65535, 0), (65535, 15)):
        _, noisy = _scene(salt, pepper=pepper)
        gap = impulse_gap(noisy, model)
        inner = noisy[(noisy > pepper) & (noisy < salt)]
        assert gap == {
            "minimum": pepper,
            "maximum": salt,
            # pepper 20 or 5 below data from 20 lies within a tenth of its range: it stays
            "pepper": pepper,
            "salt": float(np.nextafter(np.float32(inner.max()), np.float32(np.inf))),
        }
        moved = across_gap(noisy, gap)
        assert moved.dtype == np.float32
        np.testing.assert_array_equal(moved[noisy == salt], np.float32(gap["salt"]))
        np.testing.assert_array_equal(moved[noisy == pepper], np.float32(gap["pepper"]))
        np.testing.assert_array_equal(moved[(noisy > pepper) & (noisy < salt)], inner)
        out = dn.restore(noisy, model)
        assert out.max() <= gap["salt"] and out.min() >= gap["pepper"]  # within the data
        restored.append(out)
    # the result does not depend on how far beyond the data the levels lie
    np.testing.assert_array_equal(restored[1], restored[0])
    # far below the data (data in 520-1000), pepper moves too
    _, high = _scene(65535)
    high = np.where((high > 0) & (high < 65535), high // 2 + 500, high)
    gap = impulse_gap(high, model)
    inner = high[(high > 0) & (high < 65535)]
    assert gap["pepper"] == float(np.nextafter(np.float32(inner.min()), np.float32(-np.inf)))
    # a blind denoiser never moves anything; nor does the model without inner values
    assert impulse_gap(noisy, load_model("denoise-2d")) is None
    assert impulse_gap(np.array([[0, 9], [9, 0]], np.uint16), model) is None


def test_a_level_that_is_an_area_stays(model, tmp_path):
    """Review of session 71: a background set to 0 by a mask, and a blank frame of a
    stack, came back at the data's floor once the pepper level was moved (masked coins
    lost 5 dB; a streamed blank frame came back at 11 where it was 0)."""
    zarr = pytest.importorskip("zarr")
    from skimage import filters

    coins = data.coins()[:192, 100:292].astype(np.float32)
    masked = np.where(coins > filters.threshold_otsu(coins), coins, 0) / 255
    noisy = np.asarray(dn.synthesize(masked, "salt-and-pepper", amount=0.2, seed=0))
    assert impulse_gap(noisy, model) is None  # (its data start 0.4 above 0)
    # a stack: frames of data in 500-1000 with impulses at 0 and 65535, one blank frame
    _, frame = _scene(65535, shape=(96, 128))
    frame = np.where((frame > 0) & (frame < 65535), frame // 2 + 500, frame)
    stack = np.stack([frame, np.zeros_like(frame), frame])
    gap = impulse_gap(stack, model)
    assert gap is not None and gap["pepper"] == 0 and gap["salt"] < 1001  # salt alone moves
    eager = dn.restore(stack, model, axes="TYX")
    np.testing.assert_array_equal(eager[1], 0.0)
    source = zarr.create_array(tmp_path / "s.zarr", shape=stack.shape, dtype=stack.dtype,
                               chunks=(1, 64, 64))  # fmt: skip
    source[:] = stack
    out = dn.restore_to_zarr(str(tmp_path / "s.zarr"), str(tmp_path / "o.ome.zarr"),
                             model=model, axes="TYX", chunks=64)  # fmt: skip
    streamed = np.asarray(zarr.open_group(out, mode="r")["0"]).reshape(stack.shape)
    assert np.abs(streamed[1]).max() < 0.002 * 500  # (as a streamed blank frame comes back)
    kept = (frame != 0) & (frame != 65535)
    np.testing.assert_array_equal(streamed[0][kept], frame[kept].astype(np.float32))


def test_lazy_and_streamed_equal_eager(model, tmp_path):
    zarr = pytest.importorskip("zarr")
    clean, noisy = _scene(65535, shape=(192, 256), seed=1)
    eager = dn.restore(noisy, model)
    lazy = dn.restore(da.from_array(noisy, chunks=(80, 100)), model)
    assert any("deconvnet" in str(k) for k in lazy.dask)  # blocks, not one eager task
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-5 * 1000)
    source = zarr.create_array(tmp_path / "in.zarr", shape=noisy.shape, dtype=noisy.dtype,
                               chunks=(64, 64))  # fmt: skip
    source[:] = noisy
    dn.restore_to_zarr(str(tmp_path / "in.zarr"), str(tmp_path / "out.ome.zarr"), model=model,
                       chunks=64)  # fmt: skip
    streamed = np.asarray(zarr.open_group(tmp_path / "out.ome.zarr", mode="r")["0"])
    np.testing.assert_allclose(streamed.reshape(eager.shape), eager, atol=1e-5 * 1000)
    assert _psnr(clean, eager) > 30.0


def test_blank_frame_at_an_impulse_level_is_kept(model):
    _, noisy = _scene(65535, shape=(96, 128))
    stack = np.stack([noisy, np.zeros_like(noisy)])
    out = dn.restore(stack, model, axes="TYX")
    np.testing.assert_array_equal(out[1], 0.0)
    kept = (noisy != 0) & (noisy != 65535)
    np.testing.assert_array_equal(out[0][kept], noisy[kept].astype(np.float32))
