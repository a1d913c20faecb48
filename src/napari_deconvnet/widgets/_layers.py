"""Layer helpers shared by the dock widgets (GUI side only)."""

from __future__ import annotations

import contextlib
import weakref
from functools import partial
from typing import Any

import numpy as np
from napari.layers import Image

from napari_deconvnet.io.display import contrast_limits  # the one implementation

_LAYER_EVENTS = ("inserted", "removed", "reordered", "renamed")


def closest_layer(name: str, layers: list[Any]) -> Any:
    """The layer of `layers` whose name shares most with `name` (None if there is none).

    Shared beginning and end, case aside: after napari's *Split Stack*,
    ``"cells blurred layer 1"`` goes with ``"cells clean layer 1"`` and
    ``"cells PSF layer 1"``, not with the ``layer 0`` of another channel.
    Ties keep the layers' order.

    >>> class L:
    ...     def __init__(self, name): self.name = name
    >>> closest_layer("two blurred layer 1", [L("two PSF layer 0"), L("two PSF layer 1")]).name
    'two PSF layer 1'
    """
    if not layers:
        return None
    a = name.lower()

    def common(x: str, y: str) -> int:  # the length of their common beginning
        n = min(len(x), len(y))
        return next((i for i in range(n) if x[i] != y[i]), n)

    def shared(other: str) -> int:
        b = other.lower()
        return common(a, b) + common(a[::-1], b[::-1])

    return max(layers, key=lambda layer: shared(str(layer.name)))  # (max keeps the first)


def clean_layer_for(image: Any, layers: list[Any], exclude: Any = ()) -> Any:
    """The clean-looking layer of `image`'s shape named most like it (a training target),
    among `layers` but not `image` or those in `exclude`; None if there is none."""
    from .quality import looks_like_reference

    skip = {id(image), *(id(la) for la in exclude)}
    shape = layer_data(image).shape  # a target pairs pixel for pixel
    candidates = [
        la
        for la in layers
        if la is not None
        and id(la) not in skip
        and looks_like_reference(la)
        and layer_data(la).shape == shape
    ]
    return closest_layer(image.name, candidates)


def image_layers(viewer: Any) -> list[tuple[str, Image]]:
    """(name, layer) choices of the viewer's image layers."""
    return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, Image)]


def layer_data(layer: Image) -> Any:
    """The full-resolution data of an image layer (level 0 of a multiscale one)."""
    return layer.data[0] if layer.multiscale else layer.data


def geometry(layer: Image) -> dict[str, Any]:
    """Keyword arguments that give a new layer the geometry of `layer`."""
    kwargs: dict[str, Any] = {
        "scale": layer.scale,
        "translate": layer.translate,
        "rotate": layer.rotate,
        "shear": layer.shear,
        "affine": layer.affine,
    }
    for name in ("axis_labels", "units"):  # newer napari versions only
        if hasattr(layer, name):
            kwargs[name] = getattr(layer, name)
    return kwargs


def unique_name(viewer: Any, name: str) -> str:
    """`name`, or `name (2)`, `name (3)`... if a layer already has it."""
    taken = {layer.name for layer in viewer.layers}
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name} ({n})"
    return candidate


def add_result(
    viewer: Any,
    data: Any,
    *,
    like: Image,
    name: str,
    record: dict[str, Any],
    limits: Any = None,
    **kwargs: Any,
) -> Image:
    """Add a result image layer beside its source, with the source's look and a provenance record.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    data : array-like
        The result (numpy or lazy).
    like : napari.layers.Image
        The source layer: the result takes its geometry (scale, translate,
        rotate, shear, affine, axis labels, units), RGB flag, colormap, blending,
        opacity and gamma.
    name : str
        The layer's name; ``" (2)"``, ``" (3)"``... is appended if it is taken,
        so that no layer is ever replaced.
    record : dict
        The result's provenance (:func:`napari_deconvnet.core.provenance.record`),
        stored in ``layer.metadata["napari_deconvnet"]``; the source's
        ``"channel_names"`` come along when the result has its shape.
    limits : (float, float), optional
        Contrast limits. Default: computed from `data` (:func:`contrast_limits`); the source's
        for lazy data, which would otherwise be computed whole.
    **kwargs
        More keyword arguments of ``viewer.add_image`` (they win).

    Returns
    -------
    napari.layers.Image
        The added layer.
    """
    from napari_deconvnet.core.provenance import layer_metadata

    if limits is None:
        lazy = not isinstance(data, np.ndarray)
        limits = like.contrast_limits if lazy else contrast_limits(data)
    metadata = layer_metadata(record)
    names = (like.metadata or {}).get("channel_names")
    if names is not None and tuple(np.shape(data)) == tuple(np.shape(like.data)):
        # the same channels, restored (or degraded): their names go on to the writers
        # (session 72: an OME-TIFF's names were lost on Restore, then Save)
        metadata = {"channel_names": list(names), **metadata}
    options: dict[str, Any] = {
        "name": unique_name(viewer, name),
        "rgb": like.rgb,
        "contrast_limits": list(limits),
        "metadata": metadata,
        **geometry(like),
    }
    if not like.rgb:
        options["colormap"] = like.colormap
    # how it is shown over the others (a channel split's additive layers: the result
    # came translucent and hid the channels under it)
    for key in ("blending", "opacity", "gamma"):
        if hasattr(like, key):
            options[key] = getattr(like, key)
    options.update(kwargs)
    return viewer.add_image(data, **options)


def _on_destroyed(ref: weakref.ref, emitters: list[Any], *_: Any) -> None:
    """The Qt widget is gone or taken out of its dock: stop listening and stop working."""
    widget = ref()
    if widget is None:
        return
    for emitter in emitters:
        with contextlib.suppress(Exception):
            emitter.disconnect(widget.reset_choices)
    with contextlib.suppress(Exception):
        widget.close_workers()


def _close_watcher(on_close: Any, parent: Any) -> Any:
    """A Qt event filter on `parent` that calls `on_close()` when it leaves its dock.

    napari's dock close button takes the widget out of its dock
    (``setParent(None)``) without deleting it, so ``destroyed`` is not emitted.
    """
    from qtpy.QtCore import QEvent, QObject

    class CloseWatcher(QObject):
        def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 (Qt's name)
            if event.type() == QEvent.Type.ParentChange and obj.parent() is None:
                on_close()
            return False

    watcher = CloseWatcher(parent)
    parent.installEventFilter(watcher)
    return watcher


def follow_layers(widget: Any, viewer: Any, extra: tuple[Any, ...] = ()) -> None:
    """Keep `widget`'s layer choices in sync with `viewer` until the widget is destroyed.

    napari connects these events when a widget is docked; connecting them here
    keeps an undocked widget (scripts, tests) in sync too. `extra` are more
    emitters whose events also re-read the choices (e.g. the model registry).
    When the widget is destroyed, or taken out of its dock (napari's close
    button), all are disconnected and ``widget.close_workers()`` is called.
    """
    events = viewer.layers.events
    emitters = [getattr(events, name, None) for name in _LAYER_EVENTS]
    emitters = [e for e in emitters if e is not None]  # older napari has no "renamed"
    emitters.extend(extra)
    for emitter in emitters:
        emitter.connect(widget.reset_choices)
    on_close = partial(_on_destroyed, weakref.ref(widget), emitters)
    widget.native.destroyed.connect(on_close)
    widget._close_watcher = _close_watcher(on_close, widget.native)


def keep_selection(combo: Any, choices: list[tuple[str, Image]], current: Any) -> None:
    """Put `combo` back on `current` after its choices were re-read (names may have moved)."""
    if current is not None and any(layer is current for _, layer in choices):
        combo.value = current
