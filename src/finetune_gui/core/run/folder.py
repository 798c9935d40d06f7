"""A run folder: everything one training run produced, written atomically, read back safely.

Layout: model.keras (raw pixels in, probabilities out), labels.txt (one class a line, in output
order), metrics.json, history.csv, settings.json, split.json, run.json (status and facts).
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune_gui import __version__
from finetune_gui.core.errors import RunFolderError, UserError, images_gone
from finetune_gui.core.files import atomic_write_text, atomic_write_with
from finetune_gui.core.run.evaluation import EvaluationReport
from finetune_gui.core.run.record import (
    RUN_FILE,
    RUN_FORMAT,
    RunFacts,
    read_facts,
    update_facts,
)
from finetune_gui.core.settings import TrainingSettings

MODEL_FILE = "model.keras"
LABELS_FILE = "labels.txt"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
SETTINGS_FILE = "settings.json"
SPLIT_FILE = "split.json"
HISTORY_COLUMNS = ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]
# Written by the training job after each epoch (see core/training/job.py): a run with it can resume.
CHECKPOINT_STATE = Path("checkpoint") / "state.json"
# What a run folder's state means to a user; "interrupted" runs are offered for resume.
RUN_STATES = ("completed", "cancelled", "failed", "interrupted", "running", "empty")


def write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str))


def write_labels(path: Path, classes: list[str]) -> None:
    atomic_write_text(path, "".join(f"{name}\n" for name in classes))


def write_history(path: Path, history: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


def save_model(model, path: Path) -> None:
    """`model.save` into a temporary file, then rename: a crash never leaves a broken zip."""
    atomic_write_with(path, lambda tmp: model.save(tmp), suffix=".keras")


def run_facts(status: str, **extra) -> dict:
    import keras
    import tensorflow as tf

    return {
        "format": RUN_FORMAT,
        "status": status,
        "finetune_gui": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        # Which process writes the run: a run still "running" whose process is gone was killed.
        "pid": os.getpid(),
        "host": socket.gethostname(),
        **extra,
    }


def process_running(pid: object) -> bool:
    """True when the process `pid` of this machine exists and is not a zombie (ended, unreaped)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    stat = Path(f"/proc/{pid}/stat")
    try:
        fields = stat.read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return True  # no /proc (macOS): kill(pid, 0) is all we can know
    return not fields or fields[0] != "Z"


def _process_alive(pid: object, host: object) -> bool:
    """True when the process that wrote a run may still be training it.

    A run written on another machine (a shared disk) cannot be checked from here, so it counts
    as alive: offering to resume it could make two processes write one folder.
    """
    if host != socket.gethostname():
        return True
    return process_running(pid)


def has_split(run_dir: Path | str) -> bool:
    """True once the run has recorded which images it trains, validates and tests on."""
    return (Path(run_dir) / SPLIT_FILE).is_file()


def read_split_record(run_dir: Path | str) -> dict:
    """A run's split.json as written (its file lists, relative to `root`); `RunFolderError`
    in one sentence when it is missing or damaged. The one place split.json is opened."""
    source = Path(run_dir) / SPLIT_FILE
    if not source.is_file():
        raise RunFolderError(f"{Path(run_dir)} has no {SPLIT_FILE}; the run's images are not known.")
    try:
        record = json.loads(source.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"The run folder {Path(run_dir)} has a damaged {SPLIT_FILE}: {exc}.") from exc
    if not isinstance(record, dict):
        raise RunFolderError(f"The run folder {Path(run_dir)} has a damaged {SPLIT_FILE}: not a JSON object.")
    return record


def read_split(run_dir: Path | str, data_root: Path | str | None = None):
    """A run's train/val/test split (`DatasetSplit`), its images looked for in `data_root` when
    the image folder was moved; `RunFolderError` when missing or damaged."""
    from finetune_gui.core.data.split import DatasetSplit

    record = read_split_record(run_dir)
    try:
        return DatasetSplit.from_dict(record, Path(data_root).expanduser() if data_root else None)
    except (KeyError, ValueError, TypeError) as exc:
        raise RunFolderError(f"The run folder {Path(run_dir)} has a damaged {SPLIT_FILE}: {exc!r}.") from exc


def read_settings(run_dir: Path | str) -> TrainingSettings:
    """The settings a run was started with (settings.json); `RunFolderError` in one sentence
    when they are missing, damaged or unusable."""
    source = Path(run_dir) / SETTINGS_FILE
    try:
        return TrainingSettings.from_dict(json.loads(source.read_text("utf-8")), of_run=True)
    except FileNotFoundError as exc:
        raise RunFolderError(f"{Path(run_dir)} has no {SETTINGS_FILE}.") from exc
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise RunFolderError(f"The run folder {Path(run_dir)} has a damaged {SETTINGS_FILE}: "
                             f"{exc}.") from exc
    except UserError as exc:
        raise RunFolderError(f"The run folder {Path(run_dir)} has unusable settings: {exc}") from exc


def read_metrics(run_dir: Path | str) -> EvaluationReport | None:
    """The test results a run wrote (metrics.json), or None when it has none; `RunFolderError`
    when the file is damaged."""
    source = Path(run_dir) / METRICS_FILE
    if not source.is_file():
        return None
    try:
        return EvaluationReport.from_dict(json.loads(source.read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"The run folder {Path(run_dir)} has a damaged {METRICS_FILE}: "
                             f"{exc}.") from exc


def split_counts(run_dir: Path | str) -> dict[str, int]:
    """How many images each part of a run's split holds; zeros when it cannot be read (a run
    that failed early)."""
    try:
        record = read_split_record(run_dir)
        return {part: len(record.get(part) or []) for part in ("train", "val", "test")}
    except RunFolderError:
        return {"train": 0, "val": 0, "test": 0}


def run_state(run_dir: Path | str) -> str:
    """One of `RUN_STATES` for the run folder `run_dir`, read from its run.json."""
    run_dir = Path(run_dir)
    facts = read_facts(run_dir)
    status = facts.status
    if status is None:
        return "empty"
    if status == "running":
        if _process_alive(facts.pid, facts.host):
            return "running"
        return "interrupted" if can_continue(run_dir) else "failed"
    if status == "interrupted" and not can_continue(run_dir):
        return "failed"  # stopped before it had split the images: nothing to start again from
    return status if status in RUN_STATES else "failed"


def can_continue(run_dir: Path) -> bool:
    """True when a stopped run can go on: from its checkpoint, or, stopped before its first
    epoch finished, from the start with the settings and split it recorded."""
    return (run_dir / CHECKPOINT_STATE).exists() or has_split(run_dir)


def list_run_folders(root: Path | str) -> list[Path]:
    """Every run folder directly below `root`, whatever its state, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if p.is_dir() and ((p / RUN_FILE).is_file() or (p / SETTINGS_FILE).is_file())]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def resumable_runs(root: Path | str) -> list[Path]:
    """Run folders below `root` that stopped mid-training and can continue; newest first."""
    found = [p for p in list_run_folders(root) if run_state(p) == "interrupted"]
    return list(reversed(found))


def mark_interrupted(run_dir: Path | str, reason: str) -> bool:
    """A run stopped by closing the window (not by Cancel): offer it for resume next time.

    Only a run that stopped unfinished changes; returns whether it did.
    """
    run_dir = Path(run_dir)
    if read_facts(run_dir).status not in ("cancelled", "running") or not can_continue(run_dir):
        return False
    update_facts(run_dir, status="interrupted", message=reason)
    return True


@dataclass
class RunFolder:
    """A finished (or cancelled) run read from disk."""

    path: Path
    classes: list[str]
    settings: TrainingSettings
    facts: RunFacts

    @classmethod
    def open(cls, path: Path | str, *, need_model: bool = True) -> RunFolder:
        """The run in `path`; `need_model=False` also opens a run that saved no model (to name
        it or say what it lacks)."""
        path = Path(path).expanduser()
        if not path.is_dir():
            raise RunFolderError(f"{path} is not a run folder (it does not exist or is a file).")
        needed = (MODEL_FILE, LABELS_FILE, SETTINGS_FILE) if need_model else (LABELS_FILE,
                                                                              SETTINGS_FILE)
        missing = [n for n in needed if not (path / n).is_file()]
        if missing:
            raise RunFolderError(
                f"{path} is not a complete run folder: {', '.join(missing)} missing. "
                f"Was the training finished or cancelled before the first epoch?"
            )
        try:
            classes = [
                line.strip() for line in (path / LABELS_FILE).read_text("utf-8").splitlines()
            ]
        except (OSError, ValueError) as exc:
            raise RunFolderError(f"The run folder {path} has a damaged {LABELS_FILE}: {exc}.") from exc
        settings = read_settings(path)
        facts = read_facts(path)
        if facts.newer_than_this_app:
            raise RunFolderError(
                f"{path} was written by a newer finetune-gui; update the app to open it."
            )
        return cls(path, [c for c in classes if c], settings, facts)

    @property
    def status(self) -> str:
        return self.facts.status or "unknown"

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def image_size(self) -> int:
        return self.settings.resolved_image_size

    @property
    def report(self) -> EvaluationReport | None:
        return read_metrics(self.path)

    @property
    def history(self) -> list[dict]:
        return self.read_history(self.path)

    def copy_results_into(self, out: Path) -> list[str]:
        """Copy what travels with an exported model (the labels, and the test metrics when the
        run has them) into `out`; returns the names written."""
        import shutil

        names = [LABELS_FILE] + ([METRICS_FILE] if (self.path / METRICS_FILE).is_file() else [])
        for name in names:
            shutil.copyfile(self.path / name, Path(out) / name)
        return names

    def split(self, data_root: Path | str | None = None):
        """The run's train/val/test split (`read_split`)."""
        return read_split(self.path, data_root)

    @staticmethod
    def read_history(folder: Path) -> list[dict]:
        """history.csv as a list of per-epoch dicts (empty when no epoch finished)."""
        source = Path(folder) / HISTORY_FILE
        if not source.exists():
            return []
        rows = list(csv.DictReader(io.StringIO(source.read_text("utf-8"))))
        parsed = []
        for row in rows:
            item = {"epoch": int(row["epoch"]), "phase": row["phase"]}
            for key in HISTORY_COLUMNS[2:]:
                item[key] = float(row[key]) if row.get(key) not in (None, "") else None
            parsed.append(item)
        return parsed

    def load_model(self):
        import keras

        try:
            return keras.models.load_model(self.model_path)
        except Exception as exc:  # zip, h5 and Keras errors alike mean "damaged"
            raise RunFolderError(f"The model file {self.model_path} cannot be loaded: {exc}") from exc


def evaluate_folder(
    run: RunFolder | Path | str,
    folder: Path | str,
    *,
    progress=None,
    cancel=None,
    batch_size: int = 32,
) -> EvaluationReport:
    """Score a run's model on a labelled folder (one subfolder per class, names as in training)."""
    from finetune_gui.core.data.pipeline import decode_images
    from finetune_gui.core.data.scan import scan_folder
    from finetune_gui.core.events import ignore_progress
    from finetune_gui.core.run.evaluation import build_report, predict_probabilities

    progress = progress or ignore_progress
    run = run if isinstance(run, RunFolder) else RunFolder.open(run)
    scan = scan_folder(folder, progress=progress, cancel=cancel)
    unknown = sorted(set(scan.classes) - set(run.classes))
    if unknown:
        raise UserError(
            f"{folder} has class folders the model was not trained on: {', '.join(unknown)}. "
            f"The model knows: {', '.join(run.classes)}."
        )
    if not scan.records:
        raise UserError(f"{folder} has no readable images in class folders to evaluate on.")
    index = {name: i for i, name in enumerate(run.classes)}
    paths = [r.path for r in scan.records]
    labels = np.array([index[r.label] for r in scan.records], dtype="int32")
    images = decode_images(paths, run.image_size, progress=progress, cancel=cancel, stage="evaluate")
    probabilities = predict_probabilities(run.load_model(), images, batch_size)
    return build_report(run.classes, labels, probabilities, paths)


def evaluate_test_split(
    run: RunFolder | Path | str,
    *,
    progress=None,
    cancel=None,
    batch_size: int = 32,
) -> EvaluationReport:
    """Score a run's kept model on its own test split (e.g. a cancelled run) and save the
    report as its metrics.json; raises `RunFolderError` when the run has no test images."""
    from finetune_gui.core.data.pipeline import decode_images
    from finetune_gui.core.events import ignore_progress
    from finetune_gui.core.run.evaluation import build_report, predict_probabilities

    progress = progress or ignore_progress
    run = run if isinstance(run, RunFolder) else RunFolder.open(run)
    split = run.split()
    if not split.test:
        raise RunFolderError(
            f"The run {run.path.name} has no test images. Score it on a labelled folder: "
            f"finetune-gui evaluate {run.path} FOLDER")
    missing = [p for p, _ in split.test if not p.exists()]
    if missing:
        raise images_gone(missing, "test image")
    paths = [p for p, _ in split.test]
    labels = np.array([label for _, label in split.test], dtype="int32")
    images = decode_images(paths, run.image_size, progress=progress, cancel=cancel,
                           stage="evaluate")
    probabilities = predict_probabilities(run.load_model(), images, batch_size)
    report = build_report(run.classes, labels, probabilities, paths)
    write_json(run.path / METRICS_FILE, report.to_dict())
    return report
