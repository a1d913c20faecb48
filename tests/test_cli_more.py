"""The train, export, info, sample, models and methods commands refuse misuse cleanly.

Each refusal is one line naming what was wrong and what is accepted, with exit
status 2 (usage) or 1 (failure while working), before any work where it can
be, and no output left behind. Images are tiny, training one short epoch.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_deconvnet as dn
from napari_deconvnet.cli import main

TRAIN = ["--epochs", "1", "--batch-size", "2", "--device", "cpu", "-q"]
TRAIN += ["--network", "base_channels=4"]


def _image(shape=(48, 48), seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, _image())
    return path


@pytest.fixture
def model_file(tmp_path_factory):
    """A tiny saved model (a new network, untrained)."""
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    dn.save_model(dn.DeconvNet(dn.DeconvNetConfig(base_channels=4, depth=1)), path)
    return path


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------- train


def test_train_uses_a_files_channel_axis(tmp_path, capsys):
    """A (Y, X, C) TIFF trains each channel (it was read as a 64 x 2 image, refused)."""
    src = tmp_path / "yxc.tif"
    tifffile.imwrite(src, _image((48, 48, 2)), metadata={"axes": "YXC"})
    out = tmp_path / "m.safetensors"
    assert main(["train", "--input", str(src), "-o", str(out), *TRAIN]) == 0, (
        capsys.readouterr().err
    )
    assert out.is_file()
    assert "too small" not in capsys.readouterr().err


def test_train_refuses_files_with_different_channel_axes(tmp_path, capsys):
    a, b = tmp_path / "yxc.tif", tmp_path / "cyx.ome.tif"
    tifffile.imwrite(a, _image((48, 48, 2)), metadata={"axes": "YXC"})
    tifffile.imwrite(b, _image((2, 48, 48)), metadata={"axes": "CYX"})
    out = tmp_path / "m.safetensors"
    assert main(["train", "--input", str(a), str(b), "-o", str(out), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert "has axes YXC but" in err and "has CYX" in err and "same axes" in err
    assert not out.exists()


def test_train_axes_option_is_checked_and_named(small, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--input", str(small), "-o", str(out), "--axes", "ZYX", *TRAIN]) == 2
    err = capsys.readouterr().err
    assert "--axes 'ZYX' has 3 letters but input 0 has 2 dimensions" in err
    assert not out.exists()


def test_train_names_the_file_with_nan(small, tmp_path, capsys):
    bad = tmp_path / "nan.npy"
    data = _image()
    data[3, 3] = np.nan
    np.save(bad, data)
    out = tmp_path / "m.safetensors"
    assert main(["train", "--input", str(small), str(bad), "-o", str(out), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: " in err and "NaN or infinite" in err and str(small) + "," not in err
    assert not out.exists()


def test_train_refuses_a_folder_as_output_before_training(small, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "m.safetensors"
    folder.mkdir()
    monkeypatch.setattr(dn, "train", lambda *a, **k: pytest.fail("trained anyway"))
    args = ["train", "--input", str(small), "-o", str(folder), "--overwrite", *TRAIN]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is a folder; name the output file" in err and "Error" not in err
    assert _files(folder) == [] and folder.is_dir()


def test_train_refuses_an_output_below_a_file(small, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(dn, "train", lambda *a, **k: pytest.fail("trained anyway"))
    out = small / "m.safetensors"
    assert main(["train", "--input", str(small), "-o", str(out), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}: {small} is a file, not a folder" in err


def test_train_refuses_an_unwritable_folder_before_training(small, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(folder) else real(p, mode)
    )
    monkeypatch.setattr(dn, "train", lambda *a, **k: pytest.fail("trained anyway"))
    out = folder / "m.safetensors"
    assert main(["train", "--input", str(small), "-o", str(out), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert f"the folder {folder} is not writable" in err


def test_train_save_error_is_one_line_exit_1(small, tmp_path, capsys, monkeypatch):
    def refuse(model, path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(dn, "save_model", refuse)
    out = tmp_path / "m.safetensors"
    assert main(["train", "--input", str(small), "-o", str(out), *TRAIN]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    autosave = tmp_path / "m.autosave.safetensors"
    assert err == (
        f"napari-deconvnet train: error: cannot write {out}: Permission denied; the trained "
        f"model was not saved (the run is kept in {autosave}: the same command with --resume "
        "writes it)"
    )
    assert not out.exists()
    # as said: the same command with --resume writes it, without training more
    monkeypatch.undo()
    assert main(["train", "--input", str(small), "-o", str(out), *TRAIN, "--resume"]) == 0
    assert out.is_file() and not autosave.exists()


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999", "x"])
def test_train_seed_out_of_range_is_a_usage_error(small, tmp_path, capsys, seed):
    out = tmp_path / "m.safetensors"
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--input", str(small), "-o", str(out), "--seed", seed, *TRAIN])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seed: expected an integer from 0 to 9223372036854775807" in err


def test_train_time_must_be_finite(small, tmp_path, capsys, monkeypatch):
    """``--time inf`` without --epochs would never end: refused."""
    monkeypatch.setattr(dn, "train", lambda *a, **k: pytest.fail("trained anyway"))
    with pytest.raises(SystemExit) as exit_:
        main(
            ["train", "--input", str(small), "-o", str(tmp_path / "m.safetensors")]
            + ["--time", "inf"]
        )
    assert exit_.value.code == 2
    assert "argument --time: expected a positive finite number, got 'inf'" in (
        capsys.readouterr().err
    )


def test_train_network_spec_error_shows_a_network_example(small, tmp_path, capsys):
    args = ["train", "--input", str(small), "-o", str(tmp_path / "m.safetensors")]
    assert main([*args, "--network", "foo"]) == 2
    err = capsys.readouterr().err
    assert "--network 'foo': expected key=value" in err and "ndim=3,base_channels=8" in err
    assert "poisson" not in err


@pytest.mark.parametrize("option", [["--model", ""], ["-o", ""]])
def test_train_empty_model_or_output_is_named(small, tmp_path, capsys, option):
    args = ["train", "--input", str(small), "-o", str(tmp_path / "m.safetensors"), *TRAIN]
    assert main([*args, *option]) == 2
    err = capsys.readouterr().err
    assert f"{option[0]} is empty" in err or "-o/--output is empty" in err
    assert "'.'" not in err


def test_train_repeated_input_and_target_options_add_up(tmp_path, capsys, monkeypatch):
    """``--input a --input b`` trains on both (the second used to replace the first)."""
    names = ["a", "b", "ca", "cb"]
    for seed, name in enumerate(names):
        tifffile.imwrite(tmp_path / f"{name}.tif", _image(seed=seed))
    seen = {}

    def fake_train(inputs, targets, **kwargs):
        seen.update(inputs=inputs, targets=targets)
        raise ValueError("stopped by the test")

    monkeypatch.setattr(dn, "train", fake_train)
    args = ["train", "--input", str(tmp_path / "a.tif"), "--input", str(tmp_path / "b.tif")]
    args += ["--target", str(tmp_path / "ca.tif"), "--target", str(tmp_path / "cb.tif")]
    assert main([*args, "-o", str(tmp_path / "m.safetensors"), *TRAIN]) == 2
    assert "stopped by the test" in capsys.readouterr().err
    assert len(seen["inputs"]) == 2 and len(seen["targets"]) == 2
    for got, seed in zip([*seen["inputs"], *seen["targets"]], range(4), strict=True):
        np.testing.assert_array_equal(np.asarray(got), _image(seed=seed))


# ------------------------------------------------------------------------ export


def test_export_unknown_suffix_names_the_cli_option(model_file, tmp_path, capsys):
    out = tmp_path / "x.txt"
    assert main(["export", str(model_file), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot tell the export format from 'x.txt'" in err and "--format" in err
    assert "format=" not in err.replace("--format", "")
    assert not out.exists()


def test_export_bad_license_is_one_short_line(model_file, tmp_path, capsys):
    out = tmp_path / "x.zip"
    assert main(["export", str(model_file), "-o", str(out), "--license", "no such"]) == 2
    err = capsys.readouterr().err
    assert "--license 'no such' is not an SPDX license identifier" in err and "MIT" in err
    assert len(err) < 400
    assert not out.exists()


def test_export_output_below_a_file(model_file, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "x.pt"
    assert main(["export", str(model_file), "-o", str(out)]) == 2
    assert f"{blocker} is a file, not a folder" in capsys.readouterr().err


def test_export_makes_a_missing_folder_as_the_other_commands_do(model_file, tmp_path, capsys):
    # it was refused ("the folder ... does not exist; create it first")
    out = tmp_path / "new" / "deeper" / "x.pt"
    assert main(["export", str(model_file), "-o", str(out)]) == 0
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out


def test_export_test_image_errors_name_the_option(model_file, tmp_path, capsys):
    image = tmp_path / "vol.tif"
    tifffile.imwrite(image, _image((4, 48, 48)), photometric="minisblack")
    out = tmp_path / "x.zip"
    assert main(["export", str(model_file), "-o", str(out), "--test-image", str(image)]) == 2
    err = capsys.readouterr().err
    assert f"--test-image {image}: test_image has shape (4, 48, 48)" in err
    assert not out.exists()


def test_export_write_error_is_a_failure(model_file, tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dn, "export", refuse)
    out = tmp_path / "x.pt"
    assert main(["export", str(model_file), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {out}: No space left on device" in err and "OSError" not in err


# -------------------------------------------------------------------------- info


@pytest.mark.parametrize("name", ["", "  "])
def test_info_empty_name(capsys, name):
    assert main(["info", name]) == 2
    err = capsys.readouterr().err
    assert "the model name is empty" in err and "'.'" not in err


# ------------------------------------------------------------------------ sample


def test_sample_output_without_a_name_is_refused(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sample", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "need a sample name" in err and "fluorescence" in err
    assert not out.exists()


def test_sample_refuses_a_folder_in_the_way_before_writing(tmp_path, capsys):
    (tmp_path / "cells_clean.tif").mkdir()
    assert main(["sample", "fluorescence", "-o", str(tmp_path), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "cells_clean.tif: it is a folder" in err and "IsADirectoryError" not in err
    assert _files(tmp_path) == ["cells_clean.tif"]  # nothing written before the refusal


def test_sample_refuses_a_folder_below_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["sample", "fluorescence", "-o", str(blocker / "sub")]) == 2
    assert f"{blocker} is a file, not a folder" in capsys.readouterr().err


def test_sample_empty_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" used to mean the current folder
    assert main(["sample", "fluorescence", "-o", ""]) == 2
    assert "-o/--output is empty" in capsys.readouterr().err
    assert _files(tmp_path) == []


def test_sample_write_error_is_a_failure(tmp_path, capsys, monkeypatch):
    from napari_deconvnet.io import writer

    def refuse(path, data, meta):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(writer, "write_tiff", refuse)
    assert main(["sample", "fluorescence", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "Permission denied" in err
    assert "PermissionError" not in err and _files(tmp_path) == []


# ------------------------------------------------------------ models and methods


@pytest.mark.parametrize("argv", [["models", "--json"], ["methods", "method", "noise"]])
def test_extra_arguments_are_the_commands_error(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"napari-deconvnet {argv[0]}: error: unrecognized arguments: ")
    assert f"see napari-deconvnet {argv[0]} --help" in err


def _calibrated_stack(path):
    x = (np.random.default_rng(0).random((12, 48, 48)) * 100).astype(np.float32)
    sizes = {"PhysicalSizeX": 0.065, "PhysicalSizeY": 0.065, "PhysicalSizeZ": 0.2}
    units = {f"{k}Unit": "µm" for k in sizes}
    tifffile.imwrite(path, x, ome=True, metadata={"axes": "ZYX", **sizes, **units})
    return x


def test_an_optical_psf_kind_takes_the_files_calibration(tmp_path, capsys):
    """``--psf widefield`` on an OME-TIFF in micrometres: the PSF of its 65 nm pixels and
    200 nm planes (it was the 100 nm / 250 nm defaults); a value given wins."""
    from napari_deconvnet.core.psf import fit_psf

    src = tmp_path / "cells.ome.tif"
    x = _calibrated_stack(src)
    common = ["--method", "richardson-lucy", "--param", "iterations=3", "--psf", "widefield"]
    common += ["--psf-param", "na=1.2", "--psf-param", "refractive_index=1.33"]
    assert main(["restore", str(src), "-o", str(tmp_path / "a.tif"), *common]) == 0
    assert (
        "PSF pixel size 65 nm, z step 200 nm (the file's calibration)" in capsys.readouterr().err
    )

    def expected(**optics):
        psf = dn.make_psf("widefield", na=1.2, refractive_index=1.33, **optics)
        return dn.richardson_lucy(x, fit_psf({"kind": "widefield"}, psf, x.shape), 3)

    got = tifffile.imread(tmp_path / "a.tif")
    np.testing.assert_allclose(got, expected(pixel_size=65, z_step=200), rtol=1e-4, atol=1e-4)
    assert np.abs(got - expected()).max() > 1  # the defaults give another result
    given = [*common, "--psf-param", "pixel_size=80"]
    assert main(["restore", str(src), "-o", str(tmp_path / "b.tif"), *given]) == 0
    assert "PSF z step 200 nm (the file's calibration)" in capsys.readouterr().err
    np.testing.assert_allclose(
        tifffile.imread(tmp_path / "b.tif"),
        expected(pixel_size=80, z_step=200),
        rtol=1e-4,
        atol=1e-4,
    )


def test_an_uncalibrated_file_keeps_the_kinds_defaults(tmp_path, capsys):
    src = tmp_path / "plain.tif"
    x = (np.random.default_rng(1).random((12, 48, 48)) * 100).astype(np.float32)
    tifffile.imwrite(src, x)
    args = ["--method", "wiener", "--psf", "widefield"]
    assert main(["restore", str(src), "-o", str(tmp_path / "c.tif"), *args]) == 0
    assert "calibration" not in capsys.readouterr().err


def test_an_interrupted_training_resumes_with_resume(tmp_path, small, monkeypatch, capsys):
    """train autosaves beside the output; after a failure (here: the final write) the
    same command with --resume continues the run (its steps and history go on) and the
    autosave files are removed once the model is written."""
    out = tmp_path / "sub" / "m.safetensors"
    autosave = tmp_path / "sub" / "m.autosave.safetensors"
    resume = tmp_path / "sub" / "m.autosave.resume.safetensors"
    args = ["train", "--input", str(small), "-o", str(out), "--seed", "3", *TRAIN]
    args[args.index("--epochs") + 1] = "2"
    real_save = dn.save_model

    def failing_save(model, path, *a, **k):
        if str(path) == str(out):
            raise OSError(28, "No space left on device")
        return real_save(model, path, *a, **k)

    monkeypatch.setattr(dn, "save_model", failing_save)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "--resume" in err
    assert not out.exists() and autosave.is_file() and resume.is_file()
    monkeypatch.setattr(dn, "save_model", real_save)
    assert main(args) == 2  # a new run would overwrite the interrupted one's files
    assert "pass --resume to continue it, or --overwrite" in capsys.readouterr().err
    more = list(args)
    more[more.index("--epochs") + 1] = "3"
    epochs_run, real_train = set(), dn.train

    def spy(*a, callback=None, **k):
        def counted(event):
            epochs_run.add(event.epoch)
            callback(event)

        assert k["resume"] == str(autosave)
        return real_train(*a, callback=counted, **k)

    monkeypatch.setattr(dn, "train", spy)
    assert main([*more, "--resume"]) == 0
    assert max(epochs_run) == 3 and 1 not in epochs_run  # only the third epoch ran now
    assert out.is_file() and not autosave.exists() and not resume.exists()
    training = dn.model_info(out)["metadata"]["training"]
    # two epochs before, one more now (steps_per_epoch 10 by default for this image)
    assert training["epochs"] == 3 and training["steps"] == 3 * (training["steps"] // 3)
    assert training["steps"] > 0
    # nothing left to resume: said so
    assert main([*more, "--resume"]) == 2
    assert "no interrupted run" in capsys.readouterr().err


def test_synthesize_blurs_with_the_files_calibrated_psf(tmp_path, capsys):
    src = tmp_path / "cells.ome.tif"
    x = _calibrated_stack(src)
    out = tmp_path / "blurred.tif"
    args = ["synthesize", str(src), "-o", str(out), "--noise", "none", "--psf", "widefield"]
    assert main([*args, "--psf-param", "na=1.2", "--psf-param", "refractive_index=1.33"]) == 0
    assert "PSF pixel size 65 nm, z step 200 nm" in capsys.readouterr().err
    from napari_deconvnet.core.psf import blur

    psf = dn.make_psf("widefield", na=1.2, refractive_index=1.33, pixel_size=65, z_step=200)
    np.testing.assert_allclose(tifffile.imread(out), blur(x, psf), rtol=1e-4, atol=1e-3)


def test_a_bad_noise_parameter_names_the_option(small, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    args = ["train", "--input", str(small), "--noise", "gaussian:sigma=-1", "-o", str(out)]
    assert main([*args, *TRAIN]) == 2
    assert "--noise 'gaussian': sigma must be >= 0" in capsys.readouterr().err
    assert not out.exists()


def test_train_refusals_name_the_commands_options(tmp_path, capsys):
    small = tmp_path / "tiny.tif"
    tifffile.imwrite(small, _image((20, 20)))
    out = tmp_path / "m.safetensors"
    args = ["train", "--input", str(small), "-o", str(out), "--patch-size", "64", *TRAIN]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--patch-size (64, 64) is larger than the spatial shape (20, 20)" in err
    assert "lower --patch-size" in err and "patch_size" not in err and "'s spatial" not in err


def test_axes_given_relabel_the_outputs_geometry_by_letter(tmp_path, random_net):
    # an ImageJ hyperstack labelled ZCYX (planes 0.3 um apart, pixels 0.065 um) whose
    # first two axes are really C and Z: --axes CZYX restored it so, but the output
    # kept the file's ZCYX labels and scale (and the anisotropy check paired C with Z)
    import json

    from napari_deconvnet.io.image_files import read_image

    v = (np.random.default_rng(0).random((4, 2, 48, 56)) * 1000).astype(np.uint16)
    src = tmp_path / "zcyx.tif"
    tifffile.imwrite(src, v, imagej=True, metadata={"axes": "ZCYX", "spacing": 0.3,
                     "unit": "um"}, resolution=(1 / 0.065, 1 / 0.065))  # fmt: skip
    model = dn.save_model(random_net(ndim=3), tmp_path / "m3.safetensors")
    out = tmp_path / "out.tif"
    assert main(["restore", str(src), "-o", str(out), "--axes", "CZYX", "--model",
                 str(model), "--device", "cpu"]) == 0  # fmt: skip
    written = read_image(out)
    assert written.axes == "CZYX"
    np.testing.assert_allclose(written.scale, [1.0, 0.3, 0.065, 0.065], rtol=1e-4)
    # streamed to OME-Zarr with other letters: Y's and X's pixel size is kept
    zout = tmp_path / "out.ome.zarr"
    dn.restore_to_zarr(src, zout, model, axes="CZYX", chunks=64)
    ms = json.loads((zout / ".zattrs").read_text())["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    scale = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
    np.testing.assert_allclose(scale, [1.0, 0.3, 0.065, 0.065], rtol=1e-4)
    # synthesize likewise (it drew the noise by the letters given and kept the file's)
    noisy = tmp_path / "noisy.tif"
    assert main(["synthesize", str(src), "-o", str(noisy), "--axes", "CZYX", "--noise",
                 "gaussian:sigma=5", "--quiet"]) == 0  # fmt: skip
    written = read_image(noisy)
    assert written.axes == "CZYX"
    np.testing.assert_allclose(written.scale, [1.0, 0.3, 0.065, 0.065], rtol=1e-4)


def test_a_reader_that_stops_early_ends_the_command_quietly(monkeypatch, capsys):
    # `napari-deconvnet models | head -1`: printed "error: BrokenPipeError" before
    import io

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone
    pipe = io.TextIOWrapper(os.fdopen(write_end, "wb", buffering=0), write_through=True)
    monkeypatch.setattr("sys.stdout", pipe)
    assert main(["models"]) == 141
    assert "error" not in capsys.readouterr().err
    pipe.write("still writable: the pipe was pointed at the null device\n")


def test_ctrl_c_before_a_resume_state_leaves_no_autosave(tmp_path, small, monkeypatch, capsys):
    # stopped early, the autosave stayed without its .resume file: --resume refused it
    # ("no interrupted run") although the CLI said no partial output was left
    out = tmp_path / "m.safetensors"
    autosave = tmp_path / "m.autosave.safetensors"

    def interrupted(*a, autosave=None, **k):
        Path(autosave).write_bytes(b"an early autosave")
        raise KeyboardInterrupt

    monkeypatch.setattr(dn, "train", interrupted)
    assert main(["train", "--input", str(small), "-o", str(out), *TRAIN]) == 130
    assert "no partial output was left" in capsys.readouterr().err
    assert not autosave.exists() and not out.exists()


def test_tile_takes_one_size_per_axis_for_a_stack(tmp_path, capsys):
    # --tile 32 on a 16-plane stack is a tile of 32 planes, refused; the command line had
    # no way to give Z its own size (the README's --axes ZYX --tile 256 failed so)
    volume = np.random.default_rng(0).random((16, 64, 64)).astype(np.float32)
    tifffile.imwrite(tmp_path / "vol.tif", volume, imagej=True, metadata={"axes": "ZYX"})
    args = ["restore", str(tmp_path / "vol.tif"), "--method", "denoise-3d", "-q"]
    assert main([*args, "-o", str(tmp_path / "a.tif"), "--tile", "16x32x32"]) == 0
    want = dn.restore(volume, "denoise-3d", tile=(16, 32, 32))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.tif"), want)
    assert main([*args, "-o", str(tmp_path / "b.tif"), "--tile", "16,32"]) == 2
    assert "tile" in capsys.readouterr().err
    for text in ("x32", "16,,32", "32x"):  # a size left out: refused, not guessed
        with pytest.raises(SystemExit):
            main([*args, "-o", str(tmp_path / "b.tif"), "--tile", text])
        assert "one per spatial axis" in capsys.readouterr().err
    assert dn.list_methods()["denoise-3d"].params[0].check([16, 32, 32]) == (16, 32, 32)
    # as text too: --param tile=..., and the Restore widget's field
    assert main([*args, "-o", str(tmp_path / "c.tif"), "--param", "tile=16x32x32"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "c.tif"), want)
    assert dn.list_methods()["denoise-3d"].params[0].check("16, 32, 32") == (16, 32, 32)


def test_model_files_hold_standard_json_and_a_bad_library_entry_is_refused(tmp_path, capsys):
    """A NaN in a model's record went into the file as a bare NaN (info --json printed
    it, which strict JSON readers refuse); a "library" entry that is not an object
    loaded, and info then failed with an AttributeError (session 68)."""
    import json
    import struct

    from safetensors.torch import load_file, save

    model = dn.load_model("denoise-2d")
    model.metadata["extra"] = {"score": float("nan"), "list": [1.0, float("inf")]}
    path = tmp_path / "nan.safetensors"
    dn.save_model(model, path)
    assert dn.load_model(path).metadata["extra"] == {"score": None, "list": [1.0, None]}
    assert main(["info", str(path), "--json"]) == 0
    json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(c))

    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    doc = json.loads(json.loads(raw[8 : 8 + n])["__metadata__"]["napari_deconvnet"])
    doc.pop("checksum")
    doc["library"] = "0.1.0"
    bad = tmp_path / "library.safetensors"
    bad.write_bytes(save(load_file(path), metadata={"napari_deconvnet": json.dumps(doc)}))
    with pytest.raises(ValueError, match="'library'"):
        dn.load_model(bad)
    assert main(["info", str(bad)]) == 2
    assert "corrupt napari-deconvnet metadata ('library')" in capsys.readouterr().err


def test_refusals_speak_of_options(tmp_path, capsys):
    rng = np.random.default_rng(0)
    image = tmp_path / "img.tif"
    tifffile.imwrite(image, rng.random((64, 64)).astype(np.float32))
    np.save(tmp_path / "big.npy", np.ones((99, 99)) / 99**2)
    reference = tmp_path / "nan.npy"
    ref = rng.random((64, 64)).astype(np.float32)
    ref[3, 3] = np.nan
    np.save(reference, ref)
    cases = [
        (["restore", str(image), "-o", str(tmp_path / "a.tif"), "--tile", "8x64x64"], "--tile must"),
        (["restore", str(image), "-o", str(tmp_path / "b.tif"), "--psf", str(tmp_path / "big.npy")], "a PSF file cropped to fit"),
        (["train", "--input", str(image), "--target", str(image), "--psf", "gaussian:sigma=2", "-o", str(tmp_path / "m.safetensors"), "--epochs", "1"], "--target (supervised pairs) or --noise/--psf"),
        (["train", "--input", str(image), "--network", "ndim=3", "-o", str(tmp_path / "n.safetensors"), "--epochs", "1"], "the input is 2D"),
        (["evaluate", str(image), str(reference)], "the reference contains NaN"),
        (["train", "--input", str(image), "--noise", "gaussian:sigma=0.1", "--psf", "gaussian:sigma=1", "--psf", "gaussian:sigma=2", "-o", str(tmp_path / "p.safetensors"), "--epochs", "1"], "--psf holds 2 PSFs"),
    ]  # fmt: skip
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err, err
        assert "make_psf" not in err and "pass data_range" not in err and "axes='" not in err


def test_adapt_help_says_steps_are_whole_epochs(capsys):
    # session 70's note: --steps 30 ran 50 steps (two epochs of 25) while the help said
    # "a bound on the optimisation steps"
    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "rounded up to whole epochs of 25 steps" in text
    from napari_deconvnet.core.adapt import DEFAULTS

    assert DEFAULTS["steps_per_epoch"] == 25  # the number the help names


def _ome(path, data, axes, size_um, z_um=None):
    meta = {"axes": axes, "PhysicalSizeX": size_um, "PhysicalSizeY": size_um}
    meta |= {"PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"}
    if z_um is not None:
        meta |= {"PhysicalSizeZ": z_um, "PhysicalSizeZUnit": "µm"}
    tifffile.imwrite(path, data, metadata=meta)


def test_a_psf_file_of_other_pixels_than_the_image_warns(tmp_path, capsys):
    """Session 72: a bead PSF file calibrated at 65 nm on 40 nm data was used pixel for
    pixel without a word (5.1 dB lost), where the Restore widget warns; the command line
    says so now, with both sizes, and keeps going; files that agree say nothing."""
    rng = np.random.default_rng(3)
    image = (rng.random((48, 48)) * 100).astype(np.float32)
    psf = dn.make_psf("airy", shape=(15, 15), na=1.2, refractive_index=1.33, pixel_size=65)
    _ome(tmp_path / "img40.ome.tif", image, "YX", 0.04)
    _ome(tmp_path / "psf65.ome.tif", psf, "YX", 0.065)
    _ome(tmp_path / "psf40.ome.tif", psf, "YX", 0.0401)  # (within 2 %)
    common = ["--method", "wiener", "-q"]
    src = str(tmp_path / "img40.ome.tif")
    out = str(tmp_path / "a.tif")
    psf65 = str(tmp_path / "psf65.ome.tif")
    assert main(["restore", src, "-o", out, "--psf", psf65, *common]) == 0
    err = capsys.readouterr().err
    assert "img40.ome.tif: the PSF file psf65.ome.tif has pixel size 65 nm where " in err
    assert "the image's is 40 nm" in err
    assert "resample it to the image's pixel size first" in err
    expected = dn.wiener(image, psf)  # used as given all the same
    np.testing.assert_allclose(tifffile.imread(out), expected, rtol=1e-4, atol=1e-4)
    args = ["-o", str(tmp_path / "b.tif"), "--psf", str(tmp_path / "psf40.ome.tif"), *common]
    assert main(["restore", src, *args]) == 0
    assert "warning" not in capsys.readouterr().err
    # the file rewritten at the image's pixel size: read afresh (its first reading was kept)
    _ome(tmp_path / "psf65.ome.tif", psf, "YX", 0.04)
    os.utime(tmp_path / "psf65.ome.tif", ns=(1, 10**18))
    args = ["-o", str(tmp_path / "c.tif"), "--psf", psf65, *common]
    assert main(["restore", src, *args]) == 0
    assert "warning" not in capsys.readouterr().err
    # a 3D PSF's Z step too, for synthesize and train alike
    stack = (rng.random((8, 32, 32)) * 100).astype(np.float32)
    psf3 = dn.make_psf("gaussian", shape=(5, 7, 7), sigma=(1.5, 1.0, 1.0))
    _ome(tmp_path / "vol.ome.tif", stack, "ZYX", 0.1, z_um=0.2)
    _ome(tmp_path / "psf3.ome.tif", psf3, "ZYX", 0.1, z_um=0.5)
    argv = ["synthesize", str(tmp_path / "vol.ome.tif"), "-o", str(tmp_path / "s.tif")]
    assert main([*argv, "--psf", str(tmp_path / "psf3.ome.tif"), "--noise", "none"]) == 0
    assert "has z step 500 nm where the image's is 200 nm" in capsys.readouterr().err


def test_a_streamed_restore_records_the_psf_kind_and_calibration(tmp_path, capsys):
    """Session 72: ``restore in.ome.tif -o out.ome.zarr --psf widefield`` streamed
    recorded the PSF as its shape alone, where the in-memory restore records the kind
    and the pixel size and Z step taken from the file."""
    import json

    from napari_deconvnet.io.writer import write_ome_zarr

    x = (np.random.default_rng(0).random((12, 48, 48)) * 100).astype(np.float32)
    src = tmp_path / "cells.ome.zarr"  # a .zarr source streams
    meta = {"scale": (0.2, 0.065, 0.065), "units": ("µm",) * 3, "axis_labels": ("z", "y", "x")}
    write_ome_zarr(src, x, meta)
    common = ["--model", "deconv-3d", "--psf", "widefield", "-q", "--device", "cpu"]
    out = tmp_path / "out.ome.zarr"
    assert main(["restore", str(src), "-o", str(out), *common]) == 0
    doc = json.loads((out / ".zattrs").read_text())["napari_deconvnet_layer"]
    prov = doc["metadata"]["napari_deconvnet"]
    assert prov["streamed"] is True
    psf = prov["psf"]
    assert psf["kind"] == "widefield" and psf["pixel_size"] == 65 and psf["z_step"] == 200
    assert len(psf["shape"]) == 3
    # the kind's defaults for what was not given (session 73: a "gaussian" had no sigma)
    assert psf["na"] == 0.8 and psf["wavelength"] == 520.0
    x2 = tmp_path / "flat.ome.zarr"
    write_ome_zarr(x2, x, {"axis_labels": ("z", "y", "x")})
    common[3] = "gaussian"
    assert main(["restore", str(x2), "-o", str(tmp_path / "g.ome.zarr"), *common]) == 0
    doc = json.loads((tmp_path / "g.ome.zarr" / ".zattrs").read_text())["napari_deconvnet_layer"]
    assert doc["metadata"]["napari_deconvnet"]["psf"] == {
        "kind": "gaussian", "sigma": 1.0, "shape": [9, 9, 9],
    }  # fmt: skip
