"""npe2 readers: open an image "restored", and open model files.

This module gathers the readers' public names; each lives in the module of
its concept:

- :mod:`~napari_deconvnet.io.restored_reader`: the "Open restored" reader
  (:func:`get_reader`, :func:`read_restored`): an image as a raw and a
  restored layer, restored in a worker thread in napari;
- :mod:`~napari_deconvnet.io.model_reader`: the model-file reader
  (:func:`get_model_reader`, :func:`read_model`);
- :mod:`~napari_deconvnet.io.image_files`: the file formats
  (:func:`read_image`, :class:`ImageFile`, :func:`file_kind`);
- :mod:`~napari_deconvnet.io.lazy`: when a file is read lazily, and the
  reader's :data:`settings`.

Errors of the "Open restored" reader are logged to the logger of this
module's name, ``napari_deconvnet.io.reader``.
"""

from __future__ import annotations

from .image_files import ImageFile, file_kind, file_stem, read_image
from .lazy import ReaderSettings, is_lazy, lazy_restore, settings
from .model_reader import get_model_reader, read_model
from .restored_reader import LayerData, get_reader, read_restored

__all__ = [
    "ImageFile",
    "LayerData",
    "ReaderSettings",
    "file_kind",
    "file_stem",
    "get_model_reader",
    "get_reader",
    "is_lazy",
    "lazy_restore",
    "read_image",
    "read_model",
    "read_restored",
    "settings",
]
