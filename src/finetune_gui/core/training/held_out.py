"""The one look a run takes at its test split, at the very end."""

from __future__ import annotations

import numpy as np

from finetune_gui.core.data.pipeline import INFERENCE_BATCH, batches
from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
)
from finetune_gui.core.run.dataset_features import normalise, probe
from finetune_gui.core.run.evaluation import EvaluationReport, build_report, predict_probabilities
from finetune_gui.core.training.inputs import decode_part
from finetune_gui.core.training.tracking import PhaseStop


def evaluate_on_test_split(
    model,
    split: DatasetSplit,
    size: int,
    batch_size: int,
    progress: ProgressCallback,
    cancel: CancelToken | None,
    seeing=None,
) -> tuple[EvaluationReport, tuple | None]:
    """Score `model` on the test images it never saw; stops at the next batch on cancel.

    With `seeing` (the model's `probe_model`) the same pass also gives the test images' rows of
    features.npz (first-block statistics, normalised pooled features, probabilities), returned
    beside the report (else None), so they are not run through the network twice.
    """
    from finetune_gui.core.training.callbacks import CancelStop

    test_x, test_y = decode_part(split.test, size, "evaluate", progress, cancel, split.pixels)
    progress(StageStarted("evaluate", len(test_y), f"Testing on {len(test_y)} held-out images"))
    stop = [CancelStop(cancel, PhaseStop())]
    rows = None
    if seeing is None or not len(test_y):
        probs = predict_probabilities(model, test_x, batch_size, stop)
    else:
        from finetune_gui.core.data.storage import allocate, row_chunks

        batch_size = min(batch_size, INFERENCE_BATCH)
        # A chunk of images at a time, the pooled features into an array the memory budget
        # holds (or the disk store): predict's own output of every test image was whole.
        width = int(seeing.outputs[1].shape[-1])
        pooled = allocate((len(test_y), width), np.float32)
        early, probs = [], []
        for chunk in row_chunks(len(test_y), int(np.prod(test_x.shape[1:])) + 4 * width):
            check_cancel(cancel)
            found_early, found_pooled, found_probs = seeing.predict(
                batches([test_x[chunk]], batch_size), verbose=0, callbacks=stop)
            pooled[chunk] = normalise(found_pooled)
            early.append(np.asarray(found_early, np.float32))
            probs.append(np.asarray(found_probs, np.float32)[:, : len(split.classes)])
        probs = np.concatenate(probs)
        rows = (np.concatenate(early), pooled, probs)
    check_cancel(cancel)
    return build_report(split.classes, test_y, probs, [p for p, _ in split.test]), rows


# Below this gap between its two likeliest classes an answer from stored features is taken
# again from the saved model itself. The stored features are TensorFlow's within
# onnx_pass.TOLERANCE (measured: 2e-5 of 11.6 at 160 px; on a real run's 66 test images the
# probabilities were the saved model's within 2e-6), so only an answer this close to a tie
# could change its class.
TIE_MARGIN = 0.01


def score_stored_test(
    classifier,
    split: DatasetSplit,
    stored,
    size: int,
    progress: ProgressCallback,
    cancel: CancelToken | None,
    seeing,
) -> tuple[EvaluationReport, tuple]:
    """`evaluate_on_test_split` for a kept model whose frozen part took the test images
    already (`stored`: their `CachedFeatures`, fast_path.takes_test_images): only the head
    runs on them, and answers near a tie come from the whole saved model (`seeing`)."""
    from finetune_gui.core.data.pipeline import decode_images
    from finetune_gui.core.model.frozen_pass import above_stored_model
    from finetune_gui.core.training.kept_features import stored_rows

    labels = np.array([label for _, label in split.test], dtype="int32")
    progress(StageStarted("evaluate", len(labels), f"Testing on {len(labels)} held-out images"))
    above = above_stored_model(classifier, None)
    early, pooled, probs = stored_rows(classifier, above, None, stored)
    probs = probs[:, : len(split.classes)]
    top_two = np.sort(probs, axis=1)[:, -2:]
    close = np.flatnonzero(top_two[:, 1] - top_two[:, 0] < TIE_MARGIN)
    if len(close):
        check_cancel(cancel)
        pixels = decode_images([split.test[i][0] for i in close], size, cancel=cancel)
        early[close], pooled[close], probs[close] = answers_in_tensorflow(
            classifier, above, seeing, pixels, len(split.classes))
    check_cancel(cancel)
    progress(StageProgress("evaluate", len(labels), len(labels)))
    report = build_report(split.classes, labels, probs, [p for p, _ in split.test])
    return report, (early, pooled, probs)


def answers_in_tensorflow(classifier, above, seeing, pixels: np.ndarray, classes: int) -> tuple:
    """(first-block statistics, normalised pooled features, probabilities) of `pixels` as the
    saved model computes them, in TensorFlow: through the frozen part's step that this run's
    passes traced already and the head above it (`above`: `above_stored_model` without a cut),
    or, when no pass traced one, the whole saved model (`seeing`). On a MNIST run 6 test
    answers near a tie took 2.0 s through the whole model, nearly all of it tracing it."""
    import tensorflow as tf

    from finetune_gui.core.model.frozen_pass import CachedFeatures, traced_part
    from finetune_gui.core.training.kept_features import stored_rows

    part = traced_part(classifier, tuple(pixels.shape[1:]))
    if part is None:
        return probe(seeing, pixels, classes)
    *_, early, pooled = (np.asarray(out) for out in part.step(tf.cast(pixels, tf.float32)))
    # The step's outputs are what a pass stores: the head above them as for the stored rows.
    early, found_pooled, probs = stored_rows(classifier, above, None,
                                             CachedFeatures(pooled, None, 1, early))
    return early, found_pooled, probs[:, :classes]
