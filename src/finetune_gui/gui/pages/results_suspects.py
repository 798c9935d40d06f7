"""Results tab "Suspect labels": images whose label the model contradicts, to check and leave out.

The search reads every image of the run through the model, so it runs in a child process
(`insight_jobs.suspect_labels`) with progress and cancel. The list is the one the map's crosses
and `finetune-gui suspects` show, surest first; a page of PAGE rows at a time, "Show more" adds
the next. Leaving an image out only adds it to the project's excluded set: the user's folder is
never written.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.words import counted
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import Banner, LeaveOutRow
from finetune_gui.gui.widgets.error_dialog import describe_failure
from finetune_gui.gui.widgets.job_row import JobStatusRow
from finetune_gui.gui.widgets.thumbnails import load_thumbnails, to_pixmap
from finetune_gui.gui.worker import JobRunner
from finetune_gui.jobs import insight as insight_jobs
from finetune_gui.jobs.child_process import JobProcessDied

THUMB = 56
PAGE = 20  # rows shown at first, and added by each "Show more"
COLUMNS = ["", "Image", "Labelled as", "Looks like", "Sure it is wrong", "Used for"]
USED_FOR = {"train": "training", "val": "validation", "test": "testing"}
LEFT_OUT = QColor("#9ca3af")


def plain_failure(exc: BaseException, trace: str, doing: str) -> str:
    """The sentence to show for a failed insight job (never a traceback)."""
    if isinstance(exc, JobProcessDied):
        return (f"The background process stopped while {doing} (often: the computer ran out of "
                f"memory). Close other programs and try again; the log file has details.")
    message, _, _ = describe_failure(exc, trace, doing)
    return message


def _cell(text: str, right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class SuspectsView(QWidget):
    """Find, list and leave out images that look mislabelled."""

    finished = Signal(str)  # "ok", "cancelled" or "failed"

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.search: insight_jobs.SuspectSearch | None = None
        self._excluded: frozenset = frozenset()  # the images left out when the search started
        self._thumbs_asked: set[str] = set()
        self.runner = JobRunner("suspect-labels", self)
        self.runner.succeeded.connect(self._on_found)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.failed.connect(self._on_failed)
        self.thumb_runner = JobRunner("suspect-thumbnails", self)
        self.thumb_runner.succeeded.connect(self._on_thumbnails)
        self._build()
        state.excluded_changed.connect(self._grey_left_out)
        state.suspects_found.connect(self._on_known)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Images the model, judging each as if it had never seen it, gives to another class "
            "than their label, surest first: often a labelling mistake. Look at each; select "
            "the wrong ones and leave them out of the next run (your image folder is not "
            "changed). The map's crosses are these same images.")
        intro.setWordWrap(True)
        intro.setStyleSheet("color:#4b5563;")
        layout.addWidget(intro)
        row = QHBoxLayout()
        self.find_button = QPushButton("Look for wrong labels")
        self.find_button.setObjectName("primaryButton")
        self.find_button.setToolTip("Reads every image of this run with its model (takes a "
                                    "while for a big folder).")
        self.find_button.clicked.connect(self.find)
        self.job_row = JobStatusRow(self.runner, "Comparing each label with what the model sees…")
        self.cancel_button = self.job_row.cancel_button
        self.progress = self.job_row.progress
        self.status = self.job_row.status
        row.addWidget(self.find_button)
        row.addWidget(self.job_row, 1)
        layout.addLayout(row)
        self.saw_labels_note = Banner("warning")
        layout.addWidget(self.saw_labels_note)
        self.problem = Banner("error")
        layout.addWidget(self.problem)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(0, THUMB + 8)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column in range(2, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._on_selection)
        layout.addWidget(self.table, 1)
        more_row = QHBoxLayout()
        self.shown_note = QLabel()
        self.shown_note.setStyleSheet("color:#4b5563;")
        self.more_button = QPushButton()
        self.more_button.setToolTip("The next suspects in order: each less sure than the last.")
        self.more_button.clicked.connect(self.show_more)
        self.more_button.hide()
        more_row.addWidget(self.shown_note, 1)
        more_row.addWidget(self.more_button)
        layout.addLayout(more_row)
        leave_row = LeaveOutRow(
            "The project remembers them; the next training run does not use them. The Data "
            "page lists them and can put them back. No file is moved or changed.")
        self.leave_row = leave_row
        self.leave_out_button, self.left_out_note = leave_row.button, leave_row.note
        self.leave_out_button.clicked.connect(self.leave_out_selected)
        layout.addLayout(leave_row)
        self.show_run()

    # -- the run ------------------------------------------------------------------------------
    def show_run(self) -> None:
        """Forget what was found for another run; offer to search this one."""
        if self.runner.is_running:
            self.runner.cancel()
        self.thumb_runner.shutdown()
        self.search = None
        self._clear_table()
        self.saw_labels_note.show_text("")
        self.problem.show_text("")
        self.left_out_note.setText("")
        run = self.state.current_run
        self.find_button.setEnabled(run is not None and not self.runner.is_running)
        self.status.setText("" if run is None else
                            "Press the button to check this run's labels.")

    # -- the search ---------------------------------------------------------------------------
    def find(self) -> None:
        """Start the search on the current run (in a child process)."""
        run = self.state.current_run
        if run is None or self.runner.is_running:
            return
        self._clear_table()
        self.problem.show_text("")
        self.saw_labels_note.show_text("")
        self.left_out_note.setText("")
        known = self.state.known_suspects(run.path)
        if known is not None:  # the map found them, with the same images left out
            self._on_found(known)
            return
        self._set_busy(True)
        self.status.setText("Starting…")
        self._excluded = frozenset(self.state.excluded)
        self.runner.start(insight_jobs.suspect_labels, run.path, self._excluded,
                          separate_process=True)

    def _on_known(self, search: insight_jobs.SuspectSearch) -> None:
        """The map found this run's suspects: list them here too, unless a list is shown."""
        run = self.state.current_run
        if (self.search is None and not self.runner.is_running and run is not None
                and run.path == search.run_path
                and self.state.known_suspects(run.path) is search):
            self._on_found(search)

    def cancel(self) -> None:
        self.job_row.cancel()

    def _set_busy(self, busy: bool) -> None:
        self.find_button.setEnabled(not busy and self.state.current_run is not None)
        self.job_row.set_busy(busy)

    def _on_found(self, search: insight_jobs.SuspectSearch) -> None:
        self._set_busy(False)
        run = self.state.current_run
        if run is None or run.path != search.run_path:
            self.show_run()  # the user chose another run meanwhile
            self.finished.emit("cancelled")
            return
        self.search = search
        if self.state.known_suspects(run.path) is None and self._excluded == frozenset(
                self.state.excluded):
            self.state.remember_suspects(self._excluded, search)
        found = search.suspects
        if found:
            # Not "are mislabelled": on a correctly labelled folder the same list holds the
            # images the model cannot tell apart yet (seen on real icons), and only the user can
            # say which it is.
            self.status.setText(
                f"{counted(len(found), 'suspect label')} among {search.images} images, "
                f"surest first. "
                f"Each: a wrong label, or a picture the model cannot tell apart yet. Look.")
        else:
            self.status.setText(f"No suspect labels among {search.images} images.")
        if search.saw_labels:
            self.saw_labels_note.show_text(
                "This run trained the network's own layers on these labels (from scratch, or "
                "with blocks unfrozen), so it may have learned some wrong labels by heart: "
                "fewer mistakes among the training images can be found. A run that only trains "
                "the last layer on pretrained weights finds more.")
        self._clear_table()
        self.show_more()
        self.finished.emit("ok")

    def _clear_table(self) -> None:
        self.table.setRowCount(0)
        self._thumbs_asked = set()
        self.more_button.hide()
        self.shown_note.setText("")

    def show_more(self) -> None:
        """Add the next PAGE suspects (the first PAGE after a search) to the table."""
        found = self.search.suspects if self.search is not None else []
        shown = self.table.rowCount()
        self._add_rows(found[shown:shown + PAGE])
        shown = self.table.rowCount()
        left = len(found) - shown
        self.more_button.setVisible(left > 0)
        self.more_button.setText(f"Show {min(PAGE, left)} more")
        self.shown_note.setText(f"Showing the {shown} surest of {len(found)}." if left > 0
                                else "")
        self._load_thumbnails()

    def _add_rows(self, found: list) -> None:
        for suspect in found:
            row = self.table.rowCount()
            self.table.insertRow(row)
            picture = QLabel()
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.table.setCellWidget(row, 0, picture)
            name = _cell(suspect.path.name)
            name.setData(Qt.ItemDataRole.UserRole, str(suspect.path))
            name.setToolTip(str(suspect.path))
            self.table.setItem(row, 1, name)
            self.table.setItem(row, 2, _cell(suspect.given_label))
            suggested = _cell(suspect.suggested_label)
            font = suggested.font()
            font.setBold(True)
            suggested.setFont(font)
            self.table.setItem(row, 3, suggested)
            self.table.setItem(row, 4, _cell(f"{suspect.sureness:.0%}", right=True))
            self.table.setItem(row, 5, _cell(USED_FOR.get(suspect.split, suspect.split)))
            self.table.setRowHeight(row, THUMB + 6)
        self._grey_left_out()

    def _load_thumbnails(self) -> None:
        """Thumbnails for the rows shown that have none yet (one job at a time)."""
        missing = [str(p) for p in self.paths() if str(p) not in self._thumbs_asked]
        if missing and not self.thumb_runner.is_running:
            self._thumbs_asked.update(missing)
            self.thumb_runner.start(load_thumbnails, missing, THUMB)

    def _on_thumbnails(self, images) -> None:
        for row in range(self.table.rowCount()):
            path = self.table.item(row, 1).data(Qt.ItemDataRole.UserRole)
            image = images.get(path)
            label = self.table.cellWidget(row, 0)
            if label is not None and image is not None:
                label.setPixmap(QPixmap(to_pixmap(image, THUMB, path)).scaled(
                    THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation))
        self._load_thumbnails()  # rows "Show more" added while these were made

    def _on_cancelled(self) -> None:
        self._set_busy(False)
        self.status.setText("Stopped; nothing was changed.")
        self.finished.emit("cancelled")

    def _on_failed(self, exc: BaseException, trace: str) -> None:
        self._set_busy(False)
        self.status.setText("")
        self.problem.show_text(plain_failure(exc, trace, "looking for wrong labels"), "error")
        self.finished.emit("failed")

    # -- leaving images out -------------------------------------------------------------------
    def paths(self) -> list[Path]:
        """The images shown in the table, surest first."""
        return [Path(self.table.item(row, 1).data(Qt.ItemDataRole.UserRole))
                for row in range(self.table.rowCount())]

    def _selected_paths(self) -> list[Path]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.paths()[row] for row in rows]

    def _on_selection(self) -> None:
        self.leave_out_button.setEnabled(bool(self.table.selectionModel().selectedRows()))

    def leave_out_selected(self) -> None:
        """The selected images will not be used by the next run (the folder stays as it is)."""
        paths = self._selected_paths()
        if not paths:
            return
        self.state.exclude(paths)
        self.leave_row.say_left_out(len(paths), len(self.state.excluded),
                                    "Train again (step Train) to see the effect.")
        self.table.clearSelection()

    def _grey_left_out(self) -> None:
        excluded = self.state.excluded
        for row, path in enumerate(self.paths()):
            left_out = path in excluded
            for column in range(1, len(COLUMNS)):
                item = self.table.item(row, column)
                item.setData(Qt.ItemDataRole.ForegroundRole,
                             QBrush(LEFT_OUT) if left_out else None)
            name = self.table.item(row, 1)
            name.setText(f"{path.name}  (left out)" if left_out else path.name)

    def shutdown(self) -> None:
        self.runner.shutdown()
        self.thumb_runner.shutdown()
