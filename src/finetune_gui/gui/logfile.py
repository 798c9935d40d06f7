"""The app's log file: unexpected errors and their tracebacks go here, never to the user's face."""

from __future__ import annotations

import logging
import os
from pathlib import Path

LOG_NAME = "finetune-gui.log"
_handler: logging.Handler | None = None


def log_dir() -> Path:
    """$FINETUNE_GUI_LOG_DIR (tests use it), else the platform's user log folder."""
    override = os.environ.get("FINETUNE_GUI_LOG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_log_dir("finetune-gui", appauthor=False))


def log_file() -> Path:
    return log_dir() / LOG_NAME


def setup_logging() -> Path:
    """Send the app's log records to the log file (once per process); return its path."""
    global _handler
    path = log_file()
    if _handler is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _handler = logging.FileHandler(path, encoding="utf-8")
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("finetune_gui")
        root.addHandler(_handler)
        root.setLevel(logging.INFO)
    return path


def log_exception(context: str, trace: str) -> Path:
    """Write an unexpected error with its traceback to the log file; return the file's path."""
    path = setup_logging()
    logging.getLogger("finetune_gui.gui").error("%s\n%s", context, trace.rstrip())
    _handler.flush()
    return path
