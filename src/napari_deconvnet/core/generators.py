"""Running a progress generator to its end: the one drain every operation uses.

Every long operation of the core is a generator that yields ``(done, total)``
and returns its result (:func:`~napari_deconvnet.restore_iter`,
:func:`~napari_deconvnet.measure_iter`, the operations' ``*_iter``); its plain
function is :func:`drain` of it. This module imports nothing heavy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any

__all__ = ["Cancelled", "drain"]


class Cancelled(Exception):
    """Raised by :func:`restore` when its ``stop`` event is set."""


def drain(
    gen: Generator[tuple[int, int], None, Any],
    *,
    progress: Callable[[int, int], Any] | None = None,
    stop: threading.Event | None = None,
    cancelled: str = "stopped",
) -> Any:
    """Run a progress generator to its end; its return value.

    Parameters
    ----------
    gen : generator
        Yields ``(done, total)`` and returns the result.
    progress : callable, optional
        Called with each ``(done, total)``.
    stop : threading.Event, optional
        Checked before each step: when set, the generator is closed and
        :class:`Cancelled` raised.
    cancelled : str
        The message of that :class:`Cancelled`; ``{done}`` and ``{total}``
        are replaced by the last progress (0 and 0 before the first).

    The generator is closed however this ends (an exception from `progress`
    included), so that it frees what it holds.
    """
    done = total = 0
    try:
        while True:
            if stop is not None and stop.is_set():
                raise Cancelled(cancelled.format(done=done, total=total))
            done, total = next(gen)
            if progress is not None:
                progress(done, total)
    except StopIteration as finished:
        return finished.value
    finally:
        gen.close()
