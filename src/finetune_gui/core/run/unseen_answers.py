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
# Each fold's solver starts at the head solved on every row (or the kept head) and stops after
# this many iterations: on 1,146 digits the answers moved by at most 0.012 (0.066 at a nearly
# unpenalised L2 of 1e-4) from the optimum's and the 5% quantile of their confidence, which sets
# the "not sure" cut, by at most 0.006, in 11 s instead of 29 s from zero.
FOLD_ITERATIONS = 100
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
    folds: int = HELD_OUT_FOLDS, start=None,
) -> np.ndarray | None:
    """k-fold answers (N, n_classes): each image's probabilities from a softmax head with
    `penalty`, solved on the other folds without it; None when a class has fewer than 2 images
    (nothing can be held out).

    Each fold's head is solved by the run's own solver (core/model/softmax_head.py: mean
    cross-entropy + l2/2 |W|^2, L-BFGS to its optimum), so a held-out answer is what the kept
    head would have said. scikit-learn's `LogisticRegression` stops at a gradient tolerance of
    1e-4: on a nearly unpenalised head (l2 1e-4, 525 images of 2,784 features) it stopped after
    32 iterations at an objective 1.6 times the optimum, with weights a quarter longer than the
    kept head's, so its answers were more confident than the kept head's on new pictures; a
    temperature fitted on them over-flattened the kept model, and a "not sure" cut set on them
    called 10.7% of a run's test images "not sure" where 5% was asked. At the plain penalty this
    is scikit-learn's `LogisticRegression()` (C = 1) solved to the end; a plain head's features
    are scaled to the length it saw (`feature_norm`).

    `start` (a `SoftmaxHead` for these features, such as the kept head; else the head solved
    on every row here) is where each fold's solver starts, for at most FOLD_ITERATIONS: a fold
    leaves out a fifth of the rows, so its optimum is near the whole's.
    """
    from sklearn.model_selection import StratifiedKFold

    from finetune_gui.core.data.storage import capped_sample, row_chunks, rows_in_budget
    from finetune_gui.core.model.softmax_head import search_softmax_head

    labels = np.asarray(labels)
    present, counts = np.unique(labels, return_counts=True)
    k = min(folds, int(counts.min()) if len(counts) else 0)
    if k < 2 or len(present) < 2:
        return None
    scale = 1.0 if penalty.standardised else penalty.feature_norm
    width = int(np.prod(features.shape[1:]))

    def read(rows: np.ndarray) -> np.ndarray:  # RAM or the disk store, a few rows at a time
        # float32, as the kept head's solver reads them: half the time of float64 (18 s
        # against 34 s on 1,347 digits), answers within 0.005 of float64's.
        return np.asarray(features[rows], dtype=np.float32) * np.float32(scale)

    # Inside the memory budget: each fold's head fits on a capped sample of its rows (the
    # solver's copies of them, about three), and answers a chunk at a time.
    cap = rows_in_budget(3 * 8 * width)
    start_scale = scale  # `start` takes the features as given; `read` scales them
    if start is None:
        picked = capped_sample(labels, cap)
        every = np.arange(len(labels)) if picked is None else picked
        start = search_softmax_head(read(every), labels[every], None, None, n_classes,
                                    fallback_l2=penalty.l2,
                                    fallback_standardised=penalty.standardised).head
        start_scale = 1.0  # solved on what `read` gives
    answers = np.zeros((len(labels), n_classes), dtype=np.float32)
    folding = StratifiedKFold(n_splits=k, shuffle=True, random_state=0)
    for fold, (fit, held_out) in enumerate(folding.split(np.zeros((len(labels), 1)), labels)):
        picked = capped_sample(labels[fit], cap, seed=fold)
        used = fit if picked is None else fit[picked]
        classes = np.unique(labels[used])  # those present in this fold's fit, in order
        head = search_softmax_head(
            read(used), np.searchsorted(classes, labels[used]), None, None, len(classes),
            fallback_l2=_strength(penalty, len(fit), len(labels)),
            fallback_standardised=penalty.standardised, start=_columns(start, classes, start_scale),
            max_iterations=FOLD_ITERATIONS,
        ).head
        for part in row_chunks(len(held_out), 8 * width):
            rows = held_out[part]
            answers[np.ix_(rows, classes)] = head.probabilities(read(rows))
    return answers


def _columns(start, classes: np.ndarray, scale: float):
    """`start`'s columns for `classes`, for features multiplied by `scale` (None: no start)."""
    if start is None:
        return None
    from dataclasses import replace as changed

    return changed(start, kernel=np.asarray(start.kernel)[:, classes] / scale,
                   bias=np.asarray(start.bias)[classes])


def _strength(penalty: HeadPenalty, fit_images: int, images: int) -> float:
    """The fold's l2 on its mean loss. The plain head's l2 was 1 / images (C = 1 on the sum):
    the same C for every fold's fit is 1 / fit_images. A fit on a sample of a fold's rows keeps
    the mean loss's penalty, so it estimates the same head."""
    return penalty.l2 if penalty.standardised else penalty.l2 * images / fit_images


def unseen_probabilities(found, learned: tuple[str, ...], penalty: HeadPenalty,
                         temperature: float = 1.0) -> np.ndarray:
    """The run's probabilities (`found`: DatasetFeatures), with those of the images in the
    `learned` parts (`learned_parts`) replaced by held-out ones at the run's `penalty`
    (`head_penalty`), calibrated at the run's `temperature` as the kept model's own answers are
    (core/run/calibration.py). The answers the temperature was fitted on are taken when
    features.npz kept them (`found.held_out`, for every such image): the same folds, solved
    once. Else they are solved here, on features.npz's unit-length features, which a plain
    head's penalty scales back. Unchanged when a class has a single image."""
    from finetune_gui.core.run.calibration import with_temperature

    probabilities = np.array(found.probabilities, dtype=np.float32)
    rows = np.flatnonzero(np.isin(found.parts, learned))
    kept = None if found.held_out is None else found.held_out[rows]
    if kept is not None and np.isfinite(kept).all():
        answers = kept
    else:
        answers = held_out_probabilities(np.asarray(found.features)[rows], found.labels[rows],
                                         probabilities.shape[1], penalty)
    if answers is not None:
        probabilities[rows] = with_temperature(answers, temperature)
    return probabilities
