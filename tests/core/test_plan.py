"""The phase plan the window shows is the one the engine runs; new run folders never collide."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from finetune_gui.core.model.build import ALL_BLOCKS
from finetune_gui.core.run.naming import new_run_dir
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.phases import PhaseTrainer
from finetune_gui.core.training.plan import (
    phase_plan,
    phases_to_train,
    plan_summary,
    planned_epochs,
    remaining_phases,
)


@pytest.mark.parametrize(
    "changes,summary",
    [
        ({}, "the new head solved in one step, then up to 5 epochs fine-tuning the top 2 "
             "blocks, only if it can still beat the head alone"),
        ({"finetune_when": "always"},
         "the new head solved in one step, then 5 epochs fine-tuning the top 2 blocks"),
        ({"dense_units": 64, "epochs_finetune": 0},
         "the new head until validation stops improving (at most 200 epochs)"),
        ({"cache_mode": "exact", "epochs_finetune": 0}, "5 epochs for the new head"),
        ({"weights": "none", "epochs_head": 3, "epochs_finetune": 1},
         "4 epochs training the whole network from scratch"),
        ({"epochs_head": 1, "unfreeze_blocks": 1, "epochs_finetune": 2},
         "the new head solved in one step, then up to 2 epochs fine-tuning the top 1 block, "
         "only if it can still beat the head alone"),
        ({"epochs_finetune": 0}, "the new head solved in one step"),
        ({"unfreeze_blocks": 0},
         "the new head solved in one step; no fine-tuning: 0 blocks are set to be unfrozen"),
        ({"epochs_head": 0}, "5 epochs fine-tuning the top 2 blocks"),
    ],
)
def test_the_plan_is_said_in_plain_words_and_matches_the_engine(changes, summary):
    settings = TrainingSettings(**changes)
    assert plan_summary(settings) == summary
    # The engine's own phase sequence (phases with epochs), read from the phase trainer.
    quiet = SimpleNamespace(settings=settings, progress=lambda event: None, resumed=False,
                            ledger=SimpleNamespace(history=[]))
    engine = [p for p in PhaseTrainer.phases(quiet) if p.epochs]
    assert phase_plan(settings) == engine
    assert planned_epochs(settings) == sum(p.epochs for p in engine)


def rows(*phases: str) -> list[dict]:
    return [{"epoch": i + 1, "phase": phase} for i, phase in enumerate(phases)]


def test_a_resumed_run_trains_only_what_its_history_has_not_done():
    settings = TrainingSettings(dense_units=64, epochs_finetune=5)  # head trained by epochs
    plan = phase_plan(settings)
    left = lambda done: [(p.phase, p.epochs) for p in remaining_phases(plan, done)]  # noqa: E731
    assert left(rows("head", "head")) == [("head", 198), ("finetune", 5)]
    # The head stopped early after 7 epochs, then 2 fine-tuning epochs ran: only 3 remain, and
    # the head (far below its 200-epoch limit) is not trained again.
    assert left(rows(*["head"] * 7, "finetune", "finetune")) == [("head", 0), ("finetune", 3)]
    solved = phase_plan(TrainingSettings())
    assert [(p.phase, p.epochs) for p in remaining_phases(solved, rows("head"))] == [
        ("head", 0), ("finetune", 5)]  # fmt: skip


def test_the_engine_says_what_the_settings_leave_out():
    said = []
    phases_to_train(TrainingSettings(unfreeze_blocks=0), [], said.append)
    assert [e.text for e in said] == ["Fine-tuning skipped: 0 blocks are set to be unfrozen."]


def test_from_scratch_unfreezes_everything_at_the_head_rate():
    (only,) = phase_plan(TrainingSettings(weights="none", lr_head=0.01))
    assert (only.phase, only.unfrozen_blocks, only.learning_rate) == ("scratch", ALL_BLOCKS, 0.01)


def test_new_run_folders_are_named_by_time_and_backbone_and_never_reused(tmp_path, monkeypatch):
    import finetune_gui.core.run.naming as naming

    monkeypatch.setattr(naming.time, "strftime", lambda fmt: "20260114-093000")
    first = new_run_dir(tmp_path, "resnet50")
    assert first.parent == tmp_path and first.name.endswith("-resnet50") and not first.exists()
    first.mkdir()
    second = new_run_dir(tmp_path, "resnet50")
    assert second != first and not second.exists()
    assert (first.name, second.name) == ("20260114-093000-resnet50", "20260114-093000-resnet50-2")
