"""The per-epoch bookkeeping of one run, in one object: the history rows, the best weights, the
loss watch, the batch size (halved after out-of-memory) and the checkpoint they are saved to.

An epoch is recorded either by `fit`, through the callbacks the ledger hands out for a phase, or
directly (`record`: the solved head, computed without `fit`); both record the same things in
the same order. Plain Python: the Keras callbacks are imported when a phase asks for them.
"""

from __future__ import annotations

from finetune_gui.core.events import CancelToken, EpochEnded, ProgressCallback
from finetune_gui.core.training.checkpoint import ResumePoint, RunCheckpoint
from finetune_gui.core.training.selection import criterion
from finetune_gui.core.training.tracking import BestWeights, LossWatch, PhaseStop


class EpochLedger:
    """What the run knows after each epoch, and the checkpoint it is saved to."""

    def __init__(self, batch_size: int, checkpoint: RunCheckpoint,
                 resumed: ResumePoint | None = None) -> None:
        self.history: list[dict] = list(resumed.history) if resumed else []
        self.batch_size = resumed.batch_size if resumed else batch_size
        self.watch = LossWatch(resumed.first_loss if resumed else None)
        self.best = (BestWeights(resumed.best_value, resumed.best_epoch) if resumed
                     else BestWeights())
        self.checkpoint = checkpoint

    def record(self, row: dict, layers: list, model, progress: ProgressCallback) -> None:
        """An epoch computed without `fit` (the solved head), recorded as the callbacks record
        one: its history row, the best weights of `layers`, `EpochEnded`, the checkpoint."""
        self.history.append(row)
        self.best.remember_start(layers)
        watched = criterion(row["val_accuracy"], row["val_loss"], row["loss"])
        if self.best.update(watched, row["epoch"], layers):
            self.checkpoint.save_best(model)
        metrics = {k: v for k, v in row.items() if isinstance(v, float)}
        progress(EpochEnded(row["phase"], row["epoch"], metrics))
        self.save_epoch(model)

    def has_epochs(self, phase: str) -> bool:
        """Whether `phase` has recorded an epoch (a resumed run may have)."""
        return any(row["phase"] == phase for row in self.history)

    def save_epoch(self, model) -> None:
        """The checkpoint after a finished epoch: a killed run resumes here."""
        self.checkpoint.save_epoch(
            model, self.history, best_value=self.best.value, best_epoch=self.best.epoch,
            batch_size=self.batch_size, first_loss=self.watch.first_loss,
        )

    def restore_best(self, model) -> None:
        """The best epoch's weights back into `model`: from memory when this process trained
        them, else from the checkpoint (a resumed run)."""
        if self.best.saved_this_session:
            self.best.restore()
        elif self.best.epoch is not None and self.checkpoint.has_best:
            self.checkpoint.load_best(model)

    def callbacks(
        self,
        *,
        phase: str,
        first_epoch: int,
        steps: int,
        epochs: int,
        layers: list,
        model,
        patience: int,
        progress: ProgressCallback,
        cancel: CancelToken | None,
        stop: PhaseStop,
        val_images: int = 0,
        stop_when_losing: bool = False,
        stop_when_stalled: bool = False,
        val_data=None,
    ) -> list:
        """The Keras callbacks of one phase, in the order their events must come
        (callbacks.py). `model` is the whole classifier, whose weights the checkpoint keeps;
        `layers` are the ones this phase trains. `val_data` (the validation batches) lets a
        long first epoch of phase 2 be looked at part of the way (`FirstLook`)."""
        from finetune_gui.core.training import callbacks as cb

        looks = []
        if (stop_when_losing and phase == "finetune" and val_data is not None
                and not self.has_epochs(phase)):
            looks.append(cb.FirstLook(steps, val_data, lambda: self.best.row(self.history),
                                      val_images, stop, first_epoch, cancel))
        return [
            cb.DivergenceStop(self.watch, stop, first_epoch),
            cb.CancelStop(cancel, stop),
            cb.BatchProgress(progress, phase, first_epoch, steps, epochs),
            *looks,
            cb.EpochHistory(self.history, phase, first_epoch, stop),
            cb.EarlyStopping(
                self.best, layers, self.history, stop, patience=patience, progress=progress,
                on_improvement=lambda: self.checkpoint.save_best(model), val_images=val_images,
                stop_when_losing=stop_when_losing, stop_when_stalled=stop_when_stalled,
            ),
            cb.EpochProgress(progress, phase, self.history, stop),
            cb.EpochCheckpoint(lambda: self.save_epoch(model), stop),
        ]
