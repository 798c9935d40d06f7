"""A k-fold estimate for small folders: every image is tested once, on cached features.

A test split of 30 images gives an interval 30 points wide. With the frozen base's pooled
features computed once, the solved head (`head_solver`) can be refitted k times in
seconds, each time tested on a fold it never saw, so the estimate rests on every image of the
folder instead of the test split alone. It measures the head on the frozen base (phase 1), not
the fine-tuned model, and says so; the final model is trained as usual.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from finetune_gui.core.events import LogMessage, ProgressCallback
from finetune_gui.core.model.softmax_head import search_softmax_head
from finetune_gui.core.run.intervals import kfold_text, wilson_interval

KFOLD_BELOW = 2000  # folders smaller than this get the estimate
INNER_VALIDATION = 0.2  # of each fold's training part, to choose the L2 strength


@dataclass(frozen=True)
class KFoldEstimate:
    folds: int
    images: int
    accuracy: float
    interval: tuple[float, float]
    fold_accuracies: tuple[float, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        return kfold_text(self.to_dict())


def kfold_head_accuracy(
    features: np.ndarray, labels: np.ndarray, n_classes: int, *, folds: int = 5, seed: int = 0
) -> KFoldEstimate:
    """Stratified k-fold accuracy of the solved head; L2 chosen inside each fold's training part."""
    from sklearn.model_selection import StratifiedKFold, train_test_split


    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    smallest = int(np.bincount(labels).min()) if len(labels) else 0
    folds = max(2, min(folds, smallest))
    if smallest < 2:
        raise ValueError("Every class needs at least 2 images for a k-fold estimate.")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    correct, per_fold = 0, []
    for train_index, test_index in splitter.split(features, labels):
        x, y = features[train_index], labels[train_index]
        try:
            fit, val = train_test_split(
                np.arange(len(y)), test_size=INNER_VALIDATION, stratify=y, random_state=seed
            )
        except ValueError:  # a class too small to stratify: choose on the training part itself
            fit, val = np.arange(len(y)), np.arange(len(y))
        head = search_softmax_head(x[fit], y[fit], x[val], y[val], n_classes).head
        hits = int((head.probabilities(features[test_index]).argmax(1) == labels[test_index]).sum())
        correct += hits
        per_fold.append(hits / len(test_index))
    return KFoldEstimate(
        folds, len(labels), correct / len(labels), wilson_interval(correct, len(labels)),
        tuple(per_fold),
    )


def kfold_for_run(
    train_pooled: np.ndarray,
    train_labels: np.ndarray,
    val_pooled: np.ndarray,
    val_labels: np.ndarray,
    n_classes: int,
    *,
    seed: int,
    progress: ProgressCallback,
) -> dict | None:
    """The k-fold estimate over a small run's training and validation images, for metrics.json
    and run.json (None, said in the log, from `KFOLD_BELOW` images up, where the test split is
    large enough on its own, or when a class is too small to fold)."""
    images = np.concatenate([np.asarray(train_pooled), np.asarray(val_pooled)])
    targets = np.concatenate([np.asarray(train_labels), np.asarray(val_labels)])
    if len(targets) >= KFOLD_BELOW:
        progress(LogMessage(f"No k-fold estimate: {KFOLD_BELOW:,} images or more."))
        return None
    try:
        estimate = kfold_head_accuracy(images, targets, n_classes, seed=seed)
    except ValueError as exc:
        progress(LogMessage(f"No k-fold estimate: {exc}", "warning"))
        return None
    progress(LogMessage(estimate.text() + "."))
    return estimate.to_dict()
