"""Scoring a model on images it never saw: the numbers a user reads on the Results page."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from finetune_gui.core.run.intervals import (
    format_interval,
    kfold_text,
    rough_note,
    wilson_interval,
)


@dataclass(frozen=True)
class ClassMetrics:
    name: str
    precision: float
    recall: float
    f1: float
    support: int
    # Wilson 95% intervals: recall over this class's test images, precision over the images
    # predicted as it (None in a metrics.json written before intervals existed).
    recall_interval: tuple[float, float] | None = None
    precision_interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class Misclassified:
    path: str
    true_label: str
    predicted_label: str
    confidence: float  # the probability the model gave its (wrong) answer


@dataclass
class EvaluationReport:
    """Accuracy, per-class metrics, ROC-AUC, confusion matrix and the images the model got wrong."""

    classes: list[str]
    accuracy: float
    per_class: list[ClassMetrics]
    macro_avg: dict[str, float]
    weighted_avg: dict[str, float]
    roc_auc: dict[str, float | None]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    misclassified: list[Misclassified]
    count: int
    predictions: list[dict] = field(default_factory=list)  # path, true, predicted, probabilities
    accuracy_interval: tuple[float, float] | None = None  # Wilson 95%
    kfold: dict | None = None  # training.kfold.KFoldEstimate.to_dict(), when one was asked for

    def to_dict(self) -> dict:
        data = asdict(self)
        data["rough_estimate_note"] = self.rough_note
        return data

    @property
    def rough_note(self) -> str:
        """The plain warning shown under the accuracy of a small test split ('' otherwise)."""
        return rough_note(self.count) if self.count else ""

    def accuracy_text(self) -> str:
        """'Test accuracy 66.7% (95% interval 43.8%-83.7%) on 18 images'."""
        interval = self.accuracy_interval or wilson_interval(
            round(self.accuracy * self.count), self.count
        )
        return (
            f"Test accuracy {self.accuracy:.1%} ({format_interval(*interval)}) "
            f"on {self.count:,} images"
        )

    @classmethod
    def from_dict(cls, data: dict) -> EvaluationReport:
        data = dict(data)
        data.pop("rough_estimate_note", None)
        data["per_class"] = [ClassMetrics(**_interval_tuples(m)) for m in data["per_class"]]
        data = _interval_tuples(data)
        data["misclassified"] = [Misclassified(**m) for m in data["misclassified"]]
        return cls(**data)

    def reliability(self, bins: int | None = None) -> list[dict]:
        """Confidence against accuracy on the test images, in `bins` bins (15 by default;
        core/run/calibration.py)."""
        from finetune_gui.core.run.calibration import ECE_BINS, reliability

        return reliability(*self._answers(), bins=bins or ECE_BINS)

    @property
    def calibration_error(self) -> float | None:
        """The expected calibration error on the test images (0 is perfect; None without
        per-image answers)."""
        from finetune_gui.core.run.calibration import expected_calibration_error

        return expected_calibration_error(*self._answers())

    @property
    def calibration_error_by_chance(self) -> tuple[float, float] | None:
        """What a model exactly right about itself would score on these test answers by
        chance: (mean, 95th percentile) of the calibration error (None without answers)."""
        from finetune_gui.core.run.calibration import error_by_chance

        probabilities, _ = self._answers()
        return error_by_chance(probabilities.max(axis=1)) if len(probabilities) else None

    def calibration_facts(self) -> dict:
        """`calibration_error` and `calibration_error_by_chance` under those names: what the
        model card and `evaluate --json` add to the report's own fields."""
        return {"calibration_error": self.calibration_error,
                "calibration_error_by_chance": self.calibration_error_by_chance}

    def _answers(self) -> tuple[np.ndarray, np.ndarray]:
        rows = [p for p in self.predictions if p.get("probabilities") is not None]
        if not rows:
            return np.zeros((0, len(self.classes))), np.zeros(0, dtype=int)
        return (np.array([p["probabilities"] for p in rows], dtype=float),
                np.array([p["true"] for p in rows], dtype=int))

    def files_in_cell(self, true_index: int, predicted_index: int) -> list[str]:
        """The images behind one confusion-matrix cell."""
        return [
            p["path"]
            for p in self.predictions
            if p["true"] == true_index and p["predicted"] == predicted_index
        ]


def _interval_tuples(data: dict) -> dict:
    """JSON stores intervals as lists; the report holds them as (low, high) tuples."""
    return {k: tuple(v) if k.endswith("_interval") and v is not None else v
            for k, v in data.items()}


def build_report(
    classes: list[str], y_true: np.ndarray, probabilities: np.ndarray, paths: list[Path | str]
) -> EvaluationReport:
    """All metrics from true labels and predicted probabilities (scikit-learn does the maths)."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    n = len(classes)
    y_true = np.asarray(y_true, dtype=int)
    probabilities = (
        np.asarray(probabilities, dtype=float)[:, :n] if len(y_true) else np.zeros((0, n))
    )
    y_pred = probabilities.argmax(axis=1) if len(y_true) else np.zeros(0, dtype=int)
    labels = list(range(n))
    if not len(y_true):  # no test images (a split made without a test part): nothing to score
        precision = recall = f1 = support = np.zeros(n)
    else:
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=0
        )
    hits = [int(((y_true == i) & (y_pred == i)).sum()) for i in labels]
    predicted = [int((y_pred == i).sum()) for i in labels]
    per_class = [
        ClassMetrics(
            classes[i],
            float(precision[i]),
            float(recall[i]),
            float(f1[i]),
            int(support[i]),
            recall_interval=wilson_interval(hits[i], int(support[i])),
            precision_interval=wilson_interval(hits[i], predicted[i]),
        )
        for i in labels
    ]

    def average(kind: str) -> dict[str, float]:
        if not len(y_true):
            return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=kind, zero_division=0
        )
        return {"precision": float(p), "recall": float(r), "f1": float(f)}

    roc_auc: dict[str, float | None] = {}
    for i, name in enumerate(classes):
        positives = y_true == i
        # One-vs-rest AUC exists only when the test set has both this class and others.
        if positives.any() and (~positives).any():
            roc_auc[name] = float(roc_auc_score(positives, probabilities[:, i]))
        else:
            roc_auc[name] = None
    defined = [v for v in roc_auc.values() if v is not None]
    roc_auc["macro"] = float(np.mean(defined)) if defined else None

    predictions = [
        {
            "path": str(path),
            "true": int(t),
            "predicted": int(p),
            "probabilities": [round(float(v), 6) for v in probs],
        }
        for path, t, p, probs in zip(paths, y_true, y_pred, probabilities, strict=True)
    ]
    wrong = [
        Misclassified(str(path), classes[t], classes[p], float(probs[p]))
        for path, t, p, probs in zip(paths, y_true, y_pred, probabilities, strict=True)
        if t != p
    ]
    wrong.sort(key=lambda m: m.confidence, reverse=True)
    return EvaluationReport(
        classes=list(classes),
        accuracy=float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        per_class=per_class,
        macro_avg=average("macro"),
        weighted_avg=average("weighted"),
        roc_auc=roc_auc,
        confusion=confusion_matrix(y_true, y_pred, labels=labels).tolist()
        if len(y_true)
        else [[0] * n for _ in range(n)],
        misclassified=wrong,
        count=len(y_true),
        predictions=predictions,
        accuracy_interval=wilson_interval(int((y_true == y_pred).sum()), len(y_true)),
    )


def predict_probabilities(
    model, images: np.ndarray, batch_size: int = 32, callbacks=None
) -> np.ndarray:
    """Class probabilities for uint8 images, batch by batch."""
    if len(images) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype="float32")
    from finetune_gui.core.data.pipeline import INFERENCE_BATCH, batches

    batch_size = min(batch_size, INFERENCE_BATCH)
    return np.asarray(
        model.predict(batches([images], batch_size), verbose=0, callbacks=callbacks or [])
    )


def format_report(report: EvaluationReport) -> str:
    """A plain-text table for the terminal."""
    from finetune_gui.core.run.calibration import calibration_text

    width = max(8, *(len(c) for c in report.classes))
    lines = [
        report.accuracy_text(),
        *([report.rough_note] if report.rough_note else []),
        *([kfold_text(report.kfold)] if report.kfold else []),
        *([calibration_text(error, report.calibration_error_by_chance)]
          if (error := report.calibration_error) is not None else []),
        f"{'class':<{width}}  precision  recall  recall 95% interval     f1  support   roc-auc",
    ]
    for m in report.per_class:
        auc = report.roc_auc.get(m.name)
        auc_text = f"{auc:.3f}" if auc is not None else "   -"
        low, high = m.recall_interval or (float("nan"), float("nan"))
        lines.append(
            f"{m.name:<{width}}  {m.precision:9.3f}  {m.recall:6.3f}  {low:8.3f} - {high:5.3f}   "
            f"{m.f1:5.3f}  {m.support:7d}   {auc_text}"
        )
    for label, avg in (("macro avg", report.macro_avg), ("weighted", report.weighted_avg)):
        lines.append(
            f"{label:<{width}}  {avg['precision']:9.3f}  {avg['recall']:6.3f}  {avg['f1']:5.3f}"
        )
    lines.append("Confusion matrix (rows: true, columns: predicted):")
    for name, row in zip(report.classes, report.confusion, strict=True):
        lines.append(f"  {name:<{width}} " + " ".join(f"{v:5d}" for v in row))
    if report.misclassified:
        lines.append(f"{len(report.misclassified)} misclassified, most confident first:")
        for m in report.misclassified[:10]:
            lines.append(
                f"  {m.path}: is {m.true_label}, predicted {m.predicted_label} ({m.confidence:.0%})"
            )
    return "\n".join(lines)
