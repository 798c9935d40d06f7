"""Never lose a run: quitting mid-run, a killed training process and a killed window each leave a
run that the next plain start lists (and offers to resume when it can continue)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from PySide6.QtWidgets import QMessageBox

from finetune_gui.core.project import Project
from finetune_gui.core.run.folder import RunFolder, process_running, run_state
from finetune_gui.demo import make_shapes_dataset

from .conftest import TINY

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def quit_answers_yes(monkeypatch):
    """'Training is running: stop it and quit?' is answered Yes (also when a failed test's
    window is closed mid-run, which would otherwise wait for a click forever)."""
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)


def _long_settings(weights) -> dict:
    return {**TINY, "weights": str(weights), "epochs_head": 60, "patience": 0,
            "unfreeze_blocks": 1}


def _start_and_wait_for_an_epoch(qtbot, window, data, weights):
    with qtbot.waitSignal(window.pages["data"].scan_finished, timeout=30_000):
        window.state.set_data_dir(data)
    window.state.update_settings(**_long_settings(weights))
    train = window.pages["train"]
    epochs = []
    train.runner.event.connect(lambda e: type(e).__name__ == "EpochEnded" and epochs.append(e))
    train.start_training()
    run_dir = train.run_dir
    # The run belongs to the project (and the autosave) before it has written anything.
    assert run_dir in window.state.runs
    assert run_dir in Project.load(window.autosave_path).runs
    qtbot.waitUntil(lambda: len(epochs) >= 1, timeout=180_000)
    # The checkpoint follows the epoch's event by a moment.
    qtbot.waitUntil((run_dir / "checkpoint" / "state.json").exists, timeout=30_000)
    return run_dir


def _run_names(window) -> list[str]:
    choice = window.pages["results"].run_choice
    return [choice.itemText(i) for i in range(choice.count())]


def _listed_as_interrupted(window) -> bool:
    """Results lists the run as Compare names it, its state in place of a test score."""
    return any(name.startswith("MobileNetV3Small · data · ") and name.endswith(" · interrupted")
               for name in _run_names(window))


def test_quitting_mid_run_keeps_it_listed_and_offered_for_resume(
    qtbot, make_window, tmp_path, base_weights_file
):
    data = make_shapes_dataset(tmp_path / "data", per_class=10, size=32, seed=4)
    window = make_window()
    run_dir = _start_and_wait_for_an_epoch(qtbot, window, data, base_weights_file)
    assert window.close()
    assert run_state(run_dir) == "interrupted"
    assert (run_dir / "model.keras").exists()  # the best epoch so far is kept

    again = make_window(wait_scan=False)  # a plain start: no project file was ever saved
    assert again.state.data_dir == data  # the autosave, not the demo images
    assert run_dir in again.state.runs
    assert _listed_as_interrupted(again)
    box = again.last_dialog
    assert box is not None and box.windowTitle() == "Resume training?"
    assert run_dir.name in box.text()


def test_a_killed_training_process_leaves_a_run_offered_on_the_next_start(
    qtbot, make_window, tmp_path, base_weights_file
):
    data = make_shapes_dataset(tmp_path / "data", per_class=10, size=32, seed=6)
    window = make_window()
    run_dir = _start_and_wait_for_an_epoch(qtbot, window, data, base_weights_file)
    child = json.loads((run_dir / "run.json").read_text())["pid"]
    assert child != os.getpid()  # trained by the child process
    train = window.pages["train"]
    with qtbot.waitSignal(train.run_finished, timeout=60_000) as finished:
        os.kill(child, signal.SIGKILL)
    assert finished.args == ["failed"]
    assert "signal 9" in train.last_dialog.text()
    train.last_dialog.close()
    qtbot.waitUntil(lambda: not process_running(child), timeout=10_000)
    assert run_state(run_dir) == "interrupted"

    again = make_window(wait_scan=False)
    assert _listed_as_interrupted(again)
    assert again.last_dialog.windowTitle() == "Resume training?"


WINDOW_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    from finetune_gui.gui.main_window import MainWindow

    prefs_file, runs_root, data, weights = sys.argv[1:5]
    app = QApplication([])
    window = MainWindow(QSettings(prefs_file, QSettings.Format.IniFormat), Path(runs_root))
    window.show()
    window.state.update_settings(backbone="mobilenetv3small", weights=weights, image_size=32,
                                 epochs_head=8, epochs_finetune=2, unfreeze_blocks=1,
                                 batch_size=16, patience=0)
    page = window.pages["train"]
    page.runner.event.connect(
        lambda e: type(e).__name__ == "EpochEnded" and print("epoch", flush=True))
    window.pages["data"].scan_finished.connect(lambda *_: QTimer.singleShot(0, page.start_training))
    window.state.set_data_dir(Path(data))
    app.exec()
""")


def test_a_run_that_outlives_its_window_finishes_and_is_found(
    qtbot, make_window, tmp_path, base_weights_file
):
    data = make_shapes_dataset(tmp_path / "data", per_class=10, size=32, seed=7)
    runs_root = tmp_path / "runs"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    window = subprocess.Popen(
        [sys.executable, "-c", WINDOW_SCRIPT, str(tmp_path / "other-prefs.ini"), str(runs_root),
         str(data), str(base_weights_file)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert window.stdout.readline().strip() == "epoch", "the window never trained"
        window.send_signal(signal.SIGKILL)  # the window dies; its training process does not
        window.wait()
    finally:
        if window.poll() is None:
            window.kill()
    (run_dir,) = list(runs_root.iterdir())
    child = json.loads((run_dir / "run.json").read_text())["pid"]
    assert run_state(run_dir) == "running"

    reopened = make_window(wait_scan=False)
    assert any(name.endswith(" · still training") for name in _run_names(reopened))
    assert reopened.last_dialog is None  # a run that is still training is not offered
    reopened.go_to("results")
    results = reopened.pages["results"]
    assert reopened.state.current_run is None  # no model saved yet...
    assert "still training in the background" in results.notice.text()  # ...and it says where
    deadline = time.monotonic() + 240
    qtbot.waitUntil(lambda: run_state(run_dir) == "completed" or time.monotonic() > deadline,
                    timeout=250_000)
    assert run_state(run_dir) == "completed"
    qtbot.waitUntil(lambda: not process_running(child), timeout=30_000)  # and it exited
    assert (run_dir / "metrics.json").exists()
    # The list follows: the run is named with its test score, no longer "still training".
    score = f" · {RunFolder.open(run_dir).report.accuracy:.1%}"
    qtbot.waitUntil(lambda: any(n.endswith(score) for n in _run_names(reopened)), timeout=10_000)
