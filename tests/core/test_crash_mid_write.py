"""A crash or a full disk in the middle of writing a file leaves the file as it was.

The README: "Every file is written to a temporary name and renamed, so a crash never leaves half
a model." Each test writes a file once, then has a child process write it again while the kernel
stops the write halfway (tests/crash_writes.py: a file size limit set the moment the write opens
its file): the process is killed there (a crash) or the write fails (a full disk). The old file
must be byte for byte what it was, and the app must still read it; a full disk leaves nothing
else behind, a crash at most a hidden temporary file beside it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_gui.core.project import Project
from finetune_gui.core.run.record import RUN_FILE, read_facts, update_facts

ROOT = Path(__file__).resolve().parents[2]
HOW = ("killed", "disk-full")


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def write_cut_halfway(case: str, target: Path, how: str, argument: str = "") -> str:
    """Run the app's write of `case` onto `target` in a child process, stopped by the kernel
    once a file beside `target` reaches half the old file's size. Returns what the child said."""
    limit = target.stat().st_size // 2
    done = subprocess.run(
        [sys.executable, "-m", "tests.crash_writes", case, str(target), str(limit), how, argument],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    # The write must really have been cut: otherwise this test would prove nothing.
    if how == "killed":
        assert done.returncode == -signal.SIGXFSZ, (
            f"the child was not killed mid-write (exit {done.returncode}): {done.stdout}{done.stderr}")
    else:
        assert done.returncode == 3, (
            f"the write did not fail (exit {done.returncode}): {done.stdout}{done.stderr}")
    return done.stdout


def assert_left_as_it_was(folder: Path, before: dict[str, bytes], how: str) -> None:
    after = files_in(folder)
    for name, data in before.items():
        assert after.get(name) == data, (
            f"{name} changed: {len(data)} bytes before, "
            f"{len(after.get(name, b''))} after the interrupted write")
    extra = sorted(set(after) - set(before))
    if how == "disk-full":
        assert extra == [], f"a failed write left files behind: {extra}"
    else:  # a killed process cannot clean up; what it leaves is a hidden temporary name
        assert all(name.startswith(".") for name in extra), f"partial files left: {extra}"


@pytest.mark.parametrize("how", HOW)
def test_a_run_file_cut_halfway_keeps_the_old_run_json(tmp_path, how):
    run = tmp_path / "run"
    run.mkdir()
    update_facts(run, status="running", message="Training: epoch 3 of 8.", best_epoch=2)
    before = files_in(run)
    said = write_cut_halfway("run-file", run / RUN_FILE, how, "Finished. " * 200)
    assert_left_as_it_was(run, before, how)
    facts = read_facts(run)
    assert (facts.status, facts.message, facts.best_epoch) == ("running", "Training: epoch 3 of 8.", 2)
    if how == "disk-full":
        assert "Cannot write" in said and RUN_FILE in said  # one plain line for the user


@pytest.mark.parametrize("how", HOW)
def test_a_project_cut_halfway_keeps_the_old_project(tmp_path, how):
    target = tmp_path / "mine.ftproj"
    old = Project(data_dir=tmp_path / "photos", runs=[tmp_path / "runs" / "first"])
    old.save(target)
    before = files_in(tmp_path)
    write_cut_halfway("project", target, how, "second")
    assert_left_as_it_was(tmp_path, before, how)
    loaded = Project.load(target)
    assert loaded.runs == [tmp_path / "runs" / "first"]
    assert loaded.data_dir == tmp_path / "photos"


@pytest.mark.parametrize("how", HOW)
def test_a_model_cut_halfway_keeps_the_old_model_keras(tmp_path, how):
    import keras
    import numpy as np
    from tests.crash_writes import small_model

    from finetune_gui.core.run.folder import MODEL_FILE, save_model

    target = tmp_path / MODEL_FILE
    old = small_model(1)
    save_model(old, target)
    before = files_in(tmp_path)
    write_cut_halfway("model", target, how, "2")
    assert_left_as_it_was(tmp_path, before, how)
    probe = np.linspace(-1, 1, 64 * 4, dtype="float32").reshape(4, 64)
    np.testing.assert_array_equal(keras.models.load_model(target).predict(probe, verbose=0),
                                  old.predict(probe, verbose=0))


@pytest.fixture(scope="module")
def flipped(tmp_path_factory, pretrained_base):
    from tests.insight_runs import flipped_run

    return flipped_run(tmp_path_factory, pretrained_base)


@pytest.fixture(scope="module")
def old_report(flipped, tmp_path_factory) -> Path:
    from finetune_gui.core.insight.report import write_report

    return write_report(flipped.run_dir, tmp_path_factory.mktemp("report") / "report.html",
                        model=flipped.model)


def test_a_report_cut_halfway_by_a_crash_keeps_the_old_report(flipped, old_report, tmp_path):
    """A crash only: a report takes half a minute to make, and the disk-full path is the
    same code as the run file's and the project's."""
    target = tmp_path / "report.html"
    target.write_bytes(old_report.read_bytes())
    before = files_in(tmp_path)
    write_cut_halfway("report", target, "killed", str(flipped.run_dir))
    assert_left_as_it_was(tmp_path, before, "killed")
    assert target.read_text("utf-8").rstrip().endswith("</html>")


def test_the_child_write_finishes_when_nothing_stops_it(tmp_path):
    """The harness itself: with a limit the write never reaches, the child writes the file."""
    run = tmp_path / "run"
    run.mkdir()
    update_facts(run, status="running")
    done = subprocess.run(
        [sys.executable, "-m", "tests.crash_writes", "run-file", str(run / RUN_FILE),
         str(10**9), "killed", "done"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((run / RUN_FILE).read_text("utf-8"))["message"] == "done"
