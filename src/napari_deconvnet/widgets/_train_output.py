"""What the Train widget does with a trained model: save it, or offer it to Restore.

A model is saved as a ``.safetensors`` model file or, for a ``.zip`` path,
as a bioimage.io package; *Use in Restore* saves it in a session folder
(removed when Python exits) and registers it with the Restore widget's
model list. The core is imported inside the functions.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["ask_model_path", "register_for_restore", "write_model"]

_session_dir: list[Path] = []


def _session_folder() -> Path:
    """A folder for models handed to the Restore widget, removed when Python exits."""
    if not _session_dir:
        folder = Path(tempfile.mkdtemp(prefix="napari-deconvnet-models-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _session_dir.append(folder)
    return _session_dir[0]


def ask_model_path(parent: Any, model: Any) -> Path | None:
    """Ask where to save `model` with a file dialog; None when cancelled."""
    from qtpy.QtWidgets import QFileDialog

    default = f"{model.metadata.get('name', 'model')}.safetensors"
    path, chosen = QFileDialog.getSaveFileName(
        parent,
        "Save model",
        default,
        "Models (*.safetensors);;bioimage.io package (*.zip)",
    )
    if not path:
        return None
    if chosen.startswith("bioimage.io") and not path.lower().endswith(".zip"):
        path = str(Path(path).with_suffix(".zip"))
    return Path(path)


def write_model(model: Any, path: str | Path) -> Path:
    """Write `model` to `path`: a bioimage.io package for ``.zip``, else a model file.

    A path without the ``.safetensors`` suffix gets it appended.
    """
    path = Path(path)
    if path.suffix.lower() == ".zip":  # a bioimage.io package (zoo, Fiji, ilastik)
        from napari_deconvnet.core.bioimageio import export_bioimageio

        return export_bioimageio(model, path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    from napari_deconvnet.core.persistence import save_model

    return save_model(model, path)


def register_for_restore(model: Any) -> str:
    """Save `model` in the session folder and list it in Restore; returns its name there."""
    from napari_deconvnet.core.persistence import save_model
    from napari_deconvnet.io import registry

    folder = Path(tempfile.mkdtemp(dir=_session_folder()))
    path = save_model(model, folder / f"{_file_stem(model.metadata.get('name'))}.safetensors")
    return registry.register_model(path, folder_in_name=False)  # "name (2)", not "(tmpab12)"


def _file_stem(name: Any) -> str:
    """A model's name as one file name in the session folder: its path separators and
    characters no file system takes replaced, no leading dot, at most 100 characters
    (the name comes from the model's metadata: "a/b" or "../../x" was followed out of
    the folder, and an existing file there overwritten)."""
    stem = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", str(name or "")).strip().lstrip(".")
    return stem[:100].strip() or "trained"
