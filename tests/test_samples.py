"""Sample data: every sample loads, with the promised layers, seeded and plausible."""

import numpy as np
import pytest
from npe2 import PluginManifest
from npe2.manifest.utils import import_python_name

from napari_deconvnet.io import samples

# key -> (layer names, shape of the degraded and clean layers, PSF shape or None)
PROMISED = {
    "noisy_camera": (["camera noisy", "camera clean"], (512, 512), None),
    "fluorescence": (["cells noisy", "cells clean"], (256, 256), None),
    "blurred": (["filaments blurred", "filaments clean", "filaments PSF"], (256, 256), (17, 17)),
    "volume": (["volume blurred", "volume clean", "volume PSF"], (32, 256, 256), (9, 13, 13)),
    "timelapse": (["moving noisy", "moving clean"], (10, 256, 256), None),
    "two_colour": (
        ["two colour blurred", "two colour clean", "two colour PSF"],
        (2, 256, 256),
        (2, 17, 17),
    ),
}


SMALL = {
    "noisy_camera": {},
    "fluorescence": {"shape": (48, 48)},
    "blurred": {"shape": (48, 48)},
    "volume": {"shape": (8, 48, 48)},
    "timelapse": {"shape": (3, 48, 48)},
    "two_colour": {"shape": (48, 48)},
}


@pytest.fixture(scope="module")
def manifest():
    return PluginManifest.from_distribution("napari-deconvnet")


def _make(manifest, key):
    (contribution,) = [s for s in manifest.contributions.sample_data if s.key == key]
    (command,) = [c for c in manifest.contributions.commands if c.id == contribution.command]
    return import_python_name(command.python_name)


def test_manifest_lists_every_sample(manifest):
    keys = [s.key for s in manifest.contributions.sample_data]
    assert keys == list(PROMISED) == list(samples.SAMPLES)


@pytest.mark.parametrize("key", PROMISED)
def test_sample_has_the_promised_layers(manifest, key):
    names, shape, psf_shape = PROMISED[key]
    layers = _make(manifest, key)()
    assert [meta["name"] for _, meta, _ in layers] == names
    assert all(kind == "image" for _, _, kind in layers)
    (degraded, dmeta, _), (clean, cmeta, _) = layers[:2]
    assert degraded.shape == clean.shape == shape
    assert degraded.dtype == clean.dtype == np.float32
    assert np.isfinite(degraded).all() and not np.array_equal(degraded, clean)
    made = dmeta["metadata"]["napari_deconvnet"]
    assert made["sample"] == key and made["operation"] == "synthesize" and made["seed"] == 0
    assert cmeta["metadata"]["napari_deconvnet"] == {"sample": key, "clean": True}
    assert cmeta["visible"] is False and dmeta.get("visible", True)
    assert dmeta.get("scale") == cmeta.get("scale")  # same geometry, so Quality can compare
    if psf_shape is None:
        assert len(layers) == 2
    else:
        psf = layers[2][0]
        assert psf.shape == psf_shape and layers[2][1]["visible"] is False
        for one in psf if key == "two_colour" else [psf]:  # (one PSF per channel)
            assert one.sum() == pytest.approx(1.0, abs=1e-5) and one.min() >= 0
            centre = tuple(n // 2 for n in one.shape)
            assert one[centre] == one.max()


@pytest.mark.parametrize("key", PROMISED)
def test_sample_arrays_are_seeded(key):
    data = samples.SAMPLES[key][1]
    small = SMALL[key]
    first, second, other = data(**small), data(**small), data(**small, seed=1)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_noise_levels_are_the_promised_ones():
    noisy, clean = samples.noisy_camera_data()
    assert abs(float(np.std(noisy - clean)) - 25 / 255) < 0.005
    noisy, clean = samples.fluorescence_phantom_data()
    cam = samples.FLUORESCENCE_CAMERA
    assert abs(float(np.mean(noisy - clean))) < 0.2  # clean is the expected value
    assert clean.min() >= cam["offset"] and noisy.max() <= 2 ** cam["bits"] - 1
    dark = clean < cam["offset"] + 0.1 * cam["peak"]  # read noise and few photons
    assert 1.5 < float(np.std((noisy - clean)[dark])) < 3.5
    degraded, clean, psf = samples.blurred_phantom_data()
    assert float(np.abs(degraded - clean).mean()) > 0.02  # blurred, not only noisy
    noisy, clean = samples.phantom_timelapse_data()
    assert float(np.abs(clean[0] - clean[-1]).mean()) > 0.01  # the cells move
    moving = noisy - clean
    assert abs(float(moving.mean())) < 0.01


@pytest.mark.parametrize("key", PROMISED)
def test_sample_opens_in_napari(make_napari_viewer, key):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-deconvnet", key)
    names, shape, _ = PROMISED[key]
    assert [layer.name for layer in viewer.layers] == names
    assert viewer.layers[0].data.shape == shape
    if key == "volume":
        np.testing.assert_allclose(viewer.layers[0].scale, (0.5, 0.2, 0.2))
        np.testing.assert_allclose(viewer.layers[1].scale, (0.5, 0.2, 0.2))


@pytest.mark.parametrize(
    "key, scale, units",
    [
        ("volume", (0.5, 0.2, 0.2), ("micrometer",) * 3),
        # session 69: its 65 nm pixels were in the description and the PSFs only
        ("two_colour", (1.0, 0.065, 0.065), ("pixel", "micrometer", "micrometer")),
    ],
)
def test_volume_layers_share_units_and_scale_without_a_warning(
    make_napari_viewer, qtbot, key, scale, units
):
    """The PSF is sampled on the image's grid: same scale and units (napari warns otherwise)."""
    import warnings

    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    canvas = getattr(viewer, "canvas", None)  # napari >= 0.9; viewer.scale_bar before
    bar = canvas.overlays.scale_bar if canvas is not None else viewer.scale_bar
    bar.visible = True  # the scale bar warns about mismatched units
    shown = []
    notification_manager.notification_ready.connect(shown.append)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            viewer.open_sample("napari-deconvnet", key)
            viewer.dims.ndisplay = 3 if key == "volume" else 2  # (c, y, x: planes shown)
            qtbot.wait(50)
    finally:
        notification_manager.notification_ready.disconnect(shown.append)
    messages = [str(w.message) for w in caught] + [str(n.message) for n in shown]
    assert [m for m in messages if "unit" in m.lower() or "dimensionality" in m] == []
    assert len(viewer.layers) == 3
    assert {tuple(str(u) for u in layer.units) for layer in viewer.layers} == {units}
    assert tuple(str(u) for u in viewer.layers.units) == units
    for layer in viewer.layers:
        np.testing.assert_allclose(layer.scale, scale)


@pytest.mark.parametrize("key", ["blurred", "volume"])
def test_blurred_samples_use_the_cores_blur(key):
    """One blur in the package: the samples are core.psf.blur of the clean image, then noise."""
    from napari_deconvnet.core.noise import synthesize
    from napari_deconvnet.core.psf import blur

    if key == "blurred":
        degraded, clean, psf = samples.blurred_phantom_data((48, 48), seed=3)
        expected = synthesize(blur(clean, psf), "gaussian", seed=3, sigma=samples.BLURRED_SIGMA)
    else:
        degraded, clean, psf = samples.phantom_volume_data((8, 48, 48), seed=3)
        expected = synthesize(blur(clean, psf), "poisson", seed=3, peak=samples.VOLUME_PEAK)
    np.testing.assert_array_equal(degraded, np.asarray(expected, np.float32))
    # the blur keeps the intensity scale: the blurred image's mean is the clean one's
    assert float(blur(clean, psf).mean()) == pytest.approx(float(clean.mean()), rel=0.02)


def test_two_colour_channels_have_their_own_psf_and_brightness():
    """The green PSF is wider than the blue one (520 against 461 nm), the dim channel
    noisier, and deconvolving each channel with its own PSF beats one PSF for both."""
    import napari_deconvnet as dn

    degraded, clean, psf = samples.two_colour_data((96, 96))
    widths = [float((p > p.max() / 2).sum()) for p in psf]
    assert widths[1] > widths[0]
    noise = [float(np.std(degraded[c] - clean[c])) for c in range(2)]
    assert noise[1] > 2 * noise[0]  # 30 photons against 200
    own = dn.restore(degraded, psf=list(psf), axes="CYX")
    blue = dn.restore(degraded, psf=[psf[0], psf[0]], axes="CYX")
    assert dn.psnr(clean[1], own[1], data_range=1.0) > dn.psnr(clean[1], blue[1], data_range=1.0)
