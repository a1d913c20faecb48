"""Keep freed buffers in the process while a long CPU restore runs (glibc only).

glibc's ``malloc`` hands every block above its mmap threshold (at most
32 MiB) to the kernel on ``free`` and asks for fresh pages on the next
``malloc`` (unless a free hole of the heap, left by earlier work, is large
enough: then that serves it). A 3D tile's feature maps are hundreds of MiB
each, so every layer of every tile starts on pages the kernel must map and zero: on the
development machine (a virtual machine) a 64x256x256 ``denoise-3d``
restore spent 2.2 to 4.9 s in the kernel against 2.7 s of arithmetic, and
each further block or view paid that again.

:func:`reuse_freed_memory` raises both thresholds for its duration, so
freed buffers stay in the heap and the next tile or block reuses them
without a page fault, and at its end hands the memory back
(``malloc_trim``) and leaves the thresholds at the values glibc's own
adjustment reaches (mmap 32 MiB, trim 64 MiB). The arithmetic and the
results do not change.

It acts only where it can help and cannot surprise:

- Linux with glibc, on the CPU;
- on the process's main thread: a block above 64 MiB requested on any
  other thread is mapped by glibc whatever the threshold (its per-thread
  heaps are at most 64 MiB), so napari's workers and dask's threads are
  left as they are;
- unless the environment variable ``NAPARI_DECONVNET_REUSE_MEMORY`` is
  ``0``.

Nested uses share the outermost one: a streamed restore keeps the memory
from block to block and trims once at the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["ENV", "active", "feature_map_bytes", "reuse_freed_memory", "worth_reusing"]

#: Set to ``0`` to leave glibc's allocator alone
ENV = "NAPARI_DECONVNET_REUSE_MEMORY"

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: While active: blocks up to this size come from the heap (and go back to it)
_HELD_MMAP = 2**30
_HELD_TRIM = 2**31 - 1
#: Afterwards: the values glibc's dynamic adjustment tends to (its maxima on 64-bit)
_AFTER_MMAP = 32 * 2**20
_AFTER_TRIM = 2 * _AFTER_MMAP
#: Buffers at or below glibc's mmap threshold maximum are reused already
GLIBC_REUSES_UP_TO = _AFTER_MMAP
#: Passes (tile batches, blocks, views) from which keeping the buffers pays
MIN_REPEATS = 4

_lock = threading.Lock()
_depth = 0
_libc: Any = None


def _glibc() -> Any:
    """The C library when it is glibc with ``mallopt`` and ``malloc_trim``, else None."""
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
                libc.gnu_get_libc_version.restype = ctypes.c_char_p
                libc.gnu_get_libc_version()
                libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
                libc.malloc_trim.argtypes = (ctypes.c_size_t,)
                _libc = libc
            except (OSError, AttributeError):
                pass
    return _libc or None


def active() -> bool:
    """Whether freed buffers are being kept now (inside :func:`reuse_freed_memory`)."""
    return _depth > 0


def worth_reusing(buffer_bytes: float, repeats: int) -> bool:
    """Whether a restore whose largest buffers are `buffer_bytes`, made `repeats`
    times (tiles, blocks, views), gains from :func:`reuse_freed_memory`.

    Only buffers above glibc's reuse limit are mapped afresh, and the first
    pass has nothing freed to reuse: it pays off from a few passes on (two
    batches of 3D tiles gained nothing measurable and held 0.5 GB more).
    """
    return repeats >= MIN_REPEATS and buffer_bytes > GLIBC_REUSES_UP_TO


def feature_map_bytes(net: Any, tile: Any, halo: int, batch_size: int, dtype: Any) -> float:
    """Bytes of one full-resolution feature map of a batch of haloed tiles."""
    voxels = math.prod(int(t) + 2 * int(halo) for t in tile)
    value = 4 if dtype == torch.float32 else 2
    return float(batch_size) * net.config.base_channels * voxels * value


@contextlib.contextmanager
def reuse_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """Keep freed buffers in the heap for reuse until the outermost use ends.

    Yields whether it acts (see the module's documentation for where it
    does). Exiting the outermost use returns the kept memory to the system.
    """
    global _depth
    libc = _glibc()
    acts = (
        enabled
        and libc is not None
        and os.environ.get(ENV, "1") != "0"
        and threading.current_thread() is threading.main_thread()
    )
    if not acts:
        yield False
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            libc.mallopt(_M_TRIM_THRESHOLD, _HELD_TRIM)
            if not libc.mallopt(_M_MMAP_THRESHOLD, _HELD_MMAP):  # an older limit
                libc.mallopt(_M_MMAP_THRESHOLD, _AFTER_MMAP)
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, _AFTER_MMAP)
                libc.mallopt(_M_TRIM_THRESHOLD, _AFTER_TRIM)
                libc.malloc_trim(0)
