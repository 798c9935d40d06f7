"""What a training run writes into its run folder besides the checkpoint: settings, split and
labels at the start, run.json as the run goes, history and metrics at the end."""

from __future__ import annotations

import shutil
from pathlib import Path

from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.errors import RunFolderError
from finetune_gui.core.export.templates import LOADER_FILE, LOADER_TEMPLATE
from finetune_gui.core.run import folder as rf
from finetune_gui.core.run.evaluation import EvaluationReport
from finetune_gui.core.run.record import update_facts
from finetune_gui.core.settings import TrainingSettings


class RunWriter:
    """Writes one run folder; `prepare` makes it (a new or empty folder only)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.created_folder = False

    def prepare(self) -> None:
        """Create the run folder, or refuse one that cannot be used, in plain words."""
        folder = self.run_dir
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"Cannot use {folder} as the run folder: it is a file.")
        if folder.is_dir() and any(folder.iterdir()):
            raise RunFolderError(
                f"The run folder {folder} already exists and is not empty; choose a new one."
            )
        if not folder.parent.is_dir():
            raise RunFolderError(
                f"Cannot create {folder}: the folder {folder.parent} does not exist."
            )
        self.created_folder = not folder.exists()
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise RunFolderError(
                f"Cannot create the run folder {folder}: {exc.strerror or exc}."
            ) from exc

    def write_start(self, settings: TrainingSettings, split: DatasetSplit) -> None:
        """What repeats the run: its settings, its split and its class names."""
        rf.write_json(self.run_dir / rf.SETTINGS_FILE, settings.to_dict())
        split.save(self.run_dir / rf.SPLIT_FILE)
        rf.write_labels(self.run_dir / rf.LABELS_FILE, split.classes)
        # The loader the README's snippet imports: the pixels training saw (issue 12).
        shutil.copyfile(LOADER_TEMPLATE, self.run_dir / LOADER_FILE)
        self.write_status("running", data=str(split.root), counts=split.counts())

    def write_status(self, status: str, **facts) -> None:
        """Update run.json (`RunFacts` fields), keeping the facts written earlier."""
        update_facts(self.run_dir, **rf.run_facts(status, **facts))

    def record_failure(self, exc: Exception, *, trained: bool) -> None:
        """A run that failed before its first epoch leaves nothing behind (so the same --out
        works on the next try); a later failure keeps its history and says why."""
        if not trained and self.created_folder:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            return
        self.write_status("failed", message=str(exc))

    def write_results(self, history: list[dict], report: EvaluationReport | None) -> None:
        rf.write_history(self.run_dir / rf.HISTORY_FILE, history)
        if report is not None:
            rf.write_json(self.run_dir / rf.METRICS_FILE, report.to_dict())
