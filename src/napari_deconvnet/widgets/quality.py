"""The Quality dock widget: SSIM map overlay, mean SSIM and PSNR of a result.

The SSIM map of a result layer against a reference layer is added as an
overlay layer ``"SSIM <result> vs <reference>"`` (the reversed magma colormap
over [0, 1], so that poorly restored regions glow, additive blending, partial
opacity, the result's geometry). Mean SSIM and PSNR are shown in the widget
and stored in the layer's metadata. A volume or time series is measured on
the current slice (and followed as the sliders move), plane by plane, or in
3D. More result layers (a noisy input, a classical method, the network...)
can be compared against the same reference in a table.

torch and the core are imported inside the callbacks, never at module top.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Generator
from functools import partial
from typing import Any

import napari
import napari.viewer
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    Select,
    Table,
)
from napari.layers import Image
from napari.utils.notifications import show_error

from ._common import error_text, make_worker, reset_progress, show_progress
from ._layers import follow_layers, geometry, image_layers, keep_selection, layer_data

__all__ = ["QualityWidget", "measure"]

_logger = logging.getLogger(__name__)

CURRENT, PLANES, VOLUME = "current slice", "every slice (2D)", "whole volume (3D)"
SCOPES = (CURRENT, PLANES, VOLUME)
OVERLAY = {"blending": "additive", "opacity": 0.7, "contrast_limits": (0.0, 1.0)}


def ssim_colormap() -> Any:
    """Reversed magma: SSIM 1 is black (invisible when added), low SSIM glows."""
    from napari.utils.colormaps import Colormap, ensure_colormap

    magma = ensure_colormap("magma")
    return Colormap(colors=magma.colors[::-1], name="SSIM (bright = low)")


def _reference_range(reference: Any) -> float:
    """The documented default of :func:`napari_deconvnet.ssim`, over the whole reference."""
    dtype = np.dtype(reference.dtype)
    if dtype == np.uint8:
        return 255.0
    if dtype == np.bool_:
        return 1.0
    low, high = float(np.asarray(reference.min())), float(np.asarray(reference.max()))
    if not high > low:
        raise ValueError(
            f"the reference is constant (all values {low!r}), so the data range cannot be "
            "inferred; untick 'Auto data range' and give one"
        )
    return high - low


def measure(
    result: Any,
    reference: Any,
    others: list[Any] = (),
    *,
    data_range: float | None = None,
    scope: str = PLANES,
    index: tuple[int, ...] = (),
    rgb: bool = False,
) -> Generator[tuple[int, int], None, dict[str, Any]]:
    """Worker body: SSIM map, mean SSIM and PSNR, chunk by chunk, yielding progress.

    Parameters
    ----------
    result, reference : array-like of equal shape
        Layer data (numpy or dask).
    others : list of array-like
        More results compared against `reference` (means only, no map).
    data_range : float, optional
        None: the rule of :func:`napari_deconvnet.ssim` applied to the whole
        reference, so that every slice is measured on the same scale.
    scope : {"current slice", "every slice (2D)", "whole volume (3D)"}
        2D SSIM of the plane at `index`, of every plane, or 3D SSIM of the
        trailing three axes.
    index : tuple of int
        Indices of the leading axes of the current slice.
    rgb : bool
        The last axis holds RGB(A) samples: SSIM per sample, and the map is
        their mean.

    Returns
    -------
    dict
        ``map`` (float32, the shape of the measured part, without RGB axis),
        ``ssim``, ``psnr``, ``data_range`` and ``rows``: ``(ssim, psnr)`` of
        `result` and of each of `others`.
    """
    from napari_deconvnet.core.metrics import psnr, ssim

    if data_range is None:
        data_range = _reference_range(reference)
    spatial = reference.ndim - (1 if rgb else 0)
    k = min(3 if scope == VOLUME else 2, spatial)
    if scope == CURRENT:
        lead_index = [tuple(index)]
        lead_shape: tuple[int, ...] = ()
    else:
        lead_shape = tuple(reference.shape[: spatial - k])
        lead_index = list(np.ndindex(lead_shape))
    images = [result, *others]
    total = len(lead_index) * len(images)
    done = 0
    smap = None
    rows = []
    for n, image in enumerate(images):
        scores, sq_err, count = [], 0.0, 0
        for idx in lead_index:
            a, b = np.asarray(image[idx]), np.asarray(reference[idx])
            channel_axis = -1 if rgb else None
            if n == 0:
                score, chunk_map = ssim(
                    a, b, data_range=data_range, full=True, channel_axis=channel_axis
                )
                if rgb:
                    chunk_map = chunk_map.mean(axis=-1)
                if scope == CURRENT:
                    smap = chunk_map
                else:
                    if smap is None:
                        smap = np.empty(lead_shape + chunk_map.shape, np.float32)
                    smap[idx] = chunk_map
            else:
                score = ssim(a, b, data_range=data_range, channel_axis=channel_axis)
            scores.append(score)
            if len(lead_index) == 1:
                value = psnr(a, b, data_range=data_range)
            else:
                diff = a.astype(np.float64) - b.astype(np.float64)
                sq_err += float(np.sum(diff * diff))
                count += diff.size
            done += 1
            yield done, total
        if len(lead_index) > 1:
            value = math.inf if sq_err == 0 else 10 * math.log10(data_range**2 * count / sq_err)
        rows.append((float(np.mean(scores)), float(value)))
    return {
        "map": smap,
        "ssim": rows[0][0],
        "psnr": rows[0][1],
        "data_range": float(data_range),
        "rows": rows,
    }


class QualityWidget(Container):
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
    compute_button, progress, status, table : magicgui widgets
        ``status`` shows the mean SSIM and PSNR; ``table`` one row per
        compared layer.
    worker : napari worker or None
        The running measurement, if any.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self._viewer = viewer
        self.worker = None
        self._follow: dict[str, Any] | None = None  # the pair whose slice is followed
        self._pending = False

        self.result = ComboBox(label="Result", choices=self._image_layers)
        self.reference = ComboBox(label="Reference", choices=self._image_layers)
        self.auto_range = CheckBox(text="Auto data range", value=True)
        self.auto_range.tooltip = (
            "255 for 8-bit references, else the reference's max - min (over all its data)"
        )
        self.data_range = FloatSpinBox(
            label="Data range", value=1.0, min=0.0, max=1e12, step=0.1, visible=False
        )
        with contextlib.suppress(AttributeError):
            self.data_range.native.setDecimals(6)
        self.data_range.tooltip = "Span of possible intensities (max - min), e.g. 1.0 or 255"
        self.scope = ComboBox(label="Measure", choices=SCOPES, value=CURRENT, visible=False)
        self.scope.tooltip = (
            "current slice: 2D SSIM of the plane shown, updated as the sliders move; every "
            "slice: 2D SSIM of each plane; whole volume: 3D SSIM"
        )
        self.others = Select(label="Also compare", choices=self._result_layers)
        self.others.tooltip = "More results to compare against the same reference (table)"
        with contextlib.suppress(AttributeError):
            self.others.native.setMaximumHeight(110)
        self.compute_button = PushButton(text="Compute")
        self.progress = ProgressBar(label="Progress", value=0, min=0, max=1)
        self.status = Label(label="", value="")
        self.table = Table(value={"data": [], "columns": ["SSIM", "PSNR (dB)"]}, visible=False)
        self.extend(
            [
                self.result,
                self.reference,
                self.auto_range,
                self.data_range,
                self.scope,
                self.others,
                self.compute_button,
                self.progress,
                self.status,
                self.table,
            ]
        )
        self.auto_range.changed.connect(self._update_visibility)
        self.result.changed.connect(self._update_visibility)
        self.compute_button.changed.connect(self.compute)
        follow_layers(self, viewer)
        viewer.dims.events.current_step.connect(self._on_step)
        self.native.destroyed.connect(self._disconnect_dims)
        self.reset_choices()
        self._update_visibility()

    # ------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return image_layers(self._viewer)

    def _result_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        """Image layers that are not SSIM maps made by this widget."""
        return [
            (name, layer)
            for name, layer in self._image_layers()
            if "ssim" not in layer.metadata.get("napari_deconvnet", {})
        ]

    def reset_choices(self, *_: Any) -> None:
        """Re-read the image layers; the selections stay on the same layers."""
        current = (self.result.value, self.reference.value)
        others = list(self.others.value)
        super().reset_choices()
        choices = self._image_layers()
        keep_selection(self.result, choices, current[0])
        keep_selection(self.reference, choices, current[1])
        if current[1] is None and self.reference.value is self.result.value and len(choices) > 1:
            self.reference.value = choices[1][1]  # two layers: compare the first with the second
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

    def _inputs(self) -> dict[str, Any]:
        result, reference = self.result.value, self.reference.value
        if result is None or reference is None:
            raise ValueError("choose a result and a reference layer (add two image layers first)")
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
            data_range = float(self.data_range.value)
            if not math.isfinite(data_range) or data_range <= 0:
                raise ValueError(
                    f"the data range must be a number > 0, got {data_range!r}; it is the span "
                    "of possible intensities, e.g. 1.0 or 255"
                )
        spatial = a.ndim - (1 if result.rgb else 0)
        scope = self.scope.value if spatial > 2 else PLANES
        index = self._current_index(result, 2) if scope == CURRENT else ()
        return {
            "result": result,
            "reference": reference,
            "others": others,
            "data_range": data_range,
            "scope": scope,
            "index": index,
        }

    # ------------------------------------------------------------ run

    def compute(self) -> None:
        """Measure the chosen pair (and the other layers) in a worker thread."""
        if getattr(self, "_closed", False):
            return
        if self.worker is not None:
            self._pending = True
            return
        try:
            job = self._inputs()
        except (ValueError, TypeError) as err:
            show_error(f"Quality: {err}")
            return
        self._pending = False
        result, reference = job["result"], job["reference"]
        worker = make_worker(
            measure,
            layer_data(result),
            layer_data(reference),
            [layer_data(layer) for layer in job["others"]],
            data_range=job["data_range"],
            scope=job["scope"],
            index=job["index"],
            rgb=bool(result.rgb),
        )
        worker.yielded.connect(partial(self._on_yielded, worker))
        worker.returned.connect(partial(self._on_returned, worker, job))
        worker.errored.connect(partial(self._on_errored, worker, job))
        worker.finished.connect(partial(self._on_finished, worker))
        self.worker = worker
        reset_progress(self.progress)
        self.status.value = f"measuring {result.name!r} against {reference.name!r}..."
        self.compute_button.enabled = False
        worker.start()

    def close_workers(self) -> None:
        """The widget is closing: stop measuring; late signals of the worker are ignored."""
        self._closed = True
        if self.worker is not None:
            self.worker.quit()

    def _disconnect_dims(self, *_: Any) -> None:
        with contextlib.suppress(Exception):
            self._viewer.dims.events.current_step.disconnect(self._on_step)

    def _on_step(self, *_: Any) -> None:
        """Follow napari's current slice with the SSIM layer of the last "current slice" run."""
        follow = self._follow
        if follow is None or self.scope.value != CURRENT:
            return
        if follow["layer"] not in self._viewer.layers:
            self._follow = None
            return
        if self._current_index(follow["result"], 2) != follow["index"]:
            self.compute()

    # ----------------------------------------------------- worker signals

    def _on_yielded(self, worker: Any, value: tuple[int, int]) -> None:
        if worker is not self.worker or getattr(self, "_closed", False):
            return
        show_progress(self.progress, value)

    def _on_returned(self, worker: Any, job: dict[str, Any], out: dict[str, Any]) -> None:
        if worker.abort_requested or getattr(self, "_closed", False):
            return
        from napari_deconvnet import __version__

        result, reference = job["result"], job["reference"]
        name = f"SSIM {result.name} vs {reference.name}"
        smap = out["map"]
        kwargs = geometry(result)
        if job["scope"] == CURRENT and job["index"]:
            # a plane pinned at the current slice: leading axes of size 1, shifted there
            n_lead = len(job["index"])
            smap = smap.reshape((1,) * n_lead + smap.shape)
            translate = np.array(kwargs["translate"], dtype=float)
            scale = np.asarray(kwargs["scale"], dtype=float)
            translate[:n_lead] += np.asarray(job["index"]) * scale[:n_lead]
            kwargs["translate"] = translate
        meta = {
            "napari_deconvnet": {
                "ssim": out["ssim"],
                "psnr": out["psnr"],
                "data_range": out["data_range"],
                "result": result.name,
                "reference": reference.name,
                "scope": job["scope"],
                "index": list(job["index"]),
                "version": __version__,
                "compared": {
                    layer.name: {"ssim": s, "psnr": p}
                    for layer, (s, p) in zip([result, *job["others"]], out["rows"], strict=True)
                },
            }
        }
        layer = self._existing_overlay(name)
        if layer is not None and layer.data.shape == smap.shape:
            layer.data = smap
            layer.translate = kwargs["translate"]
            layer.metadata = meta
        else:
            if layer is not None:
                self._viewer.layers.remove(layer)
            layer = self._viewer.add_image(
                smap, name=name, colormap=ssim_colormap(), metadata=meta, **OVERLAY, **kwargs
            )
        self._follow = (
            {"layer": layer, "result": result, "index": job["index"]}
            if job["scope"] == CURRENT and job["index"]
            else None
        )
        where = f" at slice {job['index']}" if job["index"] else ""
        self.status.value = f"SSIM {out['ssim']:.4f} · PSNR {out['psnr']:.2f} dB{where}"
        rows = [[round(s, 4), round(p, 2)] for s, p in out["rows"]]
        names = [result.name, *(layer.name for layer in job["others"])]
        self.table.value = {"data": rows, "index": names, "columns": ["SSIM", "PSNR (dB)"]}
        self.table.visible = True

    def _existing_overlay(self, name: str) -> Image | None:
        if name not in self._viewer.layers:
            return None
        layer = self._viewer.layers[name]
        if isinstance(layer, Image) and "ssim" in layer.metadata.get("napari_deconvnet", {}):
            return layer
        return None

    def _on_errored(self, worker: Any, job: dict[str, Any], exc: BaseException) -> None:
        message = error_text(exc, _logger, f"measuring {job['result'].name!r}")
        show_error(f"Quality of {job['result'].name!r} failed: {message}")
        if worker is self.worker and not getattr(self, "_closed", False):
            self.status.value = "failed"

    def _on_finished(self, worker: Any) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        if getattr(self, "_closed", False):
            return
        self.progress.value = self.progress.max
        self.compute_button.enabled = True
        if self._pending:  # the slice moved while measuring: measure the new one
            self.compute()
