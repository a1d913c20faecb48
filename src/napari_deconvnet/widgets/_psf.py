"""The one PSF picker of the dock widgets: a generated PSF of any registered kind, or a layer.

:class:`PsfPicker` offers every PSF kind of
:func:`~napari_deconvnet.list_psfs` with its parameters rendered from the
kind's spec (defaults, ranges and labels are the spec's), plus an image layer
holding a measured PSF. The GUI side only reads the fields into a small
description (:meth:`PsfPicker.spec`); :func:`build_psf` turns it into an
array in the worker thread, where the image's shape is known and where
computing a widefield PSF cannot slow the viewer. The core's PSF code is
imported inside the functions, never at module top.

A generated optical PSF follows the image's calibration: when the image
layer's scale is in units of length (an OME-TIFF or OME-Zarr in micrometres),
the ``pixel_size`` and ``z_step`` fields (nanometres) take its pixel size and
plane spacing (:func:`layer_calibration`) each time another image, or another
scale, is chosen; a value typed by hand stays until then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox, Container, SpinBox
from napari.layers import Image

from napari_deconvnet.core.provenance import KEY
from napari_deconvnet.core.specs import Spec, list_psfs

from ._forms import SpecForms, flush_left
from ._layers import closest_layer, image_layers, keep_selection, layer_data

__all__ = [
    "FROM_LAYER",
    "NO_PSF",
    "PsfPicker",
    "build_psf",
    "layer_calibration",
    "looks_like_psf",
    "off_psf_layers",
    "psf_ndim",
    "psf_shape_ndim",
]

#: The choice that takes the PSF from an image layer.
FROM_LAYER = "from layer"
#: The choice of no PSF (offered with ``optional=True``).
NO_PSF = "none"


def looks_like_psf(layer: Image) -> bool:
    """A layer that looks like a PSF: flagged by our samples, or named so.

    The flag is ``True`` itself: a restored layer's provenance also holds a
    ``"psf"`` (the PSF it was deconvolved with), and it is no PSF.
    """
    flagged = layer.metadata.get(KEY, {}).get("psf") is True
    return flagged or "psf" in layer.name.lower()


def off_psf_layers(combo: Any, choices: list[tuple[str, Image]]) -> None:
    """Move an image picker off a layer that looks like a PSF, onto the first choice
    that does not (as it is when every choice looks like one): a PSF opened before
    the image was napari's first layer, so pickers defaulted to it (Restore would
    have denoised the PSF). For pickers the user has not set by hand."""
    value = combo.value
    if not isinstance(value, Image) or not looks_like_psf(value):
        return
    other = next((layer for _, layer in choices if not looks_like_psf(layer)), None)
    if other is not None:
        combo.value = other


def layer_calibration(layer: Any) -> dict[str, float]:
    """The optical PSF parameters a calibrated image layer fixes: ``pixel_size`` and
    ``z_step`` in nanometres, from its scale and units
    (:func:`~napari_deconvnet.core.psf.calibration_nm`).

    Only axes whose unit is a length count: an image in napari's default
    ``pixel`` units gives ``{}``. The lateral pixel size is the mean of Y's and
    X's; the plane spacing is that of the Z axis (named by the layer's axis
    labels, else the third axis from the end of an image of three or more
    spatial axes), when it has one.

    Examples
    --------
    A stack opened with ``scale=(0.2, 0.065, 0.065)`` and units of micrometres
    gives ``{"pixel_size": 65.0, "z_step": 200.0}``.
    """
    if layer is None:
        return {}
    from napari_deconvnet.core.psf import calibration_nm

    from ._methods import labelled_axes

    units = getattr(layer, "units", None)
    names = None if units is None else [str(u) for u in units]
    return calibration_nm(list(getattr(layer, "scale", ())), names, labelled_axes(layer))


class PsfPicker(Container):
    """Choose a PSF: a registered kind with its parameters, or an image layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Offers its image layers as measured PSFs.
    exclude : callable, optional
        Returns a layer never offered as a PSF (the image being processed).
    optional : bool
        Offer ``"none"`` first (no PSF) and choose it; otherwise the first
        registered kind (``"gaussian"``) is chosen.
    label : str
        Label of the kind's drop-down.

    Attributes
    ----------
    source : ComboBox
        A kind of :func:`~napari_deconvnet.list_psfs`, ``"from layer"`` (and
        ``"none"`` when optional).
    forms : SpecForms
        The chosen kind's parameters (``forms.current.fields[name]``), each at
        the spec's default.
    size : SpinBox
        Pixels per axis of a generated PSF; 0 lets the kind choose, cropped to
        the image.
    layer : ComboBox
        The image layer holding the PSF (for ``"from layer"``); a layer that
        looks like a PSF is preselected.
    calibration : dict
        The ``pixel_size``/``z_step`` (nm) last taken from the image's scale
        (:func:`layer_calibration` of the layer `exclude` returns: the image
        being processed); ``{}`` while it is uncalibrated.

    Examples
    --------
    In a dock widget (a magicgui ``Container``)::

        self.psf = PsfPicker(viewer, exclude=lambda: self.image.value, optional=True)
        self.extend([self.image, self.psf, ...])
        flush_left(self.psf)        # (from ._forms) the picker's rows use the whole width
        ...
        description = self.psf.spec("training")   # GUI thread; None for "none"
        kernel, record = build_psf(description, ndim, spatial_shape)   # worker thread
    """

    def __init__(
        self,
        viewer: Any,
        *,
        exclude: Callable[[], Any] | None = None,
        optional: bool = False,
        label: str = "PSF",
    ) -> None:
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self._viewer = viewer
        self._exclude = exclude or (lambda: None)
        self._optional = optional
        self.source = ComboBox(label=label, choices=self._source_choices)
        self.source.value = NO_PSF if optional else self._source_choices()[0]
        self.forms = SpecForms()
        self.size = SpinBox(label="PSF size (0 = auto)", value=0, min=0, max=255)
        self.size.tooltip = (
            "Pixels per axis of the generated PSF (odd sizes keep it centred); 0 lets the kind "
            "choose, cropped to the image"
        )
        self.layer = ComboBox(label="PSF layer", choices=self._layer_choices, nullable=True)
        self.layer.tooltip = "An image layer holding the PSF (normalised to sum 1 here)"
        self.extend([self.source, self.forms, self.size, self.layer])
        flush_left(self.forms)
        self.calibration: dict[str, float] = {}
        self._calibrated_for: Any = None  # the image (and its scale) calibrated from
        self._tips: dict[int, str] = {}  # the fields' own tooltips, before a calibration note
        self._applied: dict[int, float] = {}  # what each field was given from a calibration
        self._layer_by_hand = False  # a PSF layer was picked: it stays
        self._choosing_layer = False  # the picker itself is choosing the layer
        self.source.changed.connect(self.refresh)
        self.layer.changed.connect(self._on_layer_picked)
        self.refresh()

    def _on_layer_picked(self, *_: Any) -> None:
        if not self._choosing_layer:
            self._layer_by_hand = True

    def choose_layer(self, choices: list[tuple[str, Image]]) -> None:
        """Until a layer is picked by hand: the PSF-looking layer named most like the
        image (after *Split Stack*, the PSF of the image's own channel)."""
        if self._layer_by_hand and self.layer.value is not None:
            return
        psfs = [lay for _, lay in choices if looks_like_psf(lay)]
        try:
            image = self._exclude()
        except AttributeError:  # called while the owner builds its image field
            image = None
        best = closest_layer(getattr(image, "name", ""), psfs)
        if best is not None and best is not self.layer.value:
            self._choosing_layer = True
            try:
                self.layer.value = best
            finally:
                self._choosing_layer = False

    # -------------------------------------------------------- calibration

    def follow_image(self) -> dict[str, float]:
        """Give the optical kinds' ``pixel_size`` and ``z_step`` fields the image's
        calibration, when the image (or its scale or units) changed since the last
        call. A value typed by hand stays until then; a field that holds the last
        image's calibration goes back to the kind's default when the new image is
        uncalibrated. Returns what was taken."""
        try:
            layer = self._exclude()
        except AttributeError:  # called while the owner builds its image field
            layer = None
        key = None
        if layer is not None:
            units = tuple(str(u) for u in (getattr(layer, "units", None) or ()))
            key = (id(layer), tuple(float(v) for v in layer.scale), units)
        if key == self._calibrated_for:
            return self.calibration
        self._calibrated_for = key
        self.calibration = layer_calibration(layer)
        for spec in self.kinds().values():
            for param in spec.params:
                if param.name in ("pixel_size", "z_step"):
                    self._calibrate(self.forms.form(spec).fields[param.name], param)
        return self.calibration

    def _calibrate(self, field: Any, param: Any) -> None:
        """`field` (of `param`) to the calibration, or back to its default (see above)."""
        base = self._tips.setdefault(id(field), field.tooltip or "")
        value = self.calibration.get(param.name)
        applied = self._applied.pop(id(field), None)
        if value is None:
            if applied is not None and field.value == applied:  # not typed over
                field.value = param.default
                field.tooltip = base
            return
        low, high = getattr(field, "min", None), getattr(field, "max", None)
        if (low is not None and value < low) or (high is not None and value > high):
            return  # beyond what the kind accepts: the field keeps its value
        field.value = round(value, 3)
        self._applied[id(field)] = field.value
        field.tooltip = (
            f"{base}\n(taken from the image's scale: {value:g} nm; type another value to override)"
        ).strip()

    # ------------------------------------------------------------ choices

    def kinds(self) -> dict[str, Spec]:
        """The registered PSF kinds, by name."""
        return list_psfs()

    def _source_choices(self, _widget: Any = None) -> list[str]:
        names = list(self.kinds())
        return ([NO_PSF] if self._optional else []) + names + [FROM_LAYER]

    def _layer_choices(self, _widget: Any = None) -> list[tuple[str, Image]]:
        excluded = self._exclude()
        return [(n, layer) for n, layer in image_layers(self._viewer) if layer is not excluded]

    def reset_choices(self, *_: Any) -> None:
        """Re-read the kinds and the layers; keep the chosen layer, else pick one named PSF."""
        current = self.layer.value
        self._choosing_layer = True  # (re-reading the choices is no pick)
        try:
            super().reset_choices()
            choices = self._layer_choices()
            keep_selection(self.layer, choices, current)
        finally:
            self._choosing_layer = False
        self.choose_layer(choices)
        self.refresh()

    def reset_layer_choices(self, current: Any = None) -> None:
        """Re-read the layers only (the image changed: the excluded layer did)."""
        self.follow_image()
        self._choosing_layer = True  # (re-reading the choices is no pick)
        try:
            self.layer.reset_choices()
            choices = self._layer_choices()
            keep_selection(self.layer, choices, current)
        finally:
            self._choosing_layer = False
        self.choose_layer(choices)

    def refresh(self, *_: Any) -> None:
        """Show the fields of the chosen source (the kind's form, the size, or the layer)."""
        kind = self.source.value
        kinds = self.kinds()
        spec = kinds.get(kind)
        self.source.tooltip = "\n".join(
            [f"{n}: {s.description}" for n, s in kinds.items()]
            + [f"{FROM_LAYER}: an image layer holding a measured PSF"]
        )
        self.follow_image()
        self.forms.show(spec)
        self.size.visible = spec is not None
        self.layer.visible = kind == FROM_LAYER

    # ------------------------------------------------------------- values

    def kind_spec(self) -> Spec | None:
        """The chosen kind's spec (None for "none" or "from layer")."""
        return self.kinds().get(self.source.value)

    def layer_ndim(self) -> int | None:
        """Dimensions of the chosen PSF layer, or None for a generated PSF."""
        if self.source.value != FROM_LAYER or self.layer.value is None:
            return None
        return layer_data(self.layer.value).ndim

    def spec(self, what: str = "this method") -> dict[str, Any] | None:
        """What the worker needs to build the PSF (see :func:`build_psf`); None for "none".

        Parameters
        ----------
        what : str
            Named in the error message (e.g. the method that needs the PSF).

        Raises
        ------
        ValueError
            A parameter out of range, or "from layer" without a usable layer.
        """
        kind = self.source.value
        if kind == NO_PSF:
            return None
        if kind != FROM_LAYER:
            if kind not in self.kinds():
                raise ValueError(f"unknown PSF kind {kind!r}; known: {list(self.kinds())}")
            self.follow_image()  # the image may have changed without a signal reaching here
            description = {"kind": kind, "params": self.forms.values(), "size": self.size.value}
            _check_kind(description)
            return description
        layer = self.layer.value
        if layer is None:
            kinds = ", ".join(self.kinds())
            raise ValueError(
                f"{what} needs a PSF but no PSF layer is chosen; add the PSF as an image "
                f"layer (other than the image) or choose a generated PSF ({kinds})"
            )
        if layer.rgb:
            raise ValueError(f"the PSF layer {layer.name!r} is RGB; a PSF has one value per pixel")
        from ._methods import labelled_axes

        axes = labelled_axes(layer)
        if axes is not None and "C" in axes:  # one PSF per channel (see channel_psfs)
            return {"layer": layer.name, "data": layer_data(layer), "axes": axes}
        return {"layer": layer.name, "data": layer_data(layer)}


def _check_kind(description: dict[str, Any]) -> None:
    """Make a tiny PSF of the description, so that bad parameters are refused before any work."""
    from napari_deconvnet.core.psf import make_psf

    k = psf_ndim(description) or 2
    make_psf(description["kind"], (3,) * k, **description["params"])


def layer_psf_shape(description: dict[str, Any]) -> tuple[int, ...]:
    """The spatial shape of a PSF layer's :meth:`PsfPicker.spec` (its channel axis left
    out)."""
    return _without_channel(np.shape(description["data"]), description.get("axes", ""))


def _without_channel(shape: Any, axes: str | None) -> tuple[int, ...]:
    shape = tuple(int(n) for n in shape)
    axes = (axes or "").upper()
    if "C" in axes and len(axes) == len(shape):
        shape = shape[: axes.index("C")] + shape[axes.index("C") + 1 :]
    return shape


def psf_shape_ndim(shape: Any, axes: str | None = None) -> int:
    """The spatial dimensions of a PSF layer of `shape` with `axes` (as
    :func:`._methods.labelled_axes` reads a layer's labels): without its
    channel axis and leading single planes (a ``(1, Y, X)`` layer holds a plane's PSF,
    as dn.restore takes it: it was refused beside a plane)."""
    from napari_deconvnet.core.psf import single_leading_axes

    shape = _without_channel(shape, axes)
    return len(shape) - single_leading_axes(shape, 2)


def psf_ndim(description: dict[str, Any] | None) -> int | None:
    """Dimensions the PSF of a :meth:`PsfPicker.spec` has, if its kind or layer fixes them.

    A layer's PSF has its own; a kind that makes only 2D or only 3D PSFs
    (``airy``, ``widefield``) fixes it; a Gaussian whose sigma has one value
    per axis has that many. None: the image decides.
    """
    if description is None:
        return None
    if "layer" in description:  # a channel axis holds one PSF per channel
        return psf_shape_ndim(np.shape(description["data"]), description.get("axes", ""))
    from napari_deconvnet.core.specs import get

    kind = get("psf", description["kind"])
    if len(kind.ndim) == 1:
        return kind.ndim[0]
    for value in description["params"].values():
        if isinstance(value, tuple) and len(value) in kind.ndim:
            return len(value)
    return None


def build_psf(
    description: dict[str, Any], ndim: int, spatial_shape: tuple[int, ...]
) -> tuple[np.ndarray, dict[str, Any]]:
    """The PSF array of a :meth:`PsfPicker.spec`, and its provenance record.

    Parameters
    ----------
    description : dict
        ``{"kind": name, "params": {...}, "size": n}`` or
        ``{"layer": name, "data": array}``.
    ndim : int
        Dimensions of a generated PSF (2 or 3) when the kind does not fix them.
    spatial_shape : tuple of int
        The image's spatial shape: an automatic size is cropped to it.

    Returns
    -------
    psf : ndarray of float64, summing to 1
    record : dict
        JSON-ready: the kind and its parameters, or the layer's name, and the shape.
    """
    from napari_deconvnet.core.psf import (
        as_psf,
        fit_psf,
        make_psf,
        psf_pedestal,
        single_leading_axes,
    )

    if "C" in description.get("axes", ""):  # (build_channel_psfs builds those)
        raise ValueError(
            f"the PSF layer {description['layer']!r} holds one PSF per channel (its axes "
            f"are {description['axes']!r}); it needs an image with a channel axis of as "
            "many channels (axis label 'c')"
        )
    if "layer" in description:
        data = np.asarray(description["data"])
        found = psf_pedestal(data) if data.dtype.kind in "biuf" else None
        kernel = as_psf(data)  # a bead's crop: its background goes (a condition note)
        # a (1, Y, X) layer run as planes (psf_ndim 2) is the plane's 2D PSF: with no
        # axes, an unlabelled stack beside a 3D kernel ran as a volume
        kernel = kernel[(0,) * single_leading_axes(kernel.shape, max(int(ndim), 2))]
        record = {"layer": description["layer"], "shape": list(kernel.shape)}
        if found is not None:
            record["background_removed"] = round(found[0], 6)
        return kernel, record
    kind, size, params = description["kind"], description["size"], description["params"]
    ndim = psf_ndim(description) or ndim
    if size:
        kernel = make_psf(kind, (size,) * ndim, **params)
    else:
        kernel = make_psf(kind, **_with_ndim(kind, ndim, params))
        # cropped to the image, with a note when that leaves out light (core.psf.fit_psf);
        # a PSF of more dimensions than the image (a 3D model on a plane) is left to the
        # restore, which says what the model needs (it failed here, in zip())
        if kernel.ndim <= len(spatial_shape):
            kernel = fit_psf({"kind": kind, **params}, kernel, tuple(spatial_shape))
    kernel = as_psf(kernel, measured=False)
    record = {"kind": kind, **params, "shape": [int(s) for s in kernel.shape]}
    return kernel, record


def build_channel_psfs(
    description: dict[str, Any], image_axes: str | None, image_shape: tuple[int, ...]
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """One PSF per channel from a PSF layer with a ``C`` axis (:meth:`PsfPicker.spec`
    gives its ``axes``), for an image whose ``C`` axis has as many channels.

    Returns the PSFs, in the channels' order, and the record (the layer, the
    number of channels, each PSF's shape).

    Raises
    ------
    ValueError
        The image has no ``C`` axis, or another number of channels.
    """
    name, axes = description["layer"], description["axes"]
    data = np.asarray(description["data"])
    n = data.shape[axes.index("C")]
    if image_axes is None or "C" not in image_axes:
        raise ValueError(
            f"the PSF layer {name!r} holds one PSF per channel ({n} along its C axis) but "
            f"the image has no channel axis (its axes are {image_axes!r}); choose a PSF "
            "layer of one channel, or label the image's channel axis 'c'"
        )
    channels = image_shape[image_axes.index("C")]
    if channels != n:
        raise ValueError(
            f"the PSF layer {name!r} holds {n} PSFs (its C axis) but the image has "
            f"{channels} channels; give one PSF per channel, in the channels' order"
        )
    kernels, shapes = [], []
    for c in range(n):
        one = {"layer": f"{name} (channel {c})", "data": np.take(data, c, axis=axes.index("C"))}
        kernel, _ = build_psf(one, one["data"].ndim, ())
        kernels.append(kernel)
        shapes.append([int(v) for v in kernel.shape])
    return kernels, {"layer": name, "channels": n, "shape": shapes}


def _with_ndim(kind: str, ndim: int, params: dict[str, Any]) -> dict[str, Any]:
    """`params`, plus ``ndim`` for a kind that makes both 2D and 3D PSFs."""
    from napari_deconvnet.core.specs import get

    if len(get("psf", kind).ndim) > 1 and psf_ndim({"kind": kind, "params": params}) is None:
        return {**params, "ndim": ndim}
    return params
