"""Step 6: save the trained model where the user wants it, and try it on new images."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.data.images import IMAGE_EXTENSIONS
from finetune_gui.core.errors import UserError
from finetune_gui.core.events import (
    CancelToken,
    LogMessage,
    ProgressCallback,
    StageProgress,
    StageStarted,
    ignore_progress,
)
from finetune_gui.core.export.exporter import FORMATS
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import Banner, page_header
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.heatmap import HeatmapPanel, HeatmapService
from finetune_gui.gui.widgets.thumbnails import load_thumbnail, to_pixmap
from finetune_gui.gui.worker import JobRunner, load_tensorflow
from finetune_gui.jobs import engine as engine_jobs

THUMB = 64
TOP_K = 3
RANKS = ("best answer", "second", "third")


def predict_job(
    run_folder, paths: list[Path], model=None, *, progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> tuple[object, list, dict[str, QImage]]:
    """A job: load the model once (reused next time), predict top-3, make thumbnails."""
    from finetune_gui.core.run.folder import predict_images

    load_tensorflow()
    model = model or run_folder.load_model()
    predictions = predict_images(run_folder, paths, top_k=TOP_K, model=model)
    thumbnails = {str(p): load_thumbnail(p, THUMB) for p in paths}
    return model, predictions, thumbnails


def unwritable_reason(target: Path) -> str:
    """Why `target` cannot be written, in plain words ("" when it can): said at once, not after
    the minutes the report takes."""
    folder = target.parent
    if not folder.exists():
        return f"Cannot write {target}: the folder {folder} does not exist."
    if not folder.is_dir():
        return f"Cannot write {target}: {folder} is a file, not a folder."
    if target.is_dir():
        return f"Cannot write {target}: a folder of that name is in the way."
    if not os.access(folder, os.W_OK):
        return f"Cannot write {target}: you may not write in {folder}."
    return ""


def image_files(paths: list[Path]) -> list[Path]:
    """The image files among `paths`, looking one level into dropped folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir()
                                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS))
        elif path.is_file():
            found.append(path)
    return found


class DropArea(QFrame):
    """A dashed box that accepts dropped image files (or a folder of them)."""

    files_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setObjectName("dropArea")
        self.setStyleSheet("#dropArea { border: 2px dashed #9aa5b1; border-radius: 8px; "
                           "background: #f7f9fb; }")
        layout = QVBoxLayout(self)
        label = QLabel("Drop images here")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setStyleSheet("color:#52606d; border:none;")
        layout.addWidget(label)
        self.setMinimumHeight(70)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)


class ExportPage(QWidget):
    """Export to a folder; drop or pick images to see the model's top-3 answers."""

    exported = Signal(list)  # the written files
    predicted = Signal()

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.export_runner = JobRunner("export", self)
        self.predict_runner = JobRunner("predict", self)
        self.report_runner = JobRunner("report", self)
        self.report_path: Path | None = None  # the last report written
        self.last_dialog = None  # the latest error dialog (tests look at it)
        self._model = None
        self._model_run: Path | None = None
        # Heatmaps reuse the model the predictions loaded; the two never use it at once.
        self.heatmaps = HeatmapService("try-heatmaps", self)
        self.heatmaps.runner.running_changed.connect(self._predict_waiting)
        self._waiting: list[Path] = []
        self._shown_predictions: list = []
        self._build()
        self.export_runner.event.connect(self._on_export_event)
        self.export_runner.succeeded.connect(self._on_exported)
        self.export_runner.cancelled.connect(self._on_export_cancelled)
        self.export_runner.failed.connect(self._on_export_failed)
        self.report_runner.event.connect(self._on_report_event)
        self.report_runner.succeeded.connect(self._on_report_written)
        self.report_runner.cancelled.connect(self._on_report_cancelled)
        self.report_runner.failed.connect(self._on_report_failed)
        self.predict_runner.succeeded.connect(self._on_predicted)
        self.predict_runner.failed.connect(self._on_predict_failed)
        state.current_run_changed.connect(self._show_run)
        self._show_run()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(page_header(
            "Export and try",
            "Save the trained model to use it elsewhere. Every format takes plain RGB pixels "
            "(no preprocessing needed); labels.txt lists the classes in output order, "
            "metrics.json holds the test results and model_card.md describes the model.",
        ))
        self.run_label = QLabel()
        layout.addWidget(self.run_label)
        self.notice = Banner("info")
        layout.addWidget(self.notice)

        save_box = QGroupBox("Save the model")
        save = QVBoxLayout(save_box)
        format_row = QHBoxLayout()
        self.format_choice = QComboBox()
        for spec in FORMATS.values():
            self.format_choice.addItem(spec.title, spec.name)
            self.format_choice.setItemData(self.format_choice.count() - 1, spec.purpose,
                                           Qt.ItemDataRole.ToolTipRole)
        self.format_choice.setToolTip("The kind of file to make. Every export is checked "
                                      "against the trained model before it is saved.")
        self.format_choice.currentIndexChanged.connect(self._show_format)
        self.format_purpose = QLabel()
        self.format_purpose.setWordWrap(True)
        self.format_purpose.setStyleSheet("color:#4b5563;")
        format_row.addWidget(QLabel("Format:"))
        format_row.addWidget(self.format_choice)
        format_row.addWidget(self.format_purpose, 1)
        save.addLayout(format_row)
        row = QHBoxLayout()
        self.target = QLineEdit()
        self.target.setPlaceholderText("Folder to save into (created if needed)")
        browse = QPushButton("Choose folder…")
        browse.clicked.connect(self._choose_target)
        self.export_button = QPushButton("Save model")
        self.export_button.setObjectName("primaryButton")
        self.export_button.clicked.connect(self.export)
        self.export_cancel = QPushButton("Cancel")
        self.export_cancel.clicked.connect(self.export_runner.cancel)
        self.export_cancel.hide()
        row.addWidget(self.target, 1)
        row.addWidget(browse)
        row.addWidget(self.export_button)
        row.addWidget(self.export_cancel)
        save.addLayout(row)
        self.export_progress = QProgressBar()
        self.export_progress.hide()
        save.addWidget(self.export_progress)
        self.export_result = Banner("success")
        save.addWidget(self.export_result)
        self._show_format()
        layout.addWidget(save_box)
        layout.addWidget(self._build_report_box())

        try_box = QGroupBox("Try it on new images")
        trial = QVBoxLayout(try_box)
        row = QHBoxLayout()
        self.drop_area = DropArea()
        self.drop_area.files_dropped.connect(self.predict)
        pick = QPushButton("Choose images…")
        pick.clicked.connect(self._choose_images)
        row.addWidget(self.drop_area, 1)
        row.addWidget(pick)
        trial.addLayout(row)
        self.predict_status = QLabel()
        self.predict_status.setStyleSheet("color:#4b5563;")
        trial.addWidget(self.predict_status)
        self.predictions = QTableWidget(0, 2 + TOP_K)
        self.predictions.setHorizontalHeaderLabels(
            ["", "Image", "Best answer", "Second", "Third"])
        self.predictions.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.predictions.verticalHeader().setVisible(False)
        self.predictions.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.predictions.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.predictions.currentCellChanged.connect(self._show_heatmap)
        header = self.predictions.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(0, THUMB + 8)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column in range(2, 2 + TOP_K):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        answers = QHBoxLayout()
        answers.addWidget(self.predictions, 1)
        self.heatmap_panel = HeatmapPanel(
            self.heatmaps, "Click a row: the heatmap shows where the model looked for its answer.")
        answers.addWidget(self.heatmap_panel)
        trial.addLayout(answers, 1)
        layout.addWidget(try_box, 1)

    def _build_report_box(self) -> QGroupBox:
        box = QGroupBox("Report of this run")
        report = QVBoxLayout(box)
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
        result_row.addWidget(self.report_result, 1)
        result_row.addWidget(self.report_open)
        report.addLayout(result_row)
        return box

    # -- the run ------------------------------------------------------------------------------
    def _show_run(self) -> None:
        run = self.state.current_run
        ready = run is not None
        self.export_button.setEnabled(ready)
        self.report_button.setEnabled(ready and not self.report_runner.is_running)
        self.drop_area.setEnabled(ready)
        self.heatmaps.set_run(run.folder if ready else None)
        if not ready:
            self.run_label.setText("")
            self.notice.show_text("Train a model first (step Train); then save it here.", "info")
            return
        self.notice.show_text("")
        accuracy = f", test accuracy {run.report.accuracy:.1%}" if run.report else ""
        self.run_label.setText(f"Model of run <b>{run.path.name}</b>{accuracy}.")
        if self._model_run != run.path:
            self._model = None  # a different run: load its model on the next prediction

    # -- export -------------------------------------------------------------------------------
    def _choose_target(self) -> None:
        start = self.target.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Save the model into", start)
        if folder:
            self.target.setText(folder)

    def choices(self) -> tuple[str, str]:
        """(destination folder, format) as last chosen, for the next session."""
        return self.target.text().strip(), self.format_choice.currentData()

    def restore_choices(self, folder: str, fmt: str) -> None:
        self.target.setText(folder)
        index = self.format_choice.findData(fmt)
        if index >= 0:
            self.format_choice.setCurrentIndex(index)

    def _show_format(self) -> None:
        spec = FORMATS[self.format_choice.currentData()]
        self.format_purpose.setText(spec.purpose)

    def export(self) -> None:
        """Export the current run's model in the chosen format to the chosen folder."""
        run = self.state.current_run
        text = self.target.text().strip()
        if run is None or self.export_runner.is_running:
            return
        if not text:
            self.export_result.show_text("Choose a folder to save into first.", "warning")
            return
        self._set_exporting(True)
        self.export_result.show_text("Converting, then checking the file against the trained "
                                     "model…", "info")
        # A separate process: converting holds Python's lock for long stretches.
        self.export_runner.start(engine_jobs.export, run.path, self.format_choice.currentData(),
                                 Path(text).expanduser(), separate_process=True)

    def _set_exporting(self, exporting: bool) -> None:
        self.export_button.setEnabled(not exporting and self.state.current_run is not None)
        self.format_choice.setEnabled(not exporting)
        self.export_cancel.setVisible(exporting)
        self.export_progress.setVisible(exporting)
        self.export_progress.setRange(0, 0)

    def _on_export_event(self, event: object) -> None:
        if isinstance(event, StageStarted) and event.stage == "export":
            self.export_progress.setRange(0, event.total)
            self.export_progress.setValue(0)
            self.export_progress.setFormat(event.text or "%v of %m")
        elif isinstance(event, StageProgress) and event.stage == "export":
            self.export_progress.setValue(event.done)

    def _on_exported(self, result) -> None:
        self._set_exporting(False)
        names = ", ".join(p.name for p in result.written)
        check = result.verification
        self.export_result.show_text(
            f"Saved {names} in {result.model_path.parent}.\nChecked on {check.n_images} "
            f"{check.images}: the file gives the trained model's answer on "
            f"{check.agreement:.1%} of them.", "success")
        self.exported.emit(list(result.written))

    def _on_export_cancelled(self) -> None:
        self._set_exporting(False)
        self.export_result.show_text("Export cancelled; nothing was written.", "warning")

    def _on_export_failed(self, exc: BaseException, trace: str) -> None:
        self._set_exporting(False)
        self.export_result.show_text("")
        show_error(self, exc, trace, "saving the model", title="Could not save")

    # -- report -------------------------------------------------------------------------------
    def choose_report_file(self) -> None:
        """Ask where to save the current run's report, then write it there."""
        run = self.state.current_run
        if run is None or self.report_runner.is_running:
            return
        folder = (self.report_path.parent if self.report_path else
                  Path(self.target.text().strip() or Path.home()).expanduser())
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
        if scan is None or str(scan.root) != str(run.folder.facts.get("data", "")):
            scan = None  # the window shows another folder: the report checks the run's own
        self._set_reporting(True)
        self.report_result.show_text("")
        self.report_open.hide()
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
            self.report_progress.setRange(0, max(1, event.total))
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
        self.last_dialog = show_error(self, exc, trace, "writing the report",
                                      title="Could not save the report")

    def open_report(self) -> None:
        """Show the last report in the user's web browser, or say where it is when none opens."""
        if self.report_path is None:
            return
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.report_path))):
            self.report_result.show_text(
                f"Opened in your web browser: {self.report_path}", "success")
        else:
            self.report_result.show_text(
                f"No web browser could be found to open the report. It is saved as "
                f"{self.report_path}; open that file from your file manager.", "warning")

    # -- try it -------------------------------------------------------------------------------
    def _choose_images(self) -> None:
        start = str(self.state.data_dir or Path.home())
        files, _ = QFileDialog.getOpenFileNames(
            self, "Choose images to classify", start,
            "Images (" + " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS)) + ")")
        if files:
            self.predict([Path(f) for f in files])

    def predict(self, paths: list[Path]) -> None:
        """Classify `paths` (files, or folders of images) with the current run's model."""
        run = self.state.current_run
        files = image_files([Path(p) for p in paths])
        if run is None:
            return
        if not files:
            self.predict_status.setText("No image files among what was dropped.")
            return
        if self.predict_runner.is_running:
            self.predict_status.setText("Still busy with the previous images; try again.")
            return
        self.heatmaps.pause(True)
        if self.heatmaps.is_busy:  # it uses the model for a moment longer: wait for it
            self._waiting = files
            self.predict_status.setText("Classifying in a moment…")
            return
        self.predict_status.setText(
            "Loading the model and classifying…" if self._model is None else "Classifying…")
        self._model_run = run.path
        self.predict_runner.start(predict_job, run.folder, files, self._model)

    def _predict_waiting(self, heatmap_running: bool) -> None:
        if not heatmap_running and self._waiting:
            files, self._waiting = self._waiting, []
            self.predict(files)

    def _on_predicted(self, outcome: tuple[object, list, dict[str, QImage]]) -> None:
        model, predictions, thumbnails = outcome
        self._model = model
        if self._model_run is not None:
            self.heatmaps.adopt_model(self._model_run, model)
        self.heatmaps.pause(False)
        self._shown_predictions = list(predictions)
        self.heatmap_panel.clear()
        self.predictions.setRowCount(0)
        # A model of two classes has no third answer: no empty "Third" column.
        answers = max((len(p.top) for p in predictions), default=TOP_K)
        for extra in range(TOP_K):
            self.predictions.setColumnHidden(2 + extra, extra >= max(answers, 1))
        for prediction in predictions:
            row = self.predictions.rowCount()
            self.predictions.insertRow(row)
            picture = QLabel()
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture.setPixmap(QPixmap(to_pixmap(thumbnails.get(str(prediction.path)), THUMB)))
            self.predictions.setCellWidget(row, 0, picture)
            name = QTableWidgetItem(prediction.path.name)
            name.setToolTip(str(prediction.path))
            self.predictions.setItem(row, 1, name)
            if prediction.error:
                problem = QTableWidgetItem(f"cannot read: {prediction.error}")
                self.predictions.setItem(row, 2, problem)
            for column, (label, probability) in enumerate(prediction.top, start=2):
                item = QTableWidgetItem(f"{label}  {probability:.0%}")
                if column == 2:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.predictions.setItem(row, column, item)
            self.predictions.setRowHeight(row, THUMB + 6)
        self.predict_status.setText(f"{len(predictions)} image(s) classified. Click a row to see "
                                    f"where the model looked.")
        if predictions:
            self.predictions.setCurrentCell(0, 1)
        self.predicted.emit()

    def _show_heatmap(self, row: int, column: int = 0, previous_row: int = -1, *_) -> None:
        """The heatmap of a tried image, for its best answer (the others can be chosen)."""
        if row == previous_row or not 0 <= row < len(self._shown_predictions):
            return
        prediction = self._shown_predictions[row]
        if prediction.error or not prediction.top:
            self.heatmap_panel.clear("cannot read this image")
            return
        best, probability = prediction.top[0]
        self.heatmap_panel.show_image(
            prediction.path, f"The model says <b>{best}</b> ({probability:.0%} sure).",
            [(f"{rank}: {label} ({p:.0%})", label)
             for rank, (label, p) in zip(RANKS, prediction.top, strict=False)])

    def _on_predict_failed(self, exc: BaseException, trace: str) -> None:
        self.predict_status.setText("")
        self.heatmaps.pause(False)
        show_error(self, exc, trace, "classifying the images")

    def shutdown(self) -> None:
        self.report_runner.shutdown()
        self.export_runner.shutdown()
        self.predict_runner.shutdown()
        self.heatmaps.shutdown()
