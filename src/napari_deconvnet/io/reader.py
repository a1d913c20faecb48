"""npe2 readers: open an image "restored", and open model files.

**Open restored** (:func:`get_reader`): TIFF (ImageJ hyperstacks, OME-TIFF,
multi-page), PNG/JPEG, ``.npy`` and ``.zarr`` (OME-Zarr included) give two
layers:

- the raw image, with the scale (and units, axis names, translation) found
  in the file's metadata;
- the image restored by the default model, or the model named by
  :data:`settings` (``settings.model`` or the ``NAPARI_DECONVNET_MODEL``
  environment variable), with the same geometry and its provenance in
  ``layer.metadata["napari_deconvnet"]``.

When the restored float32 data would be larger than ``settings.lazy_bytes``
(``NAPARI_DECONVNET_LAZY_BYTES``, default 1 GB) both layers are lazy dask
arrays: napari computes the restored tiles of the slices it shows, and the
file is never loaded whole. The normalisation statistics then come from a
deterministic sample of at most 64 chunks (the core's
:mod:`~napari_deconvnet.core.normalization`, as for the API and the CLI).

In napari the reader never restores on the GUI thread: it gives the raw
layer at once, and a worker thread restores the image tile by tile (for a
lazy file: reads the statistics' sample and builds the lazy restored layer)
with progress in napari's activity panel, and adds the restored layer when
done. Deleting the raw layer, or
closing the viewer, stops that worker. Without a running viewer (npe2's
``read`` in a script), the restored layer is a lazy dask array instead.
:func:`read_restored`, the plain function, restores before it returns.

A file written by napari-deconvnet's writer gets its layer name, geometry
and ``metadata`` back; if that metadata says it is already a restored result
it opens as one layer, not restored again.

**Model files** (:func:`get_model_reader`): a ``.safetensors`` file saved by
napari-deconvnet is registered with the Restore and Train widgets (see
:mod:`napari_deconvnet.io.registry`) and its metadata is shown in a
notification; no layer is added.

Getters return None for files these readers do not handle, so that napari
tries other readers (safetensors files of other tools included). A file of a
handled type that turns out to be broken gives an error notification that
says what is wrong.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._formats import LAYER_KEY, canonical, load_doc, unit_name, valid_axes

__all__ = [
    "ImageFile",
    "ReaderSettings",
    "file_kind",
    "file_stem",
    "get_model_reader",
    "get_reader",
    "read_image",
    "read_model",
    "read_restored",
    "settings",
]

_logger = logging.getLogger(__name__)

_TIFF = (".tif", ".tiff")
_PHOTO = (".png", ".jpg", ".jpeg")
_NPY = (".npy",)
_SAMPLE_VALUES = 1 << 22
_LIMIT_PERCENTILES = (0.1, 99.9)
_SAMPLE_CACHE = 8
_samples: dict[str, np.ndarray] = {}  # by dask name: the raw layer's sample serves the restore
LazyData = Any
LayerData = tuple[Any, dict[str, Any], str]


# --------------------------------------------------------------- settings


class ReaderSettings:
    """Settings of the "Open restored" reader.

    Each is None until set; then the environment variable, then the default,
    applies.

    Attributes
    ----------
    model : str or None
        Model for the restored layer: a shipped name or a ``.safetensors``
        path. ``NAPARI_DECONVNET_MODEL``; default ``"default"``.
    lazy_bytes : int or None
        Restored data (as float32) larger than this many bytes is lazy.
        ``NAPARI_DECONVNET_LAZY_BYTES``; default ``10**9`` (1 GB).
    device : str or None
        ``"auto"``, ``"cpu"``, ``"cuda"``, ... ``NAPARI_DECONVNET_DEVICE``;
        default ``"auto"``.
    """

    _ENV = {
        "model": ("NAPARI_DECONVNET_MODEL", "default"),
        "lazy_bytes": ("NAPARI_DECONVNET_LAZY_BYTES", 10**9),
        "device": ("NAPARI_DECONVNET_DEVICE", "auto"),
    }

    def __init__(self) -> None:
        self.model: str | None = None
        self.lazy_bytes: int | None = None
        self.device: str | None = None

    def get(self, name: str) -> Any:
        """The value in force for `name`."""
        value = getattr(self, name)
        if value is not None:
            return value
        env, default = self._ENV[name]
        text = os.environ.get(env, "").strip()
        if not text:
            return default
        if name == "lazy_bytes":
            try:
                return int(float(text))
            except ValueError:
                _logger.warning("ignoring %s=%r: not a number of bytes", env, text)
                return default
        return text


#: The reader's settings; assign attributes to change them for this session.
settings = ReaderSettings()


# ------------------------------------------------------------------ files


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

    @property
    def data(self) -> Any:
        return self.levels[0]


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
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    if not isinstance(path, str | os.PathLike):
        return None
    p = Path(path)
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


_kind = file_kind  # old private names, until the command line uses the public ones
_stem = file_stem


def _lazy_decision(shape: tuple[int, ...], lazy_bytes: int) -> bool:
    return math.prod(shape) * 4 > lazy_bytes


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
            for letter in "XYZ":
                size = elem.get(f"PhysicalSize{letter}")
                if size is not None:
                    unit = unit_name(elem.get(f"PhysicalSize{letter}Unit", "\u00b5m"))
                    native[letter] = (float(size), unit)
            if elem.get("TimeIncrement") is not None:
                unit = unit_name(elem.get("TimeIncrementUnit", "s"))
                native["T"] = (float(elem.get("TimeIncrement")), unit)
    return native, doc


def _read_tiff(path: str, lazy_bytes: int) -> tuple[ImageFile, Any, dict, str]:
    import tifffile

    native: dict[str, tuple[float, str | None]] = {}
    doc = None
    legacy = None
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes, shape = series.axes, tuple(series.shape)
        page = tif.pages[0]
        tags = page.tags
        if tif.is_imagej:
            ij = tif.imagej_metadata or {}
            doc = load_doc(ij.get("Info"))
            unit = unit_name(ij.get("unit"))
            for letter, code in (("X", "XResolution"), ("Y", "YResolution")):
                if code in tags:
                    size = _resolution_um(tags[code].value)
                    if size and (unit or size != 1.0):
                        native[letter] = (size, unit)
            if ij.get("spacing"):
                native["Z"] = (float(ij["spacing"]), unit)
            if ij.get("finterval"):
                native["T"] = (float(ij["finterval"]), "second")
        elif tif.is_ome:
            native, doc = _ome_geometry(tif.ome_metadata or "")
        elif tif.is_shaped:
            shaped = (tif.shaped_metadata or ({},))[0] or {}
            doc = load_doc(shaped.get(LAYER_KEY))
            legacy = shaped.get("napari_deconvnet")
        elif "ResolutionUnit" in tags and int(tags["ResolutionUnit"].value) == 3:  # cm
            for letter, code in (("X", "XResolution"), ("Y", "YResolution")):
                if code in tags:
                    size = _resolution_um(tags[code].value)
                    if size:
                        native[letter] = (size * 1e4, "micrometer")
        lazy = _lazy_decision(shape, lazy_bytes)
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


def _read_photo(path: str) -> tuple[ImageFile, Any, dict, str]:
    import imageio.v3 as iio

    data = np.asarray(iio.imread(path))
    rgb = data.ndim == 3 and data.shape[-1] in (3, 4)
    axes = {2: "YX", 3: "YXS" if rgb else "YXC"}.get(data.ndim, "")
    return ImageFile(path=path, levels=[data]), None, {}, axes


def _read_npy(path: str, lazy_bytes: int) -> tuple[ImageFile, Any, dict, str]:
    mm = np.load(path, mmap_mode="r", allow_pickle=False)
    if _lazy_decision(mm.shape, lazy_bytes):
        import dask.array as da

        lazy = da.from_array(mm, chunks="auto")
        return ImageFile(path=path, levels=[lazy], lazy=True), None, {}, ""
    return ImageFile(path=path, levels=[np.array(mm)]), None, {}, ""


def _ngff_axes(multiscale: dict[str, Any]) -> str:
    names = []
    for axis in multiscale.get("axes") or []:
        names.append(axis.get("name", "?") if isinstance(axis, dict) else str(axis))
    return "".join(n.upper() if len(n) == 1 else "?" for n in names)


def _ngff_transform(dataset: dict[str, Any], kind: str) -> list[float] | None:
    for t in dataset.get("coordinateTransformations") or []:
        if t.get("type") == kind and kind in t:
            return [float(v) for v in t[kind]]
    return None


def _read_zarr(path: str, lazy_bytes: int) -> tuple[ImageFile, Any, dict, str]:
    import dask.array as da
    import zarr

    node = zarr.open(path, mode="r")
    attrs = dict(node.attrs)
    native: dict[str, tuple[float, str | None]] = {}
    axes = ""
    translate = None
    if isinstance(node, zarr.Array):
        levels = [da.from_zarr(node)]
    else:
        multiscales = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
        if multiscales:
            ms = multiscales[0]
            levels = [da.from_zarr(node[d["path"]]) for d in ms["datasets"]]
            axes = _ngff_axes(ms)
            units = [a.get("unit") if isinstance(a, dict) else None for a in ms.get("axes") or []]
            scale = _ngff_transform(ms["datasets"][0], "scale")
            translate = _ngff_transform(ms["datasets"][0], "translation")
            if scale and len(scale) == len(axes):
                for letter, s, u in zip(axes, scale, units or [None] * len(axes), strict=False):
                    native[letter] = (s, unit_name(u))
        else:
            arrays = sorted(node.array_keys())
            if len(arrays) != 1:
                raise ValueError(
                    f"{path} is a zarr group without OME-Zarr 'multiscales' metadata and with "
                    f"{len(arrays)} arrays ({', '.join(arrays[:5]) or 'none'}); open one array "
                    "folder inside it, or write OME-Zarr"
                )
            levels = [da.from_zarr(node[arrays[0]])]
    doc = load_doc(attrs.get(LAYER_KEY))
    lazy = len(levels) > 1 or _lazy_decision(levels[0].shape, lazy_bytes)
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
    ndim = image.data.ndim
    axes = valid_axes(file_axes, ndim)
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
    image.axes = axes
    image.rgb = bool(axes and axes.endswith("S") and image.data.shape[-1] in (3, 4))
    if not image.rgb and axes is None and file_axes.endswith("S"):
        image.rgb = image.data.shape[-1] in (3, 4)
    n = image.data.ndim - (1 if image.rgb else 0)
    if doc is not None and len(doc.get("scale") or []) == n and axes == doc.get("axes"):
        image.scale = [float(s) for s in doc["scale"]]
        image.translate = [float(t) for t in doc.get("translate") or [0.0] * n]
        image.units = list(doc.get("units") or [None] * n)
    elif axes and native:
        letters = axes.removesuffix("S")
        image.scale = [float(native.get(a, (1.0, None))[0]) for a in letters]
        image.units = [native.get(a, (1.0, None))[1] for a in letters]
        if translate and len(translate) == len(letters):
            image.translate = translate
    image.name = image.name or file_stem(image.path)
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
        A file of an unknown type, or one that cannot be read.
    """
    path = os.fspath(path)
    kind = file_kind(path)
    if kind is None:
        raise ValueError(
            f"{path}: not a file type napari-deconvnet reads (TIFF, PNG, JPEG, .npy, .zarr)"
        )
    if lazy_bytes is None:
        lazy_bytes = settings.get("lazy_bytes")
    if kind == "tiff":
        parts = _read_tiff(path, lazy_bytes)
    elif kind == "photo":
        parts = _read_photo(path)
    elif kind == "npy":
        parts = _read_npy(path, lazy_bytes)
    else:
        parts = _read_zarr(path, lazy_bytes)
    image = _finish(*parts)
    dtype = np.dtype(image.data.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"{path} holds {dtype} data; only real numeric images can be opened")
    return image


# ------------------------------------------------------------ lazy restore


def _sample(x: Any) -> np.ndarray:
    """The deterministic sample of the dask array `x` that the restore's statistics use.

    :func:`napari_deconvnet.core.normalization.sample_values`: at most 64
    chunks spread over the array (all of it when small). Cached by dask name,
    so that the raw layer's contrast limits do not read it twice.
    """
    from napari_deconvnet.core.normalization import sample_values

    cached = _samples.get(x.name)
    if cached is not None:
        return cached
    sample = sample_values(x)
    while len(_samples) >= _SAMPLE_CACHE:
        _samples.pop(next(iter(_samples)))
    _samples[x.name] = sample
    return sample


def _contrast_limits(values: np.ndarray) -> list[float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [0.0, 1.0]
    low, high = (float(v) for v in np.percentile(values, _LIMIT_PERCENTILES))
    if not high > low:
        low, high = float(values.min()), float(values.max())
    if not high > low:
        high = low + 1.0
    return [low, high]


def lazy_restore(x: Any, net: Any, axes: str | None, device: str = "auto") -> Any:
    """Restore the dask array `x` lazily: :func:`napari_deconvnet.restore` on it.

    The statistics come from the core's one normalisation
    (:mod:`napari_deconvnet.core.normalization`): a deterministic sample of at
    most 64 chunks, per channel where the model normalises channels apart, the
    same numbers the API, the CLI and ``restore_to_zarr`` use for this array.
    """
    from napari_deconvnet.core.tiling import restore

    return restore(x, net, axes=axes, device=device)


# ------------------------------------------------------------------ layers


def _supports(name: str) -> bool:
    import inspect

    from napari.layers import Image

    return name in inspect.signature(Image.__init__).parameters


def _geometry_kwargs(image: ImageFile) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"rgb": image.rgb}
    if image.scale is not None:
        kwargs["scale"] = image.scale
    if image.translate is not None:
        kwargs["translate"] = image.translate
    if image.axes and _supports("axis_labels"):
        kwargs["axis_labels"] = tuple(a.lower() for a in image.axes.removesuffix("S"))
    if image.units and any(image.units) and _supports("units"):
        kwargs["units"] = tuple(u or "pixel" for u in image.units)
    return kwargs


def _raw_layer(image: ImageFile) -> LayerData:
    kwargs = {"name": image.name, "metadata": image.metadata, **_geometry_kwargs(image)}
    if image.contrast_limits is not None and len(image.contrast_limits) == 2:
        kwargs["contrast_limits"] = list(image.contrast_limits)
    elif image.lazy:
        kwargs["contrast_limits"] = _contrast_limits(_sample(image.levels[-1]))
    if len(image.levels) > 1:
        return list(image.levels), {**kwargs, "multiscale": True}, "image"
    return image.data, kwargs, "image"


def _restored_layer(image: ImageFile, model: str, device: str) -> LayerData:
    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.tiling import infer_axes, restore

    net = load_model(model)
    axes = image.axes or infer_axes(image.data.shape, net)
    start = time.perf_counter()
    if image.lazy:
        levels = []
        for k, level in enumerate(image.levels):
            try:
                levels.append(lazy_restore(level, net, axes, device))
            except ValueError:
                if k == 0:
                    raise
                break  # pyramid levels smaller than the network's grid
        data: Any = levels if len(levels) > 1 else levels[0]
        limits = _contrast_limits(_sample(image.levels[-1]))
    else:
        data = restore(np.asarray(image.data), net, axes=axes, device=device)
        limits = _limits_of(data)
    seconds = None if image.lazy else time.perf_counter() - start
    return _restored_data(image, data, model, net, axes, device, limits, seconds)


def _limits_of(data: np.ndarray) -> list[float]:
    return _contrast_limits(data.reshape(-1)[:: max(1, data.size // _SAMPLE_VALUES)])


def _restored_data(
    image: ImageFile,
    data: Any,
    model: str,
    net: Any,
    axes: str,
    device: str,
    limits: list[float],
    seconds: float | None,
) -> LayerData:
    """The layer data tuple of a restoration of `image`, with its provenance."""
    from napari_deconvnet import __version__

    lazy = image.lazy or not isinstance(data, np.ndarray)
    provenance = {
        "model": str(model),
        "model_name": net.metadata.get("name", str(model)),
        "axes": axes,
        "device": device,
        "lazy": lazy,
        "source": image.path,
        "version": __version__,
    }
    if seconds is not None:
        provenance["seconds"] = round(seconds, 3)
    kwargs = {
        "name": f"{image.name} restored",
        "metadata": {"napari_deconvnet": provenance},
        "contrast_limits": limits,
        **_geometry_kwargs(image),
    }
    if isinstance(data, list):
        kwargs["multiscale"] = True
    return data, kwargs, "image"


def _is_result(metadata: dict[str, Any]) -> bool:
    provenance = metadata.get("napari_deconvnet")
    return isinstance(provenance, dict) and bool(provenance.get("model"))


def _show(kind: str, message: str) -> None:
    try:
        from napari.utils import notifications
    except ImportError:  # pragma: no cover - napari is a dependency
        _logger.log(logging.ERROR if kind == "error" else logging.INFO, message)
        return
    (notifications.show_error if kind == "error" else notifications.show_info)(message)


def read_restored(
    path: str | os.PathLike | list,
    *,
    model: str | None = None,
    lazy_bytes: int | None = None,
    device: str | None = None,
) -> list[LayerData]:
    """Read `path` as a raw layer and a restored layer (napari layer data tuples).

    Parameters
    ----------
    path : path
        An image file or ``.zarr`` folder (see :func:`read_image`).
    model, lazy_bytes, device : optional
        Override :data:`settings`.

    Returns
    -------
    list of (data, kwargs, "image")
        Raw first, restored second. Only the raw layer when the file is a
        napari-deconvnet result, or when restoring fails (an error
        notification says why). ``[(None,)]`` (nothing to add) with an error
        notification when the file cannot be read.
    """
    if isinstance(path, list | tuple):
        path = path[0]
    path = os.fspath(path)
    model = model or settings.get("model")
    device = device or settings.get("device")
    try:
        image = read_image(path, lazy_bytes=lazy_bytes)
    except Exception as err:  # a broken file of a type we claim: say what is wrong
        _logger.warning("reading %s failed", path, exc_info=True)
        _show("error", f"napari-deconvnet could not read {Path(path).name}: {err}")
        return [(None,)]
    layers = [_raw_layer(image)]
    if _is_result(image.metadata):
        return layers
    try:
        layers.append(_restored_layer(image, model, device))
    except Exception as err:
        _logger.warning("restoring %s failed", path, exc_info=True)
        _show("error", f"napari-deconvnet could not restore {Path(path).name}: {err}")
    return layers


def get_reader(path: Any) -> Callable[..., list[LayerData]] | None:
    """npe2 reader getter for "Open restored": a reader function, or None."""
    if file_kind(path) is None:
        return None
    return _reader


def _reader(path: Any, **_: Any) -> list[LayerData]:
    """The npe2 reader: like :func:`read_restored`, but never restores on this (GUI) thread."""
    if isinstance(path, list | tuple):
        path = path[0]
    path = os.fspath(path)
    try:
        image = read_image(path)
    except Exception as err:  # a broken file of a type we claim: say what is wrong
        _logger.warning("reading %s failed", path, exc_info=True)
        _show("error", f"napari-deconvnet could not read {Path(path).name}: {err}")
        return [(None,)]
    raw = _raw_layer(image)
    if _is_result(image.metadata):
        return [raw]
    model, device = settings.get("model"), settings.get("device")
    viewer = _current_viewer()
    try:
        if viewer is None:  # no viewer to fill in later: a lazy restored layer
            if image.lazy:
                return [raw, _restored_layer(image, model, device)]
            return [raw, _lazy_in_memory(image, model, device)]
        _restore_in_background(viewer, image, model, device)
    except Exception as err:
        _logger.warning("restoring %s failed", path, exc_info=True)
        _show("error", f"napari-deconvnet could not restore {Path(path).name}: {err}")
    return [raw]


def _current_viewer() -> Any:
    try:
        import napari
        from qtpy.QtWidgets import QApplication
    except ImportError:  # pragma: no cover - napari is a dependency
        return None
    if QApplication.instance() is None:
        return None
    return napari.current_viewer()


def _lazy_in_memory(image: ImageFile, model: str, device: str) -> LayerData:
    """The restored layer of an in-memory image as a lazy dask array (one chunk)."""
    import dask.array as da

    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.tiling import infer_axes, restore

    net = load_model(model)
    axes = image.axes or infer_axes(image.data.shape, net)
    data = restore(da.from_array(image.data, chunks=-1), net, axes=axes, device=device)
    return _restored_data(image, data, model, net, axes, device, _limits_of(image.data), None)


def _restore_job(image: ImageFile, model: str, device: str) -> Any:
    """Worker body: restore `image` tile by tile; returns its layer data tuple.

    A lazy image gives its lazy restoration (the statistics' sample is read
    and the graph is built here, not on the GUI thread).
    """
    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.tiling import infer_axes, restore_iter

    if image.lazy:
        yield 0, 0
        return _restored_layer(image, model, device)
    start = time.perf_counter()
    net = load_model(model)
    axes = image.axes or infer_axes(image.data.shape, net)
    data = yield from restore_iter(np.asarray(image.data), net, axes=axes, device=device)
    seconds = time.perf_counter() - start
    return _restored_data(image, data, model, net, axes, device, _limits_of(data), seconds)


#: Background restorations of the reader that are running (kept alive until they end).
_jobs: set[Any] = set()


def _restore_in_background(viewer: Any, image: ImageFile, model: str, device: str) -> Any:
    """Restore `image` in a worker thread; add the restored layer to `viewer` when done.

    Progress shows in napari's activity panel. Deleting the raw layer (or
    closing the viewer) stops the worker at its next tile batch.
    """
    from napari.qt.threading import create_worker
    from napari.utils import progress

    name = Path(image.path).name
    worker = create_worker(_restore_job, image, model, device, _start_thread=False)
    with contextlib.suppress(Exception):  # show the error ourselves, once, with its traceback
        worker.errored.disconnect(worker._relay_error)
    bar = progress(total=0, desc=f"restoring {name}")
    raw = image.data

    def on_yielded(value: tuple[int, int]) -> None:
        bar.total = max(int(value[1]), 1)
        bar.n = int(value[0])
        bar.refresh()

    def on_returned(layer_data: LayerData) -> None:
        if worker.abort_requested:
            return
        data, kwargs, _ = layer_data
        with contextlib.suppress(RuntimeError):  # the viewer was closed meanwhile
            viewer.add_image(data, **kwargs)

    def on_errored(err: BaseException) -> None:
        _logger.warning("restoring %s failed", image.path, exc_info=err)
        _show("error", f"napari-deconvnet could not restore {name}: {err}")

    def on_removed(event: Any) -> None:
        if getattr(event.value, "data", None) is raw:
            worker.quit()

    def on_finished() -> None:
        bar.close()
        with contextlib.suppress(Exception):
            viewer.layers.events.removed.disconnect(on_removed)
        _jobs.discard(worker)

    worker.yielded.connect(on_yielded)
    worker.returned.connect(on_returned)
    worker.errored.connect(on_errored)
    worker.finished.connect(on_finished)
    viewer.layers.events.removed.connect(on_removed)
    with contextlib.suppress(Exception):  # closing the viewer stops the worker
        viewer.window._qt_window.destroyed.connect(worker.quit)
    _jobs.add(worker)
    worker.start()
    return worker


# ------------------------------------------------------------------ models


def read_model(path: str | os.PathLike | list, **_: Any) -> list[tuple[None]]:
    """Register a model file with the widgets and show its metadata; add no layer.

    Returns
    -------
    list
        ``[(None,)]``, napari's "read, nothing to add".
    """
    from napari_deconvnet.core.persistence import load_model, model_info

    from . import registry

    if isinstance(path, list | tuple):
        path = path[0]
    path = os.fspath(path)
    try:
        info = model_info(path)
        load_model(path)  # also checks every tensor against the configuration
    except (ValueError, TypeError) as err:
        _show("error", f"napari-deconvnet could not open the model file: {err}")
        return [(None,)]
    name = registry.register_model(path, info)
    _show(
        "info",
        f"Model {name!r} registered: choose it in the Restore or Train widget.\n"
        + registry.describe(info, path),
    )
    return [(None,)]


def get_model_reader(path: Any) -> Callable[..., list[tuple[None]]] | None:
    """npe2 reader getter for ``.safetensors`` model files and bioimage.io packages.

    Returns None for other files, for safetensors files of other tools and
    for packages (``.zip``, ``rdf.yaml``) of other architectures
    (napari then tries other readers); a file that is not valid safetensors
    is ours to report.
    """
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    if not isinstance(path, str | os.PathLike):
        return None
    p = Path(path)
    from napari_deconvnet.core.bioimageio_read import bioimageio_info, is_bioimageio_path

    if is_bioimageio_path(p) and p.is_file():
        try:  # a bioimage.io package: ours if it holds our architecture
            bioimageio_info(p)
        except Exception:
            return None
        return read_model
    if not p.name.lower().endswith(".safetensors") or not p.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(p), "np") as fh:
            meta = fh.metadata() or {}
    except Exception:
        return read_model  # not valid safetensors: read_model says why
    if "napari_deconvnet" not in meta:
        return None
    return read_model
