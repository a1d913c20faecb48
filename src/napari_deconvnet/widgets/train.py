"""The Train dock widget: fit a deconvolution network to the user's own layers.

Training runs in a napari worker thread (:func:`napari_deconvnet.train_iter`),
so the viewer stays responsive (:mod:`._train_job`), through the dock
widgets' one worker base (:class:`._worker.WorkerWidget`: Train, Stop,
progress and error notifications). Every epoch the loss plot
(:mod:`._train_plot`) and an ``"<input> preview"`` layer are updated on the
GUI thread; a progress bar shows the ETA; Stop ends the run after the
current step and keeps the best model, which can then be saved or offered to
the Restore widget in the same session. Synthetic pairs are described by a
noise model and a PSF rendered from the core's specs (:mod:`._train_form`).
*Start from* preselects the shipped model that fits the task
(:func:`suggested_start`), so that training fine-tunes by default.
*Mode* "Adapt to this image (no clean data)" adapts a shipped model to the
input layer's noise and PSF instead (:mod:`._train_adapt`), through the same
worker, plot, preview and buttons. Every training autosaves into the session
folder, and *Resume the last session* continues it (:mod:`._train_session`).

torch, matplotlib and the core are imported inside the callbacks, never at
module top, so that opening napari stays fast.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import napari
import napari.viewer
from magicgui.widgets import CheckBox, ComboBox, Label, PushButton, Select, SpinBox
from napari.layers import Image, Labels, Shapes
from napari.utils.notifications import show_error, show_info

from ..core.losses import LOSSES as _LOSSES
from ..core.provenance import of as provenance_of
from ._common import DEVICES, show_progress
from ._layers import clean_layer_for, follow_layers, image_layers, layer_data
from ._psf import FROM_LAYER, NO_PSF, PsfPicker, looks_like_psf, off_psf_layers
from ._train_adapt import ADAPT, TRAIN_LAYERS, AdaptForm, adapt_start
from ._train_collect import collect_adapt, collect_training, start_needs_psf
from ._train_form import (
    KEEP_CHOICES,
    NEW_NETWORK,
    SELF_SUPERVISED,
    SELF_SUPERVISION,
    SYNTHETIC,
    SyntheticPairsForm,
    suggested_start,
)
from ._train_job import adapt_job as _adapt_job
from ._train_job import train_job as _train_job
from ._train_output import ask_model_path, register_for_restore, write_model
from ._train_plot import LossPlot
from ._train_preview import preview_request, show_preview
from ._train_regions import shapes_to_polygons
from ._train_session import (
    apply_settings,
    can_resume,
    check_resume_mode,
    form_settings,
    read_settings,
    session_folder,
    session_summary,
    start_session,
)
from ._worker import Job, WorkerWidget

__all__ = [
    "ADAPT",
    "NEW_NETWORK",
    "SELF_SUPERVISED",
    "SYNTHETIC",
    "TRAIN_LAYERS",
    "TrainWidget",
    "shapes_to_polygons",
    "suggested_start",
]

#: The engine's losses, in the order the Loss menu lists them.
LOSSES = _LOSSES

#: Steps of the progress bar (the engine reports a fraction).
_PROGRESS_STEPS = 1000


def _notify(message: str) -> None:
    """napari's notification (looked up when called, so that tests can catch it)."""
    show_error(message)


class TrainWidget(WorkerWidget):
    """Train a deconvolution network on image layers, with live curves and a preview.

    Parameters
    ----------
    viewer : napari.viewer.Viewer

    Attributes
    ----------
    mode : magicgui ComboBox
        ``"Train on layers"`` or ``"Adapt to this image (no clean data)"``
        (then `adapt` is shown, and the target, synthetic, epoch, loss and
        region fields are hidden).
    adapt : AdaptForm
        Adaptation's PSF picker (``adapt.psf``) and time budget (``adapt.seconds``).
    resume : magicgui CheckBox
        "Resume the last session", enabled when the session folder holds an
        autosaved run; ticking it puts that run's settings back in the form.
    image, target : magicgui ComboBoxes
        The input layer; the target layer, or ``"none: self-supervised"``, or
        ``"synthetic: noise model + PSF"`` (then `synthetic` is shown).
    synthetic : SyntheticPairsForm
        The noise model (``synthetic.noise``, also ``noise``) with its
        parameters and the PSF picker (``synthetic.psf``).
    pair_psf : PsfPicker
        The PSF a target layer's input was blurred with, shown when a
        deconvolution model (``deconv-2d``...) fine-tunes on a target layer:
        its classical input channel needs it.
    dims, patch_size, batch_size, epochs, max_seconds, loss, device, start_from
        Training settings (``epochs`` or ``max_seconds`` 0 means unbounded
        by it). ``start_from`` follows the task (:func:`suggested_start`)
        until the user chooses; ``start_hint`` says why.
    regions, validation_region : magicgui ComboBoxes
        Optional Shapes layer restricting training patches; optional Shapes
        or Labels layer marking the validation area.
    train_button, stop_button, save_button, use_button, progress, status
        ``train_button`` and ``stop_button`` are the base's ``run_button``
        and ``cancel_button``.
    plot : LossPlot
        The loss curves (``plot.figure``, ``plot.canvas``).
    worker : the running training, if any (until its thread has ended)
    result : napari_deconvnet.TrainResult or None
        The last finished training.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer, title="Train", run_text="Train", notify=_notify)
        self.result = None
        self.restore_name: str | None = None
        self._stop_event: threading.Event | None = None
        self._preview_request: dict[str, Any] | None = None
        self._running: dict[str, Any] | None = None  # the running job's layer and net_ndim
        self._start_chosen = False  # the user picked "Start from": stop following the task
        self._suggesting = False

        self.mode = ComboBox(label="Mode", choices=(TRAIN_LAYERS, ADAPT), value=TRAIN_LAYERS)
        self.mode.tooltip = (
            "Train on layers (a target, self-supervised or synthetic pairs), or adapt a "
            "shipped model to this image's noise and PSF without clean data"
        )
        self.image = ComboBox(label="Input", choices=self._image_layers)
        self.more = Select(label="Also train on", choices=self._more_choices)
        self.more.tooltip = (
            "More layers to train on with the input (other fields of view, other "
            "acquisitions); supervised, each takes the clean layer of its shape named most "
            "like it as its target. Train in/Validate in apply to the input layer"
        )
        with contextlib.suppress(AttributeError):
            self.more.native.setMaximumHeight(90)
        self.target = ComboBox(label="Target", choices=self._target_choices)
        self.target.tooltip = (
            "A clean/unblurred layer (supervised), none (self-supervised Noise2Void: noise "
            "must be independent from pixel to pixel), or synthetic (the input is clean; "
            "noise and blur are simulated)"
        )
        self.dims = ComboBox(label="Network", choices=("2D", "3D"), value="2D")
        self.patch_size = SpinBox(label="Patch size (0 = auto)", value=0, min=0, max=1024, step=8)
        self.patch_size.tooltip = (
            "Side of the training patches in pixels. 0: automatic, 64 (3D: 32x64x64), "
            "smaller where the layer or its regions are small"
        )
        self.batch_size = SpinBox(label="Batch size", value=16, min=1, max=1024)
        self.epochs = SpinBox(label="Epochs (0 = no limit)", value=20, min=0, max=100000)
        self.max_seconds = SpinBox(label="Time budget s (0 = none)", value=0, min=0, max=10**7)
        self.loss = ComboBox(label="Loss", choices=LOSSES, value="mse")
        self.self_supervision = ComboBox(
            label="Self-supervision", choices=list(SELF_SUPERVISION), value="automatic"
        )
        self.self_supervision.tooltip = (
            "How training on the noisy layer alone hides each pixel's own noise: automatic "
            "is Neighbor2Neighbor for a new network (pairs of neighbouring pixels; better "
            "from scratch, measured) and Noise2Void's blind spot when fine-tuning"
        )
        self.device = ComboBox(label="Device", choices=DEVICES, value="auto")
        self.start_from = ComboBox(label="Start from", choices=self._model_choices)
        self.start_from.tooltip = "A new network, or fine-tune a shipped or opened model"
        self.start_hint = Label(label="", value="")
        self.keep = ComboBox(
            label="Keep what it knew", choices=list(KEEP_CHOICES), value="yes (default)"
        )
        self.keep.tooltip = (
            "Fine-tuning: pull the weights toward the start (L2-SP) and rehearse the shipped "
            "noise, so that the model stays good on other data (default); 'no' makes a "
            "specialist of your data, better on it and much worse elsewhere (restores of "
            "unlike data then warn)"
        )
        self.synthetic = SyntheticPairsForm(viewer, exclude=lambda: self.image.value)
        self.noise = self.synthetic.noise
        self.pair_psf = PsfPicker(
            viewer, exclude=lambda: self.image.value, optional=True, label="Pairs' PSF"
        )
        self.pair_psf.source.tooltip = (
            "The PSF the input layer is blurred with: a deconvolution model's classical input "
            "channel is computed with it, as Restore does"
        )
        self.adapt = AdaptForm(viewer, exclude=lambda: self.image.value)
        self.resume = CheckBox(text="Resume the last session", value=False)
        self.resume.tooltip = (
            "Continue the last training (autosaved every epoch) after a crash or a closed "
            "viewer; epochs and the time budget count the whole run"
        )
        self.regions = ComboBox(label="Train in", choices=self._shapes_layers)
        self.regions.tooltip = "Optional Shapes layer: patches come from its rectangles/polygons"
        self.validation_region = ComboBox(label="Validate in", choices=self._region_layers)
        self.validation_region.tooltip = (
            "Optional Shapes or Labels layer: validation patches come from there and training "
            "patches never overlap it (default: 10% of the data is held out)"
        )
        self.train_button = self.run_button
        self.stop_button = self.cancel_button
        self.stop_button.text = "Stop"
        self.save_button = PushButton(text="Save model...", enabled=False)
        self.use_button = PushButton(text="Use in Restore", enabled=False)
        self.extend(
            [
                self.mode,
                self.image,
                self.target,
                self.more,
                self.synthetic,
                self.pair_psf,
                self.adapt,
                self.dims,
                self.patch_size,
                self.batch_size,
                self.epochs,
                self.max_seconds,
                self.loss,
                self.self_supervision,
                self.device,
                self.start_from,
                self.start_hint,
                self.keep,
                self.regions,
                self.validation_region,
                self.resume,
                *self.controls(),
                self.save_button,
                self.use_button,
            ]
        )
        self.plot = LossPlot(self._theme())
        self.native.layout().addWidget(self.plot.canvas)
        self.synthetic.refresh()  # in the dock now: its forms can show
        self.pair_psf.refresh()
        self.adapt.refresh()

        self.mode.changed.connect(self._update_visibility)
        self._picked: set[str] = set()  # "target", "dims": chosen by hand, no preselection
        self._presetting = False
        self.target.changed.connect(lambda *_: self._on_picked("target"))
        self.image.native.activated.connect(lambda *_: self._on_picked("image"))
        self.dims.changed.connect(lambda *_: self._on_picked("dims"))
        self.pair_psf.source.changed.connect(lambda *_: self._on_picked("pair_psf"))
        self.adapt.psf.source.changed.connect(lambda *_: self._on_picked("adapt_psf"))
        self.image.changed.connect(self._preselect_for_image)
        for field in (self.image, self.target):  # neither is offered as another input
            field.changed.connect(lambda *_: self.more.reset_choices())
        self.target.changed.connect(self._update_visibility)
        self.image.changed.connect(self._suggest_start)  # blurred pairs or noisy ones
        self.adapt.psf.source.changed.connect(self._suggest_start)
        self.resume.changed.connect(self._on_resume_toggled)
        self.dims.changed.connect(self._suggest_start)
        self.synthetic.psf.source.changed.connect(self._suggest_start)
        self.synthetic.noise.changed.connect(self._suggest_start)  # salt-and-pepper
        self.pair_psf.source.changed.connect(self._suggest_start)  # the hint's PSF step
        self.start_from.changed.connect(self._on_start_chosen)
        self.start_from.changed.connect(self._update_keep)
        self.save_button.changed.connect(lambda: self.save_model())
        self.use_button.changed.connect(self.use_in_restore)

        from napari_deconvnet.io import registry

        follow_layers(self, viewer, extra=(registry.changed,))
        viewer.dims.events.current_step.connect(self._on_view_changed)
        if hasattr(getattr(viewer, "events", None), "theme"):
            viewer.events.theme.connect(self._on_theme)
        self.reset_choices()
        self._update_visibility()

    # the loss plot's curves (the tests and screenshots read them)
    train_line = property(lambda self: self.plot.train_line)
    val_line = property(lambda self: self.plot.val_line)

    # ------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return image_layers(self._viewer)

    def _more_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        """Image layers to train on besides the input: not the input, its target, a
        layer that looks like a PSF or a training preview (this widget's)."""
        skip = (self.image.value, self.target.value) if hasattr(self, "target") else ()
        return [
            (name, layer)
            for name, layer in self._image_layers()
            if all(layer is not other for other in skip)
            and not looks_like_psf(layer)
            and "preview_of" not in provenance_of(layer.metadata)
        ]

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
        self._suggesting = True  # a re-read "Start from" list is not the user's choice
        # nor is a field's value changed by the re-read (its layer removed): the target
        # was taken as picked by hand, and no clean layer preselected ever after
        presetting, self._presetting = getattr(self, "_presetting", False), True
        try:
            super().reset_choices()
        finally:
            self._suggesting = False
            self._presetting = presetting
        self._presetting = True  # the choices change: no pick by hand
        try:
            for widget, value in keep.items():
                with contextlib.suppress(ValueError, TypeError):
                    if any(value is choice for choice in widget.choices):
                        widget.value = value
        finally:
            self._presetting = False
        if hasattr(self, "_picked"):  # (built: the first call comes from __init__)
            if "image" not in self._picked:  # training on a PSF opened first: never meant
                self._presetting = True
                try:
                    off_psf_layers(self.image, self._image_layers())
                finally:
                    self._presetting = False
            self._preselect_for_image()

    def _on_picked(self, name: str) -> None:
        if not self._presetting:
            self._picked.add(name)

    def _preselect_for_image(self, *_: Any) -> None:
        """Until picked by hand: the *Target* is a layer of the input's shape that looks
        clean (a sample's clean layer, or one named like clean, ground truth or gt; else
        it stays self-supervised), the *Network* is 3D for an input with three spatial
        axes (a volume; a time-lapse labelled t, y, x stays 2D), as Restore chooses,
        and the adaptation's PSF a layer that looks like a PSF."""
        from ._methods import spatial_dims

        image = self.image.value
        if not isinstance(image, Image):
            return
        self._presetting = True
        try:
            auto = getattr(self, "_auto_target", None)  # the target preselected last
            if "target" not in self._picked and (
                self.target.value in (SELF_SUPERVISED, image) or self.target.value is auto
            ):
                # named most like the input: its own channel's after Split Stack
                layers = [layer for _, layer in self._image_layers()]
                clean = clean_layer_for(image, layers)
                if clean is not None:
                    self.target.value = clean
                    self._auto_target = clean
            for picker in (self.pair_psf, self.adapt.psf):  # the PSF named like the input
                picker.reset_layer_choices(picker.layer.value)
            if "dims" not in self._picked:
                with contextlib.suppress(ValueError, TypeError, IndexError):
                    self.dims.value = "3D" if spatial_dims(image) == 3 else "2D"
            # adapting beside a PSF layer adapts a deconvolution model to that PSF
            psf_layer = self.adapt.psf.layer.value
            if (
                "adapt_psf" not in self._picked
                and self.adapt.psf.source.value == NO_PSF
                and psf_layer is not None
                and looks_like_psf(psf_layer)
            ):
                self.adapt.psf.source.value = FROM_LAYER
        finally:
            self._presetting = False
        # and the pairs' PSF, now that a PSF layer may be offered (a sample opened, or
        # layers added, after the widget was docked: it stayed "none" and Train refused)
        self._update_pair_psf()

    def _update_visibility(self, *_: Any) -> None:
        adapting = self.mode.value == ADAPT
        self.synthetic.visible = not adapting and self.target.value == SYNTHETIC
        self._update_pair_psf()
        self.adapt.visible = adapting
        fields = (self.target, self.more, self.epochs, self.max_seconds, self.loss, self.regions)
        for field in fields:
            field.visible = not adapting
        self.validation_region.visible = not adapting
        self.self_supervision.visible = not adapting and self.target.value == SELF_SUPERVISED
        self._refresh_resume()
        self._suggest_start()
        self._update_keep()

    def _update_keep(self, *_: Any) -> None:
        """*Keep what it knew*: shown when fine-tuning on layers (not for a new network)."""
        self.keep.visible = self.mode.value != ADAPT and self.start_from.value != NEW_NETWORK

    def _refresh_resume(self) -> None:
        """Resume is offered when the session folder holds a run (a training or an adaptation)."""
        available = can_resume(session_folder())
        self.resume.enabled = available
        if not available and self.resume.value:
            self.resume.value = False

    def _on_resume_toggled(self, value: bool) -> None:
        """Ticked: the autosaved run's settings come back into the form."""
        settings = read_settings(session_folder()) if value else None
        if settings is not None:
            apply_settings(self, settings)
            summary = session_summary(session_folder())
            text = "Train resumes the last session"
            self.status.value = text if summary is None else f"{text} ({summary})"

    def _suggest_start(self, *_: Any) -> None:
        """Preselect the shipped model that fits the task, until the user chooses one."""
        net_ndim = 3 if self.dims.value == "3D" else 2
        models = list(self.start_from.choices)
        chosen = self._start_chosen
        if self.mode.value == ADAPT:  # adapting fine-tunes: a new network is never kept
            psf = self.adapt.psf.source.value != "none"
            choice, why = adapt_start(net_ndim, psf, models)
            choice = self.start_from.value if choice is None else choice
            chosen = chosen and self.start_from.value != NEW_NETWORK
        else:
            psf = self.synthetic.psf.source.value != "none"
            blurred = self._pairs_look_blurred()
            noise = self.synthetic.noise.value
            choice, why = suggested_start(
                self.target.value,
                net_ndim,
                psf,
                models,
                blurred,
                synthetic_noise=noise,
                pairs_psf=self.pair_psf.source.value != NO_PSF,
            )
        if chosen:
            if self.start_from.value != choice:
                why = f"suggested: {choice}"
            else:
                why = why.split(":")[0] if choice == NEW_NETWORK else why
        else:
            self._suggesting = True
            try:
                self.start_from.value = choice
            finally:
                self._suggesting = False
        self.start_hint.value = why

    def _pairs_look_blurred(self) -> bool:
        """Whether the input and target layers differ by a blur (a central crop, not noise)."""
        from napari_deconvnet.core.noise_estimation import pairs_look_blurred

        source, target = self.image.value, self.target.value
        if not (isinstance(source, Image) and isinstance(target, Image)) or source is target:
            return False

        def plane_data(layer: Image) -> Any:
            data = layer.data[0] if layer.multiscale else layer.data
            return data[..., 0] if layer.rgb else data

        try:
            return pairs_look_blurred(plane_data(source), plane_data(target))
        except (ValueError, TypeError):  # other shapes or values: Train says so on start
            return False

    def _on_start_chosen(self, *_: Any) -> None:
        if not self._suggesting:
            self._start_chosen = True
            self._suggest_start()
        self._update_pair_psf()

    def _update_pair_psf(self) -> None:
        """Pairs' PSF: shown for a deconvolution *Start from* trained on a target layer."""
        adapting = self.mode.value == ADAPT
        shown = (
            not adapting
            and isinstance(self.target.value, Image)
            and start_needs_psf(self.start_from.value)
        )
        self.pair_psf.visible = shown
        # a layer that looks like a PSF (a sample's, or named so) is the pairs' PSF,
        # as Restore takes it, until a source is picked by hand
        layer = self.pair_psf.layer.value
        if (
            shown
            and "pair_psf" not in getattr(self, "_picked", {"pair_psf"})
            and self.pair_psf.source.value == NO_PSF
            and layer is not None
            and looks_like_psf(layer)
        ):
            self._presetting = True
            try:
                self.pair_psf.source.value = FROM_LAYER
            finally:
                self._presetting = False

    def _theme(self) -> Any:
        """The viewer's theme, for the plot's colours (None if unknown)."""
        try:
            from napari.utils.theme import get_theme

            return get_theme(self._viewer.theme)
        except (AttributeError, KeyError, ValueError, TypeError):
            return None

    def _on_theme(self, *_: Any) -> None:
        """The viewer's theme changed: the plot follows (it kept the theme it was docked
        with, dark on a light viewer, session 70)."""
        theme = self._theme()
        if theme is not None and not self._closed:
            self.plot.style(theme)
            self.plot.canvas.draw_idle()

    def _plot(self, history: list[dict[str, Any]]) -> None:
        self.plot.plot(history)

    # ------------------------------------------------------------ preview

    def _on_view_changed(self, *_: Any) -> None:
        running = self._running
        if self.worker is None or running is None or self._closed:
            return
        if running["layer"] not in self._viewer.layers:  # deleted: no more previews
            self._preview_request = None
            return
        if running["layer"].data is not running["data"]:
            # its data replaced: the run trains on (and previews) what it took at Run; a
            # region of the new data's shape failed the whole training (session 70)
            return
        self._preview_request = preview_request(
            self._viewer, running["layer"], running["net_ndim"]
        )

    def _current_request(self) -> dict[str, Any] | None:
        """The region to preview now (read by the worker thread every epoch)."""
        return self._preview_request

    # ------------------------------------------------------------ train

    def _session_options(self) -> dict[str, Any]:
        """The engine's ``autosave`` (and ``resume``) options of a training (GUI thread)."""
        try:
            return start_session(
                session_folder(), form_settings(self), resume=bool(self.resume.value)
            )
        except OSError as err:  # no autosave, but training still runs
            show_info(f"Train: no autosave ({err})")
            return {}

    def train(self) -> None:
        """Start training (or adapting) in a worker thread (nothing happens while one runs)."""
        self.run()

    def prepare(self) -> Job:
        """Check the form (GUI thread) and describe the training or adaptation to run.

        The deleted input layer does not stop training (only its previews).
        """
        if self.resume.value:
            check_resume_mode(session_folder(), self.mode.value)
        if self.mode.value == ADAPT:
            job = collect_adapt(self)
            body, args, verb = _adapt_job, job["args"], "adapting to"
            options = args[2]
            options.update(self._session_options())
        else:
            job = collect_training(self)
            options = job["options"]
            options.update(self._session_options())
            body, args, verb = _train_job, (job["data"], job["targets"], options), "training on"
        layer = job["layer"]
        self._stop_event = threading.Event()
        options["stop"] = self._stop_event
        self._running = {"layer": layer, "net_ndim": job["net_ndim"], "data": layer.data}
        self._preview_request = preview_request(self._viewer, layer, job["net_ndim"])
        self._plot([{"epoch": 0}])
        return Job(
            body,
            (*args, layer_data(layer), self._current_request),
            message=f"preparing {layer.name!r}...",
            failure=f"Train: {verb} {layer.name!r} failed",
            done=self._on_trained,
            yielded=self._on_event,
        )

    def cancel(self) -> None:
        """End training after the current step; the best model so far is kept.

        Train comes back when the worker has ended (with the best model).
        """
        if self.worker is None or self._stop_event is None or self._stop_event.is_set():
            return
        self._stop_event.set()
        self.status.value = "stopping..."
        self.stop_button.enabled = False

    stop = cancel

    def close_workers(self) -> None:
        """The dock was closed: stop training; late signals of the worker are ignored."""
        if self._stop_event is not None:
            self._stop_event.set()
        super().close_workers()

    # ----------------------------------------------------- worker results

    def _on_event(self, summary: dict[str, Any]) -> None:
        """A training event (GUI thread): progress, status, loss curves and the preview."""
        show_progress(
            self.progress, (round(_PROGRESS_STEPS * summary["progress"]), _PROGRESS_STEPS)
        )
        eta = summary["eta"]
        text = f"epoch {summary['epoch']}, step {summary['step']}"
        if summary["train_loss"] is not None:
            text += f", loss {summary['train_loss']:.4g}"
        if eta is not None:
            text += f", ETA {eta:.0f} s"
        if self._stop_event is None or not self._stop_event.is_set():
            self.status.value = text
        if summary["kind"] in ("start", "epoch"):
            self._plot(summary["history"])
            layer = self._running["layer"] if self._running is not None else None
            if summary.get("preview") is not None and layer in self._viewer.layers:
                show_preview(self._viewer, layer, summary["preview"], summary["preview_request"])

    def _on_finished(self, worker: Any) -> None:
        """The run ended, however: the layer and its data it held are let go (a deleted
        layer's array stayed in memory until the next run, session 70)."""
        if worker is self.worker:
            self._running = None
            self._preview_request = None
        super()._on_finished(worker)

    def _on_trained(self, result: Any) -> str | None:
        """Training ended with `result` (a TrainResult): keep it and say how it went."""
        self._refresh_resume()
        if result is None:
            return None
        self.result = result
        self.restore_name = None
        self._plot(result.history)
        self.save_button.enabled = True
        self.use_button.enabled = True
        # the scores of the weights returned (the moving average's when it won; an
        # adaptation records its best as best_val_psnr)
        best = (result.model.metadata or {}).get("training") or {}
        psnr = best.get("val_psnr")
        if psnr is None:
            psnr = best.get("best_val_psnr")
        text = f"{result.message}; best epoch {result.best_epoch}"
        if psnr is not None:
            text += f", val PSNR {psnr:.2f} dB"
        if result.stop_reason == "non-finite loss":
            self.notify(f"Train: {result.message}")
        return text

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
                path = ask_model_path(self.native, model)
                if path is None:
                    return None
            saved = write_model(model, path)
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
        if self.restore_name is None:
            self.restore_name = register_for_restore(model)
            self.status.value = f"available in Restore as {self.restore_name!r}"
        return self.restore_name
