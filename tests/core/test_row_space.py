"""A head on fewer images than features is solved in the span of its images' features, and
is the head the solver reaches on the features themselves."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.model import row_space, softmax_head
from finetune_gui.core.model.row_space import RowSpace
from finetune_gui.core.model.softmax_head import search_softmax_head
from finetune_gui.core.model.softmax_solver import fit_softmax


def few_images_many_features(n: int, d: int, classes: int, seed: int, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, 16)) * 1.5
    x = (centres[y] + rng.normal(size=(n, 16))) @ rng.normal(size=(16, d))
    x += rng.normal(scale=2.0, size=(n, d))
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x.astype(dtype), y


def feature_gradient(x, y, params, l2):
    logits = x @ params[:-1] + params[-1]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return x.T @ p / len(y) + l2 * params[:-1], p.sum(axis=0) / len(y)


def test_the_span_holds_the_rows_in_orthonormal_coordinates():
    x, _ = few_images_many_features(30, 200, 3, seed=0)
    space = RowSpace.of(x)
    assert space.basis.shape == (200, 30) and space.coordinates.shape == (30, 30)
    assert space.basis.T @ space.basis == pytest.approx(np.eye(30), abs=1e-10)
    assert space.coordinates @ space.basis.T == pytest.approx(x, abs=1e-9)


def test_the_span_is_used_only_where_the_images_are_at_most_half_the_features():
    assert RowSpace.of(np.ones((100, 200))) is not None
    assert RowSpace.of(np.ones((101, 200))) is None
    assert RowSpace.of(np.ones((0, 200))) is None


@pytest.mark.parametrize("l2", [1e-4, 1e-2, 1.0])
def test_the_head_solved_in_the_span_is_the_optimum_on_the_features(l2):
    x, y = few_images_many_features(40, 300, 3, seed=1)
    direct, direct_loss, _ = fit_softmax(x, y, 3, l2)
    spanned, spanned_loss, _ = fit_softmax(x, y, 3, l2, space=RowSpace.of(x))
    assert spanned.shape == direct.shape == (301, 3)
    # The optimum on the features, not only in the span: the gradient vanishes in every
    # direction, the ones orthogonal to the rows included.
    kernel_gradient, bias_gradient = feature_gradient(x, y, spanned, l2)
    assert np.abs(kernel_gradient).max() < 1e-5 and np.abs(bias_gradient).max() < 1e-5
    # Both stop where the gradient is below the solver's tolerance: the span's solve ends no
    # further from the optimum than the direct one (on the weakest penalty, a little nearer).
    assert spanned_loss <= direct_loss * (1 + 1e-9)
    assert spanned_loss == pytest.approx(direct_loss, rel=1e-4)
    new = np.random.default_rng(9).normal(size=(200, 300))
    agree = (new @ spanned[:-1]).argmax(1) == (new @ direct[:-1]).argmax(1)
    assert agree.mean() >= (0.98 if l2 < 1e-3 else 1.0)


def test_a_start_on_the_features_is_carried_into_the_span():
    x, y = few_images_many_features(40, 300, 3, seed=2)
    space = RowSpace.of(x)
    near, _, _ = fit_softmax(x, y, 3, 1e-2, space=space)
    cold, loss, cold_steps = fit_softmax(x, y, 3, 1e-3, space=space)
    warm, warm_loss, warm_steps = fit_softmax(x, y, 3, 1e-3, start=near, space=space)
    assert warm_loss == pytest.approx(loss, rel=1e-6)
    assert warm_steps < cold_steps
    assert warm[:-1] == pytest.approx(cold[:-1], abs=1e-3 * np.abs(cold[:-1]).max())


def test_the_search_chooses_the_same_head_in_the_span_as_on_the_features(monkeypatch):
    x, y = few_images_many_features(60, 400, 4, seed=3, dtype=np.float32)
    xv, yv = few_images_many_features(200, 400, 4, seed=3, dtype=np.float32)
    spaces = []
    real_fit = softmax_head.fit_softmax

    def recorded_fit(*args, **kwargs):
        spaces.append(kwargs.get("space"))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(softmax_head, "fit_softmax", recorded_fit)
    spanned = search_softmax_head(x, y, xv, yv, 4)
    solves = [space for space in spaces if space is not None]
    # Every solve was in the span: each strength, and the plain head's first look and finish.
    assert len(solves) == len(spaces) >= len(spanned.tried)
    assert all(space.coordinates.shape == (60, 60) for space in solves)
    monkeypatch.setattr(row_space, "ROWS_SHARE", 0.0)
    direct = search_softmax_head(x, y, xv, yv, 4)
    assert [r["l2"] for r in spanned.tried] == [r["l2"] for r in direct.tried]
    # Near the unpenalised end both solves stop short of the exact optimum, so a validation
    # image near the boundary may go either way: at most one, on 200.
    for ours, theirs in zip(spanned.tried, direct.tried, strict=True):
        assert abs(ours["val_accuracy"] - theirs["val_accuracy"]) <= 1 / len(yv) + 1e-9
    assert spanned.chosen["l2"] == direct.chosen["l2"]
    probabilities = spanned.head.probabilities(xv), direct.head.probabilities(xv)
    assert (probabilities[0].argmax(1) == probabilities[1].argmax(1)).mean() >= 0.99
    assert probabilities[0] == pytest.approx(probabilities[1], abs=2e-3)


def pooled_like(n: int, d: int, classes: int, seed: int, latent: int = 32):
    """Non-negative, correlated features with a decaying spectrum, as a CNN's pooled ones are,
    and overlapping classes (validation accuracy 0.78-0.82 on 500 x 300, 6 classes)."""
    rng = np.random.default_rng(0)  # the same classes for every seed
    spread = 1.0 / np.arange(1, latent + 1) ** 0.8
    centres = rng.normal(size=(classes, latent)) * spread * 0.5
    mix = rng.normal(size=(latent, d))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    z = centres[y] + rng.normal(size=(n, latent)) * spread
    x = np.maximum(z @ mix + rng.normal(scale=0.3, size=(n, d)), 0.0)
    return x.astype(np.float32), y


@pytest.mark.parametrize("n, d, dtype, tolerance", [
    (40, 300, np.float64, 1e-8), (500, 300, np.float64, 1e-8),
    # The app's float32 features, their axes found in float32 (faster, within float32's error).
    (40, 300, np.float32, 1e-5), (500, 300, np.float32, 1e-5)])
def test_the_principal_axes_hold_the_rows_in_uncorrelated_orthonormal_coordinates(n, d, dtype,
                                                                                   tolerance):
    x, _ = pooled_like(n, d, 3, seed=4)
    x = (x - x.mean(axis=0)).astype(dtype)
    original = x.astype(np.float64)
    scale = np.abs(original).max()
    space = RowSpace.principal(x, 3)
    axes = min(n, d)
    assert space.basis.shape == (d, axes) and space.coordinates.shape == (n, axes)
    basis = space.basis.astype(np.float64)
    assert basis.T @ basis == pytest.approx(np.eye(axes), abs=tolerance)
    coordinates = space.coordinates.astype(np.float64)
    assert coordinates @ basis.T == pytest.approx(original, abs=tolerance * scale)
    moments = coordinates.T @ coordinates / n
    assert moments == pytest.approx(np.diag(space.variances), abs=tolerance * scale**2)
    # Without a smaller span the solver's own scaled copy is turned in place: no second copy.
    assert (space.coordinates is x) == (n > row_space.ROWS_SHARE * d)


def test_axes_that_cost_more_to_find_than_they_can_save_are_not_turned_to():
    x = np.ones((100, 4000), dtype=np.float32)  # 4,000 axes for 100 rows of 2 classes
    assert RowSpace.principal(x, 2) is not None  # its span (100 axes) still pays
    assert RowSpace.principal(x, 2).variances is not None
    wide = np.ones((3000, 2800), dtype=np.float32)  # no span; 2,800^2 > 500 x 3,000 x 2
    assert RowSpace.principal(wide, 2) is None


@pytest.mark.parametrize("l2", [1e-4, 1e-2, 1.0])
def test_the_head_solved_along_the_principal_axes_is_the_optimum_on_the_features(l2):
    x, y = pooled_like(500, 300, 6, seed=1)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float64)
    direct, direct_loss, _ = fit_softmax(x, y, 6, l2)
    turned, turned_loss, _ = fit_softmax(x.copy(), y, 6, l2,
                                         space=RowSpace.principal(x.copy(), 6))
    kernel_gradient, bias_gradient = feature_gradient(x, y, turned, l2)
    assert np.abs(kernel_gradient).max() < 1e-5 and np.abs(bias_gradient).max() < 1e-5
    assert turned_loss == pytest.approx(direct_loss, rel=1e-6, abs=1e-9)
    new = pooled_like(300, 300, 6, seed=9)[0].astype(np.float64)
    agree = (new @ turned[:-1]).argmax(1) == (new @ direct[:-1]).argmax(1)
    assert agree.mean() >= 0.99


def test_the_search_along_the_principal_axes_and_its_path_solves_the_same_heads_in_fewer_steps(
        monkeypatch):
    """The grid's strengths solved along the principal axes, each started on the line through
    the last two optima: the same validation scores and the same head as a search without
    either, in at most 55% of its L-BFGS iterations (45% here; 62% and 80% with only one)."""
    x, y = pooled_like(500, 300, 6, seed=1)
    xv, yv = pooled_like(300, 300, 6, seed=2)

    def searched():
        search = search_softmax_head(x, y, xv, yv, 6)
        grid = [row for row in search.tried if row["standardised"]]
        return search, sum(row["iterations"] for row in grid), grid

    fast, fast_steps, fast_grid = searched()
    monkeypatch.setattr(row_space, "PRINCIPAL_EVALUATIONS", 0)
    monkeypatch.setattr(softmax_head, "_next_on_path",
                        lambda path, l2: path[-1][1] if path else None)
    plain, plain_steps, plain_grid = searched()
    assert len(fast_grid) == len(plain_grid) >= 4
    assert [row["val_accuracy"] for row in fast_grid] == [row["val_accuracy"]
                                                          for row in plain_grid]
    for ours, theirs in zip(fast_grid, plain_grid, strict=True):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
    assert fast.chosen["l2"] == plain.chosen["l2"]
    assert fast.head.probabilities(xv) == pytest.approx(plain.head.probabilities(xv), abs=1e-3)
    assert fast_steps <= 0.55 * plain_steps, (fast_steps, plain_steps)
