"""Running a core job in a separate Python process, for the worker thread to wait on.

Why a process for training: TensorFlow frees graphs, functions and tensors while holding
Python's GIL, and Python's cyclic garbage collector does too. Measured in one process, a tiny
run stalled every other thread (the GUI thread included) for 0.3 to 0.8 s several times. In its
own process the run cannot stall the window at all, its memory is returned when it ends (the
GUI trains many times in one session), and a crash inside TensorFlow cannot take the window
down with it.

The job function must be importable by name (a module-level function) and its arguments,
events, result and exceptions must pickle. No Qt here: the child never imports widgets.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import pickle
import queue as queue_module
import time
import traceback
from collections.abc import Callable
from typing import Any

from finetune_gui.core.errors import Cancelled, UserError
from finetune_gui.core.events import CancelToken
from finetune_gui.core.run.folder import process_running

POLL_SECONDS = 0.1
CHILD_NICENESS = 10
STOP_GRACE_SECONDS = 60  # a cancelled job ends within one batch; this is the last resort
PARENT_CHECK_SECONDS = 1.0


class JobProcessDied(UserError):
    """The job's process ended without a result (killed, out of memory, or a crash)."""


class JobFailed(Exception):
    """Carries an exception from the child together with the child's traceback text."""

    def __init__(self, error: BaseException, trace: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.trace = trace


class _SharedCancelToken(CancelToken):
    """A `CancelToken` whose flag is a multiprocessing Event the parent can set."""

    def __init__(self, event) -> None:
        self._event = event


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


class _EventSender:
    """The child's `progress`: sends each event while the window waiting for them is alive.

    When the window dies (killed, crashed) the job goes on and finishes its run folder, which
    the next window lists. Its events are dropped from then on: nobody reads them, and a full
    pipe would otherwise keep the finished process from exiting.
    """

    def __init__(self, results, parent_pid: int) -> None:
        self.results = results
        self.parent_pid = parent_pid
        self._alive = True
        self._checked = time.monotonic()

    def parent_alive(self, now: bool = False) -> bool:
        if self._alive and (now or time.monotonic() - self._checked > PARENT_CHECK_SECONDS):
            self._checked = time.monotonic()
            self._alive = process_running(self.parent_pid)
        return self._alive

    def __call__(self, event: object) -> None:
        if self.parent_alive():
            self.results.put(("event", event, ""))

    def send_outcome(self, outcome: tuple) -> None:
        if self.parent_alive(now=True):
            self.results.put(outcome)
            self.results.close()
            self.results.join_thread()  # make sure the outcome is written before the exit
        else:
            self.results.cancel_join_thread()


def _child_main(fn: Callable[..., Any], args: tuple, kwargs: dict, results, stop,
                parent_pid: int) -> None:
    """Entry point of the child process: run `fn`, send events and the outcome to `results`."""
    if hasattr(os, "nice"):
        # Training takes every core it can get; at a lower priority it still does, unless the
        # window needs a moment (on a two-core laptop the window otherwise waits its turn).
        os.nice(CHILD_NICENESS)
    token = _SharedCancelToken(stop)
    sender = _EventSender(results, parent_pid)
    try:
        value = fn(*args, progress=sender, cancel=token, **kwargs)
    except Cancelled:
        sender.send_outcome(("cancelled", None, ""))
    except BaseException as exc:
        sender.send_outcome(("error", _picklable(exc), traceback.format_exc()))
    else:
        sender.send_outcome(("ok", value, ""))
    finally:
        # A multiprocessing child ends with os._exit, which skips atexit: without this, every
        # export from the window left its SavedModel scratch folder (10-20 MB) in the temp folder.
        atexit._run_exitfuncs()


def _context():
    """A fork server where the system has one, else spawn (Windows).

    Not plain fork: it would copy the GUI's threads. Not spawn where avoidable: starting a
    process from a big parent (TensorFlow loaded) holds the parent's memory lock while the
    page tables are copied, which froze the window for ~200 ms at each training start. The
    fork server is started once while the app is small and forks the jobs from itself.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def prepare_child_processes() -> None:
    """Start the fork server now (at start-up, before TensorFlow is imported); idempotent."""
    context = _context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        # Only the light, Qt-free job module: TensorFlow is imported by each job, never by the
        # server, because forking a process in which TensorFlow started threads is unsafe.
        context.set_forkserver_preload(["finetune_gui.jobs.engine"])
        forkserver.ensure_running()


def run_in_child(
    fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    progress: Callable[[object], None],
    cancel: CancelToken,
) -> Any:
    """Run `fn` in a fresh process and block until it ends (call from a worker thread).

    Events are passed to `progress` as they arrive; setting `cancel` asks the child to stop.
    Returns the child's result, raises `Cancelled`, `JobFailed` or `JobProcessDied`.
    """
    context = _context()
    results = context.Queue()
    stop = context.Event()
    process = context.Process(target=_child_main,
                              args=(fn, args, kwargs, results, stop, os.getpid()),
                              name=f"finetune-gui-{fn.__name__}", daemon=True)
    process.start()
    try:
        while True:
            if cancel.cancelled and not stop.is_set():
                stop.set()
            try:
                kind, value, trace = results.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                if process.is_alive():
                    continue
                try:  # the outcome may have arrived just as the process ended
                    kind, value, trace = results.get(timeout=1.0)
                except queue_module.Empty:
                    raise JobProcessDied(_death_message(process.exitcode)) from None
            if kind == "event":
                progress(value)
            elif kind == "ok":
                return value
            elif kind == "cancelled":
                raise Cancelled()
            else:
                raise JobFailed(value, trace)
    finally:
        stop.set()
        process.join(STOP_GRACE_SECONDS)
        if process.is_alive():
            process.terminate()
            process.join(5)
        results.close()


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        how = f"was stopped by signal {-exitcode}"
        if -exitcode == 9:
            how += " (often: the computer ran out of memory)"
    else:
        how = f"ended with exit code {exitcode}"
    return (f"The training process {how} before it finished. Try a smaller image size or "
            f"batch size; the log file has details.")
