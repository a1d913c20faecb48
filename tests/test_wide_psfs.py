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
