"""The napari-deconvnet command line: in-process for the details, as a subprocess for the rest."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_deconvnet as dn
from napari_deconvnet.cli import main
from napari_deconvnet.cli._files import UsageError, parse_spec
from napari_deconvnet.io import writer
from napari_deconvnet.io.reader import read_image


def _image(shape=(48, 40), seed=0):
    return np.random.default_rng(seed).normal(100, 10, shape).astype(np.float32)


@pytest.fixture
def tif(tmp_path):
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, _image(), imagej=True, resolution=(4.0, 4.0), metadata={"unit": "um"})
    return path


def _run(*args, timeout=300, **kwargs):
    """The installed console script, as a user runs it."""
    script = os.path.join(os.path.dirname(sys.executable), "napari-deconvnet")
    return subprocess.run(
        [script, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs
    )


# ----------------------------------------------------------------- restore


def test_restore_one_file(tif, tmp_path, capsys):
    out = tmp_path / "out.tif"
    assert main(["restore", str(tif), "-o", str(out), "--device", "cpu"]) == 0
    result = tifffile.imread(out)
    assert result.dtype == np.float32 and result.shape == (48, 40)
    np.testing.assert_allclose(result, dn.restore(_image(), device="cpu"), rtol=1e-6, atol=1e-5)
    image = read_image(out)
    provenance = image.metadata["napari_deconvnet"]
    assert provenance["model"] == "default" and provenance["version"] == dn.__version__
    assert provenance["axes"] == "YX" and provenance["source"] == str(tif)
    np.testing.assert_allclose(image.scale, [0.25, 0.25])  # the input's pixel size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]  # no temp files
    assert f"-> {out}" in capsys.readouterr().out


def test_restore_precision_is_chosen_and_recorded(tif, tmp_path, monkeypatch, capsys):
    from napari_deconvnet.core import devices

    out = tmp_path / "out.tif"
    args = ["restore", str(tif), "-o", str(out), "--device", "cpu", "--overwrite"]
    assert main([*args, "--precision", "float32"]) == 0
    assert read_image(out).metadata["napari_deconvnet"]["precision"] == "float32"
    # "auto" is recorded as what it resolved to: bfloat16 where the CPU has its units
    monkeypatch.setenv(devices.CPU_BFLOAT16_ENV, "1")
    monkeypatch.setattr(devices, "CPU_AUTO_BFLOAT16", True)
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: True)
    assert main(args) == 0
    assert read_image(out).metadata["napari_deconvnet"]["precision"] == "bfloat16"
    bf16 = dn.restore(_image(), device="cpu", precision="bfloat16")
    np.testing.assert_allclose(tifffile.imread(out), bf16, rtol=1e-6, atol=1e-5)
    # a classical method has no precision
    code = main(["restore", str(tif), "-o", str(tmp_path / "m.tif"), "--method", "median",
                 "--precision", "float32"])  # fmt: skip
    assert code == 2
    assert "--precision is for models; 'median' is a classical method" in capsys.readouterr().err


def test_restore_with_a_model_trained_on_other_noise_warns_in_cli_words(
    tmp_path, capsys, quiet_specialist
):
    model, clean = quiet_specialist
    source = tmp_path / "noisy.tif"
    noise = np.random.default_rng(1).normal(0, 0.3, clean.shape)
    tifffile.imwrite(source, (clean + noise).astype(np.float32))
    out = tmp_path / "out.tif"
    assert (
        main(["restore", str(source), "-o", str(out), "--method", str(model), "--device", "cpu"])
        == 0
    )
    err = capsys.readouterr().err
    assert "napari-deconvnet restore: warning: This image is" in err
    assert "noisier than the data" in err and out.exists()


def test_a_measured_psf_with_small_negative_values_warns_in_cli_words(tif, tmp_path, capsys):
    # a bead image with its background subtracted: noise below zero in the tails
    psf = dn.make_psf("gaussian", (15, 15), sigma=1.5).astype(np.float64)
    psf += np.random.default_rng(1).normal(0, 3e-4, psf.shape)
    np.save(tmp_path / "psf.npy", psf)
    out = tmp_path / "out.tif"
    args = ["restore", str(tif), "-o", str(out), "--method", "richardson-lucy"]
    assert main([*args, "--psf", str(tmp_path / "psf.npy"), "--param", "iterations=5"]) == 0
    err = capsys.readouterr().err
    assert "napari-deconvnet restore: warning: psf has negative values" in err
    assert ".py:" not in err  # no source location
    expected = dn.richardson_lucy(_image(), np.clip(psf, 0, None), 5)
    np.testing.assert_allclose(tifffile.imread(out), expected, rtol=1e-5, atol=1e-5)


def test_a_bead_crop_on_the_camera_offset_loses_its_background_in_cli_words(tif, tmp_path, capsys):
    from napari_deconvnet.core.psf import remove_pedestal

    psf = dn.make_psf("gaussian", (21, 21), sigma=1.5)
    rng = np.random.default_rng(2)
    crop = rng.poisson(100 + 2000 * psf / psf.max()).astype(np.float32)  # as the camera gives it
    tifffile.imwrite(tmp_path / "bead.tif", crop)
    out = tmp_path / "out.tif"
    args = ["restore", str(tif), "-o", str(out), "--method", "richardson-lucy"]
    assert main([*args, "--psf", str(tmp_path / "bead.tif"), "--param", "iterations=5"]) == 0
    err = capsys.readouterr().err
    assert "napari-deconvnet restore: warning: the PSF sits on a flat background of" in err
    cleaned = remove_pedestal(crop)
    assert cleaned.sum() < 0.5 * crop.sum()  # the floor was most of it
    expected = dn.richardson_lucy(_image(), cleaned / cleaned.sum(), 5)
    np.testing.assert_allclose(tifffile.imread(out), expected, rtol=1e-5, atol=1e-5)


def test_restore_decorrelates_when_asked(tmp_path):
    from scipy import ndimage

    rng = np.random.default_rng(3)
    clean = np.tile(np.linspace(0.2, 0.8, 96), (96, 1))
    noise = ndimage.gaussian_filter(rng.normal(0, 1, clean.shape), 0.7)
    noisy = (clean + noise * (25 / 255) / noise.std()).astype(np.float32)
    tifffile.imwrite(tmp_path / "reg.tif", noisy)
    cases = ((None, dn.restore(noisy)), ("true", dn.restore(noisy, decorrelate=True)))
    for flag, expected in cases:
        out = tmp_path / f"out-{flag}.tif"
        extra = ["--param", f"decorrelate={flag}"] if flag else []
        assert main(["restore", str(tmp_path / "reg.tif"), "-o", str(out), *extra]) == 0
        np.testing.assert_allclose(tifffile.imread(out), expected, atol=1e-6)
    assert not np.allclose(dn.restore(noisy), dn.restore(noisy, decorrelate=True), atol=1e-3)


def test_restore_with_a_deconvolution_model_and_a_psf(tif, tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = dn.DeconvNet(ndim=2, in_channels=2, out_channels=1, depth=1, residual_input=1)
    net.metadata = {"name": "deconv-test", "needs_psf": True, "conditioning": {"method": "wiener"}}
    model = tmp_path / "deconv.safetensors"
    dn.save_model(net, model)
    out = tmp_path / "out.tif"
    args = ["restore", str(tif), "-o", str(out), "--model", str(model)]
    assert main(args) == 2  # a deconvolution model needs --psf
    assert main([*args, "--psf", "gaussian:sigma=1.5"]) == 0
    expected = dn.restore(_image(), model, psf={"kind": "gaussian", "sigma": 1.5})
    np.testing.assert_allclose(tifffile.imread(out), expected, rtol=1e-5, atol=1e-4)


def test_a_named_psf_is_made_in_the_3d_models_dimensions(tmp_path):
    # --method deconv-3d --psf gaussian made a 2D kernel, which deconv-3d refused (the
    # API makes a name in the model's dimensions); adapt and train likewise
    rng = np.random.default_rng(0)
    volume = rng.poisson(40 * rng.random((12, 40, 40))).astype(np.float32)
    image = tmp_path / "vol.tif"
    tifffile.imwrite(image, volume, imagej=True, metadata={"axes": "ZYX"})
    out = tmp_path / "out.tif"
    args = ["restore", str(image), "-o", str(out), "--method", "deconv-3d", "-q"]
    assert main([*args, "--psf", "gaussian"]) == 0
    expected = dn.restore(volume, "deconv-3d", psf="gaussian")
    np.testing.assert_allclose(tifffile.imread(out), expected, atol=1e-5)
    model = tmp_path / "adapted.safetensors"
    adapt = ["adapt", str(image), "-o", str(model), "--model", "deconv-3d", "--steps", "1"]
    assert main([*adapt, "--psf", "gaussian:sigma=1.2", "-q"]) == 0
    record = dn.load_model(model).metadata["training"]
    assert dn.load_model(model).config.ndim == 3 and len(record["psf_shape"]) == 3
    # ndim= given is kept: a 2D Gaussian for a 3D model is refused, as before
    assert main([*args, "--psf", "gaussian:ndim=2", "--overwrite"]) == 2


def test_restore_with_a_psf_and_no_method_deconvolves_with_the_shipped_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    clean = np.zeros((40, 48), np.float32)
    clean[rng.integers(4, 36, 12), rng.integers(4, 44, 12)] = 1.0
    psf = dn.make_psf("gaussian", sigma=1.5)
    blurred = dn.core.psf.blur(clean, psf) + rng.normal(0, 0.01, clean.shape)
    image = tmp_path / "in.tif"
    tifffile.imwrite(image, blurred.astype(np.float32))
    out = tmp_path / "out.tif"
    assert main(["restore", str(image), "-o", str(out), "--psf", "gaussian:sigma=1.5"]) == 0
    assert "deconvolving with deconv-2d" in capsys.readouterr().err
    expected = dn.restore(blurred.astype(np.float32), "deconv-2d", psf=psf)
    np.testing.assert_allclose(tifffile.imread(out), expected, atol=1e-5)
    assert read_image(out).metadata["napari_deconvnet"]["method"] == "deconv-2d"
    # a 3D PSF: deconv-3d on the volume
    volume = np.stack([blurred] * 8).astype(np.float32)
    psf3 = dn.make_psf("gaussian", shape=(5, 9, 9), sigma=(1.0, 1.5, 1.5))
    np.save(tmp_path / "psf.npy", psf3)
    tifffile.imwrite(tmp_path / "vol.tif", volume, imagej=True, metadata={"axes": "ZYX"})
    out3 = tmp_path / "vol_out.tif"
    argv = ["restore", str(tmp_path / "vol.tif"), "-o", str(out3), "--psf"]
    assert main([*argv, str(tmp_path / "psf.npy"), "-q"]) == 0
    assert "deconvolving" not in capsys.readouterr().err  # --quiet
    expected3 = dn.restore(volume, "deconv-3d", psf=psf3, axes="ZYX")
    np.testing.assert_allclose(tifffile.imread(out3), expected3, atol=1e-5)
    assert read_image(out3).metadata["napari_deconvnet"]["method"] == "deconv-3d"


def test_restore_finds_dark_borders_and_takes_a_borders_param(tmp_path):
    """A zero-padded blur (fftconvolve 'same') through the CLI is extended as dn.restore
    extends it (core.borders), and --param borders=mirror restores it as before."""
    from scipy.signal import fftconvolve
    from skimage import data, img_as_float

    clean = img_as_float(data.brick())[:64, :64]
    psf = dn.make_psf("gaussian", sigma=2.0)
    noise = np.random.default_rng(1).normal(0, 0.01, clean.shape)
    blurred = (fftconvolve(clean, psf, mode="same") + noise).astype(np.float32)
    tifffile.imwrite(tmp_path / "in.tif", blurred)
    argv = ["restore", str(tmp_path / "in.tif"), "--psf", "gaussian:sigma=2", "-q"]
    argv += ["--method", "deconv-2d", "--precision", "float32", "--device", "cpu"]
    assert main([*argv, "-o", str(tmp_path / "auto.tif")]) == 0
    assert main([*argv, "-o", str(tmp_path / "mirror.tif"), "--param", "borders=mirror"]) == 0
    auto, mirror = tifffile.imread(tmp_path / "auto.tif"), tifffile.imread(tmp_path / "mirror.tif")
    restore = {"psf": psf, "precision": "float32", "device": "cpu"}
    np.testing.assert_allclose(auto, dn.restore(blurred, "deconv-2d", **restore), atol=1e-5)
    expected = dn.restore(blurred, "deconv-2d", borders="mirror", **restore)
    np.testing.assert_allclose(mirror, expected, atol=1e-5)
    r = float(np.ptp(clean))
    assert dn.psnr(clean, auto, data_range=r) > dn.psnr(clean, mirror, data_range=r) + 2
    assert main([*argv, "-o", str(tmp_path / "x.tif"), "--param", "borders=zero"]) == 2


def test_restore_refines_to_a_camera_noise_given_as_params(tmp_path, capsys):
    """--param refine_gain=... (photons per unit), refine_offset, refine_read_noise: raw
    camera counts (2 ADU per photon over an offset of 100) refined as dn.restore(refine=)."""
    from scipy import ndimage

    from napari_deconvnet.core.phantoms import phantom

    rng = np.random.default_rng(2)
    clean = np.clip(phantom((96, 96), ("beads", "filaments"), rng, mix=2), 0, None)
    clean = clean / clean.max()
    psf = dn.make_psf("gaussian", sigma=2.0)
    mean = ndimage.convolve(clean, psf / psf.sum(), mode="mirror") * 1e5
    adu = (2.0 * (rng.poisson(mean) + rng.normal(0, 1.5, mean.shape)) + 100).astype(np.float32)
    tifffile.imwrite(tmp_path / "in.tif", adu)
    argv = ["restore", str(tmp_path / "in.tif"), "--psf", "gaussian:sigma=2", "-q"]
    argv += ["--method", "deconv-2d", "--precision", "float32", "--device", "cpu"]
    camera = ["refine_gain=0.5", "refine_offset=100", "refine_read_noise=1.5"]
    given = [word for p in camera for word in ("--param", p)]
    assert main([*argv, "-o", str(tmp_path / "refined.tif"), *given]) == 0
    assert main([*argv, "-o", str(tmp_path / "plain.tif")]) == 0
    refined = tifffile.imread(tmp_path / "refined.tif")
    noise = {"noise": "poisson-gaussian", "gain": 0.5, "offset": 100.0, "read_noise": 1.5}
    restore = {"psf": psf, "precision": "float32", "device": "cpu"}
    np.testing.assert_allclose(
        refined, dn.restore(adu, "deconv-2d", refine=noise, **restore), atol=1e-3
    )

    def score(path):
        return dn.psnr(clean, np.clip((tifffile.imread(path) - 100) / 2e5, 0, 1), data_range=1)

    assert score(tmp_path / "refined.tif") > score(tmp_path / "plain.tif") + 0.3
    assert main([*argv, "-o", str(tmp_path / "x.tif"), "--param", "refine_gain=0"]) == 2
    assert "refine_gain" in capsys.readouterr().err
    # the camera's offset and read noise without its gain: refused (session 70: ignored,
    # and recorded as applied)
    camera = ["--param", "refine_offset=3", "--param", "refine_read_noise=2"]
    assert main([*argv, "-o", str(tmp_path / "y.tif"), *camera]) == 2
    err = capsys.readouterr().err
    assert "--param refine_offset and refine_read_noise" in err and "give it too" in err
    assert not (tmp_path / "y.tif").exists()


def test_a_generated_psf_deeper_than_the_stack_is_cropped_with_a_warning(tmp_path, capsys):
    """--psf widefield makes 27 planes: a 12-plane stack used to be refused."""
    from napari_deconvnet.core.phantoms import phantom
    from napari_deconvnet.core.psf import crop_to

    clean = phantom((12, 40, 40), rng=5, mix=2)
    psf = {"kind": "gaussian", "sigma": (1.0, 1.5, 1.5)}
    blurred = dn.synthesize(clean, "poisson", psf=psf, peak=300, seed=1)
    tifffile.imwrite(tmp_path / "z.tif", blurred, imagej=True, metadata={"axes": "ZYX"})
    out = tmp_path / "z_out.tif"
    assert main(["restore", str(tmp_path / "z.tif"), "-o", str(out), "--psf", "widefield"]) == 0
    err = capsys.readouterr().err
    assert "deconvolving with deconv-3d" in err and "was cropped to (11, 25, 25)" in err
    fitted = crop_to(dn.make_psf("widefield"), clean.shape)
    expected = dn.restore(blurred, "deconv-3d", psf=fitted, axes="ZYX")
    np.testing.assert_allclose(tifffile.imread(out), expected, atol=1e-5)


def test_restore_runs_classical_methods_with_their_parameters(tif, tmp_path, capsys):
    psf = dn.make_psf("gaussian", sigma=1.0)
    out = tmp_path / "w.tif"
    argv = ["restore", str(tif), "-o", str(out), "--method", "wiener", "--param", "balance=0.05"]
    assert main([*argv, "--psf", "gaussian", "--psf-param", "sigma=1"]) == 0
    np.testing.assert_allclose(tifffile.imread(out), dn.wiener(_image(), psf, 0.05), atol=1e-5)
    record = read_image(out).metadata["napari_deconvnet"]
    assert record["method"] == "wiener" and record["params"] == {"balance": 0.05}
    # (with its --psf-param: session 67 recorded "gaussian" alone, the default sigma)
    assert record["psf"] == {"given": "gaussian", "psf_param": ["sigma=1"]}
    assert "model" not in record
    # the old spelling of a PSF kind with its parameters gives the same PSF
    old = tmp_path / "old.tif"
    argv = ["restore", str(tif), "-o", str(old), "--method", "wiener", "--param", "balance=0.05"]
    assert main([*argv, "--psf", "gaussian:sigma=1"]) == 0
    np.testing.assert_array_equal(tifffile.imread(old), tifffile.imread(out))
    # "Open restored" on a classical result shows it, and does not restore it again
    from napari_deconvnet.io.reader import read_restored

    layers = read_restored(str(out), model="denoise-2d")
    assert len(layers) == 1 and layers[0][1]["metadata"]["napari_deconvnet"]["method"] == "wiener"
    capsys.readouterr()
    for extra, message in [
        (["--method", "median", "--tile", "64"], "--tile is for models"),
        (["--method", "median", "--param", "size"], "name=value"),
        (["--method", "median", "--param", "size=0"], "size must be >= 1"),
        (["--method", "median", "--psf", "gaussian"], "takes no PSF"),
        (["--method", "wiener"], "needs --psf"),
        (["--method", "median", "--model", "denoise-2d"], "not both"),
        (["--method", "wiener", "--psf", "gaussian", "--psf-param", "width=2"], "width"),
        (["--method", "nope"], "unknown model or method 'nope'"),
    ]:
        assert main(["restore", str(tif), "-o", str(tmp_path / "x.tif"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (extra, err)
    assert not (tmp_path / "x.tif").exists()


def test_methods_lists_every_family_as_text_and_json(capsys):
    assert main(["methods", "--no-models"]) == 0
    text = capsys.readouterr().out
    for name in [*dn.list_methods(models=False), *dn.list_noise_models(), *dn.list_psfs()]:
        assert f"  {name}" in text
    assert "iterations=30  int [1, 10000]" in text
    assert main(["methods", "noise", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in listed["noise"]] == list(dn.list_noise_models())
    gaussian = listed["noise"][0]["params"][0]
    assert gaussian["name"] == "sigma" and gaussian["default"] == 0.1


def test_existing_output_is_skipped_unless_overwrite(tif, tmp_path, capsys):
    out = tmp_path / "out.tif"
    out.write_bytes(b"keep me")
    assert main(["restore", str(tif), "-o", str(out)]) == 0
    assert out.read_bytes() == b"keep me"
    assert "--overwrite" in capsys.readouterr().err
    assert main(["restore", str(tif), "-o", str(out), "--overwrite"]) == 0
    assert tifffile.imread(out).shape == (48, 40)


def test_several_inputs_go_to_a_folder(tmp_path):
    rgb = (np.random.default_rng(1).random((32, 36, 3)) * 255).astype(np.uint8)
    from skimage.io import imsave

    imsave(tmp_path / "photo.png", rgb, check_contrast=False)
    np.save(tmp_path / "array.npy", _image((40, 44)))
    tifffile.imwrite(tmp_path / "stack.tif", _image((3, 40, 44)), photometric="minisblack")
    inputs = [str(tmp_path / n) for n in ("photo.png", "array.npy", "stack.tif")]
    out = tmp_path / "results"
    assert main(["restore", *inputs, "-o", str(out), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "array_restored.tif",
        "photo_restored.tif",
        "stack_restored.tif",
    ]
    photo = read_image(out / "photo_restored.tif")
    assert photo.rgb
    np.testing.assert_allclose(
        photo.data, dn.restore(rgb, axes="YXS", device="cpu"), rtol=1e-6, atol=1e-4
    )
    assert tifffile.imread(out / "stack_restored.tif").shape == (3, 40, 44)


def test_folders_globs_and_formats(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(3):
        writer.write_tiff(raw / f"s{i}.tif", _image((2, 32, 32), seed=i), {"scale": (2, 1, 1)})
    (raw / "notes.txt").write_text("ignored in a folder")
    out = tmp_path / "out"
    assert main(["restore", str(raw), "-o", str(out), "--format", "ome.zarr"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"s{i}_restored.ome.zarr" for i in range(3)]
    image = read_image(out / "s1_restored.ome.zarr")
    assert image.scale == [2.0, 1.0, 1.0] and image.axes == "ZYX"
    np.testing.assert_allclose(
        np.asarray(image.data), dn.restore(_image((2, 32, 32), seed=1), device="cpu"), atol=1e-4
    )
    again = ["restore", str(raw / "s1.tif"), "-o", str(out / "s1_restored.ome.zarr")]
    assert main([*again, "--overwrite"]) == 0  # an existing .zarr is an image, not a folder
    assert sorted(p.name for p in out.iterdir()) == [f"s{i}_restored.ome.zarr" for i in range(3)]
    assert read_image(out / "s1_restored.ome.zarr").scale == [2.0, 1.0, 1.0]
    glob_out = tmp_path / "glob"
    assert main(["restore", str(raw / "s[02].tif"), "-o", str(glob_out)]) == 0
    assert sorted(p.name for p in glob_out.iterdir()) == ["s0_restored.tif", "s2_restored.tif"]


def test_npy_output(tif, tmp_path):
    out = tmp_path / "out.npy"
    assert main(["restore", str(tif), "-o", str(out), "--tile", "16", "--axes", "YX"]) == 0
    assert np.load(out).shape == (48, 40)


def test_large_inputs_are_restored_lazily(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_DECONVNET_LAZY_BYTES", "1")
    data = _image((4, 40, 40))
    np.save(tmp_path / "big.npy", data)
    for name in ("big.tif", "big.npy", "big.ome.zarr"):
        assert main(["restore", str(tmp_path / "big.npy"), "-o", str(tmp_path / "o" / name)]) == 0
        out = read_image(tmp_path / "o" / name, lazy_bytes=1 << 40)
        if name != "big.npy":  # .npy files hold no provenance
            prov = out.metadata["napari_deconvnet"]
            # lazily restored, or streamed block by block into the OME-Zarr
            assert prov.get("lazy") is True or prov.get("streamed") is True, (name, prov)
        np.testing.assert_allclose(
            np.asarray(out.data), dn.restore(data, device="cpu"), rtol=1e-5, atol=1e-3
        )


def test_a_trailing_slash_names_a_folder(tif, tmp_path, capsys):
    # session 70's note: "-o out.tif/" wrote the file out.tif where "-o out/" made a folder
    assert main(["restore", str(tif), "-o", f"{tmp_path / 'out.tif'}/", "--device", "cpu"]) == 0
    assert (tmp_path / "out.tif").is_dir()
    assert [p.name for p in (tmp_path / "out.tif").iterdir()] == ["in_restored.tif"]
    # an OME-Zarr image with a slash, as shells complete it, stays that image
    assert main(["restore", str(tif), "-o", f"{tmp_path / 'r.ome.zarr'}/", "--device", "cpu"]) == 0
    assert read_image(tmp_path / "r.ome.zarr").data.shape == (48, 40)
    (tmp_path / "file.tif").write_bytes(b"")
    assert main(["restore", str(tif), "-o", f"{tmp_path / 'file.tif'}/"]) == 2
    assert "is a file, but -o ending in / names a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [
            "train",
            "--input",
            "{tif}",
            "--target",
            "{tif}",
            "--time",
            "1",
            "-o",
            "{dir}/m.safetensors/",
        ],
        ["adapt", "{tif}", "--time", "1", "-o", "{dir}/m.safetensors/"],
        ["export", "default", "-o", "{dir}/m.zip/"],
        ["evaluate", "{tif}", "{tif}", "--ssim-map", "{dir}/s.tif/"],
        ["demo", "--headless", "-o", "{dir}/d.tif/"],
    ],
)
def test_a_trailing_slash_on_a_one_file_output_is_refused(argv, tif, tmp_path, capsys):
    # session 71's note: "-o model.safetensors/" (a folder, by restore's rule) wrote the
    # file model.safetensors for train, adapt, export, evaluate --ssim-map and demo
    argv = [a.format(tif=tif, dir=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ends in /, which names a folder, but this command writes one file" in err
    assert not any(p.suffix in (".safetensors", ".zip") for p in tmp_path.iterdir())
    assert not (tmp_path / "s.tif").exists() and not (tmp_path / "d.tif").exists()


def _two_named_channels(tmp_path, seed):
    """An OME-TIFF C, Z, Y, X stack whose channels are named "membrane" and "nuclei"."""
    rng = np.random.default_rng(seed)
    stack = (rng.random((2, 3, 40, 48)) * 1000).astype(np.uint16)
    src = tmp_path / "two.ome.tif"
    names = {"Name": ["membrane", "nuclei"]}
    tifffile.imwrite(src, stack, ome=True, metadata={"axes": "CZYX", "Channel": names})
    return stack, src


def test_channel_names_survive_a_restore(tmp_path):
    # session 71: an OME-TIFF's channel names ("membrane", "nuclei") were lost on every
    # output, and an OME-Zarr's omero labels were never read
    stack, src = _two_named_channels(tmp_path, 0)
    assert read_image(src).metadata["channel_names"] == ["membrane", "nuclei"]
    for out in ("r.ome.tif", "r.ome.zarr"):
        assert main(["restore", str(src), "-o", str(tmp_path / out), "-q", "--device", "cpu"]) == 0
        image = read_image(tmp_path / out)
        assert image.axes == "CZYX" and image.metadata["channel_names"] == ["membrane", "nuclei"]
    zattrs = json.loads((tmp_path / "r.ome.zarr" / ".zattrs").read_text())
    assert [c["label"] for c in zattrs["omero"]["channels"]] == ["membrane", "nuclei"]
    with tifffile.TiffFile(tmp_path / "r.ome.tif") as t:
        assert 'Name="membrane"' in t.ome_metadata and 'Name="nuclei"' in t.ome_metadata
    # names that do not fit the output's channels are left out, not written wrong
    from napari_deconvnet.io.writer import write_ome_zarr

    meta = {"metadata": {"channel_names": ["a", "b", "c"]}, "axis_labels": ("c", "y", "x")}
    write_ome_zarr(tmp_path / "w.ome.zarr", stack[:, 0], meta)
    assert "omero" not in json.loads((tmp_path / "w.ome.zarr" / ".zattrs").read_text())


def test_channel_names_survive_a_streamed_restore(tmp_path):
    # session 71's note: restore_to_zarr (the CLI's path for big inputs) wrote no channel
    # names, from an OME-TIFF's Channel Name or from an OME-Zarr's omero labels
    stack, src = _two_named_channels(tmp_path, 1)
    first = dn.restore_to_zarr(str(src), str(tmp_path / "a.ome.zarr"), model="default")
    second = dn.restore_to_zarr(first, str(tmp_path / "b.ome.zarr"), model="default")
    for out in (first, second):
        zattrs = json.loads((Path(out) / ".zattrs").read_text())
        assert [c["label"] for c in zattrs["omero"]["channels"]] == ["membrane", "nuclei"]
        assert read_image(out).metadata["channel_names"] == ["membrane", "nuclei"]
    # a grey image (no C axis) gets none
    tifffile.imwrite(tmp_path / "g.tif", stack[0, 0])
    grey = dn.restore_to_zarr(str(tmp_path / "g.tif"), str(tmp_path / "g.ome.zarr"))
    assert "omero" not in json.loads((Path(grey) / ".zattrs").read_text())


def test_an_empty_zarr_folder_or_photo_fails_alone_in_words(tif, tmp_path, capsys):
    # session 71: an empty .zarr folder refused the whole batch ("unsupported file type
    # '.zarr'; use ... .zarr folders"), and a broken PNG advised installing imageio[pyav]
    (tmp_path / "empty.zarr").mkdir()
    (tmp_path / "blank.png").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    inputs = [str(tmp_path / n) for n in ("empty.zarr", "blank.png", "junk.png")]
    out = tmp_path / "out"
    assert main(["restore", *inputs, str(tif), "-o", str(out), "--device", "cpu"]) == 1
    assert [p.name for p in out.iterdir()] == ["in_restored.tif"]
    err = capsys.readouterr().err
    assert "empty.zarr: a .zarr folder without zarr metadata" in err
    assert "blank.png: the file is empty (0 bytes)" in err
    assert "junk.png: not an image imageio can read, nor a PNG or JPEG" in err
    assert "3 of 4 inputs" in err and "pip install" not in err
    # another format under a photo's extension still reads, as it did (review)
    import imageio.v3 as iio

    bmp = (np.arange(64 * 48).reshape(48, 64) % 251).astype(np.uint8)
    iio.imwrite(tmp_path / "bitmap.png", bmp, extension=".bmp")
    assert (tmp_path / "bitmap.png").read_bytes()[:2] == b"BM"
    np.testing.assert_array_equal(read_image(tmp_path / "bitmap.png").data, bmp)


@pytest.mark.parametrize("given", ["folder", "pattern"])
def test_a_broken_zarr_in_a_folder_or_pattern_fails_in_words(tif, tmp_path, capsys, given):
    # session 73: a folder's or a pattern's .zarr without zarr metadata was left out of
    # the batch without a word (exit status 0); named, it failed as one input
    import shutil

    folder = tmp_path / "in"
    (folder / "broken.zarr").mkdir(parents=True)
    (folder / "broken.zarr" / "notes.txt").write_text("x")
    shutil.copy(tif, folder / "ok.tif")
    spec = str(folder) if given == "folder" else str(folder / "*")
    out = tmp_path / "out"
    assert main(["restore", spec, "-o", str(out), "--device", "cpu"]) == 1
    assert [p.name for p in out.iterdir()] == ["ok_restored.tif"]
    err = capsys.readouterr().err
    assert "broken.zarr: a .zarr folder without zarr metadata" in err and "1 of 2" in err


def test_a_folder_input_leaves_hidden_files_out_and_options_are_named(tif, tmp_path, capsys):
    # session 73: macOS's "._name.tif" beside each file failed every folder batch (a
    # pattern left it out); "--tile 7" was said as "--param: tile must be"; evaluate
    # said "x (the result)" of a result with NaN
    import shutil

    folder = tmp_path / "mac"
    folder.mkdir()
    shutil.copy(tif, folder / "cell.tif")
    (folder / "._cell.tif").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)
    out = tmp_path / "out"
    assert main(["restore", str(folder), "-o", str(out), "--device", "cpu"]) == 0
    assert [p.name for p in out.iterdir()] == ["cell_restored.tif"]
    capsys.readouterr()
    assert main(["restore", str(tif), "-o", str(tmp_path / "t.tif"), "--tile", "7"]) == 2
    assert "error: --tile must be >= 8, not 7" in capsys.readouterr().err
    bad = _image().astype(np.float32)
    bad[3, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.save(tmp_path / "ref.npy", _image().astype(np.float32))
    assert main(["evaluate", str(tmp_path / "nan.npy"), str(tmp_path / "ref.npy")]) == 2
    err = capsys.readouterr().err
    assert "the result contains NaN" in err and "x (the result)" not in err


def test_a_batchs_warnings_name_their_file_in_the_command_lines_words(tmp_path, capsys):
    # session 73: four alike warning lines said nothing of which output to doubt, and
    # told a command-line user to use dn.denoise_median
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", np.random.default_rng(1).random((64, 64)) * 0.5 + 0.2)
    inputs = [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]
    argv = ["restore", *inputs, "-o", str(tmp_path / "out"), "--method", "salt-and-pepper"]
    assert main([*argv, "--device", "cpu"]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if "almost no impulses" in x]
    assert len(lines) == 2
    for line, path in zip(lines, inputs, strict=True):
        assert line.startswith(f"napari-deconvnet restore: {path}: warning: the salt-and")
        assert line.endswith("use --method median")
    assert main(["restore", inputs[0], "-o", str(tmp_path / "one.tif"), "--method",
                 "salt-and-pepper"]) == 0  # fmt: skip
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "impulses" in x]
    assert line.startswith("napari-deconvnet restore: warning:")  # one file: as before
    # files alike each get their line (Python's filter said the first file's only), and
    # a message that names its file already is not named twice (review)
    for name in ("c", "d"):
        np.save(tmp_path / f"{name}.npy", np.random.default_rng(2).random((64, 64)) - 0.3)
    argv = ["synthesize", str(tmp_path / "c.npy"), str(tmp_path / "d.npy"), "-o",
            str(tmp_path / "noisy"), "--noise", "poisson:gain=100"]  # fmt: skip
    assert main(argv) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if "clipped" in x]
    assert [x.split(": warning:")[0].split(": ", 1)[1] for x in lines] == [
        str(tmp_path / "c.npy"), str(tmp_path / "d.npy"),
    ]  # fmt: skip


def test_unreadable_input_fails_the_others_are_written(tif, tmp_path, capsys):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00" + b"\xff" * 20)
    out = tmp_path / "out"
    assert main(["restore", str(broken), str(tif), "-o", str(out)]) == 1
    assert [p.name for p in out.iterdir()] == ["in_restored.tif"]
    err = capsys.readouterr().err
    assert (
        "broken.tif: no image data in this TIFF (corrupt or empty)" in err
        and "1 of 2 inputs" in err
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["restore", "missing.tif", "-o", "out.tif"], "no such file"),
        (["restore", "notes.txt", "-o", "out.tif"], "unsupported file type"),
        (["restore", "nothing*.tif", "-o", "out.tif"], "no files match"),
        (["restore", "{tif}", "-o", "out.jpg"], "cannot write .jpg"),
        (["restore", "{tif}", "-o", "out.png"], "a PNG holds 8- or 16-bit integer images"),
        (["restore", "{tif}", "-o", "out.tif", "--axes", "ZYX"], "axes"),
        (["restore", "{tif}", "-o", "out.tif", "--model", "nope"], "unknown model"),
        (["restore", "{tif}", "-o", "out.tif", "--tile", "4096"], "larger than the image"),
        (["restore", "{tif}", "-o", "out.tif", "--device", "tpu"], "device"),
        (["restore", "{tif}", "-o", "out.tif", "--format", "npy"], "--format applies"),
        (
            ["restore", "{tif}", "-o", "out.tif", "--method", "default", "--psf", "gaussian"],
            "takes no PSF",
        ),
        (
            ["restore", "{tif}", "-o", "out.tif", "--model", "salt-and-pepper", "--psf", "airy"],
            "no PSF",
        ),
        (["restore", "{tif}", "-o", "out.tif", "--model", "deconv-2d"], "needs --psf"),
        (["demo", "--headless"], "needs -o"),
        (["demo", "--sample", "nope"], "unknown sample"),
        (["info", "nope"], "unknown model"),
        (["info", "notes.txt"], "not a valid safetensors"),
        (["evaluate", "{tif}", "missing.tif"], "no such file"),
        (["synthesize", "{tif}", "-o", "out.tif", "--noise", "pink"], "pink"),
        (["synthesize", "{tif}", "-o", "out.tif", "--noise", "gaussian:sigma"], "key=value"),
        (["train", "--input", "{tif}", "-o", "out.pt"], "end in .safetensors"),
        (
            ["train", "--input", "{tif}", "--target", "{tif}", "--model", "deconv-2d"]
            + ["-o", "m.safetensors"],
            "deconvolves and needs --psf",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(tif, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    assert main([a.format(tif=tif) for a in args]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.tif").exists() and not (tmp_path / "out.png").exists()


def test_argparse_errors_exit_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["restore", "in.tif", "--tile", "0", "-o", "x.tif"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "positive integer" in err and len(err.strip().splitlines()) == 1


def test_unexpected_errors_exit_1_and_debug_shows_the_traceback(
    tif, tmp_path, monkeypatch, capsys
):
    def boom(*args, **kwargs):
        raise RuntimeError("out of\nmemory")

    monkeypatch.setattr(dn, "restore", boom)
    monkeypatch.setattr(dn, "run_method", boom)  # what restore --method runs
    assert main(["restore", str(tif), "-o", str(tmp_path / "o.tif")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "napari-deconvnet restore: error: RuntimeError: out of memory "
        "(run with --debug for the traceback)"
    )
    assert main(["restore", str(tif), "-o", str(tmp_path / "o.tif"), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError" in err
    assert not (tmp_path / "o.tif").exists()


def test_interrupted_write_leaves_no_partial_output(tif, tmp_path, monkeypatch, capsys):
    import tifffile as tf

    real = tf.imwrite

    def interrupted(path, *args, **kwargs):
        real(path, *args, **kwargs)  # the temporary file is complete ...
        raise KeyboardInterrupt  # ... but the user pressed Ctrl-C before the rename

    monkeypatch.setattr(tf, "imwrite", interrupted)
    assert main(["restore", str(tif), "-o", str(tmp_path / "out.tif")]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


# ----------------------------------------------- synthesize, evaluate, info


def test_parse_spec():
    assert parse_spec("gaussian", "--noise") == ("gaussian", {})
    assert parse_spec("poisson-gaussian:peak=40,read_noise=2.5,bit_depth=none", "--noise") == (
        "poisson-gaussian",
        {"peak": 40, "read_noise": 2.5, "bit_depth": None},
    )
    assert parse_spec("gaussian:sigma=2x1.5x1.5,shape=9x17x17", "--psf") == (
        "gaussian",
        {"sigma": (2, 1.5, 1.5), "shape": (9, 17, 17)},
    )
    with pytest.raises(UsageError, match="key=value"):
        parse_spec("gaussian:sigma", "--noise")


def test_synthesize_with_noise_and_psf(tmp_path):
    clean = np.full((64, 64), 0.5, np.float32)
    tifffile.imwrite(tmp_path / "clean.tif", clean)
    out = tmp_path / "noisy.tif"
    args = ["synthesize", str(tmp_path / "clean.tif"), "-o", str(out), "--seed", "3"]
    assert main([*args, "--noise", "gaussian:sigma=0.1", "--psf", "gaussian:sigma=1.5"]) == 0
    image = read_image(out)
    expected = dn.synthesize(
        clean, "gaussian", sigma=0.1, seed=3, psf=dn.make_psf("gaussian", sigma=1.5)
    )
    np.testing.assert_allclose(image.data, expected, atol=1e-6)
    record = image.metadata["napari_deconvnet"]["synthesized"]
    assert record == {"noise": "gaussian", "sigma": 0.1, "seed": 3, "clip": None}


def test_synthesize_of_a_stack_draws_as_synthesize_iter(tmp_path):
    """The README's promise (session 72: it said dn.synthesize, which draws a stack with
    a camera's gain and offset otherwise): the file's noise is synthesize_iter's over the
    file's axes, with the same seed."""
    from napari_deconvnet.core.operations import drain, synthesize_iter

    stack = (np.random.default_rng(2).random((3, 32, 40)) * 200).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", stack, imagej=True, metadata={"axes": "ZYX"})
    spec = "poisson-gaussian:gain=2,offset=100,read_noise=2"
    out = tmp_path / "n.tif"
    assert (
        main(
            ["synthesize", str(tmp_path / "s.tif"), "-o", str(out), "--noise", spec, "--seed", "7"]
        )
        == 0
    )
    options = {"gain": 2, "offset": 100, "read_noise": 2, "seed": 7}
    expected = drain(synthesize_iter(stack, "poisson-gaussian", axes="ZYX", **options))
    np.testing.assert_array_equal(read_image(out).data, np.asarray(expected, np.float32))
    # a PSF kind is made in 3D beside the Z axis, as synthesize_iter and restore make it
    # (session 73: the stack was blurred plane by plane with the 2D default)
    blurred = tmp_path / "b.tif"
    argv = ["synthesize", str(tmp_path / "s.tif"), "-o", str(blurred), "--psf"]
    assert main([*argv, "gaussian:sigma=1.5"]) == 0
    psf = {"kind": "gaussian", "sigma": 1.5}
    expected = drain(synthesize_iter(stack, "none", psf=psf, axes="ZYX"))
    np.testing.assert_allclose(read_image(blurred).data, expected, rtol=1e-6)
    plane = dn.make_psf("gaussian", sigma=1.5)
    flat = drain(synthesize_iter(stack, "none", psf=plane, axes="ZYX"))
    assert np.abs(np.asarray(expected) - flat).max() > 1.0  # (2D and 3D blurs differ)


def test_synthesize_gives_each_file_of_a_batch_its_own_noise(tmp_path):
    """Session 70: every file of a batch restarted the generator from --seed, so files
    of one shape got the same noise (a test set of identical draws)."""
    folder = tmp_path / "in"
    folder.mkdir()
    clean = np.full((32, 32), 0.5, np.float32)
    for name in ("a.tif", "b.tif", "c.tif"):
        tifffile.imwrite(folder / name, clean)
    out = tmp_path / "out"
    args = ["synthesize", str(folder), "-o", str(out), "--seed", "5"]
    assert main([*args, "--noise", "gaussian:sigma=0.1"]) == 0
    noisy = [read_image(out / f"{n}_noisy.tif").data for n in "abc"]
    np.testing.assert_allclose(noisy[0], dn.synthesize(clean, "gaussian", sigma=0.1, seed=5))
    np.testing.assert_allclose(noisy[1], dn.synthesize(clean, "gaussian", sigma=0.1, seed=[5, 1]))
    assert abs(np.corrcoef(noisy[1].ravel(), noisy[2].ravel())[0, 1]) < 0.2
    record = read_image(out / "c_noisy.tif").metadata["napari_deconvnet"]["synthesized"]
    assert record["seed"] == [5, 2]


def test_evaluate_prints_ssim_and_psnr(tmp_path, capsys):
    rng = np.random.default_rng(0)
    reference = rng.random((64, 64)).astype(np.float32)
    result = reference + rng.normal(0, 0.05, reference.shape).astype(np.float32)
    tifffile.imwrite(tmp_path / "r.tif", result)
    tifffile.imwrite(tmp_path / "ref.tif", reference)
    ssim, smap = dn.ssim(result, reference, full=True)
    psnr = dn.psnr(result, reference)
    assert main(["evaluate", str(tmp_path / "r.tif"), str(tmp_path / "ref.tif")]) == 0
    assert capsys.readouterr().out.splitlines() == [f"SSIM  {ssim:.4f}", f"PSNR  {psnr:.2f} dB"]
    args = ["evaluate", str(tmp_path / "r.tif"), str(tmp_path / "ref.tif"), "--json"]
    assert main([*args, "--ssim-map", str(tmp_path / "map.tif"), "--data-range", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ssim"] == pytest.approx(float(dn.ssim(result, reference, data_range=2)))
    assert report["psnr"] == pytest.approx(float(dn.psnr(result, reference, data_range=2)))
    assert report["data_range"] == 2
    assert read_image(tmp_path / "map.tif").data.shape == (64, 64)
    tifffile.imwrite(tmp_path / "small.tif", reference[:32])
    assert main(["evaluate", str(tmp_path / "r.tif"), str(tmp_path / "small.tif")]) == 2
    assert "same shape" in capsys.readouterr().err


def test_evaluate_compares_the_axes_the_files_name(tmp_path, capsys):
    # session 71: an OME-TIFF CZYX of a stack against the ImageJ ZCYX reference of it was
    # compared as stored (channel against plane), PSNR 26.8 where the same pixels gave 38.4
    rng = np.random.default_rng(0)
    clean = np.stack([rng.random((2, 48, 40)) * 300, rng.random((2, 48, 40)) * 20000], 1)
    clean = clean.astype(np.float32)  # Z=2, C=2: the same shape in both orders
    noisy = (clean + rng.normal(0, 5, clean.shape)).astype(np.float32)
    tifffile.imwrite(tmp_path / "ref.tif", clean, imagej=True, metadata={"axes": "ZCYX"})
    tifffile.imwrite(tmp_path / "zc.tif", noisy, imagej=True, metadata={"axes": "ZCYX"})
    tifffile.imwrite(tmp_path / "cz.ome.tif", noisy.transpose(1, 0, 2, 3), ome=True,
                     metadata={"axes": "CZYX"})  # fmt: skip
    reports = []
    for name in ("zc.tif", "cz.ome.tif"):
        assert main(["evaluate", str(tmp_path / name), str(tmp_path / "ref.tif"), "--json"]) == 0
        captured = capsys.readouterr()
        reports.append(json.loads(captured.out))
    assert "axes ZCYX put in the result's order CZYX" in captured.err
    assert reports[1]["psnr"] == pytest.approx(reports[0]["psnr"], abs=1e-6)
    assert reports[1]["ssim"] == pytest.approx(reports[0]["ssim"], abs=1e-6)
    # --axes names both as the user knows them: nothing is moved (review: a file labelled
    # wrong and corrected with --axes was compared moved, 5.4 dB for 27.1)
    args = ["evaluate", str(tmp_path / "cz.ome.tif"), str(tmp_path / "ref.tif"), "--json"]
    assert main([*args, "--axes", "ZCYX"]) == 0
    as_stored = json.loads(capsys.readouterr().out)
    assert as_stored["psnr"] < reports[0]["psnr"] - 3  # compared as stored, as told
    tifffile.imwrite(tmp_path / "t.tif", noisy[:, 0], imagej=True, metadata={"axes": "TYX"})
    assert main(["evaluate", str(tmp_path / "t.tif"), str(tmp_path / "ref.tif")]) == 2
    assert "(axes TYX and ZCYX)" in capsys.readouterr().err


def test_evaluate_writes_one_ssim_map_for_an_rgb_pair(tmp_path, capsys):
    """Session 67: the map of an RGB pair kept its colour axis but was written as not
    RGB: a 48×48 map became 48 planes of 48×3 pixels (axes ZYX). It is the colours'
    mean now, as the Quality widget shows, with the image's geometry."""
    rng = np.random.default_rng(0)
    reference = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
    result = np.clip(reference + rng.normal(0, 12, reference.shape), 0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "r.tif", result, photometric="rgb")
    tifffile.imwrite(tmp_path / "ref.tif", reference, photometric="rgb")
    out = tmp_path / "map.tif"
    args = ["evaluate", str(tmp_path / "r.tif"), str(tmp_path / "ref.tif"), "--json"]
    assert main([*args, "--ssim-map", str(out)]) == 0
    written = read_image(out)
    assert written.data.shape == (48, 48) and not written.rgb
    _, smap = dn.ssim(result, reference, full=True, channel_axis=-1)
    np.testing.assert_allclose(written.data, smap.mean(axis=-1), atol=1e-6)
    expected = float(dn.ssim(result, reference, channel_axis=-1))
    assert json.loads(capsys.readouterr().out)["ssim"] == pytest.approx(expected, abs=1e-6)


def test_info_describes_a_model(tmp_path, random_net, capsys):
    net = random_net()
    net.metadata["training"] = {"mode": "supervised", "epochs": 4, "loss": "l1"}
    path = dn.save_model(net, tmp_path / "m.safetensors")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "random weights for tests" in out and "training epochs: 4" in out
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == dn.model_info(path)
    # a flipped bit in the weights: the header reads, the checksum does not match
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))
    assert main(["info", str(path)]) == 2
    assert "SHA-256" in capsys.readouterr().err


def test_models_lists_the_shipped_models(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in dn.list_models():
        assert name in out


def test_sample_lists_and_writes(tmp_path, capsys):
    from napari_deconvnet.io import samples

    assert main(["sample"]) == 0
    listing = capsys.readouterr().out
    assert all(key in listing for key in samples.SAMPLES)
    assert main(["sample", "blurred", "-o", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["filaments_PSF.tif", "filaments_blurred.tif", "filaments_clean.tif"]
    degraded, clean, psf = samples.blurred_phantom_data()
    np.testing.assert_array_equal(read_image(tmp_path / "filaments_clean.tif").data, clean)
    assert read_image(tmp_path / "filaments_PSF.tif").data.shape == psf.shape


def test_headless_demo_writes_and_improves_psnr(tmp_path, capsys):
    out = tmp_path / "camera.tif"
    assert main(["demo", "--headless", "-o", str(out), "--device", "cpu"]) == 0
    assert tifffile.imread(out).shape == (512, 512)
    lines = capsys.readouterr().out.splitlines()
    noisy = float(next(line for line in lines if "PSNR noisy" in line).split()[2])
    restored = float(next(line for line in lines if "PSNR restored" in line).split()[2])
    assert restored > noisy + 3


def test_headless_demo_of_a_blurred_sample_deconvolves_with_its_psf(tmp_path, capsys):
    """As the Restore widget beside the sample's PSF layer: deconv-2d with that PSF (the
    demo ran the default denoiser, 21.0 dB, where deconvolution gives 24.5)."""
    from napari_deconvnet.io import samples

    out = tmp_path / "blurred.tif"
    assert main(["demo", "--sample", "blurred", "--headless", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "(model 'deconv-2d' with the sample's PSF)" in text
    blurred, _, psf = samples.blurred_phantom_data()
    expected = dn.restore(blurred, "deconv-2d", psf=psf)
    np.testing.assert_allclose(tifffile.imread(out), expected, rtol=1e-5, atol=1e-5)
    assert main(["demo", "--sample", "blurred", "--headless", "-o", str(out), "--model",
                 "denoise-2d", "--overwrite"]) == 0  # fmt: skip
    assert "(model 'denoise-2d')" in capsys.readouterr().out


# ------------------------------------------------------------ as a subprocess


def test_subprocess_restore_evaluate_info(tmp_path):
    from napari_deconvnet.io import samples

    noisy, clean = samples.fluorescence_phantom_data((96, 96))
    data = tmp_path / "data"
    data.mkdir()
    tifffile.imwrite(data / "a.tif", noisy)
    tifffile.imwrite(data / "b.tif", noisy[::-1].copy())
    tifffile.imwrite(tmp_path / "clean.tif", clean)
    proc = _run("restore", data, "-o", tmp_path / "out", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a_restored.tif",
        "b_restored.tif",
    ]
    proc = _run("restore", data / "a.tif", "-o", tmp_path / "out")  # exists: skipped
    assert proc.returncode == 0 and "exists (pass --overwrite" in proc.stderr
    proc = _run("evaluate", tmp_path / "out" / "a_restored.tif", tmp_path / "clean.tif", "--json")
    assert proc.returncode == 0, proc.stderr
    after = json.loads(proc.stdout)
    before = json.loads(_run("evaluate", data / "a.tif", tmp_path / "clean.tif", "--json").stdout)
    assert after["psnr"] > before["psnr"] + 5 and after["ssim"] > before["ssim"]
    proc = _run("info", "default")
    assert proc.returncode == 0 and proc.stdout.startswith("denoise-2d: ")


def test_subprocess_bad_arguments_exit_2_with_one_line(tmp_path):
    for args in (["restore"], ["restore", "x.tif", "-o", "y.tif", "--tile", "-3"], ["frobnicate"]):
        proc = _run(*args, cwd=tmp_path)
        assert proc.returncode == 2, args
        assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    proc = _run("restore", "missing.tif", "-o", "y.tif", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "napari-deconvnet restore: error: missing.tif: no such file\n"


def test_subprocess_train_a_few_seconds(tmp_path):
    from napari_deconvnet.io import samples

    noisy, clean = samples.fluorescence_phantom_data((96, 96))
    tifffile.imwrite(tmp_path / "noisy.tif", noisy)
    tifffile.imwrite(tmp_path / "clean.tif", clean)
    model = tmp_path / "m.safetensors"
    args = ["--input", tmp_path / "noisy.tif", "--target", tmp_path / "clean.tif", "--time", "3"]
    args += ["--patch-size", "32", "--batch-size", "4", "--device", "cpu", "-o", model]
    proc = _run("train", *args, "--description", "test model")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {model}" in proc.stdout
    info = dn.model_info(model)
    assert info["metadata"]["description"] == "test model"
    assert info["metadata"]["training"]
    proc = _run("train", *args)  # the model exists
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    proc = _run("restore", tmp_path / "noisy.tif", "-o", tmp_path / "r.tif", "--model", model)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(
        tifffile.imread(tmp_path / "r.tif"), dn.restore(noisy, model, device="cpu"), atol=1e-4
    )


def test_subprocess_fine_tunes_deconv_2d_on_pairs_with_their_psf(tmp_path):
    from napari_deconvnet.io import samples

    _, sharp = samples.fluorescence_phantom_data((96, 96))
    psf = dn.make_psf("gaussian", sigma=1.5)
    blurred = dn.synthesize(sharp, "gaussian", psf=psf, sigma=0.01, seed=0)
    tifffile.imwrite(tmp_path / "blurred.tif", np.asarray(blurred, np.float32))
    tifffile.imwrite(tmp_path / "sharp.tif", sharp)
    model = tmp_path / "d.safetensors"
    args = ["--input", tmp_path / "blurred.tif", "--target", tmp_path / "sharp.tif"]
    args += ["--model", "deconv-2d", "--epochs", "1", "--patch-size", "32"]
    args += ["--batch-size", "2", "--device", "cpu", "-o", model]
    proc = _run("train", *args)  # no PSF: refused with the reason
    assert proc.returncode == 2 and "needs --psf" in proc.stderr and "psf=" not in proc.stderr
    proc = _run("train", *args, "--psf", "gaussian", "--psf-param", "sigma=1.5")
    assert proc.returncode == 0, proc.stderr
    meta = dn.model_info(model)["metadata"]
    assert meta["needs_psf"] is True and meta["training"]["mode"] == "supervised"
    proc = _run(
        "restore",
        tmp_path / "blurred.tif",
        "-o",
        tmp_path / "r.tif",
        "--model",
        model,
        "--psf",
        "gaussian",
        "--psf-param",
        "sigma=1.5",
    )
    assert proc.returncode == 0, proc.stderr
    expected = dn.restore(blurred, model, psf=psf, device="cpu")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "r.tif"), expected, atol=1e-4)


def test_subprocess_ctrl_c_leaves_no_partial_output(tmp_path):
    np.save(tmp_path / "big.npy", _image((120, 256, 256)))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "NAPARI_DECONVNET_LAZY_BYTES": "1"}  # written plane by plane
    script = os.path.join(os.path.dirname(sys.executable), "napari-deconvnet")
    proc = subprocess.Popen(
        [script, "restore", str(tmp_path / "big.npy"), "-o", str(out / "big.tif")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # a test run started in the background (``cmd &``) inherits SIGINT as
        # ignored, and so would the command: give it the default, as a terminal does
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.iterdir()):  # the temporary file appears once writing starts
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


def test_demo_opens_napari_with_a_sample_and_the_restore_widget(make_napari_viewer, monkeypatch):
    import napari

    from napari_deconvnet.widgets.restore import RestoreWidget

    viewer = make_napari_viewer()
    monkeypatch.setattr(napari, "Viewer", lambda **kwargs: viewer)
    monkeypatch.setattr(napari, "run", lambda: None)  # the event loop: the test is the user
    assert main(["demo", "--sample", "fluorescence"]) == 0
    assert [layer.name for layer in viewer.layers] == ["cells noisy", "cells clean"]
    docked = [w for w in viewer.window.dock_widgets.values() if isinstance(w, RestoreWidget)]
    assert len(docked) == 1 and docked[0].image.value is viewer.layers["cells noisy"]


def test_the_command_line_loads_no_gui(tmp_path, tif):
    code = (
        "import sys\n"
        "from napari_deconvnet.cli import main\n"
        f"assert main(['restore', {str(tif)!r}, '-o', {str(tmp_path / 'o.tif')!r}, '-q']) == 0\n"
        f"assert main(['evaluate', {str(tmp_path / 'o.tif')!r}, {str(tif)!r}]) == 0\n"
        "print(sorted(m for m in ('napari', 'qtpy', 'magicgui', 'PyQt6') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_train_keep_no_makes_a_specialist(tmp_path, capsys):
    """``train --keep no``: fine-tuning without L2-SP or rehearsal, recorded in the file."""
    from napari_deconvnet.cli import KEEP_NAMES
    from napari_deconvnet.core.train_setup import KEEP

    assert KEEP_NAMES == tuple(KEEP)  # the CLI's choices are the core's recipes
    from napari_deconvnet.io import samples

    noisy, clean = samples.fluorescence_phantom_data((96, 96))
    tifffile.imwrite(tmp_path / "noisy.tif", noisy)
    tifffile.imwrite(tmp_path / "clean.tif", clean)
    model = tmp_path / "m.safetensors"
    args = ["train", "--input", str(tmp_path / "noisy.tif")]
    args += ["--target", str(tmp_path / "clean.tif")]
    args += ["--epochs", "1", "--patch-size", "32", "--batch-size", "2", "--device", "cpu"]
    assert main([*args, "-o", str(model), "--keep", "no"]) == 2  # no model to keep
    assert "--keep is for fine-tuning" in capsys.readouterr().err
    assert main([*args, "-o", str(model), "--keep", "no", "--model", "default"]) == 0
    training = dn.model_info(model)["metadata"]["training"]
    assert training["settings"]["l2sp"] == 0.0 and training["settings"]["rehearsal"] == 0.0
    if training["improved"] is False:  # the start handed back, with its (no) conditions
        assert training["conditions"] is None
    else:
        assert training["conditions"]["rehearsed"] is False


def test_train_intensity_jitter_is_recorded(tmp_path, capsys):
    """``train --intensity-jitter J`` reaches dn.train; a new network has 0.25 by default."""
    from napari_deconvnet.io import samples

    noisy, clean = samples.fluorescence_phantom_data((96, 96))
    tifffile.imwrite(tmp_path / "noisy.tif", noisy)
    tifffile.imwrite(tmp_path / "clean.tif", clean)
    args = ["train", "--input", str(tmp_path / "noisy.tif")]
    args += ["--target", str(tmp_path / "clean.tif"), "--network", "base_channels=8"]
    args += ["--epochs", "1", "--patch-size", "32", "--batch-size", "2", "--device", "cpu"]
    for given, recorded in ((None, 0.25), ("0.5", 0.5), ("0", 0.0)):
        model = tmp_path / f"m{given}.safetensors"
        extra = [] if given is None else ["--intensity-jitter", given]
        assert main([*args, *extra, "-o", str(model)]) == 0
        settings = dn.model_info(model)["metadata"]["training"]["settings"]
        assert settings["intensity_jitter"] == recorded
    assert main([*args, "--intensity-jitter", "2", "-o", str(tmp_path / "bad.safetensors")]) != 0
    assert "--intensity-jitter must be in [0, 1]" in capsys.readouterr().err


def test_train_self_supervision_reaches_dn_train(tmp_path, capsys):
    """``train --self-supervision``: recorded; the default is the engine's (new: N2N)."""
    from napari_deconvnet.io import samples

    noisy, clean = samples.fluorescence_phantom_data((96, 96))
    tifffile.imwrite(tmp_path / "noisy.tif", noisy)
    tifffile.imwrite(tmp_path / "clean.tif", clean)
    args = ["train", "--input", str(tmp_path / "noisy.tif"), "--network", "base_channels=8"]
    args += ["--epochs", "1", "--patch-size", "32", "--batch-size", "2", "--device", "cpu"]
    for given, recorded in ((None, "neighbor2neighbor"), ("random", "random")):
        model = tmp_path / f"m{given}.safetensors"
        extra = [] if given is None else ["--self-supervision", given]
        assert main([*args, *extra, "-o", str(model)]) == 0
        settings = dn.model_info(model)["metadata"]["training"]["settings"]
        assert settings["blind_spot"] == recorded
    bad = [*args, "--target", str(tmp_path / "clean.tif"), "--self-supervision", "median"]
    assert main([*bad, "-o", str(tmp_path / "bad.safetensors")]) == 2
    assert "--self-supervision is for training on noisy images alone" in capsys.readouterr().err


@pytest.mark.parametrize("spacing, warned", [(1.5, True), (0.5, False)])
def test_denoise_3d_on_a_stack_with_far_apart_planes_warns(tmp_path, capsys, spacing, warned):
    src = tmp_path / "stack.tif"
    data = np.random.default_rng(4).normal(100, 10, (8, 32, 32)).astype(np.float32)
    meta = {"spacing": spacing, "unit": "um", "axes": "ZYX"}
    tifffile.imwrite(src, data, imagej=True, resolution=(2.0, 2.0), metadata=meta)
    out = tmp_path / "out.tif"
    assert main(["restore", str(src), "-o", str(out), "--method", "denoise-3d", "-q"]) == 0
    assert out.exists()  # it runs as asked
    err = capsys.readouterr().err
    assert ("3x further apart" in err and "warning:" in err) is warned, err
    assert main(["restore", str(src), "-o", str(tmp_path / "o2.tif"), "-q"]) == 0  # 2D slices
    assert "further apart" not in capsys.readouterr().err


def test_outputs_are_checked_before_any_work(tif, tmp_path, capsys):
    # evaluate --ssim-map replaced any file, the result it measured included; demo -o
    # replaced a file; a file where the output's folder should be failed after the work
    # with a raw FileExistsError; -o "" wrote into the current folder
    clean = tmp_path / "clean.tif"
    tifffile.imwrite(clean, _image())
    kept = tif.read_bytes()
    assert main(["evaluate", str(tif), str(clean), "--ssim-map", str(tif)]) == 2
    assert "is an input" in capsys.readouterr().err and tif.read_bytes() == kept
    other = tmp_path / "map.tif"
    other.write_bytes(b"mine")
    assert main(["evaluate", str(tif), str(clean), "--ssim-map", str(other)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and other.read_bytes() == b"mine"
    assert main(["evaluate", str(tif), str(clean), "--ssim-map", str(other), "--overwrite"]) == 0
    assert tifffile.imread(other).shape == _image().shape
    precious = tmp_path / "precious.tif"
    precious.write_bytes(b"mine")
    assert main(["demo", "--headless", "-o", str(precious), "--device", "cpu"]) == 2
    assert precious.read_bytes() == b"mine"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for command in (["restore", str(tif)], ["synthesize", str(tif)]):
        assert main([*command, "-o", str(a_file / "x.tif")]) == 2
        assert "is a file, not a folder" in capsys.readouterr().err
        assert main([*command, "-o", ""]) == 2
        assert "-o/--output is empty" in capsys.readouterr().err
    assert (
        main(["adapt", str(tmp_path / "nothere.tif"), "--steps", "1", "-o", "m.safetensors"]) == 2
    )
    assert "nothere.tif: no such file" in capsys.readouterr().err


def test_an_unfinished_streamed_target_is_never_replaced_by_an_in_memory_restore(
    tif, tmp_path, capsys
):
    # only a streamed restore resumes a job; one in memory (a .tif input, a classical
    # method) replaced the unfinished OME-Zarr without --overwrite
    target = tmp_path / "out.ome.zarr"
    (target / ".napari_deconvnet_job" / "done").mkdir(parents=True)
    (target / ".napari_deconvnet_job" / "job.json").write_text("{}")
    assert main(["restore", str(tif), "-o", str(target), "--method", "median"]) == 0
    assert "holds an unfinished streamed restore" in capsys.readouterr().err
    assert (target / ".napari_deconvnet_job" / "job.json").read_text() == "{}"
    assert main(["restore", str(tif), "-o", str(target), "--method", "median", "--overwrite"]) == 0
    assert not (target / ".napari_deconvnet_job").exists()
    assert read_image(target).data.shape == _image().shape


def test_a_damaged_tiff_gives_one_error_line(tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00" + b"\xff" * 20)
    done = _run("restore", broken, "-o", tmp_path / "x.tif")
    assert done.returncode == 1  # tifffile's own log line came before the error
    assert "invalid offset" not in done.stderr
    assert "broken.tif: no image data in this TIFF" in done.stderr


def test_refusals_name_the_command_lines_options(tmp_path, capsys):
    from napari_deconvnet.cli._files import cli_words

    assert cli_words("pass overwrite=True to replace it") == "pass --overwrite to replace it"
    assert (
        cli_words("pass a smaller tile or tile=None") == "pass a smaller tile or leave --tile out"
    )
    assert cli_words("per='volume' needs a Z axis") == "--per volume needs a Z axis"
    # (session 70: these still spoke of the API's arguments)
    assert (
        cli_words("name the time axis Z (axes='ZYX') to") == "name the time axis Z (--axes ZYX) to"
    )
    assert cli_words("use device='auto' or 'cpu'") == "use --device auto or cpu"
    assert cli_words("clean contains NaN or infinite") == "the image contains NaN or infinite"
    image = tmp_path / "plane.tif"
    tifffile.imwrite(image, _image())
    assert main(["evaluate", str(image), str(image), "--per", "volume"]) == 2
    assert "--per volume needs a Z axis" in capsys.readouterr().err  # it said per='volume'


def test_adapt_and_train_take_an_optical_psf_with_the_files_pixel_size(tmp_path, capsys):
    # restore made --psf airy with the file's 65 nm pixels; adapt and train with the
    # 100 nm default (a 15 x 15 kernel where restore's is 23 x 23)
    from napari_deconvnet.io.writer import write_tiff

    image = np.random.default_rng(0).random((96, 96)).astype(np.float32)
    write_tiff(tmp_path / "cal.ome.tif", image, {"scale": (0.065, 0.065),
               "units": ("micrometer", "micrometer")})  # fmt: skip
    psf = ["--psf", "airy:na=1.4,refractive_index=1.518", "--device", "cpu"]
    kernel = dn.make_psf("airy", na=1.4, refractive_index=1.518, pixel_size=65)
    out = tmp_path / "ad.safetensors"
    assert (
        main(["adapt", str(tmp_path / "cal.ome.tif"), "--steps", "1", "-o", str(out), *psf]) == 0
    )
    assert "pixel size 65 nm (the file's calibration)" in capsys.readouterr().err
    assert dn.load_model(out).metadata["training"]["psf_shape"] == list(kernel.shape)
    out = tmp_path / "tr.safetensors"
    assert main(["train", "--input", str(tmp_path / "cal.ome.tif"), "--noise",
                 "gaussian:sigma=0.05", "--model", "deconv-2d", "--epochs", "1",
                 "--patch-size", "32", "-o", str(out), *psf, "-q"]) == 0  # fmt: skip
    record = dn.load_model(out).metadata["training"]
    assert record["psf"]["shape"] == list(kernel.shape)


def test_a_grey_png_with_alpha_stays_grey(tmp_path):
    """Session 70: a PNG "LA" is read as RGBA (for napari); synthesize drew independent
    noise on R, G and B (colour noise on a grey image, R - G up to 111 levels) and restore
    ran three times over with R, G and B up to a level apart. Its grey goes through alone
    now, and the alpha stays as it was."""
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    grey = (rng.random((64, 64)) * 200).astype(np.uint8)
    alpha = np.where(rng.random((64, 64)) < 0.5, 255, 128).astype(np.uint8)
    iio.imwrite(tmp_path / "la.png", np.stack([grey, alpha], -1))
    src, noisy, restored = (str(tmp_path / n) for n in ("la.png", "n.png", "r.png"))
    assert main(["synthesize", src, "-o", noisy, "--noise", "gaussian:sigma=20", "-q"]) == 0
    assert main(["restore", src, "-o", restored, "-q", "--device", "cpu"]) == 0
    want = np.clip(
        np.round(dn.synthesize(grey.astype(np.float32), "gaussian", sigma=20, seed=0)), 0, 255
    )
    for path in (noisy, restored):
        out = iio.imread(path).astype(int)
        assert out.shape == (64, 64, 4)
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
        np.testing.assert_array_equal(out[..., 3], alpha)
    np.testing.assert_array_equal(iio.imread(noisy)[..., 0], want)
    from napari_deconvnet.io.image_files import read_image

    for path in (noisy, restored):  # (review: the record says the grey went alone)
        rec = read_image(path).metadata["napari_deconvnet"]
        assert rec["axes"] == "YX" and rec["grey_alpha"] is True, rec
