"""The bad-input matrix: every hostile input across the API and the CLI gets a clear error.

API: a ValueError or TypeError whose message says what was wrong (and, where
it can, what is accepted). CLI: exit status 2 for usage errors, 1 for
failures while working, one ``napari-deconvnet <command>: error: ...`` line
and never a traceback unless ``--debug``.
"""

import numpy as np
import pytest
import tifffile

import napari_deconvnet as dn
from napari_deconvnet.cli import main

IMG = np.random.default_rng(0).random((32, 32)).astype(np.float32)
BIG = np.random.default_rng(1).random((96, 96)).astype(np.float32)
NAN = np.full((16, 16), np.nan, np.float32)
BOX = np.ones((3, 3), np.float32)


def _net():
    return dn.DeconvNet(depth=1, base_channels=4)


def _unserialisable(folder):
    net = _net()
    net.metadata["bad"] = object()
    return dn.save_model(net, folder / "m.safetensors")


# (call, exception, message pattern); `call` takes tmp_path
API = {
    # restore
    "restore-complex": (lambda d: dn.restore(IMG.astype(np.complex64)), TypeError, "complex"),
    "restore-object": (lambda d: dn.restore(np.zeros((16, 16), object)), TypeError, "not numeric"),
    "restore-list": (lambda d: dn.restore([[1.0]]), TypeError, "numpy or dask array"),
    "restore-nan": (lambda d: dn.restore(NAN), ValueError, "NaN or infinite.*nan_to_num"),
    "restore-inf": (lambda d: dn.restore(IMG * np.inf), ValueError, "NaN or infinite"),
    "restore-empty": (lambda d: dn.restore(np.zeros((0, 16), np.float32)), ValueError, "empty"),
    "restore-1d": (lambda d: dn.restore(np.zeros(16, np.float32)), ValueError, "at least 2 dim"),
    "restore-axes-count": (lambda d: dn.restore(IMG, axes="ZYX"), ValueError, "3 letters.*2 dim"),
    "restore-axes-letter": (lambda d: dn.restore(IMG, axes="YQ"), ValueError, "unknown letters"),
    "restore-axes-repeat": (lambda d: dn.restore(IMG, axes="YY"), ValueError, "repeats a letter"),
    "restore-tile-zero": (
        lambda d: dn.restore(IMG, tile=0),
        ValueError,
        "tile must be a positive",
    ),
    "restore-tile-text": (lambda d: dn.restore(IMG, tile="a"), ValueError, "tile must be"),
    "restore-tile-big": (lambda d: dn.restore(IMG, tile=64), ValueError, "larger than the image"),
    "restore-overlap": (lambda d: dn.restore(IMG, overlap=-1), ValueError, "overlap must be"),
    "restore-model-name": (lambda d: dn.restore(IMG, "nope"), ValueError, "unknown model 'nope'"),
    "restore-model-type": (lambda d: dn.restore(IMG, 3), TypeError, "name, a path or a DeconvNet"),
    "restore-device": (lambda d: dn.restore(IMG, device="tpu"), ValueError, "unknown device"),
    "restore-batch": (lambda d: dn.restore(IMG, batch_size=0), ValueError, "batch_size must be"),
    "restore-precision": (
        lambda d: dn.restore(IMG, precision="float8"),
        ValueError,
        "unknown precision.*float32",
    ),
    "restore-deconv-without-psf": (
        lambda d: dn.restore(IMG, "deconv-2d"),
        ValueError,
        "needs the image's PSF",
    ),
    "restore-denoiser-with-psf": (
        lambda d: dn.restore(IMG, "denoise-2d", psf="gaussian"),
        ValueError,
        "takes no PSF",
    ),
    "restore-normalization": (
        lambda d: dn.restore(IMG, normalization="x"),
        TypeError,
        "normalization must be a dict",
    ),
    # train
    "train-pairs": (lambda d: dn.train(IMG, IMG[:16], epochs=1), ValueError, "equal shapes"),
    "train-nan": (lambda d: dn.train(BIG * np.nan, epochs=1), ValueError, "NaN or infinite"),
    "train-type": (lambda d: dn.train("x", epochs=1), TypeError, "numpy or dask array"),
    "train-epochs": (lambda d: dn.train(BIG, epochs=0), ValueError, "epochs must be a positive"),
    "train-seconds": (lambda d: dn.train(BIG, max_seconds=-1), ValueError, "max_seconds must"),
    "train-loss": (lambda d: dn.train(BIG, epochs=1, loss="huber"), ValueError, "unknown loss"),
    "train-patch": (
        lambda d: dn.train(IMG, epochs=1, patch_size=1000),
        ValueError,
        "larger than.*lower patch_size",
    ),
    "train-batch": (lambda d: dn.train(BIG, epochs=1, batch_size=0), ValueError, "batch_size"),
    "train-validation": (
        lambda d: dn.train(BIG, epochs=1, validation=2.0),
        ValueError,
        "validation must be a fraction",
    ),
    "train-noise-name": (lambda d: dn.train(BIG, noise="foo", epochs=1), ValueError, "accepted"),
    "train-noise-dict": (
        lambda d: dn.train(BIG, noise={"sigma": 0.1}, epochs=1),
        ValueError,
        r"needs a 'model' \(or 'kind'\) key",
    ),
    "train-noise-kind": (
        lambda d: dn.train(BIG, noise={"kind": "foo"}, epochs=1),
        ValueError,
        "unknown noise model 'foo'; accepted names",
    ),
    "train-lr": (lambda d: dn.train(BIG, epochs=1, lr=-1), ValueError, "lr must be a positive"),
    "train-option": (lambda d: dn.train(BIG, epochs=1, foo=1), TypeError, "'foo'"),
    # synthesize
    "synth-noise": (lambda d: dn.synthesize(IMG, "foo"), ValueError, "accepted names"),
    "synth-param": (
        lambda d: dn.synthesize(IMG, "gaussian", amount=1),
        ValueError,
        "does not take.*its parameters are",
    ),
    "synth-sigma": (lambda d: dn.synthesize(IMG, sigma=-1), ValueError, "sigma must be >= 0"),
    "synth-sigma-text": (lambda d: dn.synthesize(IMG, sigma="a"), TypeError, "must be a number"),
    "synth-amount": (
        lambda d: dn.synthesize(IMG, "salt-and-pepper", amount=2),
        ValueError,
        "<= 1.0",
    ),
    "synth-peak-and-gain": (
        lambda d: dn.synthesize(IMG, "poisson", peak=1, gain=2),
        ValueError,
        "either peak or gain",
    ),
    "synth-gain": (
        lambda d: dn.synthesize(IMG, "poisson", gain=0),
        ValueError,
        "gain must be > 0",
    ),
    "synth-bit-depth": (
        lambda d: dn.synthesize(IMG, "poisson-gaussian", bit_depth=40),
        ValueError,
        "bit_depth",
    ),
    "synth-clip-order": (lambda d: dn.synthesize(IMG, clip=(1, 0)), ValueError, "low <= high"),
    "synth-clip-text": (lambda d: dn.synthesize(IMG, clip="a"), ValueError, r"\(low, high\) pair"),
    "synth-nan": (lambda d: dn.synthesize(NAN), ValueError, "NaN or infinite"),
    "synth-complex": (lambda d: dn.synthesize(np.zeros((4, 4), complex)), ValueError, "real"),
    "synth-empty": (lambda d: dn.synthesize(np.zeros((0, 4))), ValueError, "empty"),
    "synth-psf-dims": (
        lambda d: dn.synthesize(np.zeros(8), psf=BOX),
        ValueError,
        "at most as many dimensions",
    ),
    # estimate_noise
    "estimate-tiny": (lambda d: dn.estimate_noise(np.zeros((4, 4))), ValueError, "16x16"),
    "estimate-model": (lambda d: dn.estimate_noise(BIG, model="foo"), ValueError, "accepted"),
    "estimate-nan": (lambda d: dn.estimate_noise(np.full((64, 64), np.nan)), ValueError, "NaN"),
    "estimate-complex": (
        lambda d: dn.estimate_noise(np.zeros((64, 64), complex)),
        ValueError,
        "must be real",
    ),
    "estimate-channel": (
        lambda d: dn.estimate_noise(BIG, channel_axis=5),
        ValueError,
        "out of range",
    ),
    # metrics
    "ssim-shapes": (lambda d: dn.ssim(IMG, IMG[:16]), ValueError, "same shape"),
    "ssim-nan": (lambda d: dn.ssim(NAN, NAN, data_range=1), ValueError, "NaN or infinite"),
    "ssim-constant": (
        lambda d: dn.ssim(np.zeros((16, 16)), np.zeros((16, 16))),
        ValueError,
        "pass data_range=",
    ),
    "ssim-range": (lambda d: dn.ssim(IMG, IMG, data_range=0), ValueError, "data_range must be"),
    "ssim-window": (lambda d: dn.ssim(IMG, IMG, win_size=4), ValueError, "odd integer"),
    "ssim-window-big": (
        lambda d: dn.ssim(IMG[:8, :8], IMG[:8, :8], data_range=1),
        ValueError,
        "exceeds the image extent",
    ),
    "ssim-complex": (
        lambda d: dn.ssim(np.zeros((16, 16), complex), np.zeros((16, 16), complex)),
        ValueError,
        "must be real",
    ),
    "psnr-shapes": (lambda d: dn.psnr(IMG, IMG[:16]), ValueError, "same shape"),
    "psnr-range": (lambda d: dn.psnr(IMG, IMG, data_range=-1), ValueError, "data_range must"),
    "psnr-text": (lambda d: dn.psnr("a", "b"), TypeError, "numpy array or a torch tensor"),
    # PSFs and classical methods
    "psf-kind": (lambda d: dn.make_psf("foo"), ValueError, "accepted names"),
    "psf-sigma": (lambda d: dn.make_psf("gaussian", sigma=-1), ValueError, "sigma must be"),
    "psf-param": (lambda d: dn.make_psf("gaussian", foo=1), ValueError, "does not take"),
    "rl-iterations": (
        lambda d: dn.richardson_lucy(IMG, BOX, iterations=0),
        ValueError,
        "iterations must be between 1 and",
    ),
    "rl-zero-psf": (lambda d: dn.richardson_lucy(IMG, BOX * 0), ValueError, "sums to zero"),
    "rl-psf-dims": (
        lambda d: dn.richardson_lucy(IMG, np.ones((3, 3, 3))),
        ValueError,
        "at most as many dimensions",
    ),
    "rl-nan": (lambda d: dn.richardson_lucy(NAN, BOX), ValueError, "NaN or infinite"),
    # (session 70: a stack with NaN was told "low must be a finite impulse level")
    "switching-median-nan": (
        lambda d: dn.run_method(
            np.stack([IMG, IMG * np.nan, IMG]), "switching-median", axes="TYX"
        ),
        ValueError,
        "image contains NaN or infinite values",
    ),
    # (session 70: -1 was told ">= 0", then 0 was told "> 0")
    "wiener-balance": (
        lambda d: dn.wiener(IMG, BOX, balance=-1),
        ValueError,
        "balance must be a finite number > 0",
    ),  # fmt: skip
    "wiener-balance-0": (
        lambda d: dn.wiener(IMG, BOX, balance=0),
        ValueError,
        "balance must be a finite number > 0",
    ),  # fmt: skip
    "wiener-psf-nan": (lambda d: dn.wiener(IMG, BOX * np.nan), ValueError, "psf contains NaN"),
    "wiener-psf-big": (
        lambda d: dn.wiener(IMG[:4, :4], np.ones((9, 9))),
        ValueError,
        "bigger than the image",
    ),
    # model files
    "load-name": (lambda d: dn.load_model("nope"), ValueError, "unknown model.*shipped name"),
    "load-missing": (
        lambda d: dn.load_model(d / "x.safetensors"),
        ValueError,
        "does not exist",
    ),
    "load-folder": (lambda d: dn.load_model(d), ValueError, "is not a file"),
    "load-type": (lambda d: dn.load_model(3.5), TypeError, "name, a path or a DeconvNet"),
    "load-empty-file": (
        lambda d: dn.load_model(_file(d / "e.safetensors", b"")),
        ValueError,
        "too short",
    ),
    "load-text-file": (
        lambda d: dn.load_model(_file(d / "t.safetensors", b"hello world, not a model")),
        ValueError,
        "not a valid safetensors file",
    ),
    "info-missing": (lambda d: dn.model_info(d / "x.safetensors"), ValueError, "does not exist"),
    "save-suffix": (
        lambda d: dn.save_model(_net(), d / "m.pt"),
        ValueError,
        "end in .safetensors",
    ),
    "save-type": (
        lambda d: dn.save_model("default", d / "m.safetensors"),
        TypeError,
        "needs a DeconvNet",
    ),
    "save-metadata": (lambda d: _unserialisable(d), ValueError, "JSON-serialisable"),
}


def _file(path, data):
    path.write_bytes(data)
    return path


def test_a_3d_model_on_a_2d_image_says_which_axes_it_needs():
    with pytest.raises(ValueError, match="Z"):
        try:
            dn.restore(IMG, "denoise-3d")
        except ValueError as err:
            assert "substring not found" not in str(err)
            raise


@pytest.mark.parametrize("case", list(API))
def test_api_refuses_bad_input_with_a_clear_message(case, tmp_path):
    call, exc, pattern = API[case]
    with pytest.raises(exc, match=pattern) as info:
        call(tmp_path)
    assert len(str(info.value)) > 20  # a sentence, not a bare key or number


def test_nothing_half_written_after_refused_saves(tmp_path):
    for case in ("save-suffix", "save-metadata"):
        with pytest.raises(ValueError):
            API[case][0](tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- CLI


@pytest.fixture
def files(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", IMG)
    tifffile.imwrite(tmp_path / "half.tif", IMG[:16])
    tifffile.imwrite(tmp_path / "nan.tif", NAN)
    (tmp_path / "broken.tif").write_bytes(b"not a tiff at all")
    (tmp_path / "broken.safetensors").write_bytes(b"\0" * 20)
    (tmp_path / "notes.txt").write_text("hello")
    return tmp_path


# (argv with {d} for the folder, exit status, message pattern)
CLI = {
    "no-command": ([], 2, "required: COMMAND"),
    "unknown-command": (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    "restore-no-args": (["restore"], 2, "required: IN, -o/--output"),
    "restore-missing-file": (["restore", "{d}/missing.tif", "-o", "{d}/o"], 2, "no such file"),
    "restore-model-name": (
        ["restore", "{d}/a.tif", "-o", "{d}/o", "--model", "nope"],
        2,
        "unknown model 'nope'",
    ),
    "restore-broken-model": (
        ["restore", "{d}/a.tif", "-o", "{d}/o", "--model", "{d}/broken.safetensors"],
        2,
        "not a valid safetensors file",
    ),
    "restore-tile": (
        ["restore", "{d}/a.tif", "-o", "{d}/o", "--tile", "0"],
        2,
        "--tile: expected a positive integer",
    ),
    "restore-axes": (
        ["restore", "{d}/a.tif", "-o", "{d}/o", "--axes", "ZYX"],
        2,
        "3 letters but the image has 2",
    ),
    "restore-device": (
        ["restore", "{d}/a.tif", "-o", "{d}/o", "--device", "tpu"],
        2,
        "unknown device 'tpu'",
    ),
    "restore-deconv-no-psf": (
        ["restore", "{d}/a.tif", "-o", "{d}/o", "--model", "deconv-2d"],
        2,
        "needs --psf",
    ),
    "restore-denoiser-psf": (
        ["restore", "{d}/a.tif", "-o", "{d}/o", "--method", "nlm", "--psf", "gaussian:sigma=2"],
        2,
        "takes no PSF; drop --psf",
    ),
    "restore-format": (
        ["restore", "{d}/a.tif", "-o", "{d}/o", "--format", "jpg"],
        2,
        "--format: invalid choice",
    ),
    "restore-unreadable": (["restore", "{d}/broken.tif", "-o", "{d}/o"], 1, "cannot read it"),
    "restore-nan": (["restore", "{d}/nan.tif", "-o", "{d}/o"], 2, "NaN or infinite"),
    "restore-text-file": (
        ["restore", "{d}/notes.txt", "-o", "{d}/o"],
        2,
        "unsupported file type '.txt'",
    ),
    "synth-noise": (
        ["synthesize", "{d}/a.tif", "-o", "{d}/s", "--noise", "foo"],
        2,
        "unknown noise model 'foo'",
    ),
    "synth-param": (
        ["synthesize", "{d}/a.tif", "-o", "{d}/s", "--noise", "gaussian:sigma=-1"],
        2,
        "sigma must be >= 0",
    ),
    "synth-spec": (
        ["synthesize", "{d}/a.tif", "-o", "{d}/s", "--noise", "gaussian:sigma"],
        2,
        "expected NAME:key=value",
    ),
    "synth-clip": (
        ["synthesize", "{d}/a.tif", "-o", "{d}/s", "--clip", "1"],
        2,
        "--clip: expected LOW,HIGH",
    ),
    "synth-psf": (
        ["synthesize", "{d}/a.tif", "-o", "{d}/s", "--psf", "foo:sigma=2"],
        2,
        "unknown PSF 'foo'",
    ),
    "evaluate-shapes": (["evaluate", "{d}/a.tif", "{d}/half.tif"], 2, "same shape"),
    "evaluate-missing": (["evaluate", "{d}/a.tif", "{d}/missing.tif"], 2, "no such file"),
    "evaluate-range": (
        ["evaluate", "{d}/a.tif", "{d}/a.tif", "--data-range", "-1"],
        2,
        "expected a positive number",
    ),
    "info-name": (["info", "nope"], 2, "unknown model 'nope'"),
    "info-broken": (["info", "{d}/broken.safetensors"], 2, "not a valid safetensors"),
    "train-suffix": (
        ["train", "--input", "{d}/a.tif", "-o", "{d}/x.pt"],
        2,
        "end in .safetensors",
    ),
    "train-epochs": (
        ["train", "--input", "{d}/a.tif", "-o", "{d}/x.safetensors", "--epochs", "0"],
        2,
        "--epochs: expected a positive integer",
    ),
    "train-pairs": (
        ["train", "--input", "{d}/a.tif", "{d}/half.tif", "--target", "{d}/half.tif"]
        + ["-o", "{d}/x.safetensors", "--epochs", "1"],
        2,
        "2 inputs but 1 targets",
    ),
    "train-loss": (
        ["train", "--input", "{d}/a.tif", "-o", "{d}/x.safetensors", "--loss", "huber"],
        2,
        "unknown loss 'huber'",
    ),
    "train-validation": (
        ["train", "--input", "{d}/a.tif", "-o", "{d}/x.safetensors", "--validation", "2"],
        2,
        "--validation: expected a fraction",
    ),
    "sample-name": (["sample", "nope", "-o", "{d}/smp"], 2, "unknown sample 'nope'"),
}


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("case", list(CLI))
def test_cli_reports_bad_input_in_one_line_with_its_exit_status(case, files, capsys):
    argv, status, pattern = CLI[case]
    code, err = _run([a.replace("{d}", str(files)) for a in argv], capsys)
    assert code == status, err
    assert "Traceback" not in err
    first = err.strip().splitlines()[0]
    assert first.startswith("napari-deconvnet"), err
    assert ": error: " in first
    import re

    assert re.search(pattern, err), err
    assert not (files / "o").exists() or not any((files / "o").iterdir())


def test_cli_unexpected_errors_are_one_line_unless_debug(files, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the accelerator fell over")

    monkeypatch.setattr(dn, "restore", broken)
    monkeypatch.setattr(dn, "run_method", broken)
    monkeypatch.setattr("napari_deconvnet.core.tiling.restore", broken, raising=False)
    argv = ["restore", str(files / "a.tif"), "-o", str(files / "o")]
    code, err = _run(argv, capsys)
    assert code == 1
    assert "Traceback" not in err
    assert "the accelerator fell over" in err
    code, err = _run([*argv, "--debug"], capsys)
    assert code == 1
    assert "Traceback" in err and "the accelerator fell over" in err


# ------------------------------------------------------------------ widgets
# The same kinds of bad input through the Restore dock widget in a real
# viewer: each becomes one napari notification (show_error), nothing is
# added, and the widget is ready for the next run.

WIDGET = {
    "nan-image": (
        lambda rng: np.where(rng.random((32, 40)) < 0.01, np.nan, rng.random((32, 40))),
        "denoise-2d",
        None,
        "NaN",
    ),
    "inf-image": (
        lambda rng: np.where(rng.random((32, 40)) < 0.01, np.inf, rng.random((32, 40))),
        "denoise-2d",
        None,
        "infinite",
    ),
    "psf-bigger-than-the-image": (
        lambda rng: rng.random((32, 32)),
        "richardson-lucy",
        np.ones((41, 41), np.float32),
        "bigger",
    ),
    "psf-of-the-wrong-dimensionality": (
        lambda rng: rng.random((32, 32)),
        "richardson-lucy",
        np.ones((3, 5, 5), np.float32),
        "3D",
    ),
    "psf-with-nan": (
        lambda rng: rng.random((32, 32)),
        "deconv-2d",
        np.full((5, 5), np.nan, np.float32),
        "NaN",
    ),
}


@pytest.mark.parametrize("case", list(WIDGET))
def test_restore_widget_notifies_bad_input(case, make_napari_viewer, qtbot, monkeypatch):
    from napari_deconvnet.widgets import restore as restore_module

    messages = []
    monkeypatch.setattr(restore_module, "show_error", messages.append)
    make, method, psf, match = WIDGET[case]
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    widget.device.value = "cpu"
    viewer.add_image(make(np.random.default_rng(0)).astype(np.float32), name="img")
    names = ["img"]
    if psf is not None:
        viewer.add_image(psf, name="psf")
        names.append("psf")
        widget.image.value = viewer.layers["img"]
    widget.method.value = method
    if psf is not None:
        widget.psf.source.value = "from layer"
        widget.psf.layer.value = viewer.layers["psf"]
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert len(messages) == 1, messages
    assert match in messages[0], messages[0]
    assert "Traceback" not in messages[0]
    assert [layer.name for layer in viewer.layers] == names
    assert widget.run_button.enabled and not widget.cancel_button.enabled
