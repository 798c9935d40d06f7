"""The GUI's side of the app's log file (`finetune_gui.applog` decides where it is).

Two additions the GUI needs: records of the `logging` module go to the same file, and a
traceback that arrives as text (from a worker thread or a child process, where the exception
object no longer carries it) can be written too.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from finetune_gui.applog import log_dir, log_file

__all__ = ["log_dir", "log_file", "log_trace", "setup_logging"]

_handler: logging.Handler | None = None


def setup_logging() -> Path:
    """Send the app's `logging` records to the log file (once per process); return its path."""
    global _handler
    path = log_file()
    if _handler is None:
        _handler = logging.FileHandler(path, encoding="utf-8")
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("finetune_gui")
        root.addHandler(_handler)
        root.setLevel(logging.INFO)
    return path


def log_trace(context: str, trace: str) -> Path:
    """Append an unexpected error's traceback text to the log file; return the file's path."""
    path = log_file()
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"--- {stamp} {context}\n{trace.rstrip()}\n\n")
    return path
