"""Cancel at any moment: the scan, building the feature cache, evaluation."""

from __future__ import annotations

import json

import pytest

from finetune_gui.core.data.scan import scan_folder
from finetune_gui.core.errors import Cancelled
from finetune_gui.core.events import CancelToken, StageProgress, StageStarted
from finetune_gui.core.run.folder import RunFolder
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.job import TrainingJob


def cancel_when(stage: str, token: CancelToken, seen: list):
    def progress(event):
        seen.append(event)
        if isinstance(event, StageStarted | StageProgress) and event.stage == stage:
            token.cancel()

    return progress


def test_cancelling_a_scan_stops_it(small_shapes):
    token, seen = CancelToken(), []
    with pytest.raises(Cancelled):
        scan_folder(
            small_shapes, progress=cancel_when("scan", token, seen), cancel=token, workers=1
        )
    done = [e.done for e in seen if isinstance(e, StageProgress)]
    assert done and done[-1] < 36


def _settings(weights):
    return TrainingSettings(
        backbone="mobilenetv2", weights=str(weights), image_size=48, epochs_head=2,
        epochs_finetune=1, batch_size=8, augment="light", seed=7,
    )  # fmt: skip


def test_cancelling_while_the_frozen_layers_are_computed(small_shapes, pretrained_base, tmp_path):
    token, seen = CancelToken(), []
    job = TrainingJob(small_shapes, _settings(pretrained_base), tmp_path / "run",
                      progress=cancel_when("extract", token, seen), cancel=token)  # fmt: skip
    result = job.run()
    assert result.status == "cancelled" and result.history == []
    extracted = [e for e in seen if isinstance(e, StageProgress) and e.stage == "extract"]
    assert len(extracted) <= 1  # stopped at the next batch
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "cancelled"
    assert not (tmp_path / "run" / "model.keras").exists()


def test_cancelling_during_evaluation_keeps_the_trained_model(
    small_shapes, pretrained_base, tmp_path
):
    token, seen = CancelToken(), []
    job = TrainingJob(small_shapes, _settings(pretrained_base), tmp_path / "run",
                      progress=cancel_when("evaluate", token, seen), cancel=token)  # fmt: skip
    result = job.run()
    # The head is solved in one step (one history row), then the one fine-tuning epoch unless
    # the head already got every validation image right.
    phases = [r["phase"] for r in result.history]
    assert result.status == "cancelled" and phases[0] == "head" and set(phases[1:]) <= {"finetune"}
    assert "best weights (epoch" in result.message
    run = RunFolder.open(tmp_path / "run")
    assert run.status == "cancelled" and run.report is None
    assert run.load_model().output_shape == (None, 3)
