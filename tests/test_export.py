"""bioimage.io packages, TorchScript and ONNX: export, validation, re-import, equality."""

import importlib.util
import io
import json
import re
import shutil
import sys
import zipfile

import numpy as np
import pytest
import torch
import yaml

import napari_deconvnet as dn

pytest.importorskip("bioimageio.spec")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from napari_deconvnet.core.bioimageio import validate_package  # noqa: E402
from napari_deconvnet.core.bioimageio_read import apply_processing  # noqa: E402
from napari_deconvnet.core.export import GridPadded  # noqa: E402

EXPORTABLE = ["denoise-2d", "denoise-3d", "deconv-2d", "deconv-3d", "denoise-2d-nl"]


def _close(a, b, reference):
    """Max difference within 1e-4 of the reference's range."""
    span = float(np.ptp(reference)) or 1.0
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) <= 1e-4 * span


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """Every exportable shipped model, exported once for the module."""
    folder = tmp_path_factory.mktemp("packages")
    return {
        name: dn.export_bioimageio(name, folder / f"{name}.zip", authors=["Test Author"])
        for name in EXPORTABLE
    }


def _rdf(path):
    with zipfile.ZipFile(path) as zf:
        return yaml.safe_load(zf.read("rdf.yaml"))


def _npy(path, name):
    with zipfile.ZipFile(path) as zf:
        return np.load(io.BytesIO(zf.read(name)))


def _rewrite(src, dst, **replace):
    """Copy a package zip, replacing some of its files' bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            zout.writestr(item, replace.get(item, zin.read(item)))
    return dst


# ------------------------------------------------------------------ export


@pytest.mark.parametrize("name", EXPORTABLE)
def test_package_validates_and_declares_the_model(packages, name):
    from bioimageio.spec import load_description

    path = packages[name]
    descr = load_description(str(path), perform_io_checks=True)
    assert descr.validation_summary.status in ("passed", "valid-format")
    net = dn.load_model(name)
    rdf = _rdf(path)
    assert rdf["format_version"].startswith("0.5.")
    assert rdf["authors"] == [{"name": "Test Author"}]
    spatial = list("zyx"[3 - net.config.ndim :])
    axes = rdf["inputs"][0]["axes"]
    assert [a["type"] for a in axes] == ["batch", "channel"] + ["space"] * net.config.ndim
    for axis in axes[2:]:
        assert axis["size"]["step"] == net.config.grid
        assert axis["size"]["min"] > 2 * net.halo and axis["size"]["min"] % net.config.grid == 0
    assert [a["halo"] for a in rdf["outputs"][0]["axes"][2:]] == [net.halo] * net.config.ndim
    scale = rdf["inputs"][0]["preprocessing"][-1]
    assert scale["id"] == "scale_range"
    assert scale["kwargs"]["axes"] == spatial
    assert (scale["kwargs"]["min_percentile"], scale["kwargs"]["max_percentile"]) == (0.5, 99.5)
    assert rdf["outputs"][0]["postprocessing"] == []  # no inverse exists in the spec
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript", "onnx"}
    # the PSF the test output was made with is listed, so that repackaging keeps it
    psf_listed = [{"source": "test_psf.npy"}] if name.startswith("deconv") else None
    assert rdf.get("attachments") == psf_listed
    arch = rdf["weights"]["pytorch_state_dict"]["architecture"]
    assert arch["callable"] == "DeconvNetZoo"
    assert arch["kwargs"] == net.config.to_dict()
    conditioned = name.startswith("deconv") or name == "denoise-2d-nl"
    assert [t["id"] for t in rdf["inputs"]] == ["input"] + (
        ["conditioning"] if conditioned else []
    )
    if conditioned:
        cond = rdf["inputs"][1]["preprocessing"][-1]["kwargs"]
        assert cond["reference_tensor"] == "input"  # normalised with the image's statistics
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        readme = zf.read("README.md").decode()
    assert {"cover.png", "README.md", "deconvnet.py", "weights.pt", "weights.onnx"} <= names
    assert "## Training recipe" in readme and "## Validation scores" in readme
    assert "best_val_psnr" in readme  # the shipped models' validation score


@pytest.mark.parametrize("name", ["denoise-2d", "deconv-2d", "deconv-3d"])
def test_package_output_is_restore_in_normalised_units(packages, name):
    """The test output is what dn.restore gives, mapped by the input's percentiles."""
    path = packages[name]
    image = _npy(path, "test_input.npy")[0, 0]
    psf = _npy(path, "test_psf.npy") if name.startswith("deconv") else None
    restored = dn.restore(image, name, psf=psf)
    lo, hi = np.percentile(image.astype(np.float64), [0.5, 99.5])
    expected = (restored - lo) / (hi - lo)
    output = _npy(path, "test_output.npy")[0, 0]
    assert output.shape == image.shape
    assert _close(output, expected, expected)


@pytest.mark.parametrize("name", EXPORTABLE)
def test_reimport_and_every_weight_format_reproduce(packages, name):
    """The package re-imports (which reruns its state dict on the test input and
    requires the test output), restores like the original, and its TorchScript
    and ONNX weights give the test output too."""
    path = packages[name]
    rdf = _rdf(path)
    original = dn.load_model(name)
    loaded = dn.load_model(path)
    assert loaded.metadata["name"] == name
    assert loaded.config == original.config
    assert loaded.metadata.get("conditioning") == original.metadata.get("conditioning")
    rng = np.random.default_rng(0)
    shape = (40, 60) if original.config.ndim == 2 else (12, 20, 24)
    image = rng.normal(100, 10, shape).astype(np.float32)
    psf = dn.make_psf("gaussian", shape=(5,) * len(shape), sigma=1.0) if "deconv" in name else None
    np.testing.assert_array_equal(
        dn.restore(image, loaded, psf=psf), dn.restore(image, original, psf=psf)
    )

    inputs = {t["id"]: _npy(path, t["test_tensor"]["source"]) for t in rdf["inputs"]}
    ids = ["batch", "channel", *"zyx"[3 - original.config.ndim :]]
    ready = [
        torch.from_numpy(apply_processing(t["preprocessing"], inputs[t["id"]], ids, inputs))
        for t in rdf["inputs"]
    ]
    expected = _npy(path, "test_output.npy")
    with zipfile.ZipFile(path) as zf:
        scripted = torch.jit.load(io.BytesIO(zf.read("weights_torchscript.pt")))
        session = ort.InferenceSession(zf.read("weights.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ts_out = scripted(*ready).numpy()
    feed = {t["id"]: x.numpy() for t, x in zip(rdf["inputs"], ready, strict=True)}
    onnx_out = session.run(None, feed)[0]
    for out in (ts_out, onnx_out):
        assert out.shape == expected.shape
        assert _close(out, expected, expected)


def test_unpacked_package_loads_from_its_rdf(packages, tmp_path):
    path = packages["denoise-2d"]
    shutil.unpack_archive(path, tmp_path / "unpacked")
    unpacked = dn.load_model(tmp_path / "unpacked" / "rdf.yaml")
    image = np.random.default_rng(0).normal(100, 10, (40, 60)).astype(np.float32)
    np.testing.assert_array_equal(dn.restore(image, unpacked), dn.restore(image, "denoise-2d"))
    info = dn.model_info(path)
    assert dn.DeconvNetConfig.from_dict(info["config"]) == unpacked.config
    assert info["metadata"]["bioimageio"]["authors"] == ["Test Author"]


def test_fixed_normalisation_keeps_intensities(random_net, tmp_path):
    net = random_net(normalization={"method": "fixed", "offset": 10.0, "scale": 50.0})
    rng = np.random.default_rng(1)
    image = rng.normal(30, 8, (70, 66)).astype(np.float32)
    path = dn.export_bioimageio(net, tmp_path / "fixed.zip", test_image=image, authors="A")
    rdf = _rdf(path)
    assert rdf["outputs"][0]["postprocessing"] == [
        {"id": "scale_linear", "kwargs": {"gain": 50.0, "offset": 10.0}}
    ]
    test_in = _npy(path, "test_input.npy")[0, 0]
    assert test_in.shape == (68, 64)  # centre crop to min + n * step
    out = _npy(path, "test_output.npy")[0, 0]
    assert _close(out, dn.restore(test_in, net), out)  # same intensities as restore
    loaded = dn.load_model(path)
    assert loaded.config.normalization == net.config.normalization


def test_shared_files_carry_no_local_paths(random_net, tmp_path):
    # session 73: a fine-tuned model's package carried the starting model's path on
    # this machine (training.fine_tuned_from.path); its name and fingerprint stay
    net = random_net()
    parent = {"name": "denoise-2d", "path": str(tmp_path / "secret" / "d.safetensors")}
    net.metadata = {"name": "mine", "training": {"fine_tuned_from": {**parent, "sha": "ab"}}}
    path = dn.export_bioimageio(net, tmp_path / "mine.zip", authors="A")
    with zipfile.ZipFile(path) as zf:
        assert not [n for n in zf.namelist() if b"secret" in zf.read(n)]
    kept = _rdf(path)["config"]["napari_deconvnet"]["metadata"]["training"]
    assert kept["fine_tuned_from"] == {"name": "denoise-2d", "sha": "ab"}
    assert net.metadata["training"]["fine_tuned_from"]["path"] == parent["path"]  # untouched


def test_multichannel_model(random_net, tmp_path):
    """Channels are normalised separately, as restore does."""
    net = random_net(in_channels=3, out_channels=3)
    rng = np.random.default_rng(3)
    image = rng.normal(0, 1, (3, 64, 56)) * np.array([1, 10, 100])[:, None, None]
    path = dn.export_bioimageio(net, tmp_path / "rgb.zip", test_image=image, authors="A")
    rdf = _rdf(path)
    assert rdf["inputs"][0]["axes"][1]["channel_names"] == ["image_0", "image_1", "image_2"]
    test_in = _npy(path, "test_input.npy")[0]
    restored = dn.restore(test_in, net, axes="CYX")
    lo, hi = np.percentile(test_in.astype(np.float64), [0.5, 99.5], axis=(1, 2), keepdims=True)
    out = _npy(path, "test_output.npy")[0]
    assert _close(out, (restored - lo) / (hi - lo), out)
    np.testing.assert_array_equal(dn.restore(test_in, dn.load_model(path), axes="CYX"), restored)
    # without a test image: the built-in sample, one turn of it per channel (session 69:
    # refused, "test_image has shape (128, 128)", for a test_image nobody passed)
    path = dn.export_bioimageio(net, tmp_path / "own.zip", authors="A")
    test_in = _npy(path, "test_input.npy")[0]
    assert test_in.shape[0] == 3 and not np.allclose(test_in[0], test_in[1])
    np.testing.assert_allclose(test_in[1], np.rot90(test_in[0]), atol=1e-6)
    np.testing.assert_array_equal(
        dn.restore(test_in, dn.load_model(path), axes="CYX"), dn.restore(test_in, net, axes="CYX")
    )


@pytest.mark.slow
def test_bioimageio_core_test_model(packages):
    core = pytest.importorskip("bioimageio.core")
    for weights in ("pytorch_state_dict", "torchscript", "onnx"):
        summary = core.test_model(str(packages["denoise-2d"]), weight_format=weights)
        assert summary.status == "passed", summary.format()


# ----------------------------------------------------------- bad inputs


def test_salt_and_pepper_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="impulse switch"):
        dn.export_bioimageio("salt-and-pepper", tmp_path / "sp.zip")
    assert not list(tmp_path.iterdir())


def test_noise_conditioned_package_needs_no_psf_and_describes_its_noise_map(packages):
    # it used to be refused: "model 'denoise-2d-nl' deconvolves: pass psf="
    rdf = _rdf(packages["denoise-2d-nl"])
    assert [i["id"] for i in rdf["inputs"]] == ["input", "conditioning"]
    assert "noise map" in rdf["inputs"][1]["description"]
    with zipfile.ZipFile(packages["denoise-2d-nl"]) as zf:
        readme = zf.read("README.md").decode()
        assert "test_psf.npy" not in zf.namelist()
    assert "noise variance line" in readme and "PSF" not in readme


def test_deconvolution_test_image_needs_a_psf(tmp_path):
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    with pytest.raises(ValueError, match="psf="):
        dn.export_bioimageio("deconv-2d", tmp_path / "d.zip", test_image=image)


def test_bad_test_images(tmp_path):
    with pytest.raises(ValueError, match="smaller than this model's package minimum"):
        dn.export_bioimageio("denoise-2d", tmp_path / "a.zip", test_image=np.zeros((40, 80)))
    with pytest.raises(ValueError, match="needs a"):
        dn.export_bioimageio("denoise-2d", tmp_path / "a.zip", test_image=np.zeros((2, 64, 64)))


def test_export_into_a_missing_folder(tmp_path):
    for target in ("m.zip", "m.onnx", "m.pt"):
        with pytest.raises(ValueError, match="does not exist"):
            dn.export("denoise-2d", tmp_path / "missing" / target)
    with pytest.raises(ValueError, match="does not exist"):
        dn.export_bioimageio("denoise-2d", tmp_path / "missing" / "m.zip")


def test_unknown_format_and_suffix(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the export format"):
        dn.export("denoise-2d", tmp_path / "m.bin")
    with pytest.raises(ValueError, match="unknown export format"):
        dn.export("denoise-2d", tmp_path / "m.onnx", format="tflite")
    with pytest.raises(ValueError, match="end in .zip"):
        dn.export_bioimageio("denoise-2d", tmp_path / "m.onnx")


def test_foreign_architecture_is_named(packages, tmp_path):
    rdf = _rdf(packages["denoise-2d"])
    rdf["weights"]["pytorch_state_dict"]["architecture"]["callable"] = "UNet2d"
    bad = _rewrite(packages["denoise-2d"], tmp_path / "unet.zip", **{"rdf.yaml": yaml.dump(rdf)})
    with pytest.raises(ValueError, match="architecture 'UNet2d'.*not napari-deconvnet's"):
        dn.load_model(bad)
    rdf["weights"] = {"onnx": rdf["weights"]["onnx"]}
    bad = _rewrite(packages["denoise-2d"], tmp_path / "onnx.zip", **{"rdf.yaml": yaml.dump(rdf)})
    with pytest.raises(ValueError, match="no pytorch_state_dict weights"):
        dn.load_model(bad)
    # an rdf.yaml without a type said "describes a bioimage.io None"
    bad = _rewrite(packages["denoise-2d"], tmp_path / "none.zip", **{"rdf.yaml": "name: x\n"})
    with pytest.raises(ValueError, match="has no 'type: model' in its rdf.yaml"):
        dn.load_model(bad)


def test_zoo_package_of_our_architecture_without_our_record(packages, tmp_path):
    """A zoo package that imports DeconvNet from the library and has no napari-deconvnet
    config section: the normalisation comes from its declared pre-processing."""
    rdf = _rdf(packages["denoise-2d"])
    kwargs = dict(rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"])
    kwargs["normalization"] = {"method": "none"}  # the rdf's processing is what counts
    rdf["weights"]["pytorch_state_dict"]["architecture"] = {
        "callable": "DeconvNet",
        "import_from": "napari_deconvnet.core.model",
        "kwargs": kwargs,
    }
    del rdf["config"]
    zoo = _rewrite(packages["denoise-2d"], tmp_path / "zoo.zip", **{"rdf.yaml": yaml.dump(rdf)})
    loaded = dn.load_model(zoo)  # reproduces the test output
    assert loaded.config.normalization == {"method": "percentile", "low": 0.5, "high": 99.5}
    assert loaded.metadata["name"] == rdf["name"]
    rdf["weights"]["pytorch_state_dict"]["architecture"]["import_from"] = "other_lib.models"
    other = _rewrite(
        packages["denoise-2d"], tmp_path / "other.zip", **{"rdf.yaml": yaml.dump(rdf)}
    )
    with pytest.raises(ValueError, match="other_lib.models"):
        dn.load_model(other)


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"id": "scale_linear", "kwargs": {"gain": 0.0, "offset": 1.0}}, "gain=0.0"),
        ({"id": "scale_linear", "kwargs": {"gain": ".nan"}}, "gain='.nan'"),
        ({"id": "scale_linear", "kwargs": {"gain": 2.0, "offset": "x"}}, "offset='x'"),
        ({"id": "fixed_zero_mean_unit_variance", "kwargs": {"mean": 3.0, "std": 0}}, "std=0"),
        ({"id": "fixed_zero_mean_unit_variance", "kwargs": {"std": 2.0}}, "mean=None"),
        ({"id": "scale_range", "kwargs": {"max_percentile": None}}, "max_percentile=None"),
        ({"id": "scale_range", "kwargs": ["a"]}, "not a mapping"),
    ],
)
def test_zoo_pre_processing_that_cannot_normalise(packages, tmp_path, step, field):
    """A zoo package's pre-processing that cannot become a normalisation (a gain of 0,
    a text or missing value) is refused naming the value, before any weights are read
    (a gain of 0 was a bare ZeroDivisionError)."""
    rdf = _rdf(packages["denoise-2d"])
    kwargs = dict(rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"])
    rdf["weights"]["pytorch_state_dict"]["architecture"] = {
        "callable": "DeconvNet",
        "import_from": "napari_deconvnet.core.model",
        "kwargs": kwargs,
    }
    del rdf["config"]
    rdf["inputs"][0]["preprocessing"] = [step]
    zoo = _rewrite(packages["denoise-2d"], tmp_path / "zoo.zip", **{"rdf.yaml": yaml.dump(rdf)})
    for call in (dn.model_info, lambda p: dn.load_model(p)):
        with pytest.raises(ValueError, match=re.escape(field)) as caught:
            call(zoo)
        assert "pre-processing" in str(caught.value)


@pytest.mark.parametrize(
    "edit", [{"depth": 10**6}, {"base_channels": 10**6}, {"depth": 3}, {"ndim": 4}]
)
def test_kwargs_that_do_not_fit_the_weights(packages, tmp_path, edit):
    rdf = _rdf(packages["denoise-2d"])
    rdf["config"]["napari_deconvnet"]["config"].update(edit)
    rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"].update(edit)  # alike
    bad = _rewrite(packages["denoise-2d"], tmp_path / "bad.zip", **{"rdf.yaml": yaml.dump(rdf)})
    with pytest.raises(ValueError, match="do not fit|not a valid config"):
        dn.load_model(bad)


@pytest.mark.parametrize(
    "where, edit",
    [
        ("config", {"normalization": {"method": "percentile", "low": 5.0, "high": 95.0}}),
        ("kwargs", {"base_channels": 16}),
    ],
)
def test_a_record_that_disagrees_with_what_the_package_declares(packages, tmp_path, where, edit):
    # our own record was read alone: an edited package restored otherwise than it
    # declares to every other reader (percentiles 5/95 against a declared 0.5/99.5)
    rdf = _rdf(packages["denoise-2d"])
    if where == "config":
        rdf["config"]["napari_deconvnet"]["config"].update(edit)
    else:
        rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"].update(edit)
    bad = _rewrite(packages["denoise-2d"], tmp_path / "bad.zip", **{"rdf.yaml": yaml.dump(rdf)})
    for call in (dn.model_info, dn.load_model):
        with pytest.raises(ValueError, match="record disagrees with what the package declares"):
            call(bad)


def test_a_post_processing_restore_does_not_apply_is_refused(packages, random_net, tmp_path):
    """Session 67: the output's post-processing was never read, so a declared extra
    step was dropped (restore gave the plain model's output) and a fixed package
    without its inverse step restored 100x off what it declares; the test passed."""
    rdf = _rdf(packages["denoise-2d"])
    rdf["outputs"][0]["postprocessing"] = [
        {"id": "scale_linear", "kwargs": {"gain": 2.0, "offset": 0.5}}
    ]
    extra = _rewrite(
        packages["denoise-2d"], tmp_path / "extra.zip", **{"rdf.yaml": yaml.dump(rdf)}
    )
    for call in (dn.model_info, dn.load_model):
        with pytest.raises(ValueError, match=r"post-processing \(\['scale_linear'\]\).*none"):
            call(extra)
    net = random_net(normalization={"method": "fixed", "offset": 10.0, "scale": 50.0})
    image = np.random.default_rng(1).normal(30, 8, (64, 64)).astype(np.float32)
    fixed = dn.export_bioimageio(net, tmp_path / "fixed.zip", test_image=image, authors="A")
    assert dn.load_model(fixed).config.normalization == net.config.normalization  # as exported
    rdf = _rdf(fixed)
    rdf["outputs"][0]["postprocessing"] = []
    bare = _rewrite(fixed, tmp_path / "bare.zip", **{"rdf.yaml": yaml.dump(rdf)})
    with pytest.raises(ValueError, match="one scale_linear with gain 50 and offset 10"):
        dn.load_model(bare)


def test_a_damaged_rdf_and_string_tags(packages, tmp_path):
    rdf = _rdf(packages["denoise-2d"])
    rdf["config"] = "oops"
    bad = _rewrite(packages["denoise-2d"], tmp_path / "bad.zip", **{"rdf.yaml": yaml.dump(rdf)})
    with pytest.raises(ValueError, match="not a readable bioimage.io package"):
        dn.model_info(bad)  # it was "AttributeError: 'str' object has no attribute 'get'"
    with pytest.raises(TypeError, match="tags must be a list of words"):
        dn.export_bioimageio("denoise-2d", tmp_path / "t.zip", authors=["A"], tags="confocal")
    assert not (tmp_path / "t.zip").exists()


def test_corrupt_and_non_package_zips(packages, tmp_path):
    data = packages["denoise-2d"].read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable zip"):
        dn.load_model(truncated)
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match="without an rdf.yaml"):
        dn.load_model(plain)
    with pytest.raises(ValueError, match="does not exist"):
        dn.load_model(tmp_path / "absent.zip")


def test_a_package_whose_test_output_does_not_reproduce(packages, tmp_path):
    path = packages["denoise-2d"]
    output = _npy(path, "test_output.npy")
    buffer = io.BytesIO()
    np.save(buffer, output + 0.01 * np.ptp(output))
    bad = _rewrite(path, tmp_path / "drift.zip", **{"test_output.npy": buffer.getvalue()})
    with pytest.raises(ValueError, match="does not reproduce"):
        dn.load_model(bad)


def test_remote_files_are_never_downloaded(packages, tmp_path):
    rdf = _rdf(packages["denoise-2d"])
    rdf["weights"]["pytorch_state_dict"]["source"] = "https://example.org/weights.pt"
    bad = _rewrite(packages["denoise-2d"], tmp_path / "remote.zip", **{"rdf.yaml": yaml.dump(rdf)})
    with pytest.raises(ValueError, match="never downloads"):
        dn.load_model(bad)


def test_failed_export_leaves_nothing(monkeypatch, tmp_path):
    import napari_deconvnet.core.bioimageio as bio

    def broken(path):
        raise ValueError("the bioimage.io package does not validate: test")

    monkeypatch.setattr(bio, "validate_package", broken)
    old = tmp_path / "m.zip"
    old.write_bytes(b"previous")
    with pytest.raises(ValueError, match="does not validate"):
        dn.export_bioimageio("denoise-2d", old)
    assert old.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["m.zip"]


def test_validate_package_reports_errors(packages, tmp_path):
    rdf = _rdf(packages["denoise-2d"])
    rdf["inputs"][0]["axes"][2]["size"]["min"] = 8  # smaller than twice the halo
    bad = _rewrite(packages["denoise-2d"], tmp_path / "bad.zip", **{"rdf.yaml": yaml.dump(rdf)})
    with pytest.raises(ValueError, match="does not validate"):
        validate_package(bad)


# --------------------------------------------------- TorchScript and ONNX


@pytest.mark.parametrize("name", ["denoise-2d", "conditioned-3d"])
def test_torchscript_and_onnx_match_pytorch_at_two_sizes(name, random_net, tmp_path):
    if name == "denoise-2d":
        net = dn.load_model(name)
    else:  # small random weights keep the 3D case fast
        net = random_net(ndim=3, depth=1, in_channels=2, out_channels=1, residual_input=1)
    ts_path = dn.export(net, tmp_path / "m.pt")
    onnx_path = dn.export(net, tmp_path / "m.onnx")
    scripted = torch.jit.load(str(ts_path))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    low = net.halo + net.config.grid  # the smallest size the graphs take
    sizes = (
        [(48, 64), (37, 50)]
        if net.config.ndim == 2
        else [(low, low + 4, low), (low + 1, low, low + 3)]
    )
    for size in sizes:  # on the grid and off it
        x = torch.rand(
            2 if net.config.ndim == 2 else 1, net.config.in_channels, *size, generator=gen
        )
        with torch.no_grad():
            reference = GridPadded(net)(x).numpy()
            ts_out = scripted(x).numpy()
        onnx_out = session.run(None, {"input": x.numpy()})[0]
        assert ts_out.shape == onnx_out.shape == reference.shape
        assert _close(ts_out, reference, reference)
        assert _close(onnx_out, reference, reference)
    record = json.loads(onnx.load(str(onnx_path)).metadata_props[0].value)
    assert record["normalization"] == net.config.normalization
    assert record["grid"] == net.config.grid and record["halo"] == net.halo
    extra = {"napari_deconvnet.json": ""}
    torch.jit.load(str(ts_path), _extra_files=extra)
    assert json.loads(extra["napari_deconvnet.json"])["config"] == net.config.to_dict()


def test_salt_and_pepper_graphs_say_the_switch_is_left_to_the_runtime(tmp_path):
    """A salt-and-pepper model's TorchScript/ONNX export warns, and its record says, that
    the impulse switch (keep what is not at the image's extremes) is not in the graph; a
    denoiser's says nothing of it (the export was silent and the record too)."""
    with pytest.warns(UserWarning, match="impulse switch is not part of the graph"):
        ts_path = dn.export("salt-and-pepper", tmp_path / "sp.pt")
    with pytest.warns(UserWarning, match="impulse switch"):
        onnx_path = dn.export("salt-and-pepper", tmp_path / "sp.onnx")
    extra = {"napari_deconvnet.json": ""}
    torch.jit.load(str(ts_path), _extra_files=extra)
    for record in (
        json.loads(extra["napari_deconvnet.json"]),
        json.loads(onnx.load(str(onnx_path)).metadata_props[0].value),
    ):
        assert "minimum or maximum" in record["impulse_switch"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = dn.export("denoise-2d", tmp_path / "d.pt")
    extra = {"napari_deconvnet.json": ""}
    torch.jit.load(str(plain), _extra_files=extra)
    assert "impulse_switch" not in json.loads(extra["napari_deconvnet.json"])


def test_deployed_graph_is_restore_in_normalised_units(tmp_path):
    """What the graphs compute (GridPadded) is restore's result before mapping back."""
    net = dn.load_model("denoise-2d")
    image = np.random.default_rng(2).normal(50, 5, (45, 70)).astype(np.float32)
    lo, hi = np.percentile(image.astype(np.float64), [0.5, 99.5])
    x = torch.from_numpy(((image - lo) / (hi - lo)).astype(np.float32))[None, None]
    with torch.no_grad():
        graph = GridPadded(net)(x).numpy()[0, 0] * (hi - lo) + lo
    restored = dn.restore(image, net)
    assert _close(graph, restored, restored)


def test_architecture_file_is_standalone(packages, tmp_path, monkeypatch):
    """The package's deconvnet.py runs with torch alone and reproduces the test output."""
    path = packages["deconv-2d"]
    rdf = _rdf(path)
    arch = rdf["weights"]["pytorch_state_dict"]["architecture"]
    with zipfile.ZipFile(path) as zf:
        source = zf.read(arch["source"]).decode()
        state = torch.load(io.BytesIO(zf.read("weights.pt")), weights_only=True)
    assert "import napari_deconvnet" not in source and "from ." not in source
    file = tmp_path / "deconvnet_package.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location("deconvnet_package", file)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "deconvnet_package", module)
    spec.loader.exec_module(module)
    namespace = vars(module)
    zoo = namespace[arch["callable"]](**arch["kwargs"]).eval()
    zoo.load_state_dict(state)
    inputs = {t["id"]: _npy(path, t["test_tensor"]["source"]) for t in rdf["inputs"]}
    ids = ["batch", "channel", "y", "x"]
    ready = [
        apply_processing(t["preprocessing"], inputs[t["id"]], ids, inputs) for t in rdf["inputs"]
    ]
    with torch.no_grad():
        out = zoo(*[torch.from_numpy(x) for x in ready]).numpy()
    expected = _npy(path, "test_output.npy")
    assert _close(out, expected, expected)


def test_export_leaves_the_callers_model_alone(random_net, tmp_path):
    net = random_net().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    dn.export(net, tmp_path / "m.pt")
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_export_takes_no_package_options_for_onnx(tmp_path):
    with pytest.raises(TypeError, match="takes no"):
        dn.export("denoise-2d", tmp_path / "m.onnx", authors="A")


@pytest.mark.parametrize(
    "opset, error", [(3, ValueError), (21, ValueError), ("17", TypeError), (17.0, TypeError)]
)
def test_an_onnx_opset_out_of_range_is_refused_before_export(tmp_path, opset, error):
    # opset 3 was torch's RuntimeError after a dump of the whole traced graph
    with pytest.raises(error, match="opset must be"):
        dn.export("denoise-2d", tmp_path / "m.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------ reader and CLI


def test_reader_opens_our_packages_only(packages, tmp_path):
    from napari_deconvnet.io.reader import get_model_reader, read_model

    assert get_model_reader(str(packages["denoise-2d"])) is read_model
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("notes.txt", "hello")
    assert get_model_reader(str(plain)) is None
    # the manifest routes packages to the model reader
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    for name in ("models/pkg.zip", "unpacked/rdf.yaml"):
        commands = {r.command for r in pm.iter_compatible_readers([name])}
        assert "napari-deconvnet.get_model_reader" in commands


def test_cli_export(tmp_path, capsys):
    from napari_deconvnet.cli import main

    out = tmp_path / "denoise.onnx"
    assert main(["export", "denoise-2d", "-o", str(out)]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out
    assert main(["export", "denoise-2d", "-o", str(out)]) == 2  # exists
    capsys.readouterr()
    # a missing folder is made, as the other commands make theirs (session 66: refused)
    assert main(["export", "denoise-2d", "-o", str(tmp_path / "x" / "m.pt")]) == 0
    assert (tmp_path / "x" / "m.pt").is_file() and "wrote" in capsys.readouterr().out
    assert main(["export", "denoise-2d", "-o", str(out), "--overwrite", "--author", "A"]) == 2
    capsys.readouterr()


def test_cli_export_bioimageio_with_a_test_image(tmp_path, capsys):
    import tifffile

    from napari_deconvnet.cli import main

    image = np.random.default_rng(0).normal(100, 10, (60, 70)).astype(np.float32)
    tifffile.imwrite(tmp_path / "test.tif", image)
    out = tmp_path / "pkg.zip"
    args = ["export", "denoise-2d", "-o", str(out), "--author", "A. Person", "--name", "my model"]
    assert main([*args, "--test-image", str(tmp_path / "test.tif")]) == 0
    rdf = _rdf(out)
    assert rdf["name"] == "my model" and rdf["authors"] == [{"name": "A. Person"}]
    assert _npy(out, "test_input.npy").shape == (1, 1, 60, 68)  # cropped to 52 + n * 4
    assert main(["export", "salt-and-pepper", "-o", str(tmp_path / "sp.zip")]) == 2
    assert "impulse switch" in capsys.readouterr().err
    assert main([*args[:-1], "abc", "--overwrite"]) == 2
    assert "5 to 128 characters" in capsys.readouterr().err


def test_train_widget_saves_a_bioimageio_package(make_napari_viewer, random_net, tmp_path):
    from types import SimpleNamespace

    from napari_deconvnet.widgets.train import TrainWidget

    widget = TrainWidget(make_napari_viewer())
    net = random_net()
    widget.result = SimpleNamespace(model=net)
    saved = widget.save_model(tmp_path / "mine.zip")
    assert saved == tmp_path / "mine.zip"
    loaded = dn.load_model(saved)
    image = np.random.default_rng(0).random((40, 52)).astype(np.float32)
    np.testing.assert_array_equal(dn.restore(image, loaded), dn.restore(image, net))


def test_exported_graphs_are_named_when_given_as_models(tmp_path):
    """model_info/load_model on an export: "an ONNX graph" (it said "not a valid safetensors
    file (header length 8031177557570357256 ...)") or a TorchScript zip."""
    onnx_path = dn.export("denoise-2d", tmp_path / "d.onnx")
    ts_path = dn.export("denoise-2d", tmp_path / "d.pt")
    for call in (dn.model_info, dn.load_model):
        with pytest.raises(ValueError, match="is an ONNX graph"):
            call(onnx_path)
        with pytest.raises(ValueError, match="TorchScript export"):
            call(ts_path)


def test_weights_that_do_not_match_their_declared_sha256_are_refused(packages, tmp_path):
    rdf = _rdf(packages["denoise-2d"])
    rdf["weights"]["pytorch_state_dict"]["sha256"] = "0" * 64  # never compared before
    bad = _rewrite(packages["denoise-2d"], tmp_path / "bad.zip", **{"rdf.yaml": yaml.dump(rdf)})
    with pytest.raises(ValueError, match="do not match the sha256 the package declares"):
        dn.load_model(bad)
    assert dn.load_model(packages["denoise-2d"]) is not None  # its own sha256 matches


def test_a_deeper_model_exports_with_the_built_in_sample(tmp_path):
    """Session 67: the built-in test image was 128² (52³ in 3D) whatever the model, and a
    deeper model's package minimum (twice its halo) is larger: export refused it, for a
    test_image nobody passed. The sample is now at least that minimum."""
    from napari_deconvnet.core.bioimageio_content import default_test_image, spatial_sizes

    net = dn.DeconvNet(dn.DeconvNetConfig(ndim=2, depth=4, base_channels=4))
    net.metadata = {"name": "deep"}
    assert spatial_sizes(net)[0] > 128
    image, _ = default_test_image(net)
    assert min(image.shape) >= spatial_sizes(net)[0]
    path = dn.export_bioimageio(net, tmp_path / "deep.zip", authors="A")
    test_in = _npy(path, "test_input.npy")[0, 0]
    assert min(test_in.shape) >= spatial_sizes(net)[0]
    loaded = dn.load_model(path)  # and its test reproduces
    np.testing.assert_allclose(dn.restore(test_in, loaded), dn.restore(test_in, net), atol=1e-5)
    shipped, _ = default_test_image(dn.load_model("denoise-2d"))
    assert shipped.shape == (128, 128)  # the shipped models' sample is as before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/dev/full is Linux's")
def test_torch_files_on_a_full_disk_raise_oserror(random_net):
    """torch's own writer, given a path, aborted the whole process when the disk filled
    (a C++ exception from a destructor; no OSError, a temporary file left behind):
    TorchScript and the bioimage.io state dict are written by Python (session 70)."""
    from pathlib import Path

    from napari_deconvnet.core.export import write_bytes, write_torchscript

    with pytest.raises(OSError):
        write_torchscript(random_net(), Path("/dev/full"))
    with pytest.raises(OSError):
        write_bytes(Path("/dev/full"), b"x" * (1 << 16))
