"""Step 1: choose the folder of images, check every file in the background, read what was found."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.data.scan import DatasetScan, scan_folder
from finetune_gui.core.data.split import carved_splits
from finetune_gui.core.errors import DatasetError, UserError
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    ignore_progress,
)
from finetune_gui.core.settings import SETTINGS_INFO
from finetune_gui.core.words import counted_are
from finetune_gui.demo import demo_dataset_dir
from finetune_gui.gui.pages.duplicates import DuplicatesPanel, shown_paths
from finetune_gui.gui.start_folder import IMAGE_FOLDER, start_folder
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import Banner, help_label, page_header
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.similar_images import SimilarImagesPanel
from finetune_gui.gui.widgets.thumbnails import ThumbnailStrip, load_thumbnails
from finetune_gui.gui.worker import JobRunner

THUMB_SIZE = 48
EXAMPLES_SHOWN = 8
LAYOUT_TEXT = {
    "classes": "one subfolder per class",
    "splits": "train/, val/ and test/ folders, each with one subfolder per class",
}


def scan_with_examples(
    root: Path,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> tuple[DatasetScan, dict[str, QImage]]:
    """A job: check every file below `root`, then make thumbnails of each class's examples
    and of the duplicates found."""
    scan = scan_folder(root, progress=progress, cancel=cancel)
    paths = [path for summary in scan.summaries for path in summary.examples[:EXAMPLES_SHOWN]]
    listed = set(paths)
    paths += [path for path in shown_paths(scan.duplicate_groups) if path not in listed]
    return scan, load_thumbnails(paths, THUMB_SIZE, progress=progress, cancel=cancel)


def _percent_box(name: str) -> QDoubleSpinBox:
    """A whole-percent box for the share setting `name`, its range and tip as declared."""
    info = SETTINGS_INFO[name]
    box = QDoubleSpinBox()
    box.setRange(info.low * 100, info.high * 100)
    box.setDecimals(0)
    box.setSuffix(" %")
    box.setToolTip(info.help)
    return box


class DataPage(QWidget):
    """Folder choice (dialog, demo button or drag and drop), background scan, and its findings."""

    scan_finished = Signal()  # for tests and the screenshot mode: the page shows a fresh scan

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.runner = JobRunner("scan", self)
        self._pending_folder: Path | None = None
        self.setAcceptDrops(True)
        self._build()
        self.runner.event.connect(self._on_event)
        self.runner.succeeded.connect(self._on_scanned)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        state.data_dir_changed.connect(self._on_data_dir_changed)
        state.settings_changed.connect(self._show_split)
        state.excluded_changed.connect(self._show_excluded)
        self._show_split()
        self._show_excluded()

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(page_header(
            "Your images",
            "Choose a folder with one subfolder per class (for example cats/ and dogs/), or drop "
            "the folder onto this window. Every file is checked before training, so a broken "
            "image cannot stop training halfway.",
        ))
        row = QHBoxLayout()
        self.folder_label = QLabel("No folder chosen")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setStyleSheet("font-weight:600;")
        self.choose_button = QPushButton("Choose folder…")
        self.choose_button.setToolTip("Pick the folder that holds one subfolder per class.")
        self.choose_button.clicked.connect(self.choose_folder)
        self.demo_button = QPushButton("Use the demo images")
        self.demo_button.setToolTip("Three classes of coloured shapes, 40 images each: trains "
                                    "in under a minute.")
        self.demo_button.clicked.connect(lambda: self.state.set_data_dir(demo_dataset_dir()))
        self.rescan_button = QPushButton("Check again")
        self.rescan_button.setToolTip("Read the folder again after you changed files in it.")
        self.rescan_button.clicked.connect(self.rescan)
        row.addWidget(self.folder_label, 1)
        row.addWidget(self.rescan_button)
        row.addWidget(self.choose_button)
        row.addWidget(self.demo_button)
        layout.addLayout(row)

        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.runner.cancel)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self.progress_box = QWidget()
        self.progress_box.setLayout(progress_row)
        self.progress_box.hide()
        layout.addWidget(self.progress_box)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.refusal = Banner("error")
        self.warnings = Banner("warning")
        layout.addWidget(self.refusal)
        layout.addWidget(self.warnings)

        self.tabs = QTabWidget()
        self.class_table = QTableWidget(0, 4)
        self.class_table.setHorizontalHeaderLabels(["Class", "Images", "Sizes", "Examples"])
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.verticalHeader().setVisible(False)
        header = self.class_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.problem_table = QTableWidget(0, 2)
        self.problem_table.setHorizontalHeaderLabels(["File", "Why it is skipped"])
        self.problem_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problem_table.verticalHeader().setVisible(False)
        self.problem_table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.Stretch)
        self.problem_table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.ResizeToContents)
        self.duplicates = DuplicatesPanel(self.state)
        self.tabs.addTab(self.class_table, "Classes")
        self.tabs.addTab(self.problem_table, "Problem files")
        self.tabs.addTab(self.duplicates, "Duplicates")
        # After a run: the dataset's images nearest to a picked one, as the model sees them.
        self.similar = SimilarImagesPanel(self.state)
        self.tabs.addTab(self.similar, "Similar images")
        layout.addWidget(self.tabs, 1)

        excluded_row = QHBoxLayout()
        self.excluded_note = QLabel()
        self.excluded_note.setWordWrap(True)
        self.put_back_button = QPushButton("Put them back")
        self.put_back_button.setToolTip("Use every image again in the next run.")
        self.put_back_button.clicked.connect(lambda: self.state.set_excluded(()))
        excluded_row.addWidget(self.excluded_note, 1)
        excluded_row.addWidget(self.put_back_button)
        self.excluded_box = QWidget()
        self.excluded_box.setLayout(excluded_row)
        layout.addWidget(self.excluded_box)

        split_row = QHBoxLayout()
        self.val_box = _percent_box("val_fraction")
        self.test_box = _percent_box("test_fraction")
        self.val_box.valueChanged.connect(self._on_fraction_changed)
        self.test_box.valueChanged.connect(self._on_fraction_changed)
        split_row.addWidget(help_label("Set aside for validation:", SETTINGS_INFO["val_fraction"].help))
        split_row.addWidget(self.val_box)
        split_row.addSpacing(16)
        split_row.addWidget(help_label("for the final test:", SETTINGS_INFO["test_fraction"].help))
        split_row.addWidget(self.test_box)
        split_row.addSpacing(16)
        self.split_label = QLabel()
        self.split_label.setWordWrap(True)  # a narrow window wraps the line, never cuts it
        split_row.addWidget(self.split_label, 1)
        layout.addLayout(split_row)

    # -- choosing a folder --------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = start_folder(IMAGE_FOLDER, self.state)
        folder = QFileDialog.getExistingDirectory(self, "Choose the folder of images", start)
        if folder:
            self.state.set_data_dir(Path(folder))

    def rescan(self) -> None:
        if self.state.data_dir is not None:
            self.start_scan(self.state.data_dir)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_folder(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        folder = self._dropped_folder(event.mimeData())
        if folder is not None:
            event.acceptProposedAction()
            self.state.set_data_dir(folder)

    @staticmethod
    def _dropped_folder(mime) -> Path | None:
        for url in mime.urls() if mime.hasUrls() else []:
            path = Path(url.toLocalFile())
            if url.isLocalFile() and path.is_dir():
                return path
        return None

    # -- scanning -----------------------------------------------------------------------------
    def _on_data_dir_changed(self) -> None:
        folder = self.state.data_dir
        self.folder_label.setText(str(folder) if folder else "No folder chosen")
        self._clear_findings()
        if folder is not None:
            self.start_scan(folder)

    def start_scan(self, folder: Path) -> None:
        """Check `folder` in the background (a scan in progress is cancelled first)."""
        if self.runner.is_running:
            self._pending_folder = folder
            self.runner.cancel()
            return
        self._pending_folder = None
        self._clear_findings()
        self.progress.setRange(0, 0)
        self.progress.setFormat("Looking for images…")
        self.progress_box.show()
        self.state.set_scanning(True)
        self.runner.start(scan_with_examples, folder)

    def _on_event(self, event: object) -> None:
        if isinstance(event, StageStarted):
            self.progress.setRange(0, max(1, event.total))
            self.progress.setValue(0)
            label = event.text or event.stage
            self.progress.setFormat(f"{label}: %v of %m")
        elif isinstance(event, StageProgress):
            self.progress.setValue(event.done)

    def _finish_scan(self) -> bool:
        """Common end of a scan; True when another folder is waiting to be scanned."""
        self.progress_box.hide()
        self.state.set_scanning(False)
        if self._pending_folder is not None:
            self.start_scan(self._pending_folder)
            return True
        return False

    def _on_scanned(self, result: tuple[DatasetScan, dict[str, QImage]]) -> None:
        if self._finish_scan():
            return
        scan, thumbnails = result
        self.state.set_scan(scan)
        self._show_scan(scan, thumbnails)
        self.scan_finished.emit()

    def _on_cancelled(self) -> None:
        if not self._finish_scan():
            self.summary.setText("Checking was cancelled. Press “Check again” to start over.")

    def _on_failed(self, exc: BaseException, trace: str) -> None:
        if self._finish_scan():
            return
        if isinstance(exc, UserError):
            self.refusal.show_text(str(exc), "error")
        else:
            show_error(self, exc, trace, "checking the folder")
        self.scan_finished.emit()

    # -- showing the findings -----------------------------------------------------------------
    def _clear_findings(self) -> None:
        self.summary.setText("")
        self.refusal.show_text("")
        self.warnings.show_text("")
        self.class_table.setRowCount(0)
        self.problem_table.setRowCount(0)
        self.tabs.setTabText(1, "Problem files")
        self.duplicates.show_groups([], {})
        self._show_duplicate_count(None)
        self._show_split()

    def _show_scan(self, scan: DatasetScan, thumbnails: dict[str, QImage]) -> None:
        layout = LAYOUT_TEXT.get(scan.layout, scan.layout)
        self.summary.setText(
            f"<b>{len(scan.records):,}</b> usable images in <b>{len(scan.classes)}</b> classes "
            f"(folder layout: {layout})."
        )
        self.refusal.show_text(scan.refusal or "", "error")
        self.warnings.show_text("\n".join(f"• {w}" for w in scan.warnings), "warning")
        self.class_table.setRowCount(0)
        for summary in scan.summaries:
            row = self.class_table.rowCount()
            self.class_table.insertRow(row)
            self.class_table.setItem(row, 0, QTableWidgetItem(summary.name))
            count = QTableWidgetItem(str(summary.count))
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.class_table.setItem(row, 1, count)
            (w0, h0), (w1, h1) = summary.min_size, summary.max_size
            sizes = f"{w0}×{h0}" if (w0, h0) == (w1, h1) else f"{w0}×{h0} to {w1}×{h1}"
            self.class_table.setItem(row, 2, QTableWidgetItem(sizes))
            strip = ThumbnailStrip(THUMB_SIZE)
            strip.set_images([(thumbnails.get(str(p)), p.name)
                              for p in summary.examples[:EXAMPLES_SHOWN]])
            self.class_table.setCellWidget(row, 3, strip)
            self.class_table.setRowHeight(row, THUMB_SIZE + 8)
        self.problem_table.setRowCount(0)
        for problem in scan.problems:
            row = self.problem_table.rowCount()
            self.problem_table.insertRow(row)
            try:
                shown = str(problem.path.relative_to(scan.root))
            except ValueError:
                shown = str(problem.path)
            item = QTableWidgetItem(shown)
            item.setToolTip(str(problem.path))
            self.problem_table.setItem(row, 0, item)
            self.problem_table.setItem(row, 1, QTableWidgetItem(problem.reason))
        self.tabs.setTabText(1, f"Problem files ({len(scan.problems)})")
        self.duplicates.show_groups(scan.duplicate_groups, thumbnails)
        self._show_duplicate_count(scan)
        self._show_split()

    def _show_duplicate_count(self, scan: DatasetScan | None) -> None:
        """The tab's title counts the groups; red when some copy has two different labels."""
        groups = scan.duplicate_groups if scan is not None else []
        self.tabs.setTabText(2, f"Duplicates ({len(groups)})" if scan is not None
                             else "Duplicates")
        conflict = any(group.conflict for group in groups)
        self.tabs.tabBar().setTabTextColor(2, QColor("#b42318") if conflict else QColor())

    def _show_excluded(self) -> None:
        count = len(self.state.excluded)
        self.excluded_box.setVisible(count > 0)
        self.excluded_note.setText(
            f"{counted_are(count, 'image')} left out of the next run (marked as wrongly "
            f"labelled or "
            f"duplicated, here or on the Results page); the files stay in your folder.")
        self._show_split()

    # -- split fractions ----------------------------------------------------------------------
    def _on_fraction_changed(self) -> None:
        error = self.state.update_settings(
            val_fraction=self.val_box.value() / 100, test_fraction=self.test_box.value() / 100
        )
        if error:
            self.split_label.setText(error)

    def _show_split(self) -> None:
        settings = self.state.settings
        scan = self.state.scan
        carved = carved_splits(scan, self.state.excluded) if scan is not None else ("val", "test")
        for name, box, value in (("val", self.val_box, settings.val_fraction),
                                 ("test", self.test_box, settings.test_fraction)):
            box.blockSignals(True)
            box.setValue(round(value * 100))
            box.blockSignals(False)
            # A train/val/test layout uses its own folders as given: a share it would not
            # take is greyed out and says why, instead of seeming to change the split.
            box.setEnabled(name in carved)
            folder = "validation" if name == "val" else "test"
            box.setToolTip(SETTINGS_INFO[f"{name}_fraction"].help if name in carved else
                           f"Not used: your folder has its own {name}/ folder, used as it is "
                           f"for {folder}.")
        if self.state.scan is None or not self.state.scan.can_train:
            self.split_label.setText("")
            return
        try:
            counts = self.state.split().counts()
        except DatasetError as exc:
            self.split_label.setText(str(exc))
            return
        # A greyed-out box shows no tip: the line itself names the folders used as they are.
        given = [f"{name}/" for name in ("val", "test") if name not in carved]
        used = f" ({' and '.join(given)} as {'they are' if len(given) > 1 else 'it is'})" \
            if given else ""
        self.split_label.setText(
            f"→ {counts['train']:,} images to learn from, {counts['val']:,} to validate, "
            f"{counts['test']:,} to test{used}."
        )

    def shutdown(self) -> None:
        self.runner.shutdown()
        self.duplicates.shutdown()
        self.similar.shutdown()
