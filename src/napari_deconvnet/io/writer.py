"""npe2 writers: image layers to TIFF / OME-TIFF / OME-Zarr, with their provenance.

- ``*.tif``, ``*.tiff``: an ImageJ hyperstack (uint8, uint16 or float32 data
  with up to 5 axes TZCYX, or uint8 RGB), with the pixel size, Z spacing and
  frame interval from the layer's scale. Other data (float64, int32, ...) is
  written unchanged as a plain TIFF.
- ``*.ome.tif``, ``*.ome.tiff``: OME-TIFF with ``PhysicalSizeX/Y/Z`` and
  ``TimeIncrement`` from the layer's scale and units. float16 is written as
  float32, int64/uint64 as int32/uint32 when every value fits (else a
  ValueError suggests OME-Zarr); OME-TIFF has no other pixel types.
- ``*.zarr`` (``*.ome.zarr``): OME-Zarr (NGFF 0.4, zarr format 2), chunked,
  with a multiscale pyramid (Y and X halved per level), written chunk by
  chunk from dask so that lazy layers are never loaded whole.

The layer's name, geometry and JSON-serialisable ``metadata`` (the
provenance of a restored layer: model, parameters, metrics, library version)
are stored as one JSON document: in the ImageJ ``Info`` property, in the
OME ``Image/Description``, in the description of plain TIFFs, and in the
OME-Zarr group attributes (``"napari_deconvnet_layer"``). The reader puts it
back into ``layer.metadata``.

Writes are atomic: data goes to a hidden temporary file or folder beside the
target, is flushed to disk (fsync), and is renamed into place only when
complete. A failed write leaves nothing under the target name (and an existing
file there untouched). napari asks before replacing an existing file; these
functions replace it. A file is replaced in one rename. A folder (OME-Zarr)
takes two: the old one aside to ``.<name>.old``, the new one in. If the
machine crashes between them, the target is missing and its previous version
is complete in ``.<name>.old``; the next write to the target, opening it (or
:func:`recover_folder`) renames it back. New files and folders get the
process umask's usual mode; the umask is never changed. The package's one
atomic writer, :mod:`napari_deconvnet.core.atomic`, does all of this.

napari is never imported here: the command line writes with the same code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from napari_deconvnet.core._validation import is_dask
from napari_deconvnet.core.atomic import atomic_file, atomic_folder, recover_folder
from napari_deconvnet.core.ome_zarr import multiscales

from .layer_doc import (
    IMAGEJ_UNITS,
    LAYER_KEY,
    LENGTHS,
    OME_UNITS,
    UNIT_SIZES,
    canonical,
    full_resolution,
    in_unit,
    layer_axes,
    layer_document,
    layer_geometry,
    spatial_unit,
)

__all__ = [
    "atomic_file",
    "atomic_folder",
    "recover_folder",
    "write_image",
    "write_ome_zarr",
    "write_tiff",
]

_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)
#: The pixel types of OME-XML (tifffile writes bool as "bit").
_OME_DTYPES = frozenset(
    np.dtype(t)
    for t in (
        np.bool_,
        np.int8,
        np.int16,
        np.int32,
        np.uint8,
        np.uint16,
        np.uint32,
        np.float32,
        np.float64,
        np.complex64,
        np.complex128,
    )
)
#: Chunk size along Y and X of OME-Zarr arrays; also the size of the smallest level.
ZARR_CHUNK = 256
_MAX_LEVELS = 12


def _open_v2_group(path):
    """A new zarr format-2 group (with zarr 3, which needs Python 3.11)."""
    import zarr

    return zarr.open_group(str(path), mode="w", zarr_format=2)


def _create_v2_array(group, name, *, shape, chunks, dtype, compressor):
    return group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        compressors=compressor,
        chunk_key_encoding={"name": "v2", "separator": "/"},
        fill_value=0,
    )


# ------------------------------------------------------------------- TIFF


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 does not allow (control characters but
    tab, newline and return; U+FFFE, U+FFFF, lone surrogates): in an OME-TIFF's
    ``Name`` a ``\x0b`` made the OME-XML unreadable, and the file reopened with its Z and
    C merged and its geometry lost (session 69). The layer document keeps the name."""
    return "".join(
        c
        for c in text
        if c in "\t\n\r"
        or ("\x20" <= c <= "\ud7ff")
        or ("\ue000" <= c <= "\ufffd")
        or c >= "\U00010000"
    )


def _pages(data: Any, page_ndim: int) -> Iterator[np.ndarray]:
    """The pages of a dask array, computed one at a time."""
    lead = data.shape[: data.ndim - page_ndim]
    for index in np.ndindex(*lead):
        yield np.asarray(data[index].compute())


def _tiff_data(data: Any, page_ndim: int) -> dict[str, Any]:
    if is_dask(data):
        return {"data": _pages(data, page_ndim), "shape": data.shape, "dtype": data.dtype}
    return {"data": np.asarray(data)}


def _imagej_ready(data: Any, axes: str) -> Any | None:
    """`data` as an ImageJ-compatible dtype, or None if ImageJ cannot hold it exactly."""
    dtype = np.dtype(data.dtype).newbyteorder("=")  # big-endian data too (they were
    # written as a plain TIFF, without their calibration)
    if dtype != np.dtype(data.dtype):
        data = data.astype(dtype)
    if axes.endswith("S"):
        return data if dtype == np.uint8 and data.shape[-1] == 3 else None
    if dtype == np.bool_:
        return data.astype(np.uint8)
    if dtype == np.float16:
        return data.astype(np.float32)
    return data if dtype in _IMAGEJ_DTYPES else None


def _ome_ready(data: Any, name: str) -> Any:
    """`data` in a dtype OME-TIFF holds, converted without loss (ValueError if it cannot be).

    float16 becomes float32; int64 and uint64 become int32 and uint32 when
    every value fits (a lazy layer is read once more to check).
    """
    dtype = np.dtype(data.dtype).newbyteorder("=")  # big-endian data too
    if dtype == np.float16:
        return data.astype(np.float32)
    if dtype in (np.dtype(np.int64), np.dtype(np.uint64)):
        narrow = np.dtype(np.int32 if dtype.kind == "i" else np.uint32)
        if data.size == 0:
            return data.astype(narrow)
        if is_dask(data):
            import dask

            low, high = dask.compute(data.min(), data.max())
        else:
            low, high = np.min(data), np.max(data)
        limits = np.iinfo(narrow)
        if limits.min <= int(low) and int(high) <= limits.max:
            return data.astype(narrow)
        raise ValueError(
            f"cannot write {dtype} data with values from {int(low)} to {int(high)} to OME-TIFF "
            f"{name!r}: OME-TIFF holds (u)int8/16/32, float32/64, complex and bool pixels, and "
            f"these values do not fit in {narrow}; save as *.ome.zarr (any dtype) or a plain "
            "*.tif instead"
        )
    if dtype not in _OME_DTYPES:
        raise ValueError(
            f"cannot write {dtype} data to OME-TIFF {name!r}: OME-TIFF holds (u)int8/16/32, "
            "float32/64, complex64/128 and bool pixels; convert the layer, or save as "
            "*.ome.zarr or a plain *.tif"
        )
    return data


def write_tiff(path: str | os.PathLike, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 writer: one image layer to TIFF (ImageJ or plain) or OME-TIFF.

    Parameters
    ----------
    path : path
        ``*.tif``/``*.tiff`` (ImageJ hyperstack where possible) or
        ``*.ome.tif``/``*.ome.tiff`` (OME-TIFF).
    data : ndarray, dask array, or list of them (multiscale)
        The layer's data; of a multiscale layer only the full resolution is
        written.
    meta : dict
        The layer's state (``name``, ``scale``, ``translate``, ``units``,
        ``axis_labels``, ``rgb``, ``metadata``, ...).

    Returns
    -------
    list of str
        ``[path]``.
    """
    import tifffile

    path = Path(path)
    data = full_resolution(data)
    axes = layer_axes(data, meta)
    geo = layer_geometry(meta, axes)
    doc = json.dumps(layer_document(meta, axes, geo))
    ome = path.name.lower().endswith((".ome.tif", ".ome.tiff"))
    rgb = axes.endswith("S")
    photometric = "rgb" if rgb else "minisblack"
    page_ndim = 3 if rgb else 2
    unit = spatial_unit(geo)
    # file formats hold pixel sizes (positive); a negative scale (napari's flip of
    # the display) is kept in the layer document, which the reader puts back
    size = {a: abs(v) for a, v in geo["scale"].items()}
    sx, sy = size["X"], size["Y"]
    if ome:  # before anything is written: a refused dtype leaves no file behind
        data = _ome_ready(data, path.name)
    with atomic_file(path) as tmp:
        if ome:
            ome_axes, perm = canonical(axes, "TCZYXS")
            ome_meta: dict[str, Any] = {"axes": ome_axes, "Description": doc}
            if meta.get("name"):
                ome_meta["Name"] = xml_text(str(meta["name"]))
            for letter in "XYZ":
                if letter in geo["scale"]:
                    ome_meta[f"PhysicalSize{letter}"] = size[letter]
                    u = geo["units"].get(letter)
                    if u in OME_UNITS:
                        ome_meta[f"PhysicalSize{letter}Unit"] = OME_UNITS[u]
            names = channel_names(meta, ome_axes, data.transpose(perm).shape)
            if names is not None:
                ome_meta["Channel"] = {"Name": names}
            if "T" in geo["scale"]:
                ome_meta["TimeIncrement"] = size["T"]
                if geo["units"].get("T") in OME_UNITS:
                    ome_meta["TimeIncrementUnit"] = OME_UNITS[geo["units"]["T"]]
            tifffile.imwrite(
                tmp,
                photometric=photometric,
                ome=True,
                metadata=ome_meta,
                **_tiff_data(data.transpose(perm), page_ndim),
            )
            return [str(path)]
        ij_axes, perm = canonical(axes, "TZCYXS")
        ij_data = _imagej_ready(data, axes)
        if ij_data is not None and len(ij_axes.removesuffix("S")) <= 5:
            ij_meta: dict[str, Any] = {"axes": ij_axes, "Info": doc}
            if unit not in IMAGEJ_UNITS and unit in LENGTHS:
                # a length ImageJ has no word for (Å): its sizes in nanometres (they
                # were written without a unit, which Fiji read as 10**4 times larger)
                sx, unit = in_unit(sx, unit, "nanometer"), "nanometer"
            if unit in IMAGEJ_UNITS:
                ij_meta["unit"] = IMAGEJ_UNITS[unit]
            # ImageJ has one length unit (X's, or the first one given) and seconds: the Z
            # spacing (and Y's pixel size) in that unit, the frame interval in seconds
            # (Fiji read a Z step of 0.3 micrometer beside 65 nm pixels as 0.3 nm)
            units = geo["units"]
            if "Z" in geo["scale"]:
                ij_meta["spacing"] = in_unit(size["Z"], units.get("Z"), unit)
            sy = in_unit(sy, units.get("Y"), unit)
            t_unit = units.get("T")
            if "T" in geo["scale"] and (t_unit is None or t_unit in UNIT_SIZES):
                # (in seconds; a time unit of no known size is left out, not mislabelled)
                ij_meta["finterval"] = in_unit(size["T"], t_unit, "second")
            limits = meta.get("contrast_limits")
            if limits is not None and not rgb and len(limits) == 2:
                ij_meta["min"], ij_meta["max"] = float(limits[0]), float(limits[1])
            tifffile.imwrite(
                tmp,
                imagej=True,
                photometric=photometric,
                resolution=(1.0 / sx, 1.0 / sy),
                metadata=ij_meta,
                **_tiff_data(ij_data.transpose(perm), page_ndim),
            )
        else:
            tifffile.imwrite(
                tmp,
                photometric=photometric,
                metadata={"axes": axes, LAYER_KEY: doc},
                **_tiff_data(data, page_ndim),
            )
    return [str(path)]


# --------------------------------------------------------------- OME-Zarr


def _downsample(level: Any, axes: str) -> Any:
    import dask.array as da

    factors = {i: (2 if a in "YX" else 1) for i, a in enumerate(axes)}
    dtype = level.dtype
    out = da.coarsen(np.mean, level.astype(np.float64), factors, trim_excess=True)
    if np.issubdtype(dtype, np.integer):
        out = da.round(out)
    return out.astype(dtype)


def write_ome_zarr(
    path: str | os.PathLike,
    data: Any,
    meta: dict[str, Any],
    *,
    chunk: int = ZARR_CHUNK,
) -> list[str]:
    """npe2 writer: one image layer to OME-Zarr (NGFF 0.4), with a pyramid.

    Parameters
    ----------
    path : path
        A ``*.zarr`` folder (``*.ome.zarr`` by convention).
    data : ndarray, dask array, or list of them (multiscale)
        The layer's data. It is written chunk by chunk; level ``k + 1`` is
        computed from level ``k`` as written, so a lazy layer is computed
        once.
    meta : dict
        The layer's state, as for :func:`write_tiff`.
    chunk : int
        Chunk size along Y and X; levels are added until the largest of Y
        and X fits in one chunk.

    Returns
    -------
    list of str
        ``[path]``.
    """
    import dask.array as da
    import numcodecs

    path = Path(path)
    data = full_resolution(data)
    if not is_dask(data):
        data = da.from_array(np.asarray(data), chunks=-1)
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    axes = layer_axes(data, meta)
    geo = layer_geometry(meta, axes)
    doc = layer_document(meta, axes, geo)
    # NGFF: time, then channel, then space; RGB samples become the channel axis
    zaxes, perm = canonical(axes.replace("S", "C") if "C" not in axes else axes, "TCZYX")
    if len(zaxes) != data.ndim:
        raise ValueError(
            f"cannot write axes {axes!r} to OME-Zarr (at most one channel axis); "
            "write a TIFF instead"
        )
    data = data.transpose(perm)
    geometry = {  # per NGFF axis; RGB samples (now C) have none
        "scale": [geo["scale"].get(a, 1.0) for a in zaxes],
        "translate": [geo["translate"].get(a, 0.0) for a in zaxes],
        "units": [geo["units"].get(a) for a in zaxes],
    }
    chunks = tuple(
        min(chunk, s) if a in "YX" else (min(s, 16) if a == "Z" else 1)
        for a, s in zip(zaxes, data.shape, strict=True)
    )
    compressor = numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.SHUFFLE)
    shapes = []
    with atomic_folder(path) as tmp:
        group = _open_v2_group(tmp)
        level = data
        for k in range(_MAX_LEVELS):
            arr = _create_v2_array(
                group,
                str(k),
                shape=level.shape,
                chunks=tuple(min(c, s) for c, s in zip(chunks, level.shape, strict=True)),
                dtype=level.dtype,
                compressor=compressor,
            )
            da.store(level.rechunk(arr.chunks), arr, lock=False)
            shapes.append(level.shape)
            yx = [s for a, s in zip(zaxes, level.shape, strict=True) if a in "YX"]
            if max(yx) <= chunk or min(yx) < 2:
                break
            level = _downsample(da.from_zarr(arr), zaxes)
        name = str(meta.get("name") or path.name)
        attrs = {"multiscales": multiscales(name, zaxes, shapes, geometry, zaxes), LAYER_KEY: doc}
        names = channel_names(meta, zaxes, shapes[0])
        if names is not None and "S" not in axes:  # (NGFF's omero block: their labels)
            attrs["omero"] = {"channels": [{"label": n, "active": True} for n in names]}
        group.attrs.update(attrs)
    return [str(path)]


def channel_names(meta: dict[str, Any], axes: str, shape: Any) -> list[str] | None:
    """The channels' names the layer's metadata holds (``"channel_names"``, as the
    reader puts an OME-TIFF's or OME-Zarr's there), when `axes` (of data of `shape`)
    has a C axis of that many channels; else None."""
    names = (meta.get("metadata") or {}).get("channel_names")
    if not isinstance(names, list | tuple) or "C" not in axes:
        return None
    if len(names) != int(shape[axes.index("C")]):
        return None
    return [str(n) for n in names]


# ------------------------------------------------------------------ choice


def write_image(path: str | os.PathLike, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write an image to TIFF, OME-TIFF or OME-Zarr, chosen by the file name."""
    name = Path(path).name.lower()
    if name.endswith((".tif", ".tiff")):
        return write_tiff(path, data, meta)
    if name.endswith(".zarr"):
        return write_ome_zarr(path, data, meta)
    raise ValueError(
        f"cannot write {Path(path).name!r}: name it *.tif, *.tiff, *.ome.tif or *.ome.zarr"
    )
