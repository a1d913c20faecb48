"""PNG files for restored photos: 8- or 16-bit, gray, gray and alpha, RGB or RGBA.

Restore returns float32 in its input's units. A photo read from an 8- or
16-bit file is written back in that type: each value rounded to the nearest
level and clipped to the type's range, which is what any viewer shows of it.
A float input (whose result has no integer form without choosing a scale)
and anything but one 2D image (a stack, channels first) have no PNG form:
:func:`png_problem` says so before any work is done, and the caller refuses
the file.

The encoder is written here (zlib and the PNG chunk layout) because the
common writers either drop 16-bit colour (Pillow) or need a plugin choice
per type; every row uses the *Up* filter, which suits photos and costs
nothing to compute. The provenance goes into a ``tEXt`` chunk
(:data:`TEXT_KEY`, JSON), which the package's reader puts back into the
layer's metadata.

Reading, likewise: Pillow (through imageio) reads 16-bit colour PNGs (RGB,
RGBA, gray and alpha) as 8-bit, keeping only each sample's high byte, so
the package's own 16-bit colour output came back with 256 levels where it
had 65,536. :func:`decode_png` reads those at full depth (non-interlaced,
every row filter); other PNGs are left to imageio.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from typing import Any

import numpy as np

from napari_deconvnet.core.atomic import write_atomic

__all__ = [
    "TEXT_KEY",
    "decode_png",
    "encode_png",
    "png_levels",
    "png_problem",
    "read_png_text",
    "reads_lossily",
    "write_png",
]

#: The ``tEXt`` keyword of the provenance
TEXT_KEY = "napari_deconvnet"

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: samples per pixel -> PNG colour type (gray, gray+alpha, RGB, RGBA)
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}


def png_problem(dtype: Any, shape: tuple[int, ...]) -> str | None:
    """Why an image of `dtype` and `shape` cannot be written as a PNG, or None."""
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        return (
            f"a PNG holds 8- or 16-bit integer images, and this input is {dtype} (its "
            "restored values are float32 in the same units); write .tif, .ome.tif, "
            ".ome.zarr or .npy instead"
        )
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] in _COLOUR_TYPE)):
        return (
            f"a PNG holds one 2D image (gray, or 2 to 4 samples last: gray and alpha, "
            f"RGB, RGBA), and this one has shape {tuple(shape)}; write .tif, .ome.tif, "
            ".ome.zarr or .npy instead"
        )
    if min(shape[:2]) < 1 or max(shape[:2]) >= 2**31:
        return f"an image of shape {tuple(shape)} has no PNG form"
    return None


def png_levels(data: Any, dtype: Any) -> np.ndarray:
    """`data` rounded to the nearest level of the integer `dtype` and clipped to its range."""
    info = np.iinfo(dtype)
    values = np.rint(np.asarray(data, dtype=np.float64))
    return np.clip(values, info.min, info.max).astype(dtype)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def encode_png(pixels: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """The bytes of a PNG file of `pixels` (uint8 or uint16; ``(H, W)`` or ``(H, W, S)``)."""
    problem = png_problem(pixels.dtype, pixels.shape)
    if problem is not None:
        raise ValueError(problem)
    height, width = pixels.shape[:2]
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    depth = 8 * pixels.dtype.itemsize
    header = struct.pack(">IIBBBBB", width, height, depth, _COLOUR_TYPE[samples], 0, 0, 0)
    # rows of big-endian bytes; the Up filter (type 2): each byte minus the one above
    rows = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder(">"), copy=False))
    rows = rows.view(np.uint8).reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as PNG asks
    parts = [_SIGNATURE, _chunk(b"IHDR", header)]
    for key, value in (text or {}).items():
        body = key.encode("latin-1") + b"\x00" + value.encode("latin-1")
        parts.append(_chunk(b"tEXt", body))
    parts.append(_chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def write_png(
    path: str | os.PathLike, data: Any, dtype: Any, provenance: dict[str, Any] | None = None
) -> None:
    """Write `data` as a PNG of `dtype` levels (:func:`png_levels`), atomically.

    `provenance` (JSON-serialisable) is kept in a ``tEXt`` chunk.
    """
    problem = png_problem(dtype, np.shape(data))
    if problem is not None:
        raise ValueError(problem)
    text = None
    if provenance is not None:
        text = {TEXT_KEY: json.dumps(provenance, default=str, ensure_ascii=True)}
    write_atomic(path, encode_png(png_levels(data, dtype), text))


def read_png_text(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance a PNG of :func:`write_png` carries, or None."""
    with open(path, "rb") as fh:
        if fh.read(8) != _SIGNATURE:
            return None
        while True:
            head = fh.read(8)
            if len(head) < 8:
                return None
            length, kind = struct.unpack(">I", head[:4])[0], head[4:]
            if kind in (b"IDAT", b"IEND"):
                return None  # written before the image data
            body = fh.read(length)
            fh.read(4)
            if kind == b"tEXt":
                key, _, value = body.partition(b"\x00")
                if key == TEXT_KEY.encode():
                    try:
                        doc = json.loads(value.decode("latin-1"))
                    except ValueError:
                        return None
                    return doc if isinstance(doc, dict) else None


#: PNG colour type -> samples per pixel (gray, RGB, gray and alpha, RGBA)
_SAMPLES = {0: 1, 2: 3, 4: 2, 6: 4}


def _chunks(blob: bytes):
    """(kind, body) of each chunk of the PNG `blob`, up to IEND."""
    if blob[:8] != _SIGNATURE:
        raise ValueError("not a PNG file (its first 8 bytes are not the PNG signature)")
    pos = 8
    while pos + 8 <= len(blob):
        length, kind = struct.unpack(">I4s", blob[pos : pos + 8])
        body = blob[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise ValueError(f"truncated PNG: its {kind.decode('latin-1')} chunk is cut short")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length


def _header(blob: bytes) -> tuple[int, ...]:
    """(width, height, depth, colour, compression, filtering, interlace) of a PNG."""
    kind, body = next(_chunks(blob), (b"", b""))
    if kind != b"IHDR" or len(body) != 13:
        raise ValueError("not a valid PNG file: it does not start with its IHDR chunk")
    return struct.unpack(">IIBBBBB", body)


def reads_lossily(path: str | os.PathLike) -> bool:
    """Whether Pillow would read the PNG at `path` with fewer bits than it holds: 16-bit
    colour (RGB, RGBA, gray and alpha) that :func:`decode_png` reads instead."""
    with open(path, "rb") as fh:
        start = fh.read(33)
    try:
        _, _, depth, colour, compression, filtering, interlace = _header(start)
    except (ValueError, struct.error):
        return False
    return depth == 16 and colour in (2, 4, 6) and not (compression or filtering or interlace)


def decode_png(blob: bytes) -> np.ndarray:
    """The pixels of a non-interlaced 8- or 16-bit PNG (gray, gray and alpha, RGB, RGBA).

    ``(H, W)`` for gray, ``(H, W, S)`` otherwise; uint8 or uint16 (native
    byte order). Every row filter of the PNG specification (None, Sub, Up,
    Average, Paeth) is undone. Palette images, other bit depths and
    interlaced files raise a ValueError (imageio reads those).
    """
    width, height, depth, colour, compression, filtering, interlace = _header(blob)
    samples = _SAMPLES.get(colour)
    if samples is None or depth not in (8, 16) or compression or filtering or interlace:
        raise ValueError(
            f"decode_png reads non-interlaced 8- or 16-bit gray, gray-and-alpha, RGB and RGBA "
            f"PNGs; this one has bit depth {depth}, colour type {colour}, interlace {interlace}"
        )
    data = zlib.decompressobj().decompress(
        b"".join(body for kind, body in _chunks(blob) if kind == b"IDAT")
    )
    step = samples * depth // 8  # bytes per pixel: the filters' "left" distance
    stride = width * step
    if len(data) < height * (stride + 1):
        raise ValueError(
            f"truncated PNG: its image data holds {len(data)} bytes where a {width}x{height} "
            f"image needs {height * (stride + 1)}"
        )
    rows = np.frombuffer(data, np.uint8, count=height * (stride + 1)).reshape(height, -1)
    out = _unfilter(rows[:, 1:], rows[:, 0], step)
    pixels = out.view(">u2").astype(np.uint16) if depth == 16 else out
    pixels = pixels.reshape(height, width, samples)
    return pixels[..., 0] if samples == 1 else pixels


def _unfilter(filtered: np.ndarray, kinds: np.ndarray, step: int) -> np.ndarray:
    """Rows of bytes with each row's filter (0-4) undone, from the top row down."""
    out = np.empty_like(filtered)
    prior = np.zeros(filtered.shape[1], np.uint8)
    for r, kind in enumerate(kinds):
        row = filtered[r]
        if kind == 0:
            out[r] = row
        elif kind == 1:  # Sub: a running sum (modulo 256) of each byte of the pixel
            out[r] = np.cumsum(row.reshape(-1, step), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:  # Up
            np.add(row, prior, out=out[r])
        elif kind in (3, 4):  # Average, Paeth: each byte needs the one just undone
            out[r] = np.frombuffer(_left_dependent(row, prior, step, kind), np.uint8)
        else:
            raise ValueError(f"invalid PNG: row {r} has filter type {int(kind)} (0-4 exist)")
        prior = out[r]
    return out


def _left_dependent(row: np.ndarray, prior: np.ndarray, step: int, kind: int) -> bytearray:
    """One row's Average (3) or Paeth (4) filter undone, byte by byte."""
    done = bytearray(row.tobytes())
    up = prior.tobytes()
    for i in range(len(done)):
        left = done[i - step] if i >= step else 0
        if kind == 3:
            done[i] = (done[i] + ((left + up[i]) >> 1)) & 255
            continue
        above, corner = up[i], up[i - step] if i >= step else 0
        guess = left + above - corner
        to_left, to_above, to_corner = abs(guess - left), abs(guess - above), abs(guess - corner)
        if to_left <= to_above and to_left <= to_corner:
            done[i] = (done[i] + left) & 255
        elif to_above <= to_corner:
            done[i] = (done[i] + above) & 255
        else:
            done[i] = (done[i] + corner) & 255
    return done
