"""The head's L-BFGS: scipy's optimum, its stopping rules, and steps that go too far."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from finetune_gui.core.model.lbfgs import minimise


def _logistic(x: np.ndarray, y: np.ndarray, classes: int, l2: float):
    """Mean cross-entropy + l2 / 2 |W|^2 of a softmax head (bias last), with its gradient."""
    onehot = np.eye(classes)[y]

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        params = flat.reshape(-1, classes)
        logits = x @ params[:-1] + params[-1]
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        residual = (np.exp(log_p) - onehot) / len(y)
        value = -(onehot * log_p).sum() / len(y) + 0.5 * l2 * (params[:-1] ** 2).sum()
        gradient = np.vstack([x.T @ residual + l2 * params[:-1], residual.sum(axis=0)])
        return float(value), gradient.ravel()

    return objective


def _problem(seed: int = 0, rows: int = 300, features: int = 40, classes: int = 4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    x = rng.normal(size=(rows, features)) + np.eye(classes, features)[y] * 1.5
    x[:, 0] *= 30.0  # one badly scaled feature: a problem that needs the curvature pairs
    return x, y, classes


def test_it_reaches_scipys_optimum_of_a_softmax_head():
    x, y, classes = _problem()
    objective = _logistic(x, y, classes, l2=1e-3)
    start = np.zeros((x.shape[1] + 1) * classes)
    solved = minimise(objective, start, max_iterations=1000)
    # scipy's L-BFGS-B, far past the stopping rules both use by default.
    optimum = minimize(objective, start, jac=True, method="L-BFGS-B",
                       options={"maxiter": 5000, "gtol": 1e-12, "ftol": 1e-16})
    assert solved.fun - optimum.fun < 1e-9
    assert np.abs(solved.x - optimum.x).max() < 1e-3 * np.abs(optimum.x).max()
    assert np.abs(objective(solved.x)[1]).max() < 1e-4
    assert 0 < solved.nit < 1000


def test_it_stops_after_the_iterations_it_is_given():
    x, y, classes = _problem(1)
    objective = _logistic(x, y, classes, l2=1e-4)
    start = np.zeros((x.shape[1] + 1) * classes)
    few = minimise(objective, start, max_iterations=5)
    assert few.nit == 5
    assert few.fun < objective(start)[0]
    assert few.fun > minimise(objective, start, max_iterations=1000).fun


def test_a_start_at_the_optimum_takes_no_step_and_changes_nothing():
    x, y, classes = _problem(2)
    objective = _logistic(x, y, classes, l2=1e-2)
    start = np.zeros((x.shape[1] + 1) * classes)
    optimum = minimise(objective, start, max_iterations=1000)
    again = minimise(objective, optimum.x, max_iterations=1000, gtol=1e-4)
    assert again.nit == 0
    np.testing.assert_array_equal(again.x, optimum.x)
    assert again.x is not optimum.x  # the caller's start is copied, never moved


def test_a_step_into_overflow_is_shortened_not_taken():
    """Where the objective is not finite (an overflow) the step is shortened until it is."""
    tried = []

    def bowl(point: np.ndarray) -> tuple[float, np.ndarray]:
        tried.append(point.copy())
        if np.abs(point).max() > 0.5:
            return float("inf"), np.full_like(point, np.nan)
        return float(((point - 0.4) ** 2).sum()), 2.0 * (point - 0.4)

    # The first step is one unit long (0.58 a coordinate): past the wall at 0.5.
    solved = minimise(bowl, np.zeros(3), max_iterations=100, gtol=1e-9)
    assert np.abs(tried[1]).max() > 0.5
    np.testing.assert_allclose(solved.x, 0.4, atol=1e-8)
    assert np.isfinite(solved.fun)


def test_the_same_problem_gives_the_same_answer_to_the_last_bit():
    x, y, classes = _problem(3)
    objective = _logistic(x, y, classes, l2=1e-3)
    start = np.zeros((x.shape[1] + 1) * classes)
    first = minimise(objective, start, max_iterations=300)
    second = minimise(objective, start, max_iterations=300)
    np.testing.assert_array_equal(first.x, second.x)
    assert (first.fun, first.nit) == (second.fun, second.nit)
