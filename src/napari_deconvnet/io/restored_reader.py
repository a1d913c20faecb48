"""npe2 reader "Open restored": an image file as a raw and a restored layer.

TIFF (ImageJ hyperstacks, OME-TIFF, multi-page), PNG/JPEG, ``.npy`` and
``.zarr`` (OME-Zarr included) give two layers:

- the raw image, with the scale (and units, axis names, translation) found
  in the file's metadata (:func:`~napari_deconvnet.io.image_files.read_image`);
- the image restored by the default model, or the model named by
  :data:`~napari_deconvnet.io.lazy.settings` (``settings.model`` or the
  ``NAPARI_DECONVNET_MODEL`` environment variable), with the same geometry
  and its provenance (:func:`napari_deconvnet.core.provenance.record`) in
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
done. Deleting the raw layer, or closing the viewer, stops that worker.
Without a running viewer (npe2's ``read`` in a script), the restored layer
is a lazy dask array instead. :func:`read_restored`, the plain function,
restores before it returns.

A file written by napari-deconvnet's writer gets its layer name, geometry
and ``metadata`` back; if that metadata says it is already a result (a
restoration, or a measurement such as the Quality widget's SSIM map) it
opens as one layer, not restored again.

The getter returns None for files this reader does not handle, so that
napari tries other readers. A file of a handled type that turns out to be
broken gives an error notification that says what is wrong.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .dask_cache import tolerate_concurrent_computes
from .display import contrast_limits, notify
from .image_files import ImageFile, check_layer_shape, file_kind, read_image
from .lazy import lazy_restore, settings

__all__ = ["LayerData", "get_reader", "read_restored"]

# its worker computes the lazy file while napari slices it (io.dask_cache)
tolerate_concurrent_computes()

#: The logger the README documents for the reader's errors.
_logger = logging.getLogger("napari_deconvnet.io.reader")

#: A napari layer data tuple: ``(data, kwargs, layer type)``.
LayerData = tuple[Any, dict[str, Any], str]


def _limits(data: Any) -> list[float]:
    return list(contrast_limits(data))


def _sample_limits(x: Any) -> list[float]:
    """Contrast limits of the lazy array `x`, from the sample the restore's statistics use.

    :func:`napari_deconvnet.core.normalization.sample_values` keeps it for
    the array object, so the raw layer's limits and the restore of a single
    image read it once (a stack's restore samples each of its images).
    """
    from napari_deconvnet.core.normalization import sample_values

    return _limits(sample_values(x))


# ------------------------------------------------------------------ layers


def _supports(name: str) -> bool:
    import inspect

    from napari.layers import Image

    return name in inspect.signature(Image.__init__).parameters


def _geometry_kwargs(image: ImageFile) -> dict[str, Any]:
    """napari layer kwargs for the geometry of `image` (what this napari supports)."""
    kwargs = image.geometry()
    if "axis_labels" in kwargs and not _supports("axis_labels"):
        del kwargs["axis_labels"]
    units = kwargs.pop("units", None)
    if units and any(units) and _supports("units"):
        kwargs["units"] = tuple(u or "pixel" for u in units)
    return kwargs


def _display_kwargs(image: ImageFile) -> dict[str, Any]:
    """napari layer kwargs for how `image`'s layer was shown (colormap, gamma,
    opacity, blending), where this napari knows them (an RGB layer has no colormap)."""
    kwargs = dict(image.display)
    if "colormap" in kwargs:
        from napari.utils.colormaps import AVAILABLE_COLORMAPS

        from .colormaps import SSIM_COLORMAP, ssim_colormap

        if kwargs["colormap"] == SSIM_COLORMAP and not image.rgb:
            # the Quality widget's SSIM map, known to napari only once that widget made
            # one: reopened in a new session it came back grey, bright where SSIM is high,
            # the overlay's meaning reversed (session 73)
            kwargs["colormap"] = ssim_colormap()
        elif image.rgb or kwargs["colormap"] not in AVAILABLE_COLORMAPS:
            del kwargs["colormap"]
    return kwargs


def _raw_layer(image: ImageFile) -> LayerData:
    kwargs = {
        "name": image.name,
        "metadata": image.metadata,
        **_geometry_kwargs(image),
        **_display_kwargs(image),
    }
    if image.contrast_limits is not None and len(image.contrast_limits) == 2:
        kwargs["contrast_limits"] = list(image.contrast_limits)
    elif image.lazy:
        kwargs["contrast_limits"] = _sample_limits(image.levels[-1])
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
        limits = _sample_limits(image.levels[-1])
    else:
        data = restore(np.asarray(image.data), net, axes=axes, device=device)
        limits = _limits(data)
    seconds = None if image.lazy else time.perf_counter() - start
    return _restored_data(image, data, model, net, axes, device, limits, seconds)


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
    from napari_deconvnet.core.provenance import layer_metadata, record

    provenance = record(
        "restore",
        model=str(model),
        model_name=net.metadata.get("name", str(model)),
        axes=axes,
        device=device,
        lazy=image.lazy or not isinstance(data, np.ndarray),
        source=image.path,
        seconds=seconds,
    )
    metadata = layer_metadata(provenance)
    if (image.metadata or {}).get("channel_names"):  # (the same channels, restored)
        metadata["channel_names"] = list(image.metadata["channel_names"])
    kwargs = {
        "name": f"{image.name} restored",
        "metadata": metadata,
        "contrast_limits": limits,
        **_geometry_kwargs(image),
        **_display_kwargs(image),
    }
    if isinstance(data, list):
        kwargs["multiscale"] = True
    return data, kwargs, "image"


#: Operations whose layers are results, never restored again: restorations, and
#: measurements (the Quality widget's SSIM maps, ``napari-deconvnet evaluate``'s).
_RESULT_OPERATIONS = frozenset({"restore", "measure"})


def _is_result(metadata: dict[str, Any]) -> bool:
    """Whether `metadata` says its layer is already a result, not an image to restore.

    A restoration (any method, any front end), a measurement such as an SSIM
    map, a Train widget's preview (a network's output) or a PSF (session 70:
    both were restored again, and the widgets then preselected the restored
    PSF, whose sum had drifted from 1).
    """
    from napari_deconvnet.core.provenance import of

    rec = of(metadata)
    return (
        rec.get("operation") in _RESULT_OPERATIONS
        or bool(rec.get("model"))
        or "ssim" in rec  # an SSIM map, whatever wrote its record
        or "preview_of" in rec
        or rec.get("psf") is True
    )


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
        image = check_layer_shape(read_image(path, lazy_bytes=lazy_bytes), path)
        # (its contrast limits read a sample of the chunks: a damaged chunk of a lazy
        # file failed here, outside the notification, as a bare RuntimeError)
        layers = [_raw_layer(image)]
    except Exception as err:  # a broken file of a type we claim: say what is wrong
        _logger.warning("reading %s failed", path, exc_info=True)
        notify("error", f"napari-deconvnet could not read {Path(path).name}: {err}")
        return [(None,)]
    if _is_result(image.metadata):
        return layers
    try:
        layers.append(_restored_layer(image, model, device))
    except Exception as err:
        _logger.warning("restoring %s failed", path, exc_info=True)
        notify("error", f"napari-deconvnet could not restore {Path(path).name}: {err}")
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
        image = check_layer_shape(read_image(path), path)
        raw = _raw_layer(image)  # (it reads chunks of a lazy file: a damaged one fails here)
    except Exception as err:  # a broken file of a type we claim: say what is wrong
        _logger.warning("reading %s failed", path, exc_info=True)
        notify("error", f"napari-deconvnet could not read {Path(path).name}: {err}")
        return [(None,)]
    if _is_result(image.metadata):
        return [raw]
    model, device = settings.get("model"), settings.get("device")
    refusal = _psf_model_refusal(model)
    if refusal is not None:  # (said in the API's words, from a worker, session 72)
        notify("error", f"napari-deconvnet could not restore {Path(path).name}: {refusal}")
        return [raw]
    viewers = _open_viewers()
    try:
        if not viewers:  # no viewer to fill in later: a lazy restored layer
            if image.lazy:
                return [raw, _restored_layer(image, model, device)]
            return [raw, _lazy_in_memory(image, model, device)]
        _restore_where_added(viewers, image, model, device)
    except Exception as err:
        _logger.warning("restoring %s failed", path, exc_info=True)
        notify("error", f"napari-deconvnet could not restore {Path(path).name}: {err}")
    return [raw]


def _psf_model_refusal(model: Any) -> str | None:
    """Words when the model *Open restored* is set to deconvolves (it needs a PSF, which
    a reader has no way to take); None otherwise, or when its file cannot be read here
    (the restore says what is wrong with it)."""
    from napari_deconvnet.core.kinds import kind_of
    from napari_deconvnet.core.persistence import model_info

    try:
        needs_psf = kind_of(model_info(model)["metadata"]).needs_psf
    except Exception:
        return None
    if not needs_psf:
        return None
    return (
        f"Open restored is set to {model!r}, a deconvolution model, which needs the image's "
        "PSF, and a reader has none to give it; set NAPARI_DECONVNET_MODEL (or "
        "napari_deconvnet.io.lazy.settings['model']) to a denoising model, or deconvolve "
        "with the Restore widget and a PSF"
    )


def _current_viewer() -> Any:
    try:
        import napari
        from qtpy.QtWidgets import QApplication
    except ImportError:  # pragma: no cover - napari is a dependency
        return None
    if QApplication.instance() is None:
        return None
    return napari.current_viewer()


def _open_viewers() -> list[Any]:
    """The napari viewers open now (the current one first), or none without Qt."""
    current = _current_viewer()
    if current is None:
        return []
    import napari

    others = [v for v in getattr(napari.Viewer, "_instances", ()) if v is not current]
    return [current, *others]


def _raw_of(layer: Any) -> Any:
    """A layer's full-resolution data (a multiscale layer's first level)."""
    data = getattr(layer, "data", None)
    if getattr(layer, "multiscale", False):  # napari's MultiScaleData of the levels
        with contextlib.suppress(Exception):
            data = data[0]
    return data


def _restore_where_added(viewers: list[Any], image: ImageFile, model: str, device: str) -> None:
    """Restore `image` in the background for the viewer its raw layer is added to.

    The reader returns the raw layer and napari adds it to the viewer that
    opened the file, which need not be the current one (``v1.open(...)`` while
    ``v2`` was created last put the restored layer into ``v2``, and deleting
    the raw layer in ``v1`` did not stop the work): every open viewer is
    watched until one of them receives it.
    """
    raw = image.data
    watched: list[tuple[Any, Any]] = []

    def forget() -> None:
        for viewer, callback in watched:
            with contextlib.suppress(Exception):
                viewer.layers.events.inserted.disconnect(callback)
        watched.clear()

    for viewer in viewers:

        def on_inserted(event: Any, viewer: Any = viewer) -> None:
            if _raw_of(event.value) is raw:
                forget()
                try:
                    _restore_in_background(viewer, image, model, device)
                except Exception as err:
                    _logger.warning("restoring %s failed", image.path, exc_info=True)
                    notify("error", f"napari-deconvnet could not restore {image.path}: {err}")

        viewer.layers.events.inserted.connect(on_inserted)
        watched.append((viewer, on_inserted))
    # napari adds what a reader returns before it next reads events: a raw layer not
    # added by then never will be (read outside a viewer, npe2.read), and the watch
    # would hold its image and restore it if the same array were added later
    from qtpy.QtCore import QTimer

    QTimer.singleShot(0, forget)


def _lazy_in_memory(image: ImageFile, model: str, device: str) -> LayerData:
    """The restored layer of an in-memory image as a lazy dask array (one chunk)."""
    import dask.array as da

    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.tiling import infer_axes, restore

    net = load_model(model)
    axes = image.axes or infer_axes(image.data.shape, net)
    data = restore(da.from_array(image.data, chunks=-1), net, axes=axes, device=device)
    return _restored_data(image, data, model, net, axes, device, _limits(image.data), None)


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
    return _restored_data(image, data, model, net, axes, device, _limits(data), seconds)


#: Background restorations of the reader that are running (kept alive until they end).
_jobs: set[Any] = set()


def _restore_in_background(viewer: Any, image: ImageFile, model: str, device: str) -> Any:
    """Restore `image` in a worker thread; add the restored layer to `viewer` when done.

    Progress shows in napari's activity panel. Deleting the raw layer (or
    closing the viewer) stops the worker at its next tile batch.
    """
    from napari.qt.threading import create_worker
    from napari.utils import progress

    # a RuntimeError (torch's) re-raised as an ordinary error: superqt's generator
    # worker would take it for a deleted worker and never end
    from napari_deconvnet.widgets._common import guarded, original_error

    name = Path(image.path).name
    worker = create_worker(
        guarded(_restore_job), image, model, device, _start_thread=False, _ignore_errors=True
    )
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
        err = original_error(err)
        _logger.warning("restoring %s failed", image.path, exc_info=err)
        notify("error", f"napari-deconvnet could not restore {name}: {err}")

    def on_removed(event: Any) -> None:
        if _raw_of(event.value) is raw:
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
