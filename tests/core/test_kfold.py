"""The k-fold estimate tests every image once and carries a Wilson interval over all of them."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.run.intervals import wilson_interval
from finetune_gui.core.training.kfold import kfold_head_accuracy


def blobs(n_per_class: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, 2)) for c in centres])
    return x, np.repeat(np.arange(3), n_per_class)


def test_separable_classes_score_everything_and_noise_scores_chance():
    x, y = blobs(30, 0.3, seed=0)
    clean = kfold_head_accuracy(x, y, 3, folds=5)
    assert clean.accuracy == 1.0 and clean.images == 90 and len(clean.fold_accuracies) == 5
    assert clean.interval == wilson_interval(90, 90)
    noise = np.random.default_rng(1).normal(size=(90, 2))
    guess = kfold_head_accuracy(noise, y, 3, folds=5)
    assert guess.accuracy < 0.6


def test_the_accuracy_is_the_share_of_images_right_over_all_folds():
    x, y = blobs(20, 1.5, seed=2)
    found = kfold_head_accuracy(x, y, 3, folds=4)
    assert found.interval == wilson_interval(round(found.accuracy * 60), 60)
    assert found.accuracy == pytest.approx(np.mean(found.fold_accuracies), abs=0.02)
    assert "4-fold estimate on all 60 training and validation images" in found.text()


def test_a_class_of_one_image_is_refused_plainly():
    with pytest.raises(ValueError, match="at least 2 images"):
        kfold_head_accuracy(np.zeros((3, 2)), np.array([0, 0, 1]), 2)
