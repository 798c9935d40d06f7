"""The softmax head's solver: L-BFGS (`lbfgs.py`) on the mean weighted cross-entropy plus an L2
penalty, its rows' blocks shared among the cores (`block_workers`) and added in order, so that the same
problem gives the same head to the last bit on any number of cores. `fit_softmax` solves rows
held in RAM (in the span or along the principal axes of `RowSpace` when given one);
`finish_on_every_row` solves every row of a folder beyond the memory budget, a part at a time.
The search over L2 strengths that calls them is `softmax_head.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from finetune_gui.core.block_workers import block_workers
from finetune_gui.core.model.head_features import Standardiser
from finetune_gui.core.model.lbfgs import GRADIENT_TOLERANCE, minimise
from finetune_gui.core.model.row_space import RowSpace

MAX_ITERATIONS = 1000
# The head solved on every row after a capped sample chose it, a chunk at a time and started at
# the sample's optimum: few iterations are left, and capping them keeps its time linear in rows.
FINISH_ITERATIONS = 300
FINISH_WORKERS = 8  # parts of the rows in flight at once: 8 / 64 of the memory budget


def fit_softmax(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    l2: float,
    *,
    sample_weight: np.ndarray | None = None,
    start: np.ndarray | None = None,
    max_iterations: int = MAX_ITERATIONS,
    space: RowSpace | None = None,
    weight_units: np.ndarray | None = None,
    gtol: float = GRADIENT_TOLERANCE,
) -> tuple[np.ndarray, float, int]:
    """Minimise mean weighted cross-entropy + l2/2 |W|^2 (bias not penalised) with L-BFGS.

    `features` are used as given (standardise first). Returns the packed parameters
    (features + 1, classes; the last row is the bias), the objective and the iterations used.
    With `space` (`RowSpace.of(features)` or `.principal`) the same problem is solved in the
    span of the rows or along their principal axes, and the parameters are returned on the
    features all the same. `weight_units` (one per feature) has the solver move each feature's
    weights in those units: the same problem and optimum, on a better-conditioned path.
    `gtol`: the largest gradient entry at which the solver stops (a looser one: a first look).
    """
    from threadpoolctl import threadpool_limits

    if space is not None:
        inner_start = None if start is None else space.packed_in(
            np.asarray(start, dtype=np.float64).reshape(-1, n_classes))
        units = None
        if space.variances is not None and l2 > 0:
            units = space.curvature_scale(l2, inner_start, n_classes)
        params, loss, iterations = fit_softmax(
            space.coordinates, labels, n_classes, l2, sample_weight=sample_weight,
            start=inner_start, max_iterations=max_iterations, weight_units=units, gtol=gtol)
        return space.packed_out(params), loss, iterations
    x = np.asarray(features)
    # float32 features (the cache's) keep float32 products: half the time, and the objective is
    # summed in float64 below; float64 input stays float64 (the exactness tests use it).
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
    y = np.asarray(labels, dtype=np.int64)
    n, d = x.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = w / w.sum()
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0

    step = _block_rows(d, x.itemsize)
    blocks = [slice(at, at + step) for at in range(0, n, step)]

    def block_share(rows: slice, kernel: np.ndarray, bias: np.ndarray):
        # A block of rows used for its logits and its share of the gradient while it is still
        # in the cache: one pass over the features per evaluation, not two (on 3,500 x 2,784
        # float32 features, 18% less time an iteration).
        xb = x[rows]
        logits = (xb @ kernel.astype(x.dtype)).astype(np.float64) + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1))[:, None]
        loss = (w[rows] * (onehot[rows] * log_p).sum(axis=1)).sum()
        residual = (np.exp(log_p) - onehot[rows]) * w[rows][:, None]
        return loss, (xb.T @ residual.astype(x.dtype)).astype(np.float64), residual.sum(axis=0)

    initial = np.zeros((d + 1) * n_classes) if start is None else start.ravel()
    units = np.ones((d + 1, n_classes))
    if weight_units is not None:
        units[:-1] = np.asarray(weight_units, dtype=np.float64)[:, None]
    units = units.ravel()
    # One BLAS thread, the blocks shared among the cores instead: each product is too small to
    # share, and waking a second BLAS thread for every one of them made a fit on 4,000 x 1,280
    # features take 4.1 s instead of 2.3 s, where a block each per core took an evaluation on
    # 3,500 x 2,784 features from 13.5-14.9 ms to 8.0-8.6 ms on this machine's two.
    with threadpool_limits(limits=1), block_workers(len(blocks)) as each_block:
        solved = minimise(
            lambda flat: _in_units(flat, units, n_classes, l2, block_share, blocks, each_block),
            initial / units, max_iterations=max_iterations, gtol=gtol)
    return (solved.x * units).reshape(d + 1, n_classes), solved.fun, solved.nit


def _in_units(flat: np.ndarray, units: np.ndarray, *problem) -> tuple[float, np.ndarray]:
    """`_penalised_sum` at the parameters `flat` x `units`, and its gradient in those units."""
    loss, grad = _penalised_sum(flat * units, *problem)
    return loss, grad * units


def _penalised_sum(flat: np.ndarray, n_classes: int, l2: float, share: Callable, chunks: list,
                   each: Callable) -> tuple[float, np.ndarray]:
    """The mean weighted cross-entropy + l2/2 |W|^2 at the packed parameters `flat`, and its
    gradient: `share(chunk, kernel, bias)` gives a chunk of rows' (loss, kernel gradient, bias
    gradient), `each` (`block_workers`' map) makes them, and they are added in chunk order,
    however many threads made them: the same sums to the last bit on any number of cores."""
    params = flat.reshape(-1, n_classes)
    kernel, bias = params[:-1], params[-1]
    loss = 0.5 * l2 * (kernel**2).sum()
    grad = np.zeros_like(params)
    grad[:-1] = l2 * kernel
    for chunk_loss, kernel_grad, bias_grad in each(lambda chunk: share(chunk, kernel, bias),
                                                   chunks):
        loss -= chunk_loss
        grad[:-1] += kernel_grad
        grad[-1] += bias_grad
    return float(loss), grad.ravel()


def _block_rows(width: int, itemsize: int) -> int:
    """Rows of `width` features that fill about 4 MB (measured on 2,784 float32 features: 94
    rows took 17.6 ms an L-BFGS iteration, 376 rows 17.3 ms, the whole array at once 21.2)."""
    return int(np.clip(2**22 // max(width * itemsize, 1), 64, 4096))


def finish_on_every_row(
    features, labels: np.ndarray, n_classes: int, l2: float, scaler: Standardiser,
    params: np.ndarray, *, sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, float, int]:
    """`fit_softmax` on every row of `features` (RAM or the disk store), scaled by `scaler` a
    chunk at a time, started from `params` (the optimum on a sample of the rows): the head a
    sample estimated, solved exactly inside the memory budget.

    A sample of 1,506 of 6,999 training images scored two standard errors below the head solved
    on all of them (docs/benchmarks.md); solved on every row afterwards, the sample only
    chooses the L2 strength and where the solver starts.
    """
    from threadpoolctl import threadpool_limits

    from finetune_gui.core.data.storage import row_chunks
    from finetune_gui.core.model.head_features import row_width

    y = np.asarray(labels, dtype=np.int64)
    n, d = len(y), row_width(features)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = w / w.sum()
    parts = list(row_chunks(n, 8 * d))

    def part_share(part: slice, kernel: np.ndarray, bias: np.ndarray):
        x = scaler(np.asarray(features[part], dtype=np.float64))
        logits = x @ kernel + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1))[:, None]
        rows = np.arange(len(x))
        loss = (w[part] * log_p[rows, y[part]]).sum()
        residual = np.exp(log_p)
        residual[rows, y[part]] -= 1.0
        residual *= w[part][:, None]
        return loss, x.T @ residual, residual.sum(axis=0)

    # As in fit_softmax: one BLAS thread, the parts shared among the cores. Each part in flight
    # holds a 64th of the memory budget's rows, so at most FINISH_WORKERS are.
    with threadpool_limits(limits=1), \
            block_workers(min(len(parts), FINISH_WORKERS)) as each_part:
        solved = minimise(
            lambda flat: _penalised_sum(flat, n_classes, l2, part_share, parts, each_part),
            params.ravel(), max_iterations=FINISH_ITERATIONS)
    return solved.x.reshape(d + 1, n_classes), solved.fun, solved.nit
