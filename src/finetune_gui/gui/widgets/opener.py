"""Opening a file or folder in the user's own programs, and saying so only when one opened it.

Every "Open" of the window goes through `PathOpener`. Qt's `QDesktopServices.openUrl` returns
True on Linux as soon as it has started `xdg-open`, even when xdg-open then finds no program (no
file manager) or the program refuses to start (Chromium as root). So where `xdg-open` is, it is
run here and its exit status read: failing within `GRACE_SECONDS` is a failure; still running
then (a browser it started and waits for) or a zero status is success. Elsewhere (macOS,
Windows) `openUrl`'s own answer is taken. When nothing opened, the window says so, shows the
path and offers a Copy path button (`CopyPathButton`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget

GRACE_SECONDS = 4.0
POLL_MS = 100


def opener_command() -> list[str] | None:
    """The command that opens a path and tells by its exit status whether it did (xdg-open on
    Linux and the BSDs), or None: then Qt's own opener is used."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    found = shutil.which("xdg-open")
    return [found] if found else None


@dataclass(frozen=True)
class OpenOutcome:
    """What became of one "Open": the path, whether a program opened it, and in which."""

    path: Path
    opened: bool
    program: str  # "your web browser", "your file manager"

    @property
    def text(self) -> str:
        if self.opened:
            return f"Opened in {self.program}: {self.path}"
        return (f"Nothing opened it: no {self.program.removeprefix('your ')} could be started "
                f"on this computer. It is at {self.path}; copy the path to open it yourself.")


class PathOpener(QObject):
    """Open paths in `program` ("your web browser"); `finished` carries each `OpenOutcome`."""

    finished = Signal(object)  # OpenOutcome

    def __init__(self, program: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.program = program
        self.last: OpenOutcome | None = None
        self._process: subprocess.Popen | None = None
        self._path: Path | None = None
        self._deadline = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    @property
    def busy(self) -> bool:
        return self._process is not None

    def open(self, path: Path | str) -> None:
        """Start opening `path`; `finished` follows (at once, or within GRACE_SECONDS)."""
        if self.busy:
            return
        path = Path(path)
        command = opener_command()
        if command is None:
            self._finish(path, QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))))
            return
        try:
            # Its own session: a browser it starts outlives the app, and is never waited for.
            self._process = subprocess.Popen(
                [*command, str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            self._finish(path, False)
            return
        self._path = path
        self._deadline = time.monotonic() + GRACE_SECONDS
        self._timer.start()

    def _poll(self) -> None:
        status = self._process.poll()
        if status is None and time.monotonic() < self._deadline:
            return
        self._timer.stop()
        self._process = None  # a program still running is left to the user, never killed
        self._finish(self._path, status is None or status == 0)

    def _finish(self, path: Path, opened: bool) -> None:
        self.last = OpenOutcome(path, bool(opened), self.program)
        self.finished.emit(self.last)


class CopyPathButton(QPushButton):
    """"Copy path": puts the path of the last thing that could not be opened on the clipboard."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Copy path", parent)
        self.setToolTip("Put the file's path on the clipboard, to paste it where you open it.")
        self.path: Path | None = None
        self.clicked.connect(self.copy)
        self.hide()

    def show_for(self, outcome: OpenOutcome) -> None:
        """Offered only when nothing opened the path."""
        self.path = outcome.path
        self.setText("Copy path")
        self.setVisible(not outcome.opened)

    def copy(self) -> None:
        if self.path is not None:
            QGuiApplication.clipboard().setText(str(self.path))
            self.setText("Copied")


def tell_outcome(parent: QWidget, outcome: OpenOutcome) -> QMessageBox | None:
    """For an opener without a place of its own to report in (a menu): a dialog when nothing
    opened, with the path and Copy path; None when it opened."""
    if outcome.opened:
        return None
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Information)
    box.setWindowTitle("Could not open")
    box.setText(outcome.text)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    copy = box.addButton("Copy path", QMessageBox.ButtonRole.ActionRole)
    copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(str(outcome.path)))
    box.addButton(QMessageBox.StandardButton.Close)
    box.open()
    return box
