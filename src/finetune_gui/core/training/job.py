"""A training run from a folder (or a split) to a run folder: the recipe the field teaches.

Phase 1 fits a new head on the frozen base (in speed mode solved to its optimum, `head_solver`).
Phase 2 starts from the best head and unfreezes the top blocks at a lower learning rate; a kept
solved head is solved again on training + validation images. BatchNorm stays in inference
mode, the best weights by validation accuracy (loss breaking ties, `selection`) are kept, so a
fine-tuning that does not beat the head leaves the head-only model; class weights balance
unequal classes, and the test split is touched only once, at the end.
This file is the order of things; the pieces live beside it: `phases` (how each phase trains,
`plan` says which), `ledger` (each epoch's bookkeeping, `callbacks` during `fit`), `checkpoint`
(resume), `fast_path` (speed mode), `recipe`, `inputs`, `held_out` (the test split),
`kept_features`, `run_writer`, `cluster` (several machines).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from finetune_gui.core.data.scan import DatasetScan
from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.errors import Cancelled
from finetune_gui.core.events import (
    CancelToken,
    LogMessage,
    ProgressCallback,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.model.build import build_classifier, from_scratch
from finetune_gui.core.run import folder as rf
from finetune_gui.core.run.dataset_features import probe_model
from finetune_gui.core.run.record import FactsDraft
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.calibrate_model import calibrate_kept_model
from finetune_gui.core.training.checkpoint import ResumePoint, RunCheckpoint, read_resume_point
from finetune_gui.core.training.cluster import run_on_cluster
from finetune_gui.core.training.devices import (
    DevicePlan,
    apply_plan,
    detect_gpus,
    plan_devices,
    reset_precision,
)
from finetune_gui.core.training.held_out import evaluate_on_test_split, score_stored_test
from finetune_gui.core.training.inputs import decode_part, resolve_split
from finetune_gui.core.training.kept_features import keep_image_features
from finetune_gui.core.training.ledger import EpochLedger
from finetune_gui.core.training.phases import PhaseTrainer
from finetune_gui.core.training.recipe import sample_weights
from finetune_gui.core.training.result import RunResult, finished_message
from finetune_gui.core.training.run_writer import RunWriter
from finetune_gui.core.training.selection import kept_model


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
        # What run.json says about the training (kfold, head L2 tried), kept in the checkpoint.
        self.facts = FactsDraft(resume_from.facts if resume_from else None)
        self.ledger = EpochLedger(
            settings.batch_size, RunCheckpoint(self.run_dir, self.facts), resume_from)
        self.classifier = self.trainer = None

    @property
    def history(self) -> list[dict]:
        return self.ledger.history

    @classmethod
    def resume(cls, run_dir: Path | str, *, progress: ProgressCallback = ignore_progress,
               cancel: CancelToken | None = None) -> TrainingJob:
        """A job that continues an interrupted run from its last completed epoch.

        Same settings and the same split as the run folder records; the image folder must still
        be where the split says. A run that cannot be resumed raises `RunFolderError`.
        """
        run_dir = Path(run_dir).expanduser()
        point = read_resume_point(run_dir)
        return cls(
            point.split, point.settings, run_dir, progress=progress, cancel=cancel,
            resume_from=point,
        )

    @property
    def checkpoint(self) -> RunCheckpoint:
        return self.ledger.checkpoint

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Train, evaluate on the test split, write the run folder; return what happened."""
        plan = plan_devices(self.gpu_lister())
        if plan.strategy == "multiworker":
            run_into = partial(self._run_into, plan)
            return run_on_cluster(plan, run_into, resumed=self.resumed is not None)
        return self._run(plan)

    def _run_into(self, plan: DevicePlan, folder: Path | None) -> RunResult:
        """The run, written into `folder` (a worker's scratch folder) if given, by a job of its
        own; the result names the chosen run folder."""
        job = self if folder is None else TrainingJob(
            self.data, self.settings, folder, progress=self.progress, cancel=self.cancel,
            exclude=self.exclude, views=self.views, gpu_lister=self.gpu_lister,
            resume_from=self.resumed, kfold=self.kfold,
        )
        result = job._run(plan)
        result.run_dir = self.run_dir
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
            except Exception as exc:  # a folder refused by the scan leaves no empty run folder
                writer.record_failure(exc, trained=False)
                raise
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
        kept = split.pixels
        train_x, train_y = decode_part(split.train, size, "decode", self.progress, self.cancel,
                                       kept)
        val_x, val_y = decode_part(split.val, size, "decode", self.progress, self.cancel, kept)
        if kept is not None:
            kept.keep_only(p for p, _ in split.test)  # the rest (an excluded file) is not used
        weights = sample_weights(train_y, split.classes, self.settings.class_weights, self.progress)
        with strategy.scope():
            self.classifier = build_classifier(self.settings, len(split.classes))
        if self.resumed and self.resumed.epochs_done:
            self.checkpoint.load_last(self.classifier.model)
            self.progress(LogMessage(f"Resuming after epoch {self.resumed.epochs_done}."))
        self.progress(LogMessage(
            f"{self.classifier.spec.keras_name} at {size} px, {len(split.classes)} classes, "
            f"{len(train_y):,} training / {len(val_y):,} validation / {len(split.test):,} test "
            f"images."
        ))
        trainer = self.trainer = PhaseTrainer(
            self.settings, self.classifier, self.ledger, self.facts, strategy,
            resumed=self.resumed is not None, views=self.views, kfold=self.kfold,
            progress=self.progress, cancel=self.cancel,
        )
        if self.settings.cache_mode == "fast" and not from_scratch(self.settings):
            trainer.train_fast(split, train_x, train_y, weights, val_x, val_y)
        else:
            trainer.train_exact(train_x, train_y, weights, val_x, val_y)
        check_cancel(self.cancel)
        trainer.restore_best()
        kept, note = kept_model(self.history, self.ledger.best.epoch)
        if note:
            self.progress(LogMessage(note))
        refit = trainer.refit_head() if trainer.refit_head and kept != "fine-tuned" else {}
        if refit:
            self.facts.learn(head_refit=refit)
        calibration, held_out = calibrate_kept_model(
            self.classifier, self.facts.record, trainer.stored, train_y, val_y, val_x,
            base_changed=kept == "fine-tuned", batch_size=self.ledger.batch_size,
            progress=self.progress)
        if calibration:
            self.facts.learn(calibration=calibration)
        model = self.classifier.model
        rf.save_model(model, self.run_dir / rf.MODEL_FILE)
        seeing = probe_model(model)  # one pass gives score and features
        # No test split is legal: the run finishes, and `evaluate RUN FOLDER` scores it later.
        report, test_rows = None, None
        stored_test = trainer.stored.test if trainer.stored is not None else None
        if split.test and stored_test is not None and kept != "fine-tuned":
            report, test_rows = score_stored_test(
                self.classifier, split, stored_test, size, self.progress, self.cancel, seeing)
        elif split.test:
            report, test_rows = evaluate_on_test_split(
                model, split, size, self.ledger.batch_size, self.progress, self.cancel, seeing
            )
        if report is not None:
            report.kfold = self.facts.record.kfold
        writer.write_results(self.history, report)
        run = rf.RunFolder.open(self.run_dir)
        # The "not sure" rule needs to know what the head learned (head_refit).
        run.facts = run.facts.with_changes(**self.facts.learned())
        keep_image_features(
            run, self.classifier, stored=trainer.stored, seeing=seeing,
            pixels={"train": train_x, "val": val_x}, test_rows=test_rows, held_out=held_out,
            base_changed=kept == "fine-tuned", progress=self.progress, cancel=self.cancel,
        )
        message = finished_message(report, self.run_dir, self.facts.record.kfold)
        if kept:
            self.facts.learn(kept_model=kept)
        writer.write_status("completed", message=message, best_epoch=self.ledger.best.epoch,
                            **self.facts.learned())
        self.progress(LogMessage(message))
        return RunResult(self.run_dir, "completed", split.classes, self.history, report, message)

    # -- pieces ----------------------------------------------------------------------------
    def _finish_cancelled(self, writer: RunWriter, split: DatasetSplit | None) -> RunResult:
        best = self.ledger.best.epoch
        if self.classifier is not None and best is not None:
            self.ledger.restore_best(self.classifier.model)
            rf.save_model(self.classifier.model, self.run_dir / rf.MODEL_FILE)
            message = f"Cancelled; the best weights (epoch {best}) were kept."
        else:
            message = "Cancelled before the first epoch finished; no model was saved."
        writer.write_results(self.history, None)
        writer.write_status("cancelled", message=message, best_epoch=best)
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
