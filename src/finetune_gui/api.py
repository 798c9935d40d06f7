"""The Python API: train, evaluate, predict, export and explain in one call each.

Scripts should import from here rather than from `finetune_gui.core`, whose layout may change.
Every function takes keyword arguments and returns plain values (paths, numbers, dicts, small
frozen dataclasses); a bad input raises `api.UserError` with a plain message and changes
nothing.

    from finetune_gui import api

    run = api.train(data="photos/", out="runs/first", backbone="efficientnetb0")
    print(run.accuracy)
    print(api.predict(run=run.run_dir, images=["a.jpg"])[0].label)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from finetune_gui.core.errors import UserError
from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress
from finetune_gui.core.settings import TrainingSettings

__all__ = [
    "Evaluation", "Explanation", "Exported", "Prediction", "TrainedRun", "TrainingSettings",
    "UserError", "evaluate", "explain", "export", "predict", "train",
]


@dataclass(frozen=True)
class TrainedRun:
    """A finished (or cancelled) run: its folder, and its test scores when it has them."""

    status: str  # "completed" or "cancelled"
    run_dir: Path
    message: str  # the one-line summary the window and the terminal show
    classes: list[str]
    accuracy: float | None  # on the test split; None when there was none
    metrics: dict | None  # the contents of metrics.json


@dataclass(frozen=True)
class Evaluation:
    """A run's model scored on a labelled folder."""

    accuracy: float
    count: int  # images scored
    metrics: dict  # per-class precision/recall/F1, ROC-AUC, confusion matrix, mistakes


@dataclass(frozen=True)
class Prediction:
    """The top classes for one image; `error` says why an unreadable image has none;
    `unsure` is the reason the run's rule is not sure of it (None when it is)."""

    path: Path
    label: str | None
    probability: float | None
    top: list[tuple[str, float]]
    error: str | None = None
    unsure: str | None = None


@dataclass(frozen=True)
class Exported:
    """What `export` wrote, and how closely the exported file follows the Keras model."""

    format: str
    model_path: Path
    written: list[Path]
    agreement: float  # share of check images where both pick the same class
    max_abs_diff: float  # largest probability difference on any class of any check image
    images_checked: int
    # Why the file itself was not run in its own runtime, "" when it was: a web page written
    # without Chromium (the numbers above are then those of the model inside it).
    not_checked: str = ""
    replaced: list[Path] = field(default_factory=list)  # an earlier export's files, now gone
    beside: list[Path] = field(default_factory=list)  # the same run's other formats there


@dataclass(frozen=True)
class Explanation:
    """Which part of an image made the model choose `label` (Grad-CAM)."""

    path: Path
    label: str
    probability: float
    heatmap: np.ndarray  # (H, W) floats 0..1
    written: Path | None  # the PNG of the heatmap over the image, when `out` was given


def train(
    *,
    data: Path | str,
    out: Path | str,
    settings: TrainingSettings | dict | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    **setting_values,
) -> TrainedRun:
    """Train on the image folder `data` into the new run folder `out`.

    Settings are `TrainingSettings` fields given by keyword (`backbone="resnet50"`,
    `epochs_head=3`, `weights="none"`, ...), on top of `settings` when it is given.
    """
    from finetune_gui.core.training.job import train_folder

    base = settings.to_dict() if isinstance(settings, TrainingSettings) else dict(settings or {})
    chosen = TrainingSettings.from_dict({**base, **setting_values})
    result = train_folder(data, chosen, out, progress=progress, cancel=cancel)
    report = result.report
    return TrainedRun(
        status=result.status,
        run_dir=Path(result.run_dir),
        message=result.message,
        classes=list(result.classes),
        accuracy=report.accuracy if report is not None and report.count else None,
        metrics=report.to_dict() if report is not None else None,
    )


def evaluate(
    *, run: Path | str, data: Path | str, progress: ProgressCallback = ignore_progress
) -> Evaluation:
    """Score the model of `run` on `data`, a folder with one subfolder per class."""
    from finetune_gui.core.run.folder import evaluate_folder

    report = evaluate_folder(run, data, progress=progress)
    return Evaluation(accuracy=report.accuracy, count=report.count, metrics=report.to_dict())


def predict(*, run: Path | str, images: list[Path | str], top_k: int = 3) -> list[Prediction]:
    """The `top_k` classes of each image, most likely first, in the order the images came."""
    from finetune_gui.core.run.predict import predict_images

    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise UserError(f"top_k must be a whole number, 1 or more; got {top_k!r}.")
    missing = [str(p) for p in images if not Path(p).is_file()]
    if missing:
        raise UserError(f"No such image file: {', '.join(missing)}.")
    return [
        Prediction(
            path=p.path,
            label=p.top[0][0] if p.top else None,
            probability=p.top[0][1] if p.top else None,
            top=list(p.top),
            error=p.error,
            unsure=p.unsure,
        )
        for p in predict_images(run, list(images), top_k=top_k)
    ]


def export(
    *,
    run: Path | str,
    to: Path | str,
    format: str = "keras",
    data: Path | str | None = None,
    min_agreement: float | None = None,
    replace: bool = False,
    progress: ProgressCallback = ignore_progress,
) -> Exported:
    """Write the model of `run` as `format` (keras, savedmodel, tflite, tflite-fp16,
    tflite-int8, onnx, web) to `to`, checked against the Keras model, with labels and a model
    card. A web page is checked in Chromium; without it, `not_checked` says so.

    `data` is where the run's image folder is now, if it was moved. An earlier export's
    files at `to` are replaced only with `replace`; without it the export is refused
    (`UserError`) and nothing is written.
    """
    from finetune_gui.core.export.job import export_model

    result = export_model(
        run, format, to, progress=progress, data_root=data, min_agreement=min_agreement,
        replace=replace,
    )
    v = result.verification
    return Exported(
        format=result.format,
        model_path=result.model_path,
        written=list(result.written),
        agreement=v.agreement,
        max_abs_diff=v.max_abs_diff,
        images_checked=v.n_images,
        not_checked=v.not_checked,
        replaced=list(result.replaced), beside=list(result.beside),
    )


def explain(
    *,
    run: Path | str,
    image: Path | str,
    out: Path | str | None = None,
    class_name: str | None = None,
) -> Explanation:
    """Grad-CAM of `image` for `class_name` (default: the predicted class); with `out`, also
    write the heatmap over the image as a PNG there."""
    from finetune_gui.core.data.images import ImageReadError
    from finetune_gui.core.insight.gradcam import explain_image, write_png
    from finetune_gui.core.run.folder import RunFolder

    if not Path(image).is_file():
        raise UserError(f"No such image file: {image}.")
    opened = RunFolder.open(run)
    try:
        explained = explain_image(opened, image, class_name)
    except ImageReadError as exc:
        raise UserError(f"{image} cannot be read ({exc.reason}).") from exc
    written = write_png(explained.overlay, out) if out is not None else None
    return Explanation(
        path=Path(image),
        label=explained.label,
        probability=explained.probability,
        heatmap=explained.heatmap,
        written=written,
    )
