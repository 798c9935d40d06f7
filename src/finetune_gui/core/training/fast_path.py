"""Speed mode: the frozen layers run once per image (and augmented view), and the trained layers
then learn from that stored output instead of from pixels.

Phase 1 trains the head on the pooled output of the whole base; phase 2 trains the top blocks on
the output at the cut below them. Stored outputs are kept on disk (`feature_cache`) and reused
by a later run with the same images, weights and settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from finetune_gui.core.data.pipeline import decode_images
from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.events import CancelToken, LogMessage, ProgressCallback
from finetune_gui.core.model.backbones import cut_layer
from finetune_gui.core.model.frozen_pass import (
    CachedFeatures,
    extract_features,
    frozen_seconds_per_image,
    head_model,
    stored_inputs,
    top_model,
)
from finetune_gui.core.model.onnx_pass import release, runs_through_onnx
from finetune_gui.core.run.unsure import MAX_PSEUDO, pseudo_outliers
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training import feature_cache
from finetune_gui.core.training.plan import PhasePlan

# Tracing the whole network for the test look, which the frozen pass taking the test images
# saves: 2.3 s measured on MobileNetV2 at 48 px (150 faces, 2 cores), more at larger sizes.
WHOLE_NETWORK_TRACE_SECONDS = 2.0
PSEUDO_OUTLIERS = f"pseudo-outliers of the first {MAX_PSEUDO} validation images"


@dataclass
class StoredActivations:
    """The frozen layers' output for the training images (all views) and the validation images;
    `test`: the test images' pooled features when the same pass took them (`takes_test_images`),
    which only the final look at the test split reads; `pseudo`: those of the "not sure" rule's
    pseudo-outliers (core/run/unsure.py), made from the validation images, taken with them."""

    train: CachedFeatures
    val: CachedFeatures
    cut: str | None
    test: CachedFeatures | None = None
    pseudo: CachedFeatures | None = None

    @property
    def views(self) -> int:
        return self.train.views


def finetune_cut(classifier, phases: list[PhasePlan]) -> str | None:
    """The layer below the blocks phase 2 unfreezes (None without a fine-tuning phase)."""
    finetune = [p for p in phases if p.phase == "finetune"]
    return cut_layer(classifier.ends, finetune[0].unfrozen_blocks) if finetune else None


def store_activations(
    classifier,
    settings: TrainingSettings,
    split: DatasetSplit,
    images: tuple,
    *,
    cut: str | None,
    augment,
    views: int,
    batch_size: int,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> StoredActivations:
    """Run the frozen layers on the training (`views` augmented copies) and validation pixels,
    and on the test images' when that is cheap (`takes_test_images`)."""
    train_x, val_x = images
    # Hashes the whole weights file: once per run, not once per part of the split.
    weights_id = feature_cache.weights_identity(settings.weights)

    def extract(pixels, items, augment, views, stage, keep_cut=True, later_images=0,
                made_from=None):
        return _cached_extract(
            classifier, settings, pixels, items, cut=cut, augment=augment, views=views,
            stage=stage, weights_id=weights_id, batch_size=batch_size, progress=progress,
            cancel=cancel, keep_cut=keep_cut, later_images=later_images, made_from=made_from,
        )

    # The first pass chooses the runtime for all of them: the validation and test images
    # count too (on 1,797 digits at 160 px the training images alone did not pay for ONNX
    # Runtime, and the test look then ran the whole network in TensorFlow).
    later = len(split.val) + len(split.test)
    train = extract(train_x, split.train, augment, views, "extract", later_images=later)
    val = extract(val_x, split.val, None, 1, "extract-val", later_images=len(split.test))
    test = pseudo = None
    pseudo_count = min(len(val_x), MAX_PSEUDO)  # made only when they are run (`pseudo_outliers`)
    later_seconds = _tensorflow_seconds(classifier, cut, len(split.test) + pseudo_count)
    # An earlier run's entries cost nothing to take (a run with another head, on the same
    # images, ran no frozen layers and traced the whole network for its test look before).
    cached = all(feature_cache.has(_feature_key(
        classifier, settings, items, cut=None, augment=None, views=1, weights_id=weights_id,
        made_from=made_from)) for items, made_from in ((split.test, None),
                                                       (split.val, PSEUDO_OUTLIERS)) if items)
    if cached or takes_test_images(cut, runs_through_onnx(classifier.base, cut), later_seconds):
        if split.test:
            test = extract(partial(decode_images, [p for p, _ in split.test],
                                   settings.resolved_image_size, progress=progress,
                                   cancel=cancel, stage="decode", kept=split.pixels),
                           split.test, None, 1, "extract-test", keep_cut=False)
        if len(val_x):
            pseudo = extract(partial(pseudo_outliers, val_x), split.val, None, 1,
                             "extract-pseudo", keep_cut=False, made_from=PSEUDO_OUTLIERS)
    release(classifier.base)  # the frozen part's faster runtime, when it ran there
    return StoredActivations(train, val, cut, test, pseudo)


def takes_test_images(cut: str | None, through_onnx: bool,
                      tensorflow_seconds: float | None = None) -> bool:
    """Whether the frozen pass also takes the test images, for the final look at them (and
    the "not sure" rule's pseudo-outliers, for its calibration).

    It saves that look running the whole network in TensorFlow (12 ms an image against 3
    through ONNX Runtime, MobileNetV2 at 160 px, and tracing it first) whenever the kept
    model's frozen part is the one that ran: always without fine-tuning (no `cut`), and when
    fine-tuning is thrown away, as it mostly is. When fine-tuning is kept the test images must
    go through the whole network again; a pass through ONNX Runtime then wasted a quarter of
    that, so it is taken on that chance. In TensorFlow the pass is taken when it costs
    (`tensorflow_seconds`, estimated from the passes before it) no more than the trace it
    saves: then a kept fine-tuning loses at most what a thrown-away one wins.
    """
    if cut is None or through_onnx:
        return True
    return tensorflow_seconds is not None and tensorflow_seconds <= WHOLE_NETWORK_TRACE_SECONDS


def _tensorflow_seconds(classifier, cut: str | None, images: int) -> float | None:
    """What `images` more images would take through the traced frozen part below `cut`."""
    per_image = frozen_seconds_per_image(classifier, cut)
    return None if per_image is None else per_image * images


def phase_model(classifier, phase: str, stored: StoredActivations, *, head_solved: bool = False):
    """The part of the classifier a phase fits, with its training and validation inputs.

    After a solved head, fine-tuning runs without dropout: the head was fitted without it
    (validation chose its L2 instead), and dropping a fifth of the features under its weights
    took the digits' training accuracy from 100% to 65% in the first fine-tuning epoch, which
    then never recovered the head's validation score (issue 12).
    """
    if phase == "head":
        return head_model(classifier), stored.train.pooled, stored.val.pooled
    model = top_model(classifier, stored.cut, dropout=not head_solved)
    inputs = [stored_inputs(classifier, stored.cut, found) for found in (stored.train, stored.val)]
    return model, *inputs


def _feature_key(classifier, settings, items, *, cut, augment, views, weights_id,
                 made_from=None) -> str:
    """The feature cache's key of the frozen part's output below `cut` for `items`' images
    (`made_from`: pictures made from them, such as the pseudo-outliers)."""
    facts = {} if made_from is None else {"made_from": made_from}
    return feature_cache.cache_key(
        [p for p, _ in items],
        backbone=settings.backbone,
        weights=weights_id,
        size=settings.resolved_image_size,
        # One copy is the plain image whatever the augmentation, so it does not split the key.
        augment=settings.augment.to_dict() if augment is not None and views > 1 else None,
        views=views if augment is not None else 1,
        cut=cut,
        seed=settings.seed,
        precision=classifier.base.compute_dtype,
        head_reads=settings.head_reads,
        **facts,
    )


def _cached_extract(
    classifier, settings, images, items, *, cut, augment, views, stage, weights_id, batch_size,
    progress, cancel, keep_cut=True, later_images=0, made_from=None,
) -> CachedFeatures:
    """Extract the frozen part's output, or reuse it from an earlier run with the same key
    (without `keep_cut`, the pooled features alone, as a pass without a cut stores them).
    `images`: the pixels, or a function that gives them (called only when not cached)."""
    key = _feature_key(classifier, settings, items, cut=cut if keep_cut else None,
                       augment=augment, views=views, weights_id=weights_id, made_from=made_from)
    found = feature_cache.load(key)
    if found is not None:
        progress(LogMessage(f"Reusing the frozen layers' output from an earlier run ({stage})."))
        return found
    features = extract_features(
        classifier, images() if callable(images) else images, cut=cut, augment=augment,
        views=views, batch_size=batch_size, progress=progress, cancel=cancel, stage=stage,
        keep_cut=keep_cut, later_images=later_images,
    )
    feature_cache.save(key, features)
    return features
