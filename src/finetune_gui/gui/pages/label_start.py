"""The labelling window's first view: which folder, whether its subfolders are classes already,
which network looks at the pictures; then the first pass, with progress, a time estimate and
Cancel. A folder labelled before continues where it stopped."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.events import StageProgress, StageStarted
from finetune_gui.core.label.features import FeatureSource
from finetune_gui.core.label.session import saved_session, sessions_in
from finetune_gui.core.model.backbones import get_backbone, weights_phrase
from finetune_gui.core.words import counted
from finetune_gui.gui.start_folder import IMAGE_FOLDER, start_folder
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import page_header
from finetune_gui.gui.widgets.job_row import JobStatusRow
from finetune_gui.gui.worker import JobRunner

# Stages worth a time estimate: the ones that take minutes on a big folder.
TIMED_STAGES = {"check", "decode", "features"}


def remaining_text(seconds: float) -> str:
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    return f"about {round(seconds / 60)} min left"


class LabelStart(QWidget):
    """Choose the folder and the network; `start_requested` carries (folder, source, whether
    the subfolders are classes)."""

    start_requested = Signal(object, object, bool)

    def __init__(self, state: ProjectState, sessions_root: Path, runner: JobRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.sessions_root = sessions_root
        layout = QVBoxLayout(self)
        layout.addWidget(page_header(
            "My pictures are not sorted yet",
            "Choose the folder of pictures. The app asks you about the pictures that teach its "
            "model most, proposes a class for all the others, and copies them into one folder "
            "per class, ready to train on. Your folder is only read, never changed."))
        grid = QGridLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("the folder of unsorted pictures (folders inside "
                                            "it are read too)")
        self.folder_edit.textChanged.connect(self._say_session)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        grid.addWidget(QLabel("Pictures:"), 0, 0)
        grid.addWidget(self.folder_edit, 0, 1)
        grid.addWidget(browse, 0, 2)
        self.subfolders = QCheckBox(
            "Its subfolders are classes I sorted already (their pictures keep that label; "
            "folders named like a date or \"unsorted\" never are)")
        self.subfolders.setChecked(True)
        grid.addWidget(self.subfolders, 1, 1, 1, 2)
        layout.addLayout(grid)
        self.from_model = QRadioButton()
        self.from_run = QRadioButton("The model of an earlier run (its classes and its "
                                     "proposals to start from):")
        self.run_choice = QComboBox()
        self._picked_run: str | None = None  # a run the user (or a resumed session) chose
        self.run_choice.activated.connect(
            lambda _index: setattr(self, "_picked_run", self.run_choice.currentData()))
        sources = QButtonGroup(self)
        sources.addButton(self.from_model)
        sources.addButton(self.from_run)
        self.from_model.setChecked(True)
        layout.addWidget(QLabel("The network that looks at the pictures:"))
        layout.addWidget(self.from_model)
        run_row = QHBoxLayout()
        run_row.addWidget(self.from_run)
        run_row.addWidget(self.run_choice, 1)
        layout.addLayout(run_row)
        self.session_note = QLabel()
        self.session_note.setWordWrap(True)
        self.session_note.setStyleSheet("color:#1d4d2b;")
        layout.addWidget(self.session_note)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start labelling")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        buttons.addWidget(self.start_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.status_row = JobStatusRow(runner, "Getting the proposals ready…")
        layout.addWidget(self.status_row)
        self.eta = QLabel()
        self.eta.setStyleSheet("color:#4b5563;")
        layout.addWidget(self.eta)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#7a1c16;")
        layout.addWidget(self.problem)
        layout.addStretch(1)
        self._stage_started = (None, time.monotonic())
        runner.event.connect(self._on_event)
        state.settings_changed.connect(self.refresh_sources)
        state.runs_changed.connect(self.refresh_sources)
        self.refresh_sources()
        self._continue_last_session()

    # -- choices ------------------------------------------------------------------------------
    def refresh_sources(self) -> None:
        """The Model step's network, and the project's runs, as the choices."""
        s = self.state.settings
        size = s.resolved_image_size
        self.from_model.setText(f"The network chosen on the Model step: "
                                f"{get_backbone(s.backbone).keras_name}, "
                                f"{weights_phrase(s.weights)}, "
                                f"{size} px")
        self.run_choice.clear()
        for path in reversed(self.state.runs):
            if (Path(path) / "model.keras").is_file():
                self.run_choice.addItem(Path(path).name, str(path))
        self.from_run.setEnabled(self.run_choice.count() > 0)
        # The newest run comes first, unless one was chosen: a run finished meanwhile is
        # offered, not hidden behind the one that happened to be first before.
        if self._picked_run is not None and self.run_choice.findData(self._picked_run) >= 0:
            self.run_choice.setCurrentIndex(self.run_choice.findData(self._picked_run))

    def source(self) -> FeatureSource:
        if self.from_run.isChecked() and self.run_choice.currentData():
            return FeatureSource(run=self.run_choice.currentData())
        s = self.state.settings
        return FeatureSource(backbone=s.backbone, weights=s.weights, image_size=s.image_size)

    def _continue_last_session(self) -> None:
        """Reopening the window offers the folder labelled last, to continue it."""
        found = sessions_in(self.sessions_root)
        if found and found[0].folder.is_dir():
            self.folder_edit.setText(str(found[0].folder))

    def _say_session(self) -> None:
        text = self.folder_edit.text().strip()
        session = saved_session(text, self.sessions_root) if text else None
        if session is None:
            self.session_note.setText("")
            self.start_button.setText("Start labelling")
            return
        labelled = sum(1 for d in session.decisions.values() if d.label is not None)
        done = (f"{counted(labelled, 'picture')} in {counted(len(session.classes), 'class', 'classes')}, "
                f"{counted(session.pages, 'page')}" if labelled or session.classes or session.pages
                else "nothing labelled yet")
        self.session_note.setText(
            f"You started labelling this folder before ({done}). Continue where you stopped.")
        self.start_button.setText("Continue labelling")
        if session.subfolders_are_classes is not None:
            self.subfolders.setChecked(session.subfolders_are_classes)
        if session.source.run and self.run_choice.findData(session.source.run) >= 0:
            self.from_run.setChecked(True)
            self._picked_run = session.source.run
            self.run_choice.setCurrentIndex(self.run_choice.findData(session.source.run))

    def _browse(self) -> None:
        start = self.folder_edit.text() or start_folder(IMAGE_FOLDER, self.state)
        folder = QFileDialog.getExistingDirectory(self, "Pictures to label", start)
        if folder:
            self.folder_edit.setText(folder)

    def start(self) -> None:
        text = self.folder_edit.text().strip()
        if not text:
            self.problem.setText("Choose the folder of pictures first.")
            return
        self.problem.setText("")
        self.start_requested.emit(Path(text).expanduser(), self.source(),
                                  self.subfolders.isChecked())

    def set_busy(self, busy: bool) -> None:
        self.start_button.setEnabled(not busy)
        self.status_row.set_busy(busy)
        if not busy:
            self.eta.setText("")

    # -- the time estimate --------------------------------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, StageStarted):
            self._stage_started = (event.stage, time.monotonic())
            self.eta.setText("")
        elif isinstance(event, StageProgress) and event.stage in TIMED_STAGES:
            stage, began = self._stage_started
            if stage == event.stage and 0 < event.done < event.total:
                elapsed = time.monotonic() - began
                self.eta.setText(f"{event.done} of {event.total}: "
                                 f"{remaining_text(elapsed / event.done * (event.total - event.done))}")
