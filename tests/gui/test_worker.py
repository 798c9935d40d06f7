"""JobRunner: jobs on a worker thread or in a child process, with events, cancel and errors."""

from __future__ import annotations

import os
import time

import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

from finetune_gui.core.errors import DatasetError, UserError
from finetune_gui.core.events import BatchEnded, LogMessage, check_cancel
from finetune_gui.gui.worker import THROTTLE_SECONDS, JobRunner
from finetune_gui.jobs.child_process import JobProcessDied

from . import child_jobs


def thread_name(*, progress, cancel) -> str:
    return QThread.currentThread().objectName()


def many_batches(n: int, *, progress, cancel) -> int:
    for i in range(1, n + 1):
        progress(BatchEnded("head", 1, i, n, 0.5))
    return n


def until_cancelled(*, progress, cancel) -> None:
    progress(LogMessage("started"))
    while True:
        check_cancel(cancel)
        time.sleep(0.01)


def broken(*, progress, cancel) -> None:
    raise ValueError("a bug in a job")


@pytest.fixture
def runner(qtbot):
    runner = JobRunner("test-runner")
    yield runner
    runner.shutdown()


def test_job_runs_on_its_own_thread_and_reports_on_the_gui_thread(qtbot, runner):
    seen = []
    runner.succeeded.connect(
        lambda value: seen.append((value, QThread.currentThread() is QApplication.instance().thread())))
    with qtbot.waitSignal(runner.succeeded, timeout=60_000):
        runner.start(thread_name)
        assert runner.is_running
    assert seen == [("test-runner-thread", True)]
    assert not runner.is_running


def test_per_batch_events_are_throttled_but_the_last_one_arrives(qtbot, runner):
    events = []
    runner.event.connect(events.append)
    started = time.monotonic()
    with qtbot.waitSignal(runner.succeeded, timeout=120_000):
        runner.start(many_batches, 20_000)
    took = time.monotonic() - started
    # At most one per THROTTLE_SECONDS while the job ran (however long a loaded machine made
    # it take), plus the first and the last: never one per batch.
    assert 1 <= len(events) <= took / THROTTLE_SECONDS + 2
    assert len(events) < 20_000 / 10
    assert events[-1].batch == 20_000


def test_cancel_ends_the_job_with_the_cancelled_signal(qtbot, runner):
    with qtbot.waitSignal(runner.event, timeout=60_000):
        runner.start(until_cancelled)
    with qtbot.waitSignal(runner.cancelled, timeout=60_000):
        runner.cancel()
    assert not runner.is_running


def test_failure_carries_the_exception_and_its_traceback(qtbot, runner):
    with qtbot.waitSignal(runner.failed, timeout=60_000) as failed:
        runner.start(broken)
    error, trace = failed.args
    assert isinstance(error, ValueError)
    assert "Traceback" in trace and "broken" in trace


def test_a_handler_may_start_the_next_job_at_once(qtbot, runner):
    results = []

    def again(value):
        results.append(value)
        if len(results) < 3:
            runner.start(thread_name)

    runner.succeeded.connect(again)
    runner.start(thread_name)
    qtbot.waitUntil(lambda: len(results) == 3, timeout=10_000)


def test_shutdown_cancels_waits_and_emits_nothing_more(qtbot, runner):
    endings = []
    runner.cancelled.connect(lambda: endings.append("cancelled"))
    with qtbot.waitSignal(runner.event, timeout=60_000):
        runner.start(until_cancelled)
    assert runner.shutdown(timeout_ms=5000)
    assert not runner.is_running
    qtbot.wait(100)
    assert endings == []


def test_child_process_job_sends_events_and_result(qtbot, runner):
    events = []
    runner.event.connect(events.append)
    with qtbot.waitSignal(runner.succeeded, timeout=60_000) as done:
        runner.start(child_jobs.count_to, 5, separate_process=True, then=lambda v: v + 1)
    assert done.args == [11]
    assert [e.text for e in events] == [f"step {i}" for i in range(5)]


def test_child_process_job_can_be_cancelled(qtbot, runner):
    with qtbot.waitSignal(runner.event, timeout=60_000):
        runner.start(child_jobs.wait_for_cancel, separate_process=True)
    with qtbot.waitSignal(runner.cancelled, timeout=10_000):
        runner.cancel()


def test_child_process_errors_arrive_with_their_type_and_traceback(qtbot, runner):
    with qtbot.waitSignal(runner.failed, timeout=60_000) as failed:
        runner.start(child_jobs.refuse, separate_process=True)
    error, trace = failed.args
    assert isinstance(error, DatasetError) and str(error) == "The folder has no classes."
    assert "refuse" in trace


@pytest.mark.parametrize("fail", [False, True], ids=["finished", "failed"])
def test_a_child_process_runs_its_exit_handlers_before_it_ends(qtbot, runner, fail):
    """A job's clean-ups registered with atexit run in the child too: the export's SavedModel
    scratch folder (10-20 MB) was left in the temp folder by every export from the window."""
    scratches = []
    runner.event.connect(lambda event: scratches.append(event.text))
    ending = runner.failed if fail else runner.succeeded
    with qtbot.waitSignal(ending, timeout=60_000):
        runner.start(child_jobs.leave_scratch, fail, separate_process=True)
    assert len(scratches) == 1
    assert not os.path.exists(scratches[0])


def test_a_child_process_that_dies_is_reported_in_plain_words(qtbot, runner):
    with qtbot.waitSignal(runner.failed, timeout=60_000) as failed:
        runner.start(child_jobs.die, separate_process=True)
    error, _ = failed.args
    assert isinstance(error, JobProcessDied) and isinstance(error, UserError)
    assert "exit code 3" in str(error)
