"""The Restore dock widget: run a deconvolution network on an image layer.

The network runs in a napari worker thread, so the viewer stays responsive;
a progress bar follows the tiles and Cancel stops the work at the next batch
of tiles. The result is a new layer with the source's geometry and a record
of how it was made in ``layer.metadata["napari_deconvnet"]``.

torch and the core are imported inside the callbacks, never at module top,
so that opening napari stays fast.
"""

import logging
import time
from collections.abc import Generator
from functools import partial
from typing import Any

import napari
import napari.viewer
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.utils.notifications import show_error

from napari_deconvnet.io import registry

from ._common import DEVICES, error_text, make_worker, reset_progress, show_progress
from ._layers import (
    contrast_limits,
    follow_layers,
    geometry,
    image_layers,
    keep_selection,
    layer_data,
    unique_name,
)

__all__ = ["RestoreWidget", "axes_for"]

_logger = logging.getLogger(__name__)

BROWSE = "browse..."
MODES = ("auto", "2D slices", "3D volume")


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


def _restore_job(
    image: Any, model: str, options: dict[str, Any]
) -> Generator[tuple[int, int], None, dict[str, Any]]:
    """Worker body: load, restore tile by tile (yielding progress), summarise.

    Runs in the worker thread, so everything slow happens here: loading the
    model, reading lazy data, the network and the contrast statistics.
    """
    from napari_deconvnet.core.devices import resolve_device
    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.tiling import infer_axes, restore_iter

    start = time.perf_counter()
    net = load_model(model)
    device = resolve_device(options["device"])
    axes = options["axes"] or infer_axes(image.shape, net)
    result = yield from restore_iter(image, net, **{**options, "axes": axes})
    seconds = time.perf_counter() - start
    return {
        "data": result,
        "seconds": seconds,
        "axes": axes,
        "device": str(device),
        "model_name": net.metadata.get("name", str(model)),
        "contrast_limits": contrast_limits(result),
    }


class RestoreWidget(Container):
    """Restore an image layer with a shipped or saved deconvolution network.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose image layers are offered and which receives the
        restored layer.

    Attributes
    ----------
    image, model, model_file, mode, tile, device : magicgui widgets
        The inputs. ``model`` lists the shipped models and ``"browse..."``,
        which shows ``model_file`` to pick a ``.safetensors`` model.
    run_button, cancel_button, progress, status : magicgui widgets
    worker : napari GeneratorWorker or None
        The running restoration, if any.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self._viewer = viewer
        self.worker = None

        self.image = ComboBox(label="Image", choices=self._image_layers)
        self.model = ComboBox(label="Model", choices=self._model_choices)
        self.model_file = FileEdit(
            label="Model file", mode="r", filter="*.safetensors", visible=False
        )
        self.mode = ComboBox(label="Mode", choices=MODES, value="auto")
        self.mode.tooltip = (
            "auto: guess from the image and the model; 2D slices: restore every plane "
            "on its own with a 2D model; 3D volume: restore volumes with a 3D model"
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
                self.model,
                self.model_file,
                self.mode,
                self.tile,
                self.device,
                self.run_button,
                self.cancel_button,
                self.progress,
                self.status,
            ]
        )

        self.model.changed.connect(self._on_model_changed)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self._on_model_changed(self.model.value)

        follow_layers(self, viewer, extra=(registry.changed,))  # a model file was opened
        self.reset_choices()

    # ------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return image_layers(self._viewer)

    @staticmethod
    def _model_choices(_widget: Any = None) -> list[str]:
        """Shipped models, then model files opened in napari (the registry)."""
        import napari_deconvnet as dn

        return [*dn.list_models(), *registry.registered_models(), BROWSE]

    def reset_choices(self, *_: Any) -> None:
        """Re-read the image layers; the selection stays on the same layer.

        Choices are keyed by layer name, so without this a rename or reorder
        would move the selection to the first layer.
        """
        current = self.image.value
        super().reset_choices()
        keep_selection(self.image, self._image_layers(), current)

    def _on_model_changed(self, value: str) -> None:
        self.model_file.visible = value == BROWSE
        if value == BROWSE:
            self.model.tooltip = "Pick a .safetensors model file saved by napari-deconvnet"
            return
        import napari_deconvnet as dn

        self.model.tooltip = dn.list_models().get(value) or registry.resolve(value or "")

    def selected_model(self) -> str:
        """The model to run: a shipped name or the path of a model file."""
        if self.model.value != BROWSE:
            return registry.resolve(self.model.value)
        path = self.model_file.value
        if path is None or not path.is_file():
            raise ValueError(
                f"no model file chosen ({str(path)!r} is not a file); pick a .safetensors "
                "model file or choose a shipped model"
            )
        return str(path)

    # ---------------------------------------------------------------- run

    def _check_inputs(self) -> tuple[Image, str, dict[str, Any]]:
        from napari_deconvnet.core.persistence import model_info

        layer = self.image.value
        if layer is None:
            raise ValueError("there is no image layer to restore; open or add an image first")
        model = self.selected_model()
        mode = self.mode.value
        data = layer_data(layer)
        axes = axes_for(mode, data.ndim, rgb=bool(layer.rgb))
        model_ndim = model_info(model)["config"]["ndim"]
        if mode == "3D volume" and model_ndim != 3:
            raise ValueError(
                f"model {model!r} is a 2D model; '3D volume' needs a 3D model "
                "(or choose '2D slices' to restore plane by plane)"
            )
        if mode == "2D slices" and model_ndim != 2:
            raise ValueError(
                f"model {model!r} is a 3D model; '2D slices' needs a 2D model "
                "(or choose '3D volume')"
            )
        options = {
            "axes": axes,
            "tile": self.tile.value or None,
            "device": self.device.value,
        }
        return layer, model, options

    def run(self) -> None:
        """Start restoring the chosen layer in a worker thread."""
        if self.worker is not None and not self.worker.abort_requested:
            return
        try:
            layer, model, options = self._check_inputs()
        except (ValueError, TypeError) as err:
            show_error(f"Restore: {err}")
            return
        data = layer_data(layer)
        job = {"layer": layer, "model": model, **options}
        worker = make_worker(_restore_job, data, model, options)
        worker.yielded.connect(partial(self._on_yielded, worker))
        worker.returned.connect(partial(self._on_returned, worker, job))
        worker.errored.connect(partial(self._on_errored, worker, job))
        worker.finished.connect(partial(self._on_finished, worker))
        self.worker = worker
        reset_progress(self.progress)
        self.status.value = f"restoring {layer.name!r}..."
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        worker.start()

    def cancel(self) -> None:
        """Stop the running restoration at its next batch of tiles."""
        worker = self.worker
        if worker is None:
            return
        worker.quit()
        self._set_ready("cancelled")

    def close_workers(self) -> None:
        if self.worker is not None:
            self.worker.quit()

    # ----------------------------------------------------- worker signals

    def _on_yielded(self, worker: Any, value: tuple[int, int]) -> None:
        if worker is not self.worker or worker.abort_requested:
            return
        show_progress(self.progress, value)

    def _on_returned(self, worker: Any, job: dict[str, Any], result: dict[str, Any]) -> None:
        if worker.abort_requested:
            return
        from napari_deconvnet import __version__

        layer = job["layer"]
        kwargs: dict[str, Any] = {
            "name": unique_name(self._viewer, f"{layer.name} restored"),
            "rgb": layer.rgb,
            "contrast_limits": result["contrast_limits"],
            "metadata": {
                "napari_deconvnet": {
                    "model": job["model"],
                    "model_name": result["model_name"],
                    "tile": job["tile"],
                    "device": result["device"],
                    "axes": result["axes"],
                    "seconds": round(result["seconds"], 3),
                    "version": __version__,
                    "source": layer.name,
                }
            },
            **geometry(layer),
        }
        if not layer.rgb:
            kwargs["colormap"] = layer.colormap
        self._viewer.add_image(result["data"], **kwargs)
        self.status.value = f"restored {layer.name!r} in {result['seconds']:.1f} s"

    def _on_errored(self, worker: Any, job: dict[str, Any], exc: BaseException) -> None:
        message = error_text(exc, _logger, f"restoring {job['layer'].name!r}")
        show_error(f"Restore of {job['layer'].name!r} failed: {message}")
        if worker is self.worker:
            self.status.value = "failed"

    def _on_finished(self, worker: Any) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        if worker.abort_requested:
            self._set_ready("cancelled")
        else:
            self.run_button.enabled = True
            self.cancel_button.enabled = False

    def _set_ready(self, status: str) -> None:
        reset_progress(self.progress)
        self.status.value = status
        self.run_button.enabled = True
        self.cancel_button.enabled = False
