"""A proposed class for every picture not labelled yet, and how many of them are right.

The head is the engine's default (scikit-learn's `LogisticRegression()`, C = 1, on the features
as they are, core/model/softmax_head.py), solved on the user's labels alone: the model's own
accepted answers never teach it, or its mistakes would teach themselves. Until two classes have
labels a run's model proposes (when the session started from one).

How many proposals are right is estimated from answers about pictures the head had not
learned: the user's labels, each answered by a head solved on the other folds (the held-out
judge, core/run/unseen_answers.py). A temperature fitted on those answers makes "90% sure"
right about 9 times in 10 (core/run/calibration.py); the estimate is the mean calibrated
probability of the proposals. The labelled pictures are the hard ones (the asking order picks
them), so the held-out accuracy on them would understate the rest; their answers set only how
far to trust a probability, which holds for easy and hard pictures alike. Below 20 labels no
temperature can be fitted, and the estimate is the held-out answers' own accuracy, said to be
rough.

With the pictures' own grey levels (`pixels`, core/label/pixel_view.py) the head is solved on
both views when the user's labels favour them: the held-out answers of the features alone and
with the grey levels beside them (at each of `PIXEL_WEIGHTS`) are scored by their cross-entropy
on the labels, and the grey levels stay only where they lower it. A network that sees the
folder's classes well keeps its own view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finetune_gui.core.label.pixel_view import beside
from finetune_gui.core.run.calibration import MIN_ANSWERS

# Why proposals are not accepted in bulk before `Proposals.bulk_refusal` allows it.
BULK_WHY = ("With fewer labels, how sure the model is cannot be checked: its \"95% sure\" "
            "is then its own guess, often far too sure.")
# Below this calibrated probability a proposal is marked "not sure": wrong about one time in
# three or more.
UNSURE_BELOW = 0.7
# How spread the grey levels beside the features may be, against the features' own spread: the
# labels' held-out answers choose (on the digits with 10% labelled, 94.7% of the proposals
# right with 1 alone, 95.2% with 1 or 2; docs/benchmarks.md).
PIXEL_WEIGHTS = (1.0, 2.0)


@dataclass
class Proposals:
    """Per picture: the proposed class and its calibrated probability (labelled ones too)."""

    classes: list[str]
    probabilities: np.ndarray  # (N, len(classes)), calibrated; zeros when nothing proposes
    source: str  # "labels" (a head solved on them), "run" (its model), "none"
    temperature: float = 1.0
    estimated_accuracy: float | None = None  # over the pictures not labelled yet
    judged_on: int = 0  # labels the estimate is cross-validated on
    with_pixels: bool = False  # the head read the pictures' grey levels beside the features
    # With them: the network's own calibrated answers, which the asking order follows.
    network_probabilities: np.ndarray | None = None

    def asking_probabilities(self) -> np.ndarray:
        """What the asking order reads: the network's answers (`network_probabilities`)
        when the proposals read the grey levels too, else the proposals."""
        return (self.probabilities if self.network_probabilities is None
                else self.network_probabilities)

    @property
    def available(self) -> bool:
        return self.source != "none"

    def label_index(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def top(self) -> np.ndarray:
        return self.probabilities.max(axis=1) if self.probabilities.size else np.zeros(0)

    def label(self, index: int) -> str | None:
        if not self.available:
            return None
        return self.classes[int(self.probabilities[index].argmax())]

    def probability(self, index: int) -> float | None:
        return float(self.probabilities[index].max()) if self.available else None

    def unsure(self) -> np.ndarray:
        """True where the proposal is below `UNSURE_BELOW` (every picture when none)."""
        if not self.available:
            return np.ones(len(self.probabilities), dtype=bool)
        return self.top() < UNSURE_BELOW

    def bulk_refusal(self) -> str:
        """Why the proposals may not be accepted all at once yet ("Accept the rest above"), or
        "": below `MIN_ANSWERS` labels judged no temperature is fitted, so "95% sure" is the
        head's own, uncalibrated confidence (with 14 labels of 2 classes it put 255 of 367
        icons above 95%, most of them of classes not named yet)."""
        if not self.available:
            return "label pictures of at least two classes first"
        if self.judged_on < MIN_ANSWERS:
            return f"label at least {MIN_ANSWERS} pictures, two or more of each class, first"
        return ""

    def estimate_text(self) -> str:
        """One line for the window and the terminal."""
        if not self.available:
            return "No proposals yet: label pictures of at least two classes."
        if self.estimated_accuracy is None:
            return ("Not enough labels to estimate how many proposals are right: label two or "
                    "more pictures of each class.")
        rough = "Roughly" if self.judged_on < MIN_ANSWERS else "About"
        # The labels can only say how well the classes labelled so far are told apart: a
        # picture of a class not labelled yet still gets one of them.
        proposing = int((self.probabilities.max(axis=0) > 0).sum()) if self.probabilities.size else 0
        text = (f"{rough} {self.estimated_accuracy:.0%} of the proposals are right (estimated "
                f"on your {self.judged_on} labels, each judged by a model that had not seen it), "
                f"if every picture is one of the {proposing} classes labelled so far.")
        if self.with_pixels:
            text += (" The proposals also read the pictures' own grey levels, which your labels "
                     "show helps here.")
        return text


def _plain_head(features: np.ndarray, labels: np.ndarray, n_classes: int):
    """The engine's plain head (a `SoftmaxHead`) solved on (`features`, `labels`)."""
    from finetune_gui.core.model.softmax_head import plain_l2, search_softmax_head

    search = search_softmax_head(features, labels, None, None, n_classes,
                                 fallback_l2=plain_l2(len(labels)), fallback_standardised=False)
    return search.head


def propose(
    features: np.ndarray,
    labelled: dict[int, str],
    classes: list[str],
    *,
    run_classes: list[str] | None = None,
    run_probabilities: np.ndarray | None = None,
    pixels: np.ndarray | None = None,
) -> Proposals:
    """Proposals for every row of `features` from the `labelled` rows (row -> class name);
    `pixels`, the pictures' grey levels spread like the features (core/label/pixel_view.py),
    are read beside them when the labels' held-out answers are better with them
    (`with_pixels`)."""
    from finetune_gui.core.run.unseen_answers import held_out_probabilities, plain_penalty

    n = len(features)
    rows = np.array(sorted(labelled), dtype=int)
    unlabelled = np.setdiff1d(np.arange(n), rows)
    present = sorted({labelled[int(r)] for r in rows}, key=classes.index)
    column = {name: classes.index(name) for name in classes}
    if len(present) >= 2:
        local = {name: k for k, name in enumerate(present)}
        y = np.array([local[labelled[int(r)]] for r in rows])
        x = np.asarray(features, dtype=np.float32)
        judged = held_out_probabilities(x[rows], y, len(present), plain_penalty(len(rows)))
        raw = _plain_head(x[rows], y, len(present)).probabilities(x).astype(np.float32)
        weight, judged_both = _pixel_weight(x[rows], pixels, rows, y, len(present), judged)
        if weight is not None:
            both = beside(x, pixels, weight)
            # The asking order keeps following the network's own answers: a page asks what
            # teaches the model that will be trained on these labels (read with both views,
            # the benchmark's digits needed 548-620 labels instead of 260-356 to train it to
            # every label's accuracy).
            network, _, _ = _calibrated(raw, judged, y, unlabelled)
            raw = _plain_head(both[rows], y, len(present)).probabilities(both)
            proposed, temperature, estimate = _calibrated(raw.astype(np.float32), judged_both,
                                                          y, unlabelled)
            columns = [column[c] for c in present]
            return Proposals(classes, _in_columns(proposed, columns, len(classes)), "labels",
                             temperature, estimate, len(rows) if estimate is not None else 0,
                             True, _in_columns(network, columns, len(classes)))
        source = "labels"
    elif run_probabilities is not None and run_classes:
        present = [c for c in run_classes if c in column]
        if not present:
            return Proposals(classes, np.zeros((n, len(classes)), np.float32), "none")
        keep = [run_classes.index(c) for c in present]
        raw = np.asarray(run_probabilities, np.float32)[:, keep]
        raw = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1e-12)
        local = {name: k for k, name in enumerate(present)}
        known = np.array([int(r) for r in rows if labelled[int(r)] in local], dtype=int)
        y = np.array([local[labelled[int(r)]] for r in known])
        judged = raw[known] if len(known) else None  # the run never learned the user's labels
        rows = known
        source = "run"
    else:
        return Proposals(classes, np.zeros((n, len(classes)), np.float32), "none")
    probabilities, temperature, estimate = _calibrated(raw, judged, y, unlabelled)
    return Proposals(classes, _in_columns(probabilities, [column[c] for c in present],
                                          len(classes)),
                     source, temperature, estimate, len(rows) if estimate is not None else 0)


def _pixel_weight(labelled: np.ndarray, grey: np.ndarray | None, rows: np.ndarray,
                  y: np.ndarray, n_classes: int, judged: np.ndarray | None):
    """The weight of `PIXEL_WEIGHTS` at which the grey levels beside the `labelled` rows'
    features give held-out answers of the lowest cross-entropy on their labels, and those
    answers; (None, None) when none beats the features alone (`judged`) or nothing can be
    judged."""
    from finetune_gui.core.run.unseen_answers import held_out_probabilities, plain_penalty

    if grey is None or judged is None:
        return None, None
    best, chosen = _cross_entropy(judged, y), (None, None)
    for weight in PIXEL_WEIGHTS:
        answers = held_out_probabilities(beside(labelled, grey[rows], weight), y, n_classes,
                                         plain_penalty(len(rows)))
        if answers is not None and _cross_entropy(answers, y) < best:
            best, chosen = _cross_entropy(answers, y), (weight, answers)
    return chosen


def _calibrated(raw: np.ndarray, judged: np.ndarray | None, y: np.ndarray,
                unlabelled: np.ndarray) -> tuple[np.ndarray, float, float | None]:
    """`raw` with the temperature fitted on the held-out answers `judged` (of labels `y`),
    that temperature, and the estimated share of right proposals on the `unlabelled` rows."""
    from finetune_gui.core.run.calibration import fit_temperature, with_temperature

    temperature, estimate = 1.0, None
    if judged is not None and len(y) >= MIN_ANSWERS:
        temperature = fit_temperature(judged, y)
        calibrated = with_temperature(raw[unlabelled], temperature)
        estimate = float(calibrated.max(axis=1).mean()) if len(unlabelled) else None
    elif judged is not None and len(y):
        # Too few answers to fit a temperature on: the uncalibrated confidence said 63% when
        # 28% were right (icons, 12 labels). The held-out answers' own accuracy is rough but
        # not flattering (each fold's head learned from fewer labels still).
        estimate = float((judged.argmax(axis=1) == y).mean()) if len(unlabelled) else None
    return with_temperature(raw, temperature), temperature, estimate


def _in_columns(probabilities: np.ndarray, columns: list[int], width: int) -> np.ndarray:
    """The classes' probabilities in their columns of all `width` classes (zeros elsewhere)."""
    placed = np.zeros((len(probabilities), width), np.float32)
    placed[:, columns] = probabilities
    return placed


def _cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of held-out answers on their labels (lower: better answers)."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, 1e-12))))
