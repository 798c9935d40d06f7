"""Running a core job on a QThread: the only module in the GUI that knows about threads.

A core job is a plain function taking `progress=` and `cancel=`; `JobRunner.start` runs it on a
fresh QThread (or, for training, in a child process that the QThread waits on) and turns its
progress events, its return value and its exception into signals delivered on the GUI thread. The thread is kept alive (referenced) until it has finished, and
`shutdown` cancels and waits, so Qt never destroys a running thread.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QMutex, QMutexLocker, QObject, Qt, QThread, Signal, Slot

from finetune_gui.core.errors import Cancelled
from finetune_gui.core.events import BatchEnded, CancelToken, StageProgress
from finetune_gui.jobs.child_process import JobFailed, run_in_child
from finetune_gui.quiet import import_tensorflow_quietly

log = logging.getLogger(__name__)
_IMPORT_LOCK = QMutex()
_frozen = False

# Per-batch and per-file events can come thousands of times a second; ten a second is plenty
# for a progress bar and leaves the GUI thread's event loop free.
THROTTLE_SECONDS = 0.1


def load_tensorflow() -> None:
    """Import TensorFlow and Keras, one worker thread at a time.

    Jobs call this before any core function that uses TensorFlow. Two threads importing
    TensorFlow at the same time can fail with Python's `_DeadlockError` on its module locks;
    once imported, this is a cheap lookup.
    """
    global _frozen
    with QMutexLocker(_IMPORT_LOCK):
        import_tensorflow_quietly()  # its start-up chatter goes to the log file

        if not _frozen:
            # TensorFlow's import leaves ~300,000 objects that live as long as the process.
            # Moving them out of the garbage collector's reach makes each full collection (which
            # stops every thread, the GUI thread included) several times shorter.
            gc.freeze()
            _frozen = True


class _Job(QObject):
    """Lives on the worker thread; calls the function once and reports how it ended."""

    event = Signal(object)
    ended = Signal(str, object, str)  # outcome ("ok" | "cancelled" | "error"), value, traceback

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, token: CancelToken,
                 separate_process: bool, then: Callable[[Any], Any] | None) -> None:
        super().__init__()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._token = token
        self._separate_process = separate_process
        self._then = then
        self._last_emit = 0.0

    def _forward(self, event: object) -> None:
        """The `progress` callback, called on the worker thread: throttle, then emit."""
        if isinstance(event, BatchEnded | StageProgress):
            done, total = (
                (event.batch, event.batches) if isinstance(event, BatchEnded) else
                (event.done, event.total)
            )
            now = time.monotonic()
            if done < total and now - self._last_emit < THROTTLE_SECONDS:
                return
            self._last_emit = now
        self.event.emit(event)

    @Slot()
    def run(self) -> None:
        try:
            if self._separate_process:
                value = run_in_child(self._fn, self._args, self._kwargs, self._forward,
                                     self._token)
            else:
                value = self._fn(
                    *self._args, progress=self._forward, cancel=self._token, **self._kwargs
                )
            if self._then is not None:
                value = self._then(value)
        except Cancelled:
            self.ended.emit("cancelled", None, "")
        except JobFailed as failure:
            self.ended.emit("error", failure.error, failure.trace)
        except BaseException as exc:
            self.ended.emit("error", exc, traceback.format_exc())
        else:
            self.ended.emit("ok", value, "")


class _Relay(QObject):
    """Lives on the GUI thread for one job; drops what arrives after the runner let go of it."""

    def __init__(self, runner: JobRunner) -> None:
        super().__init__()
        self.runner = runner
        self.active = True
        self.outcome: tuple[str, object, str] | None = None

    @Slot(object)
    def on_event(self, event: object) -> None:
        if self.active:
            self.runner.event.emit(event)

    @Slot(str, object, str)
    def on_ended(self, outcome: str, value: object, trace: str) -> None:
        self.outcome = (outcome, value, trace)

    @Slot()
    def on_thread_finished(self) -> None:
        if self.active:
            self.runner._finish(self.outcome)


class JobRunner(QObject):
    """Runs one job at a time on its own QThread; all signals arrive on the GUI thread.

    Exactly one of `succeeded`, `cancelled` or `failed` is emitted per job, after the thread has
    stopped, so a handler may start the next job on the same runner at once.
    """

    event = Signal(object)  # a core event dataclass (StageStarted, BatchEnded, ...)
    succeeded = Signal(object)  # the function's return value
    cancelled = Signal()
    failed = Signal(object, str)  # the exception and its formatted traceback
    running_changed = Signal(bool)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._thread: QThread | None = None
        self._job: _Job | None = None
        self._relay: _Relay | None = None
        self._token: CancelToken | None = None

    @property
    def is_running(self) -> bool:
        return self._thread is not None

    def start(
        self,
        fn: Callable[..., Any],
        *args: Any,
        separate_process: bool = False,
        then: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Run `fn(*args, progress=..., cancel=..., **kwargs)` on a new worker thread.

        With `separate_process`, the worker thread runs `fn` in a child process and waits for it
        (see `child_process`). `then(value)` runs on the worker thread afterwards; its result is
        what `succeeded` carries.
        """
        if self._thread is not None:
            raise RuntimeError(f"{self.objectName()} is already running a job")
        self._token = CancelToken()
        thread = QThread()
        thread.setObjectName(f"{self.objectName()}-thread")
        job = _Job(fn, args, kwargs, self._token, separate_process, then)
        job.moveToThread(thread)
        relay = _Relay(self)
        job.event.connect(relay.on_event)
        job.ended.connect(relay.on_ended)
        thread.started.connect(job.run)
        # Direct: quit() runs on the worker thread before its event loop starts, so exec()
        # returns at once after run() and the thread ends without waiting for the GUI thread.
        job.ended.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(relay.on_thread_finished)
        self._thread, self._job, self._relay = thread, job, relay
        thread.start()
        self.running_changed.emit(True)

    def cancel(self) -> None:
        """Ask the running job to stop at its next check; the `cancelled` signal follows."""
        if self._token is not None:
            self._token.cancel()

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Cancel and block until the thread has ended (for window close); True if it ended.

        Nothing is emitted for a job ended this way.
        """
        thread = self._thread
        if thread is None:
            return True
        self.cancel()
        if not thread.wait(timeout_ms):
            log.error("%s did not stop within %d ms", self.objectName(), timeout_ms)
            return False
        self._release()
        return True

    def _finish(self, outcome: tuple[str, object, str] | None) -> None:
        self._release()
        if outcome is None:
            outcome = ("error", RuntimeError("the job ended without a result"), "")
        kind, value, trace = outcome
        if kind == "ok":
            self.succeeded.emit(value)
        elif kind == "cancelled":
            self.cancelled.emit()
        else:
            self.failed.emit(value, trace)

    def _release(self) -> None:
        if self._thread is None:
            return
        self._thread.wait()
        if self._relay is not None:
            self._relay.active = False
        self._thread = self._job = self._relay = self._token = None
        self.running_changed.emit(False)
