"""npe2 writer "OME-Zarr, restored": save the restoration of a layer, not the layer.

napari's *Save layer* with this writer sends the layer's data through a
network and writes the result to OME-Zarr (as :func:`~napari_deconvnet.io.writer.write_ome_zarr`
writes: chunked, with a pyramid, atomically), without adding a layer:

- the model is the one last chosen in the Restore widget
  (:func:`remember_model`; with its PSF for a deconvolution model, from its
  last run), else ``"default"``;
- the layer is restored block by block straight into the file by
  :func:`napari_deconvnet.restore_to_zarr`, so a lazy layer (dask, zarr)
  bigger than memory is never computed in the viewer;
- the file's provenance (``layer.metadata["napari_deconvnet"]`` when
  reopened) records the model, its name, the PSF's shape, the axes, the
  source layer and the library version;
- in napari, progress shows in the activity panel (``napari.utils.progress``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_deconvnet.core.kinds import kind_of

from .layer_doc import full_resolution

__all__ = [
    "as_lazy",
    "chosen_model",
    "remember_model",
    "write_restored_ome_zarr",
]

_logger = logging.getLogger(__name__)
_LAZY_MODULES = ("dask", "zarr", "h5py", "tensorstore")
_EVENTS_INTERVAL = 0.2  # seconds between GUI refreshes while napari waits for the writer

_lock = threading.Lock()
_last: dict[str, Any] = {"model": None, "psf": None}


#: The PSF each model last ran with in the Restore widget (a deconvolution model chosen
#: again takes it back)
_ran_with: dict[str, Any] = {}


def remember_model(model: str, *, psf: Any = None) -> None:
    """Make `model` (a shipped name or a path) the one the restored writer uses.

    The Restore widget calls this when a network is chosen (every network:
    a deconvolution model chosen in the widget was not, and the writer
    restored with the denoiser chosen before it, session 73; it takes the PSF
    that model last ran with there, else the writer asks for a run), and
    after it ran one (then with the PSF it used, for deconvolution models).
    """
    with _lock:
        _last["model"] = str(model)
        if psf is None:
            _last["psf"] = _ran_with.get(str(model))
        elif isinstance(psf, list | tuple):  # one PSF per channel (core.channel_psfs)
            _last["psf"] = _ran_with[str(model)] = [np.asarray(p) for p in psf]
        else:
            _last["psf"] = _ran_with[str(model)] = np.asarray(psf)


def chosen_model() -> tuple[str, Any]:
    """The model the restored writer uses, and its PSF (an array, or a list of one per
    channel): the last remembered, or ``"default"``."""
    with _lock:
        return _last["model"] or "default", _last["psf"]


def as_lazy(data: Any) -> Any | None:
    """`data` as a dask array when it is lazy (dask, zarr, h5py...); None for in-memory data."""
    if isinstance(data, np.ndarray):
        return None
    if type(data).__module__.split(".")[0] not in _LAZY_MODULES:
        return None
    if hasattr(data, "dask"):
        return data
    import dask.array as da

    chunks = getattr(data, "chunks", None)
    return da.from_array(data, chunks=chunks if isinstance(chunks, tuple) else "auto")


# ------------------------------------------------------------------ progress


class _Progress:
    """``(done, total)`` reports to napari's activity panel (when napari runs) or a callback."""

    def __init__(self, description: str, callback: Callable[[int, int], Any] | None) -> None:
        self._callback = callback
        self._bar = None
        self._last = 0.0
        if callback is None and "napari" in sys.modules:
            with contextlib.suppress(Exception):
                from napari.utils import progress

                self._bar = progress(total=0, desc=description)

    def __call__(self, done: int, total: int) -> None:
        if self._callback is not None:
            self._callback(done, total)
        if self._bar is not None:
            self._bar.total = max(int(total), 1)
            self._bar.n = int(done)
            self._bar.refresh()
        self._process_events()

    def _process_events(self) -> None:
        """napari waits for writers on the GUI thread: let it repaint the panel now and then."""
        now = time.monotonic()
        if self._bar is None or now - self._last < _EVENTS_INTERVAL:
            return
        self._last = now
        if "qtpy" in sys.modules and threading.current_thread() is threading.main_thread():
            from qtpy.QtWidgets import QApplication

            if QApplication.instance() is not None:
                QApplication.processEvents()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# -------------------------------------------------------------------- writer


def _axes(data: Any, meta: dict[str, Any]) -> str | None:
    """The ``axes`` for :func:`~napari_deconvnet.restore`: the layer's axis labels
    where they name its axes (``c, z, y, x``: a channel axis is restored channel by
    channel, never as a volume or a time-lapse), RGB's own, else None (guessed)."""
    if not meta.get("rgb"):
        from napari_deconvnet.core.axes import check_axes

        labels = [str(a) for a in meta.get("axis_labels") or ()]
        if not labels or any(len(a) != 1 or a.upper() == "S" for a in labels):
            return None  # napari's own ("axis -3"...), or none: guessed
        try:  # one letter per axis from TZCYX, with a Y and an X
            return check_axes("".join(labels), data.shape, 2)
        except ValueError:
            return None
    n = data.ndim - 1
    if n not in (2, 3, 4):
        raise ValueError(
            f"cannot restore a {data.ndim}-D RGB layer; restored writes handle 2D to 4D RGB"
        )
    return "TZYX"[4 - n :] + "S"


def _stamp(
    folder: Path, meta: dict[str, Any], axes: str, name: str, provenance: dict[str, Any]
) -> None:
    """Give the OME-Zarr :func:`napari_deconvnet.restore_to_zarr` wrote the layer's geometry.

    Its scale, translation and units (the source layer's, which an array does
    not carry) go into ``multiscales`` (made again by the core's
    :func:`~napari_deconvnet.core.ome_zarr.multiscales`, as every OME-Zarr of
    the package is described) and the layer document, and our provenance is
    merged into the document's. Written as one JSON file.
    """
    import json

    from napari_deconvnet.core.atomic import write_atomic
    from napari_deconvnet.core.ome_zarr import multiscales

    from .layer_doc import LAYER_KEY, json_safe, layer_display, layer_geometry, layer_transforms
    from .writer import channel_names

    attrs_path = folder / ".zattrs"
    attrs = json.loads(attrs_path.read_text())
    doc = attrs[LAYER_KEY]
    zaxes = doc["axes"]
    geo = layer_geometry(meta, axes)
    # the NGFF metadata again, as the writer makes it, with the layer's geometry
    ngff = "".join(entry["name"].upper() for entry in attrs["multiscales"][0]["axes"])
    geometry = {
        "scale": [geo["scale"].get(a, 1.0) for a in ngff],
        "translate": [geo["translate"].get(a, 0.0) for a in ngff],
        "units": [geo["units"].get(a) for a in ngff],
    }
    levels = attrs["multiscales"][0]["datasets"]
    attrs["multiscales"] = multiscales(name, ngff, levels, geometry, ngff)
    shape = zarr_level_shape(folder)
    names = channel_names(meta, ngff, shape) if shape is not None else None
    if names is not None and "S" not in zaxes:
        # NGFF's omero labels, as the plain writer writes them (session 73: only the
        # package's own document kept them, other OME-Zarr viewers lost the names)
        attrs["omero"] = {"channels": [{"label": n, "active": True} for n in names]}
    # one entry per layer axis: an RGB layer's samples (S) are none (with an entry for S
    # the document's geometry was refused on reading, and its translate lost)
    letters = [a for a in zaxes if a != "S"]
    doc["scale"] = [geo["scale"].get(a, 1.0) for a in letters]
    doc["translate"] = [geo["translate"].get(a, 0.0) for a in letters]
    doc["units"] = [geo["units"].get(a) for a in letters]
    doc["name"] = name
    # the layer's rotation, shear and affine, and how it is shown, as the plain writers
    # keep them (a rotated layer's restoration reopened upright, off its source)
    doc.update(layer_transforms(meta, len(letters)))
    display = layer_display(meta)
    if display:
        doc["display"] = display
    if meta.get("contrast_limits") is not None:
        doc["contrast_limits"] = json_safe(list(meta["contrast_limits"]))
    streamed = dict(doc.get("metadata", {}).get("napari_deconvnet") or {})
    merged = {**streamed, **provenance}
    doc["metadata"] = json_safe({**(meta.get("metadata") or {}), "napari_deconvnet": merged})
    write_atomic(attrs_path, json.dumps(attrs).encode())


def zarr_level_shape(folder: Path) -> list[int] | None:
    """The shape of level 0 of the OME-Zarr `folder` (zarr format 2), from its
    ``.zarray``; None when it cannot be read."""
    import json

    try:
        return [int(n) for n in json.loads((folder / "0" / ".zarray").read_text())["shape"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _psf_record(psf: Any) -> Any:
    """The PSF for the provenance: a name, a shape, or one shape per channel."""
    if psf is None or isinstance(psf, str):
        return psf
    if isinstance(psf, list | tuple):
        return {"shape": [list(np.shape(p)) for p in psf], "channels": len(psf)}
    return {"shape": list(np.shape(psf))}


def _stream_with_restore_to_zarr(
    path: Path,
    source: Any,
    net: Any,
    meta: dict[str, Any],
    axes: str,
    psf: Any,
    device: str,
    name: str,
    provenance: dict[str, Any],
    report: Any,
) -> list[str]:
    """:func:`napari_deconvnet.restore_to_zarr` into a temporary folder, swapped in when done."""
    import napari_deconvnet as dn
    from napari_deconvnet.core.atomic import atomic_folder  # the one atomic replace

    with atomic_folder(path) as tmp:
        dn.restore_to_zarr(
            source,
            tmp,
            net,
            psf=psf,
            axes=axes,
            device=device,
            progress=report,
            overwrite=True,
            resume=False,
            client=False,
            name=name,
        )
        _stamp(Path(tmp), meta, axes, name, provenance)
    return [str(path)]


def write_restored_ome_zarr(
    path: str | os.PathLike,
    data: Any,
    meta: dict[str, Any],
    *,
    model: Any = None,
    psf: Any = None,
    device: str = "auto",
    progress: Callable[[int, int], Any] | None = None,
) -> list[str]:
    """npe2 writer: the restoration of one image layer, streamed to OME-Zarr.

    Parameters
    ----------
    path : path
        A ``*.zarr`` folder (``*.ome.zarr`` by convention).
    data : ndarray, dask array, zarr array, or a list of them (multiscale)
        The layer's data; of a multiscale layer, the full resolution is restored.
    meta : dict
        The layer's state (name, scale, metadata...), as napari passes it.
    model : str or DeconvNet, optional
        Default: :func:`chosen_model` (the Restore widget's last choice, or
        ``"default"``), with its PSF.
    psf : array or str, optional
        For deconvolution models; default the remembered one.
    device : str
        Where the network runs.
    progress : callable, optional
        Called as ``progress(done, total)``; default napari's activity panel
        when napari runs.

    Returns
    -------
    list of str
        ``[path]``.

    Raises
    ------
    ValueError
        A model that cannot restore this layer (e.g. a deconvolution model
        without a PSF, an image smaller than the network's grid).
    """
    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.provenance import record

    data = full_resolution(data)  # of a multiscale layer (napari's MultiScaleData too)
    from_widget = False
    if model is None:
        model, remembered = chosen_model()
        from_widget = psf is None and remembered is not None
        psf = remembered if psf is None else psf
    net = load_model(model)
    if not kind_of(net).needs_psf:
        psf = None
    elif psf is None:
        raise ValueError(
            f"model {net.metadata.get('name', str(model))!r} deconvolves and needs a PSF; "
            "run it once in the Restore widget (its PSF is remembered), or choose a denoising "
            "model there"
        )
    axes = _axes(data, meta)
    if axes is None:
        from napari_deconvnet.core.tiling import infer_axes

        axes = infer_axes(data.shape, net)
    from .layer_doc import layer_geometry

    layer_geometry(meta, axes)  # a bad scale is refused now, not after the restore
    name = str(meta.get("name") or Path(path).name)
    lazy = as_lazy(data)
    provenance = record(
        "restore",
        model=str(model) if isinstance(model, str | os.PathLike) else net.metadata.get("name"),
        model_name=net.metadata.get("name", str(model)),
        writer="OME-Zarr, restored",
        source=name,
        device=device,
        psf=_psf_record(psf),
        axes=axes,
        lazy=lazy is not None,
    )
    report = _Progress(f"restoring {name!r} to {Path(path).name}", progress)
    start = time.perf_counter()
    try:
        written = _stream_with_restore_to_zarr(
            Path(path),
            data if lazy is None else lazy,
            net,
            meta,
            axes,
            psf,
            device,
            f"{name} restored",
            provenance,
            report,
        )
    except ValueError as err:
        if not from_widget:
            raise
        # the PSF of the model's last run in the Restore widget, on another layer (one
        # PSF per channel of a two-colour stack beside a grey image: the core's words
        # asked for axes=, review of session 73)
        raise ValueError(
            f"the PSF of {net.metadata.get('name', str(model))!r}'s last run in the Restore "
            f"widget does not fit {name!r}: {err}; run the model on this layer in the "
            "Restore widget first (its PSF is then remembered)"
        ) from err
    finally:
        report.close()
    _logger.info(
        "wrote the restoration of %r to %s in %.1f s", name, path, time.perf_counter() - start
    )
    return written
