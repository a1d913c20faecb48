"""One record of how a result was made, stored with the result wherever it goes.

The restore, synthesis and measurement front ends (widgets, command line,
reader, writers) all describe their results with :func:`record` and store it
under :data:`KEY` of a layer's (or file's) metadata, so that a result opened
later says which method, parameters, PSF, source and version made it.

>>> rec = record("restore", method="wiener", params={"balance": None}, source="a.tif")
>>> sorted(rec)
['method', 'operation', 'params', 'source', 'version']
>>> layer_metadata(rec, {"other": 1})["napari_deconvnet"]["method"]
'wiener'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["KEY", "jsonable", "layer_metadata", "of", "record"]

#: Where a record lives in a layer's or file's metadata.
KEY = "napari_deconvnet"


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types (arrays become their shape and dtype)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    shape = getattr(value, "shape", None)
    if shape is not None:  # dask arrays, tensors
        return {"shape": [int(n) for n in shape], "dtype": str(getattr(value, "dtype", ""))}
    return str(value)


def record(operation: str, /, **fields: Any) -> dict[str, Any]:
    """The provenance of one result: the `operation` and what it was run with.

    Parameters
    ----------
    operation : str
        ``"restore"``, ``"synthesize"``, ``"measure"``, ``"train"``...
    **fields
        What made it: ``method``, ``model``, ``model_name``, ``params``,
        ``psf``, ``axes``, ``device``, ``source``, ``seconds``... ``None``
        values are dropped; arrays are recorded by shape and dtype; seconds
        are rounded to milliseconds.

    Returns
    -------
    dict
        JSON-able, with the library ``version``.
    """
    from napari_deconvnet import __version__

    out: dict[str, Any] = {"operation": operation}
    for key, value in fields.items():
        if value is None:
            continue
        if key == "seconds":
            value = round(float(value), 3)
        out[key] = jsonable(value)
    out["version"] = __version__
    return out


def layer_metadata(rec: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> dict:
    """`metadata` (a layer's, copied) with `rec` stored under :data:`KEY`."""
    out = dict(metadata or {})
    out[KEY] = dict(rec)
    return out


def of(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The record stored in `metadata`, or ``{}``."""
    rec = (metadata or {}).get(KEY)
    return dict(rec) if isinstance(rec, Mapping) else {}
