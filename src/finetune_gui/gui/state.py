"""The shared project state: what every page reads and writes, and the only way pages meet.

Pages never call each other. A page changes the state through the setters below; the state emits
a signal; every page that shows that part of the state updates itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from finetune_gui.core.data.augment import PRESETS
from finetune_gui.core.data.scan import DatasetScan
from finetune_gui.core.data.split import DatasetSplit, split_dataset
from finetune_gui.core.errors import DatasetError, SettingsError
from finetune_gui.core.model.backbones import get_backbone
from finetune_gui.core.model.build import from_scratch
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.words import counted

STEPS = ("data", "model", "augment", "train", "results", "export")
STEP_TITLES = {
    "data": "Data",
    "model": "Model",
    "augment": "Augmentation",
    "train": "Train",
    "results": "Results",
    "export": "Export",
}


@dataclass(frozen=True)
class StepStatus:
    """For the step list: is the step complete, and if not, what is missing (plain words)."""

    done: bool
    text: str
    blocked: bool = False  # cannot be used yet (an earlier step is missing)


@dataclass
class LoadedRun:
    """A run folder read from disk with its report parsed once (the pages read it often)."""

    folder: object  # core.run.folder.RunFolder
    report: object | None  # core.run.evaluation.EvaluationReport
    history: list[dict]

    @classmethod
    def read(cls, path: Path) -> LoadedRun:
        """Open a run folder and parse its report (raises `RunFolderError` in plain words)."""
        from finetune_gui.core.run.folder import RunFolder

        folder = RunFolder.open(path)
        return cls(folder, folder.report, folder.history)

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def classes(self) -> list[str]:
        return self.folder.classes


class ProjectState(QObject):
    """Folder, scan, settings, runs and the current run of the open project."""

    data_dir_changed = Signal()  # a new folder was chosen: the Data page scans it
    scan_changed = Signal()
    scanning_changed = Signal(bool)
    excluded_changed = Signal()  # images left out of the next run
    settings_changed = Signal()
    runs_changed = Signal()
    run_joined = Signal(object)  # a run started (its folder): it is part of the project from now
    resume_requested = Signal(object)  # a page asks to continue an interrupted run (its folder)
    current_run_changed = Signal()
    training_changed = Signal(bool)
    project_changed = Signal()  # file path or unsaved-changes flag
    status_changed = Signal()  # anything the step list shows
    suspects_found = Signal(object)  # a run's suspect labels (jobs.insight.SuspectSearch)

    def __init__(self, runs_root: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runs_root = Path(runs_root)
        self.data_dir: Path | None = None
        self.scan: DatasetScan | None = None
        self.scanning = False
        self.settings = TrainingSettings()
        # "Find good settings for me": minutes to try settings before the run, None when off.
        self.auto_budget_minutes: float | None = None
        self.excluded: set[Path] = set()
        self._split_cache: tuple[DatasetScan, tuple, DatasetSplit] | None = None
        self.runs: list[Path] = []
        self.current_run: LoadedRun | None = None
        self._suspects: dict[tuple[Path, frozenset[Path]], object] = {}
        self.training = False
        self.project_path: Path | None = None
        self.dirty = False
        for signal in (
            self.scan_changed,
            self.excluded_changed,
            self.scanning_changed,
            self.runs_changed,
            self.current_run_changed,
            self.training_changed,
        ):
            signal.connect(self.status_changed)

    # -- data ---------------------------------------------------------------------------------
    def set_data_dir(self, folder: Path | str | None) -> None:
        """Choose the image folder; the old scan no longer applies."""
        self.data_dir = Path(folder) if folder else None
        self.scan = None
        self.excluded = set()
        self._mark_dirty()
        self.data_dir_changed.emit()
        self.scan_changed.emit()
        self.excluded_changed.emit()

    def set_excluded(self, paths) -> None:
        """Leave exactly these images out of the next run (e.g. ones with a wrong label)."""
        self.excluded = {Path(p) for p in paths}
        self._mark_dirty()
        self.excluded_changed.emit()

    def exclude(self, paths) -> None:
        self.set_excluded(self.excluded | {Path(p) for p in paths})

    def set_scanning(self, scanning: bool) -> None:
        self.scanning = scanning
        self.scanning_changed.emit(scanning)

    def set_scan(self, scan: DatasetScan | None) -> None:
        self.scan = scan
        self.scan_changed.emit()

    def split(self) -> DatasetSplit:
        """The split the next run will use (raises `DatasetError` with a plain reason).

        Several pages ask after every settings change; the last answer is reused while the
        scan and the split settings stay the same (a big folder takes a moment to split).
        """
        if self.scan is None:
            raise DatasetError("Choose a folder of images first (step Data).")
        s = self.settings
        key = (s.val_fraction, s.test_fraction, s.seed, frozenset(self.excluded))
        cached = self._split_cache
        if cached is None or cached[0] is not self.scan or cached[1] != key:
            split = split_dataset(self.scan, s.val_fraction, s.test_fraction, s.seed,
                                  self.excluded)
            self._split_cache = cached = (self.scan, key, split)
        return cached[2]

    # -- settings -----------------------------------------------------------------------------
    def update_settings(self, **changes) -> str | None:
        """Apply changes; on a bad value keep the old settings and return the plain reason."""
        try:
            settings = self.settings.with_changes(**changes)
        except SettingsError as exc:
            return str(exc)
        self.set_settings(settings)
        return None

    def set_settings(self, settings: TrainingSettings) -> None:
        if settings == self.settings:
            return
        self.settings = settings
        self._mark_dirty()
        self.settings_changed.emit()

    def set_auto_budget(self, minutes: float | None) -> None:
        """Try settings on the validation images for `minutes` before the next run (None: off)."""
        if minutes is not None and minutes <= 0:
            raise ValueError(f"The time to find settings must be positive; got {minutes}.")
        if minutes == self.auto_budget_minutes:
            return
        self.auto_budget_minutes = minutes
        self.settings_changed.emit()

    # -- runs ---------------------------------------------------------------------------------
    def set_training(self, training: bool) -> None:
        self.training = training
        self.training_changed.emit(training)

    def add_run(self, run: LoadedRun) -> None:
        """A finished run joins the project and becomes the one the Results page shows."""
        if run.path not in self.runs:
            self.runs.append(run.path)
            self._mark_dirty()
            self.runs_changed.emit()
        self.set_current_run(run)

    def join_run(self, path: Path) -> None:
        """A run that just started joins the project, before it has written anything: closing
        or killing the window from now on cannot make the project forget it."""
        path = Path(path)
        if path not in self.runs:
            self.runs.append(path)
            self._mark_dirty()
            self.runs_changed.emit()
        self.run_joined.emit(path)

    def forget_missing_runs(self) -> None:
        """Drop runs whose folder is gone (a run that failed before its first epoch leaves none)."""
        kept = [p for p in self.runs if Path(p).is_dir()]
        if kept != self.runs:
            self.set_runs(kept)

    def request_resume(self, path: Path) -> None:
        self.resume_requested.emit(Path(path))

    def set_runs(self, runs: list[Path]) -> None:
        self.runs = list(runs)
        self.runs_changed.emit()

    def set_current_run(self, run: LoadedRun | None) -> None:
        self.current_run = run
        self.current_run_changed.emit()

    # -- what was found about a run -----------------------------------------------------------
    def remember_suspects(self, excluded: frozenset[Path], search) -> None:
        """A run's suspect labels (`jobs.insight.SuspectSearch`), found with `excluded` left
        out: the map's crosses and the Suspect labels view are one list, found once."""
        self._suspects[(Path(search.run_path), frozenset(excluded))] = search
        self.suspects_found.emit(search)

    def known_suspects(self, run_path: Path):
        """The suspect labels found for `run_path` with the images left out now, or None."""
        return self._suspects.get((Path(run_path), frozenset(self.excluded)))

    # -- project file -------------------------------------------------------------------------
    def set_project_path(self, path: Path | None) -> None:
        self.project_path = path
        self.dirty = False
        self.project_changed.emit()

    def _mark_dirty(self) -> None:
        if not self.dirty:
            self.dirty = True
            self.project_changed.emit()

    # -- what the step list shows -------------------------------------------------------------
    def step_status(self, step: str) -> StepStatus:
        """Whether `step` is complete, and a short plain line saying what it has or lacks."""
        scan = self.scan
        data_ready = scan is not None and scan.can_train
        run = self.current_run
        if step == "data":
            if self.scanning:
                return StepStatus(False, "checking the images…")
            if self.data_dir is None:
                return StepStatus(False, "choose a folder of images")
            if scan is None:
                return StepStatus(False, "folder not checked yet")
            if not scan.can_train:
                return StepStatus(False, "needs 2 classes or more")
            return StepStatus(True, f"{len(scan.records):,} images, {len(scan.classes)} classes")
        if step == "model":
            s = self.settings
            name = get_backbone(s.backbone).keras_name
            if from_scratch(s):
                return StepStatus(True, f"{name}, from scratch")
            return StepStatus(True, f"{name}, tune {s.unfreeze_blocks} blocks")
        if step == "augment":
            augment = self.settings.augment
            preset = next((k for k, v in PRESETS.items() if v == augment), "custom")
            if augment.is_off:
                return StepStatus(True, "off")
            return StepStatus(True, preset if self.settings.augmentation_used
                              else f"{preset}, not used in speed mode")
        if step == "train":
            if self.training:
                return StepStatus(False, "training…")
            if not data_ready:
                return StepStatus(False, "needs data first", blocked=True)
            if run is None:
                return StepStatus(False, "not trained yet")
            return StepStatus(True, counted(len(self.runs), "run"))
        if step == "results":
            if run is None:
                return StepStatus(False, "train a model first", blocked=True)
            if run.report is None:
                return StepStatus(False, "this run has no test results")
            return StepStatus(True, f"test accuracy {run.report.accuracy:.0%}")
        if step == "export":
            if run is None:
                return StepStatus(False, "train a model first", blocked=True)
            return StepStatus(True, "model ready to save")
        raise ValueError(f"unknown step {step!r}")
