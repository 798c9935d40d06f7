"""Ctrl-C on `finetune-gui train`: the run stops after the current batch and keeps the best weights."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from tests.training_checks import assert_the_saved_model_is_the_best_epochs, history_rows

pytestmark = pytest.mark.slow


def test_ctrl_c_stops_the_run_and_keeps_the_best_weights(other_shapes_dir, pretrained_base, tmp_path):
    run = tmp_path / "run"
    # The textbook loop (--mode exact): epochs of seconds, so Ctrl-C lands in the middle of one.
    command = [
        sys.executable, "-m", "finetune_gui", "train", str(other_shapes_dir), "--out", str(run),
        "--weights", str(pretrained_base), "--image-size", "48", "--epochs-head", "40",
        "--epochs-finetune", "0", "--batch-size", "8", "--patience", "40", "--lr-head", "0.05",
        "--augment", "none", "--mode", "exact",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if (run / "history.csv").exists() and len(history_rows(run)) >= 3:
                break
            time.sleep(0.2)
        assert process.poll() is None, "training ended before Ctrl-C"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, output[-2000:]
    history = history_rows(run)
    assert 3 <= len(history) < 40
    best_epoch = min(history, key=lambda row: row["val_loss"])["epoch"]
    assert f"Cancelled; the best weights (epoch {best_epoch}) were kept." in output
    facts = json.loads((run / "run.json").read_text())
    assert facts["status"] == "cancelled" and facts["best_epoch"] == best_epoch
    # The saved model is that epoch's, not the one Ctrl-C interrupted half-way.
    assert_the_saved_model_is_the_best_epochs(run, ended_on_a_worse_epoch=False)
