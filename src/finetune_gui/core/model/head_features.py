"""The head solver's features inside the memory budget, whatever the number of images.

The head reads every block (2,784 or more pooled numbers per image with MobileNetV2), so the
training features of 35,000 images are 390 MB as float32 and 780 MB as the float64 the solver
once copied them to, several times over. A solver needs its rows together at every iteration,
so it gets a capped sample of them (`core/data/storage.py` `capped_sample`: a share of the
budget, every class in proportion); statistics of every row (the validation score, the training
loss) are read one chunk at a time. The features may be arrays in RAM or the disk store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finetune_gui.core.data.storage import capped_sample, row_chunks, rows_in_budget


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def row_width(features) -> int:
    return int(np.prod(features.shape[1:]))


def sample_cap(features) -> int:
    """Rows the solver may hold: its copy of the features plus one scaled copy, as float32
    (the cache's) or float64 (the chunked standardisation needs no third): with the default
    2 GiB budget, 12,000 images of MobileNetV2's 2,784 float32 features."""
    itemsize = 4 if np.dtype(features.dtype) == np.float32 else 8
    return rows_in_budget(2 * itemsize * row_width(features))


@dataclass
class Sample:
    """The rows a solver fits on: all of them, or a capped sample (`rows`, sorted indices)."""

    features: np.ndarray  # float32 or float64, the solver's own copy
    labels: np.ndarray
    weights: np.ndarray | None
    rows: np.ndarray | None  # None: every row
    of: int  # how many rows there were

    @property
    def sampled(self) -> bool:
        return self.rows is not None


def fitting_sample(features, labels, weights=None, *, seed: int = 0) -> Sample:
    """The training rows the solver fits on (a copy it may change), capped by `sample_cap`."""
    labels = np.asarray(labels)
    of = len(labels)
    rows = capped_sample(labels, sample_cap(features), seed)
    if rows is None:
        chosen = np.array(features[: len(labels)])  # the caller's array stays untouched
    else:
        chosen = np.asarray(features[rows])
        labels = labels[rows]
        weights = None if weights is None else np.asarray(weights)[rows]
    dtype = np.float32 if chosen.dtype == np.float32 else np.float64
    return Sample(chosen.astype(dtype, copy=False), labels, weights, rows, of)


class Standardiser:
    """Centres the features, and with `scale` divides each by its spread. Centring alone leaves
    the optimum unchanged (the bias absorbs it) and only helps the solver converge. Mean and
    spread are summed in float64 a chunk at a time, never on a float64 copy of every row."""

    def __init__(self, features: np.ndarray, scale: bool = True) -> None:
        n, width = len(features), row_width(features)
        total = np.zeros(width)
        for part in row_chunks(n, 8 * width):
            total += features[part].astype(np.float64).sum(axis=0)
        self.mean = total / max(n, 1)
        self.scale = np.ones(width)
        if scale:
            squares = np.zeros(width)
            for part in row_chunks(n, 8 * width):
                squares += ((features[part].astype(np.float64) - self.mean) ** 2).sum(axis=0)
            self.scale = np.sqrt(squares / max(n, 1))
        self.scale[self.scale < 1e-8] = 1.0  # a feature that never varies carries no signal

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.scale

    def into(self, features: np.ndarray, out: np.ndarray | None, dtype) -> np.ndarray:
        """`self(features)` as `dtype`, written a chunk at a time into `out` (made when None)."""
        out = np.empty(features.shape, dtype) if out is None else out
        for part in row_chunks(len(features), 8 * row_width(features)):
            out[part] = self(features[part].astype(np.float64))
        return out


def chunked_probabilities(features, transform, params: np.ndarray):
    """Yield (slice, softmax(transform(rows) @ kernel + bias)) over `features` (float64 rows,
    any array the disk store or RAM holds) one chunk at a time."""
    for part in row_chunks(len(features), 8 * row_width(features)):
        rows = transform(np.asarray(features[part], dtype=np.float64))
        yield part, softmax(rows @ params[:-1] + params[-1])


def scored(features, labels: np.ndarray, transform, params: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of the head `params` on every row, chunk by chunk."""
    labels = np.asarray(labels)
    right, loss = 0, 0.0
    for part, probs in chunked_probabilities(features, transform, params):
        truth = labels[part]
        right += int((probs.argmax(axis=1) == truth).sum())
        loss -= float(np.log(np.clip(probs[np.arange(len(truth)), truth], 1e-12, 1.0)).sum())
    return right / max(len(labels), 1), loss / max(len(labels), 1)
