"""A run killed with `kill -9` resumes from its last completed epoch to the end."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from finetune_gui.cli import main
from finetune_gui.core.errors import RunFolderError
from finetune_gui.core.training.job import TrainingJob


def _epochs_written(run) -> int:
    history = run / "history.csv"
    if not history.exists():
        return 0
    with open(history) as handle:
        return len(list(csv.DictReader(handle)))


def _train_in_background(data, run, weights) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "finetune_gui", "train", str(data), "--out", str(run),
        "--weights", str(weights), "--image-size", "48", "--epochs-head", "5",
        "--epochs-finetune", "3", "--unfreeze-blocks", "2", "--batch-size", "8",
        "--patience", "0", "--augment", "none", "--mode", "exact",
        # Every epoch of both phases: on some CPUs the head gets every validation image
        # right, and phase 2 would then be skipped.
        "--finetune-when", "always",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_killed_run_resumes_from_its_last_epoch(
    other_shapes_dir, pretrained_base, tmp_path, capsys, monkeypatch
):
    run = tmp_path / "run"
    process = _train_in_background(other_shapes_dir, run, pretrained_base)
    try:
        deadline = time.monotonic() + 240
        while _epochs_written(run) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert process.poll() is None, "training ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    done = _epochs_written(run)
    assert 2 <= done < 8
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    assert not (run / "model.keras").exists()

    # The resumed training starts from the checkpoint's weights, not from the pretrained base
    # and a new head: record the weights the first fit after resuming starts from.
    import keras
    import numpy as np

    with np.load(run / "checkpoint" / "last.weights.npz") as saved:
        checkpoint = [saved[f"w{i}"] for i in range(len(saved["paths"]))]
    real_fit, started_from = keras.Model.fit, []

    def recording_fit(self, *args, **kwargs):
        if not started_from:
            started_from.append([np.asarray(v.numpy()) for v in self.weights])
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    assert main(["train", "--resume", str(run)]) == 0
    assert len(started_from[0]) == len(checkpoint)
    for mine, saved in zip(started_from[0], checkpoint, strict=True):
        np.testing.assert_array_equal(mine, saved)
    out = capsys.readouterr().out
    assert "Test accuracy" in out
    with open(run / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    assert [r["phase"] for r in rows] == ["head"] * 5 + ["finetune"] * 3
    facts = json.loads((run / "run.json").read_text())
    assert facts["status"] == "completed"
    assert (run / "model.keras").exists() and (run / "metrics.json").exists()


def test_resume_refuses_a_finished_run_and_a_run_stopped_before_its_split(small_shapes, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"status": "completed"}')
    (run / "settings.json").write_text("{}")
    with pytest.raises(RunFolderError, match="already finished"):
        TrainingJob.resume(run)
    (run / "run.json").write_text('{"status": "running"}')
    with pytest.raises(RunFolderError, match="before it had split the images"):
        TrainingJob.resume(run)
    with pytest.raises(RunFolderError, match="not a run folder"):
        TrainingJob.resume(tmp_path / "nothing")
