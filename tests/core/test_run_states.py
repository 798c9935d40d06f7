"""Every run folder is listed whatever its state, and only runs that can continue are offered
for resume (no TensorFlow needed: the folders are written as the training job writes them)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from finetune_gui.core.project import Project
from finetune_gui.core.run.folder import (
    list_run_folders,
    mark_interrupted,
    resumable_runs,
    run_state,
)
from finetune_gui.core.settings import TrainingSettings


def _ended_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _run(root, name, status, *, pid=None, checkpoint=True, host=None, split=True):
    run = root / name
    (run / "checkpoint").mkdir(parents=True)
    (run / "settings.json").write_text("{}")
    if split:  # written before the first epoch starts
        (run / "split.json").write_text("{}")
    facts = {"status": status, "pid": pid if pid is not None else _ended_pid(),
             "host": host or socket.gethostname()}
    (run / "run.json").write_text(json.dumps(facts))
    if checkpoint:
        (run / "checkpoint" / "state.json").write_text('{"epochs_done": 2}')
    return run


def test_each_state_is_named_and_only_interrupted_runs_are_resumable(tmp_path):
    root = tmp_path / "runs"
    done = _run(root, "a-done", "completed")
    cancelled = _run(root, "b-cancelled", "cancelled")
    failed = _run(root, "c-failed", "failed")
    killed = _run(root, "d-killed", "running")  # its process is gone
    alive = _run(root, "e-alive", "running", pid=os.getpid())  # still training
    elsewhere = _run(root, "f-elsewhere", "running", host="another-machine")
    early = _run(root, "g-early", "running", checkpoint=False)  # killed before epoch 1
    unsplit = _run(root, "h-unsplit", "running", checkpoint=False, split=False)  # while scanning
    (root / "not-a-run").mkdir()
    (root / "stray.txt").write_text("x")

    assert {p.name for p in list_run_folders(root)} == {
        "a-done", "b-cancelled", "c-failed", "d-killed", "e-alive", "f-elsewhere", "g-early",
        "h-unsplit"}
    states = [run_state(p) for p in (done, cancelled, failed, killed, alive, elsewhere, early,
                                     unsplit)]  # fmt: skip
    # Killed before its first epoch, it starts again with the split it recorded; killed before
    # the split was written, there is nothing to start from.
    assert states == ["completed", "cancelled", "failed", "interrupted", "running", "running",
                      "interrupted", "failed"]  # fmt: skip
    assert set(resumable_runs(root)) == {killed, early}
    assert list_run_folders(tmp_path / "missing") == []


def test_a_run_stopped_by_closing_the_window_becomes_resumable_but_a_finished_one_does_not(
    tmp_path,
):
    cancelled = _run(tmp_path, "cancelled", "cancelled")
    finished = _run(tmp_path, "finished", "completed")
    early = _run(tmp_path, "early", "cancelled", checkpoint=False)
    unsplit = _run(tmp_path, "unsplit", "cancelled", checkpoint=False, split=False)
    assert mark_interrupted(cancelled, "Stopped when the window was closed.")
    assert not mark_interrupted(finished, "Stopped when the window was closed.")
    assert mark_interrupted(early, "Stopped when the window was closed.")  # starts again
    assert not mark_interrupted(unsplit, "Stopped when the window was closed.")
    assert run_state(cancelled) == "interrupted" and run_state(finished) == "completed"
    assert run_state(early) == "interrupted" and run_state(unsplit) == "cancelled"
    facts = json.loads((cancelled / "run.json").read_text())
    assert facts["message"] == "Stopped when the window was closed."
    assert set(resumable_runs(tmp_path)) == {cancelled, early}


def test_an_autosaved_project_remembers_the_project_file_it_copies(tmp_path):
    project = Project(tmp_path, TrainingSettings(), [tmp_path / "runs" / "r1"], [],
                      origin=tmp_path / "mine.ftproj")
    saved = project.save(tmp_path / "autosave.ftproj")
    again = Project.load(saved)
    assert again.origin == tmp_path / "mine.ftproj"
    assert again.runs == [tmp_path / "runs" / "r1"]
    plain = Project.load(Project(tmp_path).save(tmp_path / "plain.ftproj"))
    assert plain.origin is None


def test_run_json_is_read_as_a_typed_record_and_unknown_keys_survive_a_rewrite(tmp_path):
    """Older runs lack fields (they read as defaults); a newer run's keys are kept as written
    when this version changes its status."""
    from finetune_gui.core.run.record import RunFacts, read_facts

    run = _run(tmp_path, "run", "cancelled")
    facts = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**facts, "calibration": {"ece": 0.03},
                                              "best_epoch": 4}))
    record = read_facts(run)
    assert isinstance(record, RunFacts) and record.best_epoch == 4
    assert record.head_refit is None and record.kept_model is None and record.chosen_head is None
    assert mark_interrupted(run, "Stopped when the window was closed.")
    rewritten = json.loads((run / "run.json").read_text())
    assert rewritten["calibration"] == {"ece": 0.03} and rewritten["status"] == "interrupted"
    assert read_facts(tmp_path / "missing") == RunFacts()
    (run / "run.json").write_text("{half")
    assert read_facts(run) == RunFacts() and run_state(run) == "empty"  # listed, not a crash
