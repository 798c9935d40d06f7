"""The Keras callbacks of one training phase, one concern each, handed what they need.

Keras calls them in list order for every hook, so the order `ledger.py` lists them in is the order
of the events a user sees: per batch divergence, cancel, then progress; per epoch the history
row, early stopping (its message waits for the phase's end, after the epoch's line), the
`EpochEnded` event, then the checkpoint. Imported only once training
starts: this module imports Keras.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import keras
import numpy as np

from finetune_gui.core.events import (
    BatchEnded,
    CancelToken,
    EpochEnded,
    LogMessage,
    ProgressCallback,
)
from finetune_gui.core.model.build import recalibrate_batchnorm
from finetune_gui.core.training.selection import (
    criterion,
    finetune_losing,
    finetune_stalled,
    switch_margin,
)
from finetune_gui.core.training.tracking import BestWeights, LossWatch, PhaseStop


class _EpochCounter(keras.callbacks.Callback):
    """Knows the run's epoch number (1-based, across phases) during an epoch of this phase."""

    def __init__(self, first_epoch: int) -> None:
        super().__init__()
        self.first_epoch = first_epoch
        self.epoch = first_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = self.first_epoch + epoch


class DivergenceStop(_EpochCounter):
    """Stops at the first batch whose loss is NaN or exploded (see `LossWatch`)."""

    def __init__(self, watch: LossWatch, stop: PhaseStop, first_epoch: int) -> None:
        super().__init__(first_epoch)
        self.watch, self.stop = watch, stop

    def on_train_batch_end(self, batch, logs=None):
        what = self.watch.divergence(float((logs or {}).get("loss", 0.0)))
        if what is not None:
            self.stop.diverged = f"The training loss {what} in epoch {self.epoch}"
            self.model.stop_training = True


class CancelStop(keras.callbacks.Callback):
    """Stops training, validation or prediction at the next batch once `cancel` is set."""

    def __init__(self, cancel: CancelToken | None, stop: PhaseStop) -> None:
        super().__init__()
        self.cancel, self.stop = cancel, stop

    def _asked(self) -> bool:
        return self.cancel is not None and self.cancel.cancelled

    def on_train_batch_end(self, batch, logs=None):
        if self._asked():
            self.stop.cancelled = True
            self.model.stop_training = True

    def on_test_batch_end(self, batch, logs=None):
        if self._asked():
            self.model.stop_evaluating = True

    def on_predict_batch_end(self, batch, logs=None):
        if self._asked():
            self.model.stop_predicting = True


class BatchProgress(_EpochCounter):
    """A `BatchEnded` event per batch, with the time left for this phase."""

    def __init__(
        self, progress: ProgressCallback, phase: str, first_epoch: int, steps: int, epochs: int
    ) -> None:
        super().__init__(first_epoch)
        self.progress, self.phase, self.steps, self.epochs = progress, phase, steps, epochs
        self.started = time.monotonic()
        self.batches_done = 0

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        self.batches_done += 1
        elapsed = time.monotonic() - self.started
        remaining = self.epochs * self.steps - self.batches_done
        eta = elapsed / self.batches_done * remaining
        self.progress(BatchEnded(self.phase, self.epoch, batch + 1, self.steps, loss, eta))


class EpochHistory(keras.callbacks.Callback):
    """Appends one row per finished epoch to `history` (the run's history.csv)."""

    def __init__(self, history: list[dict], phase: str, first_epoch: int, stop: PhaseStop) -> None:
        super().__init__()
        self.history, self.phase, self.first_epoch, self.stop = history, phase, first_epoch, stop

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.mid_epoch:
            return
        logs = dict(logs or {})
        self.history.append(
            {
                "epoch": self.first_epoch + epoch,
                "phase": self.phase,
                "loss": float(logs.get("loss", math.nan)),
                "accuracy": float(logs.get("accuracy", math.nan)),
                "val_loss": float(logs["val_loss"]) if "val_loss" in logs else None,
                "val_accuracy": float(logs["val_accuracy"]) if "val_accuracy" in logs else None,
                "lr": float(self.model.optimizer.learning_rate.numpy()),
            }
        )


class EarlyStopping(keras.callbacks.Callback):
    """Keeps the best weights (validation accuracy with the loss breaking ties, else the training
    loss: `selection.criterion`) and stops after `patience` epochs without improvement (0: never).
    """

    def __init__(
        self,
        best: BestWeights,
        layers: list,
        history: list[dict],
        stop: PhaseStop,
        *,
        patience: int,
        progress: ProgressCallback,
        on_improvement: Callable[[], None],
        val_images: int = 0,
        stop_when_losing: bool = False,
        stop_when_stalled: bool = False,
    ) -> None:
        super().__init__()
        self.best, self.layers, self.history, self.stop = best, layers, history, stop
        self.val_images = val_images
        # Phase 2 stops at the first epoch clearly worse than the kept head (`finetune_losing`),
        # and after a first epoch no better than it by either measure (`finetune_stalled`).
        self.stop_when_losing, self.stop_when_stalled = stop_when_losing, stop_when_stalled
        self.patience, self.progress, self.on_improvement = patience, progress, on_improvement
        self.waited = 0
        self.said = ""

    def on_train_end(self, logs=None):
        if self.said:  # after the last epoch's line, which it explains
            self.progress(LogMessage(self.said))

    def _margin(self, row: dict) -> float:
        """Fine-tuning replaces a kept head only when it wins by more than noise."""
        kept = self.best.row(self.history)
        if row["phase"] != "finetune" or kept is None or kept["phase"] != "head":
            return 0.0
        return switch_margin(kept["val_accuracy"], self.val_images)

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.mid_epoch:
            return
        row = self.history[-1]
        watched = criterion(row["val_accuracy"], row["val_loss"], row["loss"])
        if self.best.update(watched, row["epoch"], self.layers, self._margin(row)):
            self.waited = 0
            self.on_improvement()
            return
        self.waited += 1
        last_epoch = epoch + 1 >= (self.params or {}).get("epochs", epoch + 2)
        kept = self.best.row(self.history)
        why = ((self.stop_when_losing and finetune_losing(row, kept, self.val_images))
               or (self.stop_when_stalled
                   and finetune_stalled(self.history, kept, self.val_images)))
        if why and not last_epoch:
            self.said = why
            self.model.stop_training = True
            return
        if self.patience and self.waited >= self.patience and not last_epoch:  # else it ends anyway
            self.said = (
                f"Early stopping: validation accuracy (loss breaking ties) did not "
                f"improve for {self.waited} epochs (best at epoch {self.best.epoch})."
            )
            self.model.stop_training = True


# Phase 2's first epoch is looked at part of the way through when it is long: on 140,000
# images an epoch took 1,262 s of a 4,298 s run, and was thrown away at its end (issue 26).
FIRST_LOOK_MIN_STEPS = 160  # shorter epochs (5,120 images at batch 32) are judged at their end
FIRST_LOOK_SHARE = 8  # the look comes after an eighth of the epoch's steps


def first_look_step(steps: int) -> int | None:
    """After which batch of phase 2's first epoch its validation score is looked at, or None."""
    return steps // FIRST_LOOK_SHARE if steps >= FIRST_LOOK_MIN_STEPS else None


class FirstLook(keras.callbacks.Callback):
    """Phase 2 stopped part of the way through its first epoch when it is already clearly
    worse on validation than the kept head (`finetune_losing`): it could then not be kept, and
    the rest of a long epoch is the time a user waits for nothing. The epoch is not recorded
    (`PhaseStop.losing` makes it a mid-epoch stop) and the phase's weights are undone with the
    other losing ones. The training metrics are put back after the look, so the epoch's row
    (when it goes on) still averages all its batches."""

    def __init__(self, steps: int, val_data, kept_row: Callable[[], dict | None],
                 val_images: int, stop: PhaseStop, first_epoch: int,
                 cancel: CancelToken | None = None) -> None:
        super().__init__()
        self.cancel = cancel
        self.steps, self.look_step = steps, first_look_step(steps)
        self.val_data, self.kept_row = val_data, kept_row
        self.val_images, self.stop, self.first_epoch = val_images, stop, first_epoch
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.look_step is None or self.epoch != 0 or batch + 1 != self.look_step
                or self.stop.mid_epoch):
            return
        kept = self.kept_row()
        if kept is None:
            return
        counted = [[v.numpy() for v in metric.variables] for metric in self.model.metrics]
        scores = self.model.evaluate(self.val_data, verbose=0, return_dict=True,
                                     callbacks=[CancelStop(self.cancel, self.stop)])
        for metric, values in zip(self.model.metrics, counted, strict=True):
            for variable, value in zip(metric.variables, values, strict=True):
                variable.assign(value)
        if self.cancel is not None and self.cancel.cancelled:  # during the look
            self.stop.cancelled = True
            self.model.stop_training = True
            return
        row = {"phase": "finetune", "epoch": self.first_epoch,
               "val_accuracy": float(scores["accuracy"]), "val_loss": float(scores["loss"])}
        done = (batch + 1) / self.steps
        losing = finetune_losing(row, kept, self.val_images,
                                 when=f"{done:.0%} of the way into epoch {self.first_epoch}")
        if losing:
            self.stop.losing = losing
            self.model.stop_training = True

    def on_test_batch_end(self, batch, logs=None):
        if self.stop.losing:  # the epoch's own validation pass, after the stop: not needed
            self.model.stop_evaluating = True


class EpochProgress(keras.callbacks.Callback):
    """An `EpochEnded` event with the numbers of the row just added to `history`."""

    def __init__(
        self, progress: ProgressCallback, phase: str, history: list[dict], stop: PhaseStop
    ) -> None:
        super().__init__()
        self.progress, self.phase, self.history, self.stop = progress, phase, history, stop

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.mid_epoch:
            return
        row = self.history[-1]
        metrics = {k: v for k, v in row.items() if isinstance(v, float)}
        self.progress(EpochEnded(self.phase, row["epoch"], metrics))


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes the checkpoint after each finished epoch (`save`: the ledger's), so a killed run
    resumes there."""

    def __init__(self, save: Callable[[], None], stop: PhaseStop) -> None:
        super().__init__()
        self.save, self.stop = save, stop

    def on_epoch_end(self, epoch, logs=None):
        if not self.stop.mid_epoch:
            self.save()


class RecalibrateBatchNorm(keras.callbacks.Callback):
    """From scratch: fresh BatchNorm statistics before each validation, so it can be trusted."""

    def __init__(self, classifier_model, images, batch_size: int) -> None:
        super().__init__()
        self.classifier_model, self.images, self.batch_size = classifier_model, images, batch_size

    def on_test_begin(self, logs=None):
        recalibrate_batchnorm(self.classifier_model, self.images, self.batch_size)


# Validation on at most this many batches is run without tracing: on the 150 faces (22
# validation images, one batch) tracing the test step took 0.66 s of phase 2's 2.0 s, where the
# model called on the batch takes a few hundredths of a second each epoch.
UNTRACED_VALIDATION_MAX_BATCHES = 4


def untraced_validation(val_images: int, batch_size: int) -> bool:
    """True when a phase's validation is cheaper called directly than traced by `fit`."""
    return 0 < val_images <= UNTRACED_VALIDATION_MAX_BATCHES * batch_size


class UntracedValidation(keras.callbacks.Callback):
    """The epoch's validation loss and accuracy, as `fit` reports them (`val_loss`: the
    compiled loss, a mean over images, plus the weights' penalties as Keras' test step adds
    them; `val_accuracy`), from the model called on the validation batches instead of a traced
    test step. First in the list: the callbacks after it read these numbers from the same
    logs."""

    def __init__(self, inputs, labels, batch_size: int, stop: PhaseStop) -> None:
        super().__init__()
        self.inputs, self.labels, self.batch_size, self.stop = inputs, labels, batch_size, stop

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.mid_epoch or logs is None:
            return
        labels = np.asarray(self.labels)
        losses, right = [], 0
        for start in range(0, len(labels), self.batch_size):
            rows = slice(start, start + self.batch_size)
            batch = ([part[rows] for part in self.inputs] if isinstance(self.inputs, list | tuple)
                     else self.inputs[rows])
            probabilities = keras.ops.convert_to_numpy(
                keras.ops.cast(self.model(batch, training=False), "float32"))
            losses.append(keras.ops.convert_to_numpy(
                keras.losses.sparse_categorical_crossentropy(labels[rows], probabilities)))
            right += int((probabilities.argmax(axis=1) == labels[rows]).sum())
        penalty = sum(float(keras.ops.convert_to_numpy(loss)) for loss in self.model.losses)
        logs["val_loss"] = float(np.concatenate(losses).mean()) + penalty
        logs["val_accuracy"] = right / len(labels)
