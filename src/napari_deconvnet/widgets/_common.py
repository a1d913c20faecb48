"""Worker plumbing shared by the dock widgets (GUI side only).

torch and the core are never imported here, so that opening napari stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re
from collections.abc import Callable
from typing import Any

from napari.qt.threading import thread_worker

DEVICES = ("auto", "cpu", "cuda", "mps")


class JobError(Exception):
    """A RuntimeError raised by a worker's job, re-raised as an ordinary exception.

    superqt's generator worker takes a RuntimeError out of the generator for
    "the worker was deleted": it only warns, and emits neither ``errored``
    nor ``finished``, so the job would never end. torch raises
    RuntimeErrors (shape errors, ``torch.OutOfMemoryError``...), so
    :func:`guarded` re-raises them as this; the original is its
    ``__cause__`` (:func:`error_text` shows that one).
    """


def guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` (a worker's body) with a RuntimeError it raises re-raised as :class:`JobError`.

    A generator function stays a generator function (values sent to it pass
    through), so that napari still makes a generator worker of it.
    """
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def steps(*args: Any, **kwargs: Any) -> Any:
            try:
                return (yield from func(*args, **kwargs))
            except RuntimeError as exc:
                raise JobError(str(exc)) from exc

        return steps

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RuntimeError as exc:
            raise JobError(str(exc)) from exc

    return call


def original_error(exc: BaseException) -> BaseException:
    """The error a :class:`JobError` wraps, else `exc`."""
    while isinstance(exc, JobError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def make_worker(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """An unstarted napari worker running ``func(*args, **kwargs)`` (:func:`guarded`).

    napari shows worker errors itself, with a traceback; the widgets show
    theirs in plain words, so napari's relay is disconnected. The warnings
    the job raises are notifications (:func:`relay_warning`).
    """
    job = guarded(func)
    worker = thread_worker(job, start_thread=False, ignore_errors=True)(*args, **kwargs)
    with contextlib.suppress(AttributeError, TypeError, RuntimeError):
        worker.errored.disconnect(worker._relay_error)
    said: set[str] = set()

    def relay(caught: tuple) -> None:
        if not getattr(worker, "abort_requested", False):  # (stopped: said nothing more)
            relay_warning(said, caught)

    worker.warned.connect(relay)
    return worker


#: At most this many warnings of one job become notifications
RELAYED_PER_JOB = 3


def relay_warning(said: set[str], caught: tuple) -> None:
    """Show a warning a worker's job raised (superqt catches it in the thread and emits
    ``warned``) as a napari notification, once per job and message.

    Session 73: nothing was connected to ``warned`` (napari's own relay is not, in
    napari 0.9), so what the API warns of was lost in the widgets: a tile overlap
    too small for the model (seams of 0.13 of the range), Poisson noise clipping a
    layer's negative values, a target identical to its input. User warnings only
    (the package's, ConditionsWarning among them); others (a library's deprecations,
    numerical RuntimeWarnings) are logged.
    """
    from napari.utils.notifications import show_warning

    message, category = caught[0], caught[1]
    text = str(message)
    if not (isinstance(category, type) and issubclass(category, UserWarning)):
        logging.getLogger(__name__).debug("a job warned: %s", text)
        return
    # once per message whatever its numbers (a warning raised per plane or per batch
    # with that part's counts made 12 notifications for a 12-frame stack, review)
    # (a channel's number is kept: each channel's PSF note is its own, review)
    key = re.sub(r"(?<!channel )(?<![-+\d.])[-+]?\d[\d.,]*(?:e[-+]?\d+)?", "#", text)
    if key in said:
        return
    said.add(key)
    if len(said) > RELAYED_PER_JOB:  # (logged, not lost)
        logging.getLogger(__name__).warning("%s", text)
        return
    show_warning(text)


def error_text(exc: BaseException, logger: logging.Logger, what: str) -> str:
    """`exc` in plain words; an unexpected error is logged (`what`, with its traceback).

    A :class:`JobError` is told as the error it wraps.
    """
    exc = original_error(exc)
    if isinstance(exc, ValueError | TypeError):
        return str(exc)
    logger.error("%s", what, exc_info=exc)  # (`what` says "failed": it read "failed failed")
    return f"{type(exc).__name__}: {exc}"


def reset_progress(progress: Any) -> None:
    """Empty `progress` (a magicgui ProgressBar)."""
    progress.max = 1
    progress.value = 0


def show_progress(progress: Any, value: tuple[int, int]) -> None:
    """Show a worker's ``(done, total)`` on `progress`."""
    done, total = value
    progress.max = max(int(total), 1)
    progress.value = int(done)


def show_busy(progress: Any) -> None:
    """Turn `progress` into a busy indicator (work whose length is unknown)."""
    progress.value = 0
    progress.min = 0
    progress.max = 0
