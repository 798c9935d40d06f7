"""What the model would answer about the images it learned, had it not learned them.

The "not sure" rule sets its confidence threshold on the run's own images. The softmax maximum
of an image whose label the head was fitted on is that of an answer it was taught, higher than
on any new picture: on a head refitted on training + validation images, a threshold set on them
called 4% of validation images "not sure" and 19% of the unseen test images, where 5% was asked
(docs/benchmarks.md). Those images' answers are replaced by k-fold ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HELD_OUT_FOLDS = 5
MAX_ITERATIONS = 1000
DEFAULT_L2 = 1e-2  # for a head that was trained, not solved: the middle of the solver's grid


@dataclass(frozen=True)
class HeadPenalty:
    """How the run's head was regularised: `l2` on standardised features, or (`standardised`
    False) the plain logistic regression's `l2` on features of length `feature_norm`."""

    l2: float
    standardised: bool = True
    feature_norm: float = 1.0


def head_penalty(facts: dict) -> HeadPenalty:
    """The run's head's penalty from run.json; DEFAULT_L2 standardised for a trained head."""
    refit = facts.get("head_refit") or {}
    if "l2" in refit:
        return HeadPenalty(float(refit["l2"]), bool(refit.get("standardised", True)),
                           float(refit.get("feature_norm", 1.0)))  # fmt: skip
    tried = [row for row in facts.get("head_l2_tried") or [] if row.get("val_accuracy") is not None]
    if not tried:
        return HeadPenalty(DEFAULT_L2)
    chosen = next((row for row in tried if row.get("chosen")), None)
    if chosen is None:  # a run from before rows were marked: all standardised, best one kept
        chosen = max(tried, key=lambda row: (row["val_accuracy"], row["l2"]))
    if not chosen.get("standardised", True):
        # The plain head, fine-tuned afterwards (no refit): its features' length is not
        # recorded, and Adam has moved it from the solved optimum anyway.
        return HeadPenalty(DEFAULT_L2)
    return HeadPenalty(float(chosen["l2"]))


def unseen_probabilities(found, learned: tuple[str, ...], penalty: HeadPenalty) -> np.ndarray:
    """The run's probabilities (`found`: DatasetFeatures), with those of the images in the
    `learned` parts replaced by k-fold ones: a softmax head with the run's `penalty`
    (`head_penalty`), solved without each image's fold.
    Unchanged when a class has a single image.

    The head solver's objective (mean cross-entropy + l2/2 |W|^2, core/training/head_solver.py)
    is scikit-learn's with C = 1 / (l2 * images). features.npz keeps unit-length features; a
    plain head's were of length `feature_norm`, so they are scaled back to it.
    """
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    probabilities = np.array(found.probabilities, dtype=np.float32)
    rows = np.flatnonzero(np.isin(found.parts, learned))
    labels = found.labels[rows]
    present, counts = np.unique(labels, return_counts=True)
    folds = min(HELD_OUT_FOLDS, int(counts.min()) if len(counts) else 0)
    if folds < 2 or len(present) < 2:
        return probabilities  # nothing can be held out
    features = np.asarray(found.features, dtype=np.float64)[rows]
    if not penalty.standardised:
        features = features * penalty.feature_norm
    folding = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    # One BLAS thread, as in the head solver: 4.8 s -> 2.4 s on 4,854 images of 1,280 features.
    with threadpool_limits(limits=1):
        _fill_held_out(probabilities, features, labels, rows, folding, penalty)
    return probabilities


def _fill_held_out(probabilities, features, labels, rows, folding, penalty: HeadPenalty) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    for fit, held_out in folding.split(features, labels):
        # The plain head's l2 was 1 / images: the same C for every fold's fit.
        strength = penalty.l2 if penalty.standardised else penalty.l2 * len(rows) / len(fit)
        steps = [StandardScaler()] if penalty.standardised else []
        head = make_pipeline(*steps, LogisticRegression(
            C=1.0 / (strength * len(fit)), max_iter=MAX_ITERATIONS))  # fmt: skip
        head.fit(features[fit], labels[fit])
        columns = head.classes_  # the classes present in this fold's fit, in order
        probabilities[rows[held_out]] = 0.0
        probabilities[np.ix_(rows[held_out], columns)] = head.predict_proba(features[held_out])
