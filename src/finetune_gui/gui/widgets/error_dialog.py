"""The one dialog for errors: a plain message on top, the technical detail folded away."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from finetune_gui.core.errors import UserError
from finetune_gui.gui.logfile import log_trace


class ErrorDialog(QMessageBox):
    """Non-blocking: shown with `open()`, so the window stays usable behind it."""

    def __init__(self, parent: QWidget | None, title: str, message: str, detail: str = "") -> None:
        super().__init__(parent)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle(title)
        self.setText(message)
        if detail:
            # Qt puts a "Show Details..." button in front of this text.
            self.setDetailedText(detail)
        self.setStandardButtons(QMessageBox.StandardButton.Ok)


def describe_failure(exc: BaseException, trace: str, doing: str) -> tuple[str, str, Path | None]:
    """(plain message, detail, log file or None) for an exception from a job or a slot.

    A `UserError` is the user's to fix: its own sentence is the message, and the detail is what
    caused it in plain words (a download's "Temporary failure in name resolution"), never a
    traceback; the traceback goes to the log file for whoever looks into it. Anything else is
    our bug: the traceback goes to the log file, and the message names that file.
    """
    if isinstance(exc, UserError):
        path = log_trace(f"While {doing}: {exc}", trace) if trace else None
        return str(exc), _causes(exc), path
    path = log_trace(f"Unexpected error while {doing}", trace or repr(exc))
    message = (
        f"Something went wrong while {doing}: {type(exc).__name__}: {exc}\n\n"
        f"The details were written to {path}. The app is still usable."
    )
    return message, trace, path


def _causes(exc: BaseException) -> str:
    """The errors behind `exc`, one line each ("Caused by: URLError: <urlopen error ...>"), or
    "" when it has none: the detail a user can act on or pass on, without a traceback."""
    lines, seen = [], {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen and len(lines) < 5:
        seen.add(id(cause))
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        lines.append(f"Caused by: {type(cause).__name__}" + (f": {text}" if text else ""))
        cause = cause.__cause__ or cause.__context__
    return "\n".join(lines)


def show_error(
    parent: QWidget | None, exc: BaseException, trace: str, doing: str, title: str = "Problem"
) -> ErrorDialog:
    """Open (without blocking) the error dialog for `exc`, which happened while `doing`."""
    message, detail, _ = describe_failure(exc, trace, doing)
    dialog = ErrorDialog(parent, title, message, detail)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
