"""The Noise dock widget: degrade a clean layer with a noise model and a PSF.

The noise model's fields change with the model; "Match noise of" fills them
from :func:`napari_deconvnet.estimate_noise` on a real noisy layer. Synthesis
runs in a napari worker, plane by plane (volume by volume for a 3D PSF) with
a progress bar and Cancel. The result is a new layer ``"<name> noisy
(<model>)"`` with the source's geometry and the exact parameters in
``layer.metadata["napari_deconvnet"]["synthesize"]``, so that (noisy, clean)
pairs can be used for training.

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
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.utils.notifications import show_error

from ._common import error_text, make_worker, reset_progress, show_progress
from ._layers import (
    contrast_limits,
    follow_layers,
    geometry,
    image_layers,
    keep_selection,
    layer_data,
    unique_name,
)

__all__ = ["NoiseWidget", "synthesize_layer_data"]

_logger = logging.getLogger(__name__)

NOISES = ("gaussian", "poisson", "poisson-gaussian", "salt-and-pepper", "speckle", "none")
PSFS = ("none", "gaussian", "airy", "widefield", "from layer")

# (parameter, label, default, tooltip) per noise model; defaults are synthesize's
_FIELDS: dict[str, list[tuple[str, str, Any, str]]] = {
    "gaussian": [("sigma", "Sigma", 0.1, "Standard deviation, in the image's intensity units")],
    "poisson": [
        ("peak", "Peak (photons)", 100.0, "Photons per unit of intensity (1.0 -> peak photons)")
    ],
    "poisson-gaussian": [
        ("gain", "Gain (e-/ADU)", 100.0, "Electrons per unit of intensity (ADU)"),
        ("offset", "Offset (ADU)", 0.0, "Camera offset (bias) added to every pixel"),
        ("read_noise", "Read noise (e-)", 1.0, "Read noise, electrons rms"),
        ("bit_depth", "Bit depth (0 = none)", 0, "Round and clip to [0, 2**bits - 1] ADU"),
    ],
    "salt-and-pepper": [
        ("amount", "Amount", 0.05, "Fraction of pixels replaced"),
        ("salt_vs_pepper", "Salt vs pepper", 0.5, "Fraction of replaced pixels set high"),
        ("low", "Pepper value", "", "Value of pepper pixels (empty: the image's minimum)"),
        ("high", "Salt value", "", "Value of salt pixels (empty: the image's maximum)"),
    ],
    "speckle": [
        ("sigma", "Sigma", 0.1, "Standard deviation of the multiplicative noise (1 + sigma n)")
    ],
    "none": [],
}
_PSF_FIELDS: dict[str, list[tuple[str, str, float, str]]] = {
    "gaussian": [("sigma", "PSF sigma (px)", 1.5, "Standard deviation of the Gaussian PSF")],
    "airy": [
        ("wavelength", "Wavelength (nm)", 520.0, "Emission wavelength"),
        ("na", "NA", 0.8, "Numerical aperture of the objective"),
        ("pixel_size", "Pixel size (nm)", 100.0, "Lateral pixel size in the sample"),
        ("refractive_index", "Immersion index", 1.0, "1.0 air, 1.33 water, 1.518 oil"),
    ],
    "widefield": [
        ("wavelength", "Wavelength (nm)", 520.0, "Emission wavelength"),
        ("na", "NA", 0.8, "Numerical aperture of the objective"),
        ("pixel_size", "Pixel size (nm)", 100.0, "Lateral pixel size in the sample"),
        ("z_step", "Z step (nm)", 250.0, "Axial distance between planes"),
        ("refractive_index", "Immersion index", 1.0, "1.0 air, 1.33 water, 1.518 oil"),
    ],
}


def _number(label: str, value: float, tip: str, *, signed: bool = False) -> FloatSpinBox:
    """A float field with 6 decimals (estimated parameters can be small) and no upper cap."""
    field = FloatSpinBox(
        label=label, value=value, min=-1e12 if signed else 0.0, max=1e12, step=0.01
    )
    with contextlib.suppress(AttributeError):
        field.native.setDecimals(6)
    field.value = value
    field.tooltip = tip
    return field


def _chunk_ndim(psf: Any) -> int:
    """Number of trailing axes synthesized together: those the PSF blurs, at least 2."""
    if psf is None:
        return 2
    if isinstance(psf, dict):
        if psf.get("kind") == "widefield":
            return 3
        sigma = psf.get("sigma")
        return max(2, len(sigma)) if isinstance(sigma, (list, tuple)) else 2
    return max(2, np.ndim(psf))


def synthesize_layer_data(
    data: Any,
    noise: str,
    params: dict[str, Any],
    *,
    psf: Any = None,
    seed: int | None = 0,
    rgb: bool = False,
) -> Generator[tuple[int, int], None, tuple[np.ndarray, dict[str, Any]]]:
    """Worker body: synthesize noise on layer data chunk by chunk, yielding progress.

    Chunks are the planes (or volumes, for a 3D PSF) of the trailing axes;
    RGB samples are separate chunks. One generator seeded by `seed` draws
    all chunks in order, so that the same seed gives the same result, and a
    2D image gives exactly ``synthesize(data, noise, psf=psf, seed=seed, **params)``.
    Salt-and-pepper values default to the minimum and maximum of all the data.

    Returns
    -------
    noisy : float32 ndarray of the shape of `data`
    params : dict
        `params` as used, with salt-and-pepper values resolved.
    """
    from napari_deconvnet.core.noise import synthesize

    array = np.moveaxis(data, -1, 0) if rgb else data
    params = dict(params)
    if noise == "salt-and-pepper":
        for key, reduce in (("low", np.min), ("high", np.max)):
            if params.get(key) is None:
                params[key] = float(np.asarray(reduce(array)))
    k = min(_chunk_ndim(psf), array.ndim)
    lead = tuple(array.shape[: array.ndim - k])
    total = math.prod(lead)
    out = np.empty(array.shape, np.float32)
    rng = np.random.default_rng(seed)
    for i, index in enumerate(np.ndindex(lead)):
        chunk = np.asarray(array[index])
        out[index] = synthesize(chunk, noise, psf=psf, seed=rng, **params)
        yield i + 1, total
    return (np.moveaxis(out, 0, -1) if rgb else out), params


def _estimate_job(data: Any, rgb: bool) -> dict[str, Any]:
    from napari_deconvnet.core.noise import estimate_noise

    return estimate_noise(np.asarray(data), channel_axis=-1 if rgb else None)


class NoiseWidget(Container):
    """Add synthetic noise (and blur) to a clean image layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose image layers are offered and which receives the
        noisy layer.

    Attributes
    ----------
    image, noise, psf, psf_layer, seed, match_layer : magicgui widgets
        The inputs. ``fields[model][param]`` and ``psf_fields[kind][param]``
        hold the parameter fields; only the chosen model's are shown.
    match_button, run_button, cancel_button, progress, status : magicgui widgets
    worker : napari worker or None
        The running synthesis or estimation, if any.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self._viewer = viewer
        self.worker = None

        self.image = ComboBox(label="Clean image", choices=self._image_layers)
        self.noise = ComboBox(label="Noise model", choices=NOISES, value="gaussian")
        self.fields: dict[str, dict[str, Any]] = {}
        for model, specs in _FIELDS.items():
            self.fields[model] = {}
            for name, label, default, tip in specs:
                if name == "bit_depth":
                    field = SpinBox(label=label, value=default, min=0, max=32)
                elif isinstance(default, str):
                    field = LineEdit(label=label, value=default)
                else:
                    field = _number(label, default, tip, signed=name == "offset")
                field.tooltip = tip
                self.fields[model][name] = field
        self.psf = ComboBox(label="PSF", choices=PSFS, value="none")
        self.psf.tooltip = "Blur applied before the noise, as optics blurs before the sensor"
        self.psf_fields: dict[str, dict[str, FloatSpinBox]] = {}
        for kind, specs in _PSF_FIELDS.items():
            self.psf_fields[kind] = {
                name: _number(label, default, tip) for name, label, default, tip in specs
            }
        self.psf_layer = ComboBox(label="PSF layer", choices=self._image_layers)
        self.seed = SpinBox(label="Seed", value=0, min=0, max=2**31 - 1)
        self.match_layer = ComboBox(label="Match noise of", choices=self._image_layers)
        self.match_layer.tooltip = "A real noisy layer whose noise the parameters should match"
        self.match_button = PushButton(text="Match noise")
        self.run_button = PushButton(text="Add noise")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="Progress", value=0, min=0, max=1)
        self.status = Label(label="", value="")

        widgets: list[Any] = [self.image, self.noise]
        for model in NOISES:
            widgets.extend(self.fields[model].values())
        widgets.append(self.psf)
        for kind in _PSF_FIELDS:
            widgets.extend(self.psf_fields[kind].values())
        widgets += [
            self.psf_layer,
            self.seed,
            self.match_layer,
            self.match_button,
            self.run_button,
            self.cancel_button,
            self.progress,
            self.status,
        ]
        self.extend(widgets)

        self.noise.changed.connect(self._update_visibility)
        self.psf.changed.connect(self._update_visibility)
        self.match_button.changed.connect(self.match_noise)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        follow_layers(self, viewer)
        self.reset_choices()
        self._update_visibility()

    # ------------------------------------------------------------ choices

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return image_layers(self._viewer)

    def reset_choices(self, *_: Any) -> None:
        """Re-read the image layers; each selection stays on the same layer."""
        combos = (self.image, self.psf_layer, self.match_layer)
        current = [c.value for c in combos]
        super().reset_choices()
        choices = self._image_layers()
        for combo, value in zip(combos, current, strict=True):
            keep_selection(combo, choices, value)

    def _update_visibility(self, *_: Any) -> None:
        for model, fields in self.fields.items():
            for field in fields.values():
                field.visible = model == self.noise.value
        kind = self.psf.value
        for name, fields in self.psf_fields.items():
            for field in fields.values():
                field.visible = name == kind
        self.psf_layer.visible = kind == "from layer"

    # ------------------------------------------------------------ values

    def noise_params(self) -> dict[str, Any]:
        """The chosen noise model's parameters, as :func:`synthesize` takes them.

        Raises
        ------
        ValueError
            If a salt or pepper value is not a number.
        """
        params: dict[str, Any] = {}
        for name, field in self.fields[self.noise.value].items():
            value = field.value
            if name == "bit_depth":
                value = int(value) or None
            elif name in ("low", "high"):
                text = str(value).strip()
                try:
                    value = float(text) if text else None
                except ValueError:
                    raise ValueError(
                        f"{field.label} must be a number or empty (the image's extreme), "
                        f"got {text!r}"
                    ) from None
            params[name] = value
        return params

    def psf_spec(self) -> Any:
        """None, a ``{"kind": ..., **params}`` dict, or the PSF layer's data.

        Raises
        ------
        ValueError
            If "from layer" is chosen but there is no PSF layer.
        """
        kind = self.psf.value
        if kind == "none":
            return None
        if kind == "from layer":
            layer = self.psf_layer.value
            if layer is None:
                raise ValueError("no PSF layer chosen; add the PSF as an image layer first")
            return np.asarray(layer_data(layer), dtype=np.float64)
        return {"kind": kind, **{n: float(f.value) for n, f in self.psf_fields[kind].items()}}

    def set_params(self, params: dict[str, Any]) -> None:
        """Show the model and parameters of a :func:`estimate_noise` result."""
        model = params["noise"]
        self.noise.value = model
        fields = self.fields[model]
        for name, value in params.items():
            if name == "noise":
                continue
            if model == "poisson" and name == "gain":
                name = "peak"  # the same quantity
            if name not in fields:
                continue
            if name in ("low", "high"):
                fields[name].value = "" if value is None else repr(float(value))
            elif name == "bit_depth":
                fields[name].value = int(value or 0)
            else:
                fields[name].value = float(value)

    # ------------------------------------------------------------ actions

    def _busy(self) -> bool:
        """A job runs (a cancelled one too, until its worker has ended), or the widget closed."""
        return self.worker is not None or getattr(self, "_closed", False)

    def match_noise(self) -> None:
        """Estimate the noise of the "Match noise of" layer (in a worker) and show it."""
        if self._busy():
            return
        layer = self.match_layer.value
        if layer is None:
            show_error("Noise: there is no layer to match; open a real noisy image first")
            return
        worker = make_worker(_estimate_job, layer_data(layer), bool(layer.rgb))
        worker.returned.connect(partial(self._on_estimated, worker, layer.name))
        worker.errored.connect(partial(self._on_errored, worker, f"matching {layer.name!r}"))
        worker.finished.connect(partial(self._on_finished, worker))
        self._start(worker, f"estimating the noise of {layer.name!r}...")

    def run(self) -> None:
        """Synthesize noise on the chosen clean layer in a worker thread."""
        if self._busy():
            return
        layer = self.image.value
        try:
            if layer is None:
                raise ValueError("there is no clean image layer; open or add an image first")
            noise = self.noise.value
            params = self.noise_params()
            psf = self.psf_spec()
            self._check(layer, noise, params, psf)
        except (ValueError, TypeError) as err:
            show_error(f"Noise: {err}")
            return
        seed = int(self.seed.value)
        record = psf
        if isinstance(psf, np.ndarray):  # the layer's name, not the array, goes in metadata
            record = {"layer": self.psf_layer.value.name, "shape": list(psf.shape)}
        job = {"layer": layer, "noise": noise, "params": params, "psf": record, "seed": seed}
        worker = make_worker(
            synthesize_layer_data,
            layer_data(layer),
            noise,
            params,
            psf=psf,
            seed=seed,
            rgb=bool(layer.rgb),
        )
        worker.yielded.connect(partial(self._on_yielded, worker))
        worker.returned.connect(partial(self._on_returned, worker, job))
        worker.errored.connect(partial(self._on_errored, worker, f"noise on {layer.name!r}"))
        worker.finished.connect(partial(self._on_finished, worker))
        self._start(worker, f"adding {noise} noise to {layer.name!r}...")

    @staticmethod
    def _check(layer: Image, noise: str, params: dict[str, Any], psf: Any) -> None:
        """Validate everything on a tiny image first, so that errors come before any work."""
        from napari_deconvnet.core.noise import synthesize

        data = layer_data(layer)
        ndim = data.ndim - (1 if layer.rgb else 0)
        k = _chunk_ndim(psf)
        if k > ndim:
            raise ValueError(
                f"a {k}D PSF needs a layer with at least {k} spatial dimensions, "
                f"but {layer.name!r} has {ndim}"
            )
        probe = {**params}
        if noise == "salt-and-pepper":
            probe = {**params, "low": params["low"] or 0.0, "high": params["high"] or 1.0}
        synthesize(np.zeros((4,) * k, np.float32), noise, psf=psf, seed=0, **probe)

    def cancel(self) -> None:
        """Stop the running synthesis at its next plane; Run is enabled when the worker ends."""
        if self.worker is None or self.worker.abort_requested:
            return
        self.worker.quit()
        reset_progress(self.progress)
        self.status.value = "cancelling (the current plane finishes first)..."
        self.cancel_button.enabled = False

    def close_workers(self) -> None:
        """The widget is closing: stop the job; late signals of the worker are ignored."""
        self._closed = True
        if self.worker is not None:
            self.worker.quit()

    def _start(self, worker: Any, message: str) -> None:
        self.worker = worker
        reset_progress(self.progress)
        self.status.value = message
        self.run_button.enabled = self.match_button.enabled = False
        self.cancel_button.enabled = True
        worker.start()

    # ----------------------------------------------------- worker signals

    def _on_yielded(self, worker: Any, value: tuple[int, int]) -> None:
        if worker is not self.worker or worker.abort_requested or self._busy_closed():
            return
        show_progress(self.progress, value)

    def _on_estimated(self, worker: Any, name: str, params: dict[str, Any]) -> None:
        if worker.abort_requested or self._busy_closed():
            return
        self.set_params(params)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in params.items() if isinstance(v, float))
        self.status.value = f"matched {name!r}: {params['noise']} {shown}"

    def _on_returned(
        self, worker: Any, job: dict[str, Any], result: tuple[np.ndarray, dict[str, Any]]
    ) -> None:
        if worker.abort_requested or self._busy_closed():
            return
        from napari_deconvnet import __version__

        data, params = result
        layer = job["layer"]
        record = {"noise": job["noise"], **params, "psf": job["psf"], "seed": job["seed"]}
        kwargs = {
            "name": unique_name(self._viewer, f"{layer.name} noisy ({job['noise']})"),
            "rgb": layer.rgb,
            "contrast_limits": contrast_limits(data),
            "metadata": {
                "napari_deconvnet": {
                    "synthesize": record,
                    "source": layer.name,
                    "version": __version__,
                }
            },
            **geometry(layer),
        }
        if not layer.rgb:
            kwargs["colormap"] = layer.colormap
        self._viewer.add_image(data, **kwargs)
        self.status.value = f"added {kwargs['name']!r}"

    def _on_errored(self, worker: Any, what: str, exc: BaseException) -> None:
        message = error_text(exc, _logger, what)
        show_error(f"Noise: {what} failed: {message}")
        if worker is self.worker and not self._busy_closed():
            self.status.value = "failed"

    def _on_finished(self, worker: Any) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        if self._busy_closed():
            return
        if worker.abort_requested:
            self._set_ready("cancelled")
        else:
            self.run_button.enabled = self.match_button.enabled = True
            self.cancel_button.enabled = False

    def _busy_closed(self) -> bool:
        return getattr(self, "_closed", False)

    def _set_ready(self, status: str) -> None:
        reset_progress(self.progress)
        self.status.value = status
        self.run_button.enabled = self.match_button.enabled = True
        self.cancel_button.enabled = False
