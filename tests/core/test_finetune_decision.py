"""Fine-tuning that earns its time: phase 2 stops at the first epoch clearly worse than the
head alone (it could then not be kept), and runs its course when set to "always"."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from finetune_gui.core.events import LogMessage
from finetune_gui.core.training.selection import finetune_losing, finetune_stalled


def row(epoch, phase, accuracy):
    return {"epoch": epoch, "phase": phase, "val_accuracy": accuracy, "val_loss": 0.3,
            "loss": 0.1}


def test_an_epoch_clearly_below_the_head_is_losing_and_one_within_chance_is_not():
    head = row(1, "head", 0.978)  # 587 of 600: one standard error is 0.6 points
    assert "clearly below the head alone (97.8%)" in finetune_losing(
        row(2, "finetune", 0.969), head, 600)
    assert finetune_losing(row(2, "finetune", 0.975), head, 600) == ""  # within chance
    assert finetune_losing(row(2, "finetune", 0.99), head, 600) == ""  # winning
    # One image below the head on 22 is chance, not evidence.
    assert finetune_losing(row(2, "finetune", 20 / 22), row(1, "head", 21 / 22), 22) == ""
    assert finetune_losing(row(2, "finetune", 18 / 22), row(1, "head", 21 / 22), 22)
    # Only against a kept head, and only about fine-tuning epochs with validation scores.
    assert finetune_losing(row(3, "finetune", 0.5), row(2, "finetune", 0.9), 600) == ""
    assert finetune_losing(row(2, "head", 0.5), head, 600) == ""
    assert finetune_losing({**row(2, "finetune", None)}, head, 600) == ""


def test_a_first_epoch_no_better_than_the_head_by_either_measure_has_stalled():
    head = {**row(1, "head", 20 / 27), "val_loss": 0.6}
    first = {**row(2, "finetune", 20 / 27), "val_loss": 0.61}
    assert finetune_stalled([head, first], head, 27) == (
        "Fine-tuning stopped after epoch 2: its first pass over the images the head was solved "
        "on left it no better on validation than the head alone (20 against 20 images right, "
        "loss 0.610 against 0.600); it is kept only when it wins by more than chance, and "
        "where a first epoch went this way on real folders, none did.")
    assert "(19 against 20 images right" in finetune_stalled(
        [head, {**first, "val_accuracy": 19 / 27}], head, 27)
    # One more image right, or a lower loss: it moved toward a better model, and goes on.
    assert finetune_stalled([head, {**first, "val_accuracy": 21 / 27}], head, 27) == ""
    assert finetune_stalled([head, {**first, "val_loss": 0.59}], head, 27) == ""
    # Only its first epoch, only against a kept head, only with validation scores.
    second = {**first, "epoch": 3}
    assert finetune_stalled([head, {**first, "val_loss": 0.59}, second], head, 27) == ""
    assert finetune_stalled([head, first], None, 27) == ""
    assert finetune_stalled([head, first], {**first, "epoch": 1}, 27) == ""
    assert finetune_stalled([head, {**first, "val_accuracy": None}], head, 27) == ""
    assert finetune_stalled([head, first], head, 0) == ""


@pytest.fixture(scope="module")
def imperfect_folder(tmp_path_factory):
    """Shapes with a fifth of each class filed under another class: the head cannot get every
    validation image right, so phase 2 starts."""
    from finetune_gui.demo import make_shapes_dataset

    root = make_shapes_dataset(tmp_path_factory.mktemp("decision") / "data", per_class=30,
                               size=32, seed=3)
    classes = sorted(p.name for p in root.iterdir())
    # Chosen before any is moved: moved one class at a time, the first files of the next class
    # were the ones just moved in, and every picture went round back to its own class.
    chosen = {name: sorted((root / name).iterdir())[:6] for name in classes}
    for i, name in enumerate(classes):
        other = root / classes[(i + 1) % len(classes)]
        for path in chosen[name]:
            shutil.move(path, other / f"mislabelled-{path.name}")
    return root


def fits_its_mistakes_too(monkeypatch) -> None:
    """The solved head fits even the misfiled training pictures of `imperfect_folder`, which
    would leave phase 2 nothing to learn (`finetune_nothing_to_learn`): these tests are about
    when a running phase 2 stops, so that rule is switched off for them."""
    from finetune_gui.core.training import selection

    monkeypatch.setattr(selection, "NOTHING_TO_LEARN_LOSS", -1.0)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["can-win", "always"])
def test_fine_tuning_that_ruins_the_network_stops_at_its_first_clearly_worse_epoch(
    imperfect_folder, pretrained_base, tmp_path, monkeypatch, when
):
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training import callbacks
    from finetune_gui.core.training.callbacks import UntracedValidation
    from finetune_gui.core.training.job import TrainingJob

    scored = []  # 27 validation images: each epoch scored by calling the model, not traced
    untraced_end = UntracedValidation.on_epoch_end

    def recorded_end(self, epoch, logs=None):
        untraced_end(self, epoch, logs)
        scored.append(dict(logs))

    monkeypatch.setattr(UntracedValidation, "on_epoch_end", recorded_end)
    fits_its_mistakes_too(monkeypatch)
    # A first epoch worse by less than chance would stop at the rule after a stalled first
    # epoch (`finetune_stalled`): this test is about the clearly-worse rule.
    monkeypatch.setattr(callbacks, "finetune_stalled", lambda *args, **kwargs: "")

    # A learning rate a hundred times the usual one (1e-4): each fine-tuning epoch wrecks
    # the features the head was solved on.
    settings = TrainingSettings(
        backbone="mobilenetv2", weights=str(pretrained_base), image_size=32, epochs_head=1,
        epochs_finetune=4, unfreeze_blocks=2, lr_finetune=0.01, patience=3, augment="none",
        val_fraction=0.3, finetune_when=when, seed=0)
    said = []
    result = TrainingJob(imperfect_folder, settings, tmp_path / "run",
                         progress=lambda e: said.append(e.text) if isinstance(e, LogMessage)
                         else None).run()
    tuned = [r for r in result.history if r["phase"] == "finetune"]
    head = next(r for r in result.history if r["phase"] == "head")
    assert head["val_accuracy"] < 1.0  # so phase 2 ran at all
    assert [logs["val_accuracy"] for logs in scored] == [r["val_accuracy"] for r in tuned]
    stopped = [line for line in said if line.startswith("Fine-tuning stopped after epoch")]
    if when == "can-win":
        # It stops at the first epoch clearly below the head (how many images that takes
        # depends on the machine's arithmetic: on one CPU the first epoch, on another the
        # second), and not at one within chance of it.
        val_images = len(RunFolder.open(tmp_path / "run").split().val)
        losing = [bool(finetune_losing(r, head, val_images)) for r in tuned]
        assert losing[-1] and not any(losing[:-1]) and len(tuned) < 4
        assert stopped == [f"Fine-tuning stopped after epoch {tuned[-1]['epoch']}: validation "
                           f"accuracy {tuned[-1]['val_accuracy']:.1%} is clearly below the head "
                           f"alone ({head['val_accuracy']:.1%}), so it is not going to be kept."]
    else:
        assert len(tuned) >= 3 and not stopped  # only early stopping's patience ends it
    assert RunFolder.open(tmp_path / "run").facts.kept_model == "head-only"


def test_a_long_first_epoch_of_fine_tuning_is_looked_at_an_eighth_of_the_way():
    from finetune_gui.core.training.callbacks import first_look_step

    assert first_look_step(125) is None  # 4,000 images at batch 32: judged at the epoch's end
    assert first_look_step(160) == 20
    assert first_look_step(4375) == 546  # 140,000 images


@pytest.mark.slow
@pytest.mark.parametrize("when", ["can-win", "always"])
def test_fine_tuning_clearly_losing_at_its_first_look_stops_there_and_keeps_the_head(
    imperfect_folder, pretrained_base, tmp_path, monkeypatch, when
):
    import keras

    from finetune_gui.core.model.parts import split_classifier
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training import callbacks
    from finetune_gui.core.training.job import TrainingJob

    # 51 training images at batch 4: 13 steps, looked at after the 6th.
    monkeypatch.setattr(callbacks, "FIRST_LOOK_MIN_STEPS", 10)
    monkeypatch.setattr(callbacks, "FIRST_LOOK_SHARE", 2)
    fits_its_mistakes_too(monkeypatch)
    settings = TrainingSettings(
        backbone="mobilenetv2", weights=str(pretrained_base), image_size=32, epochs_head=1,
        epochs_finetune=1, unfreeze_blocks=2, lr_finetune=0.003, patience=3, augment="none",
        val_fraction=0.3, finetune_when=when, batch_size=4, seed=0)
    said = []
    result = TrainingJob(imperfect_folder, settings, tmp_path / "run",
                         progress=lambda e: said.append(e.text) if isinstance(e, LogMessage)
                         else None).run()
    phases = [r["phase"] for r in result.history]
    looked = [line for line in said if "of the way into epoch 2" in line]
    run = RunFolder.open(tmp_path / "run")
    if when == "always":  # no look; phase 2 runs and is kept or not on its merits
        assert not looked and phases.count("finetune") >= 1
        return
    assert run.facts.kept_model == "head-only"
    assert phases == ["head"]  # the look's part of an epoch is not an epoch
    assert looked == [looked[0]] and looked[0].startswith("Fine-tuning stopped 46% of the way "
                                                          "into epoch 2: validation accuracy")
    # What fine-tuning changed is undone: the top blocks are the pretrained ones, exactly.
    saved = split_classifier(keras.models.load_model(tmp_path / "run" / "model.keras")).base
    fresh = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    fresh.load_weights(pretrained_base)
    for got, want in zip(saved.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def prepared_runs(monkeypatch) -> list:
    """Every fine-tuning preparation a run makes (core/training/finetune_prep.py), with the
    base's trainable flags when it began and its traced steps."""
    from finetune_gui.core.training import finetune_prep

    made = []
    start = finetune_prep.FinetunePreparation.__init__

    def recorded(self, classifier, *args, **kwargs):
        self.flags_before = [layer.trainable for layer in classifier.base.layers]
        self.steps = []
        made.append(self)
        start(self, classifier, *args, **kwargs)

    traced = finetune_prep.trace_training_step

    def recorded_trace(model, dataset):
        ok = traced(model, dataset)
        made[-1].steps.extend(cell.cell_contents for cell in model.train_function.__closure__
                              if hasattr(cell.cell_contents, "experimental_get_tracing_count"))
        return ok

    monkeypatch.setattr(finetune_prep.FinetunePreparation, "__init__", recorded)
    monkeypatch.setattr(finetune_prep, "trace_training_step", recorded_trace)
    # These folders are small: their phase 1 would be too short to prepare it during.
    monkeypatch.setattr(finetune_prep, "PREPARE_MIN_ROWS_TIMES_CLASSES", 0)
    return made


def run_settings(pretrained_base, **changes):
    from finetune_gui.core.settings import TrainingSettings

    return TrainingSettings(
        backbone="mobilenetv2", weights=str(pretrained_base), image_size=32, epochs_head=1,
        epochs_finetune=2, unfreeze_blocks=2, augment="none", val_fraction=0.3, seed=0,
        **changes)


@pytest.mark.slow
def test_fine_tuning_starts_at_its_first_step_on_a_step_traced_while_phase_1_ran(
    imperfect_folder, pretrained_base, tmp_path, monkeypatch
):
    from finetune_gui.core.training.job import TrainingJob

    made = prepared_runs(monkeypatch)
    result = TrainingJob(imperfect_folder, run_settings(pretrained_base, finetune_when="always"),
                         tmp_path / "run").run()
    assert [r["phase"] for r in result.history].count("finetune") == 2
    (prepared,) = made
    assert prepared.error is None and prepared.traced and prepared.ran
    assert len(prepared.steps) == 1
    # Both epochs ran on the step traced on the other thread: fit did not trace it again.
    assert prepared.steps[0].experimental_get_tracing_count() == 1


@pytest.mark.slow
def test_a_phase_2_that_does_not_run_leaves_the_network_as_phase_1_left_it(
    imperfect_folder, pretrained_base, tmp_path, monkeypatch
):
    """A run cancelled while phase 1 solves the head never takes the fine-tuning prepared
    beside it: the trainable flags the preparation set are put back."""
    from finetune_gui.core.events import CancelToken, PhaseStarted
    from finetune_gui.core.training.job import TrainingJob

    made = prepared_runs(monkeypatch)
    stop = CancelToken()

    def progress(event):
        if isinstance(event, PhaseStarted) and event.phase == "head":
            stop.cancel()  # the search looks at it after its first strength

    result = TrainingJob(imperfect_folder, run_settings(pretrained_base, finetune_when="always"),
                         tmp_path / "run", progress=progress, cancel=stop).run()
    assert result.status == "cancelled" and result.history == []
    (prepared,) = made  # discarded: its thread joined, its flags put back
    assert [layer.trainable for layer in prepared.classifier.base.layers] == prepared.flags_before


@pytest.mark.slow
def test_a_phase_2_that_may_be_skipped_is_not_prepared_and_leaves_no_layer_trainable(
    shapes_dir, pretrained_base, tmp_path, monkeypatch
):
    """On shapes the head gets every validation image right, so fine-tuning is skipped: whether
    it runs is known only after phase 1, so nothing was prepared beside it (a preparation
    thrown away slowed phase 1), and the saved network has no trainable layer."""
    import keras

    from finetune_gui.core.model.parts import split_classifier
    from finetune_gui.core.training.job import TrainingJob

    made = prepared_runs(monkeypatch)
    said = []
    TrainingJob(shapes_dir, run_settings(pretrained_base), tmp_path / "run",
                progress=lambda e: said.append(e.text) if isinstance(e, LogMessage)
                else None).run()
    assert any(line.startswith("Fine-tuning skipped") for line in said)
    assert made == []
    saved = split_classifier(keras.models.load_model(tmp_path / "run" / "model.keras")).base
    assert not any(layer.trainable and layer.weights for layer in saved.layers)


@pytest.mark.slow
def test_a_preparation_that_fails_leaves_fine_tuning_to_prepare_itself(
    imperfect_folder, pretrained_base, tmp_path, monkeypatch
):
    from finetune_gui.core.training import finetune_prep
    from finetune_gui.core.training.job import TrainingJob

    def broken(model, dataset):
        raise RuntimeError("no trace on this thread")

    made = prepared_runs(monkeypatch)
    monkeypatch.setattr(finetune_prep, "trace_training_step", broken)
    result = TrainingJob(imperfect_folder, run_settings(pretrained_base, finetune_when="always"),
                         tmp_path / "run").run()
    assert result.status == "completed" and isinstance(made[0].error, RuntimeError)
    assert [r["phase"] for r in result.history].count("finetune") == 2


@pytest.mark.slow
def test_fine_tuning_is_not_prepared_where_the_features_outgrew_the_memory_budget(
    imperfect_folder, pretrained_base, tmp_path, monkeypatch
):
    """Prepared during phase 1, phase 2's inputs and traced step add to phase 1's peak (126 MB
    on MNIST); where the stored features are on disk the budget comes first."""
    from finetune_gui.core.training.job import TrainingJob

    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "0.1")
    monkeypatch.setenv("FINETUNE_GUI_CACHE_DIR", str(tmp_path / "cache"))
    made = prepared_runs(monkeypatch)
    result = TrainingJob(imperfect_folder, run_settings(pretrained_base, finetune_when="always"),
                         tmp_path / "run").run()
    assert made == []
    assert [r["phase"] for r in result.history].count("finetune") == 2


@pytest.fixture(scope="module")
def fitted_but_imperfect_split(tmp_path_factory):
    """A split folder whose training shapes the stand-in base's head fits to a near-zero loss,
    and whose validation part has a few pictures filed under the wrong class: the head cannot
    get every validation image right (so the validation rule does not skip phase 2), yet it has
    nothing left to learn from its training images."""
    from finetune_gui.demo import make_shapes_dataset

    root = tmp_path_factory.mktemp("fitted") / "data"
    for part, count, seed in (("train", 20, 11), ("val", 10, 12), ("test", 6, 13)):
        make_shapes_dataset(root / part, per_class=count, size=32, seed=seed)
    classes = sorted(p.name for p in (root / "val").iterdir())
    chosen = {name: sorted((root / "val" / name).iterdir())[:3] for name in classes}
    for i, name in enumerate(classes):
        for path in chosen[name]:
            path.rename(root / "val" / classes[(i + 1) % len(classes)] / f"wrong-{path.name}")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("when", ["can-win", "always"])
def test_fine_tuning_is_skipped_when_the_head_has_nothing_left_to_learn_from_its_images(
    fitted_but_imperfect_split, pretrained_base, tmp_path, when
):
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.training.job import TrainingJob
    from finetune_gui.core.training.selection import (
        NOTHING_TO_LEARN_LOSS,
        finetune_cannot_win,
    )

    said = []
    result = TrainingJob(fitted_but_imperfect_split,
                         run_settings(pretrained_base, finetune_when=when), tmp_path / "run",
                         progress=lambda e: said.append(e.text) if isinstance(e, LogMessage)
                         else None).run()
    head = result.history[0]
    # The case this rule is for: every training image right at a tiny loss, while the
    # validation mistakes alone would leave phase 2 room to win.
    assert head["phase"] == "head" and head["accuracy"] == 1.0
    assert head["loss"] <= NOTHING_TO_LEARN_LOSS and head["val_accuracy"] < 0.8
    assert finetune_cannot_win(result.history[:1], None, 30) == ""
    skipped = [line for line in said if line.startswith("Fine-tuning skipped")]
    phases = [r["phase"] for r in result.history]
    if when == "always":
        assert not skipped and phases.count("finetune") >= 1
        return
    assert phases == ["head"]
    assert skipped == [
        f"Fine-tuning skipped: the head alone already gets every training image right "
        f"(training loss {head['loss']:.4f}), so fine-tuning on the same images would have "
        f"almost nothing left to learn from them, and on real folders it then never beat the "
        f"head by more than chance. Set \"when to fine-tune\" to \"always\", or train in "
        f"exact mode with augmentation, to fine-tune all the same."]
    assert RunFolder.open(tmp_path / "run").facts.kept_model == "head-only"


@pytest.mark.slow
def test_fine_tuning_that_clearly_beats_the_head_runs_and_is_kept(
    small_shapes, pretrained_base, tmp_path
):
    """The other side of "can win": a head that has not learned its images (one epoch at a
    learning rate too small to move it) leaves phase 2 something to learn and room to win; it
    runs on its default rule and, clearly better on validation, is the model kept."""
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.training.job import TrainingJob
    from finetune_gui.core.training.selection import switch_margin

    said = []
    settings = run_settings(pretrained_base, cache_mode="exact", lr_head=1e-6,
                            lr_finetune=3e-3, patience=0).with_changes(epochs_finetune=4)
    assert settings.finetune_when == "can-win"
    result = TrainingJob(small_shapes, settings, tmp_path / "run",
                         progress=lambda e: said.append(e.text) if isinstance(e, LogMessage)
                         else None).run()
    head = result.history[0]
    tuned = [r for r in result.history if r["phase"] == "finetune"]
    assert not any(line.startswith("Fine-tuning skipped") for line in said)
    val_images = len(RunFolder.open(tmp_path / "run").split().val)
    best = max(r["val_accuracy"] for r in tuned)
    assert best > head["val_accuracy"] + switch_margin(head["val_accuracy"], val_images)
    assert RunFolder.open(tmp_path / "run").facts.kept_model == "fine-tuned"
    assert any(line.startswith("Fine-tuning kept: ") for line in said)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["can-win", "always"])
def test_fine_tuning_is_skipped_when_the_heads_search_found_closer_fits_do_not_pay(
    imperfect_folder, pretrained_base, tmp_path, monkeypatch, when
):
    """A run whose head search keeps a standardised penalty over weaker ones it tried (here
    any standardised strength may replace the plain head, and the head's fit to its own images
    does not skip phase 2 first): the decision reads the search from the run's facts, so a
    resumed run decides as the uninterrupted one."""
    from finetune_gui.core.model import softmax_head
    from finetune_gui.core.run.folder import RunFolder

    monkeypatch.setattr(softmax_head, "_needed", lambda accuracy, images: -1.0)
    fits_its_mistakes_too(monkeypatch)
    from finetune_gui.core.training.job import TrainingJob

    said = []
    result = TrainingJob(imperfect_folder, run_settings(pretrained_base, finetune_when=when),
                         tmp_path / "run",
                         progress=lambda e: said.append(e.text) if isinstance(e, LogMessage)
                         else None).run()
    search = RunFolder.open(tmp_path / "run").facts.head_l2_tried
    chosen = next(row for row in search if row["chosen"])
    assert chosen["standardised"]
    assert any(row["standardised"] and row["l2"] < chosen["l2"] for row in search)
    phases = [r["phase"] for r in result.history]
    skipped = [line for line in said if line.startswith("Fine-tuning skipped: validation kept")]
    if when == "always":
        assert not skipped and phases.count("finetune") >= 1
        return
    assert phases == ["head"] and len(skipped) == 1
    assert f"the head at L2 {chosen['l2']:g}" in skipped[0]
    assert RunFolder.open(tmp_path / "run").facts.kept_model == "head-only"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["can-win", "always", "exact"])
def test_fine_tuning_whose_first_epoch_is_no_better_than_the_head_stops_there(
    imperfect_folder, pretrained_base, tmp_path, monkeypatch, mode
):
    """Phase 2 from a head solved on its own images (speed mode) whose first epoch is no
    better than the head on validation by either measure stops after it; set to "always", or
    in exact mode (a head trained for an epoch, not solved; here without augmentation, so on
    the same images), it goes on. The first epoch is made worse with a
    learning rate a hundred times the usual one, and the clearly-worse rule is switched off,
    so this rule alone decides."""
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.training import callbacks
    from finetune_gui.core.training.job import TrainingJob

    monkeypatch.setattr(callbacks, "finetune_losing", lambda *args, **kwargs: "")
    fits_its_mistakes_too(monkeypatch)
    changes = {"finetune_when": "always"} if mode == "always" else {}
    if mode == "exact":
        changes = {"cache_mode": "exact"}
    settings = run_settings(pretrained_base, lr_finetune=0.01, patience=3).with_changes(
        epochs_finetune=4, **changes)
    said = []
    result = TrainingJob(imperfect_folder, settings,
                         tmp_path / "run",
                         progress=lambda e: said.append(e.text) if isinstance(e, LogMessage)
                         else None).run()
    head = next(r for r in result.history if r["phase"] == "head")
    tuned = [r for r in result.history if r["phase"] == "finetune"]
    stalled = [line for line in said if "its first pass over the images" in line]
    assert RunFolder.open(tmp_path / "run").facts.kept_model == "head-only"
    if mode != "can-win":
        assert not stalled and len(tuned) >= 3  # only early stopping's patience ends it
        return
    val_images = len(RunFolder.open(tmp_path / "run").split().val)
    right, head_right = (round(r["val_accuracy"] * val_images) for r in (tuned[0], head))
    assert right <= head_right and tuned[0]["val_loss"] > head["val_loss"]
    assert len(tuned) == 1
    assert stalled == [finetune_stalled([head, tuned[0]], head, val_images)]
