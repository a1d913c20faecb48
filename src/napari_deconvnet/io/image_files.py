"""Image files: TIFF (ImageJ, OME, plain), PNG/JPEG, ``.npy`` and (OME-)Zarr, read with
their geometry.

:func:`read_image` gives an :class:`ImageFile`: the data (in memory, or dask
arrays when :func:`~napari_deconvnet.io.lazy.is_lazy` says so; every level of
an OME-Zarr pyramid), the axes, the scale, translation and units that the
file's metadata gives (ImageJ tags, OME-XML, NGFF ``multiscales``), and the
layer document (:mod:`~napari_deconvnet.io.layer_doc`) that napari-deconvnet's
writers store, which restores a layer's name, geometry and ``metadata``
exactly.

Nothing here imports napari: the command line reads with the same code.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_deconvnet.core.atomic import recover_folder
from napari_deconvnet.core.ome_zarr import JOB_DIR, open_level, read_multiscales, unfinished

from .layer_doc import (
    LAYER_KEY,
    UNIT_SIZES,
    canonical,
    display_of,
    load_doc,
    transforms_of,
    unit_name,
    valid_axes,
)
from .lazy import is_lazy, settings

__all__ = ["ImageFile", "file_kind", "file_stem", "read_image", "single_path", "tiff_geometry"]

_TIFF = (".tif", ".tiff")
_PHOTO = (".png", ".jpg", ".jpeg")
_NPY = (".npy",)
_KIND_NAMES = {"tiff": "a TIFF", "photo": "a PNG/JPEG", "npy": "a .npy file", "zarr": "a zarr"}


@dataclass
class ImageFile:
    """An image read from disk, with what its file says about it.

    Attributes
    ----------
    path : str
    levels : list of ndarray or dask array
        Full resolution first; more than one for OME-Zarr pyramids.
    axes : str or None
        One letter from ``"TZCYXS"`` per dimension, when the file names them.
    rgb : bool
        Whether the last axis holds RGB(A) samples.
    name : str
    scale, translate : list of float or None
        Per layer dimension (RGB samples excluded).
    units : list of (str or None) or None
        pint unit names per layer dimension; None for pixels.
    metadata : dict
        What napari-deconvnet stored with the file (provenance), else ``{}``.
    contrast_limits : list of float or None
    lazy : bool
        Whether `levels` are dask arrays.
    """

    path: str
    levels: list[Any]
    axes: str | None = None
    rgb: bool = False
    name: str = ""
    scale: list[float] | None = None
    translate: list[float] | None = None
    units: list[str | None] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    contrast_limits: list[float] | None = None
    lazy: bool = False
    #: the layer's ``rotate``, ``shear`` and ``affine`` where its writer stored them
    transforms: dict[str, Any] = field(default_factory=dict)
    #: the layer's ``colormap``, ``gamma``, ``opacity`` and ``blending`` (likewise)
    display: dict[str, Any] = field(default_factory=dict)
    #: a grey image with alpha (PNG "LA") read as RGBA: its R, G and B are one image
    grey_alpha: bool = False

    @property
    def data(self) -> Any:
        """The full-resolution array."""
        return self.levels[0]

    def geometry(self, axes: str | None = None) -> dict[str, Any]:
        """The layer state the file describes: ``rgb``, and where known ``scale``,
        ``translate``, ``units`` and ``axis_labels`` (the keys of napari's
        layer state, which the writers take).

        `axes` (one letter per axis, as a restore was told them, e.g. the
        command line's ``--axes``) relabels them: each value goes with its
        letter where the file names it too, and an axis the file does not
        name gets a scale of 1, no offset and pixels.
        """
        out: dict[str, Any] = {"rgb": self.rgb}
        own = self.axes.removesuffix("S") if self.axes else None
        wanted = axes.upper().replace("S", "") if axes and own else own
        defaults = {"scale": 1.0, "translate": 0.0, "units": "pixel"}
        for key, values in (("scale", self.scale), ("translate", self.translate),
                            ("units", self.units)):  # fmt: skip
            if values is None:
                continue
            values = list(values)
            if own and wanted and wanted != own and len(values) == len(own) == len(wanted):
                values = [values[own.index(a)] if a in own else defaults[key] for a in wanted]
            out[key] = values
        if wanted:
            out["axis_labels"] = tuple(a.lower() for a in wanted)
        if wanted == own:  # (about the layer's own axes: dropped when they are relabelled)
            out.update(self.transforms)
        return out


def single_path(path: Any) -> Path | None:
    """The one path napari hands a reader (a path, or a list of one), else None."""
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    if not isinstance(path, str | os.PathLike):
        return None
    return Path(path)


def file_kind(path: Any) -> str | None:
    """Which of the reader's formats `path` is, judged from its name (and folder content).

    Parameters
    ----------
    path : path or list of one path

    Returns
    -------
    str or None
        ``"tiff"``, ``"photo"`` (PNG, JPEG), ``"npy"`` or ``"zarr"``; None for
        anything else (several paths, a missing file, another type).
    """
    p = single_path(path)
    if p is None:
        return None
    name = p.name.lower()
    if name.endswith(".zarr") and p.is_dir():
        markers = (".zarray", ".zgroup", "zarr.json")
        return "zarr" if any((p / m).is_file() for m in markers) else None
    if not p.is_file():
        return None
    if name.endswith(_TIFF):
        return "tiff"
    if name.endswith(_PHOTO):
        return "photo"
    if name.endswith(_NPY):
        return "npy"
    return None


def file_stem(path: str | os.PathLike) -> str:
    """The file name of `path` without its image suffix (``.ome.tif``, ``.zarr``...)."""
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", *_TIFF, *_PHOTO, *_NPY, ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _resolution_um(tag: Any) -> float | None:
    """Pixel size from a TIFF X/YResolution tag value (pixels per unit)."""
    try:
        num, den = tag
        return den / num if num else None
    except (TypeError, ValueError):
        try:
            return 1.0 / float(tag) if tag else None
        except (TypeError, ValueError):
            return None


def _positive(value: Any) -> float | None:
    """A pixel size or time step from a file's metadata: a positive finite number, else
    None (left out: the image opens with scale 1 along that axis). OME-XML's
    ``PhysicalSizeX="abc"`` made the whole file unreadable, ImageJ's NaN spacing and
    OME's zero or negative sizes gave napari layers such scales."""
    try:
        size = float(value)
    except (TypeError, ValueError):
        return None
    return size if math.isfinite(size) and size > 0 else None


def _ome_geometry(xml: str) -> tuple[dict[str, tuple[float, str | None]], Any]:
    """Physical sizes per axis and the layer document from OME-XML."""
    native: dict[str, tuple[float, str | None]] = {}
    doc = None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return native, None
    for elem in root.iter():
        tag = elem.tag.rsplit("}", 1)[-1]
        if tag == "Image" and doc is None:
            for child in elem:
                if child.tag.rsplit("}", 1)[-1] == "Description" and child.text:
                    doc = load_doc(child.text)
        if tag == "Pixels" and not native:
            names = [c.get("Name") for c in elem if c.tag.rsplit("}", 1)[-1] == "Channel"]
            if any(names):  # (their names: "membrane", "nuclei", as the OME-XML gives them)
                native["__channels__"] = [str(n or "") for n in names]  # type: ignore[assignment]
            for letter in "XYZ":
                size = _positive(elem.get(f"PhysicalSize{letter}"))
                if size is not None:
                    unit = unit_name(elem.get(f"PhysicalSize{letter}Unit", "\u00b5m"))
                    native[letter] = (size, unit)
            step = _positive(elem.get("TimeIncrement"))
            if step is not None:
                unit = unit_name(elem.get("TimeIncrementUnit", "s"))
                native["T"] = (step, unit)
    return native, doc


class _NotAnImage(ValueError):
    """A file that this module found unreadable itself (its message names the file)."""


def _check_complete(path: str, series: Any, ij: dict[str, Any]) -> None:
    """Refuse an ImageJ TIFF holding fewer planes than its header counts.

    A file cut short (a copy interrupted, a full disk) lost its last planes;
    tifffile then logs "ImageJ series metadata invalid" and reads the first
    page alone, so a 6-plane volume opened, and restored, as one plane.
    """
    try:
        expected = int(ij.get("images", 0))
    except (TypeError, ValueError):
        return
    _refuse_missing_planes(path, series, expected, "ImageJ TIFF counts")


def _known_unit(text: Any, default: str | None) -> str | None:
    """An ImageJ axis unit as a unit of known size, `default` when absent, None (no
    unit) when it is free text such as "frame" (napari refuses a unit it does not know,
    and the layer was not made)."""
    if not text:
        return default
    name = unit_name(text)
    if name is None or name in UNIT_SIZES:
        return name
    try:  # a unit pint knows (napari's units are pint's): kept, as X's unit is
        import pint

        pint.get_application_registry().Unit(name)
    except Exception:  # pint's UndefinedUnitError and its parse errors alike
        return None
    return name


def _check_complete_ome(path: str, series: Any, xml: str) -> None:
    """Refuse an OME-TIFF holding fewer planes than its first image declares.

    Cut short, it opened as its first plane alone (tifffile falls back to the
    pages it finds), with no Z and no layer document, and was restored as such.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return
    try:
        declared = math.prod(int(pixels.get(f"Size{a}", 1)) for a in "ZTC")
        samples = int(
            next(
                (
                    c.get("SamplesPerPixel", 1)
                    for c in pixels
                    if c.tag.rsplit("}", 1)[-1] == "Channel"
                ),
                1,
            )
        )
    except (TypeError, ValueError):
        return
    _refuse_missing_planes(path, series, declared // max(samples, 1), "OME-TIFF declares")


def _refuse_missing_planes(path: str, series: Any, expected: int, says: str) -> None:
    """Refuse a TIFF whose first series holds fewer planes than its header `says`."""
    held = 1
    for letter, n in zip(series.axes, series.shape, strict=True):
        if letter not in "YXS":
            held *= int(n)
    if expected > held:
        raise _NotAnImage(
            f"{path}: this {says} {expected} planes but holds {held}; the file is truncated "
            "or damaged (copy it again)"
        )


class _TiffLog:
    """A handler on tifffile's logger that keeps, for the threads that ask, what it logs.

    tifffile reads what it can of a damaged file and says so only in its log: a
    truncated OME-TIFF lost its last pages and its description (the OME-XML, at the
    file's end) and opened as its first plane, without Z, geometry or document.
    Installed once and left alone (changing the logger's level for each read broke
    it for good when files were read in several threads); each thread sees only
    its own records.
    """

    def __init__(self) -> None:
        import logging

        self.local = threading.local()
        outer = self

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                found = getattr(outer.local, "found", None)
                if found is not None:
                    found.append(record)

        self.handler = Keep(logging.WARNING)
        self.lock = threading.Lock()
        self.installed = False

    @contextlib.contextmanager
    def watch(self) -> Any:
        import logging

        with self.lock:
            if not self.installed:
                logging.getLogger("tifffile").addHandler(self.handler)
                self.installed = True
        before = getattr(self.local, "found", None)
        self.local.found = found = []
        try:
            yield found
        finally:
            self.local.found = before


_TIFF_LOG = _TiffLog()


def _tiff_problems() -> Any:
    """The records tifffile logs in this thread meanwhile (a list; :class:`_TiffLog`)."""
    return _TIFF_LOG.watch()


def _truncated(problems: list, counted: bool = False) -> bool:
    """Whether tifffile's messages say the description or pages lie past the file's end."""
    # The description (OME-XML, ImageJ's or our layer document) lost marks a cut file;
    # so do pages past the end, except where the format counted its planes and they
    # were all there (`counted`: ImageJ, OME): an intact file with a stray last
    # next-page pointer logs that too and reads whole. A plain multi-page TIFF has no
    # count, and cut short it opened as its first plane.
    words = [record.getMessage() for record in problems]
    lost = any("TiffTag 270 @" in w and "invalid value offset" in w for w in words)
    return lost or (not counted and any("invalid page offset" in w for w in words))


def _reduced(series: Any) -> bool:
    """Whether a TIFF series is a reduced-resolution copy (a thumbnail, a pyramid level
    stored as pages of its own), not an image of its own."""
    try:
        return bool(series.keyframe.is_reduced)
    except (AttributeError, IndexError, TypeError):
        return False


def _tiff_parts(path: str, tif: Any, problems: list | None = None) -> tuple[Any, Any, dict, Any]:
    """(first series, layer document, sizes per axis letter, legacy provenance) of a TIFF."""
    if not tif.series or not tif.pages:
        raise _NotAnImage(f"{path}: no image data in this TIFF (corrupt or empty)")

    series = tif.series[0]
    others = [s for s in tif.series[1:] if not _reduced(s)]  # (thumbnails are no images)
    if others:  # (a multi-position OME-TIFF lost the others silently, s70)
        import warnings

        warnings.warn(
            f"{path} holds {len(others) + 1} image series; only the first "
            f"({series.axes} {tuple(series.shape)}) is read: save each position or image "
            "as its own file (tifffile.imread(path, series=k) reads the k-th)",
            UserWarning,
            stacklevel=1,  # (one place: the read and the geometry of a file warn once)
        )
    tags = tif.pages[0].tags
    native: dict[str, tuple[float, str | None]] = {}
    doc = None
    legacy = None
    if tif.is_imagej:
        ij = tif.imagej_metadata or {}
        _check_complete(path, series, ij)
        doc = load_doc(ij.get("Info"))
        unit = unit_name(ij.get("unit"))
        # ImageJ writes yunit/zunit where an axis's unit is not X's, and tunit where
        # the frame interval is not in seconds (a 2-minute interval read as 2 s)
        units = {
            "X": unit,
            "Y": _known_unit(ij.get("yunit"), unit),
            "Z": _known_unit(ij.get("zunit"), unit),
            "T": _known_unit(ij.get("tunit"), "second"),
        }
        for letter, code in (("X", "XResolution"), ("Y", "YResolution")):
            if code in tags:
                size = _positive(_resolution_um(tags[code].value))
                if size and (units[letter] or size != 1.0):
                    native[letter] = (size, units[letter])
        if _positive(ij.get("spacing")):
            native["Z"] = (_positive(ij["spacing"]), units["Z"])
        if _positive(ij.get("finterval")):
            native["T"] = (_positive(ij["finterval"]), units["T"])
    elif tif.is_ome:
        if getattr(series, "kind", "ome") == "ome":  # (not tifffile's fallback series)
            _check_complete_ome(path, series, tif.ome_metadata or "")
        native, doc = _ome_geometry(tif.ome_metadata or "")
    elif tif.is_shaped:
        shaped = (tif.shaped_metadata or ({},))[0] or {}
        doc = load_doc(shaped.get(LAYER_KEY))
        legacy = shaped.get("napari_deconvnet")
    if (
        not (tif.is_imagej or tif.is_ome)
        and "ResolutionUnit" in tags
        and int(tags["ResolutionUnit"].value) == 3  # cm: of a plain TIFF, or of a shaped
        # one (tifffile's own description, which it writes by default: it was skipped)
    ):
        for letter, code in (("X", "XResolution"), ("Y", "YResolution")):
            if code in tags:
                size = _positive(_resolution_um(tags[code].value))
                if size:
                    native[letter] = (size * 1e4, "micrometer")
    counted = tif.is_imagej or (tif.is_ome and getattr(series, "kind", "") == "ome")
    if problems and _truncated(problems, counted):  # (after the formats' own checks)
        raise _NotAnImage(
            f"{path}: this TIFF's pages or description lie past the end of the file; it is "
            "truncated or damaged (copy it again)"
        )
    return series, doc, native, legacy


def tiff_geometry(path: str | os.PathLike) -> dict[str, Any]:
    """The axes, scale, translation and units of a TIFF's first series, in the file's order.

    What :func:`read_image` gives the layer (from napari-deconvnet's layer
    document, else from the ImageJ tags or the OME-XML), but per axis of the
    series as stored, without reading the pixels: streamed restores
    (:func:`napari_deconvnet.core.sources.open_source`) read the file in
    this order.

    Parameters
    ----------
    path : path
        A TIFF file.

    Returns
    -------
    dict
        ``axes`` (letters from ``TZCYXS``) and where the file gives them
        ``scale``, ``translate`` and ``units`` (one per axis, ``S`` and ``C``
        included) and ``channel_names`` (OME-XML channel names, or those a
        napari-deconvnet layer document holds); ``{}`` when the file does not
        name its axes.

    Raises
    ------
    ValueError
        The file is not a readable TIFF.
    """
    import tifffile

    path = os.fspath(path)
    try:
        with _tiff_problems() as problems, tifffile.TiffFile(path) as tif:
            series, doc, native, _ = _tiff_parts(path, tif, problems)
            file_axes, ndim = series.axes, len(series.shape)
    except _NotAnImage as err:
        raise ValueError(str(err)) from None
    except Exception as err:  # tifffile raises several types for broken files
        raise ValueError(f"{path}: cannot read this TIFF ({type(err).__name__}: {err})") from err
    axes = valid_axes(file_axes, ndim)
    if axes is None:
        return {}
    sizes: dict[str, tuple[float, str | None]] = dict(native)
    channels = sizes.pop("__channels__", None) or ((doc or {}).get("metadata") or {}).get(
        "channel_names"
    )
    offsets: dict[str, float] = {}
    if doc is not None:
        letters = (valid_axes(doc.get("axes"), len(doc.get("axes") or "")) or "").removesuffix("S")
        scale = doc.get("scale") or []
        if letters and len(scale) == len(letters):
            units = doc.get("units") or [None] * len(letters)
            translate = doc.get("translate") or [0.0] * len(letters)
            sizes = {a: (float(s), u) for a, s, u in zip(letters, scale, units, strict=False)}
            offsets = {a: float(t) for a, t in zip(letters, translate, strict=False)}
    info: dict[str, Any] = {"axes": axes}
    if sizes:
        info["scale"] = [float(sizes.get(a, (1.0, None))[0]) for a in axes]
        info["units"] = [sizes.get(a, (1.0, None))[1] for a in axes]
    if offsets:
        info["translate"] = [offsets.get(a, 0.0) for a in axes]
    if isinstance(channels, list | tuple) and channels:
        info["channel_names"] = [str(n) for n in channels]
    return info


def _read_tiff(path: str, lazy_bytes: int) -> tuple[ImageFile, Any, dict, str]:
    import tifffile

    with _tiff_problems() as problems, tifffile.TiffFile(path) as tif:
        series, doc, native, legacy = _tiff_parts(path, tif, problems)
        axes, shape = series.axes, tuple(series.shape)
        lazy = is_lazy(shape, lazy_bytes)
        if not lazy:
            data = series.asarray()
    if lazy:
        import dask.array as da
        import zarr

        store = tifffile.imread(path, aszarr=True, series=0, level=0)
        data = da.from_zarr(zarr.open(store, mode="r"))
    image = ImageFile(path=path, levels=[data], lazy=lazy)
    if legacy and isinstance(legacy, dict):
        image.metadata = {"napari_deconvnet": legacy}
    return image, doc, native, axes


#: The first bytes of every PNG and JPEG file
PHOTO_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def _read_photo(path: str) -> tuple[ImageFile, Any, dict, str]:
    import imageio.v3 as iio

    from .png import decode_png, read_png_text, reads_lossily

    with open(path, "rb") as fh:  # (imageio advised installing a video plugin for both)
        head = fh.read(8)
    if not head:
        raise _NotAnImage(f"{path}: the file is empty (0 bytes)")

    if path.lower().endswith(".png") and reads_lossily(path):
        with open(path, "rb") as fh:  # 16-bit colour: Pillow would keep 8 of its bits
            data = decode_png(fh.read())
    else:
        try:  # (a WebP, BMP or GIF under this extension reads as it is)
            data = np.asarray(iio.imread(path))
        except Exception as err:
            if head.startswith(PHOTO_MAGIC):
                raise
            raise _NotAnImage(
                f"{path}: not an image imageio can read, nor a PNG or JPEG (its first bytes "
                "are neither's signature): damaged, or another format under this extension"
            ) from err
    grey_alpha = data.ndim == 3 and data.shape[-1] == 2
    if grey_alpha:
        # grey with alpha (PNG "LA"): as RGBA, so napari shows it as one image and restore
        # keeps the alpha as it is; as two channels it showed 48x2-pixel planes
        data = np.concatenate([data[..., :1]] * 3 + [data[..., 1:]], axis=-1)
    rgb = data.ndim == 3 and data.shape[-1] in (3, 4)
    axes = {2: "YX", 3: "YXS" if rgb else "YXC"}.get(data.ndim, "")
    image = ImageFile(path=path, levels=[data], grey_alpha=grey_alpha)
    provenance = read_png_text(path)  # a PNG the command line wrote (None: any other)
    if provenance is not None:
        image.metadata = {"napari_deconvnet": provenance}
    return image, None, {}, axes


#: The first bytes of every ``.npy`` file
NPY_MAGIC = b"\x93NUMPY"


def _read_npy(path: str, lazy_bytes: int) -> tuple[ImageFile, Any, dict, str]:
    with open(path, "rb") as fh:
        head = fh.read(len(NPY_MAGIC))
    if head != NPY_MAGIC:
        # numpy took any other file for pickled data and suggested allow_pickle=True
        raise _NotAnImage(
            f"{path} is not a .npy file (it does not begin with NumPy's format marker); "
            "save the array with numpy.save, or open the file with the program that made it"
        )
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        if "object" not in str(err).lower():
            raise
        raise _NotAnImage(  # numpy: "Array can't be memory-mapped: Python objects in dtype"
            f"{path} holds Python objects (a pickled object array), which are never loaded; "
            "only real numeric images can be opened"
        ) from None
    if is_lazy(mm.shape, lazy_bytes):
        import dask.array as da

        lazy = da.from_array(mm, chunks="auto")
        return ImageFile(path=path, levels=[lazy], lazy=True), None, {}, ""
    return ImageFile(path=path, levels=[np.array(mm)]), None, {}, ""


def _read_zarr(path: str, lazy_bytes: int) -> tuple[ImageFile, Any, dict, str]:
    import dask.array as da
    import zarr

    if unfinished(path):
        raise _NotAnImage(
            f"{path} is an unfinished streamed restore (it holds {JOB_DIR}); run "
            "restore_to_zarr (or the CLI) again to finish it"
        )
    node = zarr.open(path, mode="r")
    attrs = dict(node.attrs)
    native: dict[str, tuple[float, str | None]] = {}
    axes = ""
    translate = None
    if isinstance(node, zarr.Array):
        levels = [da.from_zarr(node)]
    else:
        try:  # the same reading of the metadata as streamed restores' (core.sources)
            ms = read_multiscales(attrs, path)
        except ValueError as err:
            raise _NotAnImage(str(err)) from None
        if ms:
            try:
                levels = [da.from_zarr(open_level(node, p, path)) for p in ms["paths"]]
            except ValueError as err:
                raise _NotAnImage(str(err)) from None
            axes = ms["axes"] if len(ms["axes"]) == levels[0].ndim else ""
            translate = ms["translate"] if axes else None
            if axes and ms["scale"]:
                for letter, s, u in zip(axes, ms["scale"], ms["units"], strict=True):
                    native[letter] = (s, unit_name(u))
        else:
            arrays = sorted(node.array_keys())
            if len(arrays) != 1:
                raise _NotAnImage(
                    f"{path} is a zarr group without OME-Zarr 'multiscales' metadata and with "
                    f"{len(arrays)} arrays ({', '.join(arrays[:5]) or 'none'}); open one array "
                    "folder inside it, or write OME-Zarr"
                )
            levels = [da.from_zarr(node[arrays[0]])]
    doc = load_doc(attrs.get(LAYER_KEY))
    omero = attrs.get("omero")
    channels = omero.get("channels") if isinstance(omero, dict) else None
    if isinstance(channels, list) and channels and all(isinstance(c, dict) for c in channels):
        native["__channels__"] = [str(c.get("label") or "") for c in channels]  # type: ignore[assignment]
    lazy = len(levels) > 1 or is_lazy(levels[0].shape, lazy_bytes)
    if not lazy:
        levels = [np.asarray(levels[0].compute())]
    image = ImageFile(path=path, levels=levels, lazy=lazy)
    if translate and len(translate) == len(axes):
        native["__translate__"] = translate  # type: ignore[assignment]
    return image, doc, native, axes


# ------------------------------------------------------- documents, axes


def _reorder(data: Any, file_axes: str, axes: str) -> Any | None:
    """`data` with axes `file_axes` rearranged into `axes`; None if impossible."""
    if len(file_axes) != data.ndim:
        return None
    if "S" in axes and "S" not in file_axes and "C" not in axes:
        file_axes = file_axes.replace("C", "S")
    for letter in file_axes:
        if letter not in axes:
            if data.shape[file_axes.index(letter)] != 1:
                return None
            i = file_axes.index(letter)
            data = data[(slice(None),) * i + (0,)]
            file_axes = file_axes.replace(letter, "")
    for letter in axes:
        if letter not in file_axes:
            data = data[None]
            file_axes = letter + file_axes
    _, perm = canonical(file_axes, axes)
    return data.transpose(perm)


def _finish(image: ImageFile, doc: Any, native: dict, file_axes: str) -> ImageFile:
    """Apply the layer document, or else the file's own geometry, to `image`."""
    translate = native.pop("__translate__", None)
    channels = native.pop("__channels__", None)
    ndim = image.data.ndim
    axes = stored = valid_axes(file_axes, ndim)
    if doc is not None:
        target = valid_axes(doc.get("axes"), len(doc.get("axes") or ""))
        if target and axes:
            moved = [_reorder(level, axes, target) for level in image.levels]
            if all(m is not None for m in moved):
                image.levels = moved
                axes = target
        image.metadata = dict(doc.get("metadata") or {})
        image.name = doc.get("name") or ""
        image.contrast_limits = doc.get("contrast_limits")
        image.display = display_of(doc)
    if axes and axes.endswith("S") and image.data.shape[-1] not in (3, 4):
        # 2 samples (grey and alpha) or 5 and more per pixel: channels, not colour (the
        # layer's labels left S out, and napari refused to make it)
        axes = axes[:-1] + "C" if "C" not in axes else None
    image.axes = axes
    image.rgb = bool(axes and axes.endswith("S") and image.data.shape[-1] in (3, 4))
    if not image.rgb and axes is None and file_axes.endswith("S"):
        image.rgb = image.data.shape[-1] in (3, 4)
    if not image.rgb and not axes and not file_axes:
        # no axes in the file (.npy, a plain zarr array): RGB(A) as restore guesses it
        # (core.axes.infer_axes, 2D models) and napari's own readers do; the layer was
        # grey while its restore treated the last axis as colour
        image.rgb = ndim in (3, 4) and image.data.shape[-1] in (3, 4)
    n = image.data.ndim - (1 if image.rgb else 0)
    if doc is not None and len(doc.get("scale") or []) == n and axes == doc.get("axes"):
        image.scale = [float(s) for s in doc["scale"]]
        image.translate = [float(t) for t in doc.get("translate") or [0.0] * n]
        image.units = list(doc.get("units") or [None] * n)
        image.transforms = transforms_of(doc, n)
    elif axes and native:
        letters = axes.removesuffix("S")
        image.scale = [float(native.get(a, (1.0, None))[0]) for a in letters]
        image.units = [native.get(a, (1.0, None))[1] for a in letters]
        if translate and stored and len(translate) == len(stored.removesuffix("S")):
            # in the file's order, the data perhaps moved to the document's (session 73:
            # a ZCYX stack streamed to NGFF's CZYX came back with Z's offset on C)
            offsets = dict(zip(stored.removesuffix("S"), translate, strict=True))
            image.translate = [float(offsets.get(a, 0.0)) for a in letters]
    image.name = image.name or file_stem(image.path)
    if channels and axes and "C" in axes and len(channels) == image.data.shape[axes.index("C")]:
        # the channels' names (OME-XML, NGFF omero labels) in the layer's metadata, where
        # the writers find them (session 71: they were lost on every output)
        image.metadata = {"channel_names": list(channels), **image.metadata}
    return image


def read_image(path: str | os.PathLike, *, lazy_bytes: int | None = None) -> ImageFile:
    """Read an image file with its geometry and napari-deconvnet metadata.

    Parameters
    ----------
    path : path
        TIFF/OME-TIFF, PNG, JPEG, ``.npy`` or a ``.zarr`` folder.
    lazy_bytes : int, optional
        Data whose float32 copy is larger than this is read lazily (dask);
        default ``settings.lazy_bytes``.

    Returns
    -------
    ImageFile

    Raises
    ------
    ValueError
        A file of an unknown type; one that cannot be read (the message names
        the file and the parser's error, which is the ``__cause__``); an
        OME-Zarr that a streamed restore
        (:func:`~napari_deconvnet.restore_to_zarr`) has not finished.

    Notes
    -----
    A ``.zarr`` folder that a crash left half-replaced (missing, with its
    previous version complete in ``.<name>.old``) is put back first
    (:func:`napari_deconvnet.core.atomic.recover_folder`).
    """
    path = os.fspath(path)
    if path.lower().rstrip("/\\").endswith(".zarr"):
        # an OME-Zarr replacement that a crash interrupted: put the previous version back
        with contextlib.suppress(OSError):  # e.g. a read-only folder: read what is there
            recover_folder(path.rstrip("/\\"))
    if not os.path.exists(path):  # (it said "not a file type napari-deconvnet reads")
        raise ValueError(f"{path}: no such file or folder")
    kind = file_kind(path)
    if kind is None and os.path.isdir(path) and path.lower().rstrip("/\\").endswith(".zarr"):
        # (it said ".zarr" was not a type it reads)
        raise ValueError(
            f"{path}: a .zarr folder without zarr metadata (.zgroup, .zarray or zarr.json): "
            "empty, or not a zarr store"
        )
    if kind is None:
        raise ValueError(
            f"{path}: not a file type napari-deconvnet reads (TIFF, PNG, JPEG, .npy, .zarr)"
        )
    if lazy_bytes is None:
        lazy_bytes = settings.get("lazy_bytes")
    read = {"tiff": _read_tiff, "npy": _read_npy, "zarr": _read_zarr}.get(kind)
    try:
        parts = _read_photo(path) if read is None else read(path, lazy_bytes)
        image = _finish(*parts)
    except _NotAnImage as err:  # a plain ValueError, with its own message
        raise ValueError(str(err)) from None
    except MemoryError:
        raise
    except Exception as err:  # any parser's error for a broken file, with the file named
        raise ValueError(
            f"{path}: cannot read it as {_KIND_NAMES[kind]} ({type(err).__name__}: {err})"
        ) from err
    dtype = np.dtype(image.data.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"{path} holds {dtype} data; only real numeric images can be opened")
    return image


def check_layer_shape(image: ImageFile, path: Any) -> ImageFile:
    """`image` if napari can make a layer of it: at least 2 dimensions and one pixel
    (a 0-D, 1-D or empty ``.npy`` was handed to napari, which failed to make the
    layer without a word from the reader, session 69). ValueError otherwise. (A
    PSF file may be 1-D: the command line reads those with :func:`read_image`.)"""
    shape = tuple(image.data.shape)
    if len(shape) < 2 or 0 in shape:
        raise ValueError(
            f"{path} holds an array of shape {shape}; an image layer needs at least 2 "
            "dimensions (Y, X) and at least one pixel"
        )
    return image
