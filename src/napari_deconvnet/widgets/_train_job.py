"""The Train widget's worker bodies: the engine's events, thinned out for the GUI thread.

:func:`train_job` runs :func:`napari_deconvnet.train_iter` and
:func:`adapt_job` runs :func:`napari_deconvnet.core.adapt.adapt_iter` in a
napari worker thread; both go through one loop (:func:`gui_events`). It
yields a small copied summary of every ``"start"`` and ``"epoch"`` event
(with a preview of the current model on the region the user looks at) and
of a ``"step"`` event at most every :data:`STEP_SIGNAL_INTERVAL` seconds,
and returns the :class:`~napari_deconvnet.TrainResult`. The core is
imported inside the functions, so that opening napari stays fast.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["STEP_SIGNAL_INTERVAL", "adapt_job", "gui_events", "summary", "train_job"]

_logger = logging.getLogger(__name__)

#: Seconds between progress signals of training steps to the GUI thread.
STEP_SIGNAL_INTERVAL = 0.1


def summary(event: Any) -> dict[str, Any]:
    """What the GUI thread needs from a TrainEvent (copied: the engine goes on)."""
    return {
        "kind": event.kind,
        "step": event.step,
        "epoch": event.epoch,
        "progress": event.progress,
        "eta": event.eta,
        "elapsed": event.elapsed,
        "lr": event.lr,
        "train_loss": event.train_loss,
        "val_loss": event.val_loss,
        "metrics": dict(event.metrics),
        "history": [dict(h) for h in event.history],
    }


def preview(
    model: Any,
    data: Any,
    request: dict[str, Any],
    device: str,
    psf: Any = None,
    axes: str | None = None,
) -> np.ndarray | None:
    """The current model's output on the requested region (worker thread).

    A deconvolution model restores with `psf` (the run's PSF; with one PSF per
    channel, the one of the channel in view: `axes` names the ``C`` axis);
    others without.
    """
    from napari_deconvnet.core.channel_psfs import per_channel
    from napari_deconvnet.core.conditions import collect_conditions
    from napari_deconvnet.core.kinds import kind_of
    from napari_deconvnet.core.tiling import restore

    region = np.asarray(data[request["index"]], dtype=np.float32)
    psf = psf if kind_of(model).needs_psf else None
    if per_channel(psf):  # one PSF per channel: the viewed channel's
        psf = psf[request["index"][axes.index("C")]]
    # the model in training may carry an earlier run's conditions: no warning per preview
    with collect_conditions():
        out = restore(  # a copy: training goes on; an RGB layer's samples as restore reads them
            region, copy.deepcopy(model), psf=psf, device=device,
            axes="YXS" if request.get("rgb") else None,
        )  # fmt: skip
    if request["plane"] is not None:
        out = out[request["plane"]]
    return out


def _with_psf(options: dict[str, Any]) -> dict[str, Any]:
    """`options` with the PSF of a PSF picker's description built (worker thread).

    ``options["psf_description"]`` is ``{"psf": PsfPicker.spec(), "ndim": n,
    "spatial": shape}``, made on the GUI thread.
    """
    described = options.get("psf_description")
    options = {k: v for k, v in options.items() if k != "psf_description"}
    if described is not None:
        from ._psf import build_channel_psfs, build_psf

        if "image_axes" in described:  # a PSF layer of one PSF per channel
            shape = described["image_shape"]
            options["psf"] = build_channel_psfs(described["psf"], described["image_axes"], shape)[
                0
            ]
        else:
            spatial = described["spatial"]
            options["psf"] = build_psf(described["psf"], described["ndim"], spatial)[0]
    return options


def gui_events(
    gen: Any,
    device: str,
    preview_data: Any,
    preview_request: Callable[[], dict[str, Any] | None],
    psf: Any = None,
    axes: str | None = None,
):
    """Drain the engine's generator `gen`: yield summaries for the GUI, return its result.

    Every ``"start"`` and ``"epoch"`` event is yielded with a preview of the
    current model on ``preview_request()`` (if any); a ``"step"`` event at
    most every :data:`STEP_SIGNAL_INTERVAL` seconds. `psf`: the run's PSF, for
    the preview of a deconvolution model.
    """
    last = 0.0
    try:
        while True:
            event = next(gen)
            out = summary(event)
            if event.kind in ("start", "epoch"):
                request = preview_request()
                if request is not None:
                    try:
                        out["preview"] = preview(
                            event.model, preview_data, request, device, psf, axes
                        )
                        out["preview_request"] = request
                    except Exception as err:  # e.g. a slice too small; a preview
                        # never ends a training (an IndexError did, session 70)
                        _logger.info("no preview: %s", err, exc_info=True)
                yield out
            elif event.kind == "step" and time.perf_counter() - last > STEP_SIGNAL_INTERVAL:
                last = time.perf_counter()
                yield out
    except StopIteration as finished:
        return finished.value
    finally:
        gen.close()


def _events(gen: Any, options: dict[str, Any], preview_data: Any, preview_request: Any):
    """:func:`gui_events` of a job's generator, its previews with the run's device, PSF
    (or one per channel) and axes."""
    device, psf, axes = options["device"], options.get("psf"), options.get("axes")
    return (yield from gui_events(gen, device, preview_data, preview_request, psf, axes))


def train_job(
    inputs: Any,
    targets: Any,
    options: dict[str, Any],
    preview_data: Any,
    preview_request: Callable[[], dict[str, Any] | None],
):
    """Worker body: the engine's events, thinned out for the GUI, and the result.

    ``options`` are :func:`napari_deconvnet.train`'s, where
    ``psf_description`` (a :meth:`~._psf.PsfPicker.spec`) stands for the PSF
    of synthetic pairs; ``preview_request()`` is the region to preview now.
    """
    from napari_deconvnet.core.training import train_iter

    options = _with_psf(options)
    gen = train_iter(inputs, targets, **options)
    return (yield from _events(gen, options, preview_data, preview_request))


def adapt_job(
    model: Any,
    image: Any,
    options: dict[str, Any],
    preview_data: Any,
    preview_request: Callable[[], dict[str, Any] | None],
):
    """Worker body of *Adapt to this image*: :func:`adapt_iter`'s events and its result.

    ``options`` are :func:`~napari_deconvnet.core.adapt.adapt_iter`'s, where
    ``psf_description`` stands for the PSF (as in :func:`train_job`).
    """
    from napari_deconvnet.core.adapt import adapt_iter

    options = _with_psf(options)
    # a lazy layer is read here, not on the GUI thread; in its own dtype, which the model
    # records (a uint16 layer was recorded as float32)
    image = np.asarray(image)
    gen = adapt_iter(model, image, **options)
    return (yield from _events(gen, options, preview_data, preview_request))
