"""A training run from a folder (or a split) to a run folder: the recipe the field teaches.

Phase 1 trains a new head on the frozen base. Phase 2 unfreezes the top blocks at a lower
learning rate. BatchNorm stays in inference mode, early stopping watches the validation loss and
the best weights are restored, class weights balance unequal classes, and the test split is
touched only once, at the end.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from finetune_gui.core.data.augment import build_augmentation
from finetune_gui.core.data.dataset import DatasetScan, DatasetSplit, scan_folder, split_dataset
from finetune_gui.core.data.pipeline import batches, decode_images
from finetune_gui.core.errors import (
    Cancelled,
    RunFolderError,
    SettingsError,
    TrainingDiverged,
    UserError,
)
from finetune_gui.core.events import (
    BatchEnded,
    CancelToken,
    EpochEnded,
    LogMessage,
    PhaseStarted,
    ProgressCallback,
    StageStarted,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.export.templates import LOADER_FILE, LOADER_TEMPLATE
from finetune_gui.core.files import atomic_write_with
from finetune_gui.core.model.build import (
    ALL_BLOCKS,
    build_classifier,
    count_trainable,
    from_scratch,
    recalibrate_batchnorm,
    set_trainable_blocks,
)
from finetune_gui.core.model.features import extract_features, head_model, top_model
from finetune_gui.core.run import folder as rf
from finetune_gui.core.run.evaluation import EvaluationReport, build_report, predict_probabilities
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.devices import (
    DevicePlan,
    apply_plan,
    detect_gpus,
    halve_batch,
    multiworker_strategy,
    plan_devices,
    reset_precision,
)
from finetune_gui.core.training.head_solver import kfold_for_run, solve_head_phase, solves_head
from finetune_gui.core.training.selection import criterion, improves, kept_model

# Diverged: the loss is 50x worse than on the first batch of the run (and above 20, which a
# clipped cross-entropy on its own does not reach).
EXPLODING_FACTOR = 50.0
EXPLODING_FLOOR = 20.0
# A head with a hidden layer is not convex: it trains until validation stops improving, with
# this many epochs at most and at least this much patience (5 fixed epochs stopped it while
# validation accuracy was still climbing, issue 12).
HIDDEN_HEAD_EPOCH_LIMIT = 200
HIDDEN_HEAD_MIN_PATIENCE = 5
PHASE_TITLES = {
    "head": "Phase 1: training the new head on the frozen base",
    "finetune": "Phase 2: fine-tuning the top blocks",
    "scratch": "Training the whole network from scratch",
}


@dataclass
class RunResult:
    """What a run produced; `status` is "completed" or "cancelled"."""

    run_dir: Path
    status: str
    classes: list[str]
    history: list[dict] = field(default_factory=list)
    report: EvaluationReport | None = None
    message: str = ""
    wrote_run_folder: bool = True  # False on a worker that trained with others but is not the chief


class BestWeights:
    """The weights of the layers being trained at the epoch with the best monitored value."""

    def __init__(self) -> None:
        self.value = math.inf
        self.epoch: int | None = None
        self.improved = False  # since this process started (a resumed run may not have)
        self.saved: dict[int, tuple[object, list]] = {}

    def remember_start(self, layers) -> None:
        """Record layers about to be trained as they are now, so 'no improvement' undoes them."""
        for layer in layers:
            self.saved.setdefault(id(layer), (layer, [w.copy() for w in layer.get_weights()]))

    @property
    def saved_this_session(self) -> bool:
        return self.improved

    def update(self, value: float, epoch: int, layers) -> bool:
        if not improves(value, self.value):
            return False
        self.value, self.epoch, self.improved = value, epoch, True
        for layer in layers:
            self.saved[id(layer)] = (layer, [w.copy() for w in layer.get_weights()])
        return True

    def restore(self) -> None:
        for layer, weights in self.saved.values():
            layer.set_weights(weights)


CHECKPOINT_DIR = "checkpoint"
# Checkpoints are plain .npz files: Keras' save_weights took 1.1 s for a MobileNetV2 (one HDF5
# dataset per variable), twice per epoch; a snapshot to numpy and np.savez take 0.04 s.
LAST_WEIGHTS = "last.weights.npz"
BEST_WEIGHTS = "best.weights.npz"
STATE_FILE = "state.json"


def save_checkpoint_weights(model, target: Path) -> None:
    """All of `model`'s variables, in order and named by path, into one .npz file (atomic)."""
    arrays = {f"w{i}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}
    paths = np.array([v.path for v in model.weights])

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            np.savez(out, paths=paths, **arrays)

    atomic_write_with(target, write, suffix=".npz")


def load_checkpoint_weights(model, source: Path) -> None:
    """Set `model`'s variables from `save_checkpoint_weights`; refuse a file of another network."""
    try:
        with np.load(source, allow_pickle=False) as found:
            arrays = [found[f"w{i}"] for i in range(len(found["paths"]))]
    except (OSError, KeyError, ValueError) as exc:
        raise RunFolderError(f"The checkpoint {source} cannot be read ({exc}).") from exc
    variables = model.weights
    # Shapes in order, not paths: a model built twice in one process gets a new root name.
    if len(arrays) != len(variables) or any(
        a.shape != tuple(v.shape) for a, v in zip(arrays, variables, strict=True)
    ):
        raise RunFolderError(
            f"The checkpoint {source} belongs to a different network than this run's settings."
        )
    for variable, array in zip(variables, arrays, strict=True):
        variable.assign(array)


def _monitor_callback_class():
    import keras

    class TrainingMonitor(keras.callbacks.Callback):
        """Progress events, cancel, divergence, best weights and patience for one phase."""

        def __init__(self, job: TrainingJob, phase: str, first_epoch: int, steps: int, layers):
            super().__init__()
            self.job, self.phase, self.first_epoch, self.steps = job, phase, first_epoch, steps
            self.layers = layers
            self.waited = 0
            self.cancelled = False
            self.diverged: str | None = None
            self.started = time.monotonic()
            self.batches_done = 0
            self.epochs_total = 0

        def on_train_batch_end(self, batch, logs=None):
            loss = float((logs or {}).get("loss", 0.0))
            self.batches_done += 1
            epoch = self.first_epoch + self._epoch_in_phase
            if self.job.first_loss is None and math.isfinite(loss):
                self.job.first_loss = loss
            limit = max(EXPLODING_FLOOR, EXPLODING_FACTOR * (self.job.first_loss or 0.0))
            if not math.isfinite(loss) or loss > limit:
                what = "became NaN" if math.isnan(loss) else f"exploded to {loss:.3g}"
                self.diverged = f"The training loss {what} in epoch {epoch}"
                self.model.stop_training = True
            if self.job.cancel is not None and self.job.cancel.cancelled:
                self.cancelled = True
                self.model.stop_training = True
            elapsed = time.monotonic() - self.started
            remaining = self.epochs_total * self.steps - self.batches_done
            eta = elapsed / self.batches_done * remaining
            self.job.progress(BatchEnded(self.phase, epoch, batch + 1, self.steps, loss, eta))

        def on_test_batch_end(self, batch, logs=None):
            if self.job.cancel is not None and self.job.cancel.cancelled:
                self.model.stop_evaluating = True

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_in_phase = epoch

        def on_epoch_end(self, epoch, logs=None):
            if self.cancelled or self.diverged:
                return  # a partial epoch: neither recorded nor compared
            logs = dict(logs or {})
            number = self.first_epoch + epoch
            row = {
                "epoch": number,
                "phase": self.phase,
                "loss": float(logs.get("loss", math.nan)),
                "accuracy": float(logs.get("accuracy", math.nan)),
                "val_loss": float(logs["val_loss"]) if "val_loss" in logs else None,
                "val_accuracy": float(logs["val_accuracy"]) if "val_accuracy" in logs else None,
                "lr": float(self.model.optimizer.learning_rate.numpy()),
            }
            self.job.history.append(row)
            watched = criterion(row["val_accuracy"], row["val_loss"], row["loss"])
            if self.job.best.update(watched, number, self.layers):
                self.waited = 0
                self.job.save_best_weights()
            else:
                self.waited += 1
                patience = self.job.phase_patience(self.phase)
                if patience and self.waited >= patience:
                    self.job.progress(
                        LogMessage(
                            f"Early stopping: validation accuracy (loss breaking ties) did not "
                            f"improve for {self.waited} epochs (best at epoch {self.job.best.epoch})."
                        )
                    )
                    self.model.stop_training = True
            self.job.progress(
                EpochEnded(
                    self.phase, number, {k: v for k, v in row.items() if isinstance(v, float)}
                )
            )
            self.job.save_checkpoint()

    return TrainingMonitor


def _recalibration_callback_class():
    import keras

    class RecalibrateBatchNorm(keras.callbacks.Callback):
        """From scratch: fresh BatchNorm statistics before each validation, so it can be trusted."""

        def __init__(self, classifier_model, images, batch_size):
            super().__init__()
            self.classifier_model, self.images, self.batch_size = (
                classifier_model,
                images,
                batch_size,
            )

        def on_test_begin(self, logs=None):
            recalibrate_batchnorm(self.classifier_model, self.images, self.batch_size)

    return RecalibrateBatchNorm


class TrainingJob:
    """One run: `TrainingJob(data, settings, out_dir, progress=..., cancel=...).run()`.

    `data` is an image folder, a `DatasetScan` or a `DatasetSplit`. `progress` is called from the
    thread that runs the job with the events in `core.events`.
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
        self.kfold = kfold  # also estimate by k-fold on the cached features (small folders)
        self.kfold_estimate: dict | None = None
        self.history: list[dict] = []
        self.first_loss: float | None = None
        self.best = BestWeights()
        self.classifier = None
        self.batch_size = settings.batch_size
        self.resume_state: dict | None = None
        self._created_folder = False

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Train, evaluate on the test split, write the run folder; return what happened."""
        plan = plan_devices(self.gpu_lister())
        if plan.strategy == "multiworker":
            import tensorflow as tf

            multiworker_strategy()  # first: it cannot be made after any TensorFlow operation
            if self.resume_state is not None:
                raise SettingsError(
                    "A run is resumed on one machine: unset TF_CONFIG and run `finetune-gui "
                    "train --resume RUN` where the run folder is."
                )
            try:
                return self._run(plan) if plan.is_chief else self._run_in_scratch_folder(plan)
            except (tf.errors.UnavailableError, tf.errors.AbortedError) as exc:
                raise UserError(
                    f"Another process of the cluster stopped, so this one stopped too "
                    f"({_collective_failure(exc)}). The chief's run folder keeps every finished "
                    f"epoch: start all processes again, or unset TF_CONFIG and continue on one "
                    f"machine with `finetune-gui train --resume RUN`."
                ) from exc
        return self._run(plan)

    def _run_in_scratch_folder(self, plan: DevicePlan) -> RunResult:
        """A worker that is not the chief trains in step with the others and saves when they do
        (saving can take part in collective operations), but into a folder deleted at the end."""
        chosen = self.run_dir
        scratch = Path(tempfile.mkdtemp(prefix="finetune-gui-worker-"))
        self.run_dir = scratch / "run"
        try:
            result = self._run(plan)
        finally:
            self.run_dir = chosen
            shutil.rmtree(scratch, ignore_errors=True)
        task = plan.cluster
        result.message += (
            f" This was {task.task_type} {task.index}: the chief writes the run folder, "
            f"nothing was kept here."
        )
        result.run_dir, result.wrote_run_folder = chosen, False
        return result

    def _run(self, plan: DevicePlan) -> RunResult:
        import keras

        if self.resume_state is None:
            self._prepare_folder()
            try:
                split = self._resolve_split()
            except Cancelled:
                return self._finish_cancelled(None)
            self._write_start(split)
        else:
            split = self.data
            self._write_status("running")
        keras.backend.clear_session()  # the GUI trains many times in one process
        keras.utils.set_random_seed(self.settings.seed)
        self.progress(LogMessage(plan.summary))
        strategy = apply_plan(plan)
        try:
            return self._train(split, strategy)
        except Cancelled:
            return self._finish_cancelled(split)
        except Exception as exc:
            self._record_failure(exc)
            raise
        finally:
            reset_precision()

    def _train(self, split: DatasetSplit, strategy) -> RunResult:
        self.split = split
        size = self.settings.resolved_image_size
        train_x, train_y = self._decode(split.train, "decode")
        val_x, val_y = self._decode(split.val, "decode")
        weights = self._sample_weights(train_y, split.classes)
        with strategy.scope():
            self.classifier = build_classifier(self.settings, len(split.classes))
        if self.resume_state:
            load_checkpoint_weights(
                self.classifier.model, self.run_dir / CHECKPOINT_DIR / LAST_WEIGHTS
            )
            self.progress(LogMessage(f"Resuming after epoch {self.resume_state['epochs_done']}."))
        self.progress(
            LogMessage(
                f"{self.classifier.spec.keras_name} at {size} px, {len(split.classes)} classes, "
                f"{len(train_y)} training / {len(val_y)} validation / {len(split.test)} test images."
            )
        )
        if self.settings.cache_mode == "fast" and not from_scratch(self.settings):
            self._train_fast(train_x, train_y, weights, val_x, val_y, strategy)
        else:
            self._train_exact(train_x, train_y, weights, val_x, val_y, strategy)
        check_cancel(self.cancel)
        self._restore_best()
        kept = self._kept_model()
        rf.save_model(self.classifier.model, self.run_dir / rf.MODEL_FILE)
        report = self._evaluate(split)
        report.kfold = self.kfold_estimate
        self._write_results(report)
        message = (
            f"Finished: test accuracy {report.accuracy:.1%} on {report.count} images."
            if report.count
            else "Finished (no test images)."
        )
        extra = {"kept_model": kept} if kept else {}
        if getattr(self, "head_search", None):
            extra["head_l2_tried"] = self.head_search
        self._write_status("completed", message=message, best_epoch=self.best.epoch, **extra)
        self.progress(LogMessage(message))
        return RunResult(self.run_dir, "completed", split.classes, self.history, report, message)

    # -- phases ----------------------------------------------------------------------------
    def _phases(self):
        s = self.settings
        if from_scratch(s):
            epochs = s.epochs_head + s.epochs_finetune
            self.progress(
                LogMessage(
                    f"No pretrained weights: the whole network trains from scratch for {epochs} epochs."
                )
            )
            yield "scratch", epochs, s.lr_head, ALL_BLOCKS
            return
        if solves_head(s) and s.epochs_head:
            yield "head", 1, s.lr_head, 0  # solved to the optimum: one row of history
        elif s.cache_mode == "fast" and s.epochs_head and s.patience:
            yield "head", max(s.epochs_head, HIDDEN_HEAD_EPOCH_LIMIT), s.lr_head, 0
        else:
            yield "head", s.epochs_head, s.lr_head, 0
        if s.epochs_finetune and s.unfreeze_blocks:
            yield "finetune", s.epochs_finetune, s.resolved_lr_finetune, s.unfreeze_blocks
        elif s.epochs_finetune:
            self.progress(LogMessage("Fine-tuning skipped: 0 blocks are set to be unfrozen."))

    def _remaining(self, phases):
        """The phases still to run: a resumed run skips the epochs it did, and a whole phase
        once a later one has begun (a phase may have stopped early, before its limit)."""
        phases = list(phases)
        if not self.resume_state:
            yield from phases
            return
        done = {}
        for row in self.history:
            done[row["phase"]] = done.get(row["phase"], 0) + 1
        for index, (phase, epochs, lr, blocks) in enumerate(phases):
            later_begun = any(done.get(p[0]) for p in phases[index + 1 :])
            yield phase, 0 if later_begun else max(0, epochs - done.get(phase, 0)), lr, blocks

    def _train_exact(self, train_x, train_y, weights, val_x, val_y, strategy) -> None:
        import tensorflow as tf

        augment = self._augmentation()
        model = self.classifier.model
        for phase, epochs, lr, blocks in self._remaining(self._phases()):
            if not epochs:
                continue
            with strategy.scope():
                set_trainable_blocks(self.classifier, blocks)

            def make_train(batch_size):
                ds = batches(
                    [train_x, train_y, weights],
                    batch_size,
                    shuffle=True,
                    seed=self.settings.seed,
                    repeat=True,
                )

                def prepare(x, y, w):
                    x = tf.cast(x, tf.float32)
                    return (augment(x, training=True) if augment is not None else x), y, w

                return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)

            extra = []
            if phase == "scratch":
                extra = [_recalibration_callback_class()(model, train_x, self.batch_size)]
            self._fit_phase(
                phase, model, make_train, len(train_y), (val_x, val_y), epochs, lr, strategy, extra
            )
        if from_scratch(self.settings):
            self._restore_best()
            recalibrate_batchnorm(model, train_x, self.batch_size)

    def _train_fast(self, train_x, train_y, weights, val_x, val_y, strategy) -> None:
        from finetune_gui.core.model.backbones import cut_layer

        phases = list(self._remaining(self._phases()))
        finetune = [p for p in phases if p[0] == "finetune"]
        cut = cut_layer(self.classifier.ends, finetune[0][3]) if finetune else None
        augment = self._augmentation()
        from finetune_gui.core.training.feature_cache import weights_identity

        # Hashes the whole weights file: once per run, not once per part of the split.
        weights_id = weights_identity(self.settings.weights)
        with strategy.scope():
            train_cache = self._cached_extract(
                train_x, self.split.train, cut, augment, self.views, "extract", weights_id
            )
            val_cache = self._cached_extract(
                val_x, self.split.val, cut, None, 1, "extract-val", weights_id
            )
        views = train_cache.views
        labels = np.tile(train_y, views)
        sample_weights = np.tile(weights, views)
        for phase, epochs, lr, blocks in phases:
            if not epochs:
                continue
            if phase == "head" and solves_head(self.settings):
                self._solve_head(train_cache.pooled, labels, sample_weights, val_cache, val_y)
                continue
            if phase == "finetune" and not any(r["phase"] == phase for r in self.history):
                self.best.restore()  # phase 2 starts from the best head, not the last epoch
            if phase == "head":
                with strategy.scope():
                    set_trainable_blocks(self.classifier, 0)
                    model = head_model(self.classifier)
                inputs, val_inputs = train_cache.pooled, val_cache.pooled
            else:
                with strategy.scope():
                    set_trainable_blocks(self.classifier, blocks)
                    model = top_model(self.classifier, cut)
                inputs, val_inputs = train_cache.at_cut, val_cache.at_cut

            def make_train(batch_size, inputs=inputs):
                return batches(
                    [inputs, labels, sample_weights],
                    batch_size,
                    shuffle=True,
                    seed=self.settings.seed,
                    repeat=True,
                )

            self._fit_phase(
                phase, model, make_train, len(train_y), (val_inputs, val_y), epochs, lr, strategy
            )

    def phase_patience(self, phase: str) -> int:
        """Epochs without improvement before a phase stops (0: never)."""
        patience = self.settings.patience
        if phase == "head" and patience and self.settings.cache_mode == "fast":
            return max(patience, HIDDEN_HEAD_MIN_PATIENCE)
        return patience

    def _solve_head(self, pooled, labels, sample_weights, val_cache, val_y) -> None:
        self.head_search = solve_head_phase(self, pooled, labels, sample_weights, val_cache, val_y)
        if self.kfold:
            self.kfold_estimate = kfold_for_run(self, pooled, labels, val_cache.pooled, val_y)

    def _kept_model(self) -> str | None:
        kept, note = kept_model(self.history, self.best.epoch)
        if note:
            self.progress(LogMessage(note))
        return kept

    def _cached_extract(self, images, items, cut, augment, views, stage, weights_id):
        """Extract the frozen part's output, or reuse it from an earlier run with the same key."""
        from finetune_gui.core.training import feature_cache

        key = feature_cache.cache_key(
            [p for p, _ in items],
            backbone=self.settings.backbone,
            weights=weights_id,
            size=self.settings.resolved_image_size,
            augment=self.settings.augment.to_dict() if augment is not None else None,
            views=views if augment is not None else 1,
            cut=cut,
            seed=self.settings.seed,
            precision=self.classifier.base.compute_dtype,
        )
        found = feature_cache.load(key)
        if found is not None:
            self.progress(
                LogMessage(f"Reusing the frozen layers' output from an earlier run ({stage}).")
            )
            return found
        features = extract_features(
            self.classifier, images, cut=cut, augment=augment, views=views,
            batch_size=self.batch_size, progress=self.progress, cancel=self.cancel, stage=stage,
        )  # fmt: skip
        feature_cache.save(key, features)
        return features

    def _fit_phase(
        self, phase, model, make_train, n_train, val, epochs, lr, strategy, extra_callbacks=()
    ) -> None:
        """Compile (after every `trainable` change) and fit; on GPU out-of-memory, halve the batch."""
        import tensorflow as tf

        monitor_class = _monitor_callback_class()
        trained_layers = [layer for layer in _all_layers(model) if layer.trainable_weights]
        self.best.remember_start(trained_layers)
        first_epoch = len(self.history) + 1
        while True:
            steps = max(1, math.ceil(n_train / self.batch_size))
            with strategy.scope():
                model.compile(
                    optimizer=self._optimizer(lr),
                    loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"],
                )
            self.progress(PhaseStarted(phase, epochs, first_epoch, count_trainable(model)))
            self.progress(
                LogMessage(
                    f"{PHASE_TITLES[phase]} ({count_trainable(model):,} trainable "
                    f"parameters, learning rate {lr:g})."
                )
            )
            monitor = monitor_class(self, phase, first_epoch, steps, trained_layers)
            monitor.epochs_total = epochs
            val_data = batches(list(val), self.batch_size) if len(val[1]) else None
            try:
                model.fit(
                    make_train(self.batch_size),
                    epochs=epochs,
                    steps_per_epoch=steps,
                    validation_data=val_data,
                    callbacks=[*extra_callbacks, monitor],
                    verbose=0,
                    shuffle=False,
                )
            except tf.errors.ResourceExhaustedError as exc:
                smaller = halve_batch(self.batch_size)
                if smaller is None:
                    raise UserError(
                        "Out of memory even with a batch of 1 image. Choose a smaller image size or backbone."
                    ) from exc
                self.progress(
                    LogMessage(
                        f"Out of memory at batch size {self.batch_size}; retrying this phase with {smaller}.",
                        "warning",
                    )
                )
                self.batch_size = smaller
                del self.history[first_epoch - 1 :]
                continue
            break
        if monitor.diverged:
            self._restore_best()
            raise TrainingDiverged(
                f"{monitor.diverged}. Try a lower learning rate (for example {lr / 10:g})."
            )
        if monitor.cancelled:
            raise Cancelled()

    # -- pieces ----------------------------------------------------------------------------
    def _augmentation(self):
        if self.settings.augment.is_off:
            return None
        aug = build_augmentation(self.settings.augment, seed=self.settings.seed)
        return aug if aug.layers else None

    def _optimizer(self, lr: float):
        import keras

        return {
            "adam": keras.optimizers.Adam,
            "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9),
            "rmsprop": keras.optimizers.RMSprop,
        }[self.settings.optimizer](learning_rate=lr)

    def _sample_weights(self, labels: np.ndarray, classes: list[str]) -> np.ndarray:
        n_classes = len(classes)
        counts = np.bincount(labels, minlength=n_classes).astype(float)
        present = counts[counts > 0]
        ratio = present.max() / present.min() if len(present) else 1.0
        mode = self.settings.class_weights
        use = mode == "on" or (mode == "auto" and ratio > 3.0)
        if not use:
            return np.ones(len(labels), dtype="float32")
        per_class = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
        # Named, so "8.12" can be read as "the rare class counts eight times".
        self.progress(LogMessage("Class weights on (a rarer class counts more): " + ", ".join(
            f"{name} {weight:.2f}" for name, weight in zip(classes, per_class, strict=True))))
        return per_class[labels].astype("float32")

    def _restore_best(self) -> None:
        best_file = self.run_dir / CHECKPOINT_DIR / BEST_WEIGHTS
        if self.best.saved_this_session:
            self.best.restore()
        elif self.best.epoch is not None and best_file.exists():
            load_checkpoint_weights(self.classifier.model, best_file)

    def _decode(self, items: list[tuple[Path, int]], stage: str):
        """One part of the split as uint8 pixels at the run's size, and its labels."""
        pixels = decode_images(
            [p for p, _ in items],
            self.settings.resolved_image_size,
            progress=self.progress,
            cancel=self.cancel,
            stage=stage,
        )
        return pixels, np.array([label for _, label in items], dtype="int32")

    def _evaluate(self, split: DatasetSplit) -> EvaluationReport:
        import keras

        test_x, test_y = self._decode(split.test, "evaluate")
        self.progress(
            StageStarted("evaluate", len(test_y), f"Testing on {len(test_y)} held-out images")
        )
        job = self

        class StopOnCancel(keras.callbacks.Callback):
            def on_predict_batch_end(self, batch, logs=None):
                if job.cancel is not None and job.cancel.cancelled:
                    self.model.stop_predicting = True

        probs = predict_probabilities(
            self.classifier.model, test_x, self.batch_size, [StopOnCancel()]
        )
        check_cancel(self.cancel)
        return build_report(split.classes, test_y, probs, [p for p, _ in split.test])

    # -- the run folder --------------------------------------------------------------------
    def _prepare_folder(self) -> None:
        folder = self.run_dir
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"Cannot use {folder} as the run folder: it is a file.")
        if folder.is_dir() and any(folder.iterdir()):
            raise RunFolderError(
                f"The run folder {folder} already exists and is not empty; choose a new one."
            )
        if not folder.parent.is_dir():
            raise RunFolderError(
                f"Cannot create {folder}: the folder {folder.parent} does not exist."
            )
        self._created_folder = not folder.exists()
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise RunFolderError(
                f"Cannot create the run folder {folder}: {exc.strerror or exc}."
            ) from exc

    def _resolve_split(self) -> DatasetSplit:
        data, s = self.data, self.settings
        if isinstance(data, DatasetSplit):
            return data
        if not isinstance(data, DatasetScan):
            data = scan_folder(data, progress=self.progress, cancel=self.cancel)
        for warning in data.warnings:
            self.progress(LogMessage(warning, "warning"))
        return split_dataset(data, s.val_fraction, s.test_fraction, s.seed, exclude=self.exclude)

    def _write_start(self, split: DatasetSplit) -> None:
        rf.write_json(self.run_dir / rf.SETTINGS_FILE, self.settings.to_dict())
        split.save(self.run_dir / rf.SPLIT_FILE)
        rf.write_labels(self.run_dir / rf.LABELS_FILE, split.classes)
        shutil.copyfile(LOADER_TEMPLATE, self.run_dir / LOADER_FILE)  # the README's loader
        self._write_status("running", data=str(split.root), counts=split.counts())

    def _write_status(self, status: str, **extra) -> None:
        previous = {}
        path = self.run_dir / rf.RUN_FILE
        if path.exists():
            import json

            previous = json.loads(path.read_text("utf-8"))
        previous.update(rf.run_facts(status, **extra))
        rf.write_json(path, previous)

    def _record_failure(self, exc: Exception) -> None:
        """A run that failed before its first epoch leaves nothing behind (so the same --out
        works on the next try); a later failure keeps its history and says why."""
        if not self.history and self.resume_state is None and self._created_folder:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            return
        self._write_status("failed", message=str(exc))

    def _write_results(self, report: EvaluationReport | None) -> None:
        rf.write_history(self.run_dir / rf.HISTORY_FILE, self.history)
        if report is not None:
            rf.write_json(self.run_dir / rf.METRICS_FILE, report.to_dict())

    def save_checkpoint(self) -> None:
        """After each epoch: weights, history and position, so a killed run can resume here."""
        folder = self.run_dir / CHECKPOINT_DIR
        folder.mkdir(exist_ok=True)
        save_checkpoint_weights(self.classifier.model, folder / LAST_WEIGHTS)
        rf.write_history(self.run_dir / rf.HISTORY_FILE, self.history)
        state = {
            "epochs_done": len(self.history),
            "best_value": self.best.value if math.isfinite(self.best.value) else None,
            "best_epoch": self.best.epoch,
            "batch_size": self.batch_size,
            "first_loss": self.first_loss,
        }
        rf.write_json(folder / STATE_FILE, state)

    def save_best_weights(self) -> None:
        folder = self.run_dir / CHECKPOINT_DIR
        folder.mkdir(exist_ok=True)
        save_checkpoint_weights(self.classifier.model, folder / BEST_WEIGHTS)

    def _finish_cancelled(self, split: DatasetSplit | None) -> RunResult:
        if self.classifier is not None and self.best.epoch is not None:
            self._restore_best()
            rf.save_model(self.classifier.model, self.run_dir / rf.MODEL_FILE)
            message = f"Cancelled; the best weights (epoch {self.best.epoch}) were kept."
        else:
            message = "Cancelled before the first epoch finished; no model was saved."
        self._write_results(None)
        self._write_status("cancelled", message=message, best_epoch=self.best.epoch)
        self.progress(LogMessage(message, "warning"))
        classes = split.classes if split is not None else []
        return RunResult(self.run_dir, "cancelled", classes, self.history, None, message)


def resume_job(
    run_dir: Path | str,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> TrainingJob:
    """A job that continues an interrupted run from its last completed epoch.

    Same settings and the same split as the run folder records; the image folder must still
    be where the split says.
    """
    import json

    run_dir = Path(run_dir).expanduser()
    state_file = run_dir / CHECKPOINT_DIR / STATE_FILE
    facts_file = run_dir / rf.RUN_FILE
    if not facts_file.exists() or not (run_dir / rf.SETTINGS_FILE).exists():
        raise RunFolderError(f"{run_dir} is not a run folder that can be resumed.")
    facts = json.loads(facts_file.read_text("utf-8"))
    if facts.get("status") == "completed":
        raise RunFolderError(f"The run in {run_dir} already finished; there is nothing to resume.")
    if not state_file.exists() or not (run_dir / CHECKPOINT_DIR / LAST_WEIGHTS).exists():
        raise RunFolderError(
            f"The run in {run_dir} stopped before its first epoch finished, so there is no "
            f"checkpoint to resume from. Start a new run instead."
        )
    settings = TrainingSettings.from_dict(
        json.loads((run_dir / rf.SETTINGS_FILE).read_text("utf-8"))
    )
    split = DatasetSplit.load(run_dir / rf.SPLIT_FILE)
    missing = [
        p for part in (split.train, split.val, split.test) for p, _ in part if not p.exists()
    ]
    if missing:
        raise RunFolderError(
            f"{len(missing)} image(s) of this run are no longer where they were (for example "
            f"{missing[0]}); put the image folder back to resume."
        )
    state = json.loads(state_file.read_text("utf-8"))
    job = TrainingJob(split, settings, run_dir, progress=progress, cancel=cancel)
    job.resume_state = state
    job.history = rf.RunFolder.read_history(run_dir)
    job.batch_size = int(state.get("batch_size") or settings.batch_size)
    job.first_loss = state.get("first_loss")
    if state.get("best_value") is not None:
        job.best.value = float(state["best_value"])
        job.best.epoch = state.get("best_epoch")
    return job


def _collective_failure(exc: Exception) -> str:
    """TensorFlow's reason without its internal function name: "...: The following tasks..."."""
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", getattr(exc, "message", str(exc)))
    return " ".join(text.split("\n")[:2]).strip()


def interrupted_runs(folder: Path | str) -> list[Path]:
    """Run folders below `folder` that stopped mid-training (killed) and can be resumed.

    A run counts when its run.json still says "running" and a checkpoint exists; newest first.
    """
    import json

    found = []
    root = Path(folder)
    for run_dir in root.iterdir() if root.is_dir() else []:
        facts_file = run_dir / rf.RUN_FILE
        if not (run_dir / CHECKPOINT_DIR / STATE_FILE).exists() or not facts_file.exists():
            continue
        try:
            status = json.loads(facts_file.read_text("utf-8")).get("status")
        except (OSError, ValueError):
            continue
        if status == "running":
            found.append(run_dir)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _all_layers(model) -> list:
    """Every layer of `model`, looking inside nested models."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            found.extend(_all_layers(layer))
        else:
            found.append(layer)
    return found


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
