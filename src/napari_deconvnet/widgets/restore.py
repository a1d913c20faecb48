"""The Restore dock widget: restore an image layer with a network or a classical method.

One list offers every method of :func:`napari_deconvnet.list_methods`: the
shipped models, the model files opened in napari, any other model file
("Model file…"), and the classical methods (Richardson-Lucy, Wiener,
non-local means, TV, wavelets, BM3D if installed, median...), including any
registered later. A line under the list says when to use the chosen method;
its parameters are rendered from its spec (defaults, ranges, labels and help
are the spec's), and the PSF picker appears for the methods that deconvolve
(any registered PSF kind, or an image layer holding one).

The method that fits the chosen layer and the viewer is preselected (a volume
with a PSF layer beside it: ``deconv-3d``; a 2D image: ``denoise-2d``), and
follows the chosen layer until a method is picked by hand. A layer that looks
like a PSF also becomes the PSF source ("from layer") until a source is
picked by hand.

A layer's ``axis_labels``, when they name its axes (``t, y, x``; ``z, y, x``;
``c``...), say which axes are spatial: a time-lapse labelled ``t, y, x`` is
restored frame by frame (never as a volume, never with a 3D model or PSF),
and its record says ``"TYX"``. Unlabelled layers (napari's ``axis -3``...)
are read from their shape.

Every method runs through :func:`napari_deconvnet.core.operations.run_method_iter`
in a napari worker thread (:class:`~napari_deconvnet.widgets._worker.WorkerWidget`),
so the viewer stays responsive: a progress bar follows the core's steps, Cancel
stops at the next one, and Run stays disabled until the worker has ended;
deleting the source layer or closing the widget stops the job too. A lazy layer
(dask, zarr) gives a lazy result: nothing is loaded whole, and napari computes
the planes it shows (a layer of up to 2**22 values is read once, in the
worker, to search it for objects far brighter than its scene:
:mod:`~napari_deconvnet.core.dynamic_range`). The result is a new layer named
``"<input> [<method>]"``
with the source's geometry and a record of how it was made (method,
parameters, PSF) in ``layer.metadata["napari_deconvnet"]``.

torch and the core's compute are imported inside the callbacks, never at
module top, so that opening napari stays fast.
"""

import contextlib
from functools import partial
from pathlib import Path
from typing import Any

import napari
import napari.viewer
from magicgui.widgets import ComboBox, FileEdit, Label
from napari.layers import Image
from napari.utils.notifications import show_error, show_warning

from napari_deconvnet.core.axes import anisotropy_note, z_step_ratio
from napari_deconvnet.core.model_specs import model_spec
from napari_deconvnet.core.provenance import record
from napari_deconvnet.core.specs import Spec
from napari_deconvnet.io import registry, restored_writer

from ._common import DEVICES
from ._forms import SpecForms, flush_left
from ._layers import add_result, follow_layers, image_layers, keep_selection, layer_data
from ._methods import (
    BROWSE,
    BROWSE_HELP,
    BROWSE_SPEC,
    labelled_axes,
    method_catalogue,
    plane_axes,
    preferred_method,
    restore_job,
    spatial_dims,
)
from ._psf import FROM_LAYER, PsfPicker, looks_like_psf, off_psf_layers, psf_ndim
from ._worker import Job, WorkerWidget

__all__ = ["BROWSE", "MODES", "RestoreWidget", "axes_for", "method_catalogue"]

MODES = ("auto", "2D slices", "3D volume")


def _notify(message: str) -> None:
    """napari's notification (looked up when called, so that tests can catch it)."""
    show_error(message)


def pixel_size_note(psf_layer: Any, layer: Any) -> str | None:
    """Words when a PSF layer's pixels are not the image's (the layers' scale and units,
    on the PSF's axes, 2% apart or more), else None: the PSF is used pixel for pixel."""
    if psf_layer is None:
        return None
    # (napari's ndim and scale leave an RGB layer's colour axis out already: taking it
    # out again compared the PSF's X with the image's Y, one axis only)
    k = min(psf_layer.ndim, layer.ndim)
    sizes = []
    for which in (psf_layer, layer):
        spatial = which.ndim
        scale = list(which.scale)[spatial - k : spatial]
        units = list(getattr(which, "units", ()) or ())[spatial - k : spatial]
        sizes.append((scale, units))
    (psf_scale, psf_units), (scale, units) = sizes
    if all(s == 1 for s in psf_scale) or all(s == 1 for s in scale):
        return None  # one of them not calibrated: nothing to compare
    try:
        psf_in = [
            float((p * u).to(v).magnitude) if u is not None and v is not None else float(p)
            for p, u, v in zip(psf_scale, psf_units or [None] * k, units or [None] * k,
                               strict=True)
        ]  # fmt: skip
    except Exception:  # units that do not convert (pixel against micrometer)
        psf_in = [float(p) for p in psf_scale]
    if all(abs(a - b) <= 0.02 * abs(b) for a, b in zip(psf_in, scale, strict=True)):
        return None
    shown = ", ".join(f"{a:g}" for a in psf_in)
    image = ", ".join(f"{b:g}" for b in scale)
    return (
        f"the PSF layer {psf_layer.name!r} has pixels of ({shown}) where the image's are "
        f"({image}) (the layers' scale); the PSF is used pixel for pixel, so it acts "
        "wider or narrower than measured: resample it to the image's pixel size first"
    )


def _caution(message: str) -> None:
    """napari's warning notification (looked up when called, so that tests can catch it)."""
    show_warning(message)


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


def _no_z(layer: Image, axes: str, volume: bool, kernel_3d: bool) -> None:
    """Refuse volumes and 3D PSFs on a layer whose axis labels name no Z (a time-lapse)."""
    if volume:
        raise ValueError(
            f"'3D volume' needs a Z axis but {layer.name!r} has none (its axis labels are "
            f"{axes!r}); choose '2D slices' (or auto) to restore it plane by plane"
        )
    if kernel_3d:
        raise ValueError(
            f"the PSF is 3D but {layer.name!r} has no Z axis (its axis labels are {axes!r}); "
            "choose a 2D PSF to restore it plane by plane"
        )


# -------------------------------------------------------------------- widget


def _psf_fits(psf_layer: Image, spatial: int | None) -> bool:
    """Whether a PSF layer has no more spatial dimensions than the image (`spatial`)."""
    if spatial is None:
        return True
    return _psf_layer_ndim(psf_layer) <= spatial  # (a (1, Y, X) layer is a plane's)


def _psf_layer_ndim(psf_layer: Image) -> int:
    """A PSF layer's spatial dimensions (see :func:`._psf.psf_shape_ndim`)."""
    from ._methods import labelled_axes
    from ._psf import psf_shape_ndim

    return psf_shape_ndim(layer_data(psf_layer).shape, labelled_axes(psf_layer))


class RestoreWidget(WorkerWidget):
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
    params : SpecForms
        The chosen method's parameters, rendered from its spec
        (``params.values()``, ``params.set_values({...})``,
        ``params.field(name)``).
    psf : PsfPicker
        The PSF inputs, shown only for methods that deconvolve.
    mode, device : magicgui widgets
        How the image is cut into planes or volumes; where the work runs.
    run_button, cancel_button, progress, status : magicgui widgets
    worker : napari GeneratorWorker or None
        The running restoration, if any.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer, title="Restore", notify=_notify)
        self._methods: dict[str, Spec] = {}
        self._by_hand = False  # a method was picked by hand: no more preselection
        self._choosing = False  # the widget itself is changing the method
        self._psf_by_hand = False  # a PSF source was picked by hand: no more preselection
        self._psf_preselected = False  # "from layer" was chosen by preselect, not by hand

        self.image = ComboBox(label="Image", choices=self._image_layers)
        self.method = ComboBox(label="Method", choices=self._method_choices)
        self.description = Label(label="", value="")
        with contextlib.suppress(AttributeError):
            self.description.native.setWordWrap(True)
        self.model_file = FileEdit(
            label="Model file", mode="r", filter="*.safetensors", visible=False
        )
        self.psf = PsfPicker(viewer, exclude=lambda: self.image.value)
        self.params = SpecForms()
        self.mode = ComboBox(label="Mode", choices=MODES, value="auto")
        self.mode.tooltip = (
            "auto: networks guess from the image and the model, classical methods work on "
            "2D planes (3D volumes with a 3D PSF); 2D slices: every plane on its own; "
            "3D volume: whole volumes (3D models, 3D PSFs)"
        )
        self.device = ComboBox(label="Device", choices=DEVICES, value="auto")
        self.device.tooltip = "Where networks and GPU-capable methods run; auto: a GPU if any"
        self.extend(
            [
                self.image,
                self.method,
                self.description,
                self.model_file,
                self.psf,
                self.params,
                self.mode,
                self.device,
                *self.controls(),
            ]
        )
        flush_left(self.psf, self.params)

        self.method.changed.connect(self._on_method_picked)
        self.psf.source.changed.connect(self._on_psf_source_picked)
        self.model_file.changed.connect(self._on_method_changed)
        self.image.changed.connect(self._on_image_changed)
        self._image_by_hand = False  # Qt's "activated": picked in the list by the user
        self.image.native.activated.connect(lambda *_: setattr(self, "_image_by_hand", True))
        follow_layers(self, viewer, extra=(registry.changed,))  # a model file was opened
        self.reset_choices()
        self._on_method_changed()

    @property
    def model(self) -> ComboBox:
        """The method list (its earlier name, kept for scripts)."""
        return self.method

    @property
    def tile(self) -> Any:
        """The networks' tile size field (the shown network form's ``tile``)."""
        form = self.params.current
        if form is not None and "tile" in form.fields:
            return form.fields["tile"]
        return self.params.form(BROWSE_SPEC).fields["tile"]

    # ------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return image_layers(self._viewer)

    def _method_choices(self, _widget: Any = None) -> list[str]:
        """The methods' names, re-read from the specs and the registry."""
        self._methods = method_catalogue()
        return list(self._methods)

    def reset_choices(self, *_: Any) -> None:
        """Re-read the layers and the methods; selections stay on the same items.

        Choices are keyed by layer name, so without this a rename or reorder
        would move the selection to another layer. Unless a method was
        picked by hand, the one that fits the layers is chosen again (a PSF
        layer may have been added).
        """
        current, psf_layer = self.image.value, self.psf.layer.value
        with self._choosing_method():
            super().reset_choices()
        keep_selection(self.image, self._image_layers(), current)
        if not getattr(self, "_image_by_hand", True):  # (set once built)
            off_psf_layers(self.image, self._image_layers())
        self.psf.reset_layer_choices(psf_layer)
        self.preselect()

    @contextlib.contextmanager
    def _choosing_method(self) -> Any:
        self._choosing = True
        try:
            yield
        finally:
            self._choosing = False

    def preselect(self) -> None:
        """Choose the method that fits the chosen layer and the viewer (unless picked by hand)."""
        self._preselect_psf()
        if self._by_hand:
            return
        layer = self.image.value
        # Z, Y and X only: a time-lapse labelled t, y, x is no volume
        spatial = None if layer is None else spatial_dims(layer)
        psf_layers = [
            other
            for _, other in self._image_layers()
            if other is not layer and looks_like_psf(other) and _psf_fits(other, spatial)
        ]
        chosen = self.psf.layer.value
        if self.psf.source.value == FROM_LAYER and any(chosen is p for p in psf_layers):
            psf_layers = [chosen]  # the PSF the picker holds decides 2D or 3D
        dims = [_psf_layer_ndim(p) for p in psf_layers]
        name = preferred_method(
            self._methods,
            spatial_ndim=spatial,
            psf_present=bool(psf_layers),
            psf_ndim=max(dims) if dims else None,
        )
        if name is not None and name != self.method.value:
            with self._choosing_method():
                self.method.value = name

    def _preselect_psf(self) -> None:
        """Take the PSF from a layer that looks like one (unless a source was picked by hand)."""
        if self._psf_by_hand:
            return
        offered = [lay for lay in self.psf.layer.choices if lay is not None]
        # only PSFs the image can take: a 3D PSF beside a time-lapse (t, y, x) was
        # preselected with deconv-2d, and Run then refused the pair
        layer = self.image.value
        spatial = None if layer is None else spatial_dims(layer)
        psf_layers = [lay for lay in offered if looks_like_psf(lay) and _psf_fits(lay, spatial)]
        with self._choosing_method():
            if psf_layers:
                if self.psf.layer.value not in psf_layers:  # the one named most like the
                    # image (and one it can take: a volume's 3D PSF is no plane's)
                    self.psf.choose_layer([(lay.name, lay) for lay in psf_layers])
                if self.psf.source.value != FROM_LAYER:
                    self.psf.source.value = FROM_LAYER
                self._psf_preselected = True
            elif self._psf_preselected:  # the PSF layer is gone: back to the default kind
                self.psf.source.value = next(iter(self.psf.kinds()))
                self._psf_preselected = False

    def _on_psf_source_picked(self, *_: Any) -> None:
        if not self._choosing:
            self._psf_by_hand = True

    def _on_image_changed(self, *_: Any) -> None:
        self.psf.reset_layer_choices(self.psf.layer.value)
        self.preselect()

    def _on_method_picked(self, *_: Any) -> None:
        if not self._choosing:
            self._by_hand = True
        self._on_method_changed()

    def spec(self) -> Spec:
        """The chosen method's spec; for "Model file…", read from the chosen file's header.

        Raises
        ------
        ValueError
            An unknown method, or "Model file…" without a readable model file.
        """
        name = self.method.value
        spec = self._methods.get(name)
        if spec is None:
            raise ValueError(f"unknown method {name!r}; choose one from the list")
        if "error" in spec.extra:
            raise ValueError(spec.description)
        if spec is not BROWSE_SPEC:
            return spec
        from napari_deconvnet.core.persistence import model_info

        path = self.selected_model()
        return model_spec(Path(path).name, model_info(path), model=path)

    def _on_method_changed(self, *_: Any) -> None:
        name = self.method.value
        self.model_file.visible = name == BROWSE
        try:
            spec = self.spec()
        except (ValueError, OSError) as err:  # no file chosen yet, or not a model file
            path = self.model_file.value
            chosen = name == BROWSE and path is not None and Path(path).is_file()
            text = str(err) if chosen or name != BROWSE else BROWSE_HELP
            spec = Spec("method", name or "?", text, params=BROWSE_SPEC.params, kind="model")
        self.description.value = spec.description
        self.description.tooltip = spec.description
        self.method.tooltip = spec.description
        if spec.kind == "model" and "model" in spec.extra:
            restored_writer.remember_model(spec.extra["model"])  # the restored writer's
        self.psf.visible = spec.needs_psf
        self.params.show(spec)

    def selected_model(self) -> str:
        """The network to run: a shipped name or the path of a model file.

        Raises
        ------
        ValueError
            If a classical method is chosen, or "Model file…" without a file.
        """
        name = self.method.value
        spec = self._methods.get(name)
        if spec is not None and "model" in spec.extra:
            return spec.extra["model"]
        if name != BROWSE:
            raise ValueError(f"{name!r} is a classical method, not a network")
        path = self.model_file.value
        if path is None or not Path(path).is_file():
            raise ValueError(
                f"no model file chosen ({str(path)!r} is not a file); pick a .safetensors "
                "model file or choose a shipped model"
            )
        return str(path)

    # ---------------------------------------------------------------- run

    def _classical_axes(
        self, layer: Image, psf: dict[str, Any] | None, spec: Spec
    ) -> tuple[str | None, str | None, int]:
        """The layer's axes (as recorded), those passed to the core, and whether a
        classical method works on planes (2) or volumes (3)."""
        data = layer_data(layer)
        rgb = bool(layer.rgb)
        labelled = labelled_axes(layer)
        n = spatial_dims(layer)
        mode = self.mode.value
        kernel_ndim = psf_ndim(psf) if psf is not None else None
        layer_psf = psf is not None and "layer" in psf
        if mode == "auto":
            three_d = kernel_ndim == 3 and 3 in spec.ndim
            mode = "3D volume" if three_d and n >= 3 else "2D slices"
        if labelled is not None and "Z" not in labelled:
            _no_z(layer, labelled, mode == "3D volume", kernel_ndim == 3)
        if layer_psf and kernel_ndim > n:
            raise ValueError(
                f"the PSF layer {psf['layer']!r} is {kernel_ndim}D but the image "
                f"{layer.name!r} is {n}D; use a PSF with at most the image's dimensions"
            )
        if kernel_ndim == 3 and mode == "2D slices":
            # a generated one too (a Gaussian with a sigma per axis, widefield): it ran a
            # 3D deconvolution recorded as "2D slices"
            what = (
                f"the PSF layer {psf['layer']!r} is"
                if layer_psf
                else f"the {psf.get('kind', 'generated')} PSF is"
            )
            raise ValueError(
                f"{what} 3D but '2D slices' restores plane by plane; choose '3D volume' "
                "(or auto), or a 2D PSF"
                + ("" if layer_psf else " (a Gaussian with one sigma, or airy)")
            )
        if mode == "3D volume" and 3 not in spec.ndim:
            raise ValueError(f"{spec.name} works on 2D planes only; choose '2D slices' (or auto)")
        ndim = 3 if mode == "3D volume" else 2
        if labelled is None:
            shown = axes_for(mode, data.ndim, rgb=rgb)
            # planes: the last two axes (and RGB samples); a Z would make volumes
            return shown, shown if ndim == 3 or rgb else None, ndim
        run = labelled if ndim == 3 else plane_axes(labelled)
        if run is None:  # no letter left to rename Z (TZCYX): the last two axes, as unlabelled
            run = axes_for(mode, data.ndim, rgb=rgb) if rgb else None
        return labelled, run, ndim

    def _model_axes(
        self, layer: Image, label: str, spec: Spec, psf: dict[str, Any] | None = None
    ) -> tuple[str | None, int]:
        mode = self.mode.value
        labelled = labelled_axes(layer)
        axes = labelled or axes_for(mode, layer_data(layer).ndim, rgb=bool(layer.rgb))
        dims = layer_data(layer).ndim - bool(layer.rgb)
        if axes is None and dims > 5:
            # (session 73: the worker failed with the API's "pass axes=...", which a
            # napari user cannot; the classical methods said this before running)
            raise ValueError(
                f"cannot restore a {dims}-D layer with a model; napari-deconvnet handles "
                "2-D to 5-D images (T, Z, C, Y, X): restore a slice of the layer, e.g. "
                "one position of the outer axes"
            )
        ndim = spec.ndim[0] if len(spec.ndim) == 1 else 2
        if mode == "3D volume" and ndim != 3:
            raise ValueError(
                f"model {label!r} is a 2D model; '3D volume' needs a 3D model "
                "(or choose '2D slices' to restore plane by plane)"
            )
        if mode == "2D slices" and ndim != 2:
            raise ValueError(
                f"model {label!r} is a 3D model; '2D slices' needs a 2D model "
                "(or choose '3D volume')"
            )
        if labelled is not None and "Z" not in labelled:
            if ndim == 3:
                raise ValueError(
                    f"model {label!r} is a 3D model but {layer.name!r} has no Z axis (its axis "
                    f"labels are {labelled!r}); choose a 2D model to restore it plane by plane"
                )
            _no_z(layer, labelled, False, psf_ndim(psf) == 3)
        elif ndim == 3 and axes is not None and "Z" not in axes:
            # an RGB time series (TYXS): the worker refused it, after a warning about the
            # spacing of "planes" that are its frames (session 69)
            raise ValueError(
                f"model {label!r} is a 3D model but {layer.name!r} has no Z axis (read as "
                f"{axes!r}); choose a 2D model to restore it plane by plane"
            )
        kernel_ndim = psf_ndim(psf) if psf is not None else None
        if kernel_ndim is not None and kernel_ndim > ndim:
            # (the core said "at most as many dimensions as the image (2)" of a volume)
            where = f"the PSF layer {psf['layer']!r}" if "layer" in psf else "the PSF"
            raise ValueError(
                f"{where} is {kernel_ndim}D but model {label!r} is a {ndim}D model, which "
                f"restores plane by plane with a 2D PSF; choose a 3D model for a volume "
                f"(e.g. 'deconv-3d') or a 2D PSF"
            )
        return axes, ndim

    def prepare(self) -> Job:
        """Check the inputs (GUI thread) and describe the restoration to run."""
        layer = self.image.value
        if layer is None:
            raise ValueError("there is no image layer to restore; open or add an image first")
        name = self.method.value
        spec = self.spec()
        params = self.params.values()
        label = name
        if params.get("decorrelate") and restored_writer.as_lazy(layer_data(layer)) is not None:
            # restored block by block, and the choice needs the whole image in memory
            params["decorrelate"] = False
            _caution(
                f"Restore of {layer.name!r} with {label}: the correlated-noise check is not "
                "applied to a lazy layer (it needs the whole image in memory); restoring "
                "without it"
            )
        lazy = restored_writer.as_lazy(layer_data(layer)) is not None
        if params.get("borders") in ("dark", "periodic") and lazy:
            # restored block by block: no block sees the image's borders
            _caution(
                f"Restore of {layer.name!r} with {label}: borders blurred as "
                f"{params['borders']!r} is not applied to a lazy layer (blocks cannot see the "
                "image's borders); every side is extended by its mirror image"
            )
            params["borders"] = "mirror"
        if lazy and (params.get("ensemble") or 1) > 1:
            # as the two above: said before the work (it failed inside the worker)
            _caution(
                f"Restore of {layer.name!r} with {label}: {params['ensemble']} views averaged "
                "need the whole image in memory, and a lazy layer is restored block by "
                "block; restoring with one view"
            )
            params["ensemble"] = 1
        psf = self.psf.spec(name) if spec.needs_psf else None
        if psf is not None and "layer" in psf:
            note = pixel_size_note(self.psf.layer.value, layer)
            if note is not None:
                _caution(f"Restore of {layer.name!r} with {label}: {note}")
        if spec.kind == "model":
            target = self.selected_model()
            if name == BROWSE:
                label = Path(target).name.removesuffix(".safetensors")
            axes, ndim = self._model_axes(layer, label, spec, psf)
            shown = axes  # None: the worker records the axes the core inferred
            if ndim == 3:  # the shipped denoise-3d on planes far apart (core.axes)
                ratio = z_step_ratio(layer.scale, labelled_axes(layer))
                note = anisotropy_note(name, ratio)
                if note is not None:
                    _caution(f"Restore of {layer.name!r} with {label}: {note}")
        else:
            target = spec.name
            shown, axes, ndim = self._classical_axes(layer, psf, spec)
        kwargs = {
            "kind": spec.kind,
            "params": params,
            "axes": axes,
            "ndim": ndim,
            "psf": psf,
            "device": self.device.value,
        }
        about = {"method": label, "kind": spec.kind, "params": {**params, "mode": self.mode.value}}
        if spec.kind == "model":
            about["model"] = target
        return Job(
            restore_job,
            (layer_data(layer), target),
            kwargs,
            message=f"restoring {layer.name!r} with {label}...",
            failure=f"Restore of {layer.name!r} with {label} failed",
            done=partial(self._add_layer, layer, about, shown),
            source=layer,
        )

    def _add_layer(
        self, layer: Image, about: dict[str, Any], axes: str | None, result: dict[str, Any]
    ) -> str:
        """The result's layer, with its provenance (GUI thread)."""
        if about["kind"] == "model":
            restored_writer.remember_model(about["model"], psf=result["kernel"])
        rec = record(
            "restore",
            **about,
            model_name=result["model_name"],
            psf=result["psf"],
            axes=axes or result["axes"],
            device=result["device"],
            precision=result["precision"],
            seconds=result["seconds"],
            source=layer.name,
            lazy=result["lazy"],
        )
        add_result(
            self._viewer,
            result["data"],
            like=layer,
            name=f"{layer.name} [{about['method']}]",
            record=rec,
            limits=result["contrast_limits"],
        )
        status = f"restored {layer.name!r} with {about['method']} in {result['seconds']:.1f} s"
        if result.get("conditions"):
            # a trained model on data unlike its training data (core/conditions.py)
            note = result["conditions"][0]
            _caution(f"Restore of {layer.name!r} with {about['method']}: {note}")
            status += "; unlike the model's training data (see the notification)"
        for note in result.get("psf_notes") or ():  # background removed, or cropped
            _caution(f"Restore of {layer.name!r} with {about['method']}: {note}")
            done = "cropped to the image" if "was cropped" in note else "background was removed"
            status += f"; the PSF's {done} (see the notification)"
        return status
