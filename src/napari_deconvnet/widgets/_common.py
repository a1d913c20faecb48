"""Worker plumbing shared by the dock widgets (GUI side only).

torch and the core are never imported here, so that opening napari stays fast.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from napari.qt.threading import thread_worker

DEVICES = ("auto", "cpu", "cuda", "mps")


def make_worker(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """An unstarted napari worker running ``func(*args, **kwargs)``.

    napari shows worker errors itself, with a traceback; the widgets show
    theirs in plain words, so napari's relay is disconnected.
    """
    worker = thread_worker(func, start_thread=False, ignore_errors=True)(*args, **kwargs)
    with contextlib.suppress(AttributeError, TypeError, RuntimeError):
        worker.errored.disconnect(worker._relay_error)
    return worker


def error_text(exc: BaseException, logger: logging.Logger, what: str) -> str:
    """`exc` in plain words; an unexpected error is logged ("<what> failed", with traceback)."""
    if isinstance(exc, ValueError | TypeError):
        return str(exc)
    logger.error("%s failed", what, exc_info=exc)
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
