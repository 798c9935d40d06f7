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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Solve in the rows' span only when there are at most this share of rows per feature.
ROWS_SHARE = 0.5


@dataclass
class RowSpace:
    """The training rows' span: `basis` (d x n, orthonormal columns) and the rows' coordinates
    in it (n x n; rows = coordinates @ basis.T)."""

    basis: np.ndarray
    coordinates: np.ndarray

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
        kernel = self.basis.T.astype(np.float64) @ params[:-1]
        return np.vstack([kernel, params[-1:]])

    def packed_out(self, params: np.ndarray) -> np.ndarray:
        """Span-coordinate parameters (n + 1 rows) back on the features (d + 1 rows)."""
        kernel = self.basis.astype(np.float64) @ params[:-1]
        return np.vstack([kernel, params[-1:]])
