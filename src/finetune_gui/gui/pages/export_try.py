"""The Export page's "Try it on new images" panel: drop images, see the top-3 answers and where
the model looked."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.data.images import IMAGE_EXTENSIONS
from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress
from finetune_gui.core.words import counted
from finetune_gui.gui.start_folder import IMAGES, start_folder
from finetune_gui.gui.state import LoadedRun, ProjectState
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.heatmap import HeatmapPanel, HeatmapService
from finetune_gui.gui.widgets.thumbnails import load_thumbnail, placeholder_pixmap
from finetune_gui.gui.worker import JobRunner, load_tensorflow

THUMB = 32  # small: eight answers fit at 1400 x 900; the panel beside shows the picture large
TOP_K = 3
# The answer and whether the model is sure come first, then the other answers.
IMAGE_COLUMN, ANSWER_COLUMN, SURE_COLUMN = 0, 1, 2
ANSWER_COLUMNS = (ANSWER_COLUMN, 3, 4)  # best, second, third
HEADERS = ("Image", "Answer", "Sure?", "Second", "Third")
RANKS = ("best answer", "second", "third")


def predict_job(
    run_folder, paths: list[Path], model=None, *, progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> tuple[object, list, dict[str, QImage]]:
    """A job: load the model once (reused next time), predict top-3, make thumbnails."""
    from finetune_gui.core.run.predict import predict_images

    load_tensorflow()
    model = model or run_folder.load_model()
    predictions = predict_images(run_folder, paths, top_k=TOP_K, model=model)
    thumbnails = {str(p): load_thumbnail(p, THUMB) for p in paths}
    return model, predictions, thumbnails


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


def _thumbnail(image: QImage | None) -> QPixmap:
    """The thumbnail, or a grey square for an image that cannot be shown."""
    if image is None or image.isNull():
        return placeholder_pixmap(THUMB, "?")
    return QPixmap.fromImage(image)


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
        self.setFixedHeight(46)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)


class OneLine(QStyledItemDelegate):
    """A file name on one line, shortened in the middle (its tooltip has the whole path)."""

    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:
        super().initStyleOption(option, index)
        option.features &= ~QStyleOptionViewItem.ViewItemFeature.WrapText
        option.textElideMode = Qt.TextElideMode.ElideMiddle


class AnswerTable(QTableWidget):
    """The answers, one row per image, fitted to its width: no sideways scrolling. The image
    name and "Sure?" share the width left by the answers; long texts wrap and the row grows."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(HEADERS), parent)
        self.setHorizontalHeaderLabels(HEADERS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setWordWrap(True)
        self.name_delegate = OneLine(self)
        self.setItemDelegateForColumn(IMAGE_COLUMN, self.name_delegate)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header = self.horizontalHeader()
        header.setMinimumSectionSize(40)
        for column in range(len(HEADERS)):
            stretch = column in (IMAGE_COLUMN, SURE_COLUMN)
            header.setSectionResizeMode(
                column, QHeaderView.ResizeMode.Stretch if stretch
                else QHeaderView.ResizeMode.Interactive)
        self.setMinimumHeight(160)

    def fit_columns(self) -> None:
        """Each answer column as wide as its widest text, up to a fifth of the table."""
        cap = max(self.viewport().width() // 5, 60)
        for column in ANSWER_COLUMNS:
            if not self.isColumnHidden(column):
                wanted = max(self.sizeHintForColumn(column),
                             self.horizontalHeader().sectionSizeHint(column))
                self.setColumnWidth(column, min(wanted, cap))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_columns()


class TryPanel(QGroupBox):
    """Classify dropped or chosen images with the current run's model; a row shows its heatmap."""

    predicted = Signal()

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__("Try it on new images", parent)
        self.state = state
        self.predict_runner = JobRunner("predict", self)
        self._model = None
        self._model_run: Path | None = None
        # Heatmaps reuse the model the predictions loaded; the two never use it at once.
        self.heatmaps = HeatmapService("try-heatmaps", self)
        self.heatmaps.runner.running_changed.connect(self._predict_waiting)
        self._waiting: list[Path] = []
        self._shown_predictions: list = []
        self._build()
        self.predict_runner.succeeded.connect(self._on_predicted)
        self.predict_runner.failed.connect(self._on_predict_failed)

    def _build(self) -> None:
        trial = QVBoxLayout(self)
        row = QHBoxLayout()
        self.drop_area = DropArea()
        self.drop_area.files_dropped.connect(self.predict)
        pick = QPushButton("Choose images…")
        pick.clicked.connect(self._choose_images)
        self.sort_button = QPushButton("Sort a folder…")
        self.sort_button.setToolTip("Copy every image of a folder into a sub-folder per class "
                                    "(or \"not sure\"); the folder itself is not changed.")
        self.sort_button.clicked.connect(self.open_sort_dialog)
        self.sort_dialog = None
        row.addWidget(self.drop_area, 1)
        row.addWidget(pick)
        row.addWidget(self.sort_button)
        trial.addLayout(row)
        self.predict_status = QLabel()
        self.predict_status.setStyleSheet("color:#4b5563;")
        trial.addWidget(self.predict_status)
        self.predictions = AnswerTable()
        self.predictions.currentCellChanged.connect(self._show_heatmap)
        answers = QHBoxLayout()
        answers.addWidget(self.predictions, 1)
        self.heatmap_panel = HeatmapPanel(
            self.heatmaps, "Click a row: the heatmap shows where the model looked for its answer.")
        answers.addWidget(self.heatmap_panel)
        trial.addLayout(answers, 1)

    def show_run(self, run: LoadedRun | None) -> None:
        """Trying waits for a run; another run's model is loaded afresh."""
        self.drop_area.setEnabled(run is not None)
        self.sort_button.setEnabled(run is not None)
        self.heatmaps.set_run(run.folder if run is not None else None)
        if run is not None and self._model_run != run.path:
            self._model = None  # a different run: load its model on the next prediction

    def _choose_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Choose images to classify", start_folder(IMAGES, self.state),
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
        self.predictions.clearSpans()
        # A model of two classes has no third answer: no empty "Third" column.
        answers = max((len(p.top) for p in predictions), default=TOP_K)
        for rank, column in enumerate(ANSWER_COLUMNS):
            self.predictions.setColumnHidden(column, rank >= max(answers, 1))
        self.predictions.setRowCount(len(predictions))
        for row, prediction in enumerate(predictions):
            self._fill_row(row, prediction, thumbnails.get(str(prediction.path)))
        self.predictions.fit_columns()
        self.predict_status.setText(f"{counted(len(predictions), 'image')} classified. Click a row "
                                    f"to see "
                                    f"where the model looked.")
        if predictions:
            self.predictions.setCurrentCell(0, 1)
        self.predicted.emit()

    def _fill_row(self, row: int, prediction, thumbnail: QImage | None) -> None:
        """One image: its thumbnail and name, the answer, whether the model is sure (and why
        not), then the other answers."""
        name = QTableWidgetItem(prediction.path.name)
        name.setToolTip(str(prediction.path))
        name.setIcon(QIcon(_thumbnail(thumbnail)))
        self.predictions.setItem(row, IMAGE_COLUMN, name)
        if prediction.error:
            self.predictions.setSpan(row, ANSWER_COLUMN, 1, len(HEADERS) - ANSWER_COLUMN)
            self.predictions.setItem(
                row, ANSWER_COLUMN, QTableWidgetItem(f"cannot read: {prediction.error}"))
            return
        for column, (label, probability) in zip(ANSWER_COLUMNS, prediction.top, strict=False):
            item = QTableWidgetItem(f"{label}  {probability:.0%}")
            if column == ANSWER_COLUMN:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.predictions.setItem(row, column, item)
        sure = QTableWidgetItem(f"not sure: {prediction.unsure}" if prediction.unsure else "yes")
        if prediction.unsure:
            sure.setForeground(QColor("#b45309"))
        self.predictions.setItem(row, SURE_COLUMN, sure)

    def _show_heatmap(self, row: int, column: int = 0, previous_row: int = -1, *_) -> None:
        """The heatmap of a tried image, for its best answer (the others can be chosen)."""
        if row == previous_row or not 0 <= row < len(self._shown_predictions):
            return
        prediction = self._shown_predictions[row]
        if prediction.error or not prediction.top:
            self.heatmap_panel.clear("cannot read this image")
            return
        best, probability = prediction.top[0]
        said = (f"The model is <b>not sure</b> ({prediction.unsure}); its best guess is {best} "
                f"({probability:.0%})." if prediction.unsure
                else f"The model says <b>{best}</b> ({probability:.0%} sure).")
        self.heatmap_panel.show_image(
            prediction.path, said,
            [(f"{rank}: {label} ({p:.0%})", label)
             for rank, (label, p) in zip(RANKS, prediction.top, strict=False)])

    def _on_predict_failed(self, exc: BaseException, trace: str) -> None:
        self.predict_status.setText("")
        self.heatmaps.pause(False)
        show_error(self, exc, trace, "classifying the images")


    def open_sort_dialog(self) -> None:
        """"Sort a folder…" with the current run's model."""
        from finetune_gui.gui.widgets.sort_folder import SortFolderDialog

        run = self.state.current_run
        if run is None:
            return
        self.sort_dialog = SortFolderDialog(run.path, self)
        self.sort_dialog.show()

    def shutdown(self) -> None:
        if self.sort_dialog is not None:
            self.sort_dialog.runner.shutdown()
        self.predict_runner.shutdown()
        self.heatmaps.shutdown()
