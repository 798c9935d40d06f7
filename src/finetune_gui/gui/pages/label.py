"""The way in for pictures not sorted yet: a window that labels a folder with the model's help.

First view (`label_start.py`): the folder and the network; the first pass over the pictures
runs in a child process (`jobs/label.py`). Then the labelling view: the pictures asked now in a
grid with their proposed classes (`widgets/label_grid.py`), the classes with their counts, the
estimate of how many proposals are right, "Accept the rest above N% sure", groups of similar
pictures to name (`widgets/label_groups.py`), the output and "Train on these", which opens the
Data step on the output through the shared project state. After each page the head is solved
again on a worker thread (about a second on cached features); the session is saved there too.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.errors import UserError
from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress
from finetune_gui.core.label.asking import asking_text
from finetune_gui.core.label.groups import propose_groups
from finetune_gui.core.label.labeller import PAGE_SIZE, Labeller
from finetune_gui.core.label.names import check_label
from finetune_gui.core.label.proposals import BULK_WHY
from finetune_gui.core.label.session import MODEL, USER
from finetune_gui.core.words import counted
from finetune_gui.gui.pages.label_start import LabelStart
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import Banner
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.job_row import JobStatusRow
from finetune_gui.gui.widgets.label_grid import THUMB, LabelGrid, PictureViewer
from finetune_gui.gui.widgets.label_groups import THUMB as GROUP_THUMB
from finetune_gui.gui.widgets.label_groups import GroupsDialog
from finetune_gui.gui.widgets.thumbnails import load_thumbnail
from finetune_gui.gui.worker import JobRunner
from finetune_gui.jobs import label as label_jobs

GROUPS = 8


# -- jobs on the worker thread (the labeller is not touched by the GUI thread meanwhile) ------
def next_page(labeller: Labeller, answers: dict[int, str | None] | None, threshold=None,
              count_page: bool = True, *, progress: ProgressCallback = ignore_progress,
              cancel: CancelToken | None = None):
    """Record a page's answers (or accept the proposals at or above `threshold`), solve the
    head again and load the next page's thumbnails: (view, images, accepted). Answers on the
    way to something else (accepting the rest, naming groups) do not count as a page."""
    accepted = 0
    if answers is not None:
        labeller.answer_page(answers, page=count_page and threshold is None)
    if threshold is not None:
        accepted = labeller.accept_above(threshold)
    view = labeller.refresh(PAGE_SIZE)
    paths = [labeller.pictures.pictures[row] for row in view.ask]
    return view, {str(p): load_thumbnail(p, THUMB) for p in paths}, accepted


def find_groups(labeller: Labeller, *, progress: ProgressCallback = ignore_progress,
                cancel: CancelToken | None = None):
    """The proposed groups, (number, size, paths shown) each, and the shown thumbnails."""
    groups = propose_groups(labeller.features.features, min(GROUPS, len(labeller.names)))
    listed = [(g.number, g.size, [str(labeller.pictures.pictures[r]) for r in g.shown(6)])
              for g in groups]
    images = {p: load_thumbnail(p, GROUP_THUMB) for _, _, paths in listed for p in paths}
    return listed, images


class LabelWindow(QWidget):
    """Its own window beside the main one; talks to the project only through `state`."""

    train_requested = Signal()  # "Train on these": the state's folder is now the output

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Label pictures — finetune-gui")
        self.state = state
        self.sessions_root = state.runs_root.parent / "labelling"
        self.labeller: Labeller | None = None
        self.output: Path | None = None
        self.last_dialog = None
        self.prepare_runner = JobRunner("label-prepare", self)
        self.page_runner = JobRunner("label-page", self)
        self.groups_runner = JobRunner("label-groups", self)
        self.output_runner = JobRunner("label-output", self)
        self.stack = QStackedWidget()
        self.start_view = LabelStart(state, self.sessions_root, self.prepare_runner)
        self.start_view.start_requested.connect(self.prepare)
        self.stack.addWidget(self.start_view)
        self.stack.addWidget(self._build_labelling())
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack)
        self.prepare_runner.succeeded.connect(self._on_prepared)
        start_row = self.start_view.status_row
        self.prepare_runner.failed.connect(
            lambda e, t: self._failed(e, t, "reading the pictures", start_row))
        self.prepare_runner.cancelled.connect(lambda: self._cancelled(start_row))
        self.page_runner.succeeded.connect(self._on_page)
        self.page_runner.failed.connect(lambda e, t: self._failed(e, t, "updating the "
                                                                  "proposals"))
        self.groups_runner.succeeded.connect(self._on_groups)
        self.groups_runner.failed.connect(
            lambda e, t: self._failed(e, t, "grouping the pictures", self.groups_status))
        self.groups_runner.cancelled.connect(lambda: self._cancelled(self.groups_status))
        self.output_runner.succeeded.connect(self._on_output)
        self.output_runner.failed.connect(
            lambda e, t: self._failed(e, t, "copying the pictures", self.output_status))
        self.output_runner.cancelled.connect(lambda: self._cancelled(self.output_status))
        self.resize(1180, 860)

    # -- building -----------------------------------------------------------------------------
    def _build_labelling(self) -> QWidget:
        view = QWidget()
        layout = QVBoxLayout(view)
        self.asking_line = QLabel(asking_text(proposing=False))
        self.asking_line.setWordWrap(True)
        self.estimate = Banner("info")
        self.keys_line = QLabel("Keys: 1-9 give the framed picture that class, 0 \"none of "
                                "these\", arrows move, Space shows it large, Enter accepts the "
                                "page (a picture not set takes its proposal).")
        self.keys_line.setWordWrap(True)
        self.keys_line.setStyleSheet("color:#4b5563;")
        layout.addWidget(self.asking_line)
        layout.addWidget(self.estimate)
        layout.addWidget(self.keys_line)
        middle = QHBoxLayout()
        self.grid = LabelGrid()
        self.grid.page_accepted.connect(self.accept_page)
        # Each class the user gives is saved at once, so a crash before the page is accepted
        # loses none of them (the proposals left untouched are not the user's until accepted).
        self.grid.changed.connect(self._keep_new_choices)
        self._kept_choices: dict[int, str | None] = {}
        self.grid.open_requested.connect(self.open_large)
        middle.addWidget(self.grid, 1)
        middle.addLayout(self._build_side())
        layout.addLayout(middle, 1)
        bottom = QHBoxLayout()
        self.accept_page_button = QPushButton("Accept this page (Enter)")
        self.accept_page_button.clicked.connect(self.accept_page)
        self.threshold = QSpinBox()
        self.threshold.setRange(50, 100)
        self.threshold.setValue(95)
        self.threshold.setSuffix("% sure")
        self.threshold.valueChanged.connect(self._say_above)
        self.accept_rest_button = QPushButton("Accept the rest above")
        self.accept_rest_button.clicked.connect(self.accept_rest)
        self.above_count = QLabel()
        self.output_button = QPushButton("Copy into class folders…")
        self.output_button.clicked.connect(self.choose_output)
        self.train_button = QPushButton("Train on these")
        self.train_button.setEnabled(False)
        self.train_button.clicked.connect(self.train_on_output)
        bottom.addWidget(self.accept_page_button)
        bottom.addStretch(1)
        bottom.addWidget(self.accept_rest_button)
        bottom.addWidget(self.threshold)
        bottom.addWidget(self.above_count)
        bottom.addStretch(1)
        bottom.addWidget(self.output_button)
        bottom.addWidget(self.train_button)
        layout.addLayout(bottom)
        self.groups_status = JobStatusRow(self.groups_runner, "Grouping…")
        self.output_status = JobStatusRow(self.output_runner, "Writing labels.csv…")
        layout.addWidget(self.groups_status)
        layout.addWidget(self.output_status)
        self.result = QLabel()
        self.result.setWordWrap(True)
        layout.addWidget(self.result)
        return view

    def _build_side(self) -> QVBoxLayout:
        side = QVBoxLayout()
        side.addWidget(QLabel("Classes (click one to give it to the framed picture):"))
        self.class_list = QListWidget()
        self.class_list.setMaximumWidth(300)
        self.class_list.itemClicked.connect(self._class_clicked)
        side.addWidget(self.class_list, 1)
        self.new_class_button = QPushButton("New class…")
        self.new_class_button.clicked.connect(self.ask_new_class)
        self.none_button = QPushButton("None of these (0)")
        self.none_button.clicked.connect(lambda: self.grid.choose(None))
        self.groups_button = QPushButton("Group similar pictures…")
        self.groups_button.clicked.connect(self.find_groups)
        for button in (self.new_class_button, self.none_button, self.groups_button):
            side.addWidget(button)
        self.counts_line = QLabel()
        self.counts_line.setWordWrap(True)
        self.counts_line.setMaximumWidth(300)
        side.addWidget(self.counts_line)
        return side

    # -- the first pass -----------------------------------------------------------------------
    def prepare(self, folder: Path, source, subfolders: bool) -> None:
        """Check the folder and look at every picture, in a child process."""
        if self.prepare_runner.is_running:
            return
        self.start_view.set_busy(True)
        self.prepare_runner.start(label_jobs.prepare, folder, source, subfolders,
                                  separate_process=True)

    def _on_prepared(self, found) -> None:
        pictures, features = found
        self.start_view.set_busy(False)
        try:
            self.labeller = Labeller.start(pictures, features, self.start_view.source(),
                                           self.sessions_root)
        except UserError as exc:
            self._failed(exc, "", "opening the labelling session")
            return
        self.output = None
        self.train_button.setEnabled(False)
        self.result.setText(pictures.summary() + self._problems_text(pictures))
        self.stack.setCurrentIndex(1)
        self._run_page(None)

    @staticmethod
    def _problems_text(pictures) -> str:
        if not pictures.problems:
            return ""
        shown = "; ".join(f"{p.path.name}: {p.reason}" for p in pictures.problems[:5])
        more = "…" if len(pictures.problems) > 5 else ""
        return f" Not used: {shown}{more}"

    # -- pages --------------------------------------------------------------------------------
    def _run_page(self, answers, threshold=None, count_page: bool = True) -> None:
        if self.labeller is None or self.page_runner.is_running:
            return
        self._set_waiting(True)
        self.page_runner.start(next_page, self.labeller, answers, threshold, count_page)

    def _set_waiting(self, waiting: bool) -> None:
        for widget in (self.grid, self.accept_page_button, self.accept_rest_button,
                       self.groups_button, self.new_class_button, self.none_button,
                       self.output_button, self.class_list):
            widget.setEnabled(not waiting)
        if waiting:
            self.estimate.show_text("Updating the proposals…", "info")

    def accept_page(self) -> None:
        """Enter: every picture on the page takes its chosen class, else its proposal."""
        if self.labeller is not None and not self.page_runner.is_running:
            self._run_page(self.grid.answers())

    def accept_rest(self) -> None:
        """Take every proposal at or above the threshold as the model's decision."""
        self._run_page(self.grid.chosen(), self.threshold.value() / 100)

    def _on_page(self, found) -> None:
        view, images, accepted = found
        labeller = self.labeller
        self._set_waiting(False)
        proposals = view.proposals
        rows = view.ask
        proposed = [(proposals.label(r), proposals.probability(r)) if proposals.available
                    else None for r in rows]
        self.grid.set_page(rows, [str(labeller.pictures.pictures[r]) for r in rows], proposed,
                           labeller.session.classes)
        self.grid.set_images(images)
        self._refresh_classes()
        self.asking_line.setText(asking_text(proposals.available))
        text = view.estimate_text
        if accepted:
            text = f"{counted(accepted, 'proposal')} accepted. " + text
        if not rows:
            text += " Every picture has a class or was left out: copy them out."
        self.estimate.show_text(text, "info")
        self._say_above()

    def _refresh_classes(self) -> None:
        """The class list (one row per class) and the grid's keys, then their counts."""
        session = self.labeller.session
        self.class_list.clear()
        for name in session.classes:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.class_list.addItem(item)
        self.grid.set_classes(session.classes)
        self._refresh_counts()

    def _refresh_counts(self) -> None:
        """Each class's pictures and what is left to decide, as the session has them now (a
        choice on the page counts at once, as it is saved at once)."""
        session = self.labeller.session
        counts = session.counts()
        for number in range(1, self.class_list.count() + 1):
            item = self.class_list.item(number - 1)
            name = item.data(Qt.ItemDataRole.UserRole)
            c = counts.get(name, {USER: 0, MODEL: 0})
            key = f"{number}  " if number <= 9 else "    "
            item.setText(f"{key}{name}   ({c[USER]} yours, {c[MODEL]} accepted)")
        left_out = sum(1 for d in session.decisions.values() if d.label is None)
        undecided = counted(self.labeller.undecided(), 'picture')
        self.counts_line.setText(f"{undecided} still to decide; "
                                 f"{left_out} left out.")

    def _say_above(self) -> None:
        if self.page_runner.is_running:
            return  # the worker thread is changing the decisions; said again when it is done
        view = self.labeller.view if self.labeller else None
        count = 0
        if view is not None and view.proposals.available:
            top = view.proposals.top()
            count = int((~self.labeller.decided() & (top >= self.threshold.value() / 100)).sum())
        refusal = view.proposals.bulk_refusal() if view is not None else ""
        self.above_count.setText(counted(count, "proposal") + (f"; {refusal}" if refusal and count
                                                           else ""))
        self.accept_rest_button.setToolTip(BULK_WHY if refusal else "")
        self.accept_rest_button.setEnabled(count > 0 and not refusal
                                           and not self.page_runner.is_running)

    # -- classes ------------------------------------------------------------------------------
    def _class_clicked(self, item: QListWidgetItem) -> None:
        self.grid.choose(item.data(Qt.ItemDataRole.UserRole))
        self.grid.setFocus()

    def ask_new_class(self) -> None:
        name, ok = QInputDialog.getText(self, "New class", "Name of the new class:")
        if ok and name:
            self.add_class(name)

    def add_class(self, name: str) -> bool:
        """Add a class and give it to the framed picture; a name a folder cannot have is
        refused in one sentence."""
        try:
            name = self.labeller.session.add_class(name)
        except UserError as exc:
            self.estimate.show_text(str(exc), "error")
            return False
        self._refresh_classes()
        self.grid.choose(name)
        return True

    # -- groups -------------------------------------------------------------------------------
    def find_groups(self) -> None:
        if self.labeller is None or self.groups_runner.is_running:
            return
        self.groups_status.set_busy(True)
        self.groups_runner.start(find_groups, self.labeller)

    def _on_groups(self, found) -> None:
        self.groups_status.set_busy(False)
        groups, images = found
        dialog = GroupsDialog(groups, images, self.labeller.session.classes, self)
        dialog.accepted.connect(lambda: self.name_groups(dialog.names()))
        dialog.open()
        self.last_dialog = dialog

    def name_groups(self, named: dict[str, list[str]]) -> None:
        """Each name's pictures get it (as the user's labels); then the proposals follow."""
        try:
            for name in named:
                check_label(name)
        except UserError as exc:
            self.estimate.show_text(str(exc), "error")
            return
        answers = {}
        row_of = {str(p): row for row, p in enumerate(self.labeller.pictures.pictures)}
        for name, paths in named.items():
            self.labeller.session.add_class(name)
            answers.update({row_of[p]: name for p in paths})
        answers.update(self.grid.chosen())
        self._run_page(answers, count_page=False)

    # -- output -------------------------------------------------------------------------------
    def choose_output(self) -> None:
        start = str(self.labeller.pictures.root.parent) if self.labeller else ""
        folder = QFileDialog.getExistingDirectory(self, "Copy into (a new or empty folder)",
                                                  start)
        if folder:
            self.write_output(Path(folder))

    def write_output(self, out: Path) -> None:
        """Copy the decided pictures into `out`/<class>/ with labels.csv, on a worker thread."""
        if self.labeller is None or self.output_runner.is_running:
            return
        self._record_choices()
        self.output_status.set_busy(True)
        self.output_runner.start(self.labeller.write_output, out)

    def _on_output(self, summary) -> None:
        self.output_status.set_busy(False)
        self.output = summary.out
        self.result.setText(summary.text().replace("\n", "<br>"))
        self.train_button.setEnabled(summary.total > 0)

    def train_on_output(self) -> None:
        """Open the Data step on the output (through the shared state)."""
        if self.output is not None:
            self.state.set_data_dir(self.output)
            self.train_requested.emit()

    # -- the rest -----------------------------------------------------------------------------
    def open_large(self, path: str) -> None:
        index = self.grid.paths.index(path) if path in self.grid.paths else 0
        caption = self.grid.caption(index) if self.grid.paths else ""
        viewer = PictureViewer(path, caption, self)
        viewer.open()
        self.last_dialog = viewer

    def _keep_new_choices(self) -> None:
        """Save the page's choices when one changed (`changed` also fires on moving around)."""
        chosen = self.grid.chosen()
        if chosen != self._kept_choices:
            with contextlib.suppress(UserError):  # a session that cannot be written: said on accept
                self._record_choices()
            self._kept_choices = chosen
            if self.labeller is not None and not self.page_runner.is_running:
                self._refresh_counts()

    def _record_choices(self) -> None:
        """The choices made on the page on screen, kept in the session (saved)."""
        if self.labeller is None or self.page_runner.is_running:
            return
        self.labeller.answer_page(self.grid.chosen(), page=False)

    def _cancelled(self, row: JobStatusRow) -> None:
        if row is self.start_view.status_row:
            self.start_view.set_busy(False)
        row.stopped("Cancelled.")

    def _failed(self, exc: BaseException, trace: str, doing: str,
                row: JobStatusRow | None = None) -> None:
        self.start_view.set_busy(False)
        self.groups_status.set_busy(False)
        self.output_status.set_busy(False)
        if row is not None:
            row.stopped(f"Stopped while {doing}: the message says why.")
        self._set_waiting(False)
        if self.labeller is not None and self.labeller.view is not None:
            self.estimate.show_text(self.labeller.view.estimate_text, "info")
        self.last_dialog = show_error(self, exc, trace, doing)

    def shutdown(self) -> None:
        """Keep the page's choices, stop every job (the main window calls this on close)."""
        with contextlib.suppress(UserError):  # a session that cannot be written: said before
            self._record_choices()
        for runner in (self.prepare_runner, self.page_runner, self.groups_runner,
                       self.output_runner):
            runner.shutdown()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)
