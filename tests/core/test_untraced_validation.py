"""A phase's validation on a few batches is scored by calling the model, not by a traced test
step: the same numbers `fit` reports, without the tracing a small folder waits for."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.training.callbacks import (
    UNTRACED_VALIDATION_MAX_BATCHES,
    UntracedValidation,
    untraced_validation,
)
from finetune_gui.core.training.tracking import PhaseStop


def test_only_a_few_batches_of_validation_are_scored_untraced():
    limit = UNTRACED_VALIDATION_MAX_BATCHES * 32
    assert untraced_validation(22, 32)  # the 150 faces' validation split
    assert untraced_validation(limit, 32)
    assert not untraced_validation(limit + 1, 32)
    assert not untraced_validation(0, 32)  # no validation images: nothing to score


def two_input_model(l2: float = 0.0):
    import keras

    keras.utils.set_random_seed(0)
    at_cut, below = keras.Input((4, 4, 3)), keras.Input((5,))
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(at_cut), below])
    penalty = keras.regularizers.L2(l2) if l2 else None  # the head's `l2` setting
    output = keras.layers.Dense(3, activation="softmax", kernel_regularizer=penalty)(joined)
    model = keras.Model([at_cut, below], output)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize(("images", "l2"), [(7, 0.0), (70, 0.0), (70, 0.05)])
def test_the_untraced_scores_are_the_ones_fit_reports(images, l2):
    # One batch, several with a short last one, and a penalised head (Keras adds the penalty to
    # the validation loss).
    rng = np.random.default_rng(images)
    train = (rng.normal(size=(40, 4, 4, 3)).astype("float32"),
             rng.normal(size=(40, 5)).astype("float32"))
    val = (rng.normal(size=(images, 4, 4, 3)).astype("float32"),
           rng.normal(size=(images, 5)).astype("float32"))
    train_y, val_y = rng.integers(0, 3, 40), rng.integers(0, 3, images)
    traced = two_input_model(l2).fit(train, train_y, validation_data=(val, val_y), epochs=2,
                                   batch_size=16, shuffle=False, verbose=0).history
    untraced = two_input_model(l2).fit(
        train, train_y, epochs=2, batch_size=16, shuffle=False, verbose=0,
        callbacks=[UntracedValidation(val, val_y, 16, PhaseStop())]).history
    assert untraced["val_accuracy"] == pytest.approx(traced["val_accuracy"], abs=1e-6)
    assert untraced["val_loss"] == pytest.approx(traced["val_loss"], rel=1e-5)
    assert untraced["loss"] == pytest.approx(traced["loss"], rel=1e-5)  # training unchanged


def test_an_epoch_stopped_part_of_the_way_is_not_scored():
    model = two_input_model()
    stop = PhaseStop(losing="clearly worse")
    logs = {"loss": 1.0}
    callback = UntracedValidation((np.zeros((3, 4, 4, 3)), np.zeros((3, 5))), np.zeros(3), 16,
                                  stop)
    callback.set_model(model)
    callback.on_epoch_end(0, logs)
    assert logs == {"loss": 1.0}
