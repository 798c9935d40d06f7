"""What the model would answer about the images it learned, had it not learned them.

The "not sure" rule sets its confidence threshold on the run's own images. The softmax maximum
of an image whose label the head was fitted on is that of an answer it was taught, higher than
on any new picture: on a head refitted on training + validation images, a threshold set on them
called 4% of validation images "not sure" and 19% of the unseen test images, where 5% was asked
(docs/benchmarks.md). Those images' answers are replaced by k-fold ones.
"""

from __future__ import annotations

import numpy as np

HELD_OUT_FOLDS = 5
MAX_ITERATIONS = 1000
DEFAULT_L2 = 1e-2  # for a head that was trained, not solved: the middle of the solver's grid


def head_l2(facts: dict) -> float:
    """The L2 strength of the run's solved head (run.json), or DEFAULT_L2 for a trained one."""
    if "l2" in (facts.get("head_refit") or {}):
        return float(facts["head_refit"]["l2"])
    tried = [row for row in facts.get("head_l2_tried") or [] if row.get("val_accuracy") is not None]
    if not tried:
        return DEFAULT_L2
    # As the solver chose: best validation accuracy, the stronger penalty breaking ties.
    return float(max(tried, key=lambda row: (row["val_accuracy"], row["l2"]))["l2"])


def unseen_probabilities(found, learned: tuple[str, ...], l2: float) -> np.ndarray:
    """The run's probabilities (`found`: DatasetFeatures), with those of the images in the
    `learned` parts replaced by k-fold ones: a softmax head at strength `l2`, solved on the
    standardised pooled features without each image's fold. Unchanged when a class has a
    single image.

    The head solver's objective (mean cross-entropy + l2/2 |W|^2, core/training/head_solver.py)
    is scikit-learn's with C = 1 / (l2 * images).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probabilities = np.array(found.probabilities, dtype=np.float32)
    rows = np.flatnonzero(np.isin(found.parts, learned))
    labels = found.labels[rows]
    present, counts = np.unique(labels, return_counts=True)
    folds = min(HELD_OUT_FOLDS, int(counts.min()) if len(counts) else 0)
    if folds < 2 or len(present) < 2:
        return probabilities  # nothing can be held out
    features = np.asarray(found.features, dtype=np.float64)[rows]
    folding = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for fit, held_out in folding.split(features, labels):
        head = make_pipeline(StandardScaler(), LogisticRegression(
            C=1.0 / (l2 * len(fit)), max_iter=MAX_ITERATIONS))  # fmt: skip
        head.fit(features[fit], labels[fit])
        columns = head.classes_  # the classes present in this fold's fit, in order
        probabilities[rows[held_out]] = 0.0
        probabilities[np.ix_(rows[held_out], columns)] = head.predict_proba(features[held_out])
    return probabilities
