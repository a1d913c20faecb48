"""The napari-deconvnet command line, run in-process (no Qt)."""

import numpy as np
import pytest
import tifffile

import napari_deconvnet as dn
from napari_deconvnet.cli import main


def _image(shape=(48, 40), seed=0):
    return np.random.default_rng(seed).normal(100, 10, shape).astype(np.float32)


@pytest.fixture
def tif(tmp_path):
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, _image())
    return path


def test_restore_one_file(tif, tmp_path, capsys):
    out = tmp_path / "out.tif"
    assert main(["restore", str(tif), "-o", str(out), "--device", "cpu"]) == 0
    result = tifffile.imread(out)
    assert result.dtype == np.float32 and result.shape == (48, 40)
    np.testing.assert_allclose(result, dn.restore(_image(), device="cpu"), rtol=1e-6, atol=1e-5)
    with tifffile.TiffFile(out) as f:
        provenance = f.shaped_metadata[0]["napari_deconvnet"]
    assert provenance["model"] == "default" and provenance["version"] == dn.__version__
    assert provenance["axes"] == "YX"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]  # no temp files
    assert f"-> {out}" in capsys.readouterr().out


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
    photo = tifffile.imread(out / "photo_restored.tif")
    np.testing.assert_allclose(
        photo, dn.restore(rgb, axes="YXS", device="cpu"), rtol=1e-6, atol=1e-4
    )
    assert tifffile.imread(out / "stack_restored.tif").shape == (3, 40, 44)


def test_npy_output(tif, tmp_path):
    out = tmp_path / "out.npy"
    assert main(["restore", str(tif), "-o", str(out), "--tile", "16", "--axes", "YX"]) == 0
    assert np.load(out).shape == (48, 40)


@pytest.mark.parametrize(
    "args, message",
    [
        (["restore", "missing.tif", "-o", "out.tif"], "no such file"),
        (["restore", "notes.txt", "-o", "out.tif"], "unsupported file type"),
        (["restore", "{tif}", "-o", "out.png"], "cannot write .png"),
        (["restore", "{tif}", "-o", "out.tif", "--axes", "ZYX"], "axes"),
        (["restore", "{tif}", "-o", "out.tif", "--model", "nope"], "unknown model"),
        (["restore", "{tif}", "-o", "out.tif", "--tile", "4096"], "larger than the image"),
        (["restore", "{tif}", "-o", "out.tif", "--device", "tpu"], "device"),
        (["demo", "--headless"], "needs -o"),
    ],
)
def test_bad_input_exits_2_with_a_message(tif, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    assert main([a.format(tif=tif) for a in args]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    assert not (tmp_path / "out.tif").exists()


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["restore", "in.tif", "--tile", "0", "-o", "x.tif"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_models_lists_the_shipped_models(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in dn.list_models():
        assert name in out


def test_headless_demo_writes_and_improves_psnr(tmp_path, capsys):
    out = tmp_path / "camera.tif"
    assert main(["demo", "--headless", "-o", str(out), "--device", "cpu"]) == 0
    assert tifffile.imread(out).shape == (512, 512)
    lines = capsys.readouterr().out.splitlines()
    noisy = float(next(line for line in lines if "PSNR noisy" in line).split()[2])
    restored = float(next(line for line in lines if "PSNR restored" in line).split()[2])
    assert restored > noisy + 3
