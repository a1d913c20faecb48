"""The Noise dock widget: degrade a clean layer with a noise model and a PSF.

The noise models are those of :func:`napari_deconvnet.list_noise_models`
(any registered later too) and their parameters are rendered from each
model's spec; the PSF picker offers every kind of
:func:`napari_deconvnet.list_psfs` or an image layer. "Match noise" fills the
form from :func:`napari_deconvnet.estimate_noise` on a real noisy layer.
Synthesis runs :func:`napari_deconvnet.core.operations.synthesize_iter` in a
napari worker with a progress bar and Cancel. The result is a new layer
``"<name> noisy (<model>)"`` with the source's geometry and the exact noise
model, parameters, PSF and seed in ``layer.metadata["napari_deconvnet"]``, so
that (noisy, clean) pairs can be used for training.

A layer's ``axis_labels``, when they name its axes, say which are spatial: a
time-lapse labelled ``t, y, x`` is blurred and drawn frame by frame, and a 3D
PSF on a layer without a Z axis is refused.

torch and the core's compute are imported inside the callbacks, never at module top.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from functools import partial
from typing import Any

import napari
import napari.viewer
import numpy as np
from magicgui.widgets import ComboBox, PushButton, SpinBox
from napari.layers import Image
from napari.utils.notifications import show_error, show_warning

from napari_deconvnet.core.provenance import record
from napari_deconvnet.core.specs import Spec, list_noise_models

from ._forms import SpecForms, flush_left
from ._layers import add_result, follow_layers, image_layers, keep_selection, layer_data
from ._methods import labelled_axes, plane_axes
from ._psf import PsfPicker, build_channel_psfs, build_psf, off_psf_layers, psf_ndim
from ._worker import Job, WorkerWidget

__all__ = ["NoiseWidget", "noise_job"]


def _notify(message: str) -> None:
    """napari's notification (looked up when called, so that tests can catch it)."""
    show_error(message)


def _caution(message: str) -> None:
    """napari's warning notification (looked up when called, so that tests can catch it)."""
    show_warning(message)


def _axes(ndim: int, rgb: bool) -> str | None:
    """Axes of an unlabelled layer's data for the core: RGB samples are kept apart (``S``)."""
    return ("TZYX"[4 - (ndim - 1) :] + "S") if rgb else None


def _core_axes(labelled: str | None, ndim: int, rgb: bool, k: int) -> str | None:
    """The ``axes`` of :func:`synthesize_iter`: the labelled axes (with Z renamed so that the
    core works plane by plane for a 2D PSF or none), else those of :func:`_axes`."""
    if labelled is None:
        return _axes(ndim, rgb)
    run = labelled if k == 3 else plane_axes(labelled)
    return _axes(ndim, rgb) if run is None else run


def _psf_dims(psf: dict[str, Any] | None, axes: str | None) -> int:
    """The dimensions of the PSF a noise job blurs with: its own (a layer's, a kind that
    makes one size), else 3 beside a labelled Z axis (a volume blurs in 3D, as
    ``napari-deconvnet synthesize --psf KIND`` and ``synthesize_iter`` blur it; session
    73: this widget blurred a z-stack plane by plane), else 2."""
    if psf is None:
        return 2
    return psf_ndim(psf) or (3 if axes is not None and "Z" in axes else 2)


def noise_job(
    data: Any,
    noise: str,
    *,
    params: dict[str, Any],
    psf: dict[str, Any] | None,
    seed: int,
    rgb: bool,
    axes: str | None = None,
) -> Generator[tuple[int, int], None, dict[str, Any]]:
    """Worker body: build the PSF, then blur and add noise with the core's generator.

    Parameters
    ----------
    axes : str, optional
        The layer's axes from its axis labels (``"TYX"``...; see
        :func:`~napari_deconvnet.widgets._methods.labelled_axes`); None: read
        from the shape (the last two or three axes are spatial).

    Returns
    -------
    dict
        ``data`` (float32, the shape of `data`), ``psf`` (the PSF's record),
        ``axes`` (those :func:`synthesize_iter` drew with).
    """
    from napari_deconvnet.core.operations import synthesize_iter

    kernel, psf_record, k = None, None, 2
    if psf is not None:
        k = _psf_dims(psf, axes)
        if axes is not None:
            shape = [data.shape[axes.index(a)] for a in "ZYX" if a in axes]
        else:
            shape = data.shape[:-1] if rgb else data.shape
        if "C" in psf.get("axes", ""):  # a PSF layer with one PSF per channel
            kernel, psf_record = build_channel_psfs(psf, axes, tuple(data.shape))
        else:
            kernel, psf_record = build_psf(psf, k, tuple(shape[-k:]))
    core_axes = _core_axes(axes, np.ndim(data), rgb, k)
    out = yield from synthesize_iter(data, noise, psf=kernel, axes=core_axes, seed=seed, **params)
    return {"data": out, "psf": psf_record, "axes": core_axes}


#: Most channels of a layer whose noise *Match noise* estimates one by one
MATCH_CHANNELS = 16
#: Channels whose estimates' parameters lie within this factor of each other (and
#: that share a model) match as one, pooled
CHANNELS_ALIKE = 1.5


def _estimate_job(
    data: Any, rgb: bool, channel_axis: int | None = None, shown: int = 0
) -> dict[str, Any]:
    """The noise of a layer, as :func:`~napari_deconvnet.estimate_noise` gives it.

    With a labelled channel axis (`channel_axis`, 2 to :data:`MATCH_CHANNELS`
    channels), each channel is estimated on its own. Channels whose noise is alike
    (:func:`_alike`) give the pooled estimate, as before; otherwise the estimate of
    channel `shown` (the one on screen) with ``"channels"``, every channel's, which
    the widget says (session 72: a two-colour layer at 200 and 30 photons matched one
    pooled Poisson-Gaussian model that gave the dim channel 4 times too little noise).
    """
    from napari_deconvnet.core.noise import estimate_noise

    if rgb and data.shape[-1] == 4:  # RGBA: the opacity is no image (it counted as a
        data = data[..., :3]  # fourth channel of the estimate), as synthesis keeps it
    # a lazy layer is read in the planes the estimate looks at, not whole
    n = int(data.shape[channel_axis]) if channel_axis is not None else 0
    if not 2 <= n <= MATCH_CHANNELS:
        return estimate_noise(data, channel_axis=-1 if rgb else None)
    # (channels last, YXC: pooled with its channel axis named, or it read them as planes)
    at = channel_axis % data.ndim
    pooled = estimate_noise(data, channel_axis=at if at >= data.ndim - 2 else None)
    each = []
    for i in range(n):
        index = (slice(None),) * (channel_axis % data.ndim) + (i,)
        try:
            each.append(estimate_noise(data[index]))
        except ValueError:  # (a channel too flat to measure: the pooled estimate stands)
            return pooled
    if _alike(each):
        return pooled
    shown = min(max(int(shown), 0), n - 1)
    return {**each[shown], "channels": each, "shown": shown}


def _alike(estimates: list[dict[str, Any]]) -> bool:
    """Whether noise estimates share a model and their positive parameters lie within
    :data:`CHANNELS_ALIKE` of each other (the offset aside: a level, not a noise)."""
    if len({e["noise"] for e in estimates}) > 1:
        return False
    for key, value in estimates[0].items():
        if key in ("noise", "offset") or not isinstance(value, float):
            continue
        values = [float(e.get(key, 0.0)) for e in estimates]
        if min(values) <= 0:
            if max(values) > 0:
                return False
            continue
        if max(values) > CHANNELS_ALIKE * min(values):
            return False
    return True


class NoiseWidget(WorkerWidget):
    """Add synthetic noise (and blur) to a clean image layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose image layers are offered and which receives the
        noisy layer.

    Attributes
    ----------
    image, noise, seed, match_layer : magicgui widgets
        The inputs.
    params : SpecForms
        The chosen noise model's parameters, rendered from its spec.
    psf : PsfPicker
        ``"none"``, a PSF kind with its parameters, or an image layer.
    match_button, run_button, cancel_button, progress, status : magicgui widgets
    worker : napari worker or None
        The running synthesis or estimation, if any.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer, title="Noise", run_text="Add noise", notify=_notify)
        self.image = ComboBox(label="Clean image", choices=self._image_layers)
        self.noise = ComboBox(label="Noise model", choices=self._noise_choices)
        self.params = SpecForms()
        self.psf = PsfPicker(viewer, exclude=lambda: self.image.value, optional=True)
        self.seed = SpinBox(label="Seed", value=0, min=0, max=2**31 - 1)
        self.match_layer = ComboBox(label="Match noise of", choices=self._image_layers)
        self.match_layer.tooltip = "A real noisy layer whose noise the parameters should match"
        self.match_button = PushButton(text="Match noise")
        self.start_buttons.append(self.match_button)
        self.extend(
            [
                self.image,
                self.noise,
                self.params,
                self.psf,
                self.seed,
                self.match_layer,
                self.match_button,
                *self.controls(),
            ]
        )
        flush_left(self.params, self.psf)
        self._image_by_hand = False  # the clean image was picked: no more preselection
        self._preselecting = False
        self.image.changed.connect(self._on_image_picked)
        self.noise.changed.connect(self._on_noise_changed)
        self.match_button.changed.connect(self.match_noise)
        follow_layers(self, viewer)
        self.reset_choices()
        self._on_noise_changed()

    # ------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return image_layers(self._viewer)

    def _noise_choices(self, _widget: Any = None) -> list[str]:
        return list(list_noise_models())

    def reset_choices(self, *_: Any) -> None:
        """Re-read the noise models and the image layers; each selection stays on its item."""
        combos = (self.image, self.match_layer)
        current = [c.value for c in combos]
        self._preselecting = True  # the choices change: no pick by hand
        try:
            super().reset_choices()
            choices = self._image_layers()
            for combo, value in zip(combos, current, strict=True):
                keep_selection(combo, choices, value)
            self._preselect_clean(choices)
        finally:
            self._preselecting = False
        self._on_noise_changed()

    def _preselect_clean(self, choices: list[tuple[str, Image]]) -> None:
        """Until an image is picked by hand, the *Clean image* is a layer that looks
        clean (a sample's clean layer, or one named like clean, ground truth or gt)
        when there is one: noise is added to a clean image, not to the noisy one
        that napari lists first."""
        from .quality import looks_like_reference

        if self._image_by_hand or (
            self.image.value is not None and looks_like_reference(self.image.value)
        ):
            return
        clean = next((layer for _, layer in choices if looks_like_reference(layer)), None)
        if clean is not None:
            self.image.value = clean
        else:  # noise is added to an image, not to a PSF opened before it
            off_psf_layers(self.image, choices)

    def _on_image_picked(self, *_: Any) -> None:
        if not self._preselecting:
            self._image_by_hand = True

    def noise_spec(self) -> Spec:
        """The chosen noise model's spec."""
        models = list_noise_models()
        if self.noise.value not in models:
            raise ValueError(f"unknown noise model {self.noise.value!r}; known: {list(models)}")
        return models[self.noise.value]

    def _on_noise_changed(self, *_: Any) -> None:
        spec = list_noise_models().get(self.noise.value)
        self.params.show(spec)
        if spec is not None:
            self.noise.tooltip = spec.description

    # ------------------------------------------------------------ values

    def set_params(self, params: dict[str, Any]) -> None:
        """Show the model and parameters of an :func:`~napari_deconvnet.estimate_noise` result.

        Parameters the chosen model does not take are left out; those it takes that
        `params` does not give go back to their defaults (a ``bit_depth`` of 8 typed
        earlier stayed, and the matched noise of a 12-bit camera was clipped at 255).
        """
        before = self.noise.value
        self.noise.value = params["noise"]
        spec = self.noise_spec()
        values = {p.name: p.default for p in spec.params if not {p.name, *p.aliases} & set(params)}
        accepted = {n for p in spec.params for n in (p.name, *p.aliases)}
        values.update({k: v for k, v in params.items() if k in accepted})
        try:
            self.params.set_values(values)
        except (ValueError, TypeError):
            self.noise.value = before  # a value the form cannot show: the form as it was
            raise

    # ------------------------------------------------------------ actions

    def match_noise(self) -> None:
        """Estimate the noise of the "Match noise of" layer (in a worker) and show it."""
        self.submit(self._prepare_match)

    def _prepare_match(self) -> Job:
        layer = self.match_layer.value
        if layer is None:
            raise ValueError("there is no layer to match; open a real noisy image first")
        axes = labelled_axes(layer)
        channel_axis, shown = None, 0
        if axes is not None and "C" in axes and not layer.rgb:
            channel_axis = axes.index("C")
            # the channel on screen, in the layer's data (its scale and translate: the
            # viewer's step counts world steps, session 72's review)
            with contextlib.suppress(Exception):
                point = layer.world_to_data(self._viewer.dims.point)
                shown = int(round(float(np.asarray(point)[channel_axis])))
        return Job(
            _estimate_job,
            (layer_data(layer), bool(layer.rgb), channel_axis, shown),
            message=f"estimating the noise of {layer.name!r}...",
            failure=f"Noise: matching {layer.name!r} failed",
            done=partial(self._on_estimated, layer.name),
        )

    def prepare(self) -> Job:
        """Check the form (GUI thread) and describe the synthesis to run."""
        layer = self.image.value
        if layer is None:
            raise ValueError("there is no clean image layer; open or add an image first")
        spec = self.noise_spec()
        params = self.params.values()
        psf = self.psf.spec("noise synthesis")
        self._check(layer, spec.name, params, psf)
        seed = int(self.seed.value)
        axes = labelled_axes(layer)
        about = {"noise": spec.name, "params": params, "seed": seed}
        if axes is not None:
            about["axes"] = axes
        return Job(
            noise_job,
            (layer_data(layer), spec.name),
            {"params": params, "psf": psf, "seed": seed, "rgb": bool(layer.rgb), "axes": axes},
            message=f"adding {spec.name} noise to {layer.name!r}...",
            failure=f"Noise: noise on {layer.name!r} failed",
            done=partial(self._add_layer, layer, about),
            source=layer,
        )

    @staticmethod
    def _check(layer: Image, noise: str, params: dict[str, Any], psf: Any) -> None:
        """Validate everything on a tiny image first, so that errors come before any work."""
        from napari_deconvnet.core.noise import synthesize

        ndim = layer_data(layer).ndim - (1 if layer.rgb else 0)
        axes = labelled_axes(layer)
        k = _psf_dims(psf, axes)
        if axes is not None and k == 3 and "Z" not in axes:
            raise ValueError(
                f"a 3D PSF needs a layer with a Z axis, but {layer.name!r} has none (its axis "
                f"labels are {axes!r}: its planes are not a volume); choose a 2D PSF"
            )
        if k > ndim:
            raise ValueError(
                f"a {k}D PSF needs a layer with at least {k} spatial dimensions, "
                f"but {layer.name!r} has {ndim}"
            )
        # the image's extremes, when left automatic: on the side of a given one (a given
        # low of 10 beside a made-up high of 1 was refused as pepper above salt)
        given_low, given_high = params.get("low"), params.get("high")
        extremes = {
            "low": min(0.0, given_high) if given_high is not None else 0.0,
            "high": max(1.0, given_low) if given_low is not None else 1.0,
        }
        probe = {n: extremes[n] if v is None and n in extremes else v for n, v in params.items()}
        # at the offset a clean image includes (zeros sat below it, and warned of pixels
        # below 0 every time)
        level = float(probe.get("offset") or 0.0) if probe.get("clean_includes_offset") else 0.0
        synthesize(np.full((4,) * k, level, np.float32), noise, seed=0, **probe)

    # ----------------------------------------------------- worker results

    def _on_estimated(self, name: str, params: dict[str, Any]) -> str:
        channels, on_screen = params.pop("channels", None), params.pop("shown", 0)
        if channels is not None:
            said = "; ".join(
                f"channel {i}: {e['noise']} "
                + ", ".join(f"{k}={v:.3g}" for k, v in e.items() if isinstance(v, float))
                for i, e in enumerate(channels)
            )
            _caution(
                f"Noise: the channels of {name!r} have different noise ({said}); the form "
                f"holds one model for every channel and shows channel {on_screen}'s (the one on "
                "screen). Add noise to one channel at a time to match each"
            )
        # the offset was measured on an image in the camera's ADU: the clean image, from
        # the same camera (a sample's clean layer, an average of frames), includes it too
        # and must not get it twice (the sample's clean layer got 2x the offset)
        offset = params.get("offset")
        includes = params["noise"] == "poisson-gaussian" and bool(offset)
        self.set_params({**params, "clean_includes_offset": includes} if includes else params)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in params.items() if isinstance(v, float))
        note = "; the clean image is taken to include the offset" if includes else ""
        which = f" (channel {on_screen})" if channels is not None else ""
        return f"matched {name!r}{which}: {params['noise']} {shown}{note}"

    def _add_layer(self, layer: Image, about: dict[str, Any], result: dict[str, Any]) -> str:
        # the axes synthesize_iter drew with: with them, its seed re-creates the noise
        # block by block (an RGB layer's samples and a stack's planes are blocks)
        extra = {"synthesis_axes": result["axes"]} if result.get("axes") else {}
        rec = record("synthesize", **about, **extra, psf=result["psf"], source=layer.name)
        added = add_result(
            self._viewer,
            result["data"],
            like=layer,
            name=f"{layer.name} noisy ({about['noise']})",
            record=rec,
        )
        return f"added {added.name!r}"
