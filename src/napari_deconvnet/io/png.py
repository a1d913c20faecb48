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
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from typing import Any

import numpy as np

from napari_deconvnet.core.atomic import write_atomic

__all__ = ["TEXT_KEY", "encode_png", "png_levels", "png_problem", "read_png_text", "write_png"]

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
