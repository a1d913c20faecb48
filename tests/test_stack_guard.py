"""The light-noise guard weighs every image of a stack on its own (core.light_noise).

It used to measure the middle image and blend the whole stack by its weight:
a time-lapse whose middle frame was nearly clean left its noisy frames
mostly unrestored (camera at sigma 25/255: 21.0 dB in the stack, 29.4 alone).
"""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import zarr
from skimage import data

import napari_deconvnet as dn
from napari_deconvnet.core.light_noise import (
    GUARD_CROP,
    WindowedImage,
    guard_boxes,
    guard_windows,
)
from napari_deconvnet.core.restoration import private_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SIGMAS = (25, 1, 0.5)  # a noisy frame, then two nearly clean ones (the middle one decided)


@pytest.fixture(scope="module")
def clean():
    return data.camera()[64:192, 64:192].astype(np.float32) / 255


@pytest.fixture(scope="module")
def stack(clean):
    rng = np.random.default_rng(0)
    frames = [clean + rng.normal(0, s / 255, clean.shape) for s in SIGMAS]
    return np.clip(np.stack(frames), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def eager(stack):
    return dn.restore(stack, "default", axes="TYX", precision="float32")


def test_each_frame_is_guarded_as_alone(stack, eager, clean):
    for t in range(len(SIGMAS)):
        alone = dn.restore(stack[t], "default", precision="float32")
        np.testing.assert_array_equal(eager[t], alone)
    # the noisy frame is not blended at all; the nearly clean ones are
    raw = dn.restore(stack, "default", axes="TYX", precision="float32", light_noise_guard=False)
    np.testing.assert_array_equal(eager[0], raw[0])
    assert np.abs(eager[1] - raw[1]).max() > 1e-3
    assert np.abs(eager[2] - raw[2]).max() > 1e-3
    # measured: 33.9 dB for the noisy frame from 20.8 (the middle frame's weight, 0.87,
    # gave it 32.5)
    assert dn.psnr(clean, eager[0], data_range=1) > dn.psnr(clean, stack[0], data_range=1) + 12.5


@pytest.mark.parametrize("chunks", [(1, 128, 128), (2, 64, 100), (3, 48, 48)])
def test_lazy_restores_weigh_each_frame_in_the_graph(stack, eager, chunks):
    lazy = dn.restore(
        da.from_array(stack, chunks=chunks), "default", axes="TYX", precision="float32"
    )
    keys = [k for k in dict(lazy.__dask_graph__()) if str(k[0]).startswith("deconvnet-guard-")]
    assert len(keys) == len(SIGMAS)  # one weight per frame, a task of the graph
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-5)
    # a frame alone: only its own weight is computed
    np.testing.assert_allclose(lazy[2].compute(), eager[2], atol=1e-5)


def test_streamed_restores_weigh_each_frame(stack, eager, tmp_path):
    out = dn.restore_to_zarr(
        stack, tmp_path / "o.ome.zarr", model="default", axes="TYX", precision="float32"
    )
    group = zarr.open(out, mode="r")
    np.testing.assert_allclose(np.asarray(group["0"]), eager, atol=1e-5)
    text = json.dumps(dict(group.attrs))
    blends = json.loads(text)
    found = []

    def walk(doc):
        if isinstance(doc, dict):
            for k, v in doc.items():
                if k == "light_noise_blend":
                    found.append(v)
                walk(v)
        elif isinstance(doc, list):
            for v in doc:
                walk(v)

    walk(blends)
    assert found and len(found[0]) == len(SIGMAS)
    assert found[0][0] is None  # the noisy frame: not blended
    assert all(0 <= w <= 1 for w in found[0][1:])


def test_rgb_stacks_weigh_each_image_by_its_luminance():
    rng = np.random.default_rng(1)
    rgb = data.astronaut()[:96, :96].astype(np.float32) / 255
    frames = [rgb + rng.normal(0, s / 255, rgb.shape) for s in (20, 1)]
    stack = np.clip(np.stack(frames), 0, 1).astype(np.float32)
    eager = dn.restore(stack, "default", axes="TYXS", precision="float32")
    for t in range(2):
        alone = dn.restore(stack[t], "default", axes="YXS", precision="float32")
        np.testing.assert_array_equal(eager[t], alone)
    raw = dn.restore(stack, "default", axes="TYXS", precision="float32", light_noise_guard=False)
    np.testing.assert_array_equal(eager[0], raw[0])
    assert np.abs(eager[1] - raw[1]).max() > 1e-3
    lazy = dn.restore(
        da.from_array(stack, chunks=(1, 48, 48, 3)), "default", axes="TYXS", precision="float32"
    )
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-5)


def test_guard_windows_hold_what_the_guard_reads():
    net = private_model("default")
    for shape in [(128, 128), (700, 900)]:
        windows = guard_windows(net, shape)
        boxes = guard_boxes(shape, GUARD_CROP[2], net.config.grid)
        assert len(windows) == len(boxes)
        for w, b in zip(windows, boxes, strict=True):
            assert all(
                ws.start <= bs.start and bs.stop <= ws.stop for ws, bs in zip(w, b, strict=True)
            )
    image = np.arange(700 * 900, dtype=np.float32).reshape(700, 900)
    held = WindowedImage(image.shape, [(w, image[w]) for w in guard_windows(net, image.shape)])
    box = guard_boxes(image.shape, GUARD_CROP[2], net.config.grid)[3]
    np.testing.assert_array_equal(held[box], image[box])
    with pytest.raises(KeyError, match="outside the windows"):
        held[0:700, 0:900]
