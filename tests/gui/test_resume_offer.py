"""Reopening a project after training was interrupted offers to resume it, and resuming works."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finetune_gui.core.project import Project
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.checkpoint import interrupted_runs
from finetune_gui.demo import make_shapes_dataset

pytestmark = pytest.mark.slow


def _epochs_written(run: Path) -> int:
    if not (run / "history.csv").exists():
        return 0
    with open(run / "history.csv") as handle:
        return len(list(csv.DictReader(handle)))


def _killed_run(runs_root: Path, data: Path, weights: Path):
    """A training process really killed (`kill -9`) after its second epoch: what a crash or a
    power cut leaves (checkpoint written, run.json still "running", no model yet)."""
    settings = TrainingSettings(
        backbone="mobilenetv3small", weights=str(weights), image_size=32, epochs_head=3,
        epochs_finetune=2, unfreeze_blocks=1, batch_size=8, augment="none", patience=0,
        cache_mode="exact",
    )  # fmt: skip
    runs_root.mkdir(exist_ok=True)
    run = runs_root / "20261123-000000-mobilenetv3small"
    command = [
        sys.executable, "-m", "finetune_gui", "train", str(data), "--out", str(run),
        "--backbone", "mobilenetv3small", "--weights", str(weights), "--image-size", "32",
        "--epochs-head", "3", "--epochs-finetune", "2", "--unfreeze-blocks", "1",
        "--batch-size", "8", "--augment", "none", "--patience", "0", "--mode", "exact",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while _epochs_written(run) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "training ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    assert not (run / "model.keras").exists()
    return run, settings, _epochs_written(run)


def test_reopening_a_project_offers_to_resume_and_resuming_finishes_the_run(
    qtbot, make_window, tmp_path, base_weights_file
):
    data = make_shapes_dataset(tmp_path / "data", per_class=10, size=32, seed=2)
    run, settings, done = _killed_run(tmp_path / "runs", data, base_weights_file)
    assert 2 <= done < 5
    assert interrupted_runs(tmp_path / "runs") == [run]
    project = Project(data, settings, [], []).save(tmp_path / "p")

    window = make_window(start=False)
    assert window.open_project(project)
    box = window.last_dialog
    assert box.windowTitle() == "Resume training?"
    assert f"interrupted after epoch {done}" in box.text()

    train_page = window.pages["train"]
    resume = next(b for b in box.buttons() if b.text() == "Resume")
    with qtbot.waitSignal(train_page.run_finished, timeout=240_000) as finished:
        resume.click()
    assert finished.args == ["completed"]
    facts = json.loads((run / "run.json").read_text())
    assert facts["status"] == "completed" and (run / "model.keras").exists()
    with open(run / "history.csv") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [1, 2, 3, 4, 5]
    # The curves show the whole run, the epochs before the interruption too.
    assert train_page.curves.point_count("loss") == 5
    assert interrupted_runs(tmp_path / "runs") == []
