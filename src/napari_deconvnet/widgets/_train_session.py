"""The Train widget's session folder: the autosave of every training, and *Resume*.

Every training the widget starts writes, through the engine's ``autosave``
(:mod:`napari_deconvnet.core.checkpoint`), the best model so far and the
resume state into one folder per user (:func:`session_folder`), and beside
them the form's settings (``session.json``: the mode, the shared fields, the
input and target layers by name, the synthetic pairs' noise model and PSF,
and adaptation's PSF and time budget). An adaptation also writes its own
record there (:mod:`napari_deconvnet.core.adapt_record`: the PSF, the
camera noise found in the image, the phantoms and the settings). After a
crash or a closed viewer, a new Train widget offers *Resume the last
session*: it puts those settings back into the form, and Train continues the
run from the resume state: the step count, history, optimiser and schedule
go on.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = [
    "AUTOSAVE_NAME",
    "FORM_FIELDS",
    "SETTINGS_NAME",
    "apply_picker",
    "apply_settings",
    "autosave_path",
    "can_resume",
    "check_resume_mode",
    "form_settings",
    "picker_state",
    "read_settings",
    "session_folder",
    "session_summary",
    "start_session",
]

#: The autosaved best model in the session folder (its resume state is beside it).
AUTOSAVE_NAME = "autosave.safetensors"
#: The form settings of the autosaved run.
SETTINGS_NAME = "session.json"


def session_folder() -> Path:
    """The folder where the Train widget autosaves (created when first written).

    ``$NAPARI_DECONVNET_SESSION`` if set, else ``train-session`` in the
    user's cache folder for napari-deconvnet.
    """
    override = os.environ.get("NAPARI_DECONVNET_SESSION")
    if override:
        return Path(override)
    import platformdirs  # a dependency of napari

    return Path(platformdirs.user_cache_dir("napari-deconvnet")) / "train-session"


def autosave_path(folder: Path) -> Path:
    """The autosaved model file in `folder`."""
    return Path(folder) / AUTOSAVE_NAME


def _resume_file(folder: Path) -> Path:
    from napari_deconvnet.core.checkpoint import resume_path

    return resume_path(autosave_path(folder))


def can_resume(folder: Path) -> bool:
    """Whether `folder` holds a run to resume: its resume state and its settings."""
    folder = Path(folder)
    return _resume_file(folder).is_file() and (folder / SETTINGS_NAME).is_file()


def read_settings(folder: Path) -> dict[str, Any] | None:
    """The form settings of the autosaved run (None if missing or unreadable)."""
    try:
        settings = json.loads((Path(folder) / SETTINGS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return settings if isinstance(settings, dict) else None


def start_session(folder: Path, settings: dict[str, Any], *, resume: bool) -> dict[str, Any]:
    """Prepare `folder` for a run; return the engine's ``autosave`` (and ``resume``) options.

    A new run (``resume=False``) removes the previous run's files first, so
    that a run that fails before its first epoch is never resumed into
    another's state; then the form's `settings` are written.

    Raises
    ------
    ValueError
        ``resume=True`` but there is nothing to resume.
    OSError
        The folder cannot be written.
    """
    folder = Path(folder)
    path = autosave_path(folder)
    if resume:
        if not can_resume(folder):
            raise ValueError(
                f"there is no training to resume in {folder}; untick Resume to start a new one"
            )
        return {"autosave": str(path), "resume": str(path)}
    folder.mkdir(parents=True, exist_ok=True)
    from napari_deconvnet.core.adapt_record import record_path

    for old in (path, _resume_file(folder), record_path(path)):
        old.unlink(missing_ok=True)
    from napari_deconvnet.core.atomic import write_atomic

    write_atomic(folder / SETTINGS_NAME, json.dumps(settings, indent=1).encode("utf-8"))
    return {"autosave": str(path)}


#: The Train widget's fields that a resumed run takes back, by attribute name.
FORM_FIELDS = (
    "dims",
    "patch_size",
    "batch_size",
    "epochs",
    "max_seconds",
    "loss",
    "device",
    "start_from",
    "keep",
    "self_supervision",
)


#: The Train widget's region fields that a resumed run takes back, by layer name.
REGION_FIELDS = ("regions", "validation_region")


def picker_state(picker: Any) -> dict[str, Any]:
    """A PSF picker's choice, JSON-ready: the source, the kind's parameters, size, layer."""
    state: dict[str, Any] = {"source": picker.source.value, "size": picker.size.value}
    try:
        state["params"] = picker.forms.values()
    except (ValueError, TypeError):  # a field being edited: the kind's defaults come back
        state["params"] = {}
    layer = picker.layer.value
    state["layer"] = None if layer is None else layer.name
    return state


def apply_picker(picker: Any, state: dict[str, Any]) -> None:
    """Put :func:`picker_state`'s `state` back into a PSF picker (what fails is skipped)."""
    with contextlib.suppress(ValueError, TypeError, KeyError):
        picker.source.value = state["source"]
    with contextlib.suppress(ValueError, TypeError, KeyError):
        picker.forms.set_values(state.get("params") or {})
    with contextlib.suppress(ValueError, TypeError, KeyError):
        picker.size.value = state["size"]
    layers = {layer.name: layer for layer in picker.layer.choices if layer is not None}
    if state.get("layer") in layers:
        picker.layer.value = layers[state["layer"]]


def form_settings(widget: Any) -> dict[str, Any]:
    """The Train widget's settings of a run, JSON-ready.

    The mode, the shared fields, the input and target names (and those of
    *Also train on*, *Train in* and *Validate in*), the synthetic
    pairs' noise model, parameters and PSF, the pairs' PSF (a deconvolution
    model fine-tuned on a target layer), and adaptation's PSF and time.
    """
    target = widget.target.value
    settings = {name: getattr(widget, name).value for name in FORM_FIELDS}
    settings["mode"] = widget.mode.value
    settings["image"] = widget.image.value.name
    settings["target"] = target if isinstance(target, str) else {"layer": target.name}
    settings["more"] = [layer.name for layer in widget.more.value or []]
    # the Shapes/Labels layers the run trained and validated in (a resume without them
    # drew other validation patches and was refused as a run on other data)
    for name in REGION_FIELDS:
        layer = getattr(widget, name).value
        settings[name] = None if layer is None else layer.name
    synthetic = widget.synthetic
    try:
        noise_params = synthetic.noise_params.values()
    except (ValueError, TypeError):
        noise_params = {}
    settings["synthetic"] = {
        "noise": synthetic.noise.value,
        "noise_params": noise_params,
        "psf": picker_state(synthetic.psf),
    }
    settings["adapt"] = {
        "psf": picker_state(widget.adapt.psf),
        "seconds": widget.adapt.seconds.value,
        "scenes": widget.adapt.scenes.value,
    }
    settings["pair_psf"] = picker_state(widget.pair_psf)
    return json.loads(json.dumps(settings, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def apply_settings(widget: Any, settings: dict[str, Any]) -> None:
    """Put a run's `settings` back into the Train widget (what no longer exists is skipped)."""
    if settings.get("mode") is not None:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            widget.mode.value = settings["mode"]
    layers = {layer.name: layer for layer in widget.image.choices if layer is not None}
    values = [(getattr(widget, n), settings[n]) for n in FORM_FIELDS if n in settings]
    if settings.get("image") in layers:
        values.append((widget.image, layers[settings["image"]]))
    target = settings.get("target")
    if isinstance(target, dict):
        target = layers.get(target.get("layer"))
    if target is not None:
        values.append((widget.target, target))
    for field, value in values:
        try:
            field.value = value
        except (ValueError, TypeError, KeyError):
            continue  # e.g. a model that is no longer registered
    for name in REGION_FIELDS:
        if name not in settings:  # (sessions before session 66 did not record them)
            continue
        field = getattr(widget, name)
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            field.reset_choices()
            by_name = {c.name: c for c in field.choices if c is not None}
            if settings[name] is None:  # the run had none: none (not the form's)
                field.value = None
            elif settings[name] in by_name:
                field.value = by_name[settings[name]]
    more = [layers[n] for n in settings.get("more") or [] if n in layers]
    with contextlib.suppress(ValueError, TypeError, KeyError):
        widget.more.reset_choices()
        widget.more.value = [m for m in more if m in widget.more.choices]
    synthetic = settings.get("synthetic")
    if isinstance(synthetic, dict):
        with contextlib.suppress(ValueError, TypeError, KeyError):
            widget.synthetic.noise.value = synthetic["noise"]
        with contextlib.suppress(ValueError, TypeError, KeyError):
            widget.synthetic.noise_params.set_values(synthetic.get("noise_params") or {})
        if isinstance(synthetic.get("psf"), dict):
            apply_picker(widget.synthetic.psf, synthetic["psf"])
    if isinstance(settings.get("pair_psf"), dict):
        apply_picker(widget.pair_psf, settings["pair_psf"])
    adapt = settings.get("adapt")
    if isinstance(adapt, dict):
        if isinstance(adapt.get("psf"), dict):
            apply_picker(widget.adapt.psf, adapt["psf"])
        for field in ("seconds", "scenes"):
            with contextlib.suppress(ValueError, TypeError, KeyError):
                getattr(widget.adapt, field).value = adapt[field]


def check_resume_mode(folder: Path, mode: str) -> None:
    """Refuse (ValueError) to resume the session of the other mode (training vs adapting)."""
    settings = read_settings(folder) or {}
    theirs = settings.get("mode")
    if theirs is not None and theirs != mode:
        raise ValueError(
            f"the last session ran in mode {theirs!r}; choose that mode to resume it, "
            "or untick Resume to start a new run"
        )


def session_summary(folder: Path) -> str | None:
    """What an autosaved adaptation was adapting to, in words (None for a training)."""
    from napari_deconvnet.core.adapt_record import read_adapt_record

    try:
        record, psf = read_adapt_record(autosave_path(folder))
    except ValueError:
        return None
    camera = record.get("camera", {})
    params = ", ".join(f"{k} {v:.3g}" for k, v in camera.get("params", {}).items())
    noise = f"{camera.get('noise')} noise" + (f" ({params})" if params else "")
    blur = "no PSF" if psf is None else f"a PSF of shape {tuple(psf.shape)}"
    return f"adapting {record.get('start', {}).get('name')} to {noise}, {blur}"
