"""The Restore dock widget: restore an image layer with a network or a classical method.

One list offers every method: the shipped models, the model files opened in
napari, any other model file ("Model file…"), and the classical methods
(Richardson-Lucy, Wiener, non-local means, TV, wavelets, BM3D if installed,
median). A line under the list says when to use the chosen method, and a PSF
field appears for the methods that deconvolve (a generated PSF or an image
layer holding one).

Every method runs in a napari worker thread, so the viewer stays responsive:
a progress bar follows the tiles of a network, the iterations of
Richardson-Lucy, the planes of a stack (the tiles of a large plane for
non-local means), or shows that the work is busy. Cancel stops the work at
its next step; a single call (Wiener, TV, wavelets or BM3D on one plane)
finishes first. Run stays disabled until the worker has ended, so two jobs
never run at once; deleting the source layer or closing the widget stops the
job too. A lazy layer (dask, zarr) gives a lazy result: nothing is loaded
whole, and napari computes the planes it shows. The result is a new layer named
``"<input> [<method>]"`` with the source's geometry and a record of how it
was made (method, parameters, PSF) in ``layer.metadata["napari_deconvnet"]``.

torch and the core are imported inside the callbacks, never at module top,
so that opening napari stays fast.
"""

import contextlib
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import napari
import napari.viewer
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.utils.notifications import show_error

from napari_deconvnet.io import registry, restored_writer

from ._common import (
    DEVICES,
    error_text,
    make_worker,
    reset_progress,
    show_busy,
    show_progress,
)
from ._layers import (
    follow_layers,
    geometry,
    image_layers,
    keep_selection,
    layer_data,
    unique_name,
)
from ._methods import (
    BROWSE,
    BROWSE_HELP,
    classical_job,
    method_catalogue,
    model_entry,
    model_job,
)
from ._psf import PsfField

__all__ = ["BROWSE", "MODES", "RestoreWidget", "axes_for", "method_catalogue"]

_logger = logging.getLogger(__name__)

MODES = ("auto", "2D slices", "3D volume")
# the parameter fields each classical method shows (attributes of RestoreWidget)
_CLASSICAL_FIELDS: dict[str, tuple[str, ...]] = {
    "richardson-lucy": ("iterations", "regularization"),
    "wiener": ("balance",),
    "nlm": ("noise_level",),
    "tv": ("noise_level",),
    "wavelet": ("noise_level",),
    "bm3d": ("noise_level",),
    "median": ("median_size",),
    "switching-median": (),
}


def axes_for(mode: str, ndim: int, rgb: bool = False) -> str | None:
    """The ``axes`` argument of :func:`napari_deconvnet.restore` for a layer.

    Parameters
    ----------
    mode : {"auto", "2D slices", "3D volume"}
        ``"auto"`` lets the core guess from the shape and the model.
    ndim : int
        Number of dimensions of the layer's data (RGB samples included).
    rgb : bool
        Whether the last axis holds RGB(A) samples (napari's ``layer.rgb``).

    Returns
    -------
    str or None
        One letter per dimension from ``"TZCYXS"``, or None for ``"auto"``
        on a non-RGB layer.

    Raises
    ------
    ValueError
        If the mode cannot apply to data of this dimensionality.

    Examples
    --------
    >>> axes_for("3D volume", 4), axes_for("auto", 3, rgb=True)
    ('TZYX', 'YXS')
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {MODES}")
    n = ndim - 1 if rgb else ndim
    suffix = "S" if rgb else ""
    if mode == "3D volume":
        table = {3: "ZYX", 4: "TZYX", 5: "TZCYX"} if not rgb else {3: "ZYX", 4: "TZYX"}
        if n not in table:
            raise ValueError(
                f"'3D volume' needs a layer with 3 to {max(table)} spatial and time dimensions, "
                f"but this layer has {n}; use '2D slices' for 2D images"
            )
        return table[n] + suffix
    if mode == "auto" and not rgb:
        return None
    table = {2: "YX", 3: "ZYX", 4: "TZYX", 5: "TZCYX"} if not rgb else {2: "YX", 3: "TYX"}
    if n not in table:
        kind = "RGB layer" if rgb else "layer"
        raise ValueError(
            f"cannot restore a {ndim}-D {kind} plane by plane; "
            "napari-deconvnet handles 2-D to 5-D images"
        )
    return table[n] + suffix


# -------------------------------------------------------------------- widget


def _float_field(label: str, value: float, *, high: float, step: float, tip: str) -> FloatSpinBox:
    field = FloatSpinBox(label=label, value=value, min=0.0, max=high, step=step)
    field.tooltip = tip
    return field


class RestoreWidget(Container):
    """Restore an image layer with a shipped or saved network, or a classical method.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose image layers are offered and which receives the
        restored layer.

    Attributes
    ----------
    image, method, description, model_file : magicgui widgets
        The input layer; the method list (:func:`method_catalogue`); a line
        saying when to use the chosen method; the file of ``"Model file…"``
        (shown only for it).
    psf : PsfField
        The PSF inputs (``psf.source``, ``psf.fields``, ``psf.size``,
        ``psf.layer``), shown only for methods that deconvolve.
    iterations, regularization, balance, noise_level, median_size : magicgui widgets
        Parameters of the classical methods, each shown for its methods.
    mode, tile, device : magicgui widgets
        How the image is cut into planes or volumes; the network's tile size;
        where a network or Richardson-Lucy runs.
    run_button, cancel_button, progress, status : magicgui widgets
    worker : napari GeneratorWorker or None
        The running restoration, if any.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self._viewer = viewer
        self.worker = None
        self._job: dict[str, Any] | None = None
        self._closed = False
        self._methods: dict[str, dict[str, Any]] = {}

        self.image = ComboBox(label="Image", choices=self._image_layers)
        self.method = ComboBox(label="Method", choices=self._method_choices)
        self.description = Label(label="", value="")
        with contextlib.suppress(AttributeError):
            self.description.native.setWordWrap(True)
        self.model_file = FileEdit(
            label="Model file", mode="r", filter="*.safetensors", visible=False
        )
        self.psf = PsfField(viewer, exclude=lambda: self.image.value)
        self.iterations = SpinBox(label="Iterations", value=30, min=1, max=10000)
        self.iterations.tooltip = "More iterations sharpen more and amplify noise"
        self.regularization = _float_field(
            "TV weight (0 = off)",
            0.0,
            high=0.16,
            step=0.001,
            tip="Total-variation regularisation of Richardson-Lucy; try 1e-3 to 1e-2 on "
            "noisy images",
        )
        self.balance = _float_field(
            "Balance (0 = auto)",
            0.0,
            high=1e6,
            step=0.0001,
            tip="Wiener regularisation: greater is smoother; 0 estimates it from the noise",
        )
        self.noise_level = _float_field(
            "Noise level (0 = auto)",
            0.0,
            high=1e9,
            step=0.001,
            tip="Standard deviation of the noise in the image's units (TV: the denoising "
            "weight); 0 estimates it from the image",
        )
        self.median_size = SpinBox(label="Median size", value=3, min=1, max=99, step=2)
        self.median_size.tooltip = "Odd width of the median window in pixels"
        self.mode = ComboBox(label="Mode", choices=MODES, value="auto")
        self.mode.tooltip = (
            "auto: networks guess from the image and the model, classical methods work on "
            "2D planes (3D volumes with a 3D PSF); 2D slices: every plane on its own; "
            "3D volume: whole volumes (3D models, 3D PSFs)"
        )
        self.tile = SpinBox(label="Tile (0 = auto)", value=0, min=0, max=16384, step=16)
        self.tile.tooltip = "Tile size in pixels per spatial axis; 0 picks it from free memory"
        self.device = ComboBox(label="Device", choices=DEVICES, value="auto")
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="Progress", value=0, min=0, max=1)
        self.status = Label(label="", value="")
        self.extend(
            [
                self.image,
                self.method,
                self.description,
                self.model_file,
                *self.psf.widgets,
                self.iterations,
                self.regularization,
                self.balance,
                self.noise_level,
                self.median_size,
                self.mode,
                self.tile,
                self.device,
                self.run_button,
                self.cancel_button,
                self.progress,
                self.status,
            ]
        )

        self.method.changed.connect(self._on_method_changed)
        self.model_file.changed.connect(self._on_method_changed)
        self.image.changed.connect(lambda *_: self.psf.reset_layer_choices(self.psf.layer.value))
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)

        follow_layers(self, viewer, extra=(registry.changed,))  # a model file was opened
        viewer.layers.events.removed.connect(self._on_layer_removed)
        self.reset_choices()
        self._on_method_changed()

    @property
    def model(self) -> ComboBox:
        """The method list (its earlier name, kept for scripts)."""
        return self.method

    # ------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return image_layers(self._viewer)

    def _method_choices(self, _widget: Any = None) -> list[str]:
        """The methods' names, re-read from the shipped models and the registry."""
        self._methods = method_catalogue()
        return list(self._methods)

    def reset_choices(self, *_: Any) -> None:
        """Re-read the layers and the methods; selections stay on the same items.

        Choices are keyed by layer name, so without this a rename or reorder
        would move the selection to another layer.
        """
        current, psf_layer = self.image.value, self.psf.layer.value
        super().reset_choices()
        keep_selection(self.image, self._image_layers(), current)
        self.psf.reset_layer_choices(psf_layer)

    def _entry(self) -> dict[str, Any]:
        """The chosen method's catalogue entry; for "Model file…", from the file's header."""
        name = self.method.value
        entry = self._methods.get(name)
        if entry is None:
            raise ValueError(f"unknown method {name!r}; choose one from the list")
        if entry["kind"] != "file":
            return entry
        from napari_deconvnet.core.persistence import model_info

        return model_entry(self.selected_model(), model_info(self.selected_model()))

    def _on_method_changed(self, *_: Any) -> None:
        name = self.method.value
        self.model_file.visible = name == BROWSE
        try:
            entry = self._entry()
        except (ValueError, OSError) as err:  # no file chosen yet, or not a model file
            path = self.model_file.value
            chosen = path is not None and Path(path).is_file()
            entry = {"kind": "model", "needs_psf": False}
            entry["description"] = str(err) if chosen else BROWSE_HELP
        self.description.value = entry["description"]
        if entry["kind"] == "model" and not entry["needs_psf"] and "model" in entry:
            restored_writer.remember_model(entry["model"])  # the "OME-Zarr, restored" writer's
        self.description.tooltip = entry["description"]
        self.method.tooltip = entry["description"]
        self.psf.visible = entry["needs_psf"]
        fields = _CLASSICAL_FIELDS.get(name, ()) if entry["kind"] == "classical" else ()
        for attr in {a for names in _CLASSICAL_FIELDS.values() for a in names}:
            getattr(self, attr).visible = attr in fields
        self.tile.visible = entry["kind"] == "model"
        self.device.visible = entry["kind"] == "model" or name == "richardson-lucy"

    def selected_model(self) -> str:
        """The network to run: a shipped name or the path of a model file.

        Raises
        ------
        ValueError
            If a classical method is chosen, or "Model file…" without a file.
        """
        name = self.method.value
        entry = self._methods.get(name, {})
        if entry.get("kind") == "model":
            return entry["model"]
        if name != BROWSE:
            raise ValueError(f"{name!r} is a classical method, not a network")
        path = self.model_file.value
        if path is None or not path.is_file():
            raise ValueError(
                f"no model file chosen ({str(path)!r} is not a file); pick a .safetensors "
                "model file or choose a shipped model"
            )
        return str(path)

    def method_params(self) -> dict[str, Any]:
        """The chosen classical method's parameters, as its core function takes them."""
        name = self.method.value
        auto = self.noise_level.value or None
        return {
            "richardson-lucy": {
                "iterations": int(self.iterations.value),
                "regularization": self.regularization.value or None,
            },
            "wiener": {"balance": self.balance.value or None},
            "nlm": {"sigma": auto},
            "tv": {"weight": auto},
            "wavelet": {"sigma": auto},
            "bm3d": {"sigma": auto},
            "median": {"size": int(self.median_size.value)},
        }.get(name, {})

    # ---------------------------------------------------------------- run

    def _classical_axes(self, entry: dict[str, Any], layer: Image) -> tuple[str, int]:
        """The layer's axes, and whether a classical method works on planes (2) or volumes (3)."""
        data = layer_data(layer)
        rgb = bool(layer.rgb)
        n = data.ndim - rgb
        mode = self.mode.value
        psf_ndim = self.psf.layer_ndim() if entry["needs_psf"] else None
        if mode == "auto":
            three_d = psf_ndim == 3 or (
                entry["needs_psf"] and psf_ndim is None and self.psf.source.value == "widefield"
            )
            mode = "3D volume" if three_d and n >= 3 else "2D slices"
        if psf_ndim is not None and psf_ndim > n:
            raise ValueError(
                f"the PSF layer {self.psf.layer.value.name!r} is {psf_ndim}D but the image "
                f"{layer.name!r} is {n}D; use a PSF with at most the image's dimensions"
            )
        if psf_ndim == 3 and mode == "2D slices":
            raise ValueError(
                f"the PSF layer {self.psf.layer.value.name!r} is 3D but '2D slices' restores "
                "plane by plane; choose '3D volume' (or auto), or a 2D PSF"
            )
        return axes_for(mode, data.ndim, rgb=rgb), 3 if mode == "3D volume" else 2

    def _prepare(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        """Check the inputs; return the worker body, its arguments and the job's record."""
        layer = self.image.value
        if layer is None:
            raise ValueError("there is no image layer to restore; open or add an image first")
        name = self.method.value
        entry = self._entry()
        data = layer_data(layer)
        mode = self.mode.value
        label = name
        psf_spec = self.psf.spec(name) if entry["needs_psf"] else None
        if entry["kind"] == "classical":
            axes, k = self._classical_axes(entry, layer)
            params = self.method_params()
            device = self.device.value if name == "richardson-lucy" else None
            args = (data, name, params, axes, k, psf_spec, device)
            job = {"kind": "classical", "params": {**params, "mode": mode}}
            return classical_job, args, {"layer": layer, "method": label, **job}

        model = self.selected_model()
        if name == BROWSE:
            label = Path(model).name.removesuffix(".safetensors")
        axes = axes_for(mode, data.ndim, rgb=bool(layer.rgb))
        if mode == "3D volume" and entry["ndim"] != 3:
            raise ValueError(
                f"model {label!r} is a 2D model; '3D volume' needs a 3D model "
                "(or choose '2D slices' to restore plane by plane)"
            )
        if mode == "2D slices" and entry["ndim"] != 2:
            raise ValueError(
                f"model {label!r} is a 3D model; '2D slices' needs a 2D model "
                "(or choose '3D volume')"
            )
        options = {"axes": axes, "tile": self.tile.value or None, "device": self.device.value}
        job = {
            "kind": "model",
            "model": model,
            "tile": options["tile"],
            "params": {"mode": mode, "tile": options["tile"]},
        }
        args = (data, model, options, psf_spec)
        return model_job, args, {"layer": layer, "method": label, **job}

    def run(self) -> None:
        """Start restoring the chosen layer with the chosen method in a worker thread.

        Does nothing while a job is running (also a cancelled one that has not
        reached its next step yet): one job at a time.
        """
        if self.worker is not None or self._closed:
            return
        try:
            body, args, job = self._prepare()
        except (ValueError, TypeError) as err:
            show_error(f"Restore: {err}")
            return
        worker = make_worker(body, *args)
        worker.yielded.connect(partial(self._on_yielded, worker))
        worker.returned.connect(partial(self._on_returned, worker, job))
        worker.errored.connect(partial(self._on_errored, worker, job))
        worker.finished.connect(partial(self._on_finished, worker))
        self.worker = worker
        self._job = job
        reset_progress(self.progress)
        self.status.value = f"restoring {job['layer'].name!r} with {job['method']}..."
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        worker.start()

    def cancel(self) -> None:
        """Stop the running restoration at its next step (tile batch, iteration, plane, tile).

        A single call (e.g. Wiener on one plane) finishes first; Run is enabled
        again when the worker has ended.
        """
        worker = self.worker
        if worker is None or worker.abort_requested:
            return
        worker.quit()
        reset_progress(self.progress)
        self.status.value = "cancelling (the current step finishes first)..."
        self.cancel_button.enabled = False

    def close_workers(self) -> None:
        """The widget is closing: stop the job and stop listening to the viewer."""
        self._closed = True
        with contextlib.suppress(Exception):
            self._viewer.layers.events.removed.disconnect(self._on_layer_removed)
        if self.worker is not None:
            self.worker.quit()

    def _on_layer_removed(self, event: Any) -> None:
        """The source layer of the running job was deleted: stop the job, and say so."""
        job, worker = self._job, self.worker
        if worker is None or job is None or worker.abort_requested:
            return
        if event.value is not job["layer"]:
            return
        worker.quit()
        with contextlib.suppress(RuntimeError):
            self.status.value = "stopped: the source layer was deleted"
            self.cancel_button.enabled = False
        # (closing the viewer removes every layer first: this is said then too)
        show_error(
            f"Restore: the layer {job['layer'].name!r} was deleted while it was being "
            "restored; the restoration was stopped"
        )

    # ----------------------------------------------------- worker signals

    def _on_yielded(self, worker: Any, value: tuple[int, int]) -> None:
        if worker is not self.worker or worker.abort_requested or self._closed:
            return
        if value[1] == 0:
            show_busy(self.progress)
        else:
            show_progress(self.progress, value)

    def _on_returned(self, worker: Any, job: dict[str, Any], result: dict[str, Any]) -> None:
        if worker.abort_requested or self._closed:
            return
        from napari_deconvnet import __version__

        layer = job["layer"]
        record: dict[str, Any] = {
            "method": job["method"],
            "kind": job["kind"],
            "params": job["params"],
            "psf": result["psf"],
        }
        if job["kind"] == "model":
            record.update(model=job["model"], model_name=result["model_name"], tile=job["tile"])
            restored_writer.remember_model(job["model"], psf=result["kernel"])
        record.update(
            device=result["device"],
            axes=result["axes"],
            seconds=round(result["seconds"], 3),
            version=__version__,
            source=layer.name,
            lazy=result["lazy"],
        )
        limits = result["contrast_limits"]
        if limits is None:  # lazy: computing limits would compute the whole result
            limits = list(layer.contrast_limits)
        kwargs: dict[str, Any] = {
            "name": unique_name(self._viewer, f"{layer.name} [{job['method']}]"),
            "rgb": layer.rgb,
            "contrast_limits": limits,
            "metadata": {"napari_deconvnet": record},
            **geometry(layer),
        }
        if not layer.rgb:
            kwargs["colormap"] = layer.colormap
        self._viewer.add_image(result["data"], **kwargs)
        if worker is self.worker:
            self.progress.max = max(self.progress.max, 1)
            self.progress.value = self.progress.max
        self.status.value = (
            f"restored {layer.name!r} with {job['method']} in {result['seconds']:.1f} s"
        )

    def _on_errored(self, worker: Any, job: dict[str, Any], exc: BaseException) -> None:
        message = error_text(exc, _logger, f"restoring {job['layer'].name!r}")
        show_error(f"Restore of {job['layer'].name!r} with {job['method']} failed: {message}")
        if worker is self.worker and not self._closed:
            reset_progress(self.progress)
            self.status.value = "failed"

    def _on_finished(self, worker: Any) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        self._job = None
        if self._closed:
            return
        if worker.abort_requested:
            stopped = str(self.status.value).startswith("stopped")
            self._set_ready(self.status.value if stopped else "cancelled")
        else:
            self.run_button.enabled = True
            self.cancel_button.enabled = False

    def _set_ready(self, status: str) -> None:
        reset_progress(self.progress)
        self.status.value = status
        self.run_button.enabled = True
        self.cancel_button.enabled = False
