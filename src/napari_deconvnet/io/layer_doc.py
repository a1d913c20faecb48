"""The layer document: what the reader and the writers agree on (axes, units, geometry).

A file written by :mod:`napari_deconvnet.io.writer` carries one JSON document
(``LAYER_KEY``) that restores the napari layer exactly::

    {"format": "napari-deconvnet-layer", "format_version": 1,
     "name": "blobs restored", "axes": "ZYX",
     "scale": [2.0, 0.1, 0.1], "translate": [0, 0, 0], "units": ["micrometer", ...],
     "metadata": {"napari_deconvnet": {"model": "default", "seconds": 1.2, ...}}}

``axes`` names the layer's axes in the layer's order (``S`` last for RGB);
files store them in the canonical order of their format (``TZCYXS`` for
ImageJ, ``TCZYX`` for OME-Zarr) and the reader transposes back.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_deconvnet.core.ome_zarr import LAYER_FORMAT, LAYER_KEY, LAYER_VERSION

_logger = logging.getLogger(__name__)

__all__ = [
    "AXES",
    "LAYER_KEY",
    "canonical",
    "default_axes",
    "display_of",
    "full_resolution",
    "in_unit",
    "json_safe",
    "layer_axes",
    "layer_display",
    "layer_document",
    "layer_geometry",
    "layer_transforms",
    "load_doc",
    "make_doc",
    "transforms_of",
    "spatial_unit",
    "unit_name",
    "valid_axes",
]

AXES = "TZCYXS"

# spellings of units in ImageJ, OME and NGFF files -> pint/UDUNITS names (napari's)
_UNIT_NAMES = {
    "micron": "micrometer",
    "microns": "micrometer",
    "um": "micrometer",
    "\u00b5m": "micrometer",
    "\u03bcm": "micrometer",
    "\\u00b5m": "micrometer",
    "micrometer": "micrometer",
    "nm": "nanometer",
    "nanometer": "nanometer",
    "mm": "millimeter",
    "millimeter": "millimeter",
    "cm": "centimeter",
    "centimeter": "centimeter",
    "m": "meter",
    "meter": "meter",
    "s": "second",
    "sec": "second",
    "second": "second",
    "ms": "millisecond",
    "millisecond": "millisecond",
    "min": "minute",
    "minute": "minute",
    "h": "hour",
    "hour": "hour",
    "\u00c5": "angstrom",
    "\u212b": "angstrom",
    "angstrom": "angstrom",
    "pm": "picometer",
    "picometer": "picometer",
    "\u00b5s": "microsecond",
    "\u03bcs": "microsecond",
    "us": "microsecond",
    "microsecond": "microsecond",
    "ns": "nanosecond",
    "nanosecond": "nanosecond",
    "d": "day",
    "day": "day",
    "days": "day",
    "hr": "hour",
    "hrs": "hour",
    "hours": "hour",
    "mins": "minute",
    "minutes": "minute",
    "secs": "second",
    "seconds": "second",
    "msec": "millisecond",
    "milliseconds": "millisecond",
    "usec": "microsecond",
    "microseconds": "microsecond",
    "nanoseconds": "nanosecond",
}
# pint names -> the symbols OME-XML expects
OME_UNITS = {
    "micrometer": "\u00b5m",
    "nanometer": "nm",
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
    "second": "s",
    "millisecond": "ms",
    "minute": "min",
    "hour": "h",
    "angstrom": "\u00c5",
    "picometer": "pm",
    "microsecond": "\u00b5s",
    "nanosecond": "ns",
    "day": "d",
}
# pint names -> ImageJ's unit spellings
IMAGEJ_UNITS = {
    "micrometer": "micron",
    "nanometer": "nm",
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
}


#: Units in metres and seconds, to write one unit where a format has one for several axes
UNIT_SIZES = {
    "picometer": 1e-12,
    "angstrom": 1e-10,
    "nanometer": 1e-9,
    "micrometer": 1e-6,
    "millimeter": 1e-3,
    "centimeter": 1e-2,
    "meter": 1.0,
    "nanosecond": 1e-9,
    "microsecond": 1e-6,
    "millisecond": 1e-3,
    "second": 1.0,
    "minute": 60.0,
    "hour": 3600.0,
    "day": 86400.0,
}
#: The lengths of :data:`UNIT_SIZES` (the others are times)
LENGTHS = frozenset(
    {"picometer", "angstrom", "nanometer", "micrometer", "millimeter", "centimeter", "meter"}
)


def in_unit(value: float, unit: Any, target: Any) -> float:
    """`value` in `unit` expressed in `target` (both in :data:`UNIT_SIZES`, lengths or
    times); as it is where either is unknown or missing."""
    if unit == target or unit not in UNIT_SIZES or target not in UNIT_SIZES:
        return value
    if (unit in LENGTHS) != (target in LENGTHS):
        return value
    return value * UNIT_SIZES[unit] / UNIT_SIZES[target]


def unit_name(unit: Any) -> str | None:
    """A unit from a file or a napari layer as a pint name, or None for pixels/unknown."""
    if unit is None:
        return None
    text = str(unit).strip()
    if text.lower() in ("", "pixel", "pixels", "px", "none", "dimensionless"):
        return None
    return _UNIT_NAMES.get(text, _UNIT_NAMES.get(text.lower(), text))


def json_safe(value: Any, where: str = "metadata") -> Any:
    """`value` with only JSON types; other values are dropped (and logged).

    Tuples become lists, NumPy scalars and small arrays become numbers and
    lists, non-finite floats become None.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            safe = json_safe(v, f"{where}[{k!r}]")
            if safe is not _DROP:
                out[str(k)] = safe
        return out
    if isinstance(value, list | tuple):
        items = [json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return [v for v in items if v is not _DROP]
    if isinstance(value, np.ndarray) and value.size <= 4096:
        return json_safe(value.tolist(), where)
    _logger.warning("not saving %s: %s is not JSON-serialisable", where, type(value).__name__)
    return _DROP


_DROP = object()


def make_doc(fields: dict[str, Any]) -> dict[str, Any]:
    """A layer document: `fields` made JSON-safe, with the format and its version."""
    return {"format": LAYER_FORMAT, "format_version": LAYER_VERSION, **json_safe(fields)}


def load_doc(value: Any) -> dict[str, Any] | None:
    """Parse a layer document from a string or a dict; None if it is not one."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if not isinstance(value, dict) or value.get("format") != LAYER_FORMAT:
        return None
    version = value.get("format_version")
    if not isinstance(version, int) or version > LAYER_VERSION:
        _logger.warning(
            "ignoring layer metadata of format version %r (this napari-deconvnet reads up to %d)",
            version,
            LAYER_VERSION,
        )
        return None
    return value


def default_axes(ndim: int, rgb: bool = False) -> str:
    """Axes for an array without names: ImageJ's order, ``S`` last for RGB."""
    n = ndim - 1 if rgb else ndim
    table = {2: "YX", 3: "ZYX", 4: "TZYX", 5: "TZCYX"}
    if n not in table:
        raise ValueError(
            f"cannot name the axes of a {ndim}-D {'RGB ' if rgb else ''}image; "
            "napari-deconvnet writes 2-D to 5-D images (plus RGB samples)"
        )
    return table[n] + ("S" if rgb else "")


def valid_axes(axes: Any, ndim: int) -> str | None:
    """`axes` upper-cased if it names `ndim` distinct axes from ``TZCYXS`` (S last)."""
    if not isinstance(axes, str) or len(axes) != ndim:
        return None
    axes = axes.upper()
    if set(axes) - set(AXES) or len(set(axes)) != ndim:
        return None
    if "S" in axes and not axes.endswith("S"):
        return None
    if "Y" not in axes or "X" not in axes:
        return None
    return axes


def canonical(axes: str, order: str) -> tuple[str, list[int]]:
    """`axes` sorted into `order` and the permutation that does it."""
    out = "".join(a for a in order if a in axes)
    return out, [axes.index(a) for a in out]


# ------------------------------------------------------------ layer -> doc


def full_resolution(data: Any) -> Any:
    """The full-resolution array of a (possibly multiscale) layer's data.

    A multiscale layer's data is a list of levels, or napari's ``MultiScaleData``
    (a sequence, not a list: ``np.asarray`` of it gave the smallest level, written
    with the full resolution's scale)."""
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if not data:
            raise ValueError("cannot write an empty multiscale layer")
        return data[0]
    return data


def layer_axes(data: Any, meta: dict[str, Any]) -> str:
    """One letter per dimension of `data`, from the layer's labels, provenance or shape."""
    rgb = bool(meta.get("rgb"))
    shape = tuple(data.shape)
    if 0 in shape:
        raise ValueError(f"cannot write an image with no pixels (shape {shape})")
    kind = np.dtype(data.dtype).kind
    if kind not in "biuf":
        raise ValueError(
            f"cannot write {np.dtype(data.dtype)} data: napari-deconvnet writes real "
            "numbers (bool, integers, floats), which it also reads; convert the layer "
            "first (e.g. to float32, or numpy.abs of complex data)"
        )
    if rgb and (len(shape) < 3 or shape[-1] not in (3, 4)):
        raise ValueError(
            f"the layer is marked RGB but its data of shape {shape} has no last axis of 3 "
            "or 4 colour samples; set rgb=False, or pass the colour samples last"
        )
    labels = meta.get("axis_labels")
    if labels is not None:
        joined = "".join(str(a) for a in labels) + ("S" if rgb else "")
        axes = valid_axes(joined, data.ndim)
        if axes:
            return axes
    provenance = (meta.get("metadata") or {}).get("napari_deconvnet") or {}
    if not isinstance(provenance, dict):  # a user's own note under our key
        provenance = {}
    axes = valid_axes(provenance.get("axes"), data.ndim)
    if axes and axes.endswith("S") == rgb:
        return axes
    return default_axes(data.ndim, rgb)


def layer_geometry(meta: dict[str, Any], axes: str) -> dict[str, Any]:
    """The layer's scale, translate and units per axis letter of `axes` (S excluded).

    Missing or mis-sized values count as 1 (scale), 0 (translate) and pixels
    (units, None); units are pint names (:func:`unit_name`).
    """
    letters = axes.removesuffix("S")
    n = len(letters)

    def per_axis(key: str, default: Any) -> list[Any]:
        value = meta.get(key)
        if value is None:
            return [default] * n
        value = list(value)
        if len(value) != n:
            return [default] * n
        return value

    scale = [float(s) for s in per_axis("scale", 1.0)]
    translate = [float(t) for t in per_axis("translate", 0.0)]
    if not all(math.isfinite(s) and s != 0 for s in scale):
        raise ValueError(
            f"the layer's scale {tuple(scale)} has a value that is zero, NaN or infinite; "
            "each axis needs a finite, non-zero pixel size (e.g. 1.0 or 0.065)"
        )
    if not all(math.isfinite(t) for t in translate):
        raise ValueError(f"the layer's translate {tuple(translate)} is not finite")
    units = [unit_name(u) for u in per_axis("units", None)]
    return {
        "letters": letters,
        "scale": dict(zip(letters, scale, strict=True)),
        "translate": dict(zip(letters, translate, strict=True)),
        "units": dict(zip(letters, units, strict=True)),
        "list_scale": scale,
        "list_translate": translate,
        "list_units": units,
    }


#: napari's transforms beyond scale and translate, with their identities
TRANSFORMS = {
    "rotate": lambda n: np.eye(n),
    "shear": lambda n: np.zeros(n * (n - 1) // 2),
    "affine": lambda n: np.eye(n + 1),
}


def layer_transforms(meta: dict[str, Any], n: int) -> dict[str, Any]:
    """The layer's ``rotate``, ``shear`` and ``affine`` that are not identities (lists).

    The writers dropped them: a rotated or sheared layer came back upright.
    """
    out = {}
    for key, identity in TRANSFORMS.items():
        value = meta.get(key)
        if value is None:
            continue
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if key == "rotate" and array.ndim == 0:  # napari takes an angle for 2D
            theta = np.deg2rad(float(array))
            array = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        if array.shape != identity(n).shape or not np.isfinite(array).all():
            continue
        if not np.allclose(array, identity(n)):
            out[key] = array.tolist()
    return out


def transforms_of(doc: dict[str, Any], n: int) -> dict[str, Any]:
    """The transforms a layer document holds, checked as :func:`layer_transforms`."""
    return layer_transforms({k: doc.get(k) for k in TRANSFORMS}, n)


#: napari's blending modes (a layer document's ``blending``)
BLENDINGS = ("opaque", "translucent", "translucent_no_depth", "additive", "minimum")


def layer_display(meta: dict[str, Any]) -> dict[str, Any]:
    """How the layer of state `meta` is shown: its ``colormap`` (by name), ``gamma``,
    ``opacity`` and ``blending``, where they are what napari takes.

    The writers kept its contrast limits only: a channel shown in green,
    additive over others, came back grey and opaque.
    """
    out: dict[str, Any] = {}
    colormap = meta.get("colormap")
    if isinstance(colormap, dict):  # napari's layer state holds the colormap's fields
        name = colormap.get("name")
    else:
        name = colormap if isinstance(colormap, str) else getattr(colormap, "name", None)
    if isinstance(name, str) and name and not name.startswith("["):  # "[unnamed colormap]"
        out["colormap"] = name
    for key, fits in (("gamma", lambda v: 0 < v < math.inf), ("opacity", lambda v: 0 <= v <= 1)):
        value = meta.get(key)
        if isinstance(value, int | float | np.number) and not isinstance(value, bool):
            if fits(float(value)):
                out[key] = float(value)
    blending = meta.get("blending")
    blending = getattr(blending, "value", blending)
    if isinstance(blending, str) and blending in BLENDINGS:
        out["blending"] = blending
    return out


def display_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The display a layer document holds, checked as :func:`layer_display`."""
    display = doc.get("display")
    return layer_display(display) if isinstance(display, dict) else {}


def layer_document(meta: dict[str, Any], axes: str, geo: dict[str, Any]) -> dict[str, Any]:
    """The layer document of a layer's state `meta` with `axes` and geometry `geo`."""
    return make_doc(
        {
            "name": meta.get("name"),
            "axes": axes,
            "scale": geo["list_scale"],
            "translate": geo["list_translate"],
            "units": geo["list_units"],
            **layer_transforms(meta, len(geo["list_scale"])),
            "contrast_limits": meta.get("contrast_limits"),
            "display": layer_display(meta),
            "metadata": dict(meta.get("metadata") or {}),
        }
    )


def spatial_unit(geo: dict[str, Any]) -> str | None:
    """The unit of the first of X, Y, Z that has one."""
    for letter in "XYZ":
        unit = geo["units"].get(letter)
        if unit:
            return unit
    return None
