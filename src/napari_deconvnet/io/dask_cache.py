"""Let dask's opportunistic cache survive computes from two threads at once.

napari registers a global :class:`dask.cache.Cache` when it shows a dask
layer. That cache keeps one table of task start times, and each compute's end
clears the whole table (``Cache._finish``): when the reader's or a widget's
worker thread computes part of a lazy layer while napari's own slicing
computes another part, the compute that ends second looks up a start time
that is gone and fails with ``KeyError: 'getitem-original-from-zarr-...'``
(seen in CI: the "open restored" reader's worker failed that way, at random).

:func:`tolerate_concurrent_computes` makes the cache skip recording a task
whose start time another thread cleared (that result is simply not cached),
once per process. Nothing else changes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["tolerate_concurrent_computes"]


def tolerate_concurrent_computes() -> None:
    """Patch :class:`dask.cache.Cache` (once) to ignore tasks whose timing was cleared."""
    try:
        from dask.cache import Cache
    except ImportError:  # pragma: no cover - dask is a dependency
        return
    if getattr(Cache, "_napari_deconvnet_tolerant", False):
        return
    original = Cache._posttask

    def _posttask(self: Any, key: Any, value: Any, dsk: Any, state: Any, id: Any) -> Any:
        if key not in self.starttimes:  # another thread's compute ended and cleared it
            return None
        return original(self, key, value, dsk, state, id)

    Cache._posttask = _posttask
    Cache._napari_deconvnet_tolerant = True
