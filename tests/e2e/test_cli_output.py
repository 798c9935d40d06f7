"""What `finetune-gui train` shows in a terminal (issue 25, item 14): one line per fact. The run's
last line once (on stdout, where scripts read it), and none of the libraries' own chatter
(TensorFlow's C++ log lines about oneDNN and CUDA, Keras or Python warnings): that goes to the
log file. Run in a real child process, as a user runs it: the chatter is written straight to
file descriptor 2, which no in-process capture sees."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from finetune_gui.demo import make_shapes_dataset

pytestmark = pytest.mark.slow
LAST_LINE = "Finished. No test images were kept aside, so there is no test score"
NOISE = re.compile(r"oneDNN|cuInit|cuda|data_adapter|[EWI]0000|absl|Warning:")


def test_train_prints_its_last_line_once_and_no_library_noise(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", per_class=8, size=32, seed=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "PYTHONWARNINGS"))}
    env["FINETUNE_GUI_LOG_DIR"] = str(tmp_path / "log")  # a user's shell sets no TF_ variables
    done = subprocess.run(
        [sys.executable, "-m", "finetune_gui.cli", "train", str(data), "--out",
         str(tmp_path / "run"), "--weights", "none", "--image-size", "32", "--epochs-head", "1",
         "--epochs-finetune", "1", "--batch-size", "8", "--test-fraction", "0"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    shown = done.stdout + done.stderr
    assert done.returncode == 0, shown
    assert shown.count(LAST_LINE) == 1, shown
    assert done.stdout.strip().splitlines()[-1].startswith(LAST_LINE)  # where scripts read it
    assert [line for line in shown.splitlines() if NOISE.search(line)] == []
    assert "epoch 1" in done.stderr  # the run's own progress still reaches the terminal
    # The chatter is kept, in the log file, for whoever needs it.
    assert (tmp_path / "log" / "finetune-gui.log").stat().st_size > 0
