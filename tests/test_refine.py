"""Richardson-Lucy from a start and stopped at the noise; restore(refine=...) of deconv models."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import napari_deconvnet as dn
from napari_deconvnet.core.classical import richardson_lucy_iter
from napari_deconvnet.core.phantoms import phantom


def _scene(seed: int, shape=(64, 64), floor: float = 0.05) -> np.ndarray:
    """Beads and filaments, maximum 1, over a background of `floor`."""
    clean = phantom(shape, ("beads", "filaments"), np.random.default_rng(seed), mix=2)
    clean = np.clip(clean, 0, None)
    return (clean / clean.max() * (1 - floor) + floor).astype(np.float32)


def _counts(clean: np.ndarray, psf: np.ndarray, peak: float, seed: int) -> np.ndarray:
    """Poisson counts of the blurred scene at `peak` photons, in units of `peak`."""
    rng = np.random.default_rng(seed)
    # mirrored at the borders as RL's default pad="reflect" (numpy's) extends an image
    mean = ndimage.convolve(clean.astype(np.float64), psf / psf.sum(), mode="mirror")
    return (rng.poisson(np.clip(mean, 0, None) * peak) / peak).astype(np.float32)


def _discrepancy(y: np.ndarray, x: np.ndarray, psf: np.ndarray, peak: float) -> float:
    """Mean squared residual over the Poisson variance where the blurred estimate
    expects a photon or more, the image mirrored at its borders."""
    hx = ndimage.convolve(x.astype(np.float64), psf / psf.sum(), mode="mirror")
    lit = hx * peak >= 1.0
    return float(np.mean((y[lit] - hx[lit]) ** 2 / (hx[lit] / peak)))


def _psnr(clean, x):
    return dn.psnr(clean, np.clip(x, 0, 1), data_range=1)


PSFS = {
    "banded (Gaussian)": dn.make_psf("gaussian", shape=(9, 9), sigma=1.5),
    "folded FFT (Airy)": np.asarray(
        dn.make_psf("airy", shape=(11, 11), na=0.8, wavelength=520, pixel_size=80), np.float32
    ),
}


@pytest.mark.parametrize("name", list(PSFS))
def test_rl_from_a_start_continues_the_iteration(name):
    psf = PSFS[name]
    y = _counts(_scene(1), psf, 1e3, seed=2)
    ten = dn.richardson_lucy(y, psf, 10, device="cpu")
    continued = dn.richardson_lucy(y, psf, 5, start=ten, device="cpu")
    np.testing.assert_allclose(continued, dn.richardson_lucy(y, psf, 15, device="cpu"), atol=2e-5)
    # and a start is not ignored
    assert np.abs(dn.richardson_lucy(y, psf, 5, device="cpu") - continued).max() > 1e-2


# (pad=None, zeros beyond the borders: RL's update loses light at the borders, H^T 1 < 1
# there, and never fits a border within the noise; its stop reads the inside, below)
@pytest.mark.parametrize("pad", ["reflect", "edge"])
@pytest.mark.parametrize("name", list(PSFS))
def test_rl_stops_at_the_first_estimate_that_fits_within_the_noise(name, pad):
    psf, peak = PSFS[name], 1e4
    y = _counts(_scene(3), psf, peak, seed=4)
    noise = {"noise": "poisson", "gain": peak}
    start = ndimage.uniform_filter(y, 3)  # too smooth: its blur misses the data
    steps = list(_drain(richardson_lucy_iter(y, psf, 200, start=start, noise=noise, pad=pad)))
    done, out = len(steps[:-1]), steps[-1]
    assert 1 <= done < 200
    if pad == "reflect":  # the mirrored image: what the numpy discrepancy reads
        assert _discrepancy(y, start, psf, peak) > 1.5
        assert _discrepancy(y, out, psf, peak) <= 1.0 + 1e-3
        before = dn.richardson_lucy(y, psf, done - 1, start=start) if done > 1 else start
        assert _discrepancy(y, before, psf, peak) > 1.0
    # a plain RL of as many iterations from the same start gives the same estimate
    plain = dn.richardson_lucy(y, psf, done, start=start, pad=pad)
    np.testing.assert_allclose(out, plain, atol=1e-6 * float(y.max()) + 1e-7)


@pytest.mark.parametrize("name", list(PSFS))
def test_rl_without_padding_stops_on_the_fit_inside_the_borders(name):
    """pad=None ran to the cap with noise= (the border band never fits); the stop now
    reads the pixels half a PSF inside, and stops where the padded iteration would."""
    psf, peak = PSFS[name], 1e4
    y = _counts(_scene(3), psf, peak, seed=4)
    noise = {"noise": "poisson", "gain": peak}
    start = ndimage.uniform_filter(y, 3)
    steps = list(_drain(richardson_lucy_iter(y, psf, 200, start=start, noise=noise, pad=None)))
    done, out = len(steps[:-1]), steps[-1]
    reflected = len(list(richardson_lucy_iter(y, psf, 200, start=start, noise=noise)))
    assert 1 <= done <= 2 * reflected < 200
    plain = dn.richardson_lucy(y, psf, done, start=start, pad=None)
    np.testing.assert_allclose(out, plain, atol=1e-6 * float(y.max()) + 1e-7)


def _drain(gen):
    try:
        while True:
            yield next(gen)
    except StopIteration as end:
        yield end.value


def test_a_dark_background_does_not_stop_the_iteration_before_the_objects_fit():
    """Spots in the dark at 1000 photons, from deconv-2d's output: over every pixel
    (variance floored at one photon) the residual already looks like noise, since the
    dark pixels' residuals are far below 1; over the lit pixels it does not, and the
    iteration goes on and gains."""
    from napari_deconvnet.core.dark_scenes import integrated_spots

    psf, peak = PSFS["banded (Gaussian)"], 1e3
    gains = []
    for seed in range(3):
        clean = integrated_spots(np.random.default_rng(seed), (64, 64), 40, 0.8)
        clean = (clean / clean.max()).astype(np.float32)
        y = _counts(clean, psf, peak, seed + 10)
        start = dn.restore(y, "deconv-2d", psf=psf, device="cpu", precision="float32")
        hx = ndimage.convolve(start.astype(np.float64), psf / psf.sum(), mode="mirror")
        everywhere = np.mean((y - hx) ** 2 / np.maximum(hx / peak, 1 / peak**2))
        assert everywhere < 1.0 < _discrepancy(y, start, psf, peak)
        noise = {"noise": "poisson", "gain": peak}
        steps = list(_drain(richardson_lucy_iter(y, psf, 200, start=start, noise=noise)))
        assert len(steps) >= 2  # at least one iteration
        gains.append(_psnr(clean, steps[-1]) - _psnr(clean, start))
    assert min(gains) > 0.0 and np.mean(gains) > 0.1


def test_rl_with_noise_stops_each_plane_on_its_own():
    psf, peak = PSFS["banded (Gaussian)"], 1e4
    a, b = _counts(_scene(5), psf, peak, 6), _counts(_scene(7), psf, peak, 8) * 0.5
    noise = {"noise": "gaussian", "sigma": 0.01}
    stack = dn.richardson_lucy(np.stack([a, b]), psf, 100, noise=noise)
    alone = [dn.richardson_lucy(p, psf, 100, noise=noise) for p in (a, b)]
    np.testing.assert_allclose(stack, np.stack(alone), atol=1e-6)
    # b has less light, so its residual fits the same sigma after fewer iterations
    assert not np.allclose(stack[1], dn.richardson_lucy(b, psf, 100), atol=1e-3)


def test_rl_with_noise_deconvolves_a_dim_image_above_a_large_offset():
    """Session 67: with a camera offset above half the image's peak, RL's constant start
    (half the peak) lay below offset + one photon, no pixel was counted, the plane was
    taken as fitted before the first iteration and came back flat."""
    from napari_deconvnet.core.psf import blur

    clean = np.zeros((64, 64))
    clean[12:28, 14:50] = 50.0
    clean[44, 40] = 400.0
    psf = dn.make_psf("gaussian", sigma=2)
    y = dn.synthesize(blur(clean, psf), "poisson-gaussian", gain=2.0, offset=100.0,
                      read_noise=2.0, seed=1)  # fmt: skip
    noise = {"noise": "poisson-gaussian", "gain": 2.0, "offset": 100.0, "read_noise": 2.0}
    steps = list(_drain(richardson_lucy_iter(y, psf, 100, noise=noise, device="cpu")))
    out = steps[-1]
    assert len(steps) >= 3 and float(out.std()) > 10.0  # it iterated; not one value
    # it stopped at the noise, not later: closer to the blur-free truth than the data
    truth = clean * 2.0 + 100.0
    assert dn.psnr(out, truth, data_range=np.ptp(truth)) > dn.psnr(
        y, truth, data_range=np.ptp(truth)
    )
    # a plane whose data hold no photon over the offset is fitted as it is: one step
    dark = np.full((32, 32), 100.0, np.float32)
    assert len(list(_drain(richardson_lucy_iter(dark, psf, 50, noise=noise, device="cpu")))) <= 2


def test_rl_with_noise_is_never_judged_at_its_constant_start():
    """Session 67 review: on flat photon counts of 0.05 per pixel, RL's constant start
    (half the peak: one photon) "fitted" the data within the noise and came back as it
    was, 20 times the data's mean; the start is judged after one iteration now."""
    rng = np.random.default_rng(0)
    psf = dn.make_psf("gaussian", sigma=2)
    y = rng.poisson(0.05, (64, 64)).astype(np.float32)
    steps = list(_drain(richardson_lucy_iter(y, psf, 100, noise={"noise": "poisson", "gain": 1},
                                             device="cpu")))  # fmt: skip
    assert len(steps) >= 2 and abs(float(steps[-1].mean()) - 0.05) < 0.01


def test_rl_with_noise_and_a_1d_psf_stops_each_line_on_its_own():
    """A 1D PSF deconvolves each row; with `noise` each row stops on its own, as alone
    (rows of 1e3, 1e4 and 1e5 photons fit a sigma after different counts)."""
    psf = np.exp(-0.5 * (np.arange(-6, 7) / 1.5) ** 2)
    rng = np.random.default_rng(21)
    rows = np.clip(ndimage.gaussian_filter1d(rng.random((3, 80)), 2.0), 0, None) + 0.05
    mean = ndimage.convolve1d(rows, psf / psf.sum(), axis=-1, mode="mirror")
    y = rng.poisson(mean * np.array([[1e4], [1e3], [1e5]])) / np.array([[1e4], [1e3], [1e5]])
    y = y.astype(np.float32)
    noise = {"noise": "gaussian", "sigma": 0.004}
    together = dn.richardson_lucy(y, psf, 60, noise=noise, device="cpu")
    alone = np.stack([dn.richardson_lucy(r, psf, 60, noise=noise, device="cpu") for r in y])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    assert not np.allclose(together, dn.richardson_lucy(y, psf, 60, device="cpu"), atol=1e-4)


def test_rl_start_and_noise_refuse_bad_values():
    y = np.ones((32, 32), np.float32)
    with pytest.raises(ValueError, match="start must have the image's shape"):
        dn.richardson_lucy(y, "gaussian", 3, start=np.ones((31, 32)))
    with pytest.raises(ValueError, match="finite"):
        dn.richardson_lucy(y, "gaussian", 3, start=np.full((32, 32), np.nan))
    with pytest.raises(TypeError, match="real array"):
        dn.richardson_lucy(y, "gaussian", 3, start=np.full((32, 32), "a"))
    with pytest.raises(ValueError, match="variance is a line"):
        dn.richardson_lucy(y, "gaussian", 3, noise={"noise": "speckle"})
    with pytest.raises(ValueError, match="positive variance"):
        dn.richardson_lucy(y, "gaussian", 3, noise={"noise": "gaussian", "sigma": 0.0})
    with pytest.raises(TypeError):
        dn.richardson_lucy(y, "gaussian", 3, noise="poisson")


# -- restore(refine=...) -------------------------------------------------------------


@pytest.fixture(scope="module")
def bright():
    """A 96² scene through a Gaussian PSF at 1e5 photons: the network smooths it."""
    psf = dn.make_psf("gaussian", shape=(13, 13), sigma=2.0)
    clean = _scene(11, (96, 96), floor=0.0)
    return clean, psf, _counts(clean, psf, 1e5, seed=12)


def test_refine_sharpens_a_bright_image_toward_the_data(bright):
    clean, psf, y = bright
    noise = {"noise": "poisson", "gain": 1e5}
    net = dn.restore(y, "deconv-2d", psf=psf, device="cpu")
    seen = []
    refined = dn.restore(
        y,
        "deconv-2d",
        psf=psf,
        device="cpu",
        refine=noise,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert _discrepancy(y, net, psf, 1e5) > 2.0  # the network's output misses the data
    assert _discrepancy(y, refined, psf, 1e5) < _discrepancy(y, net, psf, 1e5) / 2
    assert _psnr(clean, refined) > _psnr(clean, net) + 0.5
    total = seen[-1][1]
    assert seen[-1] == (total, total) and all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_refine_leaves_a_dim_image_as_the_network_restored_it():
    psf = dn.make_psf("gaussian", shape=(13, 13), sigma=2.0)
    clean = _scene(13, (96, 96), floor=0.0)
    y = _counts(clean, psf, 100.0, seed=14)
    net = dn.restore(y, "deconv-2d", psf=psf, device="cpu")
    assert _discrepancy(y, net, psf, 100.0) <= 1.0  # it fits within the noise already
    refined = dn.restore(
        y, "deconv-2d", psf=psf, device="cpu", refine={"noise": "poisson", "gain": 100.0}
    )
    np.testing.assert_array_equal(refined, net)


def test_refine_works_in_camera_units_with_an_offset(bright):
    clean, psf, y = bright
    adu = (2.0 * y * 1e5 + 100.0).astype(np.float32)  # 2 ADU per photon over 100 ADU
    noise = {"noise": "poisson-gaussian", "gain": 0.5, "offset": 100.0, "read_noise": 0.0}
    net = dn.restore(adu, "deconv-2d", psf=psf, device="cpu")
    refined = dn.restore(adu, "deconv-2d", psf=psf, device="cpu", refine=noise)

    def back(x):
        return (x - 100.0) / 2e5

    assert _psnr(clean, back(refined)) > _psnr(clean, back(net)) + 0.3


def test_refine_refuses_what_it_cannot_do(bright):
    import dask.array as da

    _, psf, y = bright
    noise = {"noise": "poisson", "gain": 1e5}
    with pytest.raises(TypeError, match="refine must be None or the image's noise"):
        dn.restore(y, "deconv-2d", psf=psf, refine="auto")
    with pytest.raises(ValueError, match="variance is a line"):
        dn.restore(y, "deconv-2d", psf=psf, refine={"noise": "salt-and-pepper"})
    with pytest.raises(ValueError, match="refine is for deconvolution models"):
        dn.restore(y, "denoise-2d", refine=noise)
    with pytest.raises(ValueError, match="refine needs the image in memory"):
        dn.restore(da.from_array(y, chunks=48), "deconv-2d", psf=psf, refine=noise)


def test_refine_fits_each_image_of_a_stack_as_alone(bright):
    _, psf, y = bright
    noise = {"noise": "poisson", "gain": 1e5}
    stack = np.stack([y, y[::-1].copy()])
    together = dn.restore(stack, "deconv-2d", psf=psf, device="cpu", refine=noise)
    for plane, image in zip(together, stack, strict=True):
        alone = dn.restore(image, "deconv-2d", psf=psf, device="cpu", refine=noise)
        np.testing.assert_allclose(plane, alone, atol=1e-5)


def test_refine_follows_the_borders_the_restore_used():
    """Session 67: refine= refined on the mirrored image whatever `borders` had found; a
    blur with darkness beyond its sides (restored extended) lost 7 dB to the refinement
    (25.8 to 18.5 dB), which ran to its last iteration on the borders' misfit."""
    from scipy.signal import fftconvolve
    from skimage import data

    clean = data.camera()[::2, ::2][:160, :160] / 255.0
    psf = dn.make_psf("gaussian", sigma=2, shape=(15, 15))
    blurred = fftconvolve(clean, psf, mode="same").clip(0)  # darkness beyond the sides
    noisy = (np.random.default_rng(0).poisson(blurred * 1e4) / 1e4).astype(np.float32)
    plain = dn.restore(noisy, psf=psf, device="cpu")
    refined = dn.restore(noisy, psf=psf, refine={"noise": "poisson", "gain": 1e4}, device="cpu")
    assert _psnr(clean, refined) > _psnr(clean, plain) - 0.1  # (it was 8 dB below)


def test_a_one_plane_psf_beside_a_stack_of_planes_takes_deconv_2d():
    """Session 67: a (1, Y, X) PSF with model "default" chose deconv-3d for a TYX (or
    CYX) stack, which refused it ("needs a 'Z' axis"); on a single plane it worked."""
    psf = dn.make_psf("gaussian", sigma=2, shape=(15, 15))[None]
    stack = np.random.default_rng(0).random((2, 64, 64), dtype=np.float32)
    out = dn.restore(stack, psf=psf, axes="TYX", device="cpu")
    np.testing.assert_array_equal(out, dn.restore(stack, "deconv-2d", psf=psf, axes="TYX",
                                                  device="cpu"))  # fmt: skip
    assert dn.restore(stack, psf=[psf, psf], axes="CYX", device="cpu").shape == stack.shape


@pytest.mark.parametrize("sigma", [1.0, 3.0])
def test_rl_without_padding_stops_on_a_photo_with_gaussian_noise(sigma):
    """Session 69: a camera crop blurred by a 7 x 7 Gaussian with Gaussian noise ran to
    the cap with pad=None: the zero-border ringing reaches further in than one PSF as
    the iterations go (the misfit a PSF inside grew with them). The fit is read three
    PSF sizes inside now, where the axis allows."""
    from skimage import data, transform

    photo = transform.resize(data.camera().astype(np.float32), (64, 72), anti_aliasing=True)
    psf = dn.make_psf("gaussian", shape=(7, 7), sigma=1.5)
    noisy = ndimage.convolve(photo + 10, psf, mode="mirror")
    noisy = noisy + sigma * np.random.default_rng(0).standard_normal(noisy.shape)
    noise = {"noise": "gaussian", "sigma": sigma}
    steps = list(_drain(richardson_lucy_iter(noisy, psf, 300, pad=None, noise=noise)))
    reflected = len(list(richardson_lucy_iter(noisy, psf, 300, noise=noise)))
    assert 1 <= len(steps) - 1 <= 2 * reflected < 300


def test_a_camera_offset_without_its_gain_says_there_is_no_refinement():
    """Session 70 and its review: refine_offset / refine_read_noise without refine_gain
    were ignored without a word (and recorded as applied). The command line refuses them
    (test_cli); run_method, which the Restore widget calls with every field (an empty
    gain is "off"), warns and restores without refinement."""
    rng = np.random.default_rng(0)
    image = rng.random((48, 48)).astype(np.float32)
    psf = dn.make_psf("gaussian", sigma=1.5)
    plain = dn.run_method(image, "deconv-2d", psf=psf, device="cpu")
    with pytest.warns(UserWarning, match="refine_offset describe the camera.*no refinement"):
        out = dn.run_method(image, "deconv-2d", psf=psf, device="cpu", refine_offset=3.0)
    np.testing.assert_array_equal(out, plain)
