"""What the network sees in each picture to label: its pooled features, computed once.

Proposals, the asking order and groups all work on these rows, so after the first pass a page
of answers costs a head solve, not a pass over the pictures. The rows are kept in the feature
cache (core/training/feature_cache.py) under a key of the files and the network, so reopening a
session or running `label suggest` again skips the pass. From a run (`--from RUN`) the rows
are its model's pooled features, and its head gives the first proposals; from a backbone they
are the frozen pass a new run would make (every block read, as training reads them).

The rows are then projected on their `FEATURE_DIMS` main directions (PCA), once per folder.
A softmax head with an L2 penalty does not depend on how the rows are rotated, and the
directions dropped hardly vary: on the digits benchmark (2,784 features) the head on 600
labels scored 0.874 on the rest against 0.881, and solving it with the held-out estimate took
0.64 s instead of 5.9 s, so a page's answers are proposals again within the 2 s asked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.events import CancelToken, LogMessage, ProgressCallback, ignore_progress

FEATURE_DIMS = 256


@dataclass(frozen=True)
class FeatureSource:
    """Where the features come from: a run's model (`run`), else a backbone and its weights."""

    run: str | None = None
    backbone: str = "mobilenetv2"
    weights: str = "imagenet"
    image_size: int | None = None

    def check(self) -> None:
        """Raise a `UserError` in one sentence when the run or the settings cannot be used."""
        if self.run is not None:
            from finetune_gui.core.run.folder import RunFolder

            RunFolder.open(self.run)
        else:
            self.settings()

    def settings(self):
        """The training settings of a new run on this backbone (checks names and sizes)."""
        from finetune_gui.core.settings import TrainingSettings

        return TrainingSettings(backbone=self.backbone, weights=self.weights,
                                image_size=self.image_size, augment="none")

    def describe(self) -> str:
        if self.run is not None:
            return f"the model of the run {self.run}"
        from finetune_gui.core.model.backbones import get_backbone, weights_phrase

        size = f" at {self.image_size} px" if self.image_size else ""
        try:
            name = get_backbone(self.backbone).keras_name  # "MobileNetV2", as the window says
        except Exception:  # a name the settings check refuses says so itself
            name = self.backbone
        return f"{name} with {weights_phrase(self.weights)}{size}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSource:
        return cls(**{k: data.get(k) for k in ("run", "backbone", "weights", "image_size")
                      if data.get(k) is not None})


@dataclass
class PictureFeatures:
    """One row per picture; with a run, its classes and its model's answers."""

    features: np.ndarray  # (N, D) pooled features as the head reads them
    run_classes: list[str]
    run_probabilities: np.ndarray | None  # (N, len(run_classes)), None without a run


def picture_features(
    source: FeatureSource,
    paths: list[Path],
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> PictureFeatures:
    """The features of `paths` from `source` (from the cache, else computed and cached),
    projected on their main directions (`reduced`)."""
    found = (_from_run if source.run is not None else _from_backbone)(
        source, paths, progress, cancel)
    found.features = reduced(found.features)
    return found


def reduced(features: np.ndarray, dims: int = FEATURE_DIMS) -> np.ndarray:
    """`features` projected on their `dims` main directions (as they are when they have no
    more columns or rows than that: nothing to gain)."""
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    features = np.asarray(features, dtype=np.float32)
    if features.shape[1] <= dims or len(features) <= dims:
        return features
    with threadpool_limits(limits=2):
        projected = PCA(dims, svd_solver="randomized", random_state=0).fit_transform(features)
    return projected.astype(np.float32)


def _cached(key: str, compute, progress: ProgressCallback) -> np.ndarray:
    from finetune_gui.core.model.frozen_pass import CachedFeatures
    from finetune_gui.core.training import feature_cache

    found = feature_cache.load(key)
    if found is not None:
        progress(LogMessage("Reusing the pictures' features from an earlier pass."))
        return np.asarray(found.pooled, dtype=np.float32)
    pooled = np.asarray(compute(), dtype=np.float32)
    feature_cache.save(key, CachedFeatures(pooled, None, 1))
    return pooled


def _decode(paths: list[Path], size: int, progress, cancel) -> np.ndarray:
    from finetune_gui.core.data.pipeline import decode_images

    return decode_images(paths, size, progress=progress, cancel=cancel, stage="decode")


def _from_backbone(source, paths, progress, cancel) -> PictureFeatures:
    from finetune_gui.core.data.pipeline import INFERENCE_BATCH
    from finetune_gui.core.model.build import build_classifier
    from finetune_gui.core.model.frozen_pass import extract_features
    from finetune_gui.core.training import feature_cache

    settings = source.settings()
    progress(LogMessage(f"Loading {source.describe()}…"))
    classifier = build_classifier(settings, 2)
    # The key a training run on these files would use: one pass serves both.
    key = feature_cache.cache_key(
        paths, backbone=settings.backbone, weights=feature_cache.weights_identity(settings.weights),
        size=settings.resolved_image_size, augment=None, views=1, cut=None, seed=settings.seed,
        precision=classifier.base.compute_dtype, head_reads=settings.head_reads)

    def compute():
        images = _decode(paths, settings.resolved_image_size, progress, cancel)
        found = extract_features(classifier, images, cut=None, batch_size=INFERENCE_BATCH,
                                 progress=progress, cancel=cancel, stage="features")
        return found.pooled

    return PictureFeatures(_cached(key, compute, progress), [], None)


def _from_run(source, paths, progress, cancel) -> PictureFeatures:
    import keras

    from finetune_gui.core.data.pipeline import INFERENCE_BATCH, batches
    from finetune_gui.core.model.parts import POOL_LAYER, split_classifier
    from finetune_gui.core.run.dataset_features import model_stamp
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.training import feature_cache

    run = RunFolder.open(source.run)
    progress(LogMessage(f"Loading {source.describe()}…"))
    model = run.load_model()
    parts = split_classifier(model)  # an ensemble has no one backbone: refused in words
    key = feature_cache.cache_key(paths, run=str(run.path.resolve()), model=model_stamp(run),
                                  size=run.image_size, kind="labelling from a run")

    def compute():
        images = _decode(paths, run.image_size, progress, cancel)
        pooled = keras.Model(model.inputs, model.get_layer(POOL_LAYER).output)
        return pooled.predict(batches([images], INFERENCE_BATCH), verbose=0)

    pooled = _cached(key, compute, progress)
    # The run's answers from the stored rows: the layers after the pooling, on the features.
    x = inputs = keras.Input((pooled.shape[1],))
    for layer in parts.head[1:]:
        x = layer(x)
    head = keras.Model(inputs, x)
    probabilities = head.predict(pooled, batch_size=1024, verbose=0) if len(pooled) else None
    return PictureFeatures(pooled, list(run.classes), np.asarray(probabilities, np.float32)
                           [:, : len(run.classes)] if probabilities is not None else None)
