"""When the reader reads lazily, and its settings.

The "Open restored" reader keeps a file in memory unless its float32 copy
would be larger than ``settings.lazy_bytes``; then the raw and the restored
layers are dask arrays, computed slice by slice as napari shows them, with
the restore's statistics from the core's deterministic sample
(:mod:`napari_deconvnet.core.normalization`).

Examples
--------
>>> is_lazy((1000, 1000), lazy_bytes=10**6)
True
>>> is_lazy((100, 100), lazy_bytes=10**6)
False
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["ReaderSettings", "is_lazy", "lazy_restore", "settings"]

_logger = logging.getLogger(__name__)


class ReaderSettings:
    """Settings of the "Open restored" reader.

    Each is None until set; then the environment variable, then the default,
    applies.

    Attributes
    ----------
    model : str or None
        Model for the restored layer: a shipped name or a ``.safetensors``
        path. ``NAPARI_DECONVNET_MODEL``; default ``"default"``.
    lazy_bytes : int or None
        Restored data (as float32) larger than this many bytes is lazy.
        ``NAPARI_DECONVNET_LAZY_BYTES``; default ``10**9`` (1 GB).
    device : str or None
        ``"auto"``, ``"cpu"``, ``"cuda"``, ... ``NAPARI_DECONVNET_DEVICE``;
        default ``"auto"``.
    """

    _ENV = {
        "model": ("NAPARI_DECONVNET_MODEL", "default"),
        "lazy_bytes": ("NAPARI_DECONVNET_LAZY_BYTES", 10**9),
        "device": ("NAPARI_DECONVNET_DEVICE", "auto"),
    }

    def __init__(self) -> None:
        self.model: str | None = None
        self.lazy_bytes: int | None = None
        self.device: str | None = None

    def get(self, name: str) -> Any:
        """The value in force for `name`."""
        value = getattr(self, name)
        if value is not None:
            return value
        env, default = self._ENV[name]
        text = os.environ.get(env, "").strip()
        if not text:
            return default
        if name == "lazy_bytes":
            try:
                return int(float(text))
            except ValueError:
                _logger.warning("ignoring %s=%r: not a number of bytes", env, text)
                return default
        return text


#: The reader's settings; assign attributes to change them for this session.
settings = ReaderSettings()


def is_lazy(shape: Sequence[int], lazy_bytes: int | None = None) -> bool:
    """Whether an image of `shape` is read lazily: its float32 copy exceeds `lazy_bytes`.

    Parameters
    ----------
    shape : sequence of int
    lazy_bytes : int, optional
        Default ``settings.lazy_bytes``.
    """
    if lazy_bytes is None:
        lazy_bytes = settings.get("lazy_bytes")
    return math.prod(shape) * 4 > lazy_bytes


def lazy_restore(x: Any, net: Any, axes: str | None, device: str = "auto") -> Any:
    """Restore the dask array `x` lazily: :func:`napari_deconvnet.restore` on it.

    The statistics come from the core's one normalisation
    (:mod:`napari_deconvnet.core.normalization`): a deterministic sample of at
    most 64 chunks (the whole array when it holds at most 4 M values in at
    most 1,024 chunks), per channel where the model normalises channels apart and
    per image of a stack (each time point, each plane under a 2D model), the
    same numbers the API, the CLI and ``restore_to_zarr`` use for this array.
    """
    from napari_deconvnet.core.tiling import restore

    return restore(x, net, axes=axes, device=device)
