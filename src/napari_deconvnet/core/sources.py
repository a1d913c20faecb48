"""Sources of streamed restores: image files read region by region.

:func:`open_source` opens a zarr array or OME-Zarr image folder (its level
0, axes and scale), a TIFF (memory-mapped when uncompressed, else read chunk
by chunk; its axes, scale and units as the package's reader finds them), a
``.npy`` file (memory-mapped) or an array; :class:`PathSource` reopens a file
in each worker process, so that only the region each block needs is ever read
(:func:`read_region`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import is_dask
from .axes import check_image

__all__ = ["PathSource", "as_lazy", "open_source", "read_region"]


class PathSource:
    """An image file read region by region, opened once per process (picklable)."""

    _open: dict[tuple[str, str, int], Any] = {}

    def __init__(self, path: Path, kind: str, component: str = "") -> None:
        self.path, self.kind, self.component = str(path), kind, component

    def array(self) -> Any:
        # a file replaced since it was opened is opened again
        key = (self.path, self.component, os.stat(self.path).st_mtime_ns)
        if key not in self._open:
            self._open[key] = _open_array(self.path, self.kind, self.component)
        return self._open[key]

    def __getstate__(self) -> dict:
        return {"path": self.path, "kind": self.kind, "component": self.component}


def _open_array(path: str, kind: str, component: str) -> Any:
    if kind == "zarr":
        import zarr

        group = zarr.open(path, mode="r")
        return group[component] if component else group
    if kind == "npy":
        return np.load(path, mmap_mode="r")
    import tifffile
    import zarr

    try:
        return tifffile.memmap(path, mode="r")
    except (ValueError, OSError):
        # the first series' full resolution, as the reader opens it: a pyramidal
        # (OME-)TIFF's store is otherwise a group of levels ("'Group' object has no
        # attribute 'ndim'")
        return zarr.open(tifffile.imread(path, aszarr=True, series=0, level=0), mode="r")


def open_source(source: Any) -> tuple[Any, Any, dict[str, Any]]:
    """(array, path source or None, info from the file: axes, scale, translate, units,
    channel names).

    The info is given per axis of the array as opened: from the NGFF
    ``multiscales`` of an OME-Zarr, or for a TIFF what the package's reader
    finds (:func:`napari_deconvnet.io.image_files.tiff_geometry`: ImageJ pixel
    size, Z spacing and unit, OME-XML physical sizes, or the layer document
    napari-deconvnet's writers store), so that a streamed restore keeps the
    scale and units of the in-memory path.
    """
    info: dict[str, Any] = {}
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise ValueError(f"source {str(path)!r} does not exist")
        name = path.name.lower()
        if path.is_dir() or name.endswith(".zarr"):
            import zarr

            from .ome_zarr import JOB_DIR, unfinished

            for place in (path, *list(path.resolve().parents)[:2]):
                if unfinished(place):  # (read as zeros where no block is yet, session 70)
                    raise ValueError(
                        f"{place} is an unfinished streamed restore (it holds {JOB_DIR}); "
                        "run restore_to_zarr (or the CLI) on its source again to finish it "
                        "before reading it"
                    )
            try:
                node = zarr.open(str(path), mode="r")
            except Exception as err:  # zarr raises several types for foreign folders
                raise ValueError(f"{path} is not a zarr array or OME-Zarr image: {err}") from err
            component = ""
            if not hasattr(node, "shape"):
                from .ome_zarr import open_level, read_multiscales

                image = read_multiscales(dict(node.attrs), path)  # as the reader reads it
                if image is None:
                    raise ValueError(
                        f"{path} is a zarr group without OME-Zarr 'multiscales' metadata; "
                        "pass the array inside it (e.g. 'image.zarr/0')"
                    )
                component = image["paths"][0]
                level = open_level(node, component, path)
                if len(image["axes"]) == level.ndim:  # else the file's axes are not its array's
                    info["axes"] = image["axes"]
                    if _stored_colour(dict(node.attrs), info["axes"]):
                        # colour stored as NGFF's C (this package's writers): restored as
                        # colour, as the reader and in-memory restore take it (the API
                        # restored its three samples as channels; the CLI did not)
                        info["axes"] = info["axes"].replace("C", "S")
                    info["units"] = image["units"]
                    for key in ("scale", "translate"):
                        if image[key] is not None:
                            info[key] = image[key]
                omero = node.attrs.get("omero")
                channels = omero.get("channels") if isinstance(omero, dict) else None
                if isinstance(channels, list) and all(isinstance(c, dict) for c in channels):
                    # NGFF's channel labels, written again on the output (as in memory)
                    info["channel_names"] = [str(c.get("label") or "") for c in channels]
            src = PathSource(path, "zarr", component)
            return src.array(), src, info
        if name.endswith(".npy"):
            src = PathSource(path, "npy")
            return src.array(), src, info
        if name.endswith((".tif", ".tiff")):
            # the reader's geometry (ImageJ, OME or napari-deconvnet's own), per axis of the
            # file; napari_deconvnet.io.image_files imports neither napari nor Qt
            from napari_deconvnet.io.image_files import tiff_geometry

            info = tiff_geometry(path)  # a ValueError naming the file if it is broken
            src = PathSource(path, "tiff")
            try:
                array = src.array()
            except Exception as err:  # tifffile and zarr raise several types
                raise ValueError(f"{path}: cannot read this TIFF: {err}") from err
            if len(info.get("axes", "")) != array.ndim:
                info = {}
            return array, src, info
        raise ValueError(
            f"cannot stream {path.name!r}: pass a .zarr / .ome.zarr folder, a .tif/.tiff, "
            "a .npy file, or an array"
        )
    check_image(source)
    return source, None, info


def _stored_colour(attrs: dict[str, Any], axes: str) -> bool:
    """Whether an OME-Zarr's layer document says that its NGFF ``C`` axis is an RGB(A)
    image's samples (napari-deconvnet's writers store colour as ``C``, ``S`` noted)."""
    from .ome_zarr import LAYER_KEY

    doc = attrs.get(LAYER_KEY)
    if not isinstance(doc, dict) or "C" not in axes or "S" in axes:
        return False
    return bool(doc.get("rgb")) or "S" in str(doc.get("axes") or "").upper()


#: Places of the source a streamed restore's fingerprint reads (:func:`content_digest`)
DIGEST_PLACES = 8
#: Side of each place's window, in the last two axes
DIGEST_WINDOW = 64


def content_digest(array: Any) -> str:
    """A sha256 of what `array` holds, for a streamed restore's fingerprint.

    A numpy array in memory is hashed whole. Any other (a file's memory map,
    zarr or dask array) by :data:`DIGEST_PLACES` windows of
    :data:`DIGEST_WINDOW` pixels in the last two axes, evenly spaced over the
    other axes' positions and along the diagonal of the planes (first and last
    included), so that a few chunks are read. The same file resumes; the next
    acquisition written to the same path, or another array of the same shape
    and statistics, does not (it resumed into, or returned at once as, the
    previous one's result).
    """
    import hashlib

    digest = hashlib.sha256()
    shape = tuple(int(n) for n in array.shape)
    digest.update(repr((shape, str(array.dtype))).encode())
    if isinstance(array, np.ndarray) and not isinstance(array, np.memmap):
        if getattr(array, "base", None) is None or not isinstance(array.base, np.memmap):
            # whole, without a copy (a view that is not contiguous: a plane at a time)
            for part in [array] if array.flags.c_contiguous else array:
                digest.update(np.ascontiguousarray(part).view(np.uint8))
            return digest.hexdigest()
    lead, plane = shape[:-2], shape[-2:]
    count = int(np.prod(lead, dtype=np.int64))
    pieces = []
    for k in range(DIGEST_PLACES):
        f = k / (DIGEST_PLACES - 1)
        index = np.unravel_index(int(round(f * (count - 1))), lead) if lead else ()
        window = tuple(
            slice(start, start + min(DIGEST_WINDOW, n))
            for n in plane
            for start in [int(round(f * max(n - DIGEST_WINDOW, 0)))]
        )
        pieces.append(array[tuple(int(i) for i in index) + window])
    if is_dask(array):  # in one compute: chunks the windows share are computed once
        import dask

        pieces = dask.compute(*pieces)
    for piece in pieces:
        digest.update(np.ascontiguousarray(np.asarray(piece)).view(np.uint8))
    return digest.hexdigest()


def as_lazy(array: Any) -> Any:
    """A dask view of a file-backed array (numpy in memory stays numpy: exact stats)."""
    import dask.array as da

    if is_dask(array):
        return array
    if isinstance(array, np.ndarray) and not isinstance(array, np.memmap):
        if getattr(array, "base", None) is None or not isinstance(array.base, np.memmap):
            return array
    chunks = getattr(array, "chunks", None)
    if not (isinstance(chunks, tuple) and all(isinstance(c, int) for c in chunks)):
        chunks = "auto"
    return da.from_array(array, chunks=chunks, asarray=True, lock=False)


def read_region(reader: tuple[Any, list[int]], region_t: tuple) -> np.ndarray:
    """A region (in the transposed layout) of the source as numpy."""
    array, perm = reader
    if isinstance(array, PathSource):
        array = array.array()
    region_o = [None] * len(perm)
    for t, o in enumerate(perm):
        region_o[o] = region_t[t]
    piece = array[tuple(region_o)]
    if is_dask(piece):
        piece = piece.compute(scheduler="synchronous")
    return np.asarray(piece).transpose(perm)
