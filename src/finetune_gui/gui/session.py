"""Never lose a run: the autosaved project, the listing of every run folder, and a watch on runs
that a training process left behind finishes in the background.

The autosave is a project file in the app's data folder, written when a run starts and when the
window closes. A window killed mid-run (or a computer switched off) leaves it behind, so the next
plain start opens the same folder, settings and runs, saved project or not.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from finetune_gui.core.errors import UserError
from finetune_gui.core.project import Project
from finetune_gui.core.run.folder import list_run_folders, run_state
from finetune_gui.gui.state import ProjectState

log = logging.getLogger(__name__)
AUTOSAVE_NAME = "autosave.ftproj"
WATCH_MILLISECONDS = 2000


def default_autosave_path(runs_root: Path) -> Path:
    """Beside the runs folder, i.e. in the app's data folder (see `gui.app.default_runs_root`)."""
    return Path(runs_root).parent / AUTOSAVE_NAME


def autosave(state: ProjectState, path: Path) -> bool:
    """Write the open project's state to `path`; a failure is logged, never shown mid-work."""
    project = Project(data_dir=state.data_dir, settings=state.settings, runs=list(state.runs),
                      excluded=sorted(state.excluded), origin=state.project_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        project.save(path)
    except (OSError, UserError) as exc:
        log.warning("could not autosave the project to %s: %s", path, exc)
        return False
    return True


def read_autosave(path: Path) -> Project | None:
    """The autosaved project, or None when there is none (or it cannot be read)."""
    if not path.is_file():
        return None
    try:
        return Project.load(path)
    except UserError as exc:
        log.warning("ignoring the autosaved project: %s", exc)
        return None


def differs_from_origin(project: Project) -> bool:
    """True when an autosaved project has changes its project file does not have."""
    if project.origin is None:
        return True
    try:
        saved = Project.load(project.origin)
    except UserError:
        return True
    mine = Project(project.data_dir, project.settings, project.runs, project.excluded,
                   path=project.origin)
    return mine.to_dict() != saved.to_dict()


def runs_with_listing(known: list[Path], runs_root: Path) -> list[Path]:
    """The project's runs followed by every other run folder under `runs_root`, whatever its
    state (finished, cancelled, interrupted, failed, still training)."""
    runs = [Path(p) for p in known if Path(p).is_dir()]
    runs += [p for p in list_run_folders(runs_root) if p not in runs]
    return runs


class BackgroundRunWatcher(QObject):
    """Notices when a run that another process is training (one that outlived an earlier
    window) changes state, so the Runs list shows it finished without a restart."""

    run_changed = Signal(object, str)  # run folder, new state

    def __init__(self, state: ProjectState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.watched: dict[Path, str] = {}
        self.timer = QTimer(self)
        self.timer.setInterval(WATCH_MILLISECONDS)
        self.timer.timeout.connect(self.check)

    def watch_background_runs(self) -> list[Path]:
        """Start watching the project's runs that are being trained by another process."""
        for path in self.state.runs:
            if run_state(path) == "running":
                self.watched[Path(path)] = "running"
        if self.watched:
            self.timer.start()
        return list(self.watched)

    def check(self) -> None:
        for path, before in list(self.watched.items()):
            now = run_state(path)
            if now == before:
                continue
            if now == "running":
                self.watched[path] = now
            else:
                del self.watched[path]
            self.run_changed.emit(path, now)
        if not self.watched:
            self.timer.stop()
