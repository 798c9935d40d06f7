"""The kept head solved once more, on the training and validation images together, as
validation chose it (`head_solver` chose it): what a careful programmer's probe does once the
validation images have done their job. A resumed run refits exactly as an uninterrupted one: the
head is read from the output layer and the run's facts, not from memory of the search.
"""

from __future__ import annotations

import numpy as np

from finetune_gui.core.data.storage import StackedRows, row_chunks
from finetune_gui.core.events import ProgressCallback
from finetune_gui.core.model.softmax_head import PLAIN_C, SoftmaxHead, plain_l2, search_softmax_head
from finetune_gui.core.run.record import FactsDraft
from finetune_gui.core.training.head_solver import sample_text, set_output_layer


def head_in_layer(classifier, row: dict) -> SoftmaxHead:
    """The solved head as the classifier's output layer holds it, with its row of the search
    (`head_l2_tried` in run.json: penalty, loss, iterations, plain or standardised)."""
    kernel, bias = classifier.head_layers[-1].get_weights()
    return SoftmaxHead(np.asarray(kernel, np.float64), np.asarray(bias, np.float64), row["l2"],
                       row["train_loss"], row["iterations"], standardised=row["standardised"])


def refit_kept_head(
    classifier, facts: FactsDraft, stored, train_labels: np.ndarray, val_labels: np.ndarray,
    classes: list[str], class_weights: str, progress: ProgressCallback,
) -> dict:
    """`refit_on_train_and_val` for the head the run solved and kept (in the output layer once
    the best weights are back), read from the run's facts when called, so a resumed run refits
    exactly as an uninterrupted one; {} when no head was solved (phase 1 trained, or not run)."""
    chosen = facts.record.chosen_head
    if chosen is None:
        return {}
    return refit_on_train_and_val(classifier, head_in_layer(classifier, chosen), stored,
                                  train_labels, val_labels, classes, class_weights, progress)


def refit_on_train_and_val(
    classifier, chosen: SoftmaxHead, stored, train_labels: np.ndarray, val_labels: np.ndarray,
    classes: list[str], class_weights: str, progress: ProgressCallback,
) -> dict:
    """Solve the kept head again on the training and validation features together (`stored`:
    the fast path's StoredActivations), as validation chose (`chosen`: the plain head at
    `PLAIN_C`, or a standardised one at its L2 strength), and put it into the classifier;
    returns what run.json records.

    Validation has done its job (it chose the strength and the phase); the final head then
    learns from every image it may see, as the 15-line probe a programmer writes does, while the
    test images stay unseen. On the digits the head had 1,146 images to learn from, the probe
    1,347 (issue 12).
    """
    from finetune_gui.core.events import LogMessage, ignore_progress
    from finetune_gui.core.training.recipe import sample_weights

    if len(val_labels) == 0:
        return {}
    labels = np.concatenate([train_labels, val_labels])
    weights = sample_weights(labels, classes, class_weights, ignore_progress)
    # Inside the memory budget: both parts' rows read from where they are stored, never
    # copied together; beyond the solver's cap a sample starts it and every row finishes it.
    features = StackedRows((stored.train.pooled, len(train_labels)),
                           (stored.val.pooled, len(val_labels)))
    l2 = chosen.l2 if chosen.standardised else plain_l2(len(labels))  # C = 1 on every image
    # Started from the chosen head: the optimum moves little with a sixth more images.
    search = search_softmax_head(features, labels, None, None, len(classes),
                                 sample_weight=weights, fallback_l2=l2,
                                 fallback_standardised=chosen.standardised, start=chosen)
    set_output_layer(classifier, search.head)
    penalty = f"L2 {l2:g}" if chosen.standardised else f"C = {PLAIN_C:g}"
    # The training rows hold each image's augmented copies too (`stored.views` rows an image).
    views = stored.views
    training_images = len(train_labels) // views
    copies = "" if views == 1 else (
        f", the {training_images:,} training images also as {views - 1} augmented "
        f"cop{'y' if views == 2 else 'ies'} each")
    progress(LogMessage(
        f"The kept head was solved again on the training and validation images together "
        f"({training_images + len(val_labels):,} in all{copies}; {penalty} as validation "
        f"chose); the test images stay unseen."
    ))
    row = search.chosen
    # As the search's rows say of each strength: what the solver took and where it ended.
    refit = {"images": len(labels), "l2": l2, "standardised": chosen.standardised,
             "iterations": row["iterations"], "train_loss": row["train_loss"]}
    if "sampled_from" in row:
        refit["sample"] = row["images"]  # run.json says a sample started the refit
        refit["finished_on"] = row["finished_on"]
        progress(LogMessage(sample_text(row, "The refit head was solved")))
    if not chosen.standardised:  # "not sure" refits this head on normalised features
        refit["feature_norm"] = _mean_length(features)
    return refit


def _mean_length(features) -> float:
    """The root mean square length of the rows, a chunk at a time."""
    total = 0.0
    for part in row_chunks(len(features), 8 * int(np.prod(features.shape[1:]))):
        total += float((np.asarray(features[part], dtype=np.float64) ** 2).sum())
    return float(np.sqrt(total / max(len(features), 1)))
