"""A softmax head solved, not trained: the head without a hidden layer fitted to its optimum on
pooled features (by `softmax_solver.py`), its L2 strength searched here. Phase 1 solves it
(core/training/head_solver.py), the refit solves it again, and the held-out judge of "not
sure", calibration and suspect labels solves it on k folds (core/run/unseen_answers.py), so
that every one of them answers as the kept head does.

On cached pooled features a softmax head (one Dense layer) is multinomial logistic regression,
a convex problem: L-BFGS reaches its optimum in about a second, where 5 epochs of Adam stopped
while validation accuracy was still climbing (issue 12: 0.30 -> 0.50 at epoch 5, 0.68 after
100). The L2 strength is chosen on the validation split only. Features are standardised inside
the solver (the penalty then treats every feature alike) and the scaling is folded back into the
weights, so the Dense layer takes the raw pooled features as before.

The head a careful programmer writes in 15 lines, scikit-learn's `LogisticRegression()` on the
features as they are, is the default: on the icons set it scored 0.595 on unseen images where
the strength chosen on 66 validation images scored 0.543 (mean of five splits; one image moves
validation accuracy by 1.5 points, so the choice followed noise). A standardised strength
replaces it only when it beats it on validation by more than a standard error
(docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from finetune_gui.core.model.head_features import Standardiser, softmax
from finetune_gui.core.model.lbfgs import GRADIENT_TOLERANCE
from finetune_gui.core.model.row_space import RowSpace
from finetune_gui.core.model.softmax_solver import (
    MAX_ITERATIONS,
    finish_on_every_row,
    fit_softmax,
)

# Penalty on the standardised weights: mean cross-entropy + l2 / 2 * |W|^2. The grid spans a
# nearly unregularised fit to one that shrinks 1,280 features hard.
L2_GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
# Strengths in a row that do not beat the best so far before the search stops.
SEARCH_PATIENCE = 2
# scikit-learn's default C: C * sum(cross-entropy) + |W|^2 / 2 on unscaled features, which is
# the mean cross-entropy + l2 / 2 |W|^2 with l2 = 1 / (C * images).
PLAIN_C = 1.0
# The plain head's first look: solved until its largest gradient entry is 1e-4, not 1e-7. On
# four real feature sets (MNIST, digits, icons, faces) its validation score was within one
# image of the head solved to the end, in 44% of the iterations on MNIST (245 of 560, 4.4 s).
# It is finished to the end unless a standardised strength beats it by `LOOK_SLACK` images
# more than the standard error asks, a win one image either way cannot undo.
PLAIN_LOOK_GTOL = 1e-4
LOOK_SLACK = 2


def plain_l2(images: int) -> float:
    """The L2 strength of `LogisticRegression(C=PLAIN_C)` on `images` rows."""
    return 1.0 / (PLAIN_C * max(images, 1))


@dataclass
class SoftmaxHead:
    """Dense-layer weights for raw features: logits = features @ kernel + bias."""

    kernel: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)
    l2: float
    train_loss: float
    iterations: int
    standardised: bool = True  # False: the plain probe's head, features as they are

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(features, dtype=np.float64) @ self.kernel + self.bias)


@dataclass
class HeadSearch:
    """The chosen head and what every L2 strength scored on validation."""

    head: SoftmaxHead
    tried: list[dict] = field(default_factory=list)  # l2, val_accuracy, val_loss, train_loss

    @property
    def chosen(self) -> dict:
        return next(row for row in self.tried if row["chosen"])


def search_softmax_head(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray | None,
    val_labels: np.ndarray | None,
    n_classes: int,
    *,
    sample_weight: np.ndarray | None = None,
    grid: tuple[float, ...] = L2_GRID,
    fallback_l2: float | None = None,
    fallback_standardised: bool = True,
    start: SoftmaxHead | None = None,
    on_tried: Callable[[dict], None] | None = None,
    max_iterations: int = MAX_ITERATIONS,
    patience: int | None = SEARCH_PATIENCE,
) -> HeadSearch:
    """The plain probe's head (`PLAIN_C` on the features as they are), replaced by the best
    standardised strength of `grid` only when that beats it on validation accuracy by more than
    a standard error. The plain head is first solved to a looser tolerance (`PLAIN_LOOK_GTOL`)
    and finished to the end unless a strength beats it clearly (`LOOK_SLACK`): a kept plain head
    is always the optimum.

    The grid is fitted strongest first, each strength warm-starting the next; ties go to the
    stronger penalty, so it ends at the first strength that gets every validation image right
    (and is skipped when the plain head already does), or after `patience` strengths in a row
    that did not beat the best so far (None: the whole grid). Without validation images nothing can
    choose: one head is fitted, the plain one unless `fallback_l2` is given (a standardised
    strength, or a plain one with `fallback_standardised` False), starting from `start` (a head
    for similar features, such as the one chosen on part of them) when given.
    """
    from finetune_gui.core.model.head_features import fitting_sample, scored

    # Inside the memory budget: the solver fits on a capped sample of the training rows (every
    # row up to 12,000 images of 2,784 float32 features), validation is scored a chunk at a time.
    sample = fitting_sample(train_features, train_labels, sample_weight)
    train = sample.features
    has_val = val_features is not None and val_labels is not None and len(val_labels) > 0
    val_labels = np.asarray(val_labels) if has_val else None
    dtype = train.dtype
    # The plain head is `LogisticRegression(C=PLAIN_C)` on every training image: a sample
    # keeps that problem's penalty, so it estimates the same head.
    plain_strength = plain_l2(sample.of)

    scaled: dict = {}  # the current scaler's training features (one scaled copy at a time)
    spans: dict = {}  # that copy's `RowSpace` (None: solved on the features themselves)

    def fit(scaler, l2, start=None, principal=False, gtol=GRADIENT_TOLERANCE, row=None):
        if scaler not in scaled:
            buffer = scaled.popitem()[1] if scaled else None
            scaled[scaler] = scaler.into(train, buffer, dtype)
            spans.clear()
            # The grid's many strengths repay turning to the principal axes (which turns
            # the scaled copy in place); a single solve does not.
            spans[scaler] = (RowSpace.principal(scaled[scaler], n_classes) if principal
                             else RowSpace.of(scaled[scaler]))
        params, loss, iterations = fit_softmax(
            scaled[scaler], sample.labels, n_classes, l2, sample_weight=sample.weights,
            start=start, max_iterations=max_iterations, space=spans[scaler], gtol=gtol)
        if row is not None:  # the first look's row, now finished from where it stopped
            row.update(train_loss=loss, iterations=row["iterations"] + iterations)
            row.pop("looked_to_gradient", None)
        else:
            row = {"l2": l2, "standardised": scaler is not plain, "chosen": False,
                   "train_loss": loss, "iterations": iterations, "val_accuracy": None,
                   "val_loss": None}
            tried.append(row)
        if gtol != GRADIENT_TOLERANCE:
            row["looked_to_gradient"] = gtol  # run.json says this head was not finished
        if sample.sampled:
            row["sampled_from"] = sample.of  # run.json says the head saw a sample
            row["images"] = len(sample.labels)
        if has_val:
            row["val_accuracy"], row["val_loss"] = scored(val_features, val_labels, scaler,
                                                          params)
        if on_tried is not None:
            on_tried(row)
        return params, row

    def finish(chosen):
        """The chosen head solved on every training row when a sample chose it; its row then
        says so (`finished_on`) and holds that head's loss and validation scores."""
        params, scaler, row = chosen
        if not sample.sampled:
            return chosen
        scaled.clear()  # the sample's scaled copy is not needed any more
        # The penalty is on the standardised weights: standardised by every row, as a solver
        # holding them all would; the sample's head moved into those coordinates to start.
        rows = train_features
        if len(rows) != sample.of:  # a store with room for more rows than it holds
            from finetune_gui.core.data.storage import StackedRows

            rows = StackedRows((train_features, sample.of))
        every = Standardiser(rows, scale=row["standardised"])
        start = _unfolded(*_raw(params, scaler), every)
        params, loss, iterations = finish_on_every_row(
            rows, np.asarray(train_labels), n_classes, row["l2"], every, start,
            sample_weight=sample_weight)
        scaler = every
        row.update(train_loss=loss, iterations=row["iterations"] + iterations,
                   finished_on=sample.of)
        if has_val:
            row["val_accuracy"], row["val_loss"] = scored(val_features, val_labels, scaler,
                                                          params)
        return params, scaler, row

    plain, standard = Standardiser(train, scale=False), Standardiser(train)
    tried: list[dict] = []
    if not has_val:
        if fallback_l2 is None:
            scaler, l2 = plain, plain_strength
        else:
            scaler, l2 = (standard if fallback_standardised else plain), fallback_l2
        initial = None
        if start is not None:  # the head in this scaler's coordinates (`_folded` undone)
            initial = _unfolded(start.kernel, start.bias, scaler)
        params, row = fit(scaler, l2, initial)
        return HeadSearch(_folded(*finish((params, scaler, row))), tried)
    # A first look at the plain head (`PLAIN_LOOK_GTOL`): enough to know whether a
    # standardised strength beats it clearly; it is finished below whenever it may be kept.
    looked, plain_row = fit(plain, plain_strength, gtol=PLAIN_LOOK_GTOL)
    accuracy = plain_row["val_accuracy"]
    best, path, since_best = None, [], 0
    for l2 in sorted(grid, reverse=True) if accuracy < 1.0 else []:
        start, row = fit(standard, l2, _next_on_path(path, l2), principal=True)
        path = [*path[-1:], (l2, start)]
        # Ties go to the stronger penalty (tried first): on a small validation split every
        # strength may score 100%, and the validation loss then favours the most confident,
        # least regularised head, which scored 88.9% on test shapes where the strongest kept 100%.
        if best is None or row["val_accuracy"] > best[2]["val_accuracy"]:
            best, since_best = (start.copy(), standard, row), 0
        else:
            since_best += 1
        if row["val_accuracy"] >= 1.0:
            break  # no weaker strength can win a tie; on 4,000 images they took 18 s of 20
        if patience is not None and since_best >= patience:
            # Weaker strengths are the slowest to solve (500 iterations each on 5,000 MNIST
            # digits). Stopping here kept another strength in 4 of 30 searches on six real
            # folders, with the same held-out accuracy on average (docs/benchmarks.md).
            break
    images = len(val_labels)
    if best is not None and best[2]["val_accuracy"] > _needed(accuracy, images) + LOOK_SLACK / images:
        return HeadSearch(_folded(*finish(best)), tried)
    params, plain_row = fit(plain, plain_strength, start=looked, row=plain_row)  # to the end
    chosen = (params, plain, plain_row)
    if best is not None and best[2]["val_accuracy"] > _needed(plain_row["val_accuracy"], images):
        chosen = best
    return HeadSearch(_folded(*finish(chosen)), tried)


def _needed(plain_accuracy: float, images: int) -> float:
    """The validation accuracy a standardised strength must beat to replace the plain head: one
    standard error above the plain head's (on 66 images at 60%, 6 points: four images)."""
    return plain_accuracy + np.sqrt(plain_accuracy * (1 - plain_accuracy) / images)


def _next_on_path(path: list[tuple[float, np.ndarray]], l2: float) -> np.ndarray | None:
    """Where the solve at `l2` starts: on the line through the last two strengths' optima
    (`path`, in log strength), or at the last one. On 13 real feature sets this start alone
    took 48-99% of the iterations of a start at the last optimum, 14-53% with the principal
    axes, with the same validation scores (docs/benchmarks.md)."""
    if len(path) < 2:
        return path[-1][1] if path else None
    (before, earlier), (last, latest) = path
    return latest + (latest - earlier) * (np.log(l2 / last) / np.log(last / before))


def _folded(params: np.ndarray, scaler: Standardiser, row: dict) -> SoftmaxHead:
    """The head for raw features: the scaler folded into the weights; `row` is marked chosen
    (run.json keeps the rows, and "not sure" reads the kept head's penalty from them)."""
    row["chosen"] = True
    kernel, bias = _raw(params, scaler)
    return SoftmaxHead(kernel, bias, row["l2"], row["train_loss"], row["iterations"],
                       standardised=row["standardised"])


def _raw(params: np.ndarray, scaler: Standardiser) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) for raw features of `params` solved on `scaler`'s features."""
    kernel = params[:-1] / scaler.scale[:, None]
    return kernel, params[-1] - (scaler.mean / scaler.scale) @ params[:-1]


def _unfolded(kernel: np.ndarray, bias: np.ndarray, scaler: Standardiser) -> np.ndarray:
    """A head for raw features as packed parameters on `scaler`'s features (`_raw` undone)."""
    return np.vstack([kernel * scaler.scale[:, None], bias + scaler.mean @ kernel])
