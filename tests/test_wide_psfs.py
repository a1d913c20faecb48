"""PSF shapes beyond the deconvolution models' training family (core.phantoms.wide_psf)."""

import math

import numpy as np
import pytest
from scipy import ndimage

from napari_deconvnet.core import phantoms


def _moments(kernel):
    """Centre of mass (y, x) and the principal standard deviations (long, short)."""
    y, x = np.indices(kernel.shape, dtype=float)
    cy, cx = (kernel * y).sum(), (kernel * x).sum()
    cov = np.cov(
        np.stack([(y - cy).ravel(), (x - cx).ravel()]), aweights=kernel.ravel(), bias=True
    )
    return (cy, cx), np.sqrt(np.sort(np.linalg.eigvalsh(cov))[::-1])


def test_wide_psfs_are_normalised_centred_and_of_their_kind():
    seen = set()
    for seed in range(60):
        kernel, record = phantoms.wide_psf(np.random.default_rng(seed))
        seen.add(record["kind"])
        assert kernel.dtype == np.float32 and kernel.ndim == 2
        assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
        assert kernel.min() >= 0 and kernel.sum() == pytest.approx(1.0, abs=1e-5)
        (cy, cx), (long, short) = _moments(kernel.astype(float))
        centre = kernel.shape[0] // 2
        assert abs(cy - centre) < 0.05 and abs(cx - centre) < 0.05, record
        if record["kind"] == "elongated":
            assert long / short == pytest.approx(record["sigma"][0] / record["sigma"][1], rel=0.1)
        elif record["kind"] == "motion":
            # a streak of length L softened by s: sd L / sqrt(12) along it, about s across
            along = math.sqrt(record["length"] ** 2 / 12 + record["soften"] ** 2)
            assert long == pytest.approx(along, rel=0.15), record
            assert short < 1.05  # the softening (<= 0.8) and the bilinear spread across it
            if record["length"] >= 8:
                assert short < 0.5 * long
        else:  # a disk of radius r: sd r / 2 in every direction
            assert long == pytest.approx(short, rel=0.05)
            assert long == pytest.approx(
                math.sqrt(record["radius"] ** 2 / 4 + record["soften"] ** 2), rel=0.1
            )
    assert seen == {"elongated", "defocus", "motion"}


def test_the_training_family_is_unchanged_without_wide():
    for seed in range(20):
        a, ra = phantoms.random_psf(np.random.default_rng(seed), 2)
        b, rb = phantoms.random_psf(np.random.default_rng(seed), 2, wide=0.0)
        np.testing.assert_array_equal(a, b)
        assert ra == rb
    kinds = [
        phantoms.random_psf(np.random.default_rng(s), 2, wide=1.0)[1]["kind"] for s in range(20)
    ]
    assert set(kinds) <= {"elongated", "defocus", "motion"}
    # 3D draws ignore it: no 3D shapes beyond the family yet
    a, _ = phantoms.random_psf(np.random.default_rng(0), 3, wide=1.0)
    b, _ = phantoms.random_psf(np.random.default_rng(0), 3)
    np.testing.assert_array_equal(a, b)


def test_a_motion_streak_lies_along_its_angle():
    for seed in range(40):
        kernel, record = phantoms.wide_psf(np.random.default_rng(seed))
        if record["kind"] != "motion" or record["length"] < 8:
            continue
        angle = record["angle"]
        centre = kernel.shape[0] // 2
        r = 0.4 * record["length"]
        on = ndimage.map_coordinates(
            kernel, [[centre + r * math.sin(angle)], [centre + r * math.cos(angle)]], order=1
        )[0]
        across = ndimage.map_coordinates(
            kernel, [[centre + r * math.cos(angle)], [centre - r * math.sin(angle)]], order=1
        )[0]
        assert on > 20 * max(across, 1e-9), record
        return
    pytest.fail("no long motion streak in 40 seeds")


def _width(kernel):
    """The mean of the principal standard deviations of a 2D kernel."""
    return float(np.mean(_moments(kernel.astype(float))[1]))


@pytest.mark.parametrize("factor", [0.7, 0.85, 1.15, 1.45])
@pytest.mark.parametrize(
    "kernel",
    [
        phantoms.random_psf(np.random.default_rng(1), 2)[0],  # from the training family
        phantoms.wide_psf(np.random.default_rng(3))[0],
        np.pad(np.ones((1, 1)), 6),  # a point: its magnification is the spline's own spread
    ],
)
def test_a_scaled_psf_is_the_same_shape_magnified_and_centred(kernel, factor):
    out = phantoms.scaled_psf(kernel, factor)
    assert out.dtype == np.float32 and out.min() >= 0
    assert out.sum() == pytest.approx(1.0, abs=1e-5)
    assert all(n % 2 == 1 for n in out.shape)
    (cy, cx), _ = _moments(out)
    centre = [n // 2 for n in out.shape]
    assert abs(cy - centre[0]) < 0.05 and abs(cx - centre[1]) < 0.05
    if kernel.max() < 1:  # a real PSF: every width magnified by the factor
        assert _width(out) == pytest.approx(factor * _width(kernel), rel=0.06)
    np.testing.assert_allclose(phantoms.scaled_psf(kernel, 1.0), kernel / kernel.sum(), atol=1e-6)


def test_a_gaussian_scaled_is_the_gaussian_of_the_scaled_sigma():
    from napari_deconvnet.core.psf import make_psf

    for factor in (0.8, 1.3):
        out = phantoms.scaled_psf(make_psf("gaussian", sigma=2.0, shape=(25, 25)), factor)
        ref = make_psf("gaussian", sigma=2.0 * factor, shape=out.shape)
        assert np.abs(out - ref).max() < 0.02 * ref.max()  # cubic resampling


def test_misjudged_psfs_are_drawn_log_uniformly_in_their_range_and_seeded():
    kernel = phantoms.random_psf(np.random.default_rng(0), 2)[0]
    lo, hi = phantoms.MISJUDGED_WIDTH
    factors = [phantoms.misjudged_psf(np.random.default_rng(s), kernel)[1] for s in range(400)]
    assert lo <= min(factors) and max(factors) <= hi
    logs = np.log(factors)
    # log-uniform: the mean and the spread of a uniform in log space
    assert np.mean(logs) == pytest.approx((np.log(lo) + np.log(hi)) / 2, abs=0.03)
    assert np.std(logs) == pytest.approx((np.log(hi) - np.log(lo)) / np.sqrt(12), rel=0.1)
    a, fa = phantoms.misjudged_psf(np.random.default_rng(7), kernel)
    b, fb = phantoms.misjudged_psf(np.random.default_rng(7), kernel)
    assert fa == fb and np.array_equal(a, b)
    assert _width(a) == pytest.approx(fa * _width(kernel), rel=0.06)
