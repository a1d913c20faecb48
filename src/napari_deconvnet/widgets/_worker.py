"""One worker base for the dock widgets: Run, Cancel, progress and errors, one job at a time.

A dock widget subclasses :class:`WorkerWidget`, builds its inputs, puts
:meth:`WorkerWidget.controls` at the end of its layout and implements
:meth:`WorkerWidget.prepare`, which reads the form (in the GUI thread) and
returns a :class:`Job`: the generator to run in a napari worker thread and
what to do with its result. Everything else is here, once:

- Run starts the job; while it runs (and until its thread has really ended,
  also after Cancel) Run is disabled and a second call does nothing.
- Bad input found by ``prepare`` (ValueError, TypeError) is one napari
  notification; nothing starts, and the status line says so (not the
  previous run's status).
- ``(done, total)`` yielded by the job moves the progress bar; ``total == 0``
  shows a busy bar (one call whose length is unknown).
- Cancel stops the job at its next ``yield``; nothing is added.
- An error in the job is one notification in plain words (an unexpected one
  is logged with its traceback); the viewer keeps working. A RuntimeError
  (torch's shape errors, out of memory) too: ``make_worker`` re-raises it as
  a ``JobError``, as superqt's generator worker would otherwise swallow it
  and never end; the notification shows the original message.
- Deleting the job's source layer, closing the widget or the viewer stops the
  job; late signals of a stopped worker are ignored.

torch and the core are never imported here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from magicgui.widgets import Container, Label, ProgressBar, PushButton
from napari.utils.notifications import show_error

from napari_deconvnet.io.dask_cache import tolerate_concurrent_computes

from ._common import error_text, make_worker, reset_progress, show_busy, show_progress

__all__ = ["Job", "WorkerWidget"]

_logger = logging.getLogger(__name__)

# workers compute lazy layers while napari slices them (io.dask_cache)
tolerate_concurrent_computes()


@dataclass
class Job:
    """One run of a dock widget: what runs in the worker thread and what follows.

    Parameters
    ----------
    body : callable
        Called in the worker thread with `args` and `kwargs`. A generator
        yields ``(done, total)`` and returns the result; a plain function
        returns it.
    args, kwargs
        Its arguments (read from the form in the GUI thread).
    message : str
        The status while it runs.
    failure : str
        How an error notification starts, e.g. ``"Restore of 'img' with tv failed"``.
    done : callable, optional
        Called in the GUI thread with the result unless the job was
        cancelled or stopped; may return the status to show. An error it
        raises is notified like the job's.
    yielded : callable, optional
        Called in the GUI thread with each yielded value that is not
        ``(done, total)`` (e.g. a training event), unless the job was stopped.
    source : napari layer or tuple of them, optional
        Deleting it (one of them) stops the job.
    """

    body: Callable[..., Any]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    message: str = "working..."
    failure: str = "the job failed"
    done: Callable[[Any], str | None] | None = None
    yielded: Callable[[Any], Any] | None = None
    source: Any = None


def _refusal(err: BaseException, limit: int = 80) -> str:
    """The status line after `prepare` refused to run: short, the notification has it all."""
    text = " ".join(str(err).split())
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return f"not run: {text}" if text else "not run"


class WorkerWidget(Container):
    """Base of a dock widget that runs one job at a time in a napari worker thread.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    title : str
        Starts every notification (``"Restore: ..."``).
    run_text : str
        The Run button's text.
    notify : callable, optional
        Shows an error message; default napari's ``show_error``.

    Attributes
    ----------
    run_button, cancel_button, progress, status : magicgui widgets
        Put in the layout with ``self.extend([..., *self.controls()])``.
    worker : napari worker or None
        The running job's worker, until its thread has ended.
    job : Job or None
        The running job.
    """

    def __init__(
        self,
        viewer: Any,
        *,
        title: str,
        run_text: str = "Run",
        notify: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__(labels=True)
        self._viewer = viewer
        self.title = title
        self._notify = notify
        self.worker: Any = None
        self.job: Job | None = None
        self._closed = False
        self.run_button = PushButton(text=run_text)
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="Progress", value=0, min=0, max=1)
        self.status = Label(label="", value="")
        #: Buttons disabled while a job runs (subclasses may add theirs).
        self.start_buttons: list[Any] = [self.run_button]
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        viewer.layers.events.removed.connect(self._on_layer_removed)

    def controls(self) -> list[Any]:
        """Run, Cancel, the progress bar and the status line, in this order."""
        return [self.run_button, self.cancel_button, self.progress, self.status]

    @property
    def busy(self) -> bool:
        """A job runs (a cancelled one too, until its thread has ended), or the widget closed."""
        return self.worker is not None or self._closed

    # ------------------------------------------------------------ actions

    def prepare(self) -> Job:
        """Read and check the form (GUI thread) and describe the job; subclasses implement it.

        Raises
        ------
        ValueError, TypeError
            Bad input: notified, and nothing starts.
        """
        raise NotImplementedError

    def run(self) -> None:
        """Start the widget's job (:meth:`prepare`) in a worker thread; nothing while one runs."""
        self.submit(self.prepare)

    def submit(self, prepare: Callable[[], Job]) -> Any:
        """Start the job that `prepare()` describes, unless one runs; return its worker.

        Bad input (ValueError, TypeError from `prepare`) is notified instead,
        and the status line says it was not run.
        """
        if self.busy:
            return None
        try:
            job = prepare()
        except (ValueError, TypeError) as err:
            reset_progress(self.progress)
            self.status.value = _refusal(err)  # not the previous run's status
            self.notify(f"{self.title}: {err}")
            return None
        worker = make_worker(job.body, *job.args, **job.kwargs)
        if hasattr(worker, "yielded"):
            worker.yielded.connect(partial(self._on_yielded, worker, job))
        worker.returned.connect(partial(self._on_returned, worker, job))
        worker.errored.connect(partial(self._on_errored, worker, job))
        worker.finished.connect(partial(self._on_finished, worker))
        self.worker, self.job = worker, job
        reset_progress(self.progress)
        self.status.value = job.message
        for button in self.start_buttons:
            button.enabled = False
        self.cancel_button.enabled = True
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop the running job at its next step; Run is enabled again when its thread ends."""
        worker = self.worker
        if worker is None or worker.abort_requested:
            return
        worker.quit()
        reset_progress(self.progress)
        self.status.value = "cancelling (the current step finishes first)..."
        self.cancel_button.enabled = False

    def close_workers(self) -> None:
        """The widget is closing: stop the job and stop listening to the viewer."""
        self._closed = True
        with contextlib.suppress(Exception):
            self._viewer.layers.events.removed.disconnect(self._on_layer_removed)
        if self.worker is not None:
            self.worker.quit()

    def notify(self, message: str) -> None:
        """Show an error `message` (napari's notification)."""
        (self._notify or show_error)(message)

    def _on_layer_removed(self, event: Any) -> None:
        """The running job's source layer was deleted: stop the job, and say so."""
        job, worker = self.job, self.worker
        if worker is None or job is None or worker.abort_requested or job.source is None:
            return
        sources = job.source if isinstance(job.source, tuple) else (job.source,)
        if not any(event.value is source for source in sources):
            return
        worker.quit()
        with contextlib.suppress(RuntimeError):
            self.status.value = "stopped: the source layer was deleted"
            self.cancel_button.enabled = False
        # (closing the viewer removes every layer first: this is said then too)
        self.notify(
            f"{self.title}: the layer {event.value.name!r} was deleted while it was in use; "
            "the job was stopped"
        )

    # ----------------------------------------------------- worker signals

    def _live(self, worker: Any) -> bool:
        return worker is self.worker and not worker.abort_requested and not self._closed

    def _on_yielded(self, worker: Any, job: Job, value: Any) -> None:
        if not self._live(worker):
            return
        if isinstance(value, tuple) and len(value) == 2:
            if value[1] == 0:
                show_busy(self.progress)
            else:
                show_progress(self.progress, value)
        elif job.yielded is not None:
            try:
                job.yielded(value)
            except Exception:  # never an exception in a Qt slot (a raw traceback each epoch)
                _logger.exception("%s: could not show its progress", job.failure)

    def _on_returned(self, worker: Any, job: Job, result: Any) -> None:
        if worker.abort_requested or self._closed:
            return
        try:
            status = job.done(result) if job.done is not None else None
        except Exception as exc:  # never an exception in a Qt slot: say it
            self._on_errored(worker, job, exc)
            return
        if worker is self.worker:
            self.progress.min = 0
            self.progress.max = max(self.progress.max, 1)
            self.progress.value = self.progress.max
        self.status.value = status or "done"

    def _on_errored(self, worker: Any, job: Job, exc: BaseException) -> None:
        message = error_text(exc, _logger, job.failure)
        self.notify(f"{job.failure}: {message}")
        if worker is self.worker and not self._closed:
            reset_progress(self.progress)
            self.status.value = "failed"

    def _on_finished(self, worker: Any) -> None:
        if worker is not self.worker:
            return
        self.worker, self.job = None, None
        if self._closed:
            return
        if worker.abort_requested:
            stopped = str(self.status.value).startswith("stopped")
            reset_progress(self.progress)
            self.status.value = self.status.value if stopped else "cancelled"
        for button in self.start_buttons:
            button.enabled = True
        self.cancel_button.enabled = False
