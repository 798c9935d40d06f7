"""Training runs end to end on generated shapes: accuracy, the run folder, cancel, divergence."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from tests.training_checks import assert_the_saved_model_is_the_best_epochs

from finetune_gui.core.errors import RunFolderError, TrainingDiverged
from finetune_gui.core.events import BatchEnded, CancelToken, EpochEnded, LogMessage, PhaseStarted
from finetune_gui.core.run.folder import RunFolder
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.job import TrainingJob


def tuned(weights, **changes) -> TrainingSettings:
    base = dict(
        backbone="mobilenetv2",
        weights=str(weights),
        image_size=48,
        epochs_head=4,
        epochs_finetune=2,
        unfreeze_blocks=2,
        batch_size=16,
        augment="light",
        seed=0,
        patience=3,
        # Phase 2 runs even when the head gets every validation image right: these tests are
        # about both phases, and whether a tiny head is perfect is decided by float round-off
        # (on an AVX-512 CPU with oneDNN's kernels it was, and fine-tuning was skipped).
        finetune_when="always",
    )
    return TrainingSettings(**{**base, **changes})


class Recorder:
    def __init__(self, cancel_after_epoch: int | None = None, cancel: CancelToken | None = None):
        self.events, self.cancel, self.cancel_after = [], cancel, cancel_after_epoch
        self.batches_after_cancel = 0

    def __call__(self, event):
        self.events.append(event)
        if self.cancel is not None and self.cancel.cancelled and isinstance(event, BatchEnded):
            self.batches_after_cancel += 1
        if isinstance(event, EpochEnded) and event.epoch == self.cancel_after:
            self.cancel.cancel()

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, other_shapes_dir, pretrained_base):
    recorder = Recorder()
    out = tmp_path_factory.mktemp("runs") / "fast"
    result = TrainingJob(other_shapes_dir, tuned(pretrained_base), out, progress=recorder).run()
    return result, recorder


def test_fine_tuning_saved_weights_reaches_high_test_accuracy(finished_run):
    result, _ = finished_run
    assert result.status == "completed"
    assert result.report.count == 36
    assert result.report.accuracy >= 0.9


def test_both_phases_run_in_order_with_a_lower_learning_rate(finished_run):
    result, recorder = finished_run
    phases = recorder.of(PhaseStarted)
    assert [p.phase for p in phases] == ["head", "finetune"]
    assert phases[1].trainable_params > phases[0].trainable_params
    rates = {row["phase"]: row["lr"] for row in result.history}
    assert rates["finetune"] == pytest.approx(rates["head"] / 10)
    assert [row["epoch"] for row in result.history] == list(range(1, len(result.history) + 1))


def test_the_run_folder_holds_everything_to_repeat_and_use_the_run(finished_run):
    result, _ = finished_run
    folder = result.run_dir
    assert (folder / "labels.txt").read_text() == "circles\nsquares\ntriangles\n"
    with open(folder / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result.history) and {"loss", "val_accuracy", "phase"} <= set(rows[0])
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["accuracy"] == result.report.accuracy
    assert len(metrics["confusion"]) == 3 and sum(map(sum, metrics["confusion"])) == 36
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    run = RunFolder.open(folder)
    assert run.settings == tuned(run.settings.weights)
    split = json.loads((folder / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 240
    assert not list(folder.glob(".*"))  # no temporary files left behind


def test_saved_model_predicts_raw_pixels_like_the_report(finished_run):
    import keras

    from finetune_gui.core.data.images import load_rgb

    result, _ = finished_run
    model = keras.models.load_model(result.run_dir / "model.keras")
    row = result.report.predictions[0]
    probs = model.predict(load_rgb(row["path"], 48)[None], verbose=0)[0]
    np.testing.assert_allclose(probs, row["probabilities"], atol=1e-4)


def test_weights_none_trains_from_scratch_to_well_above_chance(
    finished_run, other_shapes_dir, tmp_path
):
    """From scratch on 84 images, BatchNorm statistics recomputed before each validation and at
    the end keep the model from answering one class for everything (accuracy 1/3)."""
    result, _ = finished_run
    scratch = TrainingJob(other_shapes_dir, tuned("none"), tmp_path / "scratch").run()
    assert scratch.history[0]["phase"] == "scratch"
    assert {row["phase"] for row in scratch.history} == {"scratch"}
    predicted = {int(np.argmax(p["probabilities"])) for p in scratch.report.predictions}
    assert len(predicted) > 1
    assert scratch.report.accuracy >= 0.6  # chance is 0.33
    assert not np.allclose(
        [p["probabilities"] for p in scratch.report.predictions],
        [p["probabilities"] for p in result.report.predictions],
        atol=1e-3,
    )


def test_exact_mode_trains_through_the_whole_network_too(
    other_shapes_dir, pretrained_base, tmp_path
):
    result = TrainingJob(
        other_shapes_dir,
        tuned(pretrained_base, cache_mode="exact", epochs_finetune=1),
        tmp_path / "exact",
    ).run()
    assert result.status == "completed" and result.report.accuracy >= 0.8


class SpoilsTheHeadAfter(Recorder):
    """When epoch `epoch` has ended (and been kept, if it was the best so far), turns the output
    layer's weights upside down: from then on the weights in memory are far from the best
    epoch's, as after a bad stretch of training, so keeping the best weights has to act.
    With a cancel token, cancels at that moment too."""

    def __init__(self, epoch: int, cancel: CancelToken | None = None):
        super().__init__(cancel=cancel)
        self.epoch, self.job = epoch, None

    def __call__(self, event):
        super().__call__(event)
        if isinstance(event, EpochEnded) and event.epoch == self.epoch:
            head = self.job.classifier.model.get_layer("probabilities")
            head.kernel.assign(-3.0 * head.kernel)
            if self.cancel is not None:
                self.cancel.cancel()


def test_cancel_stops_within_one_batch_and_keeps_the_best_weights(
    small_shapes, pretrained_base, tmp_path
):
    cancel = CancelToken()
    recorder = SpoilsTheHeadAfter(2, cancel)
    job = TrainingJob(
        small_shapes,
        # A hidden layer: the head trains epoch by epoch (without one it is solved in one step).
        tuned(pretrained_base, epochs_head=10, epochs_finetune=0, dense_units=16),
        tmp_path / "run",
        progress=recorder,
        cancel=cancel,
    )
    recorder.job = job
    result = job.run()
    assert result.status == "cancelled"
    assert recorder.batches_after_cancel <= 1
    assert [row["epoch"] for row in result.history] == [1, 2]
    facts = json.loads((tmp_path / "run" / "run.json").read_text())
    best_epoch = facts["best_epoch"]
    assert best_epoch in (1, 2) and f"best weights (epoch {best_epoch})" in result.message
    facts = json.loads((tmp_path / "run" / "run.json").read_text())
    assert facts["status"] == "cancelled" and facts["best_epoch"] == best_epoch
    # The saved model is the best epoch's (its validation loss, recomputed from the images),
    # not the spoilt weights the run held when it was cancelled.
    assert_the_saved_model_is_the_best_epochs(result.run_dir, ended_on_a_worse_epoch=False)


def test_cancel_before_any_epoch_saves_no_model_and_says_so(
    small_shapes, pretrained_base, tmp_path
):
    cancel = CancelToken()
    cancel.cancel()
    result = TrainingJob(
        small_shapes, tuned(pretrained_base), tmp_path / "run", cancel=cancel
    ).run()
    assert result.status == "cancelled" and "no model was saved" in result.message
    assert not (tmp_path / "run" / "model.keras").exists()
    with pytest.raises(RunFolderError, match=r"model\.keras"):
        RunFolder.open(tmp_path / "run")


@pytest.mark.slow
def test_an_exploding_loss_stops_with_advice_to_lower_the_learning_rate(small_shapes, tmp_path):
    settings = TrainingSettings(
        backbone="mobilenetv3small",
        weights="none",
        image_size=32,
        epochs_head=8,
        epochs_finetune=0,
        optimizer="adam",
        lr_head=1.0,
        dense_units=64,
        augment="none",
        patience=0,
    )
    with pytest.raises(TrainingDiverged, match="lower learning rate") as caught:
        TrainingJob(small_shapes, settings, tmp_path / "run").run()
    assert "exploded" in str(caught.value) or "NaN" in str(caught.value)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def test_early_stopping_ends_a_phase_that_stops_improving(small_shapes, pretrained_base, tmp_path):
    from finetune_gui.core.training.selection import criterion, improves

    # A hidden layer makes the head non-convex: it trains (up to 200 epochs) until validation
    # stops improving for max(patience, 5) epochs, then keeps its best epoch. The head is
    # spoilt after epoch 2, so the run ends on worse epochs and keeping the best has to act.
    recorder = SpoilsTheHeadAfter(2)
    settings = tuned(
        pretrained_base, epochs_head=30, epochs_finetune=0, patience=1, dense_units=16,
    )  # fmt: skip
    job = TrainingJob(small_shapes, settings, tmp_path / "run", progress=recorder)
    recorder.job = job
    result = job.run()
    assert 6 <= len(result.history) < 30
    (said,) = [e for e in recorder.of(LogMessage) if e.text.startswith("Early stopping")]
    last_epoch = recorder.of(EpochEnded)[-1]
    assert recorder.events.index(last_epoch) < recorder.events.index(said)  # epoch line first
    scores = [criterion(r["val_accuracy"], r["val_loss"], r["loss"]) for r in result.history]
    best_epoch = json.loads((tmp_path / "run" / "run.json").read_text())["best_epoch"]
    assert f"(best at epoch {best_epoch})" in said.text
    # Kept: the first epoch that no later one beats by more than noise (a loss 3e-13 lower
    # at the same accuracy is no improvement).
    assert not any(improves(score, scores[best_epoch - 1]) for score in scores)
    assert len(result.history) - best_epoch >= 5  # the patience it waited
    assert_the_saved_model_is_the_best_epochs(result.run_dir)


def test_a_head_without_hidden_layer_is_solved_in_one_step(small_shapes, pretrained_base, tmp_path):
    settings = tuned(pretrained_base, epochs_head=30, epochs_finetune=0)
    result = TrainingJob(small_shapes, settings, tmp_path / "run").run()
    assert [r["phase"] for r in result.history] == ["head"]
    facts = json.loads((tmp_path / "run" / "run.json").read_text())
    tried = facts["head_l2_tried"]
    # First the plain logistic regression (C = 1 on the features as they are), kept unless a
    # standardised strength beats it on validation by more than a standard error.
    plain, others = tried[0], tried[1:]
    assert plain["standardised"] is False and all(r["standardised"] for r in others)
    p, n = plain["val_accuracy"], facts["counts"]["val"]
    clear = [r for r in others if r["val_accuracy"] > p + np.sqrt(p * (1 - p) / n)]
    kept = max(clear, key=lambda r: (r["val_accuracy"], r["l2"])) if clear else plain
    assert result.history[0]["val_accuracy"] == kept["val_accuracy"]
    assert [r["chosen"] for r in tried] == [r is kept for r in tried]
    assert facts["head_refit"]["standardised"] is kept["standardised"]


def fit_recording_sample_weights(monkeypatch) -> list[dict[int, set[float]]]:
    """Make every `fit` first read one epoch of its training batches and record, per class, the
    sample weights that reach the loss."""
    import keras

    real_fit, seen = keras.Model.fit, []

    def fit(self, data, *args, **kwargs):
        weights: dict[int, set[float]] = {}
        for _, labels, sample_weights in data.take(kwargs["steps_per_epoch"]):
            for label, weight in zip(labels.numpy(), sample_weights.numpy(), strict=True):
                weights.setdefault(int(label), set()).add(round(float(weight), 4))
        seen.append(weights)
        return real_fit(self, data, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    return seen


def train_counts(run_dir) -> np.ndarray:
    split = json.loads((run_dir / "split.json").read_text())
    return np.bincount([label for _, label in split["train"]], minlength=3)


def test_imbalanced_classes_turn_class_weights_on(tmp_path, pretrained_base, monkeypatch):
    from finetune_gui.demo import make_shapes_dataset

    data = make_shapes_dataset(
        tmp_path / "data", per_class={"circles": 40, "squares": 8, "triangles": 10}, size=32
    )
    seen = fit_recording_sample_weights(monkeypatch)
    recorder = Recorder()
    TrainingJob(
        data,
        # Fine-tuning alone (a solved head calls no fit, and a head that gets every
        # validation image right skips fine-tuning): its fit gets the per-image weights.
        tuned(pretrained_base, epochs_head=0, epochs_finetune=1),
        tmp_path / "run",
        progress=recorder,
    ).run()
    weights_line = next(
        e.text for e in recorder.of(LogMessage) if e.text.startswith("Class weights on")
    )
    named = dict(pair.rsplit(" ", 1) for pair in weights_line.split(": ")[1].split(", "))
    assert set(named) == {"circles", "squares", "triangles"}  # each weight says whose it is
    # the big class counts less, the small ones more
    assert float(named["circles"]) < 1 < float(named["squares"])
    # ...and those are the weights the loss receives: n / (classes x count) for every image
    counts = train_counts(tmp_path / "run")
    expected = {c: {round(counts.sum() / (3 * counts[c]), 4)} for c in range(3)}
    assert seen and all(weights == expected for weights in seen)
    assert float(named["squares"]) == pytest.approx(next(iter(expected[1])), abs=0.01)


def test_classes_within_3x_of_each_other_train_unweighted(tmp_path, pretrained_base, monkeypatch):
    from finetune_gui.demo import make_shapes_dataset

    data = make_shapes_dataset(
        tmp_path / "data", per_class={"circles": 24, "squares": 12, "triangles": 12}, size=32
    )
    seen = fit_recording_sample_weights(monkeypatch)
    recorder = Recorder()
    TrainingJob(
        data,
        # Fine-tuning alone (a solved head calls no fit, and a head that gets every
        # validation image right skips fine-tuning): its fit gets the per-image weights.
        tuned(pretrained_base, epochs_head=0, epochs_finetune=1),
        tmp_path / "run",
        progress=recorder,
    ).run()
    counts = train_counts(tmp_path / "run")
    assert counts.max() / counts.min() <= 3
    assert not any(e.text.startswith("Class weights on") for e in recorder.of(LogMessage))
    assert seen and all(weights == {0: {1.0}, 1: {1.0}, 2: {1.0}} for weights in seen)


def test_a_non_empty_run_folder_is_refused_and_left_alone(small_shapes, pretrained_base, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="already exists and is not empty"):
        TrainingJob(small_shapes, tuned(pretrained_base), tmp_path / "run").run()
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["keep.txt"]


def test_out_of_memory_retries_with_half_the_batch_and_says_so(
    monkeypatch, small_shapes, pretrained_base, tmp_path
):
    import keras
    import tensorflow as tf

    real_fit, batch_sizes = keras.Model.fit, []

    def fit_that_runs_out_once(self, data, *args, **kwargs):
        inputs, *_ = next(iter(data))
        inputs = inputs[0] if isinstance(inputs, tuple) else inputs  # several inputs: the first
        batch_sizes.append(int(inputs.shape[0]))  # the size of the batches this fit trains on
        if len(batch_sizes) == 1:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return real_fit(self, data, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit_that_runs_out_once)
    recorder = Recorder()
    result = TrainingJob(
        small_shapes,
        # Fine-tuning alone: the first fit is fine-tuning's.
        tuned(pretrained_base, epochs_head=0, epochs_finetune=1),
        tmp_path / "run",
        progress=recorder,
    ).run()
    assert result.status == "completed"
    assert any(
        "Out of memory at batch size 16; retrying this phase with 8" in e.text
        for e in recorder.of(LogMessage)
    )
    assert batch_sizes == [16, 8]
    # one fine-tuning epoch: the failed attempt left none behind
    assert [r["phase"] for r in result.history] == ["finetune"]


def test_a_faked_modern_gpu_turns_on_mixed_precision_with_a_float32_output(pretrained_base):
    """The plan a machine with a 7.0+ GPU makes, and the model the job builds under it: float16
    inside, the output layer float32, the policy reset afterwards. Only the plan and the build
    are checked here: a CPU computes float16 convolutions only with some instruction sets (with
    oneDNN capped at AVX2 the first one aborted), and what runs in float16 is a GPU's work."""
    import keras

    from finetune_gui.core.model.build import build_classifier
    from finetune_gui.core.training.devices import (
        GpuInfo,
        apply_plan,
        plan_devices,
        reset_precision,
    )

    plan = plan_devices([GpuInfo("Fake A100", (8, 0))])
    assert "Mixed precision (float16) is on" in plan.summary
    try:
        with apply_plan(plan).scope():
            classifier = build_classifier(tuned(pretrained_base, epochs_finetune=0), 3)
        assert classifier.base.compute_dtype == "float16"
        assert classifier.model.get_layer("probabilities").compute_dtype == "float32"
        assert classifier.model.output.dtype == "float32"
    finally:
        reset_precision()
    assert keras.mixed_precision.global_policy().name == "float32"


def test_a_failure_before_the_first_epoch_leaves_no_run_folder(small_shapes, tmp_path, monkeypatch):
    from keras.src.utils import file_utils

    from finetune_gui.core.errors import WeightsError

    def offline(*args, **kwargs):
        raise Exception(
            "URL fetch failure on https://example.invalid/w/mobilenet_v2_no_top.h5: offline"
        )

    monkeypatch.setattr(file_utils, "get_file", offline)
    settings = TrainingSettings(backbone="mobilenetv2", weights="imagenet", image_size=32)
    with pytest.raises(WeightsError, match="train from scratch"):
        TrainingJob(small_shapes, settings, tmp_path / "run").run()
    assert not (tmp_path / "run").exists()  # so the same command works after fixing the cause


def test_checkpoint_weights_round_trip_and_refuse_another_network(tmp_path):
    import keras

    from finetune_gui.core.errors import RunFolderError
    from finetune_gui.core.training.checkpoint import (
        load_checkpoint_weights,
        save_checkpoint_weights,
    )

    def network(width):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(width, name="d"),
                                 keras.layers.Dense(2, name="out")])

    saved, fresh = network(3), network(3)
    path = tmp_path / "last.weights.npz"
    save_checkpoint_weights(saved, path)
    load_checkpoint_weights(fresh, path)
    for a, b in zip(saved.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    other = network(5)
    before = [w.copy() for w in other.get_weights()]
    with pytest.raises(RunFolderError, match="different network"):
        load_checkpoint_weights(other, path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(RunFolderError, match="cannot be read"):
        load_checkpoint_weights(other, path)
    for a, b in zip(before, other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # a refused file changes nothing


def test_the_views_setting_sets_how_many_augmented_copies_are_computed(
    finished_run, small_shapes, pretrained_base, tmp_path
):
    from finetune_gui.core.events import StageStarted

    def extraction(recorder):
        return next(e for e in recorder.of(StageStarted) if e.stage == "extract")

    _, default_recorder = finished_run
    assert re.search(r"\(\d+ images\)", extraction(default_recorder).text)  # no copies
    recorder = Recorder()
    settings = tuned(pretrained_base, epochs_head=1, epochs_finetune=0, views=3)
    result = TrainingJob(small_shapes, settings, tmp_path / "run", progress=recorder).run()
    train_images = len(json.loads((result.run_dir / "split.json").read_text())["train"])
    started = extraction(recorder)
    assert f"({train_images} images, each as it is and 2 augmented copies)" in started.text
    assert started.total == 3 * -(-train_images // settings.batch_size)
