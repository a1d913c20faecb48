"""The Train dock widget: fit a deconvolution network to the user's own layers.

Training runs in a napari worker thread (:func:`napari_deconvnet.train_iter`),
so the viewer stays responsive. Every epoch the loss plot (matplotlib, in the
dock) and an ``"<input> preview"`` layer are updated on the GUI thread; a
progress bar shows the ETA; Stop ends the run after the current step and
keeps the best model, which can then be saved or offered to the Restore
widget in the same session.

torch, matplotlib and the core are imported inside the callbacks, never at
module top, so that opening napari stays fast.
"""

import atexit
import contextlib
import copy
import logging
import shutil
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import napari
import napari.viewer
import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image, Labels, Shapes
from napari.utils.notifications import show_error, show_info

from ._common import DEVICES, error_text, make_worker
from ._layers import follow_layers, image_layers, layer_data
from .noise import NOISES

__all__ = ["TrainWidget", "shapes_to_polygons"]

_logger = logging.getLogger(__name__)

SELF_SUPERVISED = "none: self-supervised"
SYNTHETIC = "synthetic: noise model + PSF"
NEW_NETWORK = "new network"
PSFS = ("none", "gaussian", "airy")
LOSSES = ("mse", "l1", "ssim", "mse+ssim")
_PREVIEW_SIDE = 256
_STEP_SIGNAL_INTERVAL = 0.1  # seconds between progress signals to the GUI thread
_session_dir: list[Path] = []


def shapes_to_polygons(shapes: Shapes, image: Image) -> list[np.ndarray]:
    """The rectangles, polygons and ellipses of a Shapes layer as polygons in `image` pixels.

    Vertices go through world coordinates, so the layers may have different
    scales and translations. Lines and paths enclose no area and are skipped.
    """
    polygons = []
    for kind, vertices in zip(shapes.shape_type, shapes.data, strict=True):
        if kind in ("line", "path"):
            continue
        v = np.asarray(vertices, dtype=np.float64)
        if kind == "ellipse":  # 4 corners of the bounding box -> 64 points on the ellipse
            centre = v.mean(axis=0)
            half = (v.max(axis=0) - v.min(axis=0)) / 2
            t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
            v = np.repeat(centre[None], 64, axis=0)
            v[:, -2] += half[-2] * np.sin(t)
            v[:, -1] += half[-1] * np.cos(t)
        world = np.array([shapes.data_to_world(p) for p in v])
        data = np.array([image.world_to_data(p) for p in world])
        polygons.append(data[:, -min(data.shape[1], image.ndim) :])
    return polygons


def _session_folder() -> Path:
    """A folder for models handed to the Restore widget, removed when Python exits."""
    if not _session_dir:
        folder = Path(tempfile.mkdtemp(prefix="napari-deconvnet-models-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _session_dir.append(folder)
    return _session_dir[0]


def _summary(event: Any) -> dict[str, Any]:
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


def _preview(model: Any, data: Any, request: dict[str, Any], device: str) -> np.ndarray | None:
    """The current model's output on the requested region (worker thread)."""
    from napari_deconvnet.core.tiling import restore

    region = np.asarray(data[request["index"]], dtype=np.float32)
    out = restore(region, copy.deepcopy(model), device=device)  # a copy: training goes on
    if request["plane"] is not None:
        out = out[request["plane"]]
    return out


def _train_job(inputs, targets, options, preview_data, preview_request):
    """Worker body: the engine's events, thinned out for the GUI, and the result."""
    from napari_deconvnet.core.training import train_iter

    gen = train_iter(inputs, targets, **options)
    last = 0.0
    try:
        while True:
            event = next(gen)
            summary = _summary(event)
            if event.kind in ("start", "epoch"):
                request = preview_request()
                if request is not None:
                    try:
                        summary["preview"] = _preview(
                            event.model, preview_data, request, options["device"]
                        )
                        summary["preview_request"] = request
                    except (ValueError, RuntimeError) as err:  # e.g. a slice too small
                        _logger.info("no preview: %s", err)
                yield summary
            elif event.kind == "step" and time.perf_counter() - last > _STEP_SIGNAL_INTERVAL:
                last = time.perf_counter()
                yield summary
    except StopIteration as finished:
        return finished.value
    finally:
        gen.close()


class TrainWidget(Container):
    """Train a deconvolution network on image layers, with live curves and a preview.

    Parameters
    ----------
    viewer : napari.viewer.Viewer

    Attributes
    ----------
    image, target : magicgui ComboBoxes
        The input layer; the target layer, or ``"none: self-supervised"``, or
        ``"synthetic: noise model + PSF"`` (then `noise`, `sigma`, `peak`,
        `read_noise`, `amount`, `psf`, `psf_sigma` are shown).
    dims, patch_size, batch_size, epochs, max_seconds, loss, device, start_from
        Training settings (``epochs`` or ``max_seconds`` 0 means unbounded
        by it).
    regions, validation_region : magicgui ComboBoxes
        Optional Shapes layer restricting training patches; optional Shapes
        or Labels layer marking the validation area.
    train_button, stop_button, save_button, use_button, progress, status
    figure, canvas : the matplotlib loss plot
    worker : the running training, if any
    result : napari_deconvnet.TrainResult or None
        The last finished training.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self._viewer = viewer
        self.worker = None
        self.result = None
        self.restore_name: str | None = None
        self._stop_event: threading.Event | None = None
        self._preview_request: dict[str, Any] | None = None
        self._job: dict[str, Any] | None = None
        self._text_color: str | None = None
        self._closed = False

        self.image = ComboBox(label="Input", choices=self._image_layers)
        self.target = ComboBox(label="Target", choices=self._target_choices)
        self.target.tooltip = (
            "A clean/unblurred layer (supervised), none (self-supervised Noise2Void: noise "
            "must be independent from pixel to pixel), or synthetic (the input is clean; "
            "noise and blur are simulated)"
        )
        self.noise = ComboBox(label="Noise model", choices=NOISES, value="gaussian")
        self.sigma = FloatSpinBox(label="Sigma", value=0.1, min=0, max=1e6, step=0.01)
        self.sigma.tooltip = "Standard deviation, in the image's intensity units"
        self.peak = FloatSpinBox(label="Peak (photons)", value=100.0, min=0.01, max=1e9)
        self.read_noise = FloatSpinBox(label="Read noise (e-)", value=1.0, min=0, max=1e6)
        self.amount = FloatSpinBox(label="Amount", value=0.05, min=0, max=1, step=0.01)
        self.psf = ComboBox(label="PSF", choices=PSFS, value="none")
        self.psf_sigma = FloatSpinBox(label="PSF sigma (px)", value=1.5, min=0.1, max=50)
        self.dims = ComboBox(label="Network", choices=("2D", "3D"), value="2D")
        self.patch_size = SpinBox(label="Patch size", value=64, min=8, max=1024, step=8)
        self.batch_size = SpinBox(label="Batch size", value=16, min=1, max=1024)
        self.epochs = SpinBox(label="Epochs (0 = no limit)", value=20, min=0, max=100000)
        self.max_seconds = SpinBox(label="Time budget s (0 = none)", value=0, min=0, max=10**7)
        self.loss = ComboBox(label="Loss", choices=LOSSES, value="mse")
        self.device = ComboBox(label="Device", choices=DEVICES, value="auto")
        self.start_from = ComboBox(label="Start from", choices=self._model_choices)
        self.start_from.tooltip = "A new network, or fine-tune a shipped or opened model"
        self.regions = ComboBox(label="Train in", choices=self._shapes_layers)
        self.regions.tooltip = "Optional Shapes layer: patches come from its rectangles/polygons"
        self.validation_region = ComboBox(label="Validate in", choices=self._region_layers)
        self.validation_region.tooltip = (
            "Optional Shapes or Labels layer: validation patches come from there and training "
            "patches never overlap it (default: 10% of the data is held out)"
        )
        self.train_button = PushButton(text="Train")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.save_button = PushButton(text="Save model...", enabled=False)
        self.use_button = PushButton(text="Use in Restore", enabled=False)
        self.progress = ProgressBar(label="Progress", value=0, min=0, max=1000)
        self.status = Label(label="", value="")
        self._synthetic_fields = [
            self.noise,
            self.sigma,
            self.peak,
            self.read_noise,
            self.amount,
            self.psf,
            self.psf_sigma,
        ]
        self.extend(
            [
                self.image,
                self.target,
                *self._synthetic_fields,
                self.dims,
                self.patch_size,
                self.batch_size,
                self.epochs,
                self.max_seconds,
                self.loss,
                self.device,
                self.start_from,
                self.regions,
                self.validation_region,
                self.train_button,
                self.stop_button,
                self.progress,
                self.status,
                self.save_button,
                self.use_button,
            ]
        )
        self._make_plot()

        self.target.changed.connect(self._update_visibility)
        self.noise.changed.connect(self._update_visibility)
        self.psf.changed.connect(self._update_visibility)
        self.train_button.changed.connect(self.train)
        self.stop_button.changed.connect(self.stop)
        self.save_button.changed.connect(lambda: self.save_model())
        self.use_button.changed.connect(self.use_in_restore)

        from napari_deconvnet.io import registry

        follow_layers(self, viewer, extra=(registry.changed,))
        viewer.dims.events.current_step.connect(self._on_view_changed)
        self.reset_choices()
        self._update_visibility()

    # ------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return image_layers(self._viewer)

    def _target_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(SELF_SUPERVISED, SELF_SUPERVISED), (SYNTHETIC, SYNTHETIC), *self._image_layers()]

    def _shapes_layers(self, _widget: Any = None) -> list[tuple[str, Any]]:
        layers = [(la.name, la) for la in self._viewer.layers if isinstance(la, Shapes)]
        return [("none", None), *layers]

    def _region_layers(self, _widget: Any = None) -> list[tuple[str, Any]]:
        layers = [(la.name, la) for la in self._viewer.layers if isinstance(la, Shapes | Labels)]
        return [("none (hold out 10%)", None), *layers]

    @staticmethod
    def _model_choices(_widget: Any = None) -> list[str]:
        import napari_deconvnet as dn
        from napari_deconvnet.io import registry

        return [NEW_NETWORK, *dn.list_models(), *registry.registered_models()]

    def reset_choices(self, *_: Any) -> None:
        """Re-read layers and models; each selection stays on the same layer."""
        keep = {
            w: w.value for w in (self.image, self.target, self.regions, self.validation_region)
        }
        super().reset_choices()
        for widget, value in keep.items():
            with contextlib.suppress(ValueError, TypeError):
                if any(value is choice for choice in widget.choices):
                    widget.value = value

    def _update_visibility(self, *_: Any) -> None:
        synthetic = self.target.value == SYNTHETIC
        noise = self.noise.value
        self.noise.visible = synthetic
        self.sigma.visible = synthetic and noise in ("gaussian", "speckle")
        self.peak.visible = synthetic and noise in ("poisson", "poisson-gaussian")
        self.read_noise.visible = synthetic and noise == "poisson-gaussian"
        self.amount.visible = synthetic and noise == "salt-and-pepper"
        self.psf.visible = synthetic
        self.psf_sigma.visible = synthetic and self.psf.value != "none"

    # ------------------------------------------------------------ the plot

    def _make_plot(self) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self.figure = Figure(figsize=(4, 2.6), tight_layout=True)
        self.axes = self.figure.add_subplot(111)
        (self.train_line,) = self.axes.plot([], [], "o-", ms=3, label="train")
        (self.val_line,) = self.axes.plot([], [], "s-", ms=3, label="validation")
        self.axes.set_xlabel("epoch")
        self.axes.set_ylabel("loss")
        self.axes.set_yscale("log")
        self.axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        self.axes.legend(loc="upper right", fontsize="small")
        self.axes.grid(True, alpha=0.3)
        self._style_plot()
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(200)
        self.native.layout().addWidget(self.canvas)

    def _style_plot(self) -> None:
        """Colour the plot like the viewer's theme (dark or light)."""
        try:
            from napari.utils.theme import get_theme

            theme = get_theme(self._viewer.theme)
            background, text = theme.background.as_hex(), theme.text.as_hex()
        except (AttributeError, KeyError, ValueError, TypeError):
            return
        self._text_color = text
        self.figure.set_facecolor(background)
        self.axes.set_facecolor(background)
        for spine in self.axes.spines.values():
            spine.set_color(text)
        self.axes.tick_params(colors=text, which="both")
        self.axes.xaxis.label.set_color(text)
        self.axes.yaxis.label.set_color(text)
        self.axes.title.set_color(text)
        legend = self.axes.get_legend()
        legend.get_frame().set_facecolor(background)
        for label in legend.get_texts():
            label.set_color(text)

    def _plot(self, history: list[dict[str, Any]]) -> None:
        train = [(h["epoch"], h["train_loss"]) for h in history if h.get("train_loss")]
        val = [(h["epoch"], h["val_loss"]) for h in history if h.get("val_loss")]
        for line, points in ((self.train_line, train), (self.val_line, val)):
            line.set_data([p[0] for p in points], [p[1] for p in points])
        last = history[-1]
        title = f"epoch {last['epoch']}"
        if last.get("val_psnr") is not None:
            title += f"  val PSNR {last['val_psnr']:.2f} dB"
            if history[0].get("input_val_psnr") is not None:
                title += f" (input {history[0]['input_val_psnr']:.2f})"
        self.axes.set_title(title, fontsize="small", color=self._text_color)
        if train or val:
            self.axes.relim()
            self.axes.autoscale_view()
        self.canvas.draw_idle()

    # ------------------------------------------------------------ preview

    def _on_view_changed(self, *_: Any) -> None:
        job = self._job
        if self.worker is None or job is None or self._closed:
            return
        if job["layer"] not in self._viewer.layers:  # deleted: no more previews
            self._preview_request = None
            return
        self._preview_request = self._make_preview_request(job["layer"], job["net_ndim"])

    def _make_preview_request(self, layer: Image, net_ndim: int) -> dict[str, Any] | None:
        """The region of `layer` around the visible slice that the preview restores.

        `net_ndim` is the running job's, not the widget's (which may change meanwhile).
        """
        data = layer_data(layer)
        ndim = data.ndim
        if ndim < net_ndim:
            return None
        point = np.asarray(layer.world_to_data(self._viewer.dims.point[-ndim:]))
        index: list[Any] = []
        for axis in range(ndim - 2):
            n = data.shape[axis]
            p = int(np.clip(np.round(point[axis]), 0, n - 1))
            if net_ndim == 3 and axis == ndim - 3:
                depth = min(n, 16)
                start = int(np.clip(p - depth // 2, 0, n - depth))
                index.append(slice(start, start + depth))
                plane = p - start
            else:
                index.append(p)
        offsets = []
        corners = getattr(layer, "corner_pixels", None)
        for axis in (ndim - 2, ndim - 1):
            n = data.shape[axis]
            lo, hi = 0, n
            if corners is not None and np.size(corners) == 2 * ndim:
                lo = int(np.clip(corners[0][axis], 0, n - 1))
                hi = int(np.clip(corners[1][axis] + 1, lo + 1, n))
            centre = (lo + hi) // 2
            side = min(n, _PREVIEW_SIDE, max(hi - lo, 64))
            start = int(np.clip(centre - side // 2, 0, n - side))
            index.append(slice(start, start + side))
            offsets.append(start)
        return {
            "index": tuple(index),
            "plane": plane if net_ndim == 3 else None,
            "offset": tuple(offsets),
        }

    def _show_preview(self, layer: Image, image: np.ndarray, request: dict[str, Any]) -> None:
        name = f"{layer.name} preview"
        scale = np.asarray(layer.scale[-2:])
        translate = np.asarray(layer.translate[-2:]) + np.asarray(request["offset"]) * scale
        if name in self._viewer.layers:
            preview = self._viewer.layers[name]
            preview.data = image
            preview.translate = translate
        else:
            self._viewer.add_image(
                image,
                name=name,
                scale=scale,
                translate=translate,
                colormap=layer.colormap,
                contrast_limits=layer.contrast_limits,
                metadata={"napari_deconvnet": {"preview_of": layer.name}},
            )

    # ------------------------------------------------------------ train

    def _synthetic_options(self, data: Any, net_ndim: int) -> dict[str, Any]:
        from napari_deconvnet.core.psf import make_psf

        noise = self.noise.value
        params: dict[str, Any] = {"model": noise}
        if noise in ("gaussian", "speckle"):
            params["sigma"] = float(self.sigma.value)
        elif noise in ("poisson", "poisson-gaussian"):
            params["peak"] = float(self.peak.value)
            if noise == "poisson-gaussian":
                params["read_noise"] = float(self.read_noise.value)
        elif noise == "salt-and-pepper":
            params["amount"] = float(self.amount.value)
        options: dict[str, Any] = {"noise": params if noise != "none" else None}
        if self.psf.value != "none":
            sigma = float(self.psf_sigma.value)
            if self.psf.value == "gaussian":
                options["psf"] = make_psf("gaussian", sigma=(sigma,) * net_ndim)
            else:
                options["psf"] = make_psf("airy", ndim=net_ndim)
        if options["noise"] is None and "psf" not in options:
            raise ValueError(
                "synthetic training needs a noise model or a PSF (or both); choose one"
            )
        return options

    def _collect(self) -> dict[str, Any]:
        """Validate the form and gather the engine's arguments (GUI thread)."""
        layer = self.image.value
        if layer is None:
            raise ValueError("there is no image layer to train on; open or add an image first")
        data = layer_data(layer)
        net_ndim = 3 if self.dims.value == "3D" else 2
        if layer.rgb and net_ndim == 3:
            raise ValueError(f"{layer.name!r} is an RGB layer; train a 2D network on it")
        target = self.target.value
        options: dict[str, Any] = {
            "patch_size": int(self.patch_size.value),
            "batch_size": int(self.batch_size.value),
            "epochs": int(self.epochs.value) or None,
            "max_seconds": float(self.max_seconds.value) or None,
            "loss": self.loss.value,
            "device": self.device.value,
        }
        if layer.rgb:  # one shared network over the colour channels, as restore applies it
            options["axes"] = "YXS" if data.ndim == 3 else "TYXS"
        if options["epochs"] is None and options["max_seconds"] is None:
            raise ValueError("set a number of epochs or a time budget (or both)")
        targets = None
        if target == SYNTHETIC:
            options.update(self._synthetic_options(data, net_ndim))
        elif isinstance(target, Image):
            if target is layer:
                raise ValueError("the target is the input layer; choose a clean layer or 'none'")
            targets = layer_data(target)
        start = self.start_from.value
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
        if self.regions.value is not None:
            options["regions"] = shapes_to_polygons(self.regions.value, layer)
        region = self.validation_region.value
        if isinstance(region, Shapes):
            options["validation_regions"] = shapes_to_polygons(region, layer)
        elif isinstance(region, Labels):
            if tuple(region.data.shape) != tuple(data.shape):
                raise ValueError(
                    f"labels layer {region.name!r} has shape {region.data.shape} but the input "
                    f"has shape {data.shape}; paint the validation area on a layer of the "
                    "input's shape"
                )
            options["validation_regions"] = np.asarray(region.data)
        options["name"] = f"{layer.name}-{net_ndim}d"
        return {
            "layer": layer,
            "data": data,
            "targets": targets,
            "options": options,
            "net_ndim": net_ndim,
        }

    def train(self) -> None:
        """Start training in a worker thread (nothing happens while one runs)."""
        if self.worker is not None or self._closed:
            return
        try:
            job = self._collect()
        except (ValueError, TypeError) as err:
            show_error(f"Train: {err}")
            return
        self._stop_event = threading.Event()
        job["options"]["stop"] = self._stop_event
        self._job = job
        self._preview_request = self._make_preview_request(job["layer"], job["net_ndim"])
        worker = make_worker(
            _train_job,
            job["data"],
            job["targets"],
            job["options"],
            job["data"],
            lambda: self._preview_request,
        )
        worker.yielded.connect(partial(self._on_yielded, worker))
        worker.returned.connect(partial(self._on_returned, worker))
        worker.errored.connect(partial(self._on_errored, worker))
        worker.finished.connect(partial(self._on_finished, worker))
        self.worker = worker
        self.progress.value = 0
        self.status.value = f"preparing {job['layer'].name!r}..."
        self.train_button.enabled = False
        self.stop_button.enabled = True
        self._plot([{"epoch": 0}])
        worker.start()

    def stop(self) -> None:
        """End training after the current step; the best model so far is kept."""
        if self._stop_event is not None:
            self._stop_event.set()
        if self.worker is not None:
            self.status.value = "stopping..."
            self.stop_button.enabled = False

    def close_workers(self) -> None:
        """The dock was closed: stop training; late signals of the worker are ignored."""
        self._closed = True
        if self._stop_event is not None:
            self._stop_event.set()

    # ----------------------------------------------------- worker signals

    def _on_yielded(self, worker: Any, summary: dict[str, Any]) -> None:
        if worker is not self.worker or self._closed:
            return
        self.progress.value = int(1000 * summary["progress"])
        eta = summary["eta"]
        text = f"epoch {summary['epoch']}, step {summary['step']}"
        if summary["train_loss"] is not None:
            text += f", loss {summary['train_loss']:.4g}"
        if eta is not None:
            text += f", ETA {eta:.0f} s"
        self.status.value = text
        if summary["kind"] in ("start", "epoch"):
            self._plot(summary["history"])
            if summary.get("preview") is not None and self._job["layer"] in self._viewer.layers:
                self._show_preview(
                    self._job["layer"], summary["preview"], summary["preview_request"]
                )

    def _on_returned(self, worker: Any, result: Any) -> None:
        if worker is not self.worker or result is None or self._closed:
            return
        self.result = result
        self.restore_name = None
        self._plot(result.history)
        self.save_button.enabled = True
        self.use_button.enabled = True
        best = result.history[result.best_epoch]
        text = f"{result.message}; best epoch {result.best_epoch}"
        if best.get("val_psnr") is not None:
            text += f", val PSNR {best['val_psnr']:.2f} dB"
        self.status.value = text
        if result.stop_reason == "non-finite loss":
            show_error(f"Train: {result.message}")

    def _on_errored(self, worker: Any, exc: BaseException) -> None:
        message = error_text(exc, _logger, "training")
        show_error(f"Training failed: {message}")
        if worker is self.worker and not self._closed:
            self.status.value = "failed"

    def _on_finished(self, worker: Any) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        self._stop_event = None
        if self._closed:
            return
        self.train_button.enabled = True
        self.stop_button.enabled = False
        if self.progress.value < 1000 and self.result is not None:
            self.progress.value = 1000

    # ----------------------------------------------------- after training

    def _model(self) -> Any:
        if self.result is None:
            raise ValueError("no trained model yet; train first")
        return self.result.model

    def save_model(self, path: str | Path | None = None) -> Path | None:
        """Write the trained model to `path` (asks with a file dialog when None).

        A ``.zip`` path writes a bioimage.io package (``export_bioimageio``).
        """
        try:
            model = self._model()
            if path is None:
                from qtpy.QtWidgets import QFileDialog

                default = f"{model.metadata.get('name', 'model')}.safetensors"
                path, chosen = QFileDialog.getSaveFileName(
                    self.native,
                    "Save model",
                    default,
                    "Models (*.safetensors);;bioimage.io package (*.zip)",
                )
                if not path:
                    return None
                if chosen.startswith("bioimage.io") and not path.lower().endswith(".zip"):
                    path = str(Path(path).with_suffix(".zip"))
            path = Path(path)
            if path.suffix.lower() == ".zip":  # a bioimage.io package (zoo, Fiji, ilastik)
                from napari_deconvnet.core.bioimageio import export_bioimageio

                saved = export_bioimageio(model, path)
            else:
                if path.suffix != ".safetensors":
                    path = path.with_name(path.name + ".safetensors")
                from napari_deconvnet.core.persistence import save_model

                saved = save_model(model, path)
        except (ValueError, TypeError, OSError, ImportError) as err:
            show_error(f"Save model: {err}")
            return None
        self.status.value = f"saved {saved.name}"
        show_info(f"Saved the model to {saved}")
        return saved

    def use_in_restore(self) -> str | None:
        """Offer the trained model in the Restore widget; returns its name there."""
        try:
            model = self._model()
        except ValueError as err:
            show_error(f"Use in Restore: {err}")
            return None
        if self.restore_name is not None:
            return self.restore_name
        from napari_deconvnet.core.persistence import save_model
        from napari_deconvnet.io import registry

        folder = Path(tempfile.mkdtemp(dir=_session_folder()))
        path = save_model(model, folder / f"{model.metadata.get('name', 'trained')}.safetensors")
        self.restore_name = registry.register_model(path)
        self.status.value = f"available in Restore as {self.restore_name!r}"
        return self.restore_name
