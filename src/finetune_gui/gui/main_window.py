"""The main window: the step list on the left, one page per step on the right, the File menu."""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui import __version__
from finetune_gui.core.errors import UserError
from finetune_gui.core.project import Project
from finetune_gui.core.run.folder import RunFolder, resumable_runs
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.words import counted, counted_are
from finetune_gui.demo import demo_dataset_dir
from finetune_gui.gui.logfile import log_dir
from finetune_gui.gui.pages.augment import AugmentPage
from finetune_gui.gui.pages.compare import CompareRunsDialog
from finetune_gui.gui.pages.data import DataPage
from finetune_gui.gui.pages.export import ExportPage
from finetune_gui.gui.pages.label import LabelWindow
from finetune_gui.gui.pages.model import ModelPage
from finetune_gui.gui.pages.results import ResultsPage
from finetune_gui.gui.pages.train import TrainPage
from finetune_gui.gui.preferences import Preferences
from finetune_gui.gui.session import (
    BackgroundRunWatcher,
    autosave,
    default_autosave_path,
    differs_from_origin,
    read_autosave,
    runs_with_listing,
)
from finetune_gui.gui.start_folder import IMAGE_FOLDER, PROJECT, start_folder
from finetune_gui.gui.state import STEP_TITLES, STEPS, LoadedRun, ProjectState
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.opener import OpenOutcome, PathOpener, tell_outcome
from finetune_gui.gui.widgets.step_list import StepList
from finetune_gui.gui.widgets.user_guide import UserGuide
from finetune_gui.gui.worker import JobRunner, load_tensorflow
from finetune_gui.jobs.child_process import prepare_child_processes

PROJECT_FILTER = "finetune-gui projects (*.ftproj);;All files (*)"


def warm_up(*, progress, cancel) -> str:
    """A job: import TensorFlow and Keras once, early, so the first real job starts quickly;
    returns the versions for the About dialog (collecting them needs TensorFlow)."""
    load_tensorflow()
    from finetune_gui.about import version_text

    return version_text()


class MainWindow(QMainWindow):
    """Owns the project state and the pages; remembers the session in `preferences`."""

    ready = Signal()  # TensorFlow is loaded

    def __init__(self, preferences: QSettings, runs_root: Path,
                 parent: QWidget | None = None, autosave_path: Path | None = None) -> None:
        super().__init__(parent)
        self.autosave_path = autosave_path or default_autosave_path(runs_root)
        prepare_child_processes()
        self.prefs = Preferences(preferences)
        self.last_dialog: QMessageBox | None = None  # the latest dialog (tests look at it)
        self.versions = ""  # for the About dialog, once TensorFlow is loaded
        self.state = ProjectState(runs_root, self)
        self.setWindowTitle("finetune-gui")
        self.setMinimumSize(960, 640)
        self.pages: dict[str, QWidget] = {
            "data": DataPage(self.state),
            "model": ModelPage(self.state),
            "augment": AugmentPage(self.state),
            "train": TrainPage(self.state),
            "results": ResultsPage(self.state),
            "export": ExportPage(self.state),
        }
        self.steps = StepList(STEP_TITLES)
        self.steps.setFixedWidth(270)
        self.stack = QStackedWidget()
        for key in STEPS:
            self.stack.addWidget(self.pages[key])
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(8, 8, 8, 8)
        left = QVBoxLayout()
        # The way in for pictures not sorted into class folders yet (issue 27): before Data.
        self.label_button = QPushButton("My pictures are not sorted yet")
        self.label_button.setFixedWidth(270)
        self.label_button.setToolTip("Label a folder of pictures with the model's help, "
                                     "then train on the class folders it makes.")
        self.label_button.clicked.connect(self.show_labelling)
        left.addWidget(self.label_button)
        left.addWidget(self.steps, 1)
        layout.addLayout(left)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.readiness = QLabel()
        self.statusBar().addPermanentWidget(self.readiness)

        self.steps.step_chosen.connect(self._show_page)
        self.state.status_changed.connect(self._refresh_steps)
        self.state.settings_changed.connect(self._refresh_steps)
        self.state.project_changed.connect(self._refresh_title)
        self.pages["train"].show_results.connect(lambda: self.go_to("results"))
        self.pages["train"].compare_runs.connect(self.show_comparison)
        self.state.run_joined.connect(lambda _path: autosave(self.state, self.autosave_path))
        self.state.resume_requested.connect(self._resume)
        self.background_runs = BackgroundRunWatcher(self.state, self)
        self.background_runs.run_changed.connect(self._on_background_run_changed)
        self.comparison: CompareRunsDialog | None = None  # made when first asked for
        # Made now, hidden: its names are on the window for the user guide's check.
        self.labelling = LabelWindow(self.state, self)
        self.labelling.train_requested.connect(self._train_on_labelled)
        self.log_opener = PathOpener("your file manager", self)
        self.log_opener.finished.connect(self._on_log_folder_opened)
        self.user_guide: UserGuide | None = None
        self._build_menus()
        self._refresh_steps()
        self._refresh_title()
        self.warm_up_runner = JobRunner("warm-up", self)
        self.warm_up_runner.succeeded.connect(self._on_ready)
        self.warm_up_runner.failed.connect(self._on_warm_up_failed)

    # -- start-up -----------------------------------------------------------------------------
    def start(self, project: Path | None = None) -> None:
        """Open `project`, else the autosaved or last session, else (first start) the demo
        images; then offer to resume a run that was interrupted. A folder for `project`
        (`finetune-gui ~/photos`) is the image folder: the session is restored around it and
        the Data step checks it."""
        geometry = self.prefs.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 860)
        self.readiness.setText("Getting ready: loading TensorFlow…")
        self.warm_up_runner.start(warm_up)
        given = Path(project).expanduser() if project is not None else None
        images = given.resolve() if given is not None and given.is_dir() else None
        if images is not None:
            project = None
        autosaved = read_autosave(self.autosave_path)
        # The given folder takes the remembered one's place as the session is restored, so the
        # Data step scans it alone: set afterwards, a scan of the old folder started first.
        if project is not None:
            self.open_project(project)
        elif autosaved is not None:
            self._restore_autosave(autosaved, images)
        elif self.prefs.has_session:
            self._restore_session(images)
        else:
            self.state.set_data_dir(images or demo_dataset_dir())
        if project is None:
            self._list_all_runs()
            self.offer_to_resume()
        self.pages["export"].restore_choices(self.prefs.last_folder("export"),
                                             self.prefs.choice("export_format", "keras"))
        self.go_to("data" if images is not None or self.prefs.page not in STEPS
                   else self.prefs.page)

    def _restore_session(self, images: Path | None = None) -> None:
        """The last session's settings and runs, around `images` or else its image folder."""
        settings = self.prefs.settings()
        if settings is not None:
            self.state.set_settings(settings)
        runs = self.prefs.runs()
        self.state.set_runs(runs)
        if runs:
            # A damaged last run is skipped; the Results page still lists the others.
            with contextlib.suppress(UserError):
                self.state.set_current_run(LoadedRun.read(runs[-1]))
        folder = images or self.prefs.data_dir()
        if folder is not None and folder.is_dir():
            self.state.set_data_dir(folder)
        else:
            self.state.set_data_dir(demo_dataset_dir())
            if folder is not None:
                self.statusBar().showMessage(
                    f"The last folder {folder} is gone; showing the demo images.", 10_000)
        self.state.set_project_path(None)

    def _restore_autosave(self, project: Project, images: Path | None = None) -> None:
        """Continue where the last window stopped, however it stopped (closed, killed); with
        `images`, on that folder (its own images left out only when it is the same one)."""
        self.state.set_settings(project.settings)
        self.state.set_runs([Path(p) for p in project.runs if Path(p).is_dir()])
        if images is not None:
            self.state.set_data_dir(images)
            if project.data_dir is not None and images == project.data_dir.resolve():
                self.state.set_excluded(project.excluded)
        elif project.data_dir is not None and project.data_dir.is_dir():
            self.state.set_data_dir(project.data_dir)
            self.state.set_excluded(project.excluded)
        else:
            self.state.set_data_dir(demo_dataset_dir())
            if project.data_dir is not None:
                self.statusBar().showMessage(
                    f"The last folder {project.data_dir} is gone; showing the demo images.",
                    10_000)
        origin = project.origin if project.origin and project.origin.is_file() else None
        self.state.set_project_path(origin)
        if origin is None or differs_from_origin(project):
            self.state._mark_dirty()

    def _list_all_runs(self) -> None:
        """Every run folder under the runs location joins the list, whatever its state; the
        newest readable one is shown; runs another process is still training are watched."""
        runs = runs_with_listing(self.state.runs, self.state.runs_root)
        self.state.set_runs(runs)
        if self.state.current_run is None:
            for run_path in reversed(runs):
                with contextlib.suppress(UserError):
                    self.state.set_current_run(LoadedRun.read(run_path))
                    break
        training = self.background_runs.watch_background_runs()
        if training:
            self.statusBar().showMessage(
                f"{counted_are(len(training), 'run')} still training in the background "
                f"(started by a "
                f"window that closed); the Runs list shows them when they finish.", 15_000)

    def _on_background_run_changed(self, path: Path, now: str) -> None:
        self.state.runs_changed.emit()  # the Runs list shows each run's state
        self.statusBar().showMessage(f"The run {path.name} that trained in the background is "
                                     f"now {now}.", 10_000)
        if now == "interrupted":
            self.offer_to_resume()

    def _resume(self, run_dir: Path) -> None:
        self.go_to("train")
        self.pages["train"].resume_training(run_dir)

    def _on_ready(self, versions: str) -> None:
        self.versions = versions
        self.readiness.setText("Ready")
        self.ready.emit()

    def _on_warm_up_failed(self, exc: BaseException, trace: str) -> None:
        self.readiness.setText("TensorFlow could not be loaded")
        show_error(self, exc, trace, "loading TensorFlow")

    # -- pages --------------------------------------------------------------------------------
    def go_to(self, step: str) -> None:
        self.steps.select(step)

    def current_step(self) -> str:
        return STEPS[self.stack.currentIndex()]

    def _show_page(self, step: str) -> None:
        self.stack.setCurrentWidget(self.pages[step])

    def _refresh_steps(self) -> None:
        for step in STEPS:
            self.steps.set_status(step, self.state.step_status(step))

    def _refresh_title(self) -> None:
        name = self.state.project_path.name if self.state.project_path else "untitled project"
        self.setWindowTitle(f"{name}{' *' if self.state.dirty else ''} — finetune-gui")

    # -- menus --------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._add_action(file_menu, "&New project", self.new_project, QKeySequence.StandardKey.New)
        self._add_action(file_menu, "&Open project…", self.choose_project_to_open,
                         QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        self._add_action(file_menu, "&Save project", self.save_project,
                         QKeySequence.StandardKey.Save)
        self._add_action(file_menu, "Save project &as…", self.save_project_as,
                         QKeySequence.StandardKey.SaveAs)
        file_menu.addSeparator()
        self._add_action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        runs_menu = self.menuBar().addMenu("&Runs")
        self.compare_action = self._add_action(runs_menu, "&Compare runs…",
                                               self.show_comparison)
        self.compare_action.setStatusTip("The project's runs side by side: settings that "
                                         "differ, scores and validation curves.")
        self.state.runs_changed.connect(
            lambda: self.compare_action.setEnabled(len(self.state.runs) >= 2))
        self.compare_action.setEnabled(False)
        help_menu = self.menuBar().addMenu("&Help")
        self.guide_action = self._add_action(help_menu, "&User guide", self.show_user_guide,
                                             QKeySequence.StandardKey.HelpContents)
        self._add_action(help_menu, "Open the &log folder", self._open_log_folder)
        self._add_action(help_menu, "&About finetune-gui", self._about)

    def _add_action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def show_labelling(self) -> LabelWindow:
        """Open (or bring forward) the window that labels a folder of unsorted pictures."""
        self.labelling.show()
        self.labelling.raise_()
        self.labelling.activateWindow()
        return self.labelling

    def _train_on_labelled(self) -> None:
        self.go_to("data")  # the state's folder is the labelled output now
        self.raise_()
        self.activateWindow()

    def show_comparison(self) -> CompareRunsDialog:
        """Open (or bring forward) the window that compares the project's runs."""
        if self.comparison is None:
            self.comparison = CompareRunsDialog(self.state, self)
        self.comparison.show()
        self.comparison.raise_()
        self.comparison.activateWindow()
        return self.comparison

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.prefs.recent_projects()
        if not recent:
            action = self.recent_menu.addAction("No recent projects")
            action.setEnabled(False)
        for path in recent:
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _checked=False, p=path: self.open_project(p))

    def show_user_guide(self) -> UserGuide:
        """Open (or bring forward) the offline user guide."""
        if self.user_guide is None:
            self.user_guide = UserGuide(self)
        self.user_guide.show()
        self.user_guide.raise_()
        return self.user_guide

    def _open_log_folder(self) -> None:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.log_opener.open(folder)

    def _on_log_folder_opened(self, outcome: OpenOutcome) -> None:
        box = tell_outcome(self, outcome)
        if box is not None:
            self.last_dialog = box

    def _about(self) -> None:
        versions = self.versions or f"finetune-gui {__version__} (still loading TensorFlow)"
        QMessageBox.about(self, "About finetune-gui",
                          "Fine-tune a pretrained image classifier on your own folder of images, "
                          f"without writing code.\n\n{versions}\n\nLogs: {log_dir()}")

    # -- projects -----------------------------------------------------------------------------
    def new_project(self) -> None:
        """Start over: default settings, no runs, no folder chosen."""
        if self.state.training:
            self.statusBar().showMessage("Cancel the training first.", 5000)
            return
        self.state.set_settings(TrainingSettings())
        self.state.set_runs([])
        self.state.set_current_run(None)
        self.state.set_data_dir(None)
        self.state.set_project_path(None)
        self.go_to("data")

    def choose_project_to_open(self) -> None:
        start = start_folder(PROJECT, self.state, remembered=self.prefs.last_folder("projects"))
        path, _ = QFileDialog.getOpenFileName(self, "Open a project", start, PROJECT_FILTER)
        if path:
            self.open_project(Path(path))

    def open_project(self, path: Path) -> bool:
        """Load a project file; a problem is shown in plain words and changes nothing."""
        try:
            project = Project.load(path)
        except UserError as exc:
            self.last_dialog = show_error(self, exc, "", "opening the project",
                                          title="Cannot open project")
            if not Path(path).exists():
                self.prefs.remove_recent_project(Path(path))
            return False
        self.state.set_settings(project.settings)
        runs = [Path(p) for p in project.runs if Path(p).is_dir()]
        self.state.set_runs(runs)
        current = None
        for run_path in reversed(runs):
            try:
                current = LoadedRun.read(run_path)
                break
            except UserError:
                continue
        self.state.set_current_run(current)
        self.state.set_data_dir(project.data_dir)
        self.state.set_excluded(project.excluded)
        self.state.set_project_path(project.path)
        self._list_all_runs()
        self.prefs.add_recent_project(project.path)
        self.prefs.set_last_folder("projects", project.path.parent)
        self.statusBar().showMessage(f"Opened {project.path}", 5000)
        if project.data_dir_missing:
            self.last_dialog = self._offer_to_locate(project)
        else:
            self.offer_to_resume()
        return True

    def offer_to_resume(self) -> QMessageBox | None:
        """A run stopped mid-training (app closed, computer off): offer to continue it."""
        interrupted = resumable_runs(self.state.runs_root)
        if not interrupted or self.state.training:
            return None
        run_dir = interrupted[0]
        done = len(RunFolder.read_history(run_dir))
        others = len(interrupted) - 1
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Resume training?")
        box.setText(f"The training run {run_dir.name} was interrupted after epoch {done}. "
                    f"Continue it from there, with the same settings and images?")
        if others:
            box.setInformativeText(f"{counted(others, 'other interrupted run')} can be resumed "
                                   f"from the "
                                   f"Results page.")
        resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)

        def decide(button) -> None:
            if button is resume:
                self._resume(run_dir)

        box.buttonClicked.connect(decide)
        box.open()
        self.last_dialog = box
        return box

    def _offer_to_locate(self, project: Project) -> QMessageBox:
        """The project's image folder has moved: ask where it is now (without blocking)."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Image folder not found")
        box.setText(project.missing_folder_message())
        locate = box.addButton("Choose its new location…", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Later", QMessageBox.ButtonRole.RejectRole)

        def decide(button) -> None:
            if button is not locate:
                return
            folder = QFileDialog.getExistingDirectory(self, "Where is the image folder now?",
                                                      start_folder(IMAGE_FOLDER, self.state))
            if folder:
                project.relocate(Path(folder))
                self.state.set_data_dir(project.data_dir)
                self.state.set_excluded(project.excluded)

        box.buttonClicked.connect(decide)
        box.open()
        return box

    def save_project(self) -> bool:
        if self.state.project_path is None:
            return self.save_project_as()
        return self.save_project_to(self.state.project_path)

    def save_project_as(self) -> bool:
        start = start_folder(PROJECT, self.state, remembered=self.prefs.last_folder("projects"))
        path, _ = QFileDialog.getSaveFileName(self, "Save the project",
                                              str(Path(start) / "project.ftproj"),
                                              PROJECT_FILTER)
        return bool(path) and self.save_project_to(Path(path))

    def save_project_to(self, path: Path) -> bool:
        """Write the project file (folder, settings, runs) to `path` (.ftproj is added)."""
        project = Project(
            data_dir=self.state.data_dir,
            settings=self.state.settings,
            runs=list(self.state.runs),
            excluded=sorted(self.state.excluded),
        )
        try:
            saved = project.save(path)
        except UserError as exc:
            self.last_dialog = show_error(self, exc, "", "saving the project",
                                          title="Cannot save project")
            return False
        self.state.set_project_path(saved)
        self.prefs.add_recent_project(saved)
        self.prefs.set_last_folder("projects", saved.parent)
        self.statusBar().showMessage(f"Saved {saved}", 5000)
        return True

    # -- closing ------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.state.training:
            answer = QMessageBox.question(
                self, "Training is running",
                "Training is still running. Stop it and quit? The best epoch so far is kept.")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.remember()
        self.statusBar().showMessage("Stopping background work…")
        for page in self.pages.values():
            page.shutdown()
        if self.comparison is not None:
            self.comparison.shutdown()
        self.labelling.shutdown()
        self.warm_up_runner.shutdown()
        super().closeEvent(event)

    def remember(self) -> None:
        """Store geometry and the session so the next start continues here."""
        self.prefs.set_geometry(self.saveGeometry())
        self.prefs.page = self.current_step()
        self.prefs.remember_session(self.state.data_dir, self.state.settings, self.state.runs)
        autosave(self.state, self.autosave_path)
        folder, fmt = self.pages["export"].choices()
        self.prefs.set_last_folder("export", folder)
        self.prefs.set_choice("export_format", fmt)
        self.prefs.sync()

