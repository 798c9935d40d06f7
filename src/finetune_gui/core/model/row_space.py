"""A head fitted on fewer images than features, solved in the span of its images' features.

The L2-penalised softmax head's optimum lies in the span of the training rows: a part of the
kernel orthogonal to every row changes no logit and only adds to the penalty. With the rows'
features X (n x d, n < d) factored as X^T = Q R (Q: d x n with orthonormal columns), X = R^T Q^T,
so X W = R^T (Q^T W) and |W|^2 = |Q^T W|^2 + |the rest|^2. The same problem in B = Q^T W on the
n x n features R^T is therefore exactly the problem the solver had, each product n / d the size.
L-BFGS steps turn with an orthogonal change of coordinates, so the solver takes the same path to
the same optimum, within rounding and its stopping rule (a largest gradient entry, which is not
turned with them).

On 1,146 images of 2,784 features (the quality benchmark's digits at 160 px) the search over
11 L2 strengths spent 15 s in 2,200 L-BFGS iterations; each product here is 2.4 times smaller.
The factoring costs about as much as n / (2 x classes) objective evaluations, which pays when
the images are at most half the features (`ROWS_SHARE`).

The same turn of coordinates also makes the search's problems easier to solve. Along the
features' principal axes (`RowSpace.principal`) the penalised loss curves about as much as the
axis's variance times the answers' uncertainty, plus the penalty, and the solver is given each
weight in units of that curvature (`curvature_scale`): the same problem and optimum in better
units. With the next strength started on the line through the last two optima
(`search_softmax_head`), the search's standardised strengths took 29% of the L-BFGS iterations
on 13 real feature sets (14-53% each), with every validation score and choice the same
(docs/benchmarks.md, `benchmarks/head_steps.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Solve in the rows' span only when there are at most this share of rows per feature.
ROWS_SHARE = 0.5
# Turn to the principal axes only while their (axes x axes) factoring costs no more than this
# many evaluations' products (rows x classes each per axis): on MNIST's 2,784 axes (3,500 rows,
# 10 classes) 2.9-3.4 s, against about 13 s of iterations they saved.
PRINCIPAL_EVALUATIONS = 500


@dataclass
class RowSpace:
    """The training rows' span: `basis` (d x n, orthonormal columns) and the rows' coordinates
    in it (n x n; rows = coordinates @ basis.T)."""

    basis: np.ndarray
    coordinates: np.ndarray
    variances: np.ndarray | None = None  # principal axes: the mean square along each

    @classmethod
    def principal(cls, rows: np.ndarray, classes: int) -> RowSpace | None:
        """The rows' principal axes: `of(rows)`'s span (or every feature) turned so that its
        coordinates are uncorrelated, or None when factoring them would cost more than
        `PRINCIPAL_EVALUATIONS` evaluations. Without a smaller span `rows` itself (the
        solver's scaled copy, never the caller's) is turned in place to hold the coordinates,
        so no second copy of the features is made."""
        n, d = rows.shape
        span = cls.of(rows)
        axes = n if span is not None else d
        if n == 0 or axes**2 > PRINCIPAL_EVALUATIONS * n * classes:
            return span
        from scipy.linalg import eigh

        coordinates = rows if span is None else span.coordinates
        moments = coordinates.T @ coordinates / n
        # Orthonormal axes: the penalty is unchanged. On float32 rows (the app's) in float32 by
        # divide and conquer: on MNIST's 2,784 features 0.74 s against 2.40 s in float64, its
        # axes orthonormal within 1.3e-6 (they are rounded to float32 to turn the rows anyway),
        # at a peak of about 124 MB. Float64 rows keep the relatively robust driver, which
        # solves in place with a small workspace (232 MB -> 145 MB at its peak there).
        variances, turn = eigh(moments, overwrite_a=True, check_finite=False,
                               driver="evd" if moments.dtype == np.float32 else "evr")
        del moments
        narrow = turn.astype(rows.dtype, copy=False)
        step = max(1, 2**22 // max(axes * rows.itemsize, 1))
        for at in range(0, n, step):  # a block at a time: no second full copy
            coordinates[at : at + step] = coordinates[at : at + step] @ narrow
        del narrow
        basis = turn if span is None else span.basis @ turn
        return cls(basis, coordinates, np.clip(variances, 0.0, None))

    def curvature_scale(self, l2: float, params: np.ndarray | None, classes: int) -> np.ndarray:
        """Each principal coordinate's weight in units of the loss's curvature along it, near
        `params` (packed, in these coordinates; None: all zero): 1 / sqrt(its variance x the
        answers' uncertainty + l2). The uncertainty is half the mean over images of the sum of
        p (1 - p) over classes: 0.45 for ten classes at zero, 0.005 near a head that fits its
        images. On MNIST's search it took 1,809 iterations, a fixed one (0.01-0.25) 1,890-2,061."""
        if params is None:
            logits = np.zeros((len(self.coordinates), classes))
        else:
            logits = self.coordinates @ params[:-1].astype(self.coordinates.dtype) + params[-1]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        uncertainty = 0.5 * (p * (1 - p)).sum(axis=1).mean()
        return 1.0 / np.sqrt(self.variances * uncertainty + l2)

    @classmethod
    def of(cls, rows: np.ndarray) -> RowSpace | None:
        """The span of `rows` (n x d, float32 or float64, kept), or None when solving in it would
        not pay (more than `ROWS_SHARE` rows per feature)."""
        n, d = rows.shape
        if n == 0 or n > ROWS_SHARE * d:
            return None
        basis, triangle = np.linalg.qr(rows.T)  # reduced: (d, n) and (n, n)
        return cls(basis, np.ascontiguousarray(triangle.T))

    def packed_in(self, params: np.ndarray) -> np.ndarray:
        """Packed parameters (d + 1 rows, the last the bias) in span coordinates (n + 1 rows)."""
        kernel = self.basis.T.astype(np.float64, copy=False) @ params[:-1]
        return np.vstack([kernel, params[-1:]])

    def packed_out(self, params: np.ndarray) -> np.ndarray:
        """Span-coordinate parameters (n + 1 rows) back on the features (d + 1 rows)."""
        kernel = self.basis.astype(np.float64, copy=False) @ params[:-1]
        return np.vstack([kernel, params[-1:]])
