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

__all__ = ["Cancelled", "as_stop", "check_callbacks", "drain"]


class Cancelled(Exception):
    """Raised by :func:`restore` when its ``stop`` event is set."""


class _CalledStop:
    """A callable ``stop`` read as an event: set whenever it returns something true."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self.function = function

    def is_set(self) -> bool:
        return bool(self.function())


def as_stop(stop: Any) -> Any:
    """`stop` as something with ``is_set()``: an event as it is, a callable wrapped.

    Accepted: None, a :class:`threading.Event` (or anything with an ``is_set``
    method), or a callable taking no argument that returns True to stop.

    Raises
    ------
    TypeError
        For anything else (an int, a string), instead of a bare AttributeError
        at the first check.
    """
    if stop is None or callable(getattr(stop, "is_set", None)):
        return stop
    if callable(stop):
        return _CalledStop(stop)
    raise TypeError(
        f"stop must be a threading.Event (anything with is_set()) or a callable taking no "
        f"argument that returns True to stop, got {type(stop).__name__}"
    )


def check_callbacks(progress: Any, stop: Any, name: str = "progress") -> Any:
    """Refuse a `progress` that cannot be called (TypeError); `stop` read by :func:`as_stop`."""
    if progress is not None and not callable(progress):
        raise TypeError(
            f"{name} must be a callable taking (done, total), got {type(progress).__name__}"
        )
    return as_stop(stop)


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
    stop : threading.Event or callable, optional
        Checked before each step: when set (a callable: when it returns
        True), the generator is closed and :class:`Cancelled` raised.
    cancelled : str
        The message of that :class:`Cancelled`; ``{done}`` and ``{total}``
        are replaced by the last progress (0 and 0 before the first).

    The generator is closed however this ends (an exception from `progress`
    included), so that it frees what it holds.
    """
    stop = check_callbacks(progress, stop)
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
