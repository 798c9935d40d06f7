"""What a head would answer about the images it learned, had it not learned them: the one
held-out judge of the app. "Not sure" sets its confidence cut on these answers; suspect labels
are the images these answers give to another class.

The "not sure" rule sets its confidence threshold on the run's own images. The softmax maximum
of an image whose label the head was fitted on is that of an answer it was taught, higher than
on any new picture: on a head refitted on training + validation images, a threshold set on them
called 4% of validation images "not sure" and 19% of the unseen test images, where 5% was asked
(docs/benchmarks.md). Those images' answers are replaced by k-fold ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finetune_gui.core.run.record import RunFacts

HELD_OUT_FOLDS = 5
MAX_ITERATIONS = 2000
DEFAULT_L2 = 1e-2  # for a head that was trained, not solved: the middle of the solver's grid


@dataclass(frozen=True)
class HeadPenalty:
    """How the run's head was regularised: `l2` on standardised features, or (`standardised`
    False) the plain logistic regression's `l2` on features of length `feature_norm`."""

    l2: float
    standardised: bool = True
    feature_norm: float = 1.0


def head_penalty(facts: RunFacts) -> HeadPenalty:
    """The run's head's penalty from run.json; DEFAULT_L2 standardised for a trained head."""
    refit = facts.head_refit or {}
    if "l2" in refit:
        return HeadPenalty(float(refit["l2"]), bool(refit.get("standardised", True)),
                           float(refit.get("feature_norm", 1.0)))
    tried = [row for row in facts.head_l2_tried or [] if row.get("val_accuracy") is not None]
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


def learned_parts(facts: RunFacts) -> tuple[str, ...]:
    """The parts of the split whose labels the kept head was fitted on: the training images,
    and the validation images too once the head was solved again on both (`head_refit`)."""
    return ("train", "val") if facts.head_refit else ("train",)


def plain_penalty(images: int) -> HeadPenalty:
    """scikit-learn's `LogisticRegression()` (C = 1) on `images` features as they are: the head
    a run solves by default, and the suspect-label judge."""
    return HeadPenalty(1.0 / max(images, 1), standardised=False)


def held_out_probabilities(
    features: np.ndarray, labels: np.ndarray, n_classes: int, penalty: HeadPenalty,
    folds: int = HELD_OUT_FOLDS,
) -> np.ndarray | None:
    """k-fold answers (N, n_classes): each image's probabilities from a softmax head with
    `penalty`, solved on the other folds without it; None when a class has fewer than 2 images
    (nothing can be held out).

    The head solver's objective (mean cross-entropy + l2/2 |W|^2, core/training/head_solver.py)
    is scikit-learn's with C = 1 / (l2 * images); a plain head's features are scaled to the
    length it saw (`feature_norm`).
    """
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    from finetune_gui.core.data.storage import capped_sample, row_chunks, rows_in_budget

    labels = np.asarray(labels)
    present, counts = np.unique(labels, return_counts=True)
    k = min(folds, int(counts.min()) if len(counts) else 0)
    if k < 2 or len(present) < 2:
        return None
    scale = 1.0 if penalty.standardised else penalty.feature_norm
    width = int(np.prod(features.shape[1:]))

    def read(rows: np.ndarray) -> np.ndarray:  # RAM or the disk store, a few rows at a time
        return np.asarray(features[rows], dtype=np.float64) * scale

    # Inside the memory budget: each fold's head fits on a capped sample of its rows (the
    # scaler's and solver's copies of them, about three), and answers a chunk at a time.
    cap = rows_in_budget(3 * 8 * width)
    answers = np.zeros((len(labels), n_classes), dtype=np.float32)
    folding = StratifiedKFold(n_splits=k, shuffle=True, random_state=0)
    # One BLAS thread, as in the head solver: 4.8 s -> 2.4 s on 4,854 images of 1,280 features.
    with threadpool_limits(limits=1):
        for fold, (fit, held_out) in enumerate(folding.split(np.zeros((len(labels), 1)), labels)):
            picked = capped_sample(labels[fit], cap, seed=fold)
            used = fit if picked is None else fit[picked]
            head = _head(penalty, len(fit), len(labels), len(used))
            head.fit(read(used), labels[used])
            for part in row_chunks(len(held_out), 8 * width):
                rows = held_out[part]
                # The classes present in this fold's fit, in order.
                answers[np.ix_(rows, head.classes_)] = head.predict_proba(read(rows))
    return answers


def _head(penalty: HeadPenalty, fit_images: int, images: int, used: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # The plain head's l2 was 1 / images: the same C for every fold's fit. A fit on a sample
    # of `used` of its `fit_images` rows keeps the mean loss's penalty, so it estimates the
    # same head.
    strength = penalty.l2 if penalty.standardised else penalty.l2 * images / fit_images
    steps = [StandardScaler()] if penalty.standardised else []
    regression = LogisticRegression(C=1.0 / (strength * used), max_iter=MAX_ITERATIONS)
    return make_pipeline(*steps, regression)


def unseen_probabilities(found, learned: tuple[str, ...], penalty: HeadPenalty,
                         temperature: float = 1.0) -> np.ndarray:
    """The run's probabilities (`found`: DatasetFeatures), with those of the images in the
    `learned` parts (`learned_parts`) replaced by held-out ones at the run's `penalty`
    (`head_penalty`), calibrated at the run's `temperature` as the kept model's own answers are
    (core/run/calibration.py). features.npz keeps unit-length features, which a plain head's
    penalty scales back. Unchanged when a class has a single image."""
    from finetune_gui.core.run.calibration import with_temperature

    probabilities = np.array(found.probabilities, dtype=np.float32)
    rows = np.flatnonzero(np.isin(found.parts, learned))
    answers = held_out_probabilities(
        np.asarray(found.features)[rows], found.labels[rows], probabilities.shape[1], penalty)
    if answers is not None:
        probabilities[rows] = with_temperature(answers, temperature)
    return probabilities
