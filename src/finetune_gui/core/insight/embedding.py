"""A 2-D map of images as the model sees them: pooled backbone features projected by PCA.

Images of one class should cluster. The images marked as suspect labels are those of
`core.insight.suspects.review_suspects`, the same list as the Suspect labels view, in the same
order: the map never has its own rule for "belongs to another class". An image far from its class's centre is marked as an
outlier: its distance (in the full feature space, standardised per feature) has a robust z-score
above OUTLIER_Z, using the median and the median absolute deviation of the class's distances,
which a few outliers cannot drag along (Iglewicz and Hoaglin's modified z-score; 3.5 is their
cut-off). t-SNE can replace PCA: it separates clusters better, but is slower and its distances
between clusters mean little.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress
from finetune_gui.core.insight.suspects import Suspect

OUTLIER_Z = 3.5
MIN_CLASS_FOR_OUTLIERS = 5  # below this, "far from the others" means nothing
METHODS = ("pca", "tsne")


@dataclass
class EmbeddingMap:
    """One point per image; `classes_of_points` is the given label, else the predicted one."""

    paths: list[Path]
    points: np.ndarray  # (N, 2)
    given: list[str | None]  # the label in the run's split; None for images outside it
    predicted: list[str]
    outliers: np.ndarray  # (N,) bool
    classes: list[str]
    method: str
    explained_variance: tuple[float, ...] = ()  # PCA only: share of variance per axis
    suspects: list[Suspect] = field(default_factory=list)  # the run's, surest first
    saw_labels: bool = False  # the run's backbone trained on the labels (`SuspectReview`)

    @property
    def classes_of_points(self) -> list[str]:
        return [g if g is not None else p for g, p in zip(self.given, self.predicted, strict=True)]

    @property
    def suspected(self) -> np.ndarray:
        """(N,) bool: the point is one of the run's suspect labels."""
        listed = {s.path for s in self.suspects}
        return np.array([path in listed for path in self.paths], dtype=bool)

    def suspect_of(self, index: int) -> Suspect | None:
        """What the suspects list says of point `index`, if it is listed."""
        path = self.paths[index]
        return next((s for s in self.suspects if s.path == path), None)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "classes": list(self.classes),
            "explained_variance": [round(v, 4) for v in self.explained_variance],
            "points": [
                {
                    "path": str(path),
                    "x": float(x),
                    "y": float(y),
                    "given": given,
                    "predicted": predicted,
                    "outlier": bool(outlier),
                    "suspect": bool(suspect),
                }
                for path, (x, y), given, predicted, outlier, suspect in zip(
                    self.paths, self.points, self.given, self.predicted, self.outliers,
                    self.suspected, strict=True,
                )
            ],
            "suspects": [s.to_dict() for s in self.suspects],
        }


def embedding_map(
    run,
    paths: list[Path | str] | None = None,
    *,
    model=None,
    method: str = "pca",
    exclude: set[Path] | frozenset[Path] = frozenset(),
    data_root: Path | str | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> EmbeddingMap:
    """The map for `paths` (default: every image of the run's split but those in `exclude`)
    under a run's model, with the run's suspect labels (`review_suspects`, same `exclude`)."""
    from finetune_gui.core.data.pipeline import decode_images
    from finetune_gui.core.errors import SettingsError
    from finetune_gui.core.insight.suspects import review_suspects
    from finetune_gui.core.model.parts import features_and_probabilities

    if method not in METHODS:
        raise SettingsError(f"Unknown map method '{method}'; choose one of {', '.join(METHODS)}.")
    model = model or run.load_model()
    review = review_suspects(run, model=model, exclude=exclude, data_root=data_root,
                             progress=progress, cancel=cancel)
    scored = review.scored
    if paths is None:
        chosen, features, answers = scored.paths, scored.features, scored.answers
    else:
        chosen = [Path(p) for p in paths]
        images = decode_images(chosen, run.image_size, progress=progress, cancel=cancel,
                               stage="map")
        features, answers = features_and_probabilities(model, images)
    split = run.split(data_root)
    known = {path: run.classes[label] for part in (split.train, split.val, split.test)
             for path, label in part}
    predicted = [run.classes[i] for i in answers[:, : len(run.classes)].argmax(axis=1)]
    given = [known.get(path) for path in chosen]
    classes_of_points = [g if g is not None else p for g, p in zip(given, predicted, strict=True)]
    points, variance = project(features, method)
    return EmbeddingMap(
        chosen, points, given, predicted, far_from_class(features, classes_of_points),
        list(run.classes), method, variance, review.suspects, review.saw_labels,
    )


def project(features: np.ndarray, method: str = "pca") -> tuple[np.ndarray, tuple[float, ...]]:
    """(N, 2) coordinates of standardised features, and PCA's explained variance per axis."""
    n = len(features)
    if n < 3:
        return np.zeros((n, 2), dtype="float32"), ()
    standard = _standardise(features)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (n - 1) // 3)))
        points = TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(standard)
        return points.astype("float32"), ()
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=0)
    points = pca.fit_transform(standard)
    return points.astype("float32"), tuple(float(v) for v in pca.explained_variance_ratio_)


def far_from_class(features: np.ndarray, labels: list[str]) -> np.ndarray:
    """True for points whose distance to their class centre is a robust outlier (see top)."""
    standard = _standardise(features)
    labels_array = np.asarray(labels, dtype=object)
    outliers = np.zeros(len(features), dtype=bool)
    for name in set(labels):
        mine = np.flatnonzero(labels_array == name)
        if len(mine) < MIN_CLASS_FOR_OUTLIERS:
            continue
        # The median point of the class: a mean would be pulled towards the outliers themselves.
        centre = np.median(standard[mine], axis=0)
        distances = np.linalg.norm(standard[mine] - centre, axis=1)
        middle = np.median(distances)
        spread = 1.4826 * np.median(np.abs(distances - middle))
        if spread > 0:
            outliers[mine] = (distances - middle) / spread > OUTLIER_Z
    return outliers


def _standardise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype="float64")
    spread = features.std(axis=0)
    return (features - features.mean(axis=0)) / np.where(spread > 1e-12, spread, 1.0)
