"""The Train widget's form, read and checked on the GUI thread: the arguments of a job.

:func:`collect_training` gathers :func:`napari_deconvnet.train`'s arguments
from the Train widget's fields; :func:`collect_adapt` those of
:func:`napari_deconvnet.core.adapt.adapt_iter`. Bad settings raise a
ValueError that says what to change (the widget shows it as a notification).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.layers import Image, Labels, Shapes

from ._layers import clean_layer_for, layer_data
from ._train_adapt import check_adapt_model
from ._train_form import KEEP_CHOICES, NEW_NETWORK, SELF_SUPERVISED, SELF_SUPERVISION, SYNTHETIC
from ._train_regions import labels_to_mask, shapes_to_polygons

__all__ = ["collect_adapt", "collect_training", "start_needs_psf"]


def start_needs_psf(start: Any) -> bool:
    """Whether the *Start from* choice is a deconvolution model (False when unknown)."""
    if start is None or start == NEW_NETWORK:
        return False
    from napari_deconvnet.core.kinds import kind_of
    from napari_deconvnet.core.persistence import model_info
    from napari_deconvnet.io import registry

    try:
        info = model_info(registry.resolve(start))
    except (ValueError, TypeError, OSError, KeyError):
        return False
    return bool(kind_of(info.get("metadata") or {}).needs_psf)


def _per_channel_psfs(options: dict[str, Any], layer: Any, data: Any) -> None:
    """A PSF layer with a ``C`` axis (one PSF per channel, :mod:`~napari_deconvnet.core.
    channel_psfs`): the image's axes go to the engine (each channel trains with its own
    PSF) and to the job, which builds the PSFs there (``_train_job._with_psf``)."""
    described = options.get("psf_description")
    if described is None or "C" not in described["psf"].get("axes", ""):
        return
    from ._methods import labelled_axes

    axes = labelled_axes(layer)
    described.update(image_axes=axes, image_shape=tuple(data.shape))
    if axes is not None:  # (no C: build_channel_psfs says what to do)
        options["axes"] = axes


def _channel_axes(layer: Any) -> str | None:
    """The layer's labelled axes when they name a channel axis (``"ZCYX"``...), else None."""
    if layer.rgb:
        return None
    from ._methods import labelled_axes

    axes = labelled_axes(layer)
    return axes if axes is not None and "C" in axes else None


def _spatial_shape(layer: Any, data: Any, net_ndim: int) -> tuple[int, ...]:
    """The shape of the `net_ndim` spatial axes the network trains on: the last ones, before
    an RGB layer's colour axis, or the Z, Y and X that a layer's labels name beside a
    channel axis (a z, c, y, x layer's (C, Y, X) was taken for a volume)."""
    shape = tuple(int(n) for n in data.shape)
    if layer.rgb:
        return shape[-net_ndim - 1 : -1]
    axes = _channel_axes(layer)
    if axes is not None:
        return tuple(shape[axes.index(a)] for a in "ZYX"[3 - net_ndim :] if a in axes)
    return shape[-net_ndim:]


def _polygons_without_channel(polygons: list, axes: str | None) -> list:
    """Shapes drawn over a layer with a channel axis: their channel coordinate left out
    (each channel trains as an image of its own, and a region applies to all alike)."""
    if axes is None:
        return polygons
    out = []
    for p in polygons:
        p = np.asarray(p)
        at = axes.index("C") - (len(axes) - p.shape[1])  # the column of C, if p has one
        out.append(np.delete(p, at, axis=1) if 0 <= at < p.shape[1] else p)
    return out


def _no_z(layer: Any, net_ndim: int) -> None:
    """Refuse a 3D network on a layer whose axis labels name no Z (a time-lapse): its
    frames would train as the planes of a volume (Restore refuses the same)."""
    if net_ndim != 3:
        return
    from ._methods import labelled_axes

    axes = labelled_axes(layer)
    if axes is not None and "Z" not in axes:
        raise ValueError(
            f"a 3D network needs a Z axis but {layer.name!r} has none (its axis labels are "
            f"{axes!r}); choose Network 2D to train on its frames as samples"
        )


def collect_training(widget: Any) -> dict[str, Any]:
    """Validate the form and gather the engine's arguments (GUI thread)."""
    layer = widget.image.value
    if layer is None:
        raise ValueError("there is no image layer to train on; open or add an image first")
    data = layer_data(layer)
    net_ndim = 3 if widget.dims.value == "3D" else 2
    if layer.rgb and net_ndim == 3:
        raise ValueError(f"{layer.name!r} is an RGB layer; train a 2D network on it")
    _no_z(layer, net_ndim)
    target = widget.target.value
    options: dict[str, Any] = {
        "patch_size": int(widget.patch_size.value) or None,
        "batch_size": int(widget.batch_size.value),
        "epochs": int(widget.epochs.value) or None,
        "max_seconds": float(widget.max_seconds.value) or None,
        "loss": widget.loss.value,
        "device": widget.device.value,
    }
    if layer.rgb:  # one shared network over the colour channels, as restore applies it
        options["axes"] = "YXS" if data.ndim == 3 else "TYXS"
    channel_axes = _channel_axes(layer)
    if channel_axes is not None:
        # channels as channels, as Restore passes them (a z, c, y, x layer trained its
        # channels as the planes of 2-plane volumes)
        options["axes"] = channel_axes
    spatial = _spatial_shape(layer, data, net_ndim)
    if options["epochs"] is None and options["max_seconds"] is None:
        raise ValueError("set a number of epochs or a time budget (or both)")
    targets = None
    if target == SELF_SUPERVISED:
        chosen = SELF_SUPERVISION.get(widget.self_supervision.value)
        if chosen is not None:  # else the engine's default for a new or a fine-tuned model
            options["blind_spot"] = chosen
    if target == SYNTHETIC:
        options.update(widget.synthetic.options(net_ndim, spatial))
    elif isinstance(target, Image):
        if target is layer:
            raise ValueError("the target is the input layer; choose a clean layer or 'none'")
        targets = layer_data(target)
        if tuple(targets.shape) != tuple(data.shape) or bool(target.rgb) != bool(layer.rgb):
            # (checked here, before anything runs: the worker refused it after the run's
            # autosave folder was made, session 69)
            raise ValueError(
                f"the target {target.name!r} (shape {tuple(targets.shape)}"
                f"{', RGB' if target.rgb else ''}) does not pair with the input {layer.name!r} "
                f"(shape {tuple(data.shape)}{', RGB' if layer.rgb else ''}); a clean layer "
                "of the input's shape is its target"
            )
    start = widget.start_from.value
    if start_needs_psf(start):
        if target is None or (target != SYNTHETIC and not isinstance(target, Image)):
            raise ValueError(
                f"{start!r} is a deconvolution model: fine-tune it on a sharp target layer "
                "(with the PSF the input is blurred with) or on synthetic pairs, not "
                "self-supervised"
            )
        if isinstance(target, Image):
            described = widget.pair_psf.spec(f"fine-tuning {start!r}")
            if described is None:
                raise ValueError(
                    f"{start!r} deconvolves with the input's PSF: choose the PSF the input "
                    "layer is blurred with (Pairs' PSF)"
                )
            options["psf_description"] = {"psf": described, "ndim": net_ndim, "spatial": spatial}
        elif "psf_description" not in options:
            raise ValueError(
                f"{start!r} deconvolves: synthetic pairs for it need a PSF; choose one"
            )
    _per_channel_psfs(options, layer, data)
    if start == NEW_NETWORK:
        options["network"] = {"ndim": net_ndim}
    else:
        from napari_deconvnet.core.persistence import model_info
        from napari_deconvnet.io import registry

        model = registry.resolve(start)
        if model_info(model)["config"]["ndim"] != net_ndim:
            raise ValueError(
                f"model {start!r} is not a {net_ndim}D model; choose a {net_ndim}D model, "
                "a new network, or the other network dimensionality"
            )
        options["model"] = model
        from napari_deconvnet.core.train_setup import KEEP

        options.update(KEEP[KEEP_CHOICES[widget.keep.value]])  # L2-SP and rehearsal
    if widget.regions.value is not None:
        polygons = shapes_to_polygons(widget.regions.value, layer)
        options["regions"] = _polygons_without_channel(polygons, channel_axes)
    region = widget.validation_region.value
    if isinstance(region, Shapes):
        polygons = shapes_to_polygons(region, layer)
        options["validation_regions"] = _polygons_without_channel(polygons, channel_axes)
    elif isinstance(region, Labels):
        mask = labels_to_mask(region, layer, data)
        if not mask.any():
            raise ValueError(
                f"labels layer {region.name!r} marks no pixel of {layer.name!r}; paint the "
                "validation area (any label) over the input"
            )
        options["validation_regions"] = mask
    options["name"] = f"{layer.name}-{net_ndim}d"
    inputs, targets = _with_more_layers(widget, layer, data, targets, options)
    return {
        "layer": layer,
        "data": inputs,
        "targets": targets,
        "options": options,
        "net_ndim": net_ndim,
    }


def _with_more_layers(
    widget: Any, layer: Image, data: Any, targets: Any, options: dict[str, Any]
) -> tuple[Any, Any]:
    """The inputs (and targets) with the layers of *Also train on*: one list each, and
    the regions given for the input layer only (the others: every pixel).

    A supervised run pairs each further layer with the clean-looking layer of its
    shape named most like it (:func:`~._layers.closest_layer`), never one that is
    itself an input.

    Raises
    ------
    ValueError
        A further layer of other dimensions (or RGB beside grey), or, supervised,
        without a clean layer of its shape.
    """
    more = [m for m in (widget.more.value or []) if m is not layer]
    if not more:
        return data, targets
    inputs = [data]
    for extra in more:
        _no_z(extra, 3 if widget.dims.value == "3D" else 2)
        extra_data = layer_data(extra)
        if extra_data.ndim != data.ndim or bool(extra.rgb) != bool(layer.rgb):
            raise ValueError(
                f"{extra.name!r} (shape {tuple(extra_data.shape)}) cannot train with "
                f"{layer.name!r} (shape {tuple(data.shape)}): the layers trained together "
                "need the same number of dimensions (and RGB or not alike)"
            )
        if _channel_axes(extra) != _channel_axes(layer):
            # the input's axes go to training for all (a c, z, y, x layer beside a z, c,
            # y, x input was split into 12 "channels" of 2-plane volumes)
            def named(a: Any) -> str:
                return repr(_channel_axes(a)) if _channel_axes(a) else "no channel axis"

            raise ValueError(
                f"{extra.name!r} ({named(extra)}) cannot train with {layer.name!r} "
                f"({named(layer)}): the layers trained together need the same axis labels "
                "when one has a channel axis; relabel them alike, or train them apart"
            )
        inputs.append(extra_data)
    if targets is not None:
        used = [layer, widget.target.value, *more]  # never a target twice, nor an input
        paired = [targets]
        for extra, extra_data in zip(more, inputs[1:], strict=True):
            clean = clean_layer_for(extra, list(widget.image.choices), exclude=used)
            if clean is None:
                raise ValueError(
                    f"no clean layer of the shape of {extra.name!r} {tuple(extra_data.shape)} "
                    "to train it against (supervised: each layer of 'Also train on' needs "
                    "one, named like it and like clean, ground truth or gt); add it, or "
                    "train that layer self-supervised"
                )
            used.append(clean)
            paired.append(layer_data(clean))
        targets = paired
    # the shapes were drawn on the input layer: the further layers train on every pixel
    # (None) and hold no validation ([]: no region; None there is "the whole image",
    # which held every further layer out of training)
    if "regions" in options:
        options["regions"] = [options["regions"]] + [None] * len(more)
    if "validation_regions" in options:
        options["validation_regions"] = [options["validation_regions"]] + [[]] * len(more)
    options["name"] = f"{layer.name}+{len(more)}-{options['name'].rsplit('-', 1)[-1]}"
    return inputs, targets


def collect_adapt(widget: Any) -> dict[str, Any]:
    """The adapt job's arguments (GUI thread): the model, the image and the options."""
    layer = widget.image.value
    if layer is None:
        raise ValueError("there is no image layer to adapt to; open or add an image first")
    if layer.rgb:
        raise ValueError(f"{layer.name!r} is an RGB layer; adapt works on one channel")
    data = layer_data(layer)
    net_ndim = 3 if widget.dims.value == "3D" else 2
    if data.ndim < net_ndim:
        raise ValueError(
            f"{layer.name!r} is {data.ndim}D; a {net_ndim}D network needs a {net_ndim}D layer"
        )
    _no_z(layer, net_ndim)
    start = widget.start_from.value
    if start == NEW_NETWORK:
        raise ValueError("adaptation fine-tunes a model; choose one in 'Start from'")
    from napari_deconvnet.io import registry

    model = registry.resolve(start)
    check_adapt_model(start, model, net_ndim)
    options = widget.adapt.options(net_ndim, _spatial_shape(layer, data, net_ndim))
    check_adapt_model(start, model, net_ndim, psf="psf_description" in options)
    if _channel_axes(layer) is not None:  # each channel adapts as an image of its own
        options["axes"] = _channel_axes(layer)
    _per_channel_psfs(options, layer, data)
    options.update(
        patch_size=int(widget.patch_size.value) or None,
        batch_size=int(widget.batch_size.value),
        device=widget.device.value,
    )
    # read in the worker (adapt_job): a lazy layer's chunks are not read on the GUI thread
    return {"layer": layer, "args": (model, data, options), "net_ndim": net_ndim}
