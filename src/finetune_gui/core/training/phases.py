"""How a run's phases are trained, epoch by epoch, into its ledger: the textbook loop over
decoded pixels (exact mode, or from scratch) or the fast path over activations of the frozen
part stored once (`fast_path`), where phase 1 is a head solved in one step; out-of-memory
retries with half the batch; a phase 2 that cannot win is skipped (`selection`).

`job.py` says in what order a run does things; this file says how it trains.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from finetune_gui.core.data.pipeline import batches
from finetune_gui.core.data.storage import is_on_disk
from finetune_gui.core.errors import Cancelled, TrainingDiverged, UserError
from finetune_gui.core.events import CancelToken, LogMessage, PhaseStarted, ProgressCallback
from finetune_gui.core.model.build import (
    count_trainable,
    from_scratch,
    recalibrate_batchnorm,
    set_trainable_blocks,
)
from finetune_gui.core.run.record import FactsDraft
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.devices import batch_after_out_of_memory
from finetune_gui.core.training.finetune_prep import FinetunePreparation, can_prepare
from finetune_gui.core.training.head_refit import refit_kept_head
from finetune_gui.core.training.head_solver import solve_head_phase, solves_head
from finetune_gui.core.training.kfold import kfold_for_run
from finetune_gui.core.training.ledger import EpochLedger
from finetune_gui.core.training.plan import (
    PHASE_TITLES,
    PhasePlan,
    phase_patience,
    phases_to_train,
)
from finetune_gui.core.training.recipe import (
    augmented_pixel_batches,
    compile_for_training,
    training_augmentation,
)
from finetune_gui.core.training.selection import asks_if_stalled, finetune_skipped
from finetune_gui.core.training.tracking import PhaseStop, trained_layers


class PhaseTrainer:
    """Trains the phases the settings plan (less those a resumed run finished) on `classifier`,
    recording each epoch in `ledger`; what it learns about the run goes into `facts` (the head
    search's rows, a skipped phase 2, the k-fold estimate).

    After the fast path, `stored` holds the stored activations and `refit_head()` solves the
    kept head again on training + validation images ({} when no head was solved).
    """

    def __init__(
        self,
        settings: TrainingSettings,
        classifier,
        ledger: EpochLedger,
        facts: FactsDraft,
        strategy,
        *,
        resumed: bool,
        views: int,
        kfold: bool,
        progress: ProgressCallback,
        cancel: CancelToken | None,
    ) -> None:
        self.settings, self.classifier, self.ledger = settings, classifier, ledger
        self.facts, self.strategy, self.resumed = facts, strategy, resumed
        self.views, self.kfold = views, kfold
        self.progress, self.cancel = progress, cancel
        self.stored = None
        self.refit_head = None

    def phases(self) -> list[PhasePlan]:
        """The phases still to train."""
        done = self.ledger.history if self.resumed else []
        return phases_to_train(self.settings, done, self.progress)

    def restore_best(self) -> None:
        self.ledger.restore_best(self.classifier.model)

    # -- the textbook loop -----------------------------------------------------------------
    def train_exact(self, train_x, train_y, weights, val_x, val_y) -> None:
        from finetune_gui.core.training.callbacks import RecalibrateBatchNorm

        augment = training_augmentation(self.settings)
        model = self.classifier.model
        for phase in self.phases():
            if not phase.epochs or self._finetune_cannot_win(phase, len(val_y)):
                continue
            with self.strategy.scope():
                set_trainable_blocks(self.classifier, phase.unfrozen_blocks)
            make_train = partial(
                augmented_pixel_batches, train_x, train_y, weights, augment, seed=self.settings.seed
            )
            extra = []
            if phase.phase == "scratch":
                extra = [RecalibrateBatchNorm(model, train_x, self.ledger.batch_size)]
            self._fit_phase(phase, model, make_train, len(train_y), (val_x, val_y), extra)
        if from_scratch(self.settings):
            self.restore_best()
            recalibrate_batchnorm(model, train_x, self.ledger.batch_size)

    # -- the fast path ---------------------------------------------------------------------
    def train_fast(self, split, train_x, train_y, weights, val_x, val_y) -> None:
        from finetune_gui.core.training import fast_path

        phases = self.phases()
        with self.strategy.scope():
            stored = fast_path.store_activations(
                self.classifier, self.settings, split, (train_x, val_x),
                cut=fast_path.finetune_cut(self.classifier, phases),
                augment=training_augmentation(self.settings), views=self.views,
                batch_size=self.ledger.batch_size, progress=self.progress, cancel=self.cancel,
            )
        self.stored = stored
        labels = np.tile(train_y, stored.views)
        tiled_weights = np.tile(weights, stored.views)
        self.refit_head = partial(refit_kept_head, self.classifier, self.facts, stored, labels,
                                  val_y, split.classes, self.settings.class_weights, self.progress)
        prepared = self._prepare_finetune(phases, stored, labels, tiled_weights)
        try:
            if self.kfold:
                self.facts.learn(kfold=kfold_for_run(
                    stored.train.pooled[: len(train_y)], train_y, stored.val.pooled, val_y,
                    len(split.classes), seed=self.settings.seed, progress=self.progress,
                ))
            for phase in phases:
                if phase.epochs and not self._finetune_cannot_win(phase, len(val_y)):
                    self._train_stored_phase(phase, stored, labels, tiled_weights, len(train_y),
                                             val_y, prepared)
        finally:
            if prepared is not None:
                prepared.discard()  # unless phase 2 took it: skipped, cancelled or failed

    def _train_stored_phase(self, phase: PhasePlan, stored, labels, weights, n_train: int,
                            val_y, prepared: FinetunePreparation | None) -> None:
        """One phase on the stored activations: phase 1 solved, or fitted with `fit`."""
        from finetune_gui.core.training import fast_path

        if phase.phase == "head" and solves_head(self.settings):
            self._solve_head(stored, labels, weights, val_y)
            return
        built = prepared.take() if prepared is not None and phase.phase == "finetune" else None
        compiled = built is not None
        if built is None:
            with self.strategy.scope():
                set_trainable_blocks(self.classifier, phase.unfrozen_blocks)
                built = fast_path.phase_model(self.classifier, phase.phase, stored,
                                              head_solved=solves_head(self.settings))
        model, inputs, val_inputs = built
        make_train = partial(self._stored_batches, inputs, labels, weights)
        self._fit_phase(phase, model, make_train, n_train, (val_inputs, val_y),
                        compiled=compiled)

    def _prepare_finetune(self, phases: list[PhasePlan], stored, labels,
                          weights) -> FinetunePreparation | None:
        """Phase 2 made ready on another thread while phase 1 solves the head, when both are
        to run and the run's devices allow it (`finetune_prep`)."""
        from finetune_gui.core.training import fast_path

        finetune = [p for p in phases if p.phase == "finetune" and p.epochs]
        solved = any(p.phase == "head" and p.epochs for p in phases) and solves_head(
            self.settings)
        # Only where phase 2 is sure to run ("always"): otherwise whether it runs is known only
        # after phase 1 (the head's validation mistakes and training loss), and a preparation
        # thrown away slowed phase 1 by 2.3-2.6 s on digits and MNIST (docs/benchmarks.md).
        # Not where the features outgrew the memory budget: phase 2's inputs and its traced
        # step (126 MB on MNIST's 5,000 images at 160 px) would add to phase 1's own peak.
        if (not finetune or not solved or self.settings.finetune_when != "always"
                or is_on_disk(stored.train.pooled)
                or not can_prepare(self.strategy, len(labels), self.classifier.num_classes)):
            return None
        plan = finetune[0]

        def build():
            return fast_path.phase_model(self.classifier, "finetune", stored, head_solved=True)

        def make_train(inputs, batch_size: int):
            return self._stored_batches(inputs, labels, weights, batch_size)

        return FinetunePreparation(
            self.classifier, self.strategy, plan.unfrozen_blocks, self.settings.optimizer,
            plan.learning_rate, self.ledger.batch_size, build, make_train)

    def _stored_batches(self, inputs, labels, weights, batch_size: int):
        """Shuffled, repeated training batches of a phase over stored `inputs`, with the labels
        and weights of their rows (the preparation traces on the first few rows only)."""
        rows = len(inputs[0] if isinstance(inputs, tuple) else inputs)
        return batches([inputs, labels[:rows], weights[:rows]], batch_size, shuffle=True,
                       seed=self.settings.seed, repeat=True)

    def _solve_head(self, stored, labels, weights, val_y) -> None:
        """Phase 1 solved in one step, recorded like an epoch (history, best, checkpoint)."""
        search, row = solve_head_phase(
            self.classifier, stored.train.pooled, labels, weights, stored.val.pooled, val_y,
            epoch=len(self.ledger.history) + 1, lr=self.settings.lr_head,
            progress=self.progress, cancel=self.cancel,
        )
        self.facts.learn(head_l2_tried=search.tried)
        output = self.classifier.head_layers[-1]
        self.ledger.record(row, [output], self.classifier.model, self.progress)

    def _finetune_cannot_win(self, phase: PhasePlan, val_images: int) -> bool:
        """Phase 2 skipped, and said, when the head's validation score leaves it nothing to win,
        its training loss nothing to learn, or its search showed closer fits do not pay."""
        history = self.ledger.history
        why = ("" if phase.phase != "finetune"
               else finetune_skipped(history, self.settings, val_images,
                                     self.facts.record.head_l2_tried))
        if why:
            self._head_kept(why)
        return bool(why)

    def _head_kept(self, why: str) -> None:
        """Phase 2 skipped or stopped before any epoch of it counted: the head is the model."""
        self.progress(LogMessage(why))
        self.facts.learn(kept_model="head-only")

    # -- one phase with `fit` --------------------------------------------------------------
    def _fit_phase(self, plan: PhasePlan, model, make_train, n_train, val, extra=(), *,
                   compiled: bool = False) -> None:
        """Compile (after every `trainable` change; not when `model` comes `compiled`) and fit;
        on GPU out-of-memory, halve the batch and train the phase again."""
        import tensorflow as tf

        from finetune_gui.core.training.callbacks import UntracedValidation, untraced_validation

        phase, epochs, lr, ledger = plan.phase, plan.epochs, plan.learning_rate, self.ledger
        if phase == "finetune" and not ledger.has_epochs(phase):
            self.restore_best()  # phase 2 starts from the best head, not from its last epoch
        layers = trained_layers(model)
        ledger.best.remember_start(layers)
        first_epoch = len(ledger.history) + 1
        while True:
            steps = max(1, math.ceil(n_train / ledger.batch_size))
            if not compiled:
                with self.strategy.scope():
                    compile_for_training(model, self.settings.optimizer, lr)
            compiled = False  # a retry with half the batch compiles afresh
            trainable = count_trainable(model)
            self.progress(PhaseStarted(phase, epochs, first_epoch, trainable))
            self.progress(LogMessage(f"{PHASE_TITLES[phase]} ({trainable:,} trainable "
                                     f"parameters, learning rate {lr:g})."))
            stop = PhaseStop()
            val_data = batches(list(val), ledger.batch_size) if len(val[1]) else None
            # Not with `extra` callbacks: from scratch, `RecalibrateBatchNorm` runs before each
            # validation on `fit`'s test hooks, which untraced validation does not call.
            untraced = not extra and untraced_validation(len(val[1]), ledger.batch_size)
            callbacks = ledger.callbacks(
                phase=phase, first_epoch=first_epoch, steps=steps, epochs=epochs, layers=layers,
                model=self.classifier.model, patience=phase_patience(self.settings, phase),
                progress=self.progress, cancel=self.cancel, stop=stop, val_images=len(val[1]),
                stop_when_losing=self.settings.finetune_when == "can-win", val_data=val_data,
                stop_when_stalled=asks_if_stalled(self.settings),
            )
            if untraced:
                callbacks.insert(0, UntracedValidation(*val, ledger.batch_size, stop))
            try:
                model.fit(
                    make_train(ledger.batch_size),
                    epochs=epochs,
                    steps_per_epoch=steps,
                    validation_data=None if untraced else val_data,
                    callbacks=[*extra, *callbacks],
                    verbose=0,
                    shuffle=False,
                )
            except tf.errors.ResourceExhaustedError as exc:
                try:
                    ledger.batch_size = batch_after_out_of_memory(ledger.batch_size, self.progress)
                except UserError as error:
                    raise error from exc
                del ledger.history[first_epoch - 1 :]
                continue
            break
        if stop.diverged:
            self.restore_best()
            raise TrainingDiverged(
                f"{stop.diverged}. Try a lower learning rate (for example {lr / 10:g})."
            )
        if stop.cancelled:
            raise Cancelled()
        if stop.losing:  # at the first look: no epoch of it was recorded
            self._head_kept(stop.losing)
