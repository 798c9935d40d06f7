"""The kept model's probabilities calibrated before it is saved (core/run/calibration.py): a
temperature fitted on answers about images the model did not learn, folded into its output
layer, so model.keras and every export made from it say the same calibrated probabilities."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from finetune_gui.core.data.storage import capped_sample, rows_in_budget
from finetune_gui.core.events import LogMessage, ProgressCallback
from finetune_gui.core.run.calibration import (
    expected_calibration_error,
    fit_temperature,
    fold_into_output_layer,
    mean_log_loss,
    with_temperature,
)
from finetune_gui.core.run.evaluation import predict_probabilities
from finetune_gui.core.run.record import RunFacts
from finetune_gui.core.run.unseen_answers import (
    head_penalty,
    held_out_probabilities,
    learned_parts,
    plain_penalty,
)
from finetune_gui.core.training.head_refit import head_in_layer


def unlearned_answers(
    classifier, facts: RunFacts, stored, train_y: np.ndarray, val_y: np.ndarray,
    val_x: np.ndarray, *, base_changed: bool, batch_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(probabilities, labels, held_out) about images whose labels the kept model did not
    learn.

    A solved head kept on the stored features: its k-fold answers on the parts it was fitted
    on (training, and validation after the refit) at its own penalty, and its answers on the
    validation images when it was not refitted. Any other kept model (fine-tuned, or a head
    trained by epochs): its answers on the validation images, which it never trained on.
    `held_out` holds the k-fold answers row by row of the training then validation images
    (NaN where an image has none), for the "not sure" rule to take instead of solving the
    same folds again (`unseen_answers.unseen_probabilities`); None without k-fold answers.
    """
    parts = learned_parts(facts)
    n_classes = classifier.head_layers[-1].units
    if stored is None or base_changed or facts.chosen_head is None:
        answers = predict_probabilities(classifier.model, val_x, batch_size)
        return answers, np.asarray(val_y), None
    labels = [np.asarray(train_y)]
    if "val" in parts:
        labels.append(np.asarray(val_y))
    labels = np.concatenate(labels)
    if facts.head_refit or facts.chosen_head.get("standardised", True):
        penalty = replace(head_penalty(facts), feature_norm=1.0)  # the features as stored
    else:
        penalty = plain_penalty(len(labels))
    # A temperature is one number: a capped sample of the answers fits it as well as all of
    # them, and keeps the k-fold's features inside the memory budget.
    width = int(np.prod(stored.train.pooled.shape[1:]))
    rows = capped_sample(labels, rows_in_budget(3 * 8 * width, share=8))
    n_train = len(train_y)
    if rows is None:
        rows = np.arange(len(labels))
    from_train, from_val = rows[rows < n_train], rows[rows >= n_train] - n_train
    features = np.concatenate([np.asarray(stored.train.pooled[from_train]),
                               np.asarray(stored.val.pooled[from_val])])
    labels = labels[rows]
    # Each fold's solver starts at the kept head (in the output layer, not yet calibrated).
    answers = held_out_probabilities(features, labels, n_classes, penalty,
                                     start=head_in_layer(classifier, facts.chosen_head))
    held_out = None
    if answers is None:
        answers, labels = np.zeros((0, n_classes), np.float32), labels[:0]
    else:
        held_out = np.full((n_train + len(val_y), n_classes), np.nan, np.float32)
        held_out[np.concatenate([from_train, n_train + from_val])] = answers
    if "val" not in parts and len(val_y):
        answers = np.concatenate([answers, predict_probabilities(classifier.model, val_x,
                                                                 batch_size)[:, :n_classes]])
        labels = np.concatenate([labels, val_y])
    return answers, labels, held_out


def calibrate_kept_model(
    classifier, facts: RunFacts, stored, train_y: np.ndarray, val_y: np.ndarray,
    val_x: np.ndarray, *, base_changed: bool, batch_size: int, progress: ProgressCallback,
) -> tuple[dict, np.ndarray | None]:
    """Fit the temperature on `unlearned_answers` and fold it into the classifier's output
    layer; returns what run.json records (`calibration`, {} when there was nothing to fit on)
    and the k-fold answers it was fitted on (`unlearned_answers`' `held_out`, uncalibrated)."""
    answers, labels, held_out = unlearned_answers(
        classifier, facts, stored, train_y, val_y, val_x, base_changed=base_changed,
        batch_size=batch_size)
    of = len(train_y) + len(val_y)
    temperature = fit_temperature(answers, labels)
    if not len(labels):
        return {}, held_out
    before = expected_calibration_error(answers, labels)
    after = expected_calibration_error(with_temperature(answers, temperature), labels)
    if temperature != 1.0:
        fold_into_output_layer(classifier.head_layers[-1], temperature)
    loss_before = mean_log_loss(answers, labels)
    loss_after = mean_log_loss(answers, labels, temperature)
    # The temperature lowers the log loss (a proper score: what it is fitted on); the binned
    # calibration error of a few dozen answers can move either way by noise.
    progress(LogMessage(
        f"Probabilities calibrated on {len(labels):,} answers about images the model did not "
        f"learn: temperature {temperature:.3g}, log loss {loss_before:.3f} -> {loss_after:.3f}, "
        f"calibration error {before:.3f} -> {after:.3f} (0 is perfect for both)."
    ))
    record = {"temperature": temperature, "answers": len(labels),
              "error_before": round(before, 4), "error_after": round(after, 4),
              "log_loss_before": round(loss_before, 4), "log_loss_after": round(loss_after, 4)}
    if len(labels) < of and facts.chosen_head is not None and not base_changed:
        record["sampled_from"] = of  # run.json says the temperature saw a sample
        progress(LogMessage(f"The temperature was fitted on a sample of {len(labels):,} of the "
                            f"{of:,} answers, so their features fit the memory budget."))
    return record, held_out
