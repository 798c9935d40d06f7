"""The asking order teaches the head faster than random order on a small real folder's worth of
pictures (scikit-learn's handwritten digits, their pixels as features), a page is not a row of
near-twins, and groups gather pictures of one kind."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.errors import UserError
from finetune_gui.core.label.asking import asking_order
from finetune_gui.core.label.groups import propose_groups
from finetune_gui.core.label.proposals import propose

PAGE = 24


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    found = load_digits()
    return found.data.astype(np.float32) / 16.0, found.target.astype(int)


def _simulate(features, truth, seed: int, pages: int, order: str) -> float:
    """A user who knows the truth: 2 labels per class, then `pages` pages of the app's (or a
    random) choice; the share of right proposals on the pictures still unlabelled."""
    rng = np.random.default_rng(seed)
    classes = [str(c) for c in range(10)]
    labelled = {int(r): str(truth[r]) for c in range(10)
                for r in rng.choice(np.flatnonzero(truth == c), 2, replace=False)}
    for _ in range(pages + 1):
        proposals = propose(features, labelled, classes)
        decided = np.zeros(len(truth), dtype=bool)
        decided[list(labelled)] = True
        if len(labelled) >= 20 + pages * PAGE:
            break
        if order == "app":
            ask = asking_order(features, proposals.probabilities, decided, PAGE)
        else:
            ask = rng.choice(np.flatnonzero(~decided), PAGE, replace=False)
        labelled.update({int(r): str(truth[r]) for r in ask})
    rest = np.flatnonzero(~decided)
    return float((proposals.label_index()[rest] == truth[rest]).mean())


def test_asking_order_beats_random_order_on_digits(digits):
    features, truth = digits
    seeds = range(4)
    app = [_simulate(features, truth, seed, pages=5, order="app") for seed in seeds]
    chance = [_simulate(features, truth, seed, pages=5, order="random") for seed in seeds]
    # Measured: 0.944 against 0.914 after 140 labels (mean of 4 starts; app ahead in all 4).
    assert np.mean(app) > np.mean(chance) + 0.02, (app, chance)
    assert sum(a > c for a, c in zip(app, chance, strict=True)) >= 3, (app, chance)


def test_a_page_is_not_a_row_of_near_twins(digits):
    features, truth = digits
    rng = np.random.default_rng(0)
    # 80 near-copies of one digit, all equally undecided: they would fill a page ranked by
    # uncertainty alone.
    twin = features[0] + rng.normal(0, 0.01, (80, features.shape[1])).astype(np.float32)
    together = np.vstack([features, twin])
    probabilities = np.full((len(together), 10), 0.02, np.float32)
    probabilities[:, :2] = 0.3
    probabilities[len(features):, :2] = 0.45  # the twins are the most undecided of all
    probabilities[len(features):, 2:] = 0.1 / 8
    decided = np.zeros(len(together), dtype=bool)
    decided[:40] = True
    ask = asking_order(together, probabilities, decided, PAGE)
    assert len(ask) == PAGE == len(set(ask))
    assert not decided[ask].any()
    assert sum(r >= len(features) for r in ask) <= 2
    # Nothing proposes yet: plain spread over the kinds of picture, every digit on one page.
    first = asking_order(features, None, np.zeros(len(features), dtype=bool), PAGE)
    assert len(set(truth[first])) >= 8


def test_groups_gather_one_kind_each_nearest_first(digits):
    features, truth = digits
    groups = propose_groups(features, 10)
    assert len(groups) == 10 and sum(g.size for g in groups) == len(truth)
    assert [g.size for g in groups] == sorted((g.size for g in groups), reverse=True)
    purity = np.mean([np.bincount(truth[list(g.shown())]).max() / len(g.shown())
                      for g in groups])
    assert purity >= 0.8, purity
    with pytest.raises(UserError, match="from 2 to"):
        propose_groups(features, 1)
    with pytest.raises(UserError, match="only 5 pictures"):
        propose_groups(features[:5], 6)
