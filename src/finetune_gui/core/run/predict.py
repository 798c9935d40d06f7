"""A run's model applied to any number of images, a chunk at a time: top-k classes, confidence
and "not sure" for each, unreadable files named with their reason and never a stop.

Memory stays bounded whatever the folder's size: CHUNK images are decoded, predicted and
handed on before the next are read.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.data.images import ImageReadError, load_rgb
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)

CHUNK = 64
CSV_COLUMNS = ["path", "label", "confidence", "unsure", "unsure_reason", "top", "error"]


@dataclass(frozen=True)
class Prediction:
    """One image: its top-k classes (best first), or the reason it could not be read.

    `unsure` is None when the model is sure (or the run has no rule), else the plain reason.
    """

    path: Path
    top: list[tuple[str, float]]
    error: str | None = None
    unsure: str | None = None

    @property
    def label(self) -> str | None:
        return self.top[0][0] if self.top else None

    @property
    def confidence(self) -> float | None:
        return self.top[0][1] if self.top else None

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "error": self.error,
            "unsure": None if self.error else self.unsure is not None,
            "unsure_reason": self.unsure,
            "top": [{"label": label, "probability": round(p, 6)} for label, p in self.top],
        }

    def csv_row(self) -> list[str]:
        return [
            str(self.path),
            self.label or "",
            f"{self.confidence:.6f}" if self.confidence is not None else "",
            "" if self.error else ("yes" if self.unsure else "no"),
            self.unsure or "",
            # JSON, not "cat 0.91; dog 0.09": a class may be named "a; b" or "x 0.5", and
            # the cell must still say which name goes with which probability.
            json.dumps({label: round(p, 6) for label, p in self.top}, ensure_ascii=False),
            self.error or "",
        ]


def list_images(folder: Path | str) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every non-hidden file below `folder` (sorted), and sub-folders that cannot be opened."""
    from finetune_gui.core.data.walk import walk_files
    from finetune_gui.core.errors import UserError

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder.")
    unreadable: list[tuple[Path, str]] = []
    return list(walk_files(folder, unreadable)), unreadable


def predict_paths(
    run,
    paths: Iterable[Path | str],
    *,
    top_k: int = 3,
    model=None,
    rule=None,
    total: int | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> Iterator[Prediction]:
    """Predictions for `paths`, in order, CHUNK images at a time.

    `rule` is the run's "not sure" rule; by default it is read from the run (or calibrated
    once on first use, see core.run.unsure).
    """
    from finetune_gui.core.run.dataset_features import probe
    from finetune_gui.core.run.unsure import unsure_rule

    model = model or run.load_model()
    seeing = _probe_or_none(model)
    if rule is None and seeing is not None:
        rule = unsure_rule(run, model=model, progress=progress, cancel=cancel)
    k = max(1, min(top_k, len(run.classes)))
    size = run.image_size
    progress(StageStarted("predict", total or 0, "Classifying images"))
    done = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        for chunk in _chunks(paths, CHUNK):
            check_cancel(cancel)
            loaded = list(pool.map(lambda p: _load(p, size), chunk))
            readable = [i for i, item in enumerate(loaded) if isinstance(item, np.ndarray)]
            answers: dict = {}
            if readable:
                pixels = np.stack([loaded[i] for i in readable])
                if seeing is None:
                    probabilities = _probabilities(model, pixels, len(run.classes))
                    verdicts = [None] * len(readable)
                else:
                    early, pooled, probabilities = probe(seeing, pixels, len(run.classes))
                    verdicts = (
                        rule.judge(early, pooled, probabilities) if rule
                        else [None] * len(readable)
                    )
                answers = dict(zip(readable, zip(probabilities, verdicts, strict=True), strict=True))
            for i, path in enumerate(chunk):
                if i in answers:
                    probs, verdict = answers[i]
                    order = np.argsort(probs)[::-1][:k]
                    top = [(run.classes[j], float(probs[j])) for j in order]
                    yield Prediction(path, top, None, verdict)
                else:
                    yield Prediction(path, [], loaded[i])
            done += len(chunk)
            progress(StageProgress("predict", done, total or done))


def predict_images(run, images: list[Path | str], top_k: int = 3, model=None) -> list[Prediction]:
    """Top-k classes and "not sure" for each image of a short list; an unreadable image gets
    an `error`, the rest still predict. `run` is a RunFolder or its path."""
    if not hasattr(run, "classes"):
        from finetune_gui.core.run.folder import RunFolder

        run = RunFolder.open(run)
    return list(predict_paths(run, images, top_k=top_k, model=model))


def _probe_or_none(model):
    """The features-and-probabilities probe, or None for a model this app did not build as one
    backbone and head (such a model predicts, without "not sure")."""
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.run.dataset_features import probe_model

    try:
        return probe_model(model)
    except (UserError, KeyError, ValueError):
        return None


def _probabilities(model, pixels: np.ndarray, classes: int) -> np.ndarray:
    from finetune_gui.core.run.evaluation import predict_probabilities

    return np.asarray(predict_probabilities(model, pixels), np.float32)[:, :classes]


def _load(path: Path, size: int) -> np.ndarray | str:
    try:
        return load_rgb(path, size)
    except ImageReadError as exc:
        return exc.reason


def _chunks(paths: Iterable[Path | str], size: int) -> Iterator[list[Path]]:
    chunk: list[Path] = []
    for path in paths:
        chunk.append(Path(path))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class PredictionCsv:
    """Rows written as they come (one CSV per folder, same columns as `predict --csv`)."""

    def __init__(self, handle) -> None:
        self.writer = csv.writer(handle)
        self.writer.writerow(CSV_COLUMNS)

    def write(self, prediction: Prediction) -> None:
        self.writer.writerow(prediction.csv_row())


def csv_text(predictions: Iterable[Prediction]) -> str:
    buffer = io.StringIO()
    table = PredictionCsv(buffer)
    for p in predictions:
        table.write(p)
    return buffer.getvalue()
