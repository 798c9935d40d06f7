"""A run keeps the head alone when fine-tuning does not beat it, and --auto picks on validation."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest

from finetune_gui.core.data.scan import scan_folder
from finetune_gui.core.data.split import split_dataset
from finetune_gui.core.errors import Cancelled
from finetune_gui.core.events import CancelToken, LogMessage
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training import auto
from finetune_gui.core.training.auto import (
    CANDIDATES,
    DEEP_FINETUNE,
    BudgetCancel,
    Trial,
    auto_train,
    choose_settings,
    chosen_trial,
)
from finetune_gui.core.training.job import TrainingJob


def settings(weights, **changes) -> TrainingSettings:
    base = dict(
        backbone="mobilenetv2", weights=str(weights), image_size=48, epochs_head=3,
        epochs_finetune=2, unfreeze_blocks=1, batch_size=16, augment="none", seed=0,
    )  # fmt: skip
    return TrainingSettings(**{**base, **changes})


def with_wrong_labels(data):
    """`data` with every third image of each class moved into the next class's folder."""
    classes = sorted(p.name for p in data.iterdir() if p.is_dir())
    # Chosen before any is moved, so no picture moves twice (or back to its own class).
    chosen = {name: sorted((data / name).iterdir())[::3] for name in classes}
    for index, name in enumerate(classes):
        target = data / classes[(index + 1) % len(classes)]
        for image in chosen[name]:
            image.rename(target / f"wrong_{image.name}")
    return data


def test_a_head_that_gets_every_validation_image_right_skips_fine_tuning_and_says_so(
    shapes_dir, pretrained_base, tmp_path
):
    # The pictures the stand-in base was pretrained on: its features separate them by a wide
    # margin on any CPU (a tiny folder of new pictures left the head one image short of
    # perfect with oneDNN's kernels on an AVX-512 CPU, and fine-tuning ran).
    logs = []
    result = TrainingJob(
        shapes_dir, settings(pretrained_base), tmp_path / "run",
        progress=lambda e: logs.append(e.text) if isinstance(e, LogMessage) else None,
    ).run()  # fmt: skip
    assert result.status == "completed"
    assert [r["phase"] for r in result.history] == ["head"]
    assert result.history[0]["val_accuracy"] == 1.0
    print("validation loss of the perfect head:", result.history[0]["val_loss"])
    assert any(text.startswith("Fine-tuning skipped: the head alone already gets every "
                               "validation image right") for text in logs)
    facts = json.loads((tmp_path / "run" / "run.json").read_text())
    assert facts["kept_model"] == "head-only" and facts["head_refit"]["images"] > 0
    # features.npz's rows came from the stored pooled features (the base never changed): they
    # are what the saved model itself sees.
    from finetune_gui.core.data.pipeline import decode_images
    from finetune_gui.core.run.dataset_features import load_cached, probe, probe_model
    from finetune_gui.core.run.folder import RunFolder

    run = RunFolder.open(tmp_path / "run")
    kept = load_cached(run)
    train = kept.of_part("train")
    images = decode_images([kept.paths[i] for i in np.flatnonzero(train)], 48)
    model = run.load_model()
    for got, want in zip((kept.early[train], kept.features[train], kept.probabilities[train]),
                         probe(probe_model(model), images, 3), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * float(np.abs(want).max()))


def test_fine_tuning_that_does_not_beat_the_head_is_undone_and_said(
    small_shapes, pretrained_base, tmp_path
):
    import keras

    from finetune_gui.core.model.parts import split_classifier

    logs = []
    # A learning rate too small to change anything: fine-tuning cannot beat the solved head.
    # Some wrong labels keep the head from getting every validation image right, which would
    # skip fine-tuning altogether; "always", since whether the head's few mistakes leave
    # fine-tuning room to win by more than chance depends on the machine's arithmetic.
    run = settings(pretrained_base, lr_finetune=1e-9, finetune_when="always")
    result = TrainingJob(
        with_wrong_labels(small_shapes), run, tmp_path / "run",
        progress=lambda e: logs.append(e.text) if isinstance(e, LogMessage) else None,
    ).run()  # fmt: skip
    assert result.history[0]["val_accuracy"] < 1.0
    assert [r["phase"] for r in result.history] == ["head", "finetune", "finetune"]
    facts = json.loads((tmp_path / "run" / "run.json").read_text())
    assert facts["kept_model"] == "head-only" and facts["best_epoch"] == 1
    assert any("so the head-only model is kept" in text for text in logs)
    # The top block is back to its pretrained weights, exactly.
    saved = split_classifier(keras.models.load_model(tmp_path / "run" / "model.keras")).base
    fresh = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(48, 48, 3))
    fresh.load_weights(pretrained_base)
    for a, b in zip(saved.weights, fresh.weights, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    # Phase 1 was solved, not trained for 3 epochs: one row, the head chosen on validation
    # (the plain logistic regression first; no head beats the best validation accuracy).
    assert len(result.history) == 3 and facts["head_l2_tried"][0]["standardised"] is False
    assert result.history[0]["val_accuracy"] <= max(
        r["val_accuracy"] for r in facts["head_l2_tried"]
    )


def test_auto_never_reads_the_test_images_while_choosing(small_shapes, pretrained_base, tmp_path):
    split = split_dataset(scan_folder(small_shapes), 0.25, 0.25, 0)
    for path, _ in split.test:
        path.unlink()  # any trial that touched the test part would fail to decode it
    chosen, trials = choose_settings(
        split, settings(pretrained_base), budget_minutes=30,
        candidates=({}, {"head_reads": "last-block"}),
    )  # fmt: skip
    assert [t.changes for t in trials] == [{}, {"head_reads": "last-block"}]
    best = chosen_trial(trials, len(split.val))
    assert chosen == settings(pretrained_base).with_changes(**best.changes)
    assert all(t.val_accuracy is not None for t in trials)


def test_auto_does_not_run_a_trial_that_could_only_end_as_the_settings_as_given(
    shapes_dir, pretrained_base, tmp_path
):
    """The head gets every validation image right, so the settings as given skip fine-tuning:
    a trial that changes only fine-tuning would solve the same head and skip it again. It is
    said and not run; one that changes the head still runs."""
    from finetune_gui.core.training.inputs import resolve_split

    # The split a run makes of it: its head gets every validation image right (above).
    split = resolve_split(shapes_dir, settings(pretrained_base), frozenset(), lambda e: None,
                          None)
    said = []
    chosen, trials = choose_settings(
        split, settings(pretrained_base), budget_minutes=30,
        progress=lambda e: said.append(e.text) if isinstance(e, LogMessage) else None,
        candidates=({}, {"unfreeze_blocks": 2, "lr_finetune": 3e-4}, {"epochs_finetune": 0},
                    {"head_reads": "last-block"}),
    )  # fmt: skip
    assert trials[0].kept == "head-only" and trials[0].val_accuracy == 1.0
    assert [t.changes for t in trials] == [{}, {"head_reads": "last-block"}]
    skipped = [text for text in said if text.startswith("Not tried: ")]
    assert len(skipped) == 2
    assert skipped[0].startswith("Not tried: top 2 blocks, lr 0.0003. It would solve the same "
                                 "head as the settings as given and end as they did: "
                                 "Fine-tuning skipped: the head alone already gets every "
                                 "validation image right")
    assert skipped[1].startswith("Not tried: head only.")
    assert chosen == settings(pretrained_base)


@pytest.mark.parametrize("changes, history, given, ends", [
    ({"unfreeze_blocks": 4}, "perfect", {}, True),
    ({"lr_finetune": 3e-5, "l2": 1e-4, "dropout": 0.5}, "fits its images", {}, True),
    ({"epochs_finetune": 0}, "a losing first look", {}, True),
    ({"unfreeze_blocks": 4}, "a losing first look", {}, False),  # another depth may win
    ({"unfreeze_blocks": 4}, "fine-tuned", {}, False),
    ({"head_reads": "last-block"}, "perfect", {}, False),  # another head
    ({"cache_mode": "exact", "unfreeze_blocks": 13}, "perfect", {}, False),
    ({"unfreeze_blocks": 4}, "perfect", {"finetune_when": "always"}, False),
    ({"unfreeze_blocks": 4}, "perfect", {"dense_units": 64}, False),  # a trained head
])
def test_a_trial_is_left_out_only_where_its_head_and_its_fine_tuning_end_as_given(
        changes, history, given, ends):
    head = {"phase": "head", "epoch": 1, "val_loss": 0.2, "accuracy": 0.9, "loss": 0.4}
    rows = {
        "perfect": [{**head, "val_accuracy": 1.0}],
        "fits its images": [{**head, "val_accuracy": 0.8, "accuracy": 1.0, "loss": 0.01}],
        "a losing first look": [{**head, "val_accuracy": 0.8}],
        "fine-tuned": [{**head, "val_accuracy": 0.8},
                       {**head, "phase": "finetune", "epoch": 2, "val_accuracy": 0.9}],
    }[history]
    tried = TrainingSettings(**given).with_changes(**changes)
    assert bool(auto.ends_as_given(rows, tried, changes, 40)) is ends


def test_auto_also_tries_the_head_reading_the_last_block_only_and_says_so():
    """On pictures like the base's own the classic head may do better: --auto tries it early
    (third, after the settings as given and the head alone) and its table names it."""
    assert CANDIDATES.index({"head_reads": "last-block"}) == 2
    given = TrainingSettings(unfreeze_blocks=2, lr_finetune=1e-4)
    label = Trial({"head_reads": "last-block"}, 0.9, 0.3, "head-only", 1.0).label(given)
    assert label == "top 2 blocks, lr 0.0001, head reads last block"
    head_only = Trial({"head_reads": "last-block", "epochs_finetune": 0}, 0.9, 0.3, "head-only", 1)
    assert head_only.label(given) == "head only, head reads last block"
    assert Trial({}, 0.9, 0.3, "head-only", 1.0).label(given) == "top 2 blocks, lr 0.0001"


def test_auto_tries_the_careful_full_fine_tune_last_and_names_it():
    """The anchor of docs/benchmarks.md (most of the network unfrozen, a new augmented
    version of each image every epoch) is a candidate, the costliest, so the last."""
    assert CANDIDATES[-1] == DEEP_FINETUNE
    assert DEEP_FINETUNE == {"cache_mode": "exact", "unfreeze_blocks": 13, "epochs_finetune": 12}
    label = Trial(DEEP_FINETUNE, 0.9, 0.3, "fine-tuned", 1.0).label(TrainingSettings())
    assert label == "top 13 blocks, lr 0.0001, 12 epochs, exact mode"


def test_a_trial_that_outlasts_the_budget_stops_and_is_not_counted(
    small_shapes, pretrained_base, monkeypatch
):
    """Each check of the clock moves it on a second: the settings as given finish whatever
    the budget, the next trial starts inside it and is stopped at its first batches."""
    ticks = iter(range(10**6))
    monkeypatch.setattr(auto, "time", SimpleNamespace(monotonic=lambda: float(next(ticks))))
    split = split_dataset(scan_folder(small_shapes), 0.25, 0.25, 0)
    said = []
    chosen, trials = choose_settings(
        split, settings(pretrained_base, epochs_finetune=0), budget_minutes=10 / 60,
        progress=said.append, candidates=({}, DEEP_FINETUNE),
    )  # fmt: skip
    assert [t.changes for t in trials] == [{}]
    assert chosen == settings(pretrained_base, epochs_finetune=0)
    lines = [e.text for e in said if isinstance(e, LogMessage)]
    assert "Time budget reached during trial 2 (top 13 blocks, lr 0.0001, 12 epochs, exact mode); " \
        "it is not counted." in lines


def test_the_budget_stops_a_trial_as_the_user_would():
    user = CancelToken()
    assert not BudgetCancel(user, deadline=time.monotonic() + 60).cancelled
    assert BudgetCancel(user, deadline=time.monotonic() - 1).cancelled
    assert BudgetCancel(None, deadline=time.monotonic() - 1).cancelled
    user.cancel()
    stop = BudgetCancel(user, deadline=time.monotonic() + 60)
    assert stop.cancelled
    with pytest.raises(Cancelled):
        stop.raise_if_cancelled()


def test_auto_train_saves_the_chosen_settings_and_the_table(
    small_shapes, pretrained_base, tmp_path
):
    result = auto_train(
        small_shapes, settings(pretrained_base), tmp_path / "run", budget_minutes=0.01
    )
    assert result.status == "completed"
    facts = json.loads((tmp_path / "run" / "run.json").read_text())
    trials = facts["auto_trials"]
    assert len(trials) == 1 and trials[0]["chosen"]  # the budget allowed only the first trial
    saved = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert TrainingSettings.from_dict(saved) == settings(pretrained_base)
    assert "Settings tried (* chosen)" in result.message and "* top 1 blocks" in result.message


def test_kfold_adds_an_estimate_over_training_and_validation_images(
    small_shapes, pretrained_base, tmp_path
):
    from finetune_gui.core.run.evaluation import format_report

    run = settings(pretrained_base, epochs_finetune=0)
    result = TrainingJob(small_shapes, run, tmp_path / "run", kfold=True).run()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    kfold = metrics["kfold"]
    counts = json.loads((tmp_path / "run" / "run.json").read_text())["counts"]
    assert kfold["images"] == counts["train"] + counts["val"]
    assert 0.0 <= kfold["interval"][0] <= kfold["accuracy"] <= kfold["interval"][1] <= 1.0
    assert f"-fold estimate on all {kfold['images']} training and validation images" in (
        format_report(result.report)
    )


def test_kfold_without_a_test_split_is_in_run_json_and_the_last_message(
    small_shapes, pretrained_base, tmp_path
):
    run = settings(pretrained_base, epochs_finetune=0, test_fraction=0)
    result = TrainingJob(small_shapes, run, tmp_path / "run", kfold=True).run()
    assert result.status == "completed" and result.report is None
    assert not (tmp_path / "run" / "metrics.json").exists()
    kfold = json.loads((tmp_path / "run" / "run.json").read_text())["kfold"]
    assert kfold["images"] == 36  # every image is a training or validation image
    assert "-fold estimate on all 36 training and validation images" in result.message
    assert f"{kfold['accuracy']:.1%}" in result.message
