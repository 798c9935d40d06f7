"""Phase 1 solved, not guessed: the solved head (core/model/softmax_head.py) as a phase of the
run, with its one row of history and the sentence the log says about the choice."""

from __future__ import annotations

import numpy as np

from finetune_gui.core.events import CancelToken, ProgressCallback
from finetune_gui.core.model.softmax_head import (
    PLAIN_C,
    HeadSearch,
    SoftmaxHead,
    search_softmax_head,
)
from finetune_gui.core.words import counted


def solves_head(settings) -> bool:
    """True when phase 1 is solved rather than trained: fast mode, pretrained base, no hidden
    layer (with one, the head is no longer convex and trains until validation stops improving)."""
    from finetune_gui.core.model.build import from_scratch

    return settings.cache_mode == "fast" and not from_scratch(settings) and not settings.dense_units


def set_output_layer(classifier, head: SoftmaxHead) -> None:
    """Put the solved weights into the classifier's softmax Dense layer."""
    layer = classifier.head_layers[-1]
    kernel, bias = layer.get_weights()
    layer.set_weights([head.kernel.astype(kernel.dtype), head.bias.astype(bias.dtype)])


def history_row(search: HeadSearch, train_features, train_labels, epoch: int, lr: float) -> dict:
    """The solved head as one row of history.csv, so curves and resume see phase 1 as done.
    Scored on every training row, a chunk at a time (`train_features`: RAM or disk store)."""
    from finetune_gui.core.model.head_features import scored

    head = search.head
    accuracy, loss = scored(train_features, train_labels, lambda rows: rows,
                            np.vstack([head.kernel, head.bias]))
    chosen = search.chosen
    return {
        "epoch": epoch,
        "phase": "head",
        "loss": loss,
        "accuracy": accuracy,
        "val_loss": chosen["val_loss"],
        "val_accuracy": chosen["val_accuracy"],
        "lr": lr,
    }


def solve_head_phase(
    classifier,
    train_pooled: np.ndarray,
    labels: np.ndarray,
    sample_weights: np.ndarray,
    val_pooled: np.ndarray,
    val_labels: np.ndarray,
    *,
    epoch: int,
    lr: float,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> tuple[HeadSearch, dict]:
    """Phase 1 without epochs: solve the head on the pooled features, put it into the
    classifier's output layer; returns the search and the phase's one row of history.

    The caller records the row like an epoch's (best weights, `EpochEnded`, checkpoint).
    """
    from finetune_gui.core.events import LogMessage, PhaseStarted, check_cancel
    from finetune_gui.core.model.build import count_trainable
    from finetune_gui.core.model.frozen_pass import head_model

    progress(PhaseStarted("head", 1, epoch, count_trainable(head_model(classifier))))
    progress(LogMessage(
        "Phase 1: solving the new head to its optimum on the frozen features (scikit-learn's "
        "logistic regression, unless another L2 strength is clearly better on validation)."
    ))
    # The features stay where they are (RAM or the disk store): the search takes its sample.
    search = search_softmax_head(
        train_pooled, labels, val_pooled, val_labels, classifier.head_layers[-1].units,
        sample_weight=sample_weights, on_tried=lambda row: check_cancel(cancel),
    )
    set_output_layer(classifier, search.head)
    progress(LogMessage(head_choice_text(search)))
    if "sampled_from" in search.chosen:
        progress(LogMessage(sample_text(search.chosen, "The head was solved")))
    return search, history_row(search, train_pooled, labels, epoch, lr)


def sample_text(row: dict, what: str) -> str:
    """The log's sentence when a solver started on a capped sample (`row`: images,
    sampled_from, finished_on when it was then solved on every row)."""
    if "finished_on" in row:
        return (f"{what} on a sample of {row['images']:,} of the {row['sampled_from']:,} images "
                f"first (every class in proportion), then on all {row['finished_on']:,} a chunk "
                f"at a time, so its features fit the memory budget and no image is left out.")
    return (f"{what} on a sample of {row['images']:,} of the {row['sampled_from']:,} training "
            f"images (every class in proportion), so its features fit the memory budget; a "
            f"larger sample moves a linear head's weights less than another split does.")


def head_choice_text(search: HeadSearch) -> str:
    """What the search chose and why, in one sentence for the log."""
    chosen, plain = search.chosen, search.tried[0]
    if chosen["val_accuracy"] is None:
        return "Head solved (no validation images to choose a strength with)."
    others = [row for row in search.tried if row["standardised"]]
    if not chosen["standardised"]:
        best = max(others, key=lambda row: row["val_accuracy"], default=None)
        beaten = (
            f"; no standardised L2 strength beat it by more than chance (best: "
            f"{best['val_accuracy']:.1%} at L2 {best['l2']:g})" if best else ""
        )
        return (f"Head solved as scikit-learn's logistic regression solves it (C = {PLAIN_C:g}): "
                f"validation accuracy {plain['val_accuracy']:.1%}{beaten}.")
    return (f"Head solved: standardised features at L2 {chosen['l2']:g} (validation accuracy "
            f"{chosen['val_accuracy']:.1%}, clearly above the plain logistic regression's "
            f"{plain['val_accuracy']:.1%}; {counted(len(others), 'strength')} tried).")
