"""The Export page's "Report of this run" panel: one web page about the run, saved and opened."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.errors import UserError
from finetune_gui.core.events import LogMessage, StageProgress, StageStarted
from finetune_gui.core.files import unwritable_reason
from finetune_gui.gui.start_folder import RUN_OUTPUT, start_folder
from finetune_gui.gui.state import LoadedRun, ProjectState
from finetune_gui.gui.widgets.common import Banner
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.opener import CopyPathButton, OpenOutcome, PathOpener
from finetune_gui.gui.worker import JobRunner
from finetune_gui.jobs import engine as engine_jobs


class ReportPanel(QGroupBox):
    """Write the current run's HTML report where the user chooses, and open it in a browser."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__("Report of this run", parent)
        self.state = state
        self.report_runner = JobRunner("report", self)
        self.opener = PathOpener("your web browser", self)
        self.opener.finished.connect(self._on_opened)
        self.report_path: Path | None = None  # the last report written
        self.last_dialog = None  # the latest error dialog (tests look at it)
        self._build()
        self.report_runner.event.connect(self._on_report_event)
        self.report_runner.succeeded.connect(self._on_report_written)
        self.report_runner.cancelled.connect(self._on_report_cancelled)
        self.report_runner.failed.connect(self._on_report_failed)

    def _build(self) -> None:
        report = QVBoxLayout(self)
        row = QHBoxLayout()
        about = QLabel("One web page with this run's settings, curves, scores, mistakes and "
                       "likely wrong labels, to keep, print or send. Any web browser opens it.")
        about.setWordWrap(True)
        about.setStyleSheet("color:#4b5563;")
        self.report_button = QPushButton("Save report…")
        self.report_button.setToolTip("Choose where to save the report (an .html file).")
        self.report_button.clicked.connect(self.choose_report_file)
        self.report_cancel = QPushButton("Cancel")
        self.report_cancel.clicked.connect(self.report_runner.cancel)
        self.report_cancel.hide()
        row.addWidget(about, 1)
        row.addWidget(self.report_button)
        row.addWidget(self.report_cancel)
        report.addLayout(row)
        progress_row = QHBoxLayout()
        self.report_status = QLabel()  # a busy bar shows no text: what happens is said here
        self.report_status.setStyleSheet("color:#4b5563;")
        self.report_progress = QProgressBar()
        progress_row.addWidget(self.report_status)
        progress_row.addWidget(self.report_progress, 1)
        self.report_progress_box = QWidget()
        self.report_progress_box.setLayout(progress_row)
        progress_row.setContentsMargins(0, 0, 0, 0)
        self.report_progress_box.hide()
        report.addWidget(self.report_progress_box)
        result_row = QHBoxLayout()
        self.report_result = Banner("success")
        self.report_open = QPushButton("Open")
        self.report_open.setToolTip("Show the report in your web browser.")
        self.report_open.clicked.connect(self.open_report)
        self.report_open.hide()
        self.report_copy = CopyPathButton()  # shown when nothing could open the report
        result_row.addWidget(self.report_result, 1)
        result_row.addWidget(self.report_open)
        result_row.addWidget(self.report_copy)
        report.addLayout(result_row)

    def show_run(self, run: LoadedRun | None) -> None:
        """A report waits for a run, and for the report being written."""
        self.report_button.setEnabled(run is not None and not self.report_runner.is_running)

    def choose_report_file(self) -> None:
        """Ask where to save the current run's report, then write it there."""
        run = self.state.current_run
        if run is None or self.report_runner.is_running:
            return
        folder = Path(start_folder(RUN_OUTPUT, self.state))  # the run's own folder
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the report", str(folder / f"{run.path.name}-report.html"),
            "Web page (*.html)")
        if path:
            self.save_report(Path(path))

    def save_report(self, target: Path) -> None:
        """Write the current run's report to `target` in the background."""
        run = self.state.current_run
        if run is None or self.report_runner.is_running:
            return
        if target.suffix.lower() not in (".html", ".htm"):
            target = target.with_name(target.name + ".html")
        problem = unwritable_reason(target)
        if problem:
            self._show_report_failure(problem)
            return
        scan = self.state.scan
        if scan is None or str(scan.root) != str(run.folder.facts.data or ""):
            scan = None  # the window shows another folder: the report checks the run's own
        self._set_reporting(True)
        self.report_result.show_text("")
        self.report_open.hide()
        self.report_copy.hide()
        self.report_status.setText("Starting…")
        # A separate process: the report runs the model (heatmaps, suspects) with TensorFlow.
        self.report_runner.start(engine_jobs.report, run.path, target, scan,
                                 separate_process=True)

    def _set_reporting(self, reporting: bool) -> None:
        self.report_button.setEnabled(not reporting and self.state.current_run is not None)
        self.report_cancel.setVisible(reporting)
        self.report_progress_box.setVisible(reporting)
        self.report_progress.setRange(0, 0)
        self.report_progress.setFormat("%v of %m")

    def _on_report_event(self, event: object) -> None:
        if isinstance(event, StageStarted):
            # A stage that cannot be counted (the model's pass, writing) shows a busy bar.
            self.report_progress.setRange(0, max(0, event.total))
            self.report_progress.setValue(0)
            self.report_status.setText(event.text or event.stage.capitalize())
        elif isinstance(event, StageProgress):
            self.report_progress.setValue(event.done)
        elif isinstance(event, LogMessage):
            self.report_progress.setRange(0, 0)
            self.report_status.setText(event.text)

    def _on_report_written(self, path: Path) -> None:
        self._set_reporting(False)
        self.report_path = Path(path)
        self.report_result.show_text(f"Report saved as {path}", "success")
        self.report_open.show()

    def _on_report_cancelled(self) -> None:
        self._set_reporting(False)
        self.report_result.show_text("Report cancelled; nothing was written.", "warning")

    def _on_report_failed(self, exc: BaseException, trace: str) -> None:
        self._set_reporting(False)
        self._show_report_failure(exc, trace)

    def _show_report_failure(self, problem: BaseException | str, trace: str = "") -> None:
        exc = UserError(problem) if isinstance(problem, str) else problem
        self.report_result.show_text("")
        self.report_open.hide()
        self.report_copy.hide()
        self.last_dialog = show_error(self, exc, trace, "writing the report",
                                      title="Could not save the report")

    def open_report(self) -> None:
        """Show the last report in the user's web browser; when none opens it, say so, with
        where it is and a Copy path button."""
        if self.report_path is None or self.opener.busy:
            return
        self.report_open.setEnabled(False)
        self.report_copy.hide()
        self.report_result.show_text(f"Opening {self.report_path}…", "info")
        self.opener.open(self.report_path)

    def _on_opened(self, outcome: OpenOutcome) -> None:
        self.report_open.setEnabled(True)
        self.report_result.show_text(outcome.text, "success" if outcome.opened else "warning")
        self.report_copy.show_for(outcome)


    def shutdown(self) -> None:
        self.report_runner.shutdown()
