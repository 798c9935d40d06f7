"""Step 4: train in the background with live curves, a progress bar, a log, and Cancel."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.errors import DatasetError, RunFolderError, WeightsError
from finetune_gui.core.events import (
    BatchEnded,
    EpochEnded,
    LogMessage,
    PhaseStarted,
    StageProgress,
    StageStarted,
)
from finetune_gui.core.model.backbones import get_backbone, weights_kind
from finetune_gui.core.run.folder import RunFolder, mark_interrupted, read_settings
from finetune_gui.core.run.naming import new_run_dir
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.plan import plan_summary, planned_epochs
from finetune_gui.gui.start_folder import WEIGHTS, start_folder
from finetune_gui.gui.state import LoadedRun, ProjectState
from finetune_gui.gui.widgets.common import Banner, page_header
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.plots import TrainingCurves
from finetune_gui.gui.worker import JobRunner
from finetune_gui.jobs import engine as engine_jobs

PHASE_NAMES = {"head": "training the new head", "finetune": "fine-tuning",
               "scratch": "training from scratch"}
STAGE_NAMES = {"decode": "Reading images", "extract": "Computing features of the frozen part",
               "extract-val": "Computing validation features",
               "extract-test": "Computing test-image features",
               "extract-pseudo": "Preparing the \"not sure\" check", "evaluate": "Testing",
               "scan": "Checking files"}


def with_loaded_run(result) -> tuple[object, LoadedRun | None]:
    """After training (on the worker thread): read the run folder back for the Results page."""
    try:
        return result, LoadedRun.read(result.run_dir)
    except RunFolderError:
        return result, None  # cancelled before the first epoch: nothing to show


def run_settings(run_dir: Path) -> TrainingSettings | None:
    """The settings a run folder was started with (None when they cannot be read)."""
    try:
        return read_settings(run_dir)
    except RunFolderError:
        return None


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"about {seconds} s left"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"about {minutes} min {seconds:02d} s left"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min left"


class TrainPage(QWidget):
    """Start and Cancel, progress with ETA, loss and accuracy curves, the log."""

    run_finished = Signal(str)  # "completed", "cancelled" or "failed"
    show_results = Signal()  # the user asked to see the results of the finished run
    compare_runs = Signal()  # the user asked to see the project's runs side by side

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.runner = JobRunner("training", self)
        self._total_epochs = 0
        self._stage_total = 1
        self._started_at = 0.0
        self.run_dir: Path | None = None  # the run being trained
        self.last_dialog: QMessageBox | None = None
        self._build()
        self.runner.event.connect(self._on_event)
        self.runner.succeeded.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        for signal in (state.scan_changed, state.settings_changed, state.training_changed,
                       state.excluded_changed):
            signal.connect(self._show_plan)
        state.data_dir_changed.connect(self._forget_last_run)
        state.runs_changed.connect(self._show_compare)
        self._show_plan()
        self._show_compare()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(page_header(
            "Train",
            "Training runs in the background: you can look at other steps meanwhile. The curves "
            "grow by one point per epoch. When validation accuracy stops improving, more epochs "
            "would not help, and training stops early.",
        ))
        self.plan = QLabel()
        self.plan.setWordWrap(True)
        layout.addWidget(self.plan)
        self.blocker = Banner("warning")
        layout.addWidget(self.blocker)

        row = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primaryButton")
        self.start_button.setMinimumWidth(160)
        self.start_button.clicked.connect(self.start_training)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip(
            "Stop after the current batch; the best epoch so far is kept.")
        self.cancel_button.clicked.connect(self.cancel_training)
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        self.status = QLabel("Ready.")
        row.addWidget(self.status, 1)
        self.compare_button = QPushButton("Compare runs…")
        self.compare_button.setToolTip("See the runs of this project side by side: what was set "
                                       "differently and how they scored.")
        self.compare_button.clicked.connect(self.compare_runs)
        row.addWidget(self.compare_button)
        layout.addLayout(row)
        # The words sit beside the bar, not on it: drawn on the bar, the colour boundary of the
        # filled part cut them in two colours and made them hard to read.
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress_text = QLabel()
        self.progress_text.setMinimumWidth(260)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.progress_text)
        layout.addLayout(progress_row)

        self.outcome = Banner("success")
        self.results_button = QPushButton("See the results →")
        self.results_button.clicked.connect(self.show_results)
        self.results_button.hide()
        outcome_row = QHBoxLayout()
        outcome_row.addWidget(self.outcome, 1)
        outcome_row.addWidget(self.results_button)
        layout.addLayout(outcome_row)

        splitter = QSplitter()
        splitter.setOrientation(splitter.orientation().Vertical)
        self.curves = TrainingCurves()
        self.curves.setMinimumHeight(220)
        splitter.addWidget(self.curves)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setFont(QFont("monospace", 9))
        self.log.setPlaceholderText("Messages from training appear here.")
        # The log stays at its newest line unless the user scrolled up to read something.
        self._log_follows = True
        log_bar = self.log.verticalScrollBar()
        log_bar.valueChanged.connect(
            lambda value: setattr(self, "_log_follows", value >= log_bar.maximum()))
        log_bar.rangeChanged.connect(self._keep_log_at_newest_line)
        splitter.addWidget(self.log)
        splitter.setSizes([360, 140])
        layout.addWidget(splitter, 1)

    # -- the log and the progress words ------------------------------------------------------
    def _keep_log_at_newest_line(self) -> None:
        if self._log_follows:
            bar = self.log.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _append_log(self, text: str) -> None:
        self.log.appendPlainText(text)
        self._keep_log_at_newest_line()

    def _clear_log(self) -> None:
        """A new run starts on an empty log; earlier runs stay in the Runs list."""
        self.log.clear()
        self._log_follows = True

    def _show_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress_text.setText(text)

    def _forget_last_run(self) -> None:
        """A new folder: the last run's curves and outcome belong to other data, so they go."""
        if self.runner.is_running:
            return
        self.curves.clear()
        self.outcome.show_text("")
        self.results_button.hide()
        self._clear_log()
        self._show_progress(0, 1, "")
        self.status.setText("Ready.")

    # -- what will be trained -----------------------------------------------------------------
    def _why_not(self) -> str:
        scan = self.state.scan
        if self.state.scanning:
            return "The images are still being checked (step Data)."
        if scan is None:
            return "Choose a folder of images first (step Data)."
        if not scan.can_train:
            return scan.refusal or "The folder cannot be trained on."
        try:
            self.state.split()
        except DatasetError as exc:
            return str(exc)
        return ""

    def _show_plan(self) -> None:
        s = self.state.settings
        spec = get_backbone(s.backbone)
        weights = {"imagenet": "ImageNet weights", "none": "no pretrained weights (from scratch)",
                   "file": f"weights from {Path(s.weights).name}"}[weights_kind(s.weights)]
        text = (f"<b>{spec.keras_name}</b> at {s.resolved_image_size} px with {weights}; "
                f"{plan_summary(s)}.")
        if self.state.auto_budget_minutes is not None:
            text += (f" First up to {self.state.auto_budget_minutes:g} minutes finding better "
                     f"settings on the validation images; the best are trained.")
        scan = self.state.scan
        if scan is not None and scan.can_train:
            try:
                counts = self.state.split().counts()
                text += (f" {counts['train']:,} images to learn from, {counts['val']:,} to "
                         f"validate, {counts['test']:,} to test.")
            except DatasetError:
                pass
        self.plan.setText(text)
        reason = "" if self.runner.is_running else self._why_not()
        self.blocker.show_text(reason, "warning")
        self.start_button.setEnabled(not self.runner.is_running and not reason)

    def _show_compare(self) -> None:
        """Comparing needs two runs; the button says so rather than hiding."""
        enough = len(self.state.runs) >= 2
        self.compare_button.setEnabled(enough)
        self.compare_button.setToolTip(
            "See the runs of this project side by side: what was set differently and how they "
            "scored." if enough else "Train at least two runs to compare them.")

    # -- start and stop -----------------------------------------------------------------------
    def start_training(self) -> None:
        if self.runner.is_running or self._why_not():
            return
        settings = self.state.settings
        self.state.runs_root.mkdir(parents=True, exist_ok=True)
        run_dir = new_run_dir(self.state.runs_root, settings.backbone)
        self._prepare_for_run(settings)
        self._append_log(f"— New run in {run_dir}")
        self.run_dir = run_dir
        self.state.join_run(run_dir)
        # A separate process: see child_process.py for why training never shares the GUI's.
        budget = self.state.auto_budget_minutes
        job, extra = (engine_jobs.train, ()) if budget is None else (engine_jobs.train_auto,
                                                                     (budget,))
        self.runner.start(job, self.state.scan, settings, run_dir,
                          frozenset(self.state.excluded), *extra, separate_process=True,
                          then=with_loaded_run)
        self.state.set_training(True)

    def _prepare_for_run(self, settings) -> None:
        self._clear_log()
        self.curves.clear()
        self.outcome.show_text("")
        self.results_button.hide()
        self._total_epochs = planned_epochs(settings)
        self._started_at = time.monotonic()
        self.status.setText("Starting…")
        self._show_progress(0, 0, "")
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)

    def resume_training(self, run_dir: Path) -> None:
        """Continue a run that was interrupted (the app or the computer stopped mid-training)."""
        if self.runner.is_running:
            return
        self._prepare_for_run(run_settings(run_dir) or self.state.settings)
        # The epochs before the interruption too: the curves show the whole run.
        self.curves.show_history(RunFolder.read_history(run_dir))
        self._append_log(f"— Resuming the interrupted run in {run_dir}")
        self.run_dir = Path(run_dir)
        self.state.join_run(self.run_dir)
        self.runner.start(engine_jobs.resume, Path(run_dir), separate_process=True,
                          then=with_loaded_run)
        self.state.set_training(True)

    def cancel_training(self) -> None:
        if self.runner.is_running:
            self.runner.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Stopping after the current batch…")

    # -- progress -----------------------------------------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, BatchEnded):
            self._show_progress(event.batch, event.batches, f"batch {event.batch} of "
                                f"{event.batches}   {format_eta(event.eta_seconds)}")
            self.status.setText(
                f"Epoch {event.epoch} of up to {self._total_epochs}, "
                f"{PHASE_NAMES.get(event.phase, event.phase)}; loss {event.loss:.3f}")
        elif isinstance(event, EpochEnded):
            self.curves.add_epoch(event.epoch, event.metrics)
            m = event.metrics
            val = (f", validation loss {m['val_loss']:.3f}, validation accuracy "
                   f"{m['val_accuracy']:.1%}" if m.get("val_loss") is not None else "")
            self._append_log(
                f"Epoch {event.epoch}: loss {m.get('loss', float('nan')):.3f}, accuracy "
                f"{m.get('accuracy', float('nan')):.1%}{val}")
        elif isinstance(event, PhaseStarted):
            # Said at once: a solved head sends no batch, and the line still named the last
            # images read while the head was being solved.
            self.status.setText(f"{PHASE_NAMES.get(event.phase, event.phase).capitalize()}…")
            self._show_progress(0, 0, "")  # busy until its first batch counts
            if event.phase == "finetune":
                self.curves.mark_phase_two(event.first_epoch)
            if event.phase == "scratch":
                self._total_epochs = event.epochs
        elif isinstance(event, StageStarted):
            self._stage_total = max(1, event.total)
            self._show_progress(0, self._stage_total, f"0 of {self._stage_total}")
            self.status.setText(event.text or STAGE_NAMES.get(event.stage, event.stage))
        elif isinstance(event, StageProgress):
            self._show_progress(event.done, self._stage_total,
                                f"{event.done} of {self._stage_total}")
        elif isinstance(event, LogMessage):
            prefix = "" if event.level == "info" else f"{event.level.upper()}: "
            self._append_log(prefix + event.text)

    # -- endings ------------------------------------------------------------------------------
    def _end(self, status: str, text: str) -> None:
        self.cancel_button.setEnabled(False)
        self._show_progress(1 if status == "completed" else 0, 1,
                            {"completed": "done", "cancelled": "cancelled"}.get(status, "stopped"))
        self.status.setText(text)
        self.state.set_training(False)
        self._show_plan()
        self.run_finished.emit(status)

    def _on_done(self, outcome: tuple[object, LoadedRun | None]) -> None:
        result, loaded = outcome
        minutes = (time.monotonic() - self._started_at) / 60
        if loaded is not None:
            self.state.add_run(loaded)
        if result.status == "completed":
            self.outcome.show_text(f"{result.message} ({minutes:.1f} min)", "success")
            self.results_button.show()
        else:
            self.outcome.show_text(result.message, "warning")
            self.results_button.setVisible(loaded is not None and loaded.report is not None)
        self._end(result.status, "Finished." if result.status == "completed" else "Cancelled.")

    def _on_cancelled(self) -> None:
        self.outcome.show_text("Training was cancelled before it started.", "warning")
        self._end("cancelled", "Cancelled.")

    def _on_failed(self, exc: BaseException, trace: str) -> None:
        self._append_log(f"ERROR: {exc}")
        self.state.forget_missing_runs()
        self._end("failed", "Stopped by an error.")
        if isinstance(exc, WeightsError):
            self.last_dialog = self._offer_weights_choice(str(exc))
        else:
            self.last_dialog = show_error(self, exc, trace, "training", title="Training stopped")

    def _offer_weights_choice(self, message: str) -> QMessageBox:
        """Offline or a damaged download: offer the two ways to go on without ImageNet."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Pretrained weights unavailable")
        box.setText(message)
        box.setInformativeText(
            "A weights file saved from the same network keeps what it learned on millions of "
            "photos. Training from scratch starts from nothing: it needs far more images and "
            "epochs to reach the same accuracy.")
        choose = box.addButton("Choose a weights file…", QMessageBox.ButtonRole.AcceptRole)
        scratch = box.addButton("Train from scratch", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(choose)  # the better choice is the one Enter picks

        def decide(button) -> None:
            if button is scratch:
                self.state.update_settings(weights="none")
                self.start_training()
            elif button is choose:
                path, _ = QFileDialog.getOpenFileName(
                    self, "Choose a weights file", start_folder(WEIGHTS, self.state),
                    "Keras weights (*.h5 *.weights.h5 *.keras);;All files (*)")
                if path and not self.state.update_settings(weights=path):
                    self.start_training()

        box.buttonClicked.connect(decide)
        box.open()
        return box

    def shutdown(self) -> None:
        """Stop a running job for window close; a stopped run is kept for resume, not
        recorded as cancelled (the user closed the window, not the run)."""
        training = self.runner.is_running
        self.runner.shutdown()
        if training and self.run_dir is not None:
            mark_interrupted(self.run_dir, "Stopped when the window was closed; resume it to "
                                           "continue from its last epoch.")
