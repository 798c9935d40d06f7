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
    assert results.run_choice.itemText(0).startswith("MobileNetV3Small · data · ")
    assert results.run_choice.itemText(0).endswith(" · cancelled")  # no test score yet
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


def _failed_copy(trained_run, target):
    """What a run that failed after its split leaves: no model, no test results."""
    shutil.copytree(trained_run, target)
    for name in ("model.keras", "metrics.json"):
        (target / name).unlink()
    facts = json.loads((target / "run.json").read_text())
    facts.update(status="failed", message="Training failed: the disk is full.")
    (target / "run.json").write_text(json.dumps(facts))
    return target


def test_a_failed_run_picked_in_results_shows_its_own_state_and_nothing_of_another_run(
        qtbot, make_window, trained_run, tmp_path):
    from finetune_gui.core.run.folder import RunFolder

    failed = _failed_copy(trained_run, tmp_path / "failed-run")
    window = make_window()
    results = window.pages["results"]
    window.state.set_runs([failed, trained_run])
    window.state.set_current_run(LoadedRun.read(trained_run))
    window.go_to("results")
    accuracy = f"{RunFolder.open(trained_run).report.accuracy:.1%}"
    assert accuracy in results.headline.text() and results.metrics_table.rowCount() > 0
    step_says = f"test accuracy {RunFolder.open(trained_run).report.accuracy:.0%}"
    assert window.steps.status_text("results") == step_says

    results.run_choice.setCurrentIndex(results.run_choice.findData(str(failed)))
    assert results.run_choice.currentData() == str(failed)  # the picked run stays picked
    assert results.headline.text() == "Status: failed"
    assert "No model was saved" in results.notice.text()
    assert results.metrics_table.rowCount() == 0 and results.matrix.rowCount() == 0
    assert results.gallery.count() == 0
    assert window.steps.status_text("results") != step_says
    assert window.state.current_run is None  # the Export page has no run to offer either
    # Picking the finished run again shows it whole.
    results.run_choice.setCurrentIndex(results.run_choice.findData(str(trained_run)))
    assert accuracy in results.headline.text() and results.metrics_table.rowCount() > 0


def test_the_run_picker_names_runs_as_compare_does(make_window, trained_run, tmp_path):
    from finetune_gui.core.run.compare import readable_name
    from finetune_gui.core.run.folder import RunFolder

    failed = _failed_copy(trained_run, tmp_path / "failed-run")
    window = make_window()
    window.state.set_runs([trained_run, failed])
    results = window.pages["results"]
    names = {results.run_choice.itemData(i): results.run_choice.itemText(i)
             for i in range(results.run_choice.count())}
    finished = RunFolder.open(trained_run)
    assert names[str(trained_run)] == readable_name(finished)
    assert names[str(trained_run)].startswith("MobileNetV3Small · ")
    assert names[str(trained_run)].endswith(f"{finished.report.accuracy:.1%}")
    assert names[str(failed)].startswith("MobileNetV3Small · ")
    assert names[str(failed)].endswith(" · failed")


def test_similar_images_forget_the_last_run_s_answer(qtbot, make_window, trained_run, tmp_path):
    from PIL import Image

    from finetune_gui.gui.widgets.similar_images import NO_RUN, PROMPT

    window = make_window()
    window.state.set_runs([trained_run])
    window.state.set_current_run(LoadedRun.read(trained_run))
    panel = window.pages["results"].similar
    picture = tmp_path / "mine.png"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(picture)
    with qtbot.waitSignal(panel.runner.succeeded, timeout=120_000):
        panel.show_similar(picture)
    assert panel.gallery.count() == 8 and "most similar" in panel.status.text()
    window.state.set_current_run(None)
    assert panel.gallery.count() == 0 and panel.status.text() == NO_RUN
    window.state.set_current_run(LoadedRun.read(trained_run))
    assert panel.gallery.count() == 0 and panel.status.text() == PROMPT
