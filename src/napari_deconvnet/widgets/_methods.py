"""The Restore widget's methods: what it offers, what it preselects, and the job that runs one.

:func:`method_catalogue` lists the specs of every method the widget offers:
the shipped networks and the classical methods of
:func:`~napari_deconvnet.list_methods`, the model files opened in napari
(:mod:`napari_deconvnet.io.registry`) and ``"Model file…"``.
:func:`preferred_method` is the one that fits a layer and the viewer.
:func:`restore_job` is the worker body: it runs any of them through the
core's :func:`~napari_deconvnet.core.operations.run_method_iter`. The core's
compute is imported inside the functions, never at module top.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Mapping
from typing import Any

from napari_deconvnet.core.conditions import collect_conditions
from napari_deconvnet.core.model_specs import MODEL_PARAMS, model_spec
from napari_deconvnet.core.specs import Spec, list_methods
from napari_deconvnet.io import registry
from napari_deconvnet.io.restored_writer import as_lazy

from ._layers import contrast_limits
from ._psf import build_channel_psfs, build_psf, psf_ndim

__all__ = [
    "BROWSE",
    "BROWSE_HELP",
    "BROWSE_SPEC",
    "file_spec",
    "labelled_axes",
    "method_catalogue",
    "plane_axes",
    "preferred_method",
    "restore_job",
    "spatial_dims",
]

#: The method that runs a model file chosen in a file dialog.
BROWSE = "Model file\u2026"
BROWSE_HELP = (
    "A .safetensors model file saved by napari-deconvnet (the Train widget or "
    "dn.save_model); pick it below."
)
#: Its spec until a file is chosen: a network's parameters, no PSF.
BROWSE_SPEC = Spec("method", BROWSE, BROWSE_HELP, params=MODEL_PARAMS, kind="model")


def labelled_axes(layer: Any) -> str | None:
    """The axes a layer's ``axis_labels`` name (``"TYX"``, ``"CZYX"``...; ``S`` for RGB samples).

    None when the labels are napari's defaults (``"axis -3"``...) or do not name
    one axis each from ``"TZCYX"`` with a Y and an X: the axes are then guessed
    from the shape, as for an unlabelled layer.

    Examples
    --------
    A time-lapse opened with ``axis_labels=("t", "y", "x")`` gives ``"TYX"``:
    its frames are restored (or synthesized) one by one, never as a volume.
    """
    from .quality import layer_axes

    axes = layer_axes(layer)
    if axes is None or "Y" not in axes or "X" not in axes or {"C", "S"} <= set(axes):
        return None
    return axes


def spatial_dims(layer: Any) -> int:
    """The layer's spatial dimensions: its Z, Y and X when labelled, else all but RGB samples."""
    from ._layers import layer_data

    axes = labelled_axes(layer)
    if axes is not None:
        return sum(a in "ZYX" for a in axes)
    return layer_data(layer).ndim - bool(layer.rgb)


def plane_axes(axes: str) -> str | None:
    """`axes` for the core so that it works on 2D planes of Y and X, even with a Z.

    The core works on volumes wherever the axes have a Z and the operation can;
    here Z is renamed to a non-spatial letter the axes lack (T, else C), which
    cuts the image into the same planes. None (the core's default: the last two
    axes) when no letter is free, as for ``"TZCYX"``.

    Examples
    --------
    >>> plane_axes("TYX"), plane_axes("ZYX"), plane_axes("TZYX"), plane_axes("TZCYX")
    ('TYX', 'TYX', 'TCYX', None)
    """
    if "Z" not in axes:
        return axes
    free = [a for a in "TC" if a not in axes and not (a == "C" and "S" in axes)]
    if not free:
        return None
    return axes.replace("Z", free[0])


def file_spec(name: str, path: str) -> Spec:
    """The spec of the model file `path`, listed as `name`; an unreadable file says why."""
    from napari_deconvnet.core.persistence import model_info

    try:
        return model_spec(name, model_info(path), model=path)
    except (ValueError, OSError) as err:
        return Spec(
            "method",
            name,
            f"This model file cannot be read: {err}",
            params=MODEL_PARAMS,
            kind="model",
            extra={"model": path, "error": str(err)},
        )


def _shipped() -> dict[str, Spec]:
    """The shipped networks, an alias (``"default"``) listed once under its model's name.

    Models read by several names (an alias and its model) come first.
    """
    from napari_deconvnet.core.persistence import model_info

    specs = list_methods("model")
    groups: dict[str, list[str]] = {}
    for name in specs:
        key = json.dumps(model_info(name), sort_keys=True, default=str)
        groups.setdefault(key, []).append(name)
    shown = {group[-1]: len(group) > 1 for group in groups.values()}
    order = sorted(shown, key=lambda name: not shown[name])  # stable: aliased first
    return {name: specs[name] for name in order}


def method_catalogue() -> dict[str, Spec]:
    """The methods the Restore widget offers, by the name it shows, in its order.

    Returns
    -------
    dict of str to Spec
        The shipped networks, the model files registered in this session
        (``"<name> (model file)"`` if a method has their name),
        ``"Model file…"`` (:data:`BROWSE_SPEC`), then the classical methods
        of :func:`~napari_deconvnet.list_methods` whose packages are
        installed. Networks have ``kind == "model"`` and their model (a
        shipped name or a path) in ``spec.extra["model"]``.
    """
    out = _shipped()
    classical = list_methods("classical", models=False)
    for name, path in registry.registered_models().items():
        label = f"{name} (model file)" if name in out or name in classical else name
        out[label] = file_spec(label, path)
    out[BROWSE] = BROWSE_SPEC
    out.update(classical)
    return out


def preferred_method(
    methods: Mapping[str, Spec],
    *,
    spatial_ndim: int | None,
    psf_present: bool,
    psf_ndim: int | None = None,
) -> str | None:
    """The network that fits a layer and the viewer, among `methods`.

    A PSF layer in the viewer asks for deconvolution, else denoising; a
    volume (3 or more spatial dimensions: a time-lapse labelled ``t, y, x``
    has 2) with a PSF asks for a 3D network,
    anything else for a 2D one (plane by plane). The first network that fits
    is chosen, else the first network.

    Parameters
    ----------
    methods : dict of str to Spec
        :func:`method_catalogue`.
    spatial_ndim : int or None
        The layer's spatial dimensions (:func:`spatial_dims`: its Z, Y and X
        when its axis labels name them, else its dimensions without RGB
        samples); None: no layer.
    psf_present : bool
        Whether an image layer other than the input looks like a PSF.
    psf_ndim : int, optional
        That PSF's dimensions, where known: a plane's PSF beside a volume asks for
        the 2D network, plane by plane (``deconv-3d`` was chosen, and refused it).
    """
    models = [n for n, s in methods.items() if s.kind == "model" and "model" in s.extra]
    if not models:
        return next(iter(methods), None)
    volume_psf = psf_ndim is None or psf_ndim >= 3
    ndim = 3 if psf_present and (spatial_ndim or 0) >= 3 and volume_psf else 2
    for name in models:
        spec = methods[name]
        if spec.needs_psf == psf_present and spec.ndim == (ndim,):
            return name
    return models[0]


# ------------------------------------------------------------------- worker


def _spatial_shape(shape: tuple[int, ...], axes: str | None, ndim: int) -> tuple[int, ...]:
    """Sizes of the `ndim` spatial axes (Z, Y, X) of `axes` (the last `ndim` axes if None)."""
    if axes is None:
        return tuple(shape[-ndim:])
    return tuple(shape[axes.index(a)] for a in "ZYX"[3 - ndim :] if a in axes)


def restore_job(
    image: Any,
    method: str,
    *,
    kind: str,
    params: dict[str, Any],
    axes: str | None,
    ndim: int,
    psf: dict[str, Any] | None,
    device: str,
) -> Generator[tuple[int, int], None, dict[str, Any]]:
    """Worker body: build the PSF, run `method` on `image`, summarise.

    Parameters
    ----------
    image : array-like
        The layer's data (numpy, or lazy: dask, zarr...).
    method : str
        A method of :func:`~napari_deconvnet.list_methods` or a model file's path.
    kind : {"model", "classical"}
    params : dict
        The method's parameters, checked by its spec.
    axes : str or None
        One letter per dimension, as :func:`run_method_iter` takes them (None:
        its default: the last two axes for a classical method, inferred for a
        network).
    ndim : int
        Dimensions of a generated PSF when its kind does not fix them.
    psf : dict or None
        What :meth:`PsfPicker.spec <napari_deconvnet.widgets._psf.PsfPicker.spec>` gives.
    device : str

    Yields
    ------
    (done, total)
        The core's progress; ``(0, 0)`` while busy on work whose length is unknown.

    Returns
    -------
    dict
        ``data`` (float32; lazy for lazy input, computed where napari shows
        it), ``lazy``, ``seconds``, ``psf`` (its record), ``kernel``,
        ``axes`` (inferred for a network when None), ``model_name`` (the
        network's own name; None for other methods), ``device``, ``precision``
        (what a network ran in, ``"auto"`` resolved; None for other methods) and
        ``contrast_limits`` (None: the source's), ``conditions`` (why the
        image is unlike the model's training data; empty when it is not) and
        ``psf_notes`` (what was done to the PSF: a measured crop's background
        removed, a generated PSF cropped to the image; empty when nothing).
    """
    from napari_deconvnet.core.devices import resolve_device
    from napari_deconvnet.core.operations import run_method_iter

    start = time.perf_counter()
    kernel, record = None, None
    model_name = precision = None
    if kind == "model":
        from napari_deconvnet.core.devices import precision_name

        precision = precision_name(params.get("precision", "auto"), device)
        from napari_deconvnet.core.axes import infer_axes
        from napari_deconvnet.core.persistence import model_info

        # the header only, before the run: a model file moved or deleted while it ran
        # (read already) threw the finished result away (session 70)
        info = model_info(method)
        model_name = (info.get("metadata") or {}).get("name", method)
        if axes is None:
            try:
                inferred = infer_axes(image.shape, int(info["config"]["ndim"]))
            except ValueError:  # (the run says why, in its own words)
                inferred = None
    lazy = as_lazy(image)
    with collect_conditions() as psf_notes:  # a bead's background removed, a PSF cropped
        if psf is not None:
            k = psf_ndim(psf) or ndim
            if "C" in psf.get("axes", ""):  # a PSF layer with one PSF per channel
                kernel, record = build_channel_psfs(psf, axes, tuple(image.shape))
            else:
                # (a (1, Y, X) layer stays one plane deep for a 3D model or '3D volume')
                wanted = max(k, ndim) if "layer" in psf else k
                kernel, record = build_psf(psf, wanted, _spatial_shape(image.shape, axes, k))
    with collect_conditions() as conditions:  # shown as one notification, not a warning
        result = yield from run_method_iter(
            image if lazy is None else lazy, method, psf=kernel, axes=axes, device=device, **params
        )
    if kind == "model" and axes is None:
        axes = inferred  # (the run's own axes stay None: as run_method_iter was given)
    return {
        "data": result,
        "lazy": lazy is not None,
        "seconds": time.perf_counter() - start,
        "psf": record,
        "kernel": kernel,
        "axes": axes,
        "model_name": model_name,
        "device": str(resolve_device(device)),
        "precision": precision,
        # lazy: the source's limits (computing them would compute the whole result)
        "contrast_limits": None if lazy is not None else contrast_limits(result),
        # a trained model restoring data unlike its training data (core/conditions.py)
        "conditions": list(conditions),
        # what was done to the PSF it was given (core.psf.remove_pedestal)
        "psf_notes": list(psf_notes),
    }
