"""Training that goes wrong or is stopped: plain dialogs, the weights choice, and Cancel."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from finetune_gui.applog import log_file
from finetune_gui.demo import make_shapes_dataset
from finetune_gui.gui.widgets.error_dialog import ErrorDialog

from .conftest import TINY

pytestmark = pytest.mark.slow


def test_damaged_weights_offer_training_from_scratch(qtbot, make_window, tmp_path):
    window = make_window()
    damaged = tmp_path / "mobilenetv3small.weights.h5"
    damaged.write_bytes(b"\x89HDF\r\n half a download")
    window.state.update_settings(**{**TINY, "weights": str(damaged)})
    train = window.pages["train"]
    window.go_to("train")
    with qtbot.waitSignal(train.run_finished, timeout=120_000) as finished:
        qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["failed"]
    box = train.last_dialog
    assert isinstance(box, QMessageBox) and box.windowTitle() == "Pretrained weights unavailable"
    assert damaged.name in box.text()
    assert train.start_button.isEnabled()  # the app stays usable

    scratch = next(b for b in box.buttons() if b.text() == "Train from scratch")
    with qtbot.waitSignal(train.runner.event, timeout=30_000):
        scratch.click()
    assert window.state.settings.weights == "none"
    assert train.runner.is_running
    with qtbot.waitSignal(train.run_finished, timeout=120_000) as stopped:
        qtbot.mouseClick(train.cancel_button, Qt.MouseButton.LeftButton)
    assert stopped.args == ["cancelled"]
    assert train.start_button.isEnabled()


def test_an_error_in_the_job_shows_a_plain_message_with_the_detail_folded(qtbot, make_window,
                                                                          tmp_path):
    data = make_shapes_dataset(tmp_path / "data", per_class=6, size=24, seed=8)
    window = make_window()
    with qtbot.waitSignal(window.pages["data"].scan_finished, timeout=30_000):
        window.state.set_data_dir(data)
    # The folder changes after it was checked: the image can no longer be read in training.
    victim = window.state.scan.records[0].path
    victim.write_bytes(b"")
    window.state.update_settings(**TINY)
    train = window.pages["train"]
    with qtbot.waitSignal(train.run_finished, timeout=120_000) as finished:
        train.start_training()
    assert finished.args == ["failed"]
    dialog = train.last_dialog
    assert isinstance(dialog, ErrorDialog)
    assert victim.name in dialog.text() and "Check the folder again" in dialog.text()
    # The user's to fix: no traceback, folded or not; it went to the log file instead.
    assert "Traceback" not in dialog.text() and "Traceback" not in dialog.detailedText()
    assert victim.name in log_file().read_text(encoding="utf-8")
    assert "ERROR:" in train.log.toPlainText()
    assert train.start_button.isEnabled()
    dialog.close()


def test_cancel_stops_training_and_keeps_the_best_epoch(qtbot, make_window, base_weights_file):
    window = make_window()
    window.state.update_settings(**{**TINY, "weights": str(base_weights_file),
                                    "epochs_head": 50, "patience": 0, "dense_units": 16})
    train = window.pages["train"]
    epochs = []
    train.runner.event.connect(lambda e: type(e).__name__ == "EpochEnded" and epochs.append(e))
    train.start_training()
    qtbot.waitUntil(lambda: len(epochs) >= 1, timeout=120_000)
    with qtbot.waitSignal(train.run_finished, timeout=60_000) as finished:
        qtbot.mouseClick(train.cancel_button, Qt.MouseButton.LeftButton)
        assert "Stopping" in train.status.text()
    assert finished.args == ["cancelled"]
    assert len(epochs) < 50
    assert "best weights" in train.outcome.text()
    run = window.state.current_run
    assert run is not None and run.folder.status == "cancelled"
    assert "no test results" in window.pages["results"].notice.text()
    # The kept weights can be scored from Results (issue 14).
    assert window.pages["results"].run_action.text() == "Evaluate the kept best weights"


def test_cancel_while_the_frozen_layers_are_computed(qtbot, make_window, base_weights_file,
                                                       gap_meter):
    """The frozen-layer pass is the long wait before the first epoch: the window shows it,
    stays responsive, and Cancel ends it without a run to show."""
    from finetune_gui.core.events import PhaseStarted, StageProgress, StageStarted

    window = make_window()
    # 16 augmented copies of each image make the pass last long enough to cancel in it.
    window.state.update_settings(**{**TINY, "weights": str(base_weights_file), "views": 16})
    train = window.pages["train"]
    window.go_to("train")
    seen = []
    train.runner.event.connect(seen.append)
    gap_meter.start()
    train.start_training()
    qtbot.waitUntil(lambda: any(isinstance(e, StageProgress) and e.stage == "extract"
                                for e in seen), timeout=120_000)
    started = next(e for e in seen if isinstance(e, StageStarted) and e.stage == "extract")
    assert "15 augmented copies" in train.status.text() and "Computing frozen layers" in started.text
    assert train.progress.maximum() == started.total
    with qtbot.waitSignal(train.run_finished, timeout=60_000) as finished:
        qtbot.mouseClick(train.cancel_button, Qt.MouseButton.LeftButton)
    gap_meter.stop()
    assert finished.args == ["cancelled"]
    assert not any(isinstance(e, PhaseStarted) for e in seen)  # no epoch was trained
    done = max(e.done for e in seen if isinstance(e, StageProgress) and e.stage == "extract")
    assert done < started.total
    assert "no model was saved" in train.outcome.text()
    assert train.start_button.isEnabled()
    # The window kept its turn: the GUI thread's own CPU time between two ticks of its timer
    # stays short (conftest.GapMeter; wall-clock gaps are stretched by a loaded machine). The
    # frozen-layer pass on the GUI thread would spend seconds of it.
    assert gap_meter.longest_busy < 0.5, gap_meter.stacks()
