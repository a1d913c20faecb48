"""The command line keeps going and keeps its promises with awkward inputs.

A batch is not stopped by one file with bad data, ``--overwrite`` replaces an
unfinished streamed target of another job, and an RGB OME-Zarr streams as
colour. A streamed TIFF keeps its pixel size. Images are tiny: these check behaviour, not quality.
"""

import threading

import numpy as np
import pytest
import tifffile
import zarr

import napari_deconvnet as dn
from napari_deconvnet.cli import main
from napari_deconvnet.io.reader import read_image

FLOAT32_CPU = ["--precision", "float32", "--device", "cpu"]


def _image(shape=(32, 32), seed=0):
    return np.random.default_rng(seed).normal(100, 10, shape).astype(np.float32)


def _relative_error(result, expected):
    return float(np.abs(np.asarray(result) - expected).max() / np.ptp(expected))


@pytest.fixture
def mixed_folder(tmp_path):
    """a.tif and c.tif are fine; b.tif holds a NaN, b2.tif an infinity."""
    folder = tmp_path / "in"
    folder.mkdir()
    good = _image()
    with_nan = good.copy()
    with_nan[3, 3] = np.nan
    tifffile.imwrite(folder / "a.tif", good)
    tifffile.imwrite(folder / "b.tif", with_nan)
    with_inf = good.copy()
    with_inf[5, 1] = np.inf
    tifffile.imwrite(folder / "b2.tif", with_inf)
    tifffile.imwrite(folder / "c.tif", _image(seed=1))
    return folder


# ------------------------------------------------- a batch goes on after bad data


def test_batch_restore_writes_the_good_files_and_reports_the_bad(mixed_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["-q", "restore", str(mixed_folder), "-o", str(out)]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["a_restored.tif", "c_restored.tif"]
    err = capsys.readouterr().err
    assert "b.tif: image contains NaN" in err
    assert "b2.tif: image contains NaN or infinite values" in err
    assert "2 of 4 inputs failed" in err


def test_batch_synthesize_writes_the_good_files_and_reports_the_bad(
    mixed_folder, tmp_path, capsys
):
    out = tmp_path / "out"
    assert main(["-q", "synthesize", str(mixed_folder), "-o", str(out), "--noise", "none"]) == 2
    written = sorted(p.name for p in out.iterdir())
    assert "a_noisy.tif" in written and "c_noisy.tif" in written and "b_noisy.tif" not in written
    err = capsys.readouterr().err
    assert "b.tif: the image contains NaN" in err and "of 4 inputs failed" in err


def test_unreadable_and_refused_files_in_one_batch_exit_2(mixed_folder, tmp_path, capsys):
    (mixed_folder / "broken.tif").write_bytes(b"II*\x00" + b"\xff" * 20)
    out = tmp_path / "out"
    assert main(["-q", "restore", str(mixed_folder), "-o", str(out)]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["a_restored.tif", "c_restored.tif"]
    err = capsys.readouterr().err
    assert "broken.tif: no image data in this TIFF (corrupt or empty)" in err
    assert "3 of 5 inputs failed (2 refused, 1 could not be read" in err


def test_one_file_with_bad_data_is_still_one_line_and_exit_2(mixed_folder, tmp_path, capsys):
    out = tmp_path / "out.tif"
    assert main(["-q", "restore", str(mixed_folder / "b.tif"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "b.tif: image contains NaN" in err
    assert not out.exists()


def test_a_bad_device_is_refused_once_for_the_whole_batch(mixed_folder, tmp_path, capsys):
    assert main(["-q", "restore", str(mixed_folder), "-o", str(tmp_path / "o"), "--device", "tpu"])
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--device tpu" in err
    assert not (tmp_path / "o").exists()


# ------------------------------------ --overwrite replaces an unfinished stream


@pytest.fixture
def big_zarr(tmp_path):
    data = (_image((64, 64)) * 10).astype(np.uint16)
    path = tmp_path / "big.zarr"
    array = zarr.open_array(
        str(path), mode="w", shape=data.shape, chunks=(32, 32), dtype=data.dtype, zarr_format=2
    )
    array[:] = data
    return path, data


def _unfinished_stream(source, target):
    """Stop a 4-block streamed restore after its first block (other blocks than the CLI's)."""
    stop = threading.Event()
    with pytest.raises(dn.Cancelled):
        dn.restore_to_zarr(
            source,
            target,
            chunks=32,
            precision="float32",
            device="cpu",
            progress=lambda done, total: stop.set(),
            stop=stop,
        )
    assert (target / ".napari_deconvnet_job").is_dir()


def test_overwrite_replaces_an_unfinished_stream_of_other_settings(big_zarr, tmp_path, capsys):
    source, data = big_zarr
    target = tmp_path / "part.ome.zarr"
    _unfinished_stream(source, target)
    command = ["-q", "restore", str(source), "-o", str(target), "--tile", "48", *FLOAT32_CPU]
    assert main(command) == 2  # not the same job, and no --overwrite: kept
    assert "unfinished restore of other data or with other settings" in capsys.readouterr().err
    assert (target / ".napari_deconvnet_job").is_dir()
    assert main([*command, "--overwrite"]) == 0
    assert not (target / ".napari_deconvnet_job").exists()
    out = read_image(target)
    assert out.metadata["napari_deconvnet"]["streamed"] is True
    expected = dn.restore(data, tile=48, precision="float32", device="cpu")
    assert _relative_error(out.data, expected) < 1e-5


def test_a_data_error_while_streaming_is_not_retried_as_an_overwrite(tmp_path, capsys):
    """--overwrite replaces another job's target, but an image refused is not a reason."""
    source = tmp_path / "nan.zarr"
    data = _image((32, 32))
    data[5, 5] = np.nan
    array = zarr.open_array(str(source), mode="w", shape=data.shape, dtype=data.dtype)
    array[:] = data
    target = tmp_path / "out.ome.zarr"
    (target / ".napari_deconvnet_job").mkdir(parents=True)
    marker = target / ".napari_deconvnet_job" / "kept"
    marker.write_text("")
    assert main(["-q", "restore", str(source), "-o", str(target), "--overwrite"]) == 2
    assert "NaN" in capsys.readouterr().err
    assert marker.exists()  # refused before the target was touched


# ------------------------------------------------ an RGB OME-Zarr streams as colour


def test_rgb_ome_zarr_round_trip_streams_as_colour(tmp_path):
    grid = np.indices((40, 48)).astype(np.float32)
    base = (np.sin(grid[1] / 5) * np.cos(grid[0] / 4) + 1) * 100
    noise = np.random.default_rng(0).normal(0, 10, (40, 48, 3))
    rgb = (np.stack([base, base * 0.7, 200 - base], -1) + noise).clip(0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    first, again = tmp_path / "rgb.ome.zarr", tmp_path / "again.ome.zarr"
    assert main(["-q", "restore", str(tmp_path / "rgb.tif"), "-o", str(first), *FLOAT32_CPU]) == 0
    written = read_image(first)
    assert written.rgb and written.axes == "YXS"
    expected = dn.restore(rgb, axes="YXS", precision="float32", device="cpu")
    assert _relative_error(written.data, expected) < 1e-5
    # streamed: level 0 is stored (3, Y, X) and restored as colour, as in memory
    assert main(["-q", "restore", str(first), "-o", str(again), *FLOAT32_CPU]) == 0
    streamed = read_image(again)
    assert streamed.metadata["napari_deconvnet"]["streamed"] is True
    assert streamed.rgb and streamed.axes == "YXS"  # read back as colour, as written in memory
    colour = np.asarray(streamed.data)
    expected = dn.restore(np.asarray(written.data), axes="YXS", precision="float32", device="cpu")
    assert _relative_error(colour, expected) < 1e-5


# ------------------------------------- a streamed TIFF keeps its pixel size


def test_streamed_tiff_keeps_its_scale_and_units(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_DECONVNET_LAZY_BYTES", "1000")
    stack = _image((4, 32, 32))
    source = tmp_path / "stack.tif"
    tifffile.imwrite(
        source,
        stack,
        imagej=True,
        resolution=(5.0, 5.0),
        metadata={"spacing": 1.5, "unit": "um", "axes": "ZYX"},
    )
    assert read_image(source).lazy  # the streamed path, which reads the TIFF's own geometry
    out = tmp_path / "out.ome.zarr"
    assert main(["-q", "restore", str(source), "-o", str(out), *FLOAT32_CPU]) == 0
    result = read_image(out)
    assert result.metadata["napari_deconvnet"]["streamed"] is True
    np.testing.assert_allclose(result.scale, [1.5, 0.2, 0.2])
    assert result.units == ["micrometer"] * 3


# ------------------------------------------------- where the results go


@pytest.mark.parametrize("command", ["restore", "synthesize"])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(tmp_path, capsys, command):
    source = tmp_path / "raw.tif"
    raw = _image()
    tifffile.imwrite(source, raw)
    args = [command, str(source), "-o", str(tmp_path / "." / "raw.tif"), "--overwrite"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is an input" in err and len(err.strip().splitlines()) == 1
    np.testing.assert_array_equal(tifffile.imread(source), raw)


def test_several_inputs_and_an_image_file_name_are_refused(mixed_folder, tmp_path, capsys):
    out = tmp_path / "results.tif"
    args = ["restore", str(mixed_folder / "a.tif"), str(mixed_folder / "c.tif"), "-o", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "2 inputs need an output folder" in err and str(tmp_path / "results") in err
    assert not out.exists()


def test_a_format_that_matches_the_file_name_is_accepted(mixed_folder, tmp_path, capsys):
    out = tmp_path / "a.npy"
    args = ["restore", str(mixed_folder / "a.tif"), "--format", "npy", "-o", str(out)]
    assert main(args + ["--method", "median"]) == 0
    assert np.load(out).shape == (32, 32)
    assert main(args[:-1] + [str(tmp_path / "a.tif")]) == 2
    assert "--format npy does not match the output file a.tif" in capsys.readouterr().err


def test_evaluate_an_all_nan_reference_says_nan_not_constant(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "nan.tif", np.full((16, 16), np.nan, np.float32))
    tifffile.imwrite(tmp_path / "ok.tif", _image((16, 16)))
    assert main(["evaluate", str(tmp_path / "ok.tif"), str(tmp_path / "nan.tif")]) == 2
    err = capsys.readouterr().err
    assert "NaN or infinite" in err and "constant" not in err


def test_files_without_two_axes_are_refused_per_file(tmp_path, capsys):
    """Session 59: a 1-D or 6-D file stopped `restore` with exit status 1 and
    "ValueError: cannot guess the axes ... (run with --debug for the traceback)", an
    internal error's words, before the other inputs were done; `synthesize` did the
    same from the writer ("cannot name the axes of a 1-D image"). Each is now that
    input's refusal (status 2), and the other inputs are written."""
    np.save(tmp_path / "line.npy", _image()[0])
    np.save(tmp_path / "six.npy", np.zeros((2, 2, 2, 2, 16, 16), np.float32))
    np.save(tmp_path / "good.npy", _image())
    out = tmp_path / "out"
    files = [str(tmp_path / n) for n in ("line.npy", "six.npy", "good.npy")]
    assert main(["-q", "restore", *files, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "line.npy: a 1-D array (shape (32,)) is no image" in err
    assert "six.npy: cannot guess the axes of a 6-D image" in err and "--axes" in err
    assert "six.npy" in err and "2 of 3 inputs failed" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["good_restored.tif"]
    code = main(
        ["-q", "synthesize", files[0], "-o", str(tmp_path / "n.tif"), "--noise", "gaussian"]
    )
    assert code == 2
    assert "line.npy: cannot name the axes of a 1-D image" in capsys.readouterr().err
    assert not (tmp_path / "n.tif").exists()


def test_a_glob_takes_the_images_it_matches_as_a_folder_does(tmp_path, capsys):
    # a subfolder or a README among the matches refused the whole batch ("unsupported
    # file type '(none)'"), where the folder itself was taken
    folder = tmp_path / "g"
    (folder / "sub").mkdir(parents=True)
    tifffile.imwrite(folder / "a.tif", _image())
    (folder / "README.txt").write_text("notes")
    out = tmp_path / "out"
    assert main(["restore", str(folder / "*"), "-o", str(out), "--method", "median", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_restored.tif"]
    (folder / "a.tif").unlink()
    assert main(["restore", str(folder / "*"), "-o", str(out), "--method", "median"]) == 2
    assert "no images among the 2 paths this pattern matches" in capsys.readouterr().err


def test_the_missing_psf_hint_is_a_psf_the_command_takes(tmp_path, capsys):
    # it suggested airy:na=1.4,pixel_size=65, refused (na above the refractive index 1)
    tifffile.imwrite(tmp_path / "a.tif", _image((48, 48)))
    args = ["restore", str(tmp_path / "a.tif"), "-o", str(tmp_path / "o.tif"), "-q"]
    assert main([*args, "--method", "deconv-2d"]) == 2
    hint = capsys.readouterr().err.split("or gaussian:sigma=2, ")[1].split(")")[0]
    assert main([*args, "--psf", hint]) == 0


def test_a_parameter_given_twice_is_refused_not_overwritten(tmp_path, capsys):
    # --param tile=48 --param tile=64 and gaussian:sigma=2,sigma=3 took the last silently
    tifffile.imwrite(tmp_path / "a.tif", _image((48, 48)))
    args = ["restore", str(tmp_path / "a.tif"), "-o", str(tmp_path / "o.tif"), "-q"]
    assert main([*args, "--param", "tile=48", "--param", "tile=64"]) == 2
    assert "tile is given twice" in capsys.readouterr().err
    assert main([*args, "--psf", "gaussian:sigma=2,sigma=3"]) == 2
    assert "sigma is given twice" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


def test_ctrl_c_during_a_streamed_restore_says_the_target_is_kept(
    big_zarr, tmp_path, capsys, monkeypatch
):
    """Session 67: Ctrl-C said "no partial output was left" beside the half-written
    OME-Zarr a streamed restore keeps for the same command to resume."""
    source, data = big_zarr
    target = tmp_path / "out.ome.zarr"
    real = dn.restore_to_zarr
    pressed = []

    def interrupted(*args, progress=None, **kwargs):
        def press(done, total):
            progress(done, total)
            if done >= 1 and not pressed:
                pressed.append(done)
                raise KeyboardInterrupt

        return real(*args, progress=press, chunks=32, **kwargs)  # (4 blocks)

    monkeypatch.setattr(dn, "restore_to_zarr", interrupted)
    command = ["-q", "restore", str(source), "-o", str(target), *FLOAT32_CPU]
    assert main(command) == 130
    err = capsys.readouterr().err
    assert "no partial output" not in err
    assert f"the unfinished {target} is kept: the same command resumes it" in err
    assert (target / ".napari_deconvnet_job").is_dir()
    assert main(command) == 0  # ... and it does
    assert not (target / ".napari_deconvnet_job").exists()
    expected = dn.restore(data, precision="float32", device="cpu")
    assert _relative_error(read_image(target).data, expected) < 1e-5


def test_psf_param_given_twice_is_refused_and_recorded_when_used(tmp_path, capsys):
    """Session 67: --psf gaussian:sigma=2 --psf-param sigma=3 deconvolved with sigma 3 and
    recorded sigma 2; --psf gaussian --psf-param sigma=3 was recorded as "gaussian"."""
    src = tmp_path / "b.tif"
    tifffile.imwrite(src, _image((48, 48)))
    out = tmp_path / "o.tif"
    rl = ["--method", "richardson-lucy", "--param", "iterations=3", "-q"]
    both = ["restore", str(src), "-o", str(out), *rl, "--psf", "gaussian:sigma=2"]
    assert main([*both, "--psf-param", "sigma=3"]) == 2
    assert "sigma is given twice (in --psf and in --psf-param)" in capsys.readouterr().err
    assert not out.exists()
    one = ["restore", str(src), "-o", str(out), *rl, "--psf", "gaussian", "--psf-param", "sigma=3"]
    assert main(one) == 0
    psf = read_image(out).metadata["napari_deconvnet"]["psf"]
    assert psf == {"given": "gaussian", "psf_param": ["sigma=3"]}


def test_batch_wide_options_are_refused_once(tmp_path, capsys):
    """Session 67: --device bogus with a classical method was taken and recorded;
    synthesize --seed -1 and --clip 1,0 were refused once per file of a batch."""
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    tifffile.imwrite(a, _image())
    tifffile.imwrite(b, _image(seed=1))
    assert main(["restore", str(a), "-o", str(tmp_path / "m.tif"), "--method", "median",
                 "--device", "bogus"]) == 2  # fmt: skip
    assert "--device bogus" in capsys.readouterr().err
    assert not (tmp_path / "m.tif").exists()
    for bad in (["--seed", "-1"], ["--clip", "1,0"], ["--clip", "nan,1"]):
        with pytest.raises(SystemExit) as stop:
            main(["synthesize", str(a), str(b), "-o", str(tmp_path / "s"), "--noise",
                  "gaussian", *bad])  # fmt: skip
        assert stop.value.code == 2
    assert not (tmp_path / "s").exists()


def test_export_psf_of_a_denoiser_and_an_empty_train_name_are_refused(tmp_path, capsys):
    psf = tmp_path / "psf.tif"
    tifffile.imwrite(psf, dn.make_psf("gaussian", (15, 15)).astype(np.float32))
    assert main(["export", "denoise-2d", "-o", str(tmp_path / "g.zip"), "--author", "A",
                 "--psf", str(psf)]) == 2  # fmt: skip
    assert "does not deconvolve" in capsys.readouterr().err
    assert not (tmp_path / "g.zip").exists()
    noisy, clean = tmp_path / "n.tif", tmp_path / "c.tif"
    tifffile.imwrite(noisy, _image((64, 64)))
    tifffile.imwrite(clean, _image((64, 64), seed=1))
    out = str(tmp_path / "m.safetensors")
    command = ["train", "--input", str(noisy), "--target", str(clean), "-o", out]
    assert main([*command, "--name", " ", "--epochs", "1"]) == 2
    assert "--name is empty" in capsys.readouterr().err


def test_ctrl_c_in_train_says_what_is_kept_in_one_line(tmp_path, capsys, monkeypatch):
    """Session 67: after Ctrl-C, train said the run was kept in its autosave, and then
    "interrupted; no partial output was left"."""
    from napari_deconvnet.cli import _commands

    noisy, clean = tmp_path / "n.tif", tmp_path / "c.tif"
    tifffile.imwrite(noisy, _image((64, 64)))
    tifffile.imwrite(clean, _image((64, 64), seed=1))
    real = _commands.progress_callback

    def interrupting(bar):
        shown = real(bar)

        def callback(event):
            shown(event)
            if event.kind == "epoch" and event.epoch >= 1:
                raise KeyboardInterrupt

        return callback

    monkeypatch.setattr(_commands, "progress_callback", interrupting)
    out = tmp_path / "m.safetensors"
    command = ["train", "--input", str(noisy), "--target", str(clean), "-o", str(out),
               "--epochs", "3", "--patch-size", "32", "-q"]  # fmt: skip
    assert main(command) == 130
    err = capsys.readouterr().err
    assert "no partial output" not in err
    assert "interrupted; the run so far is kept in" in err and "--resume" in err


def test_synthesize_takes_one_sided_clips_and_large_seeds(tmp_path):
    """Session 67 review: --clip=0,inf and seeds beyond 2**63 were refused by the new
    once-only checks, which the API takes."""
    src = tmp_path / "a.tif"
    tifffile.imwrite(src, _image())
    out = tmp_path / "s.tif"
    assert main(["synthesize", str(src), "-o", str(out), "--noise", "gaussian",
                 "--clip=0,inf", "--seed", str(2**64), "-q"]) == 0  # fmt: skip
    expected = dn.synthesize(_image(), "gaussian", seed=2**64, clip=(0, np.inf))
    np.testing.assert_allclose(read_image(out).data, expected, atol=1e-6)


def test_a_one_plane_psf_beside_a_tyx_file_deconvolves_plane_by_plane(tmp_path, capsys):
    """Session 67 review: the CLI chose deconv-3d for a (1, Y, X) PSF beside a TYX file
    from the file's dimensions alone, and deconv-3d refused the stack."""
    src = tmp_path / "tyx.tif"
    stack = np.random.default_rng(0).random((2, 64, 64)).astype(np.float32)
    tifffile.imwrite(src, stack, imagej=True, metadata={"axes": "TYX"})
    psf = tmp_path / "psf.npy"
    np.save(psf, dn.make_psf("gaussian", sigma=2, shape=(15, 15))[None].astype(np.float32))
    out = tmp_path / "r.tif"
    assert main(["restore", str(src), "-o", str(out), "--psf", str(psf), *FLOAT32_CPU]) == 0
    assert "deconv-2d" in capsys.readouterr().err
    expected = dn.restore(stack, "deconv-2d", psf=np.load(psf), axes="TYX",
                          precision="float32", device="cpu")  # fmt: skip
    assert _relative_error(read_image(out).data, expected) < 1e-5
