"""The Data page's Duplicates tab: each group of copies the scan found, what it means, and a way
to leave a wrongly labelled copy out of the next run (the folder itself is never changed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.data.duplicates import DuplicateGroup
from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.thumbnails import load_thumbnail, to_pixmap
from finetune_gui.gui.worker import JobRunner

VERDICT_WIDTH = 330
THUMB_SIZE = 56
PREVIEW_SIZE = 260
MAX_GROUPS_SHOWN = 200  # conflicts and leaks come first, so the ones that matter are shown
MAX_FILES_SHOWN = 8  # per group; a folder of blank images can make one group of hundreds
# Rows are added this many per turn of the event loop: 200 groups of 10 files took 0.4 s to
# build at once, a visible freeze; 25 rows take about 40 ms.
ROWS_PER_TURN = 25
SPLIT_ORDER = ("train", "val", "test")
COUNT_WORDS = {2: "two", 3: "three", 4: "four"}
TIMES_WORDS = {2: "twice", 3: "three times", 4: "four times"}
SEVERITY_COLOURS = {"conflict": "#b42318", "leak": "#b54708", "harmless": "#4b5563"}


def severity(group: DuplicateGroup) -> str:
    """'conflict', 'leak' or 'harmless': how much the group matters for training."""
    if group.conflict:
        return "conflict"
    return "leak" if group.leak else "harmless"


def group_verdict(group: DuplicateGroup) -> str:
    """One plain sentence: what this group of copies means, and what to do about it."""
    if group.conflict:
        count = len(set(group.labels))
        return (f"Same picture in {COUNT_WORDS.get(count, count)} classes: one label is wrong. "
                f"Leave the wrongly labelled copy out.")
    if group.leak:
        splits = [s for s in SPLIT_ORDER if s in group.splits]
        if "train" in splits:
            return (f"Same picture in {' and '.join(splits)}: the model is tested on a picture "
                    f"it learned from, so its score looks better than it is. Leave one copy out.")
        return (f"Same picture in {' and '.join(splits)}: the test is not fully independent. "
                f"Leave one copy out.")
    times = len(group.paths)
    return (f"Same picture {TIMES_WORDS.get(times, f'{times} times')} in one class: harmless, "
            f"the copies stay together in one split.")


def group_details(group: DuplicateGroup) -> str:
    """The facts behind the verdict: kind of copy, classes and splits involved."""
    kind = ("exact copies (identical files)" if group.kind == "exact"
            else "the same picture, resized or re-saved")
    classes = sorted(set(group.labels))
    parts = [kind, ("class " if len(classes) == 1 else "classes ") + ", ".join(classes)]
    splits = [s for s in SPLIT_ORDER if s in group.splits]
    if splits:
        parts.append(("folder " if len(splits) == 1 else "folders ") + ", ".join(splits))
    return " · ".join(parts)


def file_caption(group: DuplicateGroup, index: int) -> str:
    """Where one copy is filed: its class, with its split folder when the folder has splits."""
    split, label = group.splits[index], group.labels[index]
    return f"{split}/{label}" if split else label


def shown_paths(groups: Sequence[DuplicateGroup]) -> list[Path]:
    """The files whose thumbnails the tab shows (for the scan job to load)."""
    return [path for group in groups[:MAX_GROUPS_SHOWN] for path in group.paths[:MAX_FILES_SHOWN]]


def load_preview(path: Path, *, progress: ProgressCallback = ignore_progress,
                 cancel: CancelToken | None = None) -> tuple[Path, QImage]:
    """A job: one picture at preview size (a photo can take a moment to decode); small images
    are enlarged so that a 32 px picture can still be looked at."""
    image = load_thumbnail(path, PREVIEW_SIZE)
    if not image.isNull() and max(image.width(), image.height()) < PREVIEW_SIZE:
        image = image.scaled(PREVIEW_SIZE, PREVIEW_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return path, image


class DuplicatesPanel(QWidget):
    """A table of duplicate groups (most serious first) and, beside it, the chosen file."""

    preview_shown = Signal()  # for tests: the big picture of the chosen file is in place

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.groups: list[DuplicateGroup] = []
        self.total_groups = 0
        self.buttons: list[list[QToolButton]] = []
        self.chosen: tuple[int, int] | None = None  # (group row, file index)
        self._thumbnails: dict[str, QImage] = {}
        self._pending_preview: Path | None = None
        self._filling = 0  # generation of the fill in progress; a new scan abandons the old one
        self.preview_runner = JobRunner("duplicate-preview", self)
        self.preview_runner.succeeded.connect(self._on_preview)
        self.preview_runner.failed.connect(lambda *_: self._start_pending_preview())
        self._build()
        state.excluded_changed.connect(self._show_excluded)
        self.show_groups([], {})

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.intro.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.intro)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["What was found", "Copies (click one)"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        # The verdict wraps in a column of its own width; the copies take the rest. (Stretching
        # the verdict instead pushed the pictures out of sight, behind a horizontal scroll.)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, VERDICT_WIDTH)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self._build_detail())
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setSizes([600, PREVIEW_SIZE + 40])
        layout.addWidget(self.splitter, 1)
        self.button_group = QButtonGroup(self)
        self.button_group.setExclusive(True)

    def _build_detail(self) -> QWidget:
        box = QWidget()
        box.setMinimumWidth(PREVIEW_SIZE + 20)
        detail = QVBoxLayout(box)
        detail.setContentsMargins(8, 0, 0, 0)
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background:#f3f4f6; border:1px solid #d1d5db; color:#6b7280;")
        self.preview.setWordWrap(True)
        self.path_label = QLabel()
        self.path_label.setWordWrap(True)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.where_label = QLabel()
        self.where_label.setWordWrap(True)
        self.exclude_button = QPushButton()
        self.exclude_button.clicked.connect(self._toggle_excluded)
        detail.addWidget(self.preview)
        detail.addWidget(self.path_label)
        detail.addWidget(self.where_label)
        detail.addWidget(self.exclude_button)
        detail.addStretch(1)
        return box

    # -- filling ------------------------------------------------------------------------------
    def show_groups(self, groups: Sequence[DuplicateGroup], thumbnails: dict[str, QImage]) -> None:
        """Show the scan's groups (in the core's order: conflicts, leaks, plain copies)."""
        self.total_groups = len(groups)
        self.groups = list(groups[:MAX_GROUPS_SHOWN])
        self._thumbnails = dict(thumbnails)
        for button in self.button_group.buttons():
            self.button_group.removeButton(button)
        self.buttons = []
        self.chosen = None
        self.table.setRowCount(0)
        self.splitter.setVisible(bool(self.groups))
        self.intro.setText(self._intro_text())
        self._show_chosen()
        self._filling += 1
        self._add_rows(self._filling)

    def _add_rows(self, generation: int) -> None:
        """Add the next few rows; the rest follow on the next turns of the event loop."""
        if generation != self._filling:
            return
        start = self.table.rowCount()
        for row in range(start, min(start + ROWS_PER_TURN, len(self.groups))):
            group = self.groups[row]
            self.table.insertRow(row)
            self.table.setCellWidget(row, 0, self._verdict_label(group))
            self.table.setCellWidget(row, 1, self._file_strip(row, group))
            self.table.setRowHeight(row, THUMB_SIZE + 34)
        if self.table.rowCount() < len(self.groups):
            QTimer.singleShot(0, lambda: self._add_rows(generation))

    def _intro_text(self) -> str:
        if not self.groups:
            return ("<span style='color:#1d4d2b'>✔ No duplicates: every picture in the folder "
                    "appears only once.</span>")
        more = (f" Showing the first {len(self.groups)} of {self.total_groups} groups."
                if self.total_groups > len(self.groups) else "")
        return ("The same picture was found more than once, most serious first. Click a copy "
                "to see it bigger; leave a wrongly labelled copy out of the next run (your "
                f"folder is not changed).{more}")

    def _verdict_label(self, group: DuplicateGroup) -> QLabel:
        colour = SEVERITY_COLOURS[severity(group)]
        weight = "normal" if severity(group) == "harmless" else "bold"
        label = QLabel(f"<span style='color:{colour}; font-weight:{weight}'>"
                       f"{group_verdict(group)}</span><br>"
                       f"<span style='color:#4b5563'>{group_details(group)}</span>")
        label.setWordWrap(True)
        label.setContentsMargins(6, 2, 6, 2)
        return label

    def _file_strip(self, row: int, group: DuplicateGroup) -> QWidget:
        strip = QWidget()
        layout = QHBoxLayout(strip)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(4)
        buttons = []
        for index, path in enumerate(group.paths[:MAX_FILES_SHOWN]):
            button = QToolButton()
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
            button.setIcon(QIcon(self._thumbnail(path)))
            button.setProperty("path", str(path))
            button.setToolTip(str(path))
            button.clicked.connect(lambda _checked=False, r=row, i=index: self.choose(r, i))
            self.button_group.addButton(button)
            layout.addWidget(button)
            buttons.append(button)
        if len(group.paths) > MAX_FILES_SHOWN:
            more = QLabel(f"and {len(group.paths) - MAX_FILES_SHOWN} more")
            more.setToolTip("\n".join(str(p) for p in group.paths[MAX_FILES_SHOWN:]))
            layout.addWidget(more)
        self.buttons.append(buttons)
        self._caption_buttons(row)
        return strip

    def _thumbnail(self, path: Path) -> QPixmap:
        return to_pixmap(self._thumbnails.get(str(path)), THUMB_SIZE, path).scaled(
            THUMB_SIZE, THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation)

    def _caption_buttons(self, row: int) -> None:
        group = self.groups[row]
        for index, button in enumerate(self.buttons[row]):
            left_out = group.paths[index] in self.state.excluded
            button.setText(file_caption(group, index) + ("\n(left out)" if left_out else ""))
            button.setStyleSheet("QToolButton { color:#9ca3af; }" if left_out else "")

    # -- the chosen file ----------------------------------------------------------------------
    def choose(self, row: int, index: int) -> None:
        """Show copy `index` of group `row` bigger, with its path and where it is filed."""
        self.chosen = (row, index)
        self.buttons[row][index].setChecked(True)
        self._show_chosen()
        path = self.groups[row].paths[index]
        self.preview.setPixmap(self._thumbnail(path).scaled(
            PREVIEW_SIZE, PREVIEW_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))  # sharp once the file is read
        if self.preview_runner.is_running:
            self._pending_preview = path
        else:
            self.preview_runner.start(load_preview, path)

    def chosen_path(self) -> Path | None:
        if self.chosen is None:
            return None
        row, index = self.chosen
        return self.groups[row].paths[index]

    def _on_preview(self, result: tuple[Path, QImage]) -> None:
        path, image = result
        if self._start_pending_preview():
            return  # the user clicked another copy meanwhile
        if path == self.chosen_path():
            self.preview.setPixmap(to_pixmap(image, PREVIEW_SIZE, path))
            self.preview_shown.emit()

    def _start_pending_preview(self) -> bool:
        if self._pending_preview is None:
            return False
        pending, self._pending_preview = self._pending_preview, None
        self.preview_runner.start(load_preview, pending)
        return True

    def _show_chosen(self) -> None:
        path = self.chosen_path()
        self.exclude_button.setVisible(path is not None)
        if path is None:
            self.preview.clear()
            self.preview.setText("Click a copy on the left to see it bigger.")
            self.path_label.setText("")
            self.where_label.setText("")
            return
        row, index = self.chosen
        group = self.groups[row]
        self.path_label.setText(str(path))
        left_out = path in self.state.excluded
        self.where_label.setText(
            f"Filed under <b>{file_caption(group, index)}</b>."
            + (" <b>Left out of the next run.</b>" if left_out else ""))
        self.exclude_button.setText("Put it back into the next run" if left_out
                                    else "Leave this copy out of the next run")
        self.exclude_button.setToolTip(
            "Use this image again when training." if left_out else
            "The next run does not use this image. The file stays where it is; the project "
            "remembers the choice.")

    def _toggle_excluded(self) -> None:
        path = self.chosen_path()
        if path is None:
            return
        if path in self.state.excluded:
            self.state.set_excluded(self.state.excluded - {path})
        else:
            self.state.exclude([path])

    def _show_excluded(self) -> None:
        for row in range(len(self.buttons)):
            self._caption_buttons(row)
        self._show_chosen()

    def shutdown(self) -> None:
        self.preview_runner.shutdown()
