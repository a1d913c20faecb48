"""Off-centre PSFs: found, recentred, and restored into the object's place."""

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.core.phantoms import cells_2d, cells_3d
from napari_deconvnet.core.psf import blur, psf_offset, recentre_psf


def _off_centre(kernel, shift):
    """`kernel` inside a larger crop whose origin lies `shift` pixels before its centre."""
    pads = [(2 * s, 0) if s > 0 else (0, -2 * s) for s in shift]
    return np.pad(kernel, pads)


@pytest.mark.parametrize(
    ("shape", "sigma"), [((9, 9), 1.5), ((8, 8), 1.5), ((7, 11, 11), (2.0, 1.2, 1.2))]
)
def test_a_symmetric_psf_is_centred_and_left_as_it_is(shape, sigma):
    kernel = dn.make_psf("gaussian", shape=shape, sigma=sigma)
    expected = [(n - 1) / 2 - n // 2 for n in shape]  # -0.5 along even sizes
    np.testing.assert_allclose(psf_offset(kernel), expected, atol=1e-9)
    out, shift = recentre_psf(kernel)
    assert shift is None and out is kernel


@pytest.mark.parametrize("shift", [(0, 2), (-1, 3), (3, -2), (1, 0, -2)])
def test_an_off_centre_psf_is_found_and_recentred(shift):
    rng = np.random.default_rng(100 * len(shift) + sum(abs(s) for s in shift))
    shape = (9,) * len(shift)
    kernel = dn.make_psf("gaussian", shape=shape, sigma=1.3)
    off = _off_centre(kernel, shift)
    # a measured PSF: a little background and noise around it
    off = off + rng.uniform(0, 0.002 * off.max(), off.shape)
    off /= off.sum()
    np.testing.assert_allclose(psf_offset(off), shift, atol=0.05)
    centred, found = recentre_psf(off)
    assert found == tuple(shift)
    np.testing.assert_allclose(psf_offset(centred), 0, atol=0.05)
    assert centred.sum() == pytest.approx(1)
    # the same kernel, now around its origin: what it blurs stays in place
    image = rng.random((24,) * len(shift))
    moved = blur(image, off)
    np.testing.assert_allclose(
        blur(image, centred)[(slice(4, -4),) * len(shift)],
        np.roll(moved, [-s for s in shift], axis=tuple(range(len(shift))))[
            (slice(4, -4),) * len(shift)
        ],
        atol=2e-3,
    )
    # no bigger than the image: cropped evenly, the origin kept
    cropped, again = recentre_psf(off, limit=[n - 2 for n in off.shape])
    assert again == found and all(
        a <= n - 2 for a, n in zip(cropped.shape, off.shape, strict=True)
    )
    np.testing.assert_allclose(psf_offset(cropped), 0, atol=0.05)


def _scene(seed, size=128):
    clean = cells_2d(np.random.default_rng(seed), size)
    return clean / clean.max()


def test_restore_puts_the_object_where_it_is_whatever_the_psf_crop():
    """An off-centre PSF gives the estimate the centred one gives, moved back in place."""
    kernel = dn.make_psf("gaussian", shape=(13, 13), sigma=1.8)
    shift = (2, -3)
    clean = _scene(81)
    noisy = np.asarray(dn.synthesize(blur(clean, kernel), "gaussian", seed=0, sigma=0.02))
    moved = np.roll(noisy, shift, axis=(0, 1))  # what the off-centre PSF makes of the scene
    centred = dn.restore(noisy, "deconv-2d", psf=kernel, precision="float32")
    off = dn.restore(moved, "deconv-2d", psf=_off_centre(kernel, shift), precision="float32")
    inner = (slice(40, -40), slice(40, -40))
    np.testing.assert_allclose(off[inner], centred[inner], atol=1e-4 * np.ptp(centred))


def test_an_off_centre_psf_no_longer_costs_the_network_its_lead(monkeypatch):
    """Scored inside the image: the pixels the shift pushed out are lost to any method."""
    import napari_deconvnet.core.restoration as restoration

    kernel = dn.make_psf("gaussian", shape=(13, 13), sigma=1.8)
    off = _off_centre(kernel, (0, 2))
    inner = (slice(8, -8), slice(8, -8))

    def score(clean, out):
        return dn.psnr(clean[inner], np.clip(out, 0, 1)[inner], data_range=1)

    centred, recentred, as_given = [], [], []
    for seed in (82, 83):
        clean = _scene(seed)
        kw = {"seed": seed, "sigma": 0.01}
        noisy = np.asarray(dn.synthesize(blur(clean, off), "gaussian", **kw), np.float32)
        plain = np.asarray(dn.synthesize(blur(clean, kernel), "gaussian", **kw), np.float32)
        centred.append(score(clean, dn.restore(plain, "deconv-2d", psf=kernel)))
        recentred.append(score(clean, dn.restore(noisy, "deconv-2d", psf=off)))
        with monkeypatch.context() as patch:  # the kernel as given: the inputs out of register
            patch.setattr(restoration, "recentre_psf", lambda k, limit=None: (k, None))
            patch.setattr(restoration, "subpixel_fraction", lambda k: None)
            as_given.append(score(clean, dn.restore(noisy, "deconv-2d", psf=off)))
    # measured: centred 41.46 / 36.52, recentred 41.63 / 36.35, as given 34.56 / 32.37 dB
    np.testing.assert_allclose(recentred, centred, atol=0.5)
    assert min(np.subtract(recentred, as_given)) > 2.5


@pytest.mark.parametrize("ndim", [2, 3])
def test_lazy_and_streamed_restores_with_an_off_centre_psf_equal_the_eager_one(ndim, tmp_path):
    da = pytest.importorskip("dask.array")
    if ndim == 2:
        # an even size: a half-pixel rest, resampled
        model, kernel, shift = "deconv-2d", dn.make_psf("gaussian", (8, 10), sigma=1.5), (3, -2)
        clean, chunks = _scene(84, 96), (40, 56)
    else:
        model, shift = "deconv-3d", (2, 0, -1)
        kernel = dn.make_psf("gaussian", (9, 7, 7), sigma=(1.8, 1.0, 1.0))
        clean, chunks = cells_3d(np.random.default_rng(85), (20, 48, 48)), (12, 32, 24)
    off = _off_centre(kernel, shift)
    noisy = np.asarray(dn.synthesize(blur(clean, off), "gaussian", seed=1, sigma=0.02), np.float32)
    eager = dn.restore(noisy, model, psf=off, precision="float32")
    lazy = dn.restore(da.from_array(noisy, chunks=chunks), model, psf=off, precision="float32")
    np.testing.assert_allclose(lazy.compute(), eager, atol=1e-4 * np.ptp(eager))
    target = dn.restore_to_zarr(
        noisy, tmp_path / "out.ome.zarr", model, psf=off, chunks=chunks, precision="float32"
    )
    import zarr

    streamed = np.asarray(zarr.open(str(target), mode="r")["0"])
    np.testing.assert_allclose(streamed, eager, atol=1e-4 * np.ptp(eager))


def test_adapt_and_synthetic_training_use_the_kernel_centred_as_restore_does():
    """An off-centre kernel makes and conditions the pairs exactly as the centred one."""
    from napari_deconvnet.core.train_record import describe_psf

    kernel = dn.make_psf("gaussian", (9, 9), sigma=1.5)
    off = _off_centre(kernel, (2, 0))
    centred = describe_psf(np.pad(kernel, ((4, 4), (0, 0))))  # what recentre_psf makes of it
    clean = _scene(86, 64)
    noisy = np.asarray(dn.synthesize(blur(clean, off) * 50, "poisson", gain=1.0, seed=2))
    adapted = dn.adapt("deconv-2d", noisy.astype(np.float32), psf=off, steps=1, device="cpu")
    record = adapted.metadata["training"]["data"]["psf"]
    assert record["shape"] == centred["shape"] == [17, 9]
    np.testing.assert_allclose(record["values"], centred["values"], atol=1e-7)
    trained = dn.train(
        clean,
        None,
        model="deconv-2d",
        mode="synthetic",
        psf=off,
        noise="gaussian",
        epochs=1,
        steps_per_epoch=1,
        patch_size=32,
        validation=0.2,
        device="cpu",
    )
    found = [v for k, v in _items(trained.model.metadata) if k == "psf" and isinstance(v, dict)]
    assert found and all(v["shape"] == [17, 9] for v in found)
    for v in found:
        np.testing.assert_allclose(v["values"], centred["values"], atol=1e-7)


def _items(tree):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield k, v
            yield from _items(v)


def test_subpixel_shift_samples_a_blurred_image_between_its_pixels():
    from napari_deconvnet.core.psf import SUBPIXEL_MIN, subpixel_shift, subpixel_taps

    assert subpixel_taps(0.0)[8] == pytest.approx(1) and subpixel_taps(0.4).sum() == pytest.approx(
        1
    )
    x = np.arange(200, dtype=np.float64)
    wave = np.sin(2 * np.pi * x / 23.0)[None].repeat(3, 0)  # well under Nyquist
    moved = subpixel_shift(wave, [0.0, 0.45])
    expected = np.sin(2 * np.pi * (x + 0.45) / 23.0)
    np.testing.assert_allclose(moved[1, 20:-20], expected[20:-20], atol=2e-3)
    noise = np.random.default_rng(0).normal(0, 1, (256, 256))
    resampled = subpixel_shift(noise, [0.5, 0.5])
    # white noise keeps most of its variance: 92% per axis resampled by half a pixel
    assert 0.8 < resampled.std() ** 2 < 0.9
    small = subpixel_shift(noise, [SUBPIXEL_MIN / 2, -SUBPIXEL_MIN / 2])
    np.testing.assert_array_equal(small, noise.astype(np.float32))  # small offsets: untouched


def test_an_even_sized_psf_gets_its_half_pixel_back(monkeypatch):
    """An even PSF's centre falls between two pixels: the image channel is resampled by it."""
    import napari_deconvnet.core.restoration as restoration

    kernel = dn.make_psf("gaussian", shape=(16, 16), sigma=2.0)
    inner = (slice(8, -8), slice(8, -8))
    gains = []
    for seed in (87, 88):
        clean = _scene(seed)
        noisy = np.asarray(dn.synthesize(blur(clean, kernel), "gaussian", seed=seed, sigma=0.01))
        resampled = dn.restore(noisy, "deconv-2d", psf=kernel, precision="float32")
        with monkeypatch.context() as patch:
            patch.setattr(restoration, "subpixel_fraction", lambda k: None)
            as_before = dn.restore(noisy, "deconv-2d", psf=kernel, precision="float32")
        gains.append(
            dn.psnr(clean[inner], np.clip(resampled, 0, 1)[inner], data_range=1)
            - dn.psnr(clean[inner], np.clip(as_before, 0, 1)[inner], data_range=1)
        )
    assert min(gains) > 0.4, gains  # measured +0.89 and +0.91 dB


@pytest.mark.parametrize("n", [2, 4, 6, 8, 10, 12])
def test_a_symmetric_even_kernel_is_moved_alike_on_every_axis(n):
    """Its offset is -0.5 on every axis; floating point put one axis a hair below it,
    and only that axis was moved (a (4, 4) box became (6, 4), asymmetric)."""
    for kernel in (np.full((n, n), 1.0 / n**2), np.full((n, n, n), 1.0 / n**3)):
        centred, shift = recentre_psf(kernel)
        assert len(set(centred.shape)) == 1
        assert shift is None or len(set(shift)) == 1


def test_an_off_centre_psf_warns_that_the_result_is_shifted():
    # session 72: a bead cropped 3 and 4 pixels off centre moved the restoration by as
    # much without a word; a centred PSF (odd or even) says nothing
    import warnings

    from napari_deconvnet.core.conditions import ConditionsWarning

    image = cells_2d(np.random.default_rng(5), 48).astype(np.float32)
    kernel = dn.make_psf("gaussian", shape=(9, 9), sigma=1.5)
    with pytest.warns(ConditionsWarning, match=r"off its middle pixel \(Y -3.0, X \+4.0 pixels\)"):
        dn.restore(image, "deconv-2d", psf=_off_centre(kernel, (-3, 4)), device="cpu")
    from scipy import ndimage

    half = ndimage.shift(kernel, (0, 0.55), order=3, mode="constant").clip(0)  # (warned)
    assert 0.5 < psf_offset(half / half.sum())[1] < 0.6
    for centred in (kernel, dn.make_psf("gaussian", shape=(8, 8), sigma=1.5), half):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConditionsWarning)
            dn.restore(image, "deconv-2d", psf=centred, device="cpu")


def test_a_note_on_one_channels_psf_names_the_channel():
    # session 73: with one PSF per channel, "the PSF's centre lies off its middle pixel"
    # did not say which channel's; a warning after the restore names none
    import warnings

    from napari_deconvnet.core.channel_psfs import psf_words
    from napari_deconvnet.core.conditions import ConditionsWarning

    image = np.stack([cells_2d(np.random.default_rng(s), 40) for s in (1, 2)]).astype(np.float32)
    kernel = dn.make_psf("gaussian", shape=(9, 9), sigma=1.5)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        dn.restore(
            image, "deconv-2d", psf=[kernel, _off_centre(kernel, (2, -1))], axes="CYX",
            device="cpu",
        )  # fmt: skip
    notes = [str(w.message) for w in said if issubclass(w.category, ConditionsWarning)]
    assert len(notes) == 1
    assert notes[0].startswith("the centre of channel 1's PSF lies off its middle pixel (Y")
    assert psf_words() == "the PSF"
    # one PSF for channels restored one by one: no channel named (review: each channel
    # was named after a PSF the user never gave per channel, the note said twice)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        dn.restore(image, "deconv-2d", psf=_off_centre(kernel, (2, -1)), axes="CYX", device="cpu")
    notes = {str(w.message) for w in said if issubclass(w.category, ConditionsWarning)}
    assert len(notes) == 1 and notes.pop().startswith("the centre of the PSF lies off")
