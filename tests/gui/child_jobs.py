"""Job functions for the worker tests that run in a child process (importable by name)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time

from finetune_gui.core.errors import DatasetError
from finetune_gui.core.events import LogMessage, check_cancel


def count_to(n: int, *, progress, cancel) -> int:
    for i in range(n):
        progress(LogMessage(f"step {i}"))
    return n * 2


def wait_for_cancel(*, progress, cancel) -> None:
    progress(LogMessage("waiting"))
    for _ in range(600):
        check_cancel(cancel)
        time.sleep(0.05)
    raise AssertionError("never cancelled")


def refuse(*, progress, cancel) -> None:
    raise DatasetError("The folder has no classes.")


def die(*, progress, cancel) -> None:
    os._exit(3)


def leave_scratch(fail: bool, *, progress, cancel) -> str:
    """Make a scratch folder that only an exit handler removes, as the export's SavedModel is."""
    scratch = tempfile.mkdtemp(prefix="finetune-gui-child-scratch-")
    atexit.register(shutil.rmtree, scratch, True)
    progress(LogMessage(scratch))
    if fail:
        raise DatasetError("The folder has no classes.")
    return scratch
