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


def _filtered_png(pixels: np.ndarray, kinds) -> bytes:
    """A PNG of `pixels` whose rows use the filter types `kinds` (cycled), made here from
    the specification's forward filters, so that every filter the decoder undoes is met."""

    height, width = pixels.shape[:2]
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    depth = 8 * pixels.dtype.itemsize
    step = samples * depth // 8
    raw = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder(">"))).view(np.uint8)
    raw = raw.reshape(height, -1).astype(np.int64)
    out = []
    for r in range(height):
        row, up = raw[r], raw[r - 1] if r else np.zeros_like(raw[r])
        left = np.concatenate([np.zeros(step, np.int64), row[:-step]])
        corner = np.concatenate([np.zeros(step, np.int64), up[:-step]])
        kind = kinds[r % len(kinds)]
        if kind == 0:
            guess = np.zeros_like(row)
        elif kind == 1:
            guess = left
        elif kind == 2:
            guess = up
        elif kind == 3:
            guess = (left + up) // 2
        else:
            p = left + up - corner
            pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - corner)
            guess = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, corner))
        out.append(bytes([kind]) + ((row - guess) % 256).astype(np.uint8).tobytes())
    return _png_of(b"".join(out), width, height, depth, {1: 0, 2: 4, 3: 2, 4: 6}[samples])


def _png_of(rows: bytes, width: int, height: int, depth: int, colour: int) -> bytes:
    """A PNG file around already filtered `rows` (each with its filter byte)."""
    import struct
    import zlib

    def chunk(kind, body):
        crc = zlib.crc32(body, zlib.crc32(kind)) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_16_bit_colour_is_read_with_all_its_bits(tmp_path):
    """Pillow keeps the high byte of each 16-bit colour sample; the reader decodes those
    files itself: every filter type, RGB, RGBA and gray and alpha, byte for byte."""
    from napari_deconvnet.io.png import decode_png, reads_lossily

    rng = np.random.default_rng(5)
    for samples in (2, 3, 4):
        pixels = rng.integers(0, 65536, (13, 11, samples)).astype(np.uint16)
        for kinds in ([0], [1], [2], [3], [4], [0, 1, 2, 3, 4]):
            np.testing.assert_array_equal(decode_png(_filtered_png(pixels, kinds)), pixels)
    eight = rng.integers(0, 256, (9, 7, 3)).astype(np.uint8)
    np.testing.assert_array_equal(decode_png(_filtered_png(eight, [4, 3, 1])), eight)
    # Pillow's own (adaptive) filtering of an 8-bit photo decodes to what Pillow reads
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()[:64, :80]).save(buffer, format="PNG", optimize=True)
    np.testing.assert_array_equal(decode_png(buffer.getvalue()), data.astronaut()[:64, :80])
    # through the reader: the package's own 16-bit RGB output comes back whole
    rgb16 = rng.integers(0, 65536, (20, 30, 3)).astype(np.uint16)
    path = tmp_path / "rgb16.png"
    path.write_bytes(encode_png(rgb16))
    assert reads_lossily(path)
    layer = read_image(str(path))
    np.testing.assert_array_equal(np.asarray(layer.levels[0]), rgb16)
    assert np.asarray(Image.open(path)).dtype == np.uint8  # what Pillow gives instead
    gray16 = tmp_path / "gray16.png"
    gray16.write_bytes(encode_png(rgb16[..., 0]))
    assert not reads_lossily(gray16)  # Pillow reads 16-bit gray whole: left to it
    # a broken file says what is wrong
    with pytest.raises(ValueError, match="filter type 7"):
        decode_png(_png_of(b"\x00\x01\x02\x07\x03\x04", 2, 2, 8, 0))
    with pytest.raises(ValueError, match="truncated PNG"):
        decode_png(_png_of(b"\x00\x01\x02", 2, 2, 8, 0))
    with pytest.raises(ValueError, match="not a PNG"):
        decode_png(b"GIF89a" + bytes(40))
