"""Suspect labels: images moved into the wrong class folder rank at the top; the folder stays."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for insight_runs.py
from finetune_gui.core.insight.suspects import (
    ScoredImages,
    class_thresholds,
    exclude_from_project,
    features_saw_labels,
    find_suspect_labels,
    rank_suspects,
)
from finetune_gui.core.project import Project
from finetune_gui.core.run.unseen_answers import (
    held_out_probabilities,
    learned_parts,
    plain_penalty,
)
from insight_runs import FLIPS_PER_CLASS, flipped_run, folder_bytes


@pytest.fixture(scope="module")
def flipped(tmp_path_factory, pretrained_base):
    return flipped_run(tmp_path_factory, pretrained_base)


@pytest.fixture(scope="module")
def suspects(flipped):
    return find_suspect_labels(flipped.run, model=flipped.model)


def test_every_flipped_label_is_found_and_they_rank_first(flipped, suspects):
    ranked = [s.path for s in suspects]
    assert set(flipped.flipped) <= set(ranked)
    # Measured: the 6 flipped images take ranks 1-6; 3 clean but ambiguous squares follow.
    top = ranked[: len(flipped.flipped)]
    # docs/insight.md: 6 of 6 measured; at least 5 asked, as the pretrained stand-in varies.
    assert len(set(top) & set(flipped.flipped)) >= len(flipped.flipped) - 1
    assert len(suspects) <= 3 * len(flipped.flipped)


def test_flipped_images_are_scored_out_of_sample_wherever_they_landed(flipped, suspects):
    by_path = {s.path: s for s in suspects}
    splits = {by_path[p].split for p in flipped.flipped}
    assert "train" in splits  # the k-fold path is what found these
    for path, true_class in flipped.flipped.items():
        found = by_path[path]
        assert found.suggested_label == true_class
        assert found.given_label == path.parent.name
        assert found.confidence > 0.5 and 0 < found.score <= 1


def test_suspects_are_ranked_by_how_sure_the_judge_is(suspects):
    sure = [s.sureness for s in suspects]
    assert sure == sorted(sure, reverse=True)


def test_excluded_images_are_not_listed_again_and_the_folder_is_untouched(flipped, suspects):
    left_out = set(list(flipped.flipped)[:FLIPS_PER_CLASS])
    again = find_suspect_labels(flipped.run, model=flipped.model, exclude=left_out)
    assert not left_out & {s.path for s in again}
    # The other planted mistakes are still listed: all but at most one, as in the ranking test
    # (one is borderline with some pretrained stand-ins once three images are left out).
    remaining = set(flipped.flipped) - left_out
    assert len(remaining & {s.path for s in again}) >= len(remaining) - 1
    project = Project(data_dir=flipped.data)
    assert exclude_from_project(project, [s.path for s in suspects[:3]] * 2) == [
        s.path for s in suspects[:3]
    ]
    assert exclude_from_project(project, [suspects[0].path]) == []
    assert folder_bytes(flipped.data) == flipped.fingerprint_before


def scored(probabilities, labels) -> ScoredImages:
    n = len(labels)
    return ScoredImages(
        [Path(f"img{i}.png") for i in range(n)], np.asarray(labels), ["test"] * n,
        np.asarray(probabilities, dtype=float), np.zeros((n, 1)), ["a", "b", "c"],
    )


def test_the_rule_uses_per_class_thresholds_not_a_fixed_cut():
    # Class c is never predicted confidently: its threshold is its mean self-confidence (0.4),
    # so an image of "a" with p(c) = 0.45 is suspect although 0.45 is no majority.
    probabilities = [
        [0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.5, 0.05, 0.45],  # labelled a
        [0.05, 0.9, 0.05], [0.05, 0.9, 0.05], [0.85, 0.1, 0.05],  # labelled b
        [0.3, 0.3, 0.4], [0.3, 0.3, 0.4],  # labelled c
    ]
    labels = [0, 0, 0, 1, 1, 1, 2, 2]
    thresholds = class_thresholds(np.asarray(probabilities), np.asarray(labels))
    assert np.allclose(thresholds, [(0.9 + 0.9 + 0.5) / 3, (0.9 + 0.9 + 0.1) / 3, 0.4])
    found = rank_suspects(scored(probabilities, labels))
    assert [(s.path.name, s.given_label, s.suggested_label) for s in found] == [
        ("img5.png", "b", "a"),  # 0.85 - 0.1: the clearer contradiction first
        ("img2.png", "a", "c"),
    ]


def test_cross_validation_needs_two_images_of_every_class():
    features = np.random.default_rng(0).normal(size=(7, 4))
    judge = plain_penalty(7)
    assert held_out_probabilities(features, np.array([0, 0, 0, 1, 1, 1, 2]), 3, judge) is None
    probabilities = held_out_probabilities(features, np.array([0, 0, 0, 1, 1, 2, 2]), 4, judge)
    assert probabilities.shape == (7, 4)
    assert np.allclose(probabilities.sum(axis=1), 1) and np.all(probabilities[:, 3] == 0)


def test_the_suspect_judge_is_scikit_learns_default_logistic_regression_out_of_fold():
    """One judge for suspects and "not sure": at the plain penalty it is cross_val_predict of
    LogisticRegression() (C = 1), fold for fold, solved to its optimum (scikit-learn's default
    tolerance stops short of it by up to 1e-3 in probability here)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 20)
    features = rng.normal(size=(60, 8)) + labels[:, None] * 0.8
    mine = held_out_probabilities(features, labels, 3, plain_penalty(60))
    folding = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    reference = cross_val_predict(LogisticRegression(C=1.0, tol=1e-10, max_iter=10000),
                                  features, labels, cv=folding, method="predict_proba")
    np.testing.assert_allclose(mine, reference, atol=1e-4)


def test_which_parts_the_head_learned_follows_the_refit():
    from finetune_gui.core.run.record import RunFacts

    assert learned_parts(RunFacts()) == ("train",)
    assert learned_parts(RunFacts(head_refit={"images": 40})) == ("train", "val")


def test_runs_whose_backbone_learned_the_labels_are_told_apart(flipped):
    settings = flipped.run.settings
    assert not features_saw_labels(settings)  # a frozen base with a new head
    assert features_saw_labels(settings.with_changes(weights="none"))
    assert features_saw_labels(settings.with_changes(epochs_finetune=2, unfreeze_blocks=1))
    # Fine-tuning ran but the head-only model was kept: the backbone is the one it started as.
    tuned = settings.with_changes(epochs_finetune=2, unfreeze_blocks=1)
    from finetune_gui.core.run.record import RunFacts

    assert not features_saw_labels(tuned, RunFacts(kept_model="head-only"))
    assert features_saw_labels(tuned, RunFacts(kept_model="fine-tuned"))
