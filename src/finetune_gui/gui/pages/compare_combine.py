"""Compare runs → "Combine": the ticked runs become one ensemble run that averages their
probabilities; its test accuracy is shown beside each member's.

Whether the ticked runs can be combined is read from their small JSON files at once (same
classes, same split); the combining itself loads every model and runs in a child process.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from finetune_gui.core.errors import UserError
from finetune_gui.core.events import LogMessage, StageProgress, StageStarted
from finetune_gui.core.run.naming import new_run_dir
from finetune_gui.gui.state import LoadedRun, ProjectState
from finetune_gui.gui.widgets.common import Banner
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.worker import JobRunner
from finetune_gui.jobs import ensemble as ensemble_jobs


class CombineBar(QWidget):
    """A "Combine" button for the ticked runs, its progress, and what the ensemble scored."""

    combined = Signal(object)  # the core's EnsembleResult, after the run joined the project
    finished = Signal()  # combining ended, whatever the outcome (for tests)

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.runs: list[Path] = []
        self.refusal = ""  # why the ticked runs cannot be combined ("" when they can)
        self.runner = JobRunner("ensemble", self)
        self.runner.event.connect(self._on_event)
        self.runner.succeeded.connect(self._on_combined)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.failed.connect(self._on_failed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.button = QPushButton("Combine into an ensemble")
        self.button.clicked.connect(self.combine)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.cancel_button.hide()
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#4b5563;")
        self.progress = QProgressBar()
        self.progress.hide()
        row.addWidget(self.button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.note, 1)
        row.addWidget(self.progress)
        layout.addLayout(row)
        self.result = Banner("success")
        layout.addWidget(self.result)
        self.set_runs([])

    def set_runs(self, runs: list[Path]) -> None:
        """The ticked runs: say at once whether they can be combined, and if not, why."""
        from finetune_gui.core.run.ensemble import check_combinable
        from finetune_gui.core.run.folder import RunFolder

        self.runs = list(runs)
        try:
            check_combinable([RunFolder.open(path) for path in self.runs])
            self.refusal = ""
        except UserError as exc:
            self.refusal = str(exc)
        if self.runner.is_running:
            return
        self.button.setEnabled(not self.refusal)
        self.button.setToolTip(self.refusal or "Average the ticked runs' probabilities in one "
                               "model, score it on their shared test images and save it as a "
                               "run of this project.")
        self.note.setText(
            f"Combine the {len(self.runs)} ticked runs into one model that averages their "
            f"answers." if not self.refusal else
            ("Tick two or more runs on the same images and split to combine them."
             if len(self.runs) < 2 else self.refusal))

    def combine(self) -> None:
        """Combine the ticked runs into a new run folder under the project's runs."""
        if self.refusal or self.runner.is_running:
            return
        out = new_run_dir(self.state.runs_root, "ensemble")
        out.parent.mkdir(parents=True, exist_ok=True)
        self._set_busy(True)
        self.result.show_text("")
        self.note.setText(f"Combining {len(self.runs)} runs…")
        self.runner.start(ensemble_jobs.combine, list(self.runs), out, separate_process=True)

    def _set_busy(self, busy: bool) -> None:
        self.button.setEnabled(not busy and not self.refusal)
        self.cancel_button.setVisible(busy)
        self.progress.setVisible(busy)
        self.progress.setRange(0, 0)

    def _on_event(self, event: object) -> None:
        if isinstance(event, StageStarted):
            self.progress.setRange(0, max(1, event.total))
            self.progress.setValue(0)
            self.note.setText(event.text)
        elif isinstance(event, StageProgress):
            self.progress.setValue(event.done)
        elif isinstance(event, LogMessage):
            self.note.setText(event.text)

    def _on_combined(self, result) -> None:
        self._set_busy(False)
        self.result.show_text(result.summary, "success")
        self.state.add_run(LoadedRun.read(result.path))
        self.set_runs(self.runs)
        self.combined.emit(result)
        self.finished.emit()

    def _on_cancelled(self) -> None:
        self._set_busy(False)
        self.set_runs(self.runs)
        self.result.show_text("Combining cancelled; nothing was saved.", "warning")
        self.finished.emit()

    def _on_failed(self, exc: BaseException, trace: str) -> None:
        self._set_busy(False)
        self.set_runs(self.runs)
        show_error(self, exc, trace, "combining the runs", title="Could not combine")
        self.finished.emit()

    def shutdown(self) -> None:
        self.runner.shutdown()
