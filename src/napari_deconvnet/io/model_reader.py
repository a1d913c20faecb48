"""npe2 reader for model files: register a model with the widgets, add no layer.

A ``.safetensors`` file saved by napari-deconvnet, or a bioimage.io package
(``.zip``, ``rdf.yaml``, ``bioimageio.yaml``) of its architecture, is
checked, registered with the Restore and Train widgets (see
:mod:`napari_deconvnet.io.registry`), and its metadata is shown in a
notification.

The getter returns None for other files, for safetensors files of other
tools and for packages of other architectures, so that napari tries other
readers; a file that is not valid safetensors is ours to report.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .display import notify
from .image_files import single_path

__all__ = ["get_model_reader", "read_model"]


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
        notify("error", f"napari-deconvnet could not open the model file: {err}")
        return [(None,)]
    name = registry.register_model(path)
    notify(
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
    p = single_path(path)
    if p is None:
        return None
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
