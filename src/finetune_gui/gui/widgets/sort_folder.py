""""Sort a folder…": copy every image of a folder into OUT/<class>/ or OUT/not sure/ with the
current run's model, in a child process, with progress, Cancel and an Open button at the end."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.start_folder import IMAGES, start_folder
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.job_row import JobStatusRow
from finetune_gui.gui.widgets.opener import CopyPathButton, OpenOutcome, PathOpener
from finetune_gui.gui.worker import JobRunner
from finetune_gui.jobs import put_to_work


class SortFolderDialog(QDialog):
    """Pick a folder and where to copy it to; the source is only read, never changed."""

    def __init__(self, run_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sort a folder")
        self.run_path = Path(run_path)
        self.summary = None  # the last SortSummary
        self.last_dialog = None
        self.runner = JobRunner("sort", self)
        self.runner.succeeded.connect(self._on_sorted)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.failed.connect(self._on_failed)
        self.opener = PathOpener("your file manager", self)
        self.opener.finished.connect(self._on_opened)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(
            "Every image in the folder is copied into a sub-folder named after the class the "
            "model gives it, or into \"not sure\". Nothing in the folder is moved or changed."))
        grid = QGridLayout()
        self.source_edit, self.out_edit = QLineEdit(), QLineEdit()
        for row, (label, edit, title) in enumerate((
            ("Folder to sort:", self.source_edit, "Folder to sort"),
            ("Copy into:", self.out_edit, "Copy into"),
        )):
            browse = QPushButton("Choose…")
            browse.clicked.connect(lambda _=False, e=edit, t=title: self._browse(e, t))
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(edit, row, 1)
            grid.addWidget(browse, row, 2)
        layout.addLayout(grid)
        self.status_row = JobStatusRow(self.runner, "Copying the last images…")
        layout.addWidget(self.status_row)
        self.result = QLabel()
        self.result.setWordWrap(True)
        layout.addWidget(self.result)
        self.open_status = QLabel()  # what became of "Open"
        self.open_status.setWordWrap(True)
        layout.addWidget(self.open_status)
        buttons = QHBoxLayout()
        self.sort_button = QPushButton("Sort")
        self.sort_button.clicked.connect(self.start)
        self.open_button = QPushButton("Open")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_result)
        self.copy_button = CopyPathButton()  # shown when nothing could open the folder
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addStretch(1)
        for button in (self.sort_button, self.open_button, self.copy_button, close):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.resize(640, 260)

    def _browse(self, edit: QLineEdit, title: str) -> None:
        # The folder to sort starts at the run's images; the copies beside the folder to sort.
        beside = self.source_edit.text() if edit is self.out_edit else ""
        start = start_folder(IMAGES, run_path=self.run_path, current=edit.text() or beside)
        folder = QFileDialog.getExistingDirectory(self, title, start)
        if folder:
            edit.setText(folder)

    def start(self) -> None:
        """Sort the chosen folder into the chosen destination, in a child process."""
        source, out = self.source_edit.text().strip(), self.out_edit.text().strip()
        if not source or not out:
            self.result.setText("Choose the folder to sort and where to copy it to.")
            return
        self.result.setText("")
        self.open_status.setText("")
        self.copy_button.hide()
        self.open_button.setEnabled(False)
        self.sort_button.setEnabled(False)
        self.status_row.set_busy(True)
        self.runner.start(put_to_work.sort_folder, self.run_path, Path(source), Path(out),
                          separate_process=True)

    def _done(self) -> None:
        self.sort_button.setEnabled(True)
        self.status_row.set_busy(False)

    def _on_sorted(self, summary) -> None:
        self._done()
        self.summary = summary
        self.result.setText(summary.text().replace("\n", "<br>"))
        self.open_button.setEnabled(True)
        self.status_row.status.setText("")

    def _on_cancelled(self) -> None:
        self._done()
        self.status_row.status.setText("Cancelled; the copies made so far are kept.")

    def _on_failed(self, exc: BaseException, trace: str) -> None:
        self._done()
        self.status_row.status.setText("")
        self.last_dialog = show_error(self, exc, trace, "sorting the folder")

    def open_result(self) -> None:
        """Show the sorted folder in the file manager; when none opens it, say so, with where
        it is and a Copy path button."""
        if self.summary is None or self.opener.busy:
            return
        self.open_button.setEnabled(False)
        self.copy_button.hide()
        self.open_status.setText(f"Opening {self.summary.out}…")
        self.opener.open(self.summary.out)

    def _on_opened(self, outcome: OpenOutcome) -> None:
        self.open_button.setEnabled(self.summary is not None)
        self.open_status.setText(outcome.text)
        self.copy_button.show_for(outcome)

    def closeEvent(self, event) -> None:
        self.runner.shutdown()
        super().closeEvent(event)
