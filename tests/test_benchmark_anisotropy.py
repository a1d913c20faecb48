"""benchmarks/anisotropy.py: denoise-3d against 2D planes on stacks sampled coarser in Z."""

import numpy as np
import pytest


@pytest.fixture
def anisotropy(benchmark_script):
    return benchmark_script("anisotropy")


def test_stacks_keep_every_step_th_plane_of_held_out_volumes(anisotropy):
    volumes = anisotropy.scenes(quick=True)
    assert [n for n, _ in volumes] == ["cells 95", "cells 96"]
    volume = volumes[0][1]
    assert volume.min() >= 0 and volume.max() == pytest.approx(1.0)
    for step in anisotropy.STEPS:
        planes = anisotropy.stack(volume, step, 12)
        assert planes.shape == (12, *volume.shape[1:])
        # consecutive planes lie `step` planes apart in the volume
        start = (volume[::step].shape[0] - 12) // 2
        np.testing.assert_array_equal(planes[1], volume[(start + 1) * step])


def test_quick_run_scores_3d_2d_and_their_mean(anisotropy, tmp_path):
    out = tmp_path / "a.md"
    assert anisotropy.main(["--quick", "--threads", "1", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| Z step / pixel | photons |" in text and "| 3 | 20 |" in text
    rows = {r["step"]: r for r in anisotropy.run(quick=True)}
    for r in rows.values():
        for method in anisotropy.METHODS:
            assert r[method] > r["input"] + 5, (r, method)  # every method denoises
    # planes further apart than pixels cost the 3D model, not the 2D one
    gap = {s: r["denoise-3d"] - r["denoise-2d planes"] for s, r in rows.items()}
    assert gap[3] < gap[1] - 1.0, gap


def test_the_z_step_ratio_and_when_it_is_reported():
    from napari_deconvnet.core.axes import ANISOTROPY_CAUTION, anisotropy_note, z_step_ratio

    assert z_step_ratio([3, 1, 1], None) == 3  # the last three axes: Z, Y, X
    assert z_step_ratio([1, 0.9, 0.3, 0.3], "TZYX") == pytest.approx(3)
    assert z_step_ratio([2, 1, 1], "ZYXS") == 2  # RGB samples have no scale
    assert z_step_ratio([1, 1], None) is None and z_step_ratio([1, 1, 1], "TYX") is None
    assert z_step_ratio([2, 0, 1], None) is None and z_step_ratio(None, "ZYX") is None
    assert anisotropy_note("denoise-3d", ANISOTROPY_CAUTION) is not None
    assert anisotropy_note("denoise-3d", ANISOTROPY_CAUTION - 0.01) is None
    assert anisotropy_note("denoise-2d", 4.0) is None
    assert anisotropy_note("denoise-3d", None) is None
