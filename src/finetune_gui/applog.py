"""The app's log file: where tracebacks go so that users see a plain message instead."""

from __future__ import annotations

import datetime
import os
import traceback
from pathlib import Path


def log_dir() -> Path:
    from platformdirs import user_log_dir

    folder = Path(os.environ.get("FINETUNE_GUI_LOG_DIR") or user_log_dir("finetune-gui"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_file() -> Path:
    return log_dir() / "finetune-gui.log"


def log_exception(exc: BaseException, context: str = "") -> Path:
    """Append the traceback of `exc` to the log file and return the file's path."""
    path = log_file()
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"--- {stamp} {context}\n{text}\n")
    return path
