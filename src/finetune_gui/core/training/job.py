"""A training run from a folder (or a split) to a run folder: the recipe the field teaches.

Phase 1 fits a new head on the frozen base (in speed mode solved to its optimum, `head_solver`).
Phase 2 starts from the best head and unfreezes the top blocks at a lower learning rate; a kept
solved head is solved again on training + validation images. BatchNorm stays in inference
mode, the best weights by validation accuracy (loss breaking ties, `selection`) are kept, so a
fine-tuning that does not beat the head leaves the head-only model; class weights balance
unequal classes, and the test split is touched only once, at the end.
This file is the order of things; the pieces live beside it: `plan` (the phases), `callbacks`
(per batch and epoch), `checkpoint` (resume), `fast_path` (speed mode), `recipe`, `inputs`,
`held_out` (the test split), `image_features`, `run_writer`, `cluster` (several machines).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from finetune_gui.core.data.pipeline import batches
from finetune_gui.core.data.scan import DatasetScan
from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.errors import Cancelled, TrainingDiverged, UserError
from finetune_gui.core.events import (
    CancelToken,
    LogMessage,
    PhaseStarted,
    ProgressCallback,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.model.build import (
    build_classifier,
    count_trainable,
    from_scratch,
    recalibrate_batchnorm,
    set_trainable_blocks,
)
from finetune_gui.core.run import folder as rf
from finetune_gui.core.run.dataset_features import probe_model
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.checkpoint import ResumePoint, RunCheckpoint, read_resume_point
from finetune_gui.core.training.cluster import run_on_cluster
from finetune_gui.core.training.devices import (
    DevicePlan,
    apply_plan,
    batch_after_out_of_memory,
    detect_gpus,
    plan_devices,
    reset_precision,
)
from finetune_gui.core.training.head_solver import refit_kept_head, solve_head_phase, solves_head
from finetune_gui.core.training.held_out import evaluate_on_test_split
from finetune_gui.core.training.image_features import keep_image_features
from finetune_gui.core.training.inputs import decode_part, resolve_split
from finetune_gui.core.training.kfold import kfold_for_run
from finetune_gui.core.training.plan import PHASE_TITLES, phase_patience, phases_to_train
from finetune_gui.core.training.recipe import (
    augmented_pixel_batches,
    compile_for_training,
    sample_weights,
    training_augmentation,
)
from finetune_gui.core.training.result import RunResult, finished_message
from finetune_gui.core.training.run_writer import RunWriter
from finetune_gui.core.training.selection import finetune_cannot_win, kept_model
from finetune_gui.core.training.tracking import BestWeights, LossWatch, PhaseStop, trained_layers


class TrainingJob:
    """One run: `TrainingJob(data, settings, out_dir, progress=..., cancel=...).run()`.

    `data` is an image folder, a `DatasetScan` or a `DatasetSplit`. `progress` is called from the
    thread that runs the job with the events in `core.events`. `TrainingJob.resume(run_dir)`
    continues an interrupted run instead.
    """

    def __init__(
        self,
        data: Path | str | DatasetScan | DatasetSplit,
        settings: TrainingSettings,
        out_dir: Path | str,
        *,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
        exclude: frozenset[Path] | set[Path] = frozenset(),
        views: int | None = None,
        gpu_lister: Callable[[], list] = detect_gpus,
        resume_from: ResumePoint | None = None,
        kfold: bool = False,
    ) -> None:
        self.data = data
        self.settings = settings
        self.run_dir = Path(out_dir).expanduser()
        self.progress = progress
        self.cancel = cancel
        self.exclude = frozenset(Path(p) for p in exclude)
        self.views = settings.views if views is None else max(1, int(views))
        self.gpu_lister = gpu_lister
        self.resumed = resume_from
        self.kfold = kfold  # also a k-fold estimate on the cached features (small folders)
        point = resume_from
        # What run.json says about the training (kfold, head L2 tried), kept in the checkpoint.
        self.facts: dict = dict(point.facts) if point else {}
        self.classifier = self.refit_head = self.stored = None
        self.history: list[dict] = list(point.history) if point else []
        self.batch_size = point.batch_size if point else settings.batch_size
        self.loss_watch = LossWatch(point.first_loss if point else None)
        self.best = BestWeights(point.best_value, point.best_epoch) if point else BestWeights()

    @classmethod
    def resume(cls, run_dir: Path | str, *, progress: ProgressCallback = ignore_progress,
               cancel: CancelToken | None = None) -> TrainingJob:
        """A job that continues an interrupted run from its last completed epoch.

        Same settings and the same split as the run folder records; the image folder must still
        be where the split says. A run that cannot be resumed raises `RunFolderError`.
        """
        run_dir = Path(run_dir).expanduser()
        point = read_resume_point(run_dir)
        return cls(point.split, point.settings, run_dir, progress=progress, cancel=cancel,
                   resume_from=point)  # fmt: skip

    @property
    def checkpoint(self) -> RunCheckpoint:
        # Built on demand: a worker that is not the chief swaps `run_dir` for a scratch folder.
        return RunCheckpoint(self.run_dir, self.facts)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Train, evaluate on the test split, write the run folder; return what happened."""
        plan = plan_devices(self.gpu_lister())
        if plan.strategy == "multiworker":
            run_into = partial(self._run_into, plan)
            return run_on_cluster(plan, run_into, resumed=self.resumed is not None)
        return self._run(plan)

    def _run_into(self, plan: DevicePlan, folder: Path | None) -> RunResult:
        """The run, written into `folder` (a worker's scratch folder) if given; names the run."""
        chosen, self.run_dir = self.run_dir, folder or self.run_dir
        try:
            result = self._run(plan)
        finally:
            self.run_dir = chosen
        result.run_dir = chosen
        return result

    def _run(self, plan: DevicePlan) -> RunResult:
        import keras

        writer = RunWriter(self.run_dir)
        if self.resumed is None:
            writer.prepare()
            try:
                split = resolve_split(
                    self.data, self.settings, self.exclude, self.progress, self.cancel
                )
            except Cancelled:
                return self._finish_cancelled(writer, None)
            writer.write_start(self.settings, split)
        else:
            split = self.data
            writer.write_status("running")
        keras.backend.clear_session()  # the GUI trains many times in one process
        keras.utils.set_random_seed(self.settings.seed)
        self.progress(LogMessage(plan.summary))
        strategy = apply_plan(plan)
        try:
            return self._train(writer, split, strategy)
        except Cancelled:
            return self._finish_cancelled(writer, split)
        except Exception as exc:
            writer.record_failure(exc, trained=bool(self.history) or self.resumed is not None)
            raise
        finally:
            reset_precision()

    def _train(self, writer: RunWriter, split: DatasetSplit, strategy) -> RunResult:
        size = self.settings.resolved_image_size
        train_x, train_y = decode_part(split.train, size, "decode", self.progress, self.cancel)
        val_x, val_y = decode_part(split.val, size, "decode", self.progress, self.cancel)
        weights = sample_weights(train_y, split.classes, self.settings.class_weights, self.progress)
        with strategy.scope():
            self.classifier = build_classifier(self.settings, len(split.classes))
        if self.resumed and self.resumed.epochs_done:
            self.checkpoint.load_last(self.classifier.model)
            self.progress(LogMessage(f"Resuming after epoch {self.resumed.epochs_done}."))
        self.progress(LogMessage(
            f"{self.classifier.spec.keras_name} at {size} px, {len(split.classes)} classes, "
            f"{len(train_y)} training / {len(val_y)} validation / {len(split.test)} test images."
        ))  # fmt: skip
        if self.settings.cache_mode == "fast" and not from_scratch(self.settings):
            self._train_fast(split, train_x, train_y, weights, val_x, val_y, strategy)
        else:
            self._train_exact(train_x, train_y, weights, val_x, val_y, strategy)
        check_cancel(self.cancel)
        self._restore_best()
        kept, note = kept_model(self.history, self.best.epoch)
        if note:
            self.progress(LogMessage(note))
        if self.refit_head is not None and kept != "fine-tuned" and (refit := self.refit_head()):
            self.facts["head_refit"] = refit
        rf.save_model(self.classifier.model, self.run_dir / rf.MODEL_FILE)
        seeing = probe_model(self.classifier.model)  # one pass gives score and features
        # No test split is legal: the run finishes, and `evaluate RUN FOLDER` scores it later.
        report, test_rows = evaluate_on_test_split(
            self.classifier.model, split, size, self.batch_size, self.progress, self.cancel, seeing
        ) if split.test else (None, None)  # fmt: skip
        if report is not None:
            report.kfold = self.facts.get("kfold")
        writer.write_results(self.history, report)
        run = rf.RunFolder.open(self.run_dir)
        run.facts.update(self.facts)  # the rule needs to know what the head learned (head_refit)
        keep_image_features(run, self.classifier, stored=self.stored, seeing=seeing,
                            pixels={"train": train_x, "val": val_x}, test_rows=test_rows,
                            base_changed=kept == "fine-tuned", progress=self.progress,
                            cancel=self.cancel)  # fmt: skip
        message = finished_message(report, self.run_dir, self.facts.get("kfold"))
        facts = {**self.facts, **({"kept_model": kept} if kept else {})}
        writer.write_status("completed", message=message, best_epoch=self.best.epoch, **facts)
        self.progress(LogMessage(message))
        return RunResult(self.run_dir, "completed", split.classes, self.history, report, message)

    # -- phases ----------------------------------------------------------------------------
    def _phases(self) -> list[tuple]:
        """(phase, epochs, learning rate, blocks) still to train."""
        return phases_to_train(self.settings, self.history if self.resumed else [], self.progress)

    def _train_exact(self, train_x, train_y, weights, val_x, val_y, strategy) -> None:
        from finetune_gui.core.training.callbacks import RecalibrateBatchNorm

        augment = training_augmentation(self.settings)
        model = self.classifier.model
        for phase, epochs, lr, blocks in self._phases():
            if not epochs:
                continue
            with strategy.scope():
                set_trainable_blocks(self.classifier, blocks)
            make_train = partial(
                augmented_pixel_batches, train_x, train_y, weights, augment, seed=self.settings.seed
            )
            extra = []
            if phase == "scratch":
                extra = [RecalibrateBatchNorm(model, train_x, self.batch_size)]
            self._fit_phase(
                phase, model, make_train, len(train_y), (val_x, val_y), epochs, lr, strategy, extra
            )
        if from_scratch(self.settings):
            self._restore_best()
            recalibrate_batchnorm(model, train_x, self.batch_size)

    def _train_fast(self, split, train_x, train_y, weights, val_x, val_y, strategy) -> None:
        from finetune_gui.core.training import fast_path

        phases = self._phases()
        cut = fast_path.finetune_cut(self.classifier, phases)
        augment = training_augmentation(self.settings)
        with strategy.scope():
            stored = fast_path.store_activations(
                self.classifier, self.settings, split, (train_x, val_x), cut=cut,
                augment=augment, views=self.views, batch_size=self.batch_size,
                progress=self.progress, cancel=self.cancel,
            )  # fmt: skip
        self.stored = stored
        labels = np.tile(train_y, stored.views)
        tiled_weights = np.tile(weights, stored.views)
        self.refit_head = partial(refit_kept_head, self.classifier, self.facts, stored, labels,
                                  val_y, split.classes, self.settings.class_weights, self.progress)
        if self.kfold:
            self.facts["kfold"] = kfold_for_run(
                stored.train.pooled[: len(train_y)], train_y, stored.val.pooled, val_y,
                len(split.classes), seed=self.settings.seed, progress=self.progress,
            )  # fmt: skip
        for phase, epochs, lr, blocks in phases:
            if not epochs:
                continue
            if phase == "finetune" and (why := finetune_cannot_win(self.history, self.settings)):
                self.progress(LogMessage(why))
                self.facts["kept_model"] = "head-only"
                continue
            if phase == "head" and solves_head(self.settings):
                self._solve_head(stored, labels, tiled_weights, val_y)
                continue
            with strategy.scope():
                set_trainable_blocks(self.classifier, blocks)
                model, inputs, val_inputs = fast_path.phase_model(
                    self.classifier, phase, stored, head_solved=solves_head(self.settings))
            make_train = partial(
                batches, [inputs, labels, tiled_weights], shuffle=True, seed=self.settings.seed,
                repeat=True,
            )  # fmt: skip
            self._fit_phase(
                phase, model, make_train, len(train_y), (val_inputs, val_y), epochs, lr, strategy
            )

    def _fit_phase(
        self, phase, model, make_train, n_train, val, epochs, lr, strategy, extra_callbacks=()
    ) -> None:
        """Compile (after every `trainable` change) and fit; on GPU out-of-memory, halve the batch."""
        import tensorflow as tf

        from finetune_gui.core.training import callbacks as cb

        if phase == "finetune" and not any(r["phase"] == phase for r in self.history):
            self._restore_best()  # phase 2 starts from the best head, not from its last epoch
        layers = trained_layers(model)
        self.best.remember_start(layers)
        first_epoch = len(self.history) + 1
        while True:
            steps = max(1, math.ceil(n_train / self.batch_size))
            with strategy.scope():
                compile_for_training(model, self.settings.optimizer, lr)
            self.progress(PhaseStarted(phase, epochs, first_epoch, count_trainable(model)))
            self.progress(LogMessage(f"{PHASE_TITLES[phase]} ({count_trainable(model):,} "
                                     f"trainable parameters, learning rate {lr:g})."))
            stop = PhaseStop()
            callbacks = cb.phase_callbacks(
                phase=phase, first_epoch=first_epoch, steps=steps, epochs=epochs, layers=layers,
                history=self.history, best=self.best, watch=self.loss_watch,
                checkpoint=self.checkpoint, model=self.classifier.model,
                batch_size=self.batch_size, patience=phase_patience(self.settings, phase),
                progress=self.progress, cancel=self.cancel, stop=stop, val_images=len(val[1]),
            )  # fmt: skip
            val_data = batches(list(val), self.batch_size) if len(val[1]) else None
            try:
                model.fit(
                    make_train(self.batch_size),
                    epochs=epochs,
                    steps_per_epoch=steps,
                    validation_data=val_data,
                    callbacks=[*extra_callbacks, *callbacks],
                    verbose=0,
                    shuffle=False,
                )
            except tf.errors.ResourceExhaustedError as exc:
                try:
                    self.batch_size = batch_after_out_of_memory(self.batch_size, self.progress)
                except UserError as error:
                    raise error from exc
                del self.history[first_epoch - 1 :]
                continue
            break
        if stop.diverged:
            self._restore_best()
            raise TrainingDiverged(
                f"{stop.diverged}. Try a lower learning rate (for example {lr / 10:g})."
            )
        if stop.cancelled:
            raise Cancelled()

    def _solve_head(self, stored, labels, weights, val_y) -> None:
        """Phase 1 solved in one step, recorded like an epoch (history, best, checkpoint)."""
        from finetune_gui.core.training.callbacks import record_epoch

        search, row = solve_head_phase(
            self.classifier, stored.train.pooled, labels, weights, stored.val.pooled, val_y,
            epoch=len(self.history) + 1, lr=self.settings.lr_head, progress=self.progress,
            cancel=self.cancel,
        )  # fmt: skip
        self.facts["head_l2_tried"] = search.tried
        record_epoch(
            row, [self.classifier.head_layers[-1]], history=self.history, best=self.best,
            watch=self.loss_watch, checkpoint=self.checkpoint, model=self.classifier.model,
            batch_size=self.batch_size, progress=self.progress,
        )  # fmt: skip

    # -- pieces ----------------------------------------------------------------------------
    def _restore_best(self) -> None:
        if self.best.saved_this_session:
            self.best.restore()
        elif self.best.epoch is not None and self.checkpoint.has_best:
            self.checkpoint.load_best(self.classifier.model)

    def _finish_cancelled(self, writer: RunWriter, split: DatasetSplit | None) -> RunResult:
        if self.classifier is not None and self.best.epoch is not None:
            self._restore_best()
            rf.save_model(self.classifier.model, self.run_dir / rf.MODEL_FILE)
            message = f"Cancelled; the best weights (epoch {self.best.epoch}) were kept."
        else:
            message = "Cancelled before the first epoch finished; no model was saved."
        writer.write_results(self.history, None)
        writer.write_status("cancelled", message=message, best_epoch=self.best.epoch)
        self.progress(LogMessage(message, "warning"))
        classes = split.classes if split is not None else []
        return RunResult(self.run_dir, "cancelled", classes, self.history, None, message)


def train_folder(
    data_dir: Path | str,
    settings: TrainingSettings,
    out_dir: Path | str,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> RunResult:
    """Scan `data_dir`, split it, train and evaluate; the one-call Python API."""
    return TrainingJob(data_dir, settings, out_dir, progress=progress, cancel=cancel).run()
