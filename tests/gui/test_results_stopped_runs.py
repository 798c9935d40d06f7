"""Results for runs that did not finish: a stopped run's kept weights can be scored on its test
images from the window, and a run without test images says how to score it."""

from __future__ import annotations

import json
import shutil

import pytest
from PySide6.QtCore import Qt

from finetune_gui.gui.state import LoadedRun

pytestmark = pytest.mark.slow


def _stopped_copy(trained_run, target):
    """What Cancel after a few epochs leaves: the best weights kept, status cancelled, no test."""
    shutil.copytree(trained_run, target)
    (target / "metrics.json").unlink()
    facts = json.loads((target / "run.json").read_text())
    facts["status"] = "cancelled"
    (target / "run.json").write_text(json.dumps(facts))
    return target


def test_evaluate_the_kept_best_weights_of_a_cancelled_run(qtbot, make_window, trained_run,
                                                           tmp_path):
    run = _stopped_copy(trained_run, tmp_path / "cancelled-run")
    window = make_window()
    results = window.pages["results"]
    window.state.set_runs([run])
    window.state.set_current_run(LoadedRun.read(run))
    window.go_to("results")
    assert results.run_choice.itemText(0) == "cancelled-run (cancelled)"
    assert results.run_action.isVisible()
    assert results.run_action.text() == "Evaluate the kept best weights"

    with qtbot.waitSignal(results.evaluator.succeeded, timeout=120_000):
        qtbot.mouseClick(results.run_action, Qt.MouseButton.LeftButton)
    report = json.loads((run / "metrics.json").read_text())
    tested = len(json.loads((run / "split.json").read_text())["test"])
    assert sum(c["support"] for c in report["per_class"]) == tested
    assert window.state.current_run.report is not None
    assert f"Test accuracy {report['accuracy']:.1%}" in results.headline.text()
    assert not results.run_action.isVisible()
    assert window.state.step_status("results").done


def test_a_run_without_test_images_says_how_to_score_it(make_window, trained_run, tmp_path):
    run = _stopped_copy(trained_run, tmp_path / "no-test-run")
    split = json.loads((run / "split.json").read_text())
    split["test"] = []
    (run / "split.json").write_text(json.dumps(split))
    facts = json.loads((run / "run.json").read_text())
    facts["status"] = "completed"
    (run / "run.json").write_text(json.dumps(facts))
    window = make_window()
    window.state.set_runs([run])
    window.state.set_current_run(LoadedRun.read(run))
    results = window.pages["results"]
    assert "no test score" in results.notice.text()
    assert f"finetune-gui evaluate {run} FOLDER" in results.notice.text()
    assert not results.run_action.isVisible()
