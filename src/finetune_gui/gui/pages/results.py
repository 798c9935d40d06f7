"""Step 5: how good the model is on images it never saw, and which images it gets wrong."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.errors import UserError
from finetune_gui.core.run.compare import readable_name
from finetune_gui.core.run.folder import RunFolder, run_state, split_counts
from finetune_gui.core.words import counted
from finetune_gui.gui.pages.results_map import EmbeddingMapView
from finetune_gui.gui.pages.results_suspects import SuspectsView
from finetune_gui.gui.state import LoadedRun, ProjectState
from finetune_gui.gui.widgets.common import Banner, LeaveOutRow, page_header
from finetune_gui.gui.widgets.confusion_matrix import ConfusionMatrix
from finetune_gui.gui.widgets.heatmap import HeatmapPanel, HeatmapService
from finetune_gui.gui.widgets.image_dialog import CellImagesDialog
from finetune_gui.gui.widgets.reliability import ReliabilityPicture
from finetune_gui.gui.widgets.similar_images import SimilarImagesPanel
from finetune_gui.gui.widgets.thumbnails import ImageGallery, load_thumbnails
from finetune_gui.gui.worker import JobRunner
from finetune_gui.jobs import engine as engine_jobs

GALLERY_THUMB = 96
GALLERY_LIMIT = 200  # the most confident mistakes; a long tail of them teaches nothing new
# How the Runs list names a run that did not finish (a finished run shows its name alone).
STATE_WORDS = {"cancelled": "cancelled", "failed": "failed", "interrupted": "interrupted",
               "running": "still training", "empty": "not started"}
EVALUATE_TEXT = "Evaluate the kept best weights"


def run_label(path: Path) -> str:
    """A run's name in the Runs list as Compare names it (network · data · time · test
    accuracy), with its state when it did not finish."""
    words = STATE_WORDS.get(run_state(path))
    try:
        folder = RunFolder.open(path, need_model=False)
    except UserError:  # stopped before it wrote its settings
        return f"{path.name} ({words})" if words else path.name
    title = readable_name(folder, words)
    return f"{title} ({words})" if words and folder.report is not None else title


def count_test_images(run_dir: Path) -> int:
    """How many test images the run's split kept aside (0 when the split cannot be read)."""
    return split_counts(run_dir)["test"]


def _number(value: float | None, percent: bool = False) -> QTableWidgetItem:
    text = "–" if value is None else (f"{value:.0%}" if percent else f"{value:.2f}")
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def mistake_choices(true_label: str, predicted_label: str) -> list[tuple[str, str]]:
    """Heatmap choices for an image the model got wrong: its answer first, then its label."""
    if true_label == predicted_label:
        return [(f"what it said: {predicted_label}", predicted_label)]
    return [(f"what it said: {predicted_label}", predicted_label),
            (f"the label: {true_label}", true_label)]


class ResultsPage(QWidget):
    """Run picker, per-class table, clickable confusion matrix, and tabs that look closer:
    the mistakes with heatmaps, suspect labels, and a map of all images."""

    gallery_filled = Signal()

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.runner = JobRunner("mistake-thumbnails", self)
        self.runner.succeeded.connect(self._on_thumbnails)
        self.evaluator = JobRunner("evaluate-run", self)
        self.evaluator.succeeded.connect(self._on_evaluated)
        self.evaluator.failed.connect(lambda exc, _trace: self.notice.show_text(str(exc), "error"))
        self._action_run: Path | None = None
        self.cell_dialogs: list[CellImagesDialog] = []
        self.heatmaps = HeatmapService("heatmaps", self)
        self._mistakes: dict[str, object] = {}  # path -> evaluation.Misclassified
        # A run picked in the list that could not be loaded (no model): shown by its state.
        self._picked: Path | None = None
        self._picked_reason = ""
        self._build()
        state.runs_changed.connect(self._on_runs_changed)
        state.current_run_changed.connect(self._show_run)
        self._fill_runs()
        self._show_run()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(page_header(
            "Results",
            "Scores on the test images, which training never saw. Precision: when the model says "
            "a class, how often it is right. Recall: of the images of a class, how many it finds. "
            "Click a cell of the confusion matrix to see its images.",
        ))
        row = QHBoxLayout()
        row.addWidget(QLabel("Run:"))
        self.run_choice = QComboBox()
        self.run_choice.setMinimumWidth(420)
        # Names are long (network · data · time · accuracy): the list shows them whole.
        self.run_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.run_choice.currentIndexChanged.connect(self._on_run_chosen)
        row.addWidget(self.run_choice)
        self.headline = QLabel()
        self.headline.setObjectName("resultsHeadline")
        row.addWidget(self.headline, 1)
        layout.addLayout(row)
        self.notice = Banner("info")
        notice_row = QHBoxLayout()
        notice_row.addWidget(self.notice, 1)
        # Resume an interrupted run, or score a stopped run's kept weights on its test images.
        self.run_action = QPushButton()
        self.run_action.hide()
        self.run_action.clicked.connect(self._do_run_action)
        notice_row.addWidget(self.run_action)
        layout.addLayout(notice_row)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        metrics_box = QGroupBox("Per class")
        metrics_layout = QVBoxLayout(metrics_box)
        self.metrics_table = QTableWidget(0, 5)
        self.metrics_table.setHorizontalHeaderLabels(
            ["Class", "Precision", "Recall", "F1", "Test images"])
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.verticalHeader().setVisible(False)
        header = self.metrics_table.horizontalHeader()
        # Every column takes the room its header and cells need, so nothing is cut short (a
        # recall interval cut to "(44%-100…" says nothing); the last one takes what is left.
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        metrics_layout.addWidget(self.metrics_table)
        splitter.addWidget(metrics_box)
        matrix_box = QGroupBox("Confusion matrix (rows: true class, columns: prediction)")
        matrix_layout = QVBoxLayout(matrix_box)
        self.matrix = ConfusionMatrix()
        self.matrix.cell_chosen.connect(self.open_cell)
        matrix_layout.addWidget(self.matrix)
        splitter.addWidget(matrix_box)
        splitter.setSizes([420, 420])

        gallery_box = QWidget()
        gallery_layout = QVBoxLayout(gallery_box)
        gallery_layout.setContentsMargins(0, 0, 0, 0)
        self.gallery_note = QLabel()
        self.gallery_note.setStyleSheet("color:#4b5563;")
        self.gallery_note.setWordWrap(True)
        gallery_layout.addWidget(self.gallery_note)
        self.gallery = ImageGallery(GALLERY_THUMB)
        self.gallery.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.gallery.itemSelectionChanged.connect(self._on_gallery_selection)
        self.gallery.currentItemChanged.connect(self._show_mistake)
        gallery_layout.addWidget(self.gallery)
        leave_row = LeaveOutRow(
            "For images whose label is wrong: the next training run will not use them. "
            "The Data page lists how many are left out and can put them back.")
        self.leave_row = leave_row
        self.leave_out_button, self.left_out_note = leave_row.button, leave_row.note
        self.leave_out_button.clicked.connect(self.leave_out_selected)
        gallery_layout.addLayout(leave_row)

        mistakes = QWidget()
        mistakes_layout = QHBoxLayout(mistakes)
        mistakes_layout.addWidget(gallery_box, 1)
        self.heatmap_panel = HeatmapPanel(
            self.heatmaps, "Click a mistake: the heatmap shows where the model looked.")
        mistakes_layout.addWidget(self.heatmap_panel)
        self.suspects = SuspectsView(self.state)
        self.map_view = EmbeddingMapView(self.state, self.heatmaps)
        self.tabs = QTabWidget()
        self.tabs.addTab(mistakes, "Mistakes, most confident first")
        self.tabs.addTab(self.suspects, "Suspect labels")
        self.tabs.addTab(self.map_view, "Map of all images")
        self.similar = SimilarImagesPanel(self.state)
        self.tabs.addTab(self.similar, "Similar images")
        # Confidence against accuracy: a tab of its own, where the picture has room.
        self.reliability = ReliabilityPicture()
        self.tabs.addTab(self.reliability, "How sure, how right")

        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(splitter)
        vertical.addWidget(self.tabs)
        # The matrix needs the room: at 260 px a 7-class matrix under its header showed 2 rows.
        vertical.setSizes([400, 300])
        layout.addWidget(vertical, 1)

    # -- runs ---------------------------------------------------------------------------------
    def _fill_runs(self) -> None:
        self.run_choice.blockSignals(True)
        self.run_choice.clear()
        for path in reversed(self.state.runs):
            self.run_choice.addItem(run_label(Path(path)), str(path))
        current = self.state.current_run
        shown = current.path if current is not None else self._picked
        if shown is not None:
            self.run_choice.setCurrentIndex(self.run_choice.findData(str(shown)))
        self.run_choice.blockSignals(False)

    def _on_run_chosen(self) -> None:
        path = self.run_choice.currentData()
        current = self.state.current_run
        if not path or (current is not None and str(current.path) == path):
            return
        try:
            loaded = LoadedRun.read(Path(path))
        except UserError as exc:
            # Nothing of the run shown before may stay: the page shows the picked run or says
            # plainly what it lacks.
            self._picked, self._picked_reason = Path(path), str(exc)
            self.state.set_current_run(None)
            return
        self._picked = None
        self.state.set_current_run(loaded)

    # -- the report ---------------------------------------------------------------------------
    def _show_run(self) -> None:
        self._fill_runs()
        run = self.state.current_run
        report = run.report if run else None
        self.metrics_table.setRowCount(0)
        self.matrix.setRowCount(0)
        self.matrix.setColumnCount(0)
        self.gallery.clear()
        self.gallery_note.setText("")
        self.reliability.show_report(None)
        self._mistakes = {}
        self.heatmaps.set_run(run.folder if run is not None else None)
        self.heatmap_panel.clear()
        self.suspects.show_run()
        self.map_view.show_run()
        if run is None:
            self.headline.setText("")
            if self._picked is not None:
                self._explain_unloadable(self._picked)
            else:
                self._explain_no_run()
            return
        self._picked = None
        self.run_action.hide()
        if report is None:
            self._explain_missing_report(run)
            return
        self.notice.show_text(report.rough_note, "info" if report.rough_note else "")
        interval = report.accuracy_interval
        self.headline.setText(
            f"<b>Test accuracy {report.accuracy:.1%}</b> "
            + (f"(95% interval {interval[0]:.1%}-{interval[1]:.1%}) " if interval else "")
            + f"on {report.count:,} images ({len(report.misclassified):,} wrong)")
        self._fill_metrics(report)
        self.matrix.set_matrix(report.classes, report.confusion)
        self.reliability.show_report(report)
        self._fill_gallery(report)

    def _on_runs_changed(self) -> None:
        self._fill_runs()
        # A reopened window lists its runs after the page first drew; the notice must follow.
        if self.state.current_run is None and self._picked is not None:
            self._explain_unloadable(self._picked)
        elif self.state.current_run is None:
            self._explain_no_run()

    def _explain_unloadable(self, run_dir: Path) -> None:
        """A picked run that saved no model: its state, and what can be done about it."""
        state = run_state(run_dir)
        self.headline.setText(f"Status: {STATE_WORDS.get(state, state)}")
        if state == "interrupted":
            self._offer("resume", run_dir, "This run was interrupted before it saved a model. "
                                           "Resume it to continue from its last epoch.")
            return
        self.run_action.hide()
        if state == "running":
            self.notice.show_text("This run is still training; its results appear here when it "
                                  "finishes.", "info")
        else:
            self.notice.show_text(f"No model was saved, so there are no results to show. "
                                  f"{self._picked_reason}", "error")

    def _explain_no_run(self) -> None:
        listed = self.run_choice.currentData()
        if listed and run_state(listed) == "running":
            # A run whose window closed goes on in its own process: say so, not "train one".
            self.notice.show_text(
                "This run is still training in the background; its results appear here "
                "when it finishes.", "info")
        else:
            self.notice.show_text("No results yet: train a model first (step Train).", "info")

    def _explain_missing_report(self, run: LoadedRun) -> None:
        """No test results: say why, and offer what can be done about it."""
        state = run_state(run.path)
        self.headline.setText(f"Status: {STATE_WORDS.get(state, state)}")
        if state == "running":
            self.notice.show_text("This run is still training.", "info")
        elif count_test_images(run.path) == 0:
            self.notice.show_text(
                "This run kept no test images, so it has no test score. Score it on a labelled "
                f"folder: finetune-gui evaluate {run.path} FOLDER", "warning")
        elif state == "interrupted":
            self._offer("resume", run.path, "This run was interrupted before it finished. Resume "
                                            "it to continue from its last epoch.")
        else:
            self._offer("evaluate", run.path, "This run has no test results: it stopped before "
                                              "it was tested. Its best epoch so far was kept and "
                                              "can be scored on the run's test images.")

    def _offer(self, action: str, run_dir: Path, text: str) -> None:
        self.notice.show_text(text, "warning")
        self._action_run = run_dir
        self.run_action.setText("Resume this run" if action == "resume" else EVALUATE_TEXT)
        self.run_action.setEnabled(not self.evaluator.is_running)
        self.run_action.show()

    def _do_run_action(self) -> None:
        run_dir = self._action_run
        if run_dir is None:
            return
        if self.run_action.text() != EVALUATE_TEXT:
            self.state.request_resume(run_dir)
            return
        self.run_action.setEnabled(False)
        self.notice.show_text("Testing the kept weights on the run's test images…", "info")
        self.evaluator.start(engine_jobs.evaluate_test_split, run_dir, separate_process=True,
                             then=lambda _report: LoadedRun.read(run_dir))

    def _on_evaluated(self, loaded: LoadedRun) -> None:
        self.state.set_current_run(loaded)
        self.state.status_changed.emit()

    def _fill_metrics(self, report) -> None:
        rows = [(m.name, m.precision, m.recall, m.f1, m.support) for m in report.per_class]
        rows.append(("average over classes", report.macro_avg["precision"],
                     report.macro_avg["recall"], report.macro_avg["f1"], report.count))
        rows.append(("weighted by class size", report.weighted_avg["precision"],
                     report.weighted_avg["recall"], report.weighted_avg["f1"], report.count))
        for name, precision, recall, f1, support in rows:
            row = self.metrics_table.rowCount()
            self.metrics_table.insertRow(row)
            label = QTableWidgetItem(name)
            if row >= len(report.per_class):
                font = label.font()
                font.setItalic(True)
                label.setFont(font)
            self.metrics_table.setItem(row, 0, label)
            self.metrics_table.setItem(row, 1, _number(precision, percent=True))
            recall_item = _number(recall, percent=True)
            if row < len(report.per_class) and report.per_class[row].recall_interval:
                low, high = report.per_class[row].recall_interval
                recall_item.setText(f"{recall_item.text()} ({low:.0%}-{high:.0%})")
                recall_item.setToolTip("95% interval: the recall on new images of this class "
                                       "is likely inside it, given how few were tested.")
            self.metrics_table.setItem(row, 2, recall_item)
            self.metrics_table.setItem(row, 3, _number(f1))
            count = QTableWidgetItem(str(support))
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.metrics_table.setItem(row, 4, count)
        self._fit_metrics_width()

    def _fit_metrics_width(self) -> None:
        """The table asks for the width of its columns, so the splitter beside the confusion
        matrix leaves it that much rather than a scroll bar over the counts."""
        table = self.metrics_table
        header = table.horizontalHeader()
        columns = sum(max(table.sizeHintForColumn(c), header.sectionSizeHint(c))
                      for c in range(table.columnCount()))
        grid_lines = table.columnCount() if table.showGrid() else 0
        table.setMinimumWidth(columns + grid_lines + 2 * table.frameWidth()
                              + table.verticalScrollBar().sizeHint().width())

    def _fill_gallery(self, report) -> None:
        wrong = report.misclassified[:GALLERY_LIMIT]
        if not wrong:
            self.gallery_note.setText("The model got every test image right.")
            return
        more = len(report.misclassified) - len(wrong)
        self.gallery_note.setText(
            f"{len(report.misclassified)} test images were classified wrongly"
            + (f"; the {len(wrong)} most confident are shown." if more else ".")
            + " High confidence on a wrong answer often means a wrong label.")
        self._mistakes = {str(item.path): item for item in wrong}
        for item in wrong:
            caption = (f"is {item.true_label}\nsaid {item.predicted_label} "
                       f"({item.confidence:.0%})")
            self.gallery.add_image(item.path, caption,
                                   f"{item.path}\ntrue: {item.true_label}, predicted: "
                                   f"{item.predicted_label} with {item.confidence:.1%}")
        self.runner.shutdown()  # a gallery for an earlier run is no longer wanted
        self.runner.start(load_thumbnails, [item.path for item in wrong], GALLERY_THUMB)

    def _on_gallery_selection(self) -> None:
        self.leave_out_button.setEnabled(bool(self.gallery.selectedItems()))

    def _show_mistake(self, item) -> None:
        """The heatmap of the mistake the user clicked last."""
        mistake = self._mistakes.get(item.data(ImageGallery.PATH_ROLE)) if item else None
        if mistake is None:
            self.heatmap_panel.clear()
            return
        self.heatmap_panel.show_image(
            mistake.path,
            f"Labelled <b>{mistake.true_label}</b>; the model said "
            f"<b>{mistake.predicted_label}</b> ({mistake.confidence:.0%} sure).",
            mistake_choices(mistake.true_label, mistake.predicted_label))

    def leave_out_selected(self) -> None:
        """Mark the selected mistakes as left out of the next run (the user thinks their
        label is wrong)."""
        paths = [item.data(ImageGallery.PATH_ROLE) for item in self.gallery.selectedItems()]
        if not paths:
            return
        self.state.exclude(paths)
        self.leave_row.say_left_out(len(paths), len(self.state.excluded))
        self.gallery.clearSelection()

    def _on_thumbnails(self, images) -> None:
        self.gallery.set_images(images)
        self.gallery_filled.emit()

    def open_cell(self, true_index: int, predicted_index: int) -> CellImagesDialog | None:
        """Show the test images behind one cell of the confusion matrix."""
        run = self.state.current_run
        if run is None or run.report is None:
            return None
        report = run.report
        classes = report.classes
        paths = report.files_in_cell(true_index, predicted_index)
        probabilities = {p["path"]: p["probabilities"] for p in report.predictions}
        items = [(path, f"{Path(path).name}\n"
                        f"{probabilities[path][predicted_index]:.0%} sure") for path in paths]
        verdict = "correctly" if true_index == predicted_index else "wrongly"
        title = (f"{counted(len(paths), 'image')} of '{classes[true_index]}' {verdict} called "
                 f"'{classes[predicted_index]}'")
        panel = HeatmapPanel(self.heatmaps, "Click an image: the heatmap shows where the model "
                                            "looked.")
        dialog = CellImagesDialog(title, items, self, side=panel)
        true_label, predicted_label = classes[true_index], classes[predicted_index]

        def show(item) -> None:
            if item is None:
                return
            path = item.data(ImageGallery.PATH_ROLE)
            panel.show_image(
                path, f"Labelled <b>{true_label}</b>; the model said <b>{predicted_label}</b> "
                      f"({probabilities[path][predicted_index]:.0%} sure).",
                mistake_choices(true_label, predicted_label))

        dialog.gallery.currentItemChanged.connect(show)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.heatmap_panel = panel
        dialog.destroyed.connect(lambda *_: self._forget_dialog(dialog))
        dialog.finished.connect(lambda *_: self.heatmaps.forget(panel))
        self.cell_dialogs.append(dialog)
        dialog.show()
        return dialog

    def _forget_dialog(self, dialog: CellImagesDialog) -> None:
        if dialog in self.cell_dialogs:
            self.cell_dialogs.remove(dialog)

    def shutdown(self) -> None:
        self.runner.shutdown()
        self.evaluator.shutdown()
        for dialog in list(self.cell_dialogs):
            dialog.runner.shutdown()
        self.heatmaps.shutdown()
        self.suspects.shutdown()
        self.map_view.shutdown()
        self.similar.shutdown()
