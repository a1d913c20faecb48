"""PNG output of the command line: photos written back in their own 8- or 16-bit levels."""

from __future__ import annotations

import io

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_deconvnet.cli import main
from napari_deconvnet.io.png import encode_png, png_levels, png_problem, write_png
from napari_deconvnet.io.reader import read_image


def _psnr(x, ref, peak):
    return 10 * np.log10(peak**2 / np.mean((np.asarray(x, float) - ref) ** 2))


@pytest.fixture
def photo(tmp_path):
    """A noisy 8-bit RGB photo (PNG) and its clean version."""
    from skimage import data

    clean = data.coffee()[100:164, 200:264].astype(np.float64)
    noisy = clean + np.random.default_rng(0).normal(0, 20, clean.shape)
    path = tmp_path / "noisy.png"
    iio.imwrite(path, np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    return path, clean


def test_a_photo_is_restored_into_its_own_8_bit_levels(photo, tmp_path):
    path, clean = photo
    assert main(["restore", str(path), "-o", str(tmp_path / "out.png"), "-q"]) == 0
    assert main(["restore", str(path), "-o", str(tmp_path / "out.npy"), "-q"]) == 0
    out = iio.imread(tmp_path / "out.png")
    floats = np.load(tmp_path / "out.npy")
    assert out.dtype == np.uint8 and out.shape == clean.shape
    # the float32 result, rounded to the nearest level and clipped to 0..255
    np.testing.assert_array_equal(out, np.clip(np.rint(floats), 0, 255).astype(np.uint8))
    gain = _psnr(out, clean, 255) - _psnr(iio.imread(path), clean, 255)
    assert gain > 6, gain
    # the provenance travels in a tEXt chunk and the reader puts it back
    prov = read_image(tmp_path / "out.png").metadata["napari_deconvnet"]
    assert prov["operation"] == "restore" and prov["source"] == str(path)


def test_16_bit_gray_stays_16_bit(tmp_path):
    from skimage import data

    counts = data.camera()[:64, :64].astype(np.float64) * 200
    noisy = np.random.default_rng(1).poisson(counts / 20) * 20
    src = tmp_path / "gray16.tif"
    tifffile.imwrite(src, noisy.astype(np.uint16))
    assert main(["restore", str(src), "-o", str(tmp_path / "o.png"), "-q"]) == 0
    assert main(["restore", str(src), "-o", str(tmp_path / "o.npy"), "-q"]) == 0
    out = iio.imread(tmp_path / "o.png")
    assert out.dtype == np.uint16
    expected = np.clip(np.rint(np.load(tmp_path / "o.npy")), 0, 65535).astype(np.uint16)
    np.testing.assert_array_equal(out, expected)
    assert _psnr(out, counts, counts.max()) > _psnr(noisy, counts, counts.max()) + 3


def test_synthesized_noise_is_written_as_a_noisy_8_bit_photo(tmp_path):
    flat = np.full((96, 96), 128, np.uint8)
    src = tmp_path / "flat.png"
    iio.imwrite(src, flat)
    out = tmp_path / "noisy.png"
    args = ["synthesize", str(src), "-o", str(out), "--noise", "gaussian:sigma=10", "--seed", "3"]
    assert main(args) == 0
    noisy = iio.imread(out)
    assert noisy.dtype == np.uint8
    # sigma 10 grey levels (rounding adds 1/12 of a level's variance)
    assert abs(noisy.astype(float).std() - np.sqrt(100 + 1 / 12)) < 0.4
    assert abs(noisy.astype(float).mean() - 128) < 0.3


@pytest.mark.parametrize(
    "data, message",
    [
        (np.zeros((32, 32), np.float32), "this input is float32"),
        (np.zeros((3, 32, 32), np.uint8), "one 2D image"),
        (np.zeros((32, 32), np.int32), "this input is int32"),
    ],
)
def test_what_a_png_cannot_hold_is_refused_before_any_work(tmp_path, capsys, data, message):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, data, photometric="minisblack")
    assert main(["restore", str(src), "-o", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and "write .tif" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.png").exists()


def test_a_folder_of_photos_with_format_png(photo, tmp_path):
    path, _ = photo
    second = tmp_path / "second.png"
    second.write_bytes(path.read_bytes())
    out = tmp_path / "out"
    assert main(["restore", str(path), str(second), "-o", str(out), "--format", "png", "-q"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["noisy_restored.png", "second_restored.png"]
    a, b = (iio.imread(out / n) for n in names)
    np.testing.assert_array_equal(a, b)


def test_the_encoder_against_pillow():
    rng = np.random.default_rng(2)
    for shape in [(5, 7), (5, 7, 2), (5, 7, 3), (5, 7, 4)]:
        pixels = rng.integers(0, 256, shape).astype(np.uint8)
        decoded = np.asarray(Image.open(io.BytesIO(encode_png(pixels, {"k": "v"}))))
        np.testing.assert_array_equal(decoded, pixels)
    gray16 = rng.integers(0, 65536, (6, 9)).astype(np.uint16)
    np.testing.assert_array_equal(iio.imread(encode_png(gray16), extension=".png"), gray16)
    # Pillow reads 16-bit colour as its high bytes: the layout (big-endian samples) is right
    for samples in (3, 4):
        rgb16 = rng.integers(0, 65536, (6, 9, samples)).astype(np.uint16)
        decoded = np.asarray(Image.open(io.BytesIO(encode_png(rgb16))))
        np.testing.assert_array_equal(decoded, (rgb16 >> 8).astype(np.uint8))
    assert Image.open(io.BytesIO(encode_png(gray16, {"k": "v"}))).text == {"k": "v"}


def test_levels_round_and_clip(tmp_path):
    values = np.array([[-3.2, 0.49, 0.5001, 254.6], [255.4, 300.0, 1.5, 2.5]])
    np.testing.assert_array_equal(png_levels(values, np.uint8), [[0, 0, 1, 255], [255, 255, 2, 2]])
    assert png_levels([[70000.0]], np.uint16)[0, 0] == 65535
    assert png_problem(np.uint8, (4, 4, 5)) is not None and png_problem(np.uint16, (4, 4)) is None
    with pytest.raises(ValueError, match="8- or 16-bit"):
        write_png(tmp_path / "x.png", values, np.float32)
    assert not (tmp_path / "x.png").exists()
