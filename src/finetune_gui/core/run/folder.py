"""A run folder: everything one training run produced, written atomically, read back safely.

Layout: model.keras (raw pixels in, probabilities out), labels.txt (one class a line, in output
order), metrics.json, history.csv, settings.json, split.json, run.json (status and facts).
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune_gui import __version__
from finetune_gui.core.data.images import ImageReadError, load_rgb
from finetune_gui.core.errors import RunFolderError, UserError
from finetune_gui.core.files import atomic_write_text, atomic_write_with
from finetune_gui.core.run.evaluation import EvaluationReport
from finetune_gui.core.settings import TrainingSettings

MODEL_FILE = "model.keras"
LABELS_FILE = "labels.txt"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
SETTINGS_FILE = "settings.json"
SPLIT_FILE = "split.json"
RUN_FILE = "run.json"
HISTORY_COLUMNS = ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]
RUN_FORMAT = 1


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
        **extra,
    }


@dataclass
class RunFolder:
    """A finished (or cancelled) run read from disk."""

    path: Path
    classes: list[str]
    settings: TrainingSettings
    facts: dict

    @classmethod
    def open(cls, path: Path | str) -> RunFolder:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise RunFolderError(f"{path} is not a run folder (it does not exist or is a file).")
        missing = [n for n in (MODEL_FILE, LABELS_FILE, SETTINGS_FILE) if not (path / n).is_file()]
        if missing:
            raise RunFolderError(
                f"{path} is not a complete run folder: {', '.join(missing)} missing. "
                f"Was the training finished or cancelled before the first epoch?"
            )
        try:
            classes = [
                line.strip() for line in (path / LABELS_FILE).read_text("utf-8").splitlines()
            ]
            settings = TrainingSettings.from_dict(
                json.loads((path / SETTINGS_FILE).read_text("utf-8"))
            )
            facts = json.loads((path / RUN_FILE).read_text("utf-8")) if (path / RUN_FILE).exists() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise RunFolderError(f"The run folder {path} has a damaged file: {exc}.") from exc
        except UserError as exc:
            raise RunFolderError(f"The run folder {path} has unusable settings: {exc}") from exc
        if int(facts.get("format", RUN_FORMAT)) > RUN_FORMAT:
            raise RunFolderError(
                f"{path} was written by a newer finetune-gui; update the app to open it."
            )
        return cls(path, [c for c in classes if c], settings, facts)

    @property
    def status(self) -> str:
        return self.facts.get("status", "unknown")

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def image_size(self) -> int:
        return self.settings.resolved_image_size

    @property
    def report(self) -> EvaluationReport | None:
        metrics = self.path / METRICS_FILE
        if not metrics.exists():
            return None
        return EvaluationReport.from_dict(json.loads(metrics.read_text("utf-8")))

    @property
    def history(self) -> list[dict]:
        return self.read_history(self.path)

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


@dataclass(frozen=True)
class Prediction:
    path: Path
    top: list[tuple[str, float]]
    error: str | None = None


def predict_images(
    run: RunFolder | Path | str, images: list[Path | str], top_k: int = 3, model=None
) -> list[Prediction]:
    """Top-k classes for each image; an unreadable image gets an `error`, the rest still predict."""
    run = run if isinstance(run, RunFolder) else RunFolder.open(run)
    model = model or run.load_model()
    size = run.image_size
    pixels, readable, results = [], [], {}
    for raw in images:
        path = Path(raw)
        try:
            pixels.append(load_rgb(path, size))
            readable.append(path)
        except ImageReadError as exc:
            results[path] = Prediction(path, [], exc.reason)
    if pixels:
        probabilities = np.asarray(model.predict(np.stack(pixels), verbose=0))
        k = max(1, min(top_k, len(run.classes)))
        for path, probs in zip(readable, probabilities, strict=True):
            order = np.argsort(probs)[::-1][:k]
            results[path] = Prediction(path, [(run.classes[i], float(probs[i])) for i in order])
    return [results[Path(p)] for p in images]


def evaluate_folder(
    run: RunFolder | Path | str,
    folder: Path | str,
    *,
    progress=None,
    cancel=None,
    batch_size: int = 32,
) -> EvaluationReport:
    """Score a run's model on a labelled folder (one subfolder per class, names as in training)."""
    from finetune_gui.core.data.dataset import scan_folder
    from finetune_gui.core.data.pipeline import decode_images
    from finetune_gui.core.events import ignore_progress
    from finetune_gui.core.run.evaluation import build_report, predict_probabilities

    progress = progress or ignore_progress
    run = run if isinstance(run, RunFolder) else RunFolder.open(run)
    scan = scan_folder(folder, progress=progress, cancel=cancel)
    unknown = sorted(set(scan.classes) - set(run.classes))
    if unknown:
        raise UserError(
            f"{folder} has class folder(s) the model was not trained on: {', '.join(unknown)}. "
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
