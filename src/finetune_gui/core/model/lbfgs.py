"""L-BFGS without bounds, for the head's smooth convex problems (`softmax_solver.py`).

scipy's L-BFGS-B spent 3.2 ms of its own an iteration on the 27,850 parameters of a MNIST head
(2,784 features, 10 classes), beside 12 ms for the objective: on a whole run of 5,000 digits
4.6 s in 3,927 calls. Most of that handles bounds, which these problems do not have. This is
the same method without them: the last `MEMORY` steps' curvature pairs (the two-loop
recursion, scaled by the latest pair as L-BFGS-B scales its first matrix), a line search for
the weak Wolfe conditions that tries the whole step first, and L-BFGS-B's stopping rules (the
largest gradient entry at most `gtol`, or a relative decrease of the objective of at most
`ftol`). Plain numpy in float64: the same problem gives the same answer to the last bit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MEMORY = 10  # curvature pairs kept: L-BFGS-B's default (5 took 6% more iterations on MNIST)
SUFFICIENT_DECREASE = 1e-4  # Armijo's constant
CURVATURE = 0.9  # the weak Wolfe condition on the slope, as L-BFGS-B's line search has it
# Hager and Zhang's approximate Wolfe conditions (CG_DESCENT's defaults): near the optimum a
# decrease is lost in the rounding of float32 products, and a step whose slope has flattened
# enough is taken while the objective rises by at most this share of itself.
ROUNDING = 1e-6
FLATTENED = 0.8  # ... and the slope there is at most this share of the first slope, upwards
LINE_SEARCH_EVALUATIONS = 20  # a step not found in this many: the solver stops where it is

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]  # x -> (value, gradient)


@dataclass
class Solved:
    """Where the solver stopped: the parameters, the objective there and the iterations."""

    x: np.ndarray
    fun: float
    nit: int


GRADIENT_TOLERANCE = 1e-7  # the largest gradient entry at the optimum: solved to the end


def minimise(objective: Objective, start: np.ndarray, *, max_iterations: int,
             gtol: float = GRADIENT_TOLERANCE, ftol: float = 1e-12) -> Solved:
    """Minimise `objective` (value and gradient at once) from `start` with L-BFGS."""
    x = np.array(start, dtype=np.float64)
    value, gradient = objective(x)
    pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=MEMORY)
    iterations = 0
    while iterations < max_iterations and np.abs(gradient).max(initial=0.0) > gtol:
        direction = _direction(gradient, pairs)
        slope = float(gradient @ direction)
        if slope >= 0.0:  # rounding turned the model's direction uphill: start afresh
            pairs.clear()
        # The whole step along the pairs' direction; without pairs, or where that step was not
        # found (L-BFGS-B then forgets them too), one unit straight downhill, as L-BFGS-B's
        # first step (1 / |gradient|).
        found = _wolfe_step(objective, x, value, direction, slope, 1.0) if pairs else None
        if found is None:
            pairs.clear()
            found = _wolfe_step(objective, x, value, -gradient, -float(gradient @ gradient),
                                1.0 / max(float(np.linalg.norm(gradient)), 1e-12))
        if found is None:
            break  # no step lowers the objective enough: as far as rounding lets it go
        moved, new_value, new_gradient = found
        iterations += 1
        change = new_gradient - gradient
        curvature = float(moved @ change)
        if curvature > 1e-10 * float(change @ change):
            pairs.append((moved, change, 1.0 / curvature))
        x += moved
        decrease = value - new_value
        value, gradient = new_value, new_gradient
        if decrease <= ftol * max(abs(value), abs(value + decrease), 1.0):
            break
    return Solved(x, float(value), iterations)


def _direction(gradient: np.ndarray, pairs: deque) -> np.ndarray:
    """The two-loop recursion: minus the inverse curvature the pairs estimate, times the
    gradient."""
    q = gradient.copy()
    alphas = []
    for moved, change, rho in reversed(pairs):
        alpha = rho * float(moved @ q)
        q -= alpha * change
        alphas.append(alpha)
    if pairs:
        moved, change, rho = pairs[-1]
        q *= 1.0 / (rho * float(change @ change))
    for (moved, change, rho), alpha in zip(pairs, reversed(alphas), strict=True):
        q += (alpha - rho * float(change @ q)) * moved
    return -q


def _wolfe_step(objective: Objective, x: np.ndarray, value: float, direction: np.ndarray,
                slope: float, step: float):
    """(the step taken, the value and gradient there) for a step along `direction` that
    lowers the objective enough and flattens its slope enough (the weak Wolfe conditions), or
    None. A step that only flattens the slope enough is taken too when the objective did not
    rise beyond rounding (`ROUNDING`). Too long a step is shortened by a safeguarded quadratic
    fit, too short a one is lengthened, and once both are known the step is kept between
    them."""
    low, high = 0.0, np.inf
    for _ in range(LINE_SEARCH_EVALUATIONS):
        moved = step * direction
        new_value, new_gradient = objective(x + moved)
        new_slope = float(new_gradient @ direction) if np.isfinite(new_value) else np.nan
        if (new_value <= value + ROUNDING * abs(value)
                and CURVATURE * slope <= new_slope <= -FLATTENED * slope):
            return moved, float(new_value), new_gradient  # flat enough, within rounding
        if not np.isfinite(new_value) or new_value > value + SUFFICIENT_DECREASE * step * slope:
            high = step
            if np.isfinite(new_value):  # the quadratic through value, slope and new_value
                curve = new_value - value - slope * step
                fitted = -slope * step * step / (2.0 * curve) if curve > 0 else 0.5 * step
            else:
                fitted = 0.5 * step
            step = float(np.clip(fitted, low + 0.1 * (high - low), low + 0.5 * (high - low)))
        elif new_slope < CURVATURE * slope:
            low = step
            step = 0.5 * (low + high) if np.isfinite(high) else 4.0 * step
        else:
            return moved, float(new_value), new_gradient
    return None
