"""Images whose label the trained model confidently contradicts: likely labelling mistakes.

Confident learning (Northcutt et al., 2021) on out-of-sample probabilities: each class gets a
threshold, the mean probability the model gives that class on images labelled with it (its
self-confidence). An image is suspect when its own label stays under its own threshold while some
other class reaches that class's threshold, or while the judge is at least as sure the label is
wrong (1 - p(given)) as it is, on average, that this class's labels are right (the threshold)
and another class gets more than the given one. Without that second clause the images the
judge gave their label almost nothing (p(given) ~ 0) were not listed when no other class
reached its threshold: on real folders with flipped labels (benchmarks/suspects.py) a quarter of
the flipped digits went unlisted, the surest wrong labels of all. Suspects are ranked by how
sure the judge is that the label is wrong (`sureness`: 1 - the held-out probability of the
given class, the self-confidence order). This is the app's one rule: the Suspect labels view, the map's crosses
(core/insight/embedding.py), the report and `finetune-gui suspects` all show `review_suspects`'
list.

Out-of-sample, because a network agrees with the labels it was trained on, wrong ones included:
- val and test images: the run's own model never trained on them; its probabilities are used
  (unless the run solved its head again on training + validation images: val is then scored
  like train).
- train images: a logistic regression on the model's pooled backbone features, fitted with
  k-fold cross-validation (the app's one held-out judge, core/run/unseen_answers.py), so each
  image is scored by a classifier that did not see it; its answers are calibrated by one
  temperature fitted on them (core/run/calibration.py), as the run's model is calibrated, so
  "sure it is wrong" means the same on every split. With a pretrained, frozen backbone those features never saw a
  label; a backbone trained on these labels has seen them, which makes wrong labels harder to
  catch (never easier), so a suspect found is still worth a look.

The user's folder is never touched: excluding a suspect adds it to `Project.excluded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress
from finetune_gui.core.run.calibration import fit_temperature, with_temperature
from finetune_gui.core.run.record import RunFacts
from finetune_gui.core.run.unseen_answers import (
    HELD_OUT_FOLDS,
    held_out_probabilities,
    learned_parts,
    plain_penalty,
)

DEFAULT_FOLDS = HELD_OUT_FOLDS


@dataclass(frozen=True)
class Suspect:
    """One image that looks mislabelled, and what the model thinks it is."""

    path: Path
    given_label: str
    suggested_label: str
    confidence: float  # out-of-sample probability of the suggested class
    score: float  # p(suggested) - p(given), -1..1: higher is a clearer contradiction
    split: str = "train"  # where the image was in the run; says how it was scored
    sureness: float = 0.0  # how sure the judge is that the label is wrong (`sureness`), 0..1

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "given_label": self.given_label,
            "suggested_label": self.suggested_label,
            "confidence": round(self.confidence, 4),
            "score": round(self.score, 4),
            "split": self.split,
            "sureness": round(self.sureness, 4),
        }


@dataclass
class ScoredImages:
    """Every image of a run with its given label and out-of-sample probabilities."""

    paths: list[Path]
    labels: np.ndarray  # (N,) given class index
    parts: list[str]  # "train", "val" or "test"
    probabilities: np.ndarray  # (N, K) out-of-sample
    features: np.ndarray  # (N, C) pooled backbone features
    classes: list[str]
    answers: np.ndarray | None = None  # (N, K) the run's model's own (in-sample for train)


@dataclass
class SuspectReview:
    """The suspects of a run, surest first, and what they were judged on: the one answer the
    Suspect labels view, the map's crosses and `finetune-gui suspects` all show."""

    suspects: list[Suspect]
    scored: ScoredImages
    saw_labels: bool  # the backbone trained on these labels: fewer mistakes can be found

    @property
    def images(self) -> int:
        """How many images were judged."""
        return len(self.scored.paths)


def score_run_images(
    run,
    *,
    model=None,
    folds: int = DEFAULT_FOLDS,
    exclude: set[Path] | frozenset[Path] = frozenset(),
    data_root: Path | str | None = None,
    batch_size: int = 32,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> ScoredImages:
    """Out-of-sample probabilities for every image the run used (see the module docstring)."""
    from finetune_gui.core.data.pipeline import decode_images
    from finetune_gui.core.model.parts import features_and_probabilities

    split = run.split(data_root)
    excluded = {Path(p) for p in exclude}
    items = [
        (path, label, part)
        for part in ("train", "val", "test")
        for path, label in getattr(split, part)
        if path not in excluded
    ]
    paths = [path for path, _, _ in items]
    labels = np.array([label for _, label, _ in items], dtype=int)
    parts = [part for _, _, part in items]
    images = decode_images(paths, run.image_size, progress=progress, cancel=cancel, stage="suspects")
    model = model or run.load_model()
    features, probabilities = features_and_probabilities(model, images, batch_size)
    probabilities = probabilities[:, : len(split.classes)]
    answers = probabilities.copy()
    # Images whose labels the head learned are scored by the held-out judge (core/run/
    # unseen_answers.py) at the default head's penalty: scikit-learn's logistic regression at
    # C = 1 on the features as they are. With the head reading every block (2,784 features on
    # the test's shapes), a standardised C = 0.1 judge missed one of six planted wrong labels.
    learned = np.isin(parts, learned_parts(run.facts))
    if learned.any():
        held_out = held_out_probabilities(
            features[learned], labels[learned], len(split.classes),
            plain_penalty(int(learned.sum())), folds,
        )
        if held_out is not None:
            # Calibrated as the run's model is (its temperature is inside model.keras, so the
            # val and test answers above are): one temperature fitted on these held-out answers
            # themselves. Uncalibrated, a judge solved to fit its folds said "100% sure it is
            # wrong" of training images in a run right on 62% of its test images, and its
            # over-sure answers raised the class thresholds the val and test images are held to.
            held_out = with_temperature(held_out, fit_temperature(held_out, labels[learned]))
            probabilities[learned] = held_out
    return ScoredImages(paths, labels, parts, probabilities, features, list(split.classes),
                        answers)


def class_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per class: the mean probability of that class over the images labelled with it."""
    n_classes = probabilities.shape[1]
    thresholds = np.ones(n_classes)  # a class nobody carries can never be suggested
    for k in range(n_classes):
        mine = labels == k
        if mine.any():
            thresholds[k] = float(probabilities[mine, k].mean())
    return thresholds


def rank_suspects(scored: ScoredImages) -> list[Suspect]:
    """The rule of the module's docstring over scored images, surest first."""
    probabilities, labels = scored.probabilities, scored.labels
    thresholds = class_thresholds(probabilities, labels)
    found = []
    for i, given in enumerate(labels):
        row = probabilities[i]
        if row[given] >= thresholds[given]:
            continue
        others = [k for k in range(len(row)) if k != given]
        confident = [k for k in others if row[k] >= thresholds[k]]
        likeliest = max(others, key=lambda k: row[k]) if others else given
        sure_wrong = 1.0 - row[given] >= thresholds[given] and row[likeliest] > row[given]
        if not confident and not sure_wrong:
            continue
        suggested = max(confident, key=lambda k: row[k]) if confident else likeliest
        found.append(
            Suspect(
                path=scored.paths[i],
                given_label=scored.classes[given],
                suggested_label=scored.classes[suggested],
                confidence=float(row[suggested]),
                score=float(row[suggested] - row[given]),
                split=scored.parts[i],
                sureness=sureness(row, given),
            )
        )
    found.sort(key=lambda s: s.sureness, reverse=True)
    return found


def sureness(probabilities: np.ndarray, given: int) -> float:
    """How sure the judge is that an image's label is wrong: 1 - its held-out probability of the
    given class. On labels flipped on purpose in real folders this order found as many or more
    of them in the top k than p(suggested) or the margin did, on every set and rate measured
    (benchmarks/suspects.py, docs/insight.md)."""
    return float(1.0 - probabilities[given])


def review_suspects(
    run,
    *,
    model=None,
    folds: int = DEFAULT_FOLDS,
    exclude: set[Path] | frozenset[Path] = frozenset(),
    data_root: Path | str | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> SuspectReview:
    """The suspect labels of a run (`RunFolder`), surest first, with what they were judged on.

    `exclude`: images already left out (e.g. `Project.excluded`): neither judged nor listed.
    """
    scored = score_run_images(
        run, model=model, folds=folds, exclude=exclude, data_root=data_root,
        progress=progress, cancel=cancel,
    )
    return SuspectReview(rank_suspects(scored), scored, features_saw_labels(run.settings, run.facts))


def find_suspect_labels(run, **options) -> list[Suspect]:
    """Only the list of `review_suspects` (same options), surest first."""
    return review_suspects(run, **options).suspects


CSV_COLUMNS = ["path", "given_label", "suggested_label", "sureness", "split"]


def suspects_csv(suspects: list[Suspect]) -> str:
    """The list as CSV text, one row per suspect in its order (`finetune-gui suspects --csv`)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for s in suspects:
        writer.writerow([str(s.path), s.given_label, s.suggested_label, f"{s.sureness:.4f}",
                         s.split])
    return buffer.getvalue()


def features_saw_labels(settings, facts: RunFacts | None = None) -> bool:
    """True when the backbone itself was trained on the run's labels (from scratch, or with
    blocks unfrozen and the fine-tuned model kept), so k-fold scores of training images are less
    independent (see the top). `facts`: the run's run.json (a kept head-only model left the
    backbone as it was)."""
    from finetune_gui.core.model.build import from_scratch

    if from_scratch(settings):
        return True
    if facts is not None and facts.kept_model == "head-only":
        return False
    return bool(settings.epochs_finetune and settings.unfreeze_blocks)


def exclude_from_project(project, paths) -> list[Path]:
    """Add images to the project's exclusions (the folder is not touched); returns those added."""
    known = set(project.excluded)
    added = [Path(p) for p in dict.fromkeys(Path(p) for p in paths) if Path(p) not in known]
    project.excluded.extend(added)
    return added
