"""The distances behind "not sure" (core/run/distance_signal.py), on numbers with known
answers: no model needed."""

from __future__ import annotations

import json

import numpy as np

from finetune_gui.core.run.distance_signal import DistanceSignal, cuts_together


def alike_training_images(rng, n: int = 200, dims: int = 8) -> np.ndarray:
    """Training rows that all look alike: small spread around one point."""
    return np.full(dims, 5.0) + rng.normal(0, 0.1, (n, dims))


def test_a_picture_far_away_in_a_familiar_direction_is_caught_by_the_straight_line():
    """Issue 15: a run on grey digits found 31% of photo crops by direction alone. A row ten
    times farther out than any training row, along a training row's own direction, has a cosine
    distance of 0 and a straight-line distance far beyond every training image's."""
    rng = np.random.default_rng(0)
    train = alike_training_images(rng)
    signal = DistanceSignal.fit("first", train, np.zeros(len(train), int), straight=True)
    far = signal.mean + 10 * (train[:1] - signal.mean)
    assert signal.distances(far)[0] < 1e-5
    own = signal.straight_distances(train, leave_out_self=True)
    assert signal.straight_distances(far)[0] > 5 * own.max()


def test_leaving_out_self_skips_only_the_images_own_row():
    rng = np.random.default_rng(1)
    train = alike_training_images(rng, n=50)
    signal = DistanceSignal.fit("first", train, np.zeros(len(train), int), straight=True)
    assert np.allclose(signal.straight_distances(train), 0, atol=1e-3)
    centred = train - train.mean(axis=0)
    pairwise = np.linalg.norm(centred[:, None] - centred[None], axis=2)
    np.fill_diagonal(pairwise, np.inf)
    np.testing.assert_allclose(
        signal.straight_distances(train, leave_out_self=True), pairwise.min(axis=1), rtol=1e-4
    )


def test_the_two_cuts_together_flag_at_most_the_share_asked():
    rng = np.random.default_rng(2)
    for correlated in (0.0, 0.5, 1.0):
        cosine = rng.normal(size=1000)
        straight = correlated * cosine + (1 - correlated) * rng.normal(size=1000)
        cut_cosine, cut_straight = cuts_together(cosine, straight, 0.05)
        share = ((cosine > cut_cosine) | (straight > cut_straight)).mean()
        assert 0.035 <= share <= 0.05, (correlated, share)
    # The same distance twice: each cut at the asked share itself.
    same = rng.normal(size=1000)
    assert cuts_together(same, same, 0.05)[0] == np.quantile(same, 0.95, method="higher")


def test_the_signal_comes_back_from_its_json_unchanged():
    rng = np.random.default_rng(3)
    train = alike_training_images(rng, n=30)
    signal = DistanceSignal.fit("first", train, np.zeros(30, int), straight=True).with_cuts(0.3, 1.5)
    again = DistanceSignal.from_dict(json.loads(json.dumps(signal.to_dict())))
    query = rng.normal(5, 1, (10, 8))
    np.testing.assert_allclose(again.straight_distances(query), signal.straight_distances(query),
                               rtol=1e-5)  # fmt: skip
    assert (again.max_distance, again.max_straight) == (0.3, 1.5)
    plain = DistanceSignal.fit("pool", train, np.zeros(30, int)).with_cuts(0.3)
    assert "points" not in plain.to_dict()
    assert not DistanceSignal.from_dict(plain.to_dict()).fires(np.array([0.2]), np.array([9.0]))[0]
