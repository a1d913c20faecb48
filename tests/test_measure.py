"""core.measurement: SSIM and PSNR of stacks and volumes, per slice or per volume (no Qt)."""

import doctest

import numpy as np
import pytest
from skimage.metrics import structural_similarity

import napari_deconvnet as dn
from napari_deconvnet.core import measurement as measure_module
from napari_deconvnet.core.measurement import PARAMS, Measurement, measure, measure_iter

TOL = 1e-4  # dn.ssim against scikit-image (float32 against float64)


def _pair(shape, sigma=0.1, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    clean = 0.5 + 0.4 * np.sin(5 * sum(grids))
    noisy = clean + sigma * rng.standard_normal(shape)
    return noisy.astype(dtype), clean.astype(dtype)


def _skimage(x, y, data_range, **kwargs):
    return structural_similarity(
        x,
        y,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        **kwargs,
    )


def test_docstring_examples():
    result = doctest.testmod(measure_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_public_names_and_params():
    assert dn.measure is measure and dn.measure_iter is measure_iter
    assert dn.Measurement is Measurement
    params = {p.name: p for p in PARAMS}
    assert list(params) == ["axes", "per", "data_range"]
    assert params["per"].choices == ("auto", "slice", "volume")
    assert params["per"].default == "auto" and params["data_range"].default is None


def test_stack_per_slice_equals_skimage_plane_by_plane():
    noisy, clean = _pair((3, 4, 32, 36))  # TZYX: neither T nor Z is spatial per slice
    span = float(clean.max()) - float(clean.min())
    m = measure(noisy, clean, per="slice")
    assert (m.axes, m.per, m.data_range) == ("TZYX", "slice", pytest.approx(span))
    assert m.ssims.shape == m.psnrs.shape == (3, 4)
    for t in range(3):
        for z in range(4):
            expected = _skimage(noisy[t, z], clean[t, z], span)
            assert m.ssims[t, z] == pytest.approx(expected, abs=TOL)
            score, smap = dn.ssim(noisy[t, z], clean[t, z], data_range=span, full=True)
            assert m.ssims[t, z] == pytest.approx(score, abs=1e-12)
            np.testing.assert_array_equal(m.ssim_map[t, z], smap)
            assert m.psnrs[t, z] == pytest.approx(
                dn.psnr(noisy[t, z], clean[t, z], data_range=span), abs=1e-9
            )
    assert m.ssim_map.dtype == np.float32 and m.ssim_map.shape == noisy.shape
    assert m.ssim == pytest.approx(np.mean(m.ssims), abs=1e-12)
    assert m.psnr == pytest.approx(dn.psnr(noisy, clean, data_range=span), abs=1e-9)


def test_volume_per_volume_is_3d_ssim():
    noisy, clean = _pair((12, 24, 28))
    span = float(clean.max()) - float(clean.min())
    m = measure(noisy, clean)  # auto: a Z of 11 planes or more is measured as a volume
    assert (m.axes, m.per, m.ssims.shape) == ("ZYX", "volume", ())
    score, smap = dn.ssim(noisy, clean, full=True)
    assert m.ssim == pytest.approx(score, abs=1e-12)
    assert m.ssim == pytest.approx(_skimage(noisy, clean, span), abs=TOL)
    np.testing.assert_array_equal(m.ssim_map, smap)
    assert m.psnr == pytest.approx(dn.psnr(noisy, clean), abs=1e-9)
    per_slice = measure(noisy, clean, per="slice")
    assert per_slice.ssims.shape == (12,) and abs(per_slice.ssim - m.ssim) > 1e-3


def test_time_series_of_volumes_and_thin_volumes():
    noisy, clean = _pair((2, 11, 16, 16))
    span = float(clean.max()) - float(clean.min())
    m = measure(noisy, clean, per="volume")
    assert m.ssims.shape == (2,)
    for t in range(2):
        assert m.ssims[t] == pytest.approx(dn.ssim(noisy[t], clean[t], data_range=span), abs=1e-12)
    thin = measure(noisy[:, :6], clean[:, :6])  # auto: 6 planes are too thin for a volume
    assert thin.per == "slice" and thin.ssims.shape == (2, 6)


def test_channels_are_not_spatial_and_rgb_samples_are_ssim_channels():
    noisy, clean = _pair((3, 24, 24))
    m = measure(noisy, clean, axes="CYX", data_range=1.0)
    expected = [dn.ssim(n, c, data_range=1.0) for n, c in zip(noisy, clean, strict=True)]
    np.testing.assert_allclose(m.ssims, expected, atol=1e-12)
    rng = np.random.default_rng(0)
    clean8 = (rng.random((32, 40, 3)) * 255).astype(np.uint8)
    noisy8 = np.clip(clean8 + rng.normal(0, 20, clean8.shape), 0, 255).astype(np.uint8)
    m = measure(noisy8, clean8)  # guessed YXS; 8-bit: data range 255
    assert (m.axes, m.data_range, m.ssim_map.shape) == ("YXS", 255.0, clean8.shape)
    score, smap = dn.ssim(noisy8, clean8, channel_axis=-1, full=True)
    assert m.ssim == pytest.approx(score, abs=1e-12)
    np.testing.assert_array_equal(m.ssim_map, smap)
    assert m.ssim == pytest.approx(_skimage(noisy8, clean8, 255, channel_axis=-1), abs=TOL)


def test_one_data_range_for_every_slice():
    noisy, clean = _pair((2, 24, 24))
    clean[1] *= 0.1  # the second plane spans a tenth of the first
    noisy[1] = clean[1] + 0.01
    span = float(clean.max()) - float(clean.min())
    m = measure(noisy, clean, per="slice")
    assert m.data_range == pytest.approx(span)
    assert m.ssims[1] == pytest.approx(dn.ssim(noisy[1], clean[1], data_range=span), abs=1e-12)
    assert m.ssims[1] != pytest.approx(dn.ssim(noisy[1], clean[1]), abs=1e-4)


def test_progress_and_close_cancels(monkeypatch):
    noisy, clean = _pair((5, 16, 16))
    calls = []
    real = measure_module.ssim
    monkeypatch.setattr(measure_module, "ssim", lambda *a, **k: calls.append(1) or real(*a, **k))
    gen = measure_iter(noisy, clean, per="slice")
    assert next(gen) == (1, 5) and next(gen) == (2, 5)
    gen.close()
    assert len(calls) == 2  # nothing measured after the close
    gen = measure_iter(noisy, clean, per="slice", full=False)
    steps = []
    with pytest.raises(StopIteration) as stop:
        while True:
            steps.append(next(gen))
    assert steps == [(i, 5) for i in range(1, 6)]
    result = stop.value.value
    assert result.ssim_map is None
    assert result.ssim == pytest.approx(measure(noisy, clean, per="slice").ssim, abs=1e-12)


def test_dask_input_equals_numpy():
    da = pytest.importorskip("dask.array")
    noisy, clean = _pair((3, 20, 24))
    lazy = measure(da.from_array(noisy, chunks=(1, 20, 24)), da.from_array(clean), per="slice")
    eager = measure(noisy, clean, per="slice")
    assert lazy.ssim == eager.ssim and lazy.psnr == eager.psnr
    np.testing.assert_array_equal(lazy.ssim_map, eager.ssim_map)


def test_summary_is_json_able():
    import json

    noisy, clean = _pair((2, 16, 16))
    summary = measure(noisy, clean, per="slice", data_range=1.0).summary()
    again = json.loads(json.dumps(summary))
    assert again["per"] == "slice" and again["parts"] == 2 and len(again["ssims"]) == 2
    assert again["data_range"] == 1.0


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (((16, 16), (16, 17)), {}, ValueError, "same shape"),
        (((16, 16), (16, 16)), {"per": "volume"}, ValueError, "needs a Z axis"),
        # (it advised a win_size that measure does not take)
        (((5, 16, 16), (5, 16, 16)), {"per": "volume"}, ValueError, r"per='slice', or a region"),
        (((64, 9, 64), (64, 9, 64)), {"axes": "ZYX"}, ValueError, r"volume is \(64, 9, 64\)"),
        (((9, 64), (9, 64)), {}, ValueError, r"window of 11 pixels along Y, X"),
        (((16, 16), (16, 16)), {"per": "plane"}, ValueError, "per must be one of"),
        (((16, 16), (16, 16)), {"data_range": 0}, ValueError, "data_range must be"),
        (((16, 16), (16, 16)), {"data_range": -1.0}, ValueError, "data_range must be"),
        (((16, 16), (16, 16)), {"axes": "ZYX"}, ValueError, "3 letters"),
        (((16, 16), (16, 16)), {"axes": 3}, TypeError, "axes"),
    ],
)
def test_bad_options_raise_before_any_work(args, kwargs, error, match):
    x, y = (np.random.default_rng(0).random(s) for s in args)
    gen = measure_iter(x, y, **kwargs)
    with pytest.raises(error, match=match):
        next(gen)


def test_bad_images_raise():
    with pytest.raises(TypeError, match="numpy or dask array"):
        measure([[1.0]], np.zeros((1, 1)))
    with pytest.raises(ValueError, match="constant.*data range"):
        measure(np.random.default_rng(0).random((16, 16)), np.ones((16, 16)))
    nan = np.full((16, 16), np.nan)
    with pytest.raises(ValueError, match="NaN or infinite"):
        measure(nan, nan, data_range=1.0)
    with pytest.raises(ValueError, match=r"planes are \(8, 8\).*at least 11 pixels"):
        measure(np.zeros((8, 8)), np.zeros((8, 8)), data_range=1.0)


# --------------------------------------------------------- command line


def _evaluate(capsys, *args):
    import json

    from napari_deconvnet.cli import main

    status = main(["evaluate", *map(str, args), "--json", "-q"])
    out = capsys.readouterr()
    return status, (json.loads(out.out) if status == 0 else out.err)


def test_cli_evaluate_never_treats_time_as_spatial(tmp_path, capsys):
    import tifffile

    noisy, clean = _pair((12, 24, 28), seed=1)  # 12 time points: a 3D window would fit
    for name, data in (("noisy", noisy), ("clean", clean)):
        tifffile.imwrite(tmp_path / f"{name}.tif", data, imagej=True, metadata={"axes": "TYX"})
    span = float(clean.max()) - float(clean.min())
    planes = [_skimage(n, c, span) for n, c in zip(noisy, clean, strict=True)]

    status, report = _evaluate(capsys, tmp_path / "noisy.tif", tmp_path / "clean.tif")
    assert status == 0, report
    assert (report["axes"], report["per"], report["parts"]) == ("TYX", "slice", 12)
    np.testing.assert_allclose(report["ssims"], planes, atol=TOL)
    assert report["ssim"] == pytest.approx(np.mean(planes), abs=TOL)
    assert abs(report["ssim"] - _skimage(noisy, clean, span)) > 10 * TOL  # not a 3D SSIM
    assert report["psnr"] == pytest.approx(dn.psnr(noisy, clean), abs=1e-6)

    status, err = _evaluate(
        capsys, tmp_path / "noisy.tif", tmp_path / "clean.tif", "--per", "volume"
    )
    assert status == 2 and "needs a Z axis" in err
    status, err = _evaluate(capsys, tmp_path / "noisy.tif", tmp_path / "clean.tif", "--axes", "YX")
    assert status == 2 and "2 letters" in err


def test_cli_evaluate_renders_the_measure_params(capsys):
    from napari_deconvnet.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for param in PARAMS:
        assert "--" + param.name.replace("_", "-") in text
    assert "{auto,slice,volume}" in text and "(default: auto)" in text


def test_each_channel_is_measured_in_its_own_range():
    """A dim channel beside a bright one: its parts in its own range (in the bright
    one's, its PSNR read 27 dB too high and its SSIM near 1 whatever its errors)."""
    rng = np.random.default_rng(4)
    clean = np.stack([rng.random((32, 32)) * 800 + 20, rng.random((32, 32)) * 36 + 5])
    clean = clean.astype(np.float32)
    noisy = (clean + rng.normal(0, 3, clean.shape)).astype(np.float32)
    m = measure(noisy, clean, axes="CYX")
    ranges = [float(np.ptp(clean[c])) for c in range(2)]
    assert m.data_range == pytest.approx(tuple(ranges))
    assert m.summary()["data_range"] == pytest.approx(ranges)
    for c in range(2):
        assert m.psnrs[c] == pytest.approx(dn.psnr(noisy[c], clean[c], data_range=ranges[c]))
        assert m.ssims[c] == pytest.approx(dn.ssim(noisy[c], clean[c], data_range=ranges[c]))
    assert m.psnrs[1] < m.psnrs[0] - 20 and m.ssims[1] < 0.97
    # every pixel's squared error in its channel's range
    mse = np.mean([np.mean((noisy[c] - clean[c]) ** 2) / ranges[c] ** 2 for c in range(2)])
    assert m.psnr == pytest.approx(-10 * np.log10(mse), abs=1e-5)  # (float32 errors)
    # the same given per channel; one number for all as before; a wrong count refused
    given = measure(noisy, clean, axes="CYX", data_range=ranges)
    assert given.psnr == pytest.approx(m.psnr) and given.ssim == pytest.approx(m.ssim)
    one = measure(noisy, clean, axes="CYX", data_range=800.0)
    assert one.data_range == 800.0 and one.psnrs[1] > 45
    with pytest.raises(ValueError, match="3 values .* 2 channels along C"):
        measure(noisy, clean, axes="CYX", data_range=[1.0, 2.0, 3.0])
    # channels of one range (and time points) keep one number
    assert isinstance(measure(noisy, clean, axes="ZYX").data_range, float)
    same = np.stack([clean[0], clean[0] + 1])
    assert isinstance(measure(same + 1, same, axes="CYX").data_range, float)
    # a constant channel takes the whole reference's range
    flat = clean.copy()
    flat[1] = 7.0
    assert measure(noisy, flat, axes="CYX").data_range[1] == pytest.approx(float(np.ptp(flat)))


def test_cli_evaluate_reports_each_channels_range(tmp_path, capsys):
    import tifffile

    from napari_deconvnet.cli import main

    rng = np.random.default_rng(5)
    clean = np.stack([rng.random((32, 32)) * 800 + 20, rng.random((32, 32)) * 36 + 5])
    clean = clean.astype(np.float32)
    noisy = (clean + rng.normal(0, 3, clean.shape)).astype(np.float32)
    for name, data in (("noisy", noisy), ("clean", clean)):
        tifffile.imwrite(tmp_path / f"{name}.tif", data, imagej=True, metadata={"axes": "CYX"})
    status, report = _evaluate(capsys, tmp_path / "noisy.tif", tmp_path / "clean.tif")
    assert status == 0, report
    m = measure(noisy, clean, axes="CYX")
    assert report["axes"] == "CYX" and report["data_range"] == pytest.approx(list(m.data_range))
    assert report["psnr"] == pytest.approx(m.psnr, abs=1e-6)
    # the text report names both ranges (it formatted one number and failed on a list)
    assert main(["evaluate", str(tmp_path / "noisy.tif"), str(tmp_path / "clean.tif"), "-q"]) == 0
    text = capsys.readouterr().out
    shown = ", ".join(f"{r:g}" for r in m.data_range)
    assert f"data ranges {shown} (per channel)" in text


def test_cli_evaluate_json_is_standard_json_for_identical_images(tmp_path, capsys):
    # an infinite PSNR was printed as Infinity, which strict JSON parsers refuse
    import json

    import tifffile

    from napari_deconvnet.cli import main

    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    tifffile.imwrite(tmp_path / "a.tif", image)
    assert main(["evaluate", str(tmp_path / "a.tif"), str(tmp_path / "a.tif"), "--json"]) == 0
    text = capsys.readouterr().out

    def refuse(constant):
        raise ValueError(f"not standard JSON: {constant}")

    report = json.loads(text, parse_constant=refuse)
    assert report["psnr"] is None and report["ssim"] == pytest.approx(1.0)
