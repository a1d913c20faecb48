"""The Quality dock widget: SSIM map overlay, mean SSIM and PSNR of a result.

The SSIM map of a result layer against a reference layer is added as an
overlay layer ``"SSIM <result> vs <reference>"`` (the reversed magma colormap
over [0, 1], so that poorly restored regions glow, additive blending, partial
opacity, the result's geometry). Mean SSIM and PSNR are shown in the widget
and stored in the layer's metadata. A volume or time series is measured per
slice or per volume with :func:`napari_deconvnet.measure_iter`, whose
parameters (:data:`~napari_deconvnet.core.measurement.PARAMS`) the widget
shows, so that its numbers are those of ``napari-deconvnet evaluate``; or on
the current slice only, followed as the sliders move. More result layers (a
noisy input, a classical method, the network...) can be compared against
the same reference in a table.

By default the result is the most recently restored layer and the reference
another layer: one named like clean, ground truth, reference or gt, or a
sample's clean layer.

Measuring runs in a napari worker (the shared
:class:`~napari_deconvnet.widgets._worker.WorkerWidget`) with a progress bar
and Cancel; the SSIM layer is added with the widgets' one ``add_result``.
torch and the core's compute are imported inside the callbacks, never at module top.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Generator
from functools import partial
from typing import Any

import napari
import napari.viewer
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, Select, Table
from napari.layers import Image
from napari.utils.notifications import show_error

from napari_deconvnet.core.provenance import layer_metadata, record
from napari_deconvnet.io.colormaps import ssim_colormap

from ._layers import add_result, follow_layers, geometry, image_layers, keep_selection, layer_data
from ._worker import Job, WorkerWidget

__all__ = ["QualityWidget", "measure"]

# the choices of core.measurement's "per" parameter, and this widget's own "current slice"
CURRENT, AUTO, PLANES, VOLUME = "current slice", "auto", "slice", "volume"
OVERLAY = {"blending": "additive", "opacity": 0.7, "contrast_limits": (0.0, 1.0)}


def _notify(message: str) -> None:
    """napari's notification (looked up when called, so that tests can catch it)."""
    show_error(message)


_REFERENCE_NAME = re.compile(r"(^|[^a-z])(clean|ground[ _-]?truth|reference|gt)([^a-z]|$)")


def _record(layer: Image) -> dict[str, Any]:
    from napari_deconvnet.core.provenance import of

    return of(layer.metadata)


def is_ssim_map(layer: Image) -> bool:
    """Whether `layer` is an SSIM map made by this widget."""
    return "ssim" in _record(layer)


def is_restored(layer: Image) -> bool:
    """Whether `layer` holds a restoration result (its provenance names a method or model)."""
    rec = _record(layer)
    return rec.get("operation") == "restore" or "model" in rec or "method" in rec


def looks_like_reference(layer: Image) -> bool:
    """Whether `layer` is a sample's clean layer, or is named like clean, ground truth, gt...

    Never a layer the Noise widget degraded or a restore made (their
    provenance says so): the Noise widget names its result after its source,
    so "clean noisy (gaussian)" was taken for the reference.
    """
    rec = _record(layer)
    if rec.get("operation") == "synthesize" or is_restored(layer):
        return False
    return bool(rec.get("clean")) or bool(_REFERENCE_NAME.search(layer.name.lower()))


def layer_axes(layer: Image) -> str | None:
    """The ``axes`` of :func:`napari_deconvnet.measure` for `layer`: its axis labels when they
    are letters of ``TZCYX`` (plus S for RGB), else None (guessed from the shape)."""
    labels = [str(label).upper() for label in getattr(layer, "axis_labels", ())]
    axes = "".join(labels) + ("S" if layer.rgb else "")
    ndim = layer_data(layer).ndim
    if len(axes) != ndim or len(set(axes)) != ndim or not set(axes) <= set("TZCYXS"):
        return None
    return axes


def measure(
    result: Any,
    reference: Any,
    others: list[Any] = (),
    *,
    data_range: float | None = None,
    scope: str = AUTO,
    index: tuple[int, ...] = (),
    rgb: bool = False,
    axes: str | None = None,
    names: list[str] | None = None,
) -> Generator[tuple[int, int], None, dict[str, Any]]:
    """Worker body: :func:`napari_deconvnet.measure_iter` of `result` and of each of `others`.

    Parameters
    ----------
    result, reference : array-like of equal shape
        Layer data (numpy or dask).
    others : list of array-like
        More results compared against `reference` (means only, no map).
    data_range : float, optional
        None: the rule of :func:`napari_deconvnet.measure` (over the whole
        reference, so that every slice is measured on the same scale).
    scope : {"auto", "slice", "volume", "current slice"}
        The ``per`` of :func:`napari_deconvnet.measure`, or the 2D plane at
        `index` only.
    index : tuple of int
        Indices of the leading axes of the current slice.
    rgb : bool
        The last axis holds RGB(A) samples: SSIM per sample, and the map is
        their mean.
    axes : str, optional
        The layer's axes (None: guessed from its shape).
    names : list of str, optional
        The layers' names, `result`'s and `others`', for an error about one of `others`.

    Returns
    -------
    dict
        ``map`` (float32, the shape of the measured part, without RGB axis),
        ``ssim``, ``psnr``, ``data_range``, ``per``, ``axes``, ``measurement``
        (the :class:`~napari_deconvnet.Measurement` of `result`) and ``rows``:
        ``(ssim, psnr)`` of `result` and of each of `others`.
    """
    from napari_deconvnet.core.data_range import check_data_range
    from napari_deconvnet.core.measurement import measure_iter

    per = scope
    if scope == CURRENT:
        if data_range is None:  # the whole reference's (its channel's), not the plane's
            from napari_deconvnet.core.measurement import channel_ranges

            ranges = channel_ranges(reference, axes) if axes else None
            at = axes.index("C") if ranges is not None else None
            if ranges is not None and at < len(index):
                data_range = ranges[index[at]]
            else:
                data_range = check_data_range(None, reference)
        result, reference = result[tuple(index)], reference[tuple(index)]
        others = [image[tuple(index)] for image in others]
        axes, per = ("YXS" if rgb else "YX"), PLANES
    images = [result, *others]
    found = []
    for n, image in enumerate(images):
        steps = measure_iter(
            image, reference, axes=axes, per=per, data_range=data_range, full=n == 0
        )
        while True:
            try:
                done, total = next(steps)
            except StopIteration as stop:
                found.append(stop.value)
                data_range = stop.value.data_range  # computed once for all
                break
            except (ValueError, TypeError) as err:
                if n == 0 or not names:
                    raise
                # an "Also compare" layer's problem, named (it was blamed on the result)
                raise type(err)(
                    f"{names[n]!r} (in 'Also compare'): "
                    + str(err)
                    .replace("x (the result)", "it")
                    .replace("the result contains", "it contains")
                ) from err
            yield n * total + done, total * len(images)
    first = found[0]
    smap = first.ssim_map
    if "S" in first.axes:
        smap = smap.mean(axis=first.axes.index("S"))
    return {
        "map": smap,
        "ssim": first.ssim,
        "psnr": first.psnr,
        "data_range": first.data_range,
        "per": first.per,
        "axes": first.axes,
        "measurement": first,
        "rows": [(m.ssim, m.psnr) for m in found],
    }


class QualityWidget(WorkerWidget):
    """Compare a result layer with a reference: SSIM map overlay, mean SSIM and PSNR.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose image layers are offered and which receives the
        SSIM layer.

    Attributes
    ----------
    result, reference, auto_range, data_range, scope, others : magicgui widgets
        The inputs. ``scope`` is shown for layers with more than two spatial
        dimensions; ``data_range`` when ``auto_range`` is off.
    run_button, cancel_button, progress, status, table : magicgui widgets
        ``run_button`` ("Measure", also ``compute_button``) starts
        :meth:`compute`; ``status`` shows the mean SSIM and PSNR; ``table``
        one row per compared layer.
    worker : napari worker or None
        The running measurement, if any.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer, title="Quality", run_text="Measure", notify=_notify)
        self._follow: dict[str, Any] | None = None  # the pair whose slice is followed
        self._pending = False  # the slice moved while measuring: measure again after
        self._auto: tuple[Any, Any] = (None, None)  # the layers we chose, not the user

        self.result = ComboBox(label="Result", choices=self._image_layers)
        # empty (None) when there is no other layer: never the result itself
        self.reference = ComboBox(label="Reference", choices=self._image_layers, nullable=True)
        from napari_deconvnet.core.measurement import PARAMS

        params = {p.name: p for p in PARAMS}  # the same parameters as `evaluate`'s
        span, per = params["data_range"], params["per"]
        self.auto_range = CheckBox(text=f"Auto {span.label.lower()}", value=span.default is None)
        self.auto_range.tooltip = span.help
        self.data_range = FloatSpinBox(
            label=span.label, value=1.0, min=span.low or 0.0, max=1e12, step=0.1, visible=False
        )
        with contextlib.suppress(AttributeError):
            self.data_range.native.setDecimals(6)
        self.data_range.tooltip = span.help
        self.scope = ComboBox(
            label=per.label, choices=[*per.choices, CURRENT], value=per.default, visible=False
        )
        self.scope.tooltip = (
            f"{per.help}. current slice: 2D SSIM of the plane shown, updated as the sliders move"
        )
        self.others = Select(label="Also compare", choices=self._result_layers)
        self.others.tooltip = "More results to compare against the same reference (table)"
        with contextlib.suppress(AttributeError):
            self.others.native.setMaximumHeight(110)
        self.compute_button = self.run_button  # its former name
        self.table = Table(value={"data": [], "columns": ["SSIM", "PSNR (dB)"]}, visible=False)
        self.extend(
            [
                self.result,
                self.reference,
                self.auto_range,
                self.data_range,
                self.scope,
                self.others,
                *self.controls(),
                self.table,
            ]
        )
        self.auto_range.changed.connect(self._update_visibility)
        self.result.changed.connect(self._update_visibility)
        follow_layers(self, viewer)
        viewer.dims.events.current_step.connect(self._on_step)
        self._auto = (self.result.value, self.reference.value)  # magicgui's first choices
        self.reset_choices()
        self._update_visibility()

    # ------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return image_layers(self._viewer)

    def _result_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        """Image layers that are not SSIM maps made by this widget."""
        return [(name, layer) for name, layer in self._image_layers() if not is_ssim_map(layer)]

    def default_pair(self, result: Image | None = None) -> tuple[Image | None, Image | None]:
        """The result and reference chosen when the user has not chosen.

        The result is the most recently added restored layer (else `result`,
        else the first image layer that looks neither like a reference nor like
        a PSF, else the first); the reference another layer of the same
        shape named like clean, ground truth, reference or gt, or a sample's
        clean layer; else another layer. Never the result itself: with no
        other layer the reference is None (left empty).
        """
        layers = [layer for _, layer in self._result_layers()]
        if not layers:
            return None, None
        restored = [layer for layer in layers if is_restored(layer)]
        if result is None or result not in layers:
            # else a layer that is neither a reference (clean, gt) nor a PSF, when one is
            from ._psf import looks_like_psf

            plain = [
                layer for layer in layers
                if not looks_like_reference(layer) and not looks_like_psf(layer)
            ]  # fmt: skip
            result = restored[-1] if restored else (plain or layers)[0]
        shape = layer_data(result).shape
        others = [layer for layer in layers if layer is not result]
        fits = [layer for layer in others if layer_data(layer).shape == shape]
        for group in (fits, others):
            named = [layer for layer in group if looks_like_reference(layer)]
            plain = [layer for layer in group if not is_restored(layer)]
            for candidates in (named, plain, group):
                if candidates:
                    return result, candidates[0]
        return result, None

    def reset_choices(self, *_: Any) -> None:
        """Re-read the image layers; choices the user made stay on the same layers.

        Selections this widget made (see :meth:`default_pair`) follow the
        layers as they come and go.
        """
        current = (self.result.value, self.reference.value)
        others = list(self.others.value)
        super().reset_choices()
        choices = self._image_layers()
        keep_selection(self.result, choices, current[0])
        keep_selection(self.reference, choices, current[1])
        # a choice whose layer was deleted is no choice any more
        alive_choice = [any(value is layer for _, layer in choices) for value in current]
        chosen_result = alive_choice[0] and current[0] is not self._auto[0]
        chosen_reference = alive_choice[1] and current[1] is not self._auto[1]
        result, reference = self.default_pair(self.result.value if chosen_result else None)
        if not chosen_result and result is not None:
            self.result.value = result
        if not chosen_reference:
            self.reference.value = reference  # None (empty) when there is no other layer
        self._auto = (
            None if chosen_result else self.result.value,
            None if chosen_reference else self.reference.value,
        )
        alive = [layer for layer in others if any(layer is c for _, c in self._result_layers())]
        with contextlib.suppress(ValueError):
            self.others.value = alive

    def _update_visibility(self, *_: Any) -> None:
        self.data_range.visible = not self.auto_range.value
        layer = self.result.value
        spatial = 0 if layer is None else layer_data(layer).ndim - (1 if layer.rgb else 0)
        self.scope.visible = spatial > 2

    # ------------------------------------------------------------ inputs

    def _current_index(self, layer: Image, k: int) -> tuple[int, ...]:
        """Indices of `layer`'s leading axes at napari's current slice."""
        data = layer_data(layer)
        spatial = data.ndim - (1 if layer.rgb else 0)
        n_lead = max(spatial - k, 0)
        point = layer.world_to_data(self._viewer.dims.point)
        point = list(point)[-spatial:] if len(point) >= spatial else [0] * spatial
        return tuple(
            int(min(max(round(float(point[i])), 0), data.shape[i] - 1)) for i in range(n_lead)
        )

    def prepare(self) -> Job:
        """Check the form (GUI thread) and describe the measurement to run."""
        result, reference = self.result.value, self.reference.value
        if result is None or reference is None:
            raise ValueError("choose a result and a reference layer (add two image layers first)")
        if result is reference:
            raise ValueError(
                f"the reference must be another layer than the result ({result.name!r}); "
                "add or choose the clean image to compare it with"
            )
        a, b = layer_data(result), layer_data(reference)
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(
                f"result {result.name!r} has shape {tuple(a.shape)} but reference "
                f"{reference.name!r} has shape {tuple(b.shape)}; they must match"
            )
        others = [layer for layer in self.others.value if layer is not result]
        for layer in others:
            if tuple(layer_data(layer).shape) != tuple(b.shape):
                raise ValueError(
                    f"{layer.name!r} has shape {tuple(layer_data(layer).shape)}, not the "
                    f"reference's {tuple(b.shape)}; leave it out of 'Also compare'"
                )
        data_range = None
        if not self.auto_range.value:
            from napari_deconvnet.core.data_range import check_data_range

            data_range = check_data_range(float(self.data_range.value), None)
        spatial = a.ndim - (1 if result.rgb else 0)
        scope = self.scope.value if spatial > 2 else AUTO
        index = self._current_index(result, 2) if scope == CURRENT else ()
        pair = {"result": result, "reference": reference, "others": others}
        return Job(
            measure,
            (a, b, [layer_data(layer) for layer in others]),
            {
                "data_range": data_range,
                "scope": scope,
                "index": index,
                "rgb": bool(result.rgb),
                "axes": layer_axes(result),
                "names": [result.name, *(layer.name for layer in others)],
            },
            message=f"measuring {result.name!r} against {reference.name!r}...",
            failure=f"Quality: measuring {result.name!r} failed",
            done=partial(self._show, {**pair, "scope": scope, "index": index}),
            # (session 73: deleting the reference left the map "vs" a layer gone)
            source=(result, reference, *others),
        )

    # ------------------------------------------------------------ run

    def run(self) -> None:
        """Measure the chosen pair (the Measure button): :meth:`compute`."""
        self.compute()

    def compute(self) -> None:
        """Measure the chosen pair (and the other layers) in a worker thread.

        Called while a measurement runs (the slice moved), it measures again
        once that one has ended.
        """
        if self.worker is not None:
            self._pending = True
            return
        self._pending = False
        worker = self.submit(self.prepare)
        if worker is not None:  # connected after the base's: its thread is over by then
            worker.finished.connect(partial(self._on_ended, worker))

    def _on_ended(self, worker: Any) -> None:
        pending, self._pending = self._pending, False
        if pending and not worker.abort_requested:
            self.compute()  # the slice moved while measuring: measure the new one

    def close_workers(self) -> None:
        """The widget is closing: stop measuring and stop following the sliders."""
        super().close_workers()
        self._disconnect_dims()

    def _disconnect_dims(self, *_: Any) -> None:
        with contextlib.suppress(Exception):
            self._viewer.dims.events.current_step.disconnect(self._on_step)

    def _on_step(self, *_: Any) -> None:
        """Follow napari's current slice with the SSIM layer of the last "current slice" run."""
        follow = self._follow
        if follow is None or self.scope.value != CURRENT:
            return
        if any(follow[k] not in self._viewer.layers for k in ("layer", "result", "reference")):
            # (the overlay, or a layer it measured, removed: the next slice was measured
            # with whatever else was chosen, an error notification on each step, session 70)
            self._follow = None
            return
        if self._current_index(follow["result"], 2) != follow["index"]:
            self.compute()

    # ----------------------------------------------------- worker result

    def _show(self, job: dict[str, Any], out: dict[str, Any]) -> str:
        """Add (or update) the SSIM layer and the table; return the status line."""
        result, reference, index = job["result"], job["reference"], job["index"]
        name = f"SSIM {result.name} vs {reference.name}"
        smap = out["map"]
        translate = np.array(result.translate, dtype=float)
        if job["scope"] == CURRENT and index:
            # a plane pinned at the current slice: leading axes of size 1, shifted there
            n_lead = len(index)
            smap = smap.reshape((1,) * n_lead + smap.shape)
            scale = np.asarray(result.scale, dtype=float)
            translate[:n_lead] += np.asarray(index) * scale[:n_lead]
        rec = record(
            "measure",
            ssim=out["ssim"],
            psnr=out["psnr"],
            data_range=out["data_range"],
            per=out["per"],
            axes=out["axes"],
            result=result.name,
            reference=reference.name,
            scope=job["scope"],
            index=list(index),
            compared={
                layer.name: {"ssim": s, "psnr": p}
                for layer, (s, p) in zip([result, *job["others"]], out["rows"], strict=True)
            },
        )
        layer = self._existing_overlay(name)
        if layer is not None and layer.data.shape == smap.shape:
            layer.data = smap
            # the result's geometry as it is now (only its translate was followed: a
            # result rescaled or rotated since kept the overlay where it was)
            for key, value in geometry(result).items():
                if key != "translate":
                    setattr(layer, key, value)
            layer.translate = translate
            layer.metadata = layer_metadata(rec)
        else:
            if layer is not None:
                self._viewer.layers.remove(layer)
            layer = add_result(
                self._viewer,
                smap,
                like=result,
                name=name,
                record=rec,
                limits=OVERLAY["contrast_limits"],
                rgb=False,
                colormap=ssim_colormap(),
                blending=OVERLAY["blending"],
                opacity=OVERLAY["opacity"],
                translate=translate,
            )
        self._follow = (
            {"layer": layer, "result": result, "reference": job["reference"], "index": index}
            if job["scope"] == CURRENT and index
            else None
        )
        rows = [[round(s, 4), round(p, 2)] for s, p in out["rows"]]
        names = [result.name, *(other.name for other in job["others"])]
        self.table.value = {"data": rows, "index": names, "columns": ["SSIM", "PSNR (dB)"]}
        self.table.visible = True
        where = f" at slice {index}" if index else ""
        return f"SSIM {out['ssim']:.4f} · PSNR {out['psnr']:.2f} dB{where}"

    def _existing_overlay(self, name: str) -> Image | None:
        if name not in self._viewer.layers:
            return None
        layer = self._viewer.layers[name]
        if isinstance(layer, Image) and is_ssim_map(layer):
            return layer
        return None
