"""How far a picture is from the training images in one feature space (the "look" and
"content" signals of "not sure", core/run/unsure.py).

Two distances to the nearest training image, after subtracting the training images' mean:
- the cosine distance (1 - cosine similarity): which way a picture differs from the average
  training image, whatever its size;
- the straight-line (Euclidean) distance, kept for "look" only: how much it differs.
Neither is enough alone. Measured on first-block statistics (docs/benchmarks.md): a run on
colourful icons found 99% of grey hand-written digits by direction and 2-18% by length (the
symbolic grey icons sit near them); a run on grey digits, whose training images all look alike,
found 31% of photo crops by direction and 100% by length. A signal fires when either distance
passes its cut; the two cuts sit at the same quantile of the calibration images, chosen so that
together they flag the share asked.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace

import numpy as np

MAX_REFERENCE = 1000  # training images kept as the reference (spread over classes)
NO_CUT = float("inf")


@dataclass
class DistanceSignal:
    """Distances to the nearest training image in one feature space, with their cuts."""

    layer: str
    mean: np.ndarray  # (C,) mean of the training features, subtracted first
    reference: np.ndarray  # (M, C) centred, L2-normalised training features
    max_distance: float = 2.0  # cosine distance above this fires
    points: np.ndarray | None = None  # (M, C) centred training features, not normalised
    max_straight: float = NO_CUT  # straight-line distance above this fires

    @classmethod
    def fit(
        cls, layer: str, train: np.ndarray, labels: np.ndarray, straight: bool = False
    ) -> DistanceSignal:
        mean = train.mean(axis=0) if len(train) else np.zeros(train.shape[1], np.float32)
        centred = (spread_reference(train, labels) - mean).astype(np.float32)
        points = centred if straight else None
        return cls(layer, mean.astype(np.float32), unit(centred), points=points)

    def distances(self, features: np.ndarray, leave_out_self: bool = False) -> np.ndarray:
        """Cosine distance of each row to its nearest reference row (with `leave_out_self`, a
        training image's own row, at distance 0, does not count)."""
        if len(features) == 0 or len(self.reference) == 0:
            return np.zeros(len(features), np.float32)
        return _by_chunks(features, len(self.reference), self._cosine, leave_out_self)

    def _cosine(self, features: np.ndarray, leave_out_self: bool) -> np.ndarray:
        similarity = unit(np.asarray(features, np.float32) - self.mean) @ self.reference.T
        if leave_out_self:
            similarity = np.where(similarity > 1 - 1e-6, -1.0, similarity)
        return (1.0 - similarity.max(axis=1)).astype(np.float32)

    def straight_distances(self, features: np.ndarray, leave_out_self: bool = False):
        """Straight-line distance of each row to its nearest training point (zeros without
        points)."""
        if len(features) == 0 or self.points is None or len(self.points) == 0:
            return np.zeros(len(features), np.float32)
        return _by_chunks(features, len(self.points), self._straight, leave_out_self)

    def _straight(self, features: np.ndarray, leave_out_self: bool) -> np.ndarray:
        x = np.asarray(features, np.float64) - self.mean
        points = self.points.astype(np.float64)
        squared = (x**2).sum(1)[:, None] + (points**2).sum(1)[None, :] - 2 * x @ points.T
        squared = np.maximum(squared, 0.0)
        if leave_out_self:  # the image's own point, up to float rounding
            own = squared <= 1e-9 * (1.0 + (x**2).sum(1)[:, None])
            squared = np.where(own, np.inf, squared)
        return np.sqrt(squared.min(axis=1)).astype(np.float32)

    def fires(self, cosine: np.ndarray, straight: np.ndarray) -> np.ndarray:
        return (cosine > self.max_distance) | (straight > self.max_straight)

    def with_cuts(self, max_distance: float, max_straight: float = NO_CUT) -> DistanceSignal:
        return replace(self, max_distance=float(max_distance), max_straight=float(max_straight))

    def to_dict(self) -> dict:
        data = {
            "layer": self.layer,
            "max_distance": round(float(self.max_distance), 6),
            "mean": [round(float(v), 7) for v in self.mean],
            "reference": encode(self.reference),
        }
        if self.points is not None:
            data["max_straight_distance"] = round(float(self.max_straight), 6)
            data["points"] = encode(self.points)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> DistanceSignal:
        mean = np.asarray(data["mean"], np.float32)
        points = decode(data["points"]) if "points" in data else None
        straight = float(data.get("max_straight_distance", NO_CUT))
        return cls(data["layer"], mean, decode(data["reference"]), float(data["max_distance"]),
                   points, straight)


def _by_chunks(features, references: int, measure, leave_out_self: bool) -> np.ndarray:
    """`measure(rows, leave_out_self)` a chunk of rows at a time: the distance matrix to the
    references (float64, and two masks beside it) stays inside the memory budget whatever the
    number of images."""
    from finetune_gui.core.data.storage import row_chunks

    out = np.empty(len(features), np.float32)
    for part in row_chunks(len(features), 3 * 8 * max(references, 1)):
        out[part] = measure(features[part], leave_out_self)
    return out


def cuts_together(cosine: np.ndarray, straight: np.ndarray, rate: float) -> tuple[float, float]:
    """Cuts for the two distances at one shared quantile, the highest share of the calibration
    images `q` (between rate/2 and rate) for which they flag at most `rate` together."""
    chosen = (np.quantile(cosine, 1 - rate / 2, method="higher"),
              np.quantile(straight, 1 - rate / 2, method="higher"))
    for q in np.linspace(rate / 2, rate, 26)[1:]:
        cuts = (np.quantile(cosine, 1 - q, method="higher"),
                np.quantile(straight, 1 - q, method="higher"))
        if ((cosine > cuts[0]) | (straight > cuts[1])).mean() > rate:
            break
        chosen = cuts
    return float(chosen[0]), float(chosen[1])


def spread_reference(features: np.ndarray, labels: np.ndarray, limit: int = MAX_REFERENCE):
    """At most `limit` rows, taken evenly from each class so no class is left without any."""
    if len(features) <= limit:
        return features
    keep: list[int] = []
    classes = np.unique(labels)
    per_class = max(1, limit // len(classes))
    for label in classes:
        rows = np.flatnonzero(labels == label)
        keep += rows[np.linspace(0, len(rows) - 1, min(per_class, len(rows))).astype(int)].tolist()
    return features[sorted(keep)]


def unit(features: np.ndarray) -> np.ndarray:
    from finetune_gui.core.run.dataset_features import normalise

    return normalise(features)


def encode(array: np.ndarray) -> dict:
    array = np.ascontiguousarray(array, dtype="<f4")
    return {
        "dtype": "float32",
        "byte_order": "little",
        "shape": list(array.shape),
        "base64": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def decode(data: dict) -> np.ndarray:
    raw = base64.b64decode(data["base64"])
    return np.frombuffer(raw, dtype="<f4").reshape(data["shape"]).astype(np.float32)
