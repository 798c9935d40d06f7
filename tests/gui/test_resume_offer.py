"""Reopening a project after training was interrupted offers to resume it, and resuming works."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from finetune_gui.core.project import Project
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.checkpoint import interrupted_runs
from finetune_gui.core.training.job import TrainingJob
from finetune_gui.demo import make_shapes_dataset


def dead_pid() -> int:
    """The id of a process that has ended (as a killed training process has)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _interrupted_run(runs_root, data, weights):
    """What `kill -9` after epoch 2 leaves (tests/e2e/test_resume.py kills a real process and
    checks this same state): checkpoint written, run.json still "running", no model yet."""
    settings = TrainingSettings(
        backbone="mobilenetv3small", weights=str(weights), image_size=32, epochs_head=2,
        epochs_finetune=1, unfreeze_blocks=1, batch_size=16, augment="none", patience=0,
    )  # fmt: skip
    runs_root.mkdir(exist_ok=True)
    run = runs_root / "20261123-000000-mobilenetv3small"
    TrainingJob(data, settings, run).run()
    with open(run / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    with open(run / "history.csv", "w", newline="") as handle:  # as if killed after epoch 2
        writer = csv.DictWriter(handle, rows[0].keys())
        writer.writeheader()
        writer.writerows(rows[:2])
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    state["epochs_done"] = 2
    (run / "checkpoint" / "state.json").write_text(json.dumps(state))
    facts = json.loads((run / "run.json").read_text())
    facts["status"] = "running"
    facts["pid"] = dead_pid()  # the killed process
    (run / "run.json").write_text(json.dumps(facts))
    for name in ("model.keras", "metrics.json"):
        (run / name).unlink()
    return run, settings


def test_reopening_a_project_offers_to_resume_and_resuming_finishes_the_run(
    qtbot, make_window, tmp_path, base_weights_file
):
    data = make_shapes_dataset(tmp_path / "data", per_class=10, size=32, seed=2)
    run, settings = _interrupted_run(tmp_path / "runs", data, base_weights_file)
    assert interrupted_runs(tmp_path / "runs") == [run]
    project = Project(data, settings, [], []).save(tmp_path / "p")

    window = make_window(start=False)
    assert window.open_project(project)
    box = window.last_dialog
    assert box.windowTitle() == "Resume training?"
    assert "interrupted after epoch 2" in box.text()

    train_page = window.pages["train"]
    resume = next(b for b in box.buttons() if b.text() == "Resume")
    with qtbot.waitSignal(train_page.run_finished, timeout=240_000) as finished:
        resume.click()
    assert finished.args == ["completed"]
    facts = json.loads((run / "run.json").read_text())
    assert facts["status"] == "completed" and (run / "model.keras").exists()
    with open(run / "history.csv") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [1, 2, 3]
    # The curves show the whole run, the two epochs before the interruption too.
    assert train_page.curves.point_count("loss") == 3
    assert interrupted_runs(tmp_path / "runs") == []
