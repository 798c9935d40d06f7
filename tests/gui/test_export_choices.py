"""Export page: a format is offered only when this computer can make it (else it says why and
what to do), a web page without Chromium is saved marked "not checked in a browser", and the
folder is created when missing, any refusal said at once in words, before a job starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from finetune_gui.core.export import web
from finetune_gui.gui.state import LoadedRun
from finetune_gui.gui.widgets.error_dialog import ErrorDialog

WEB_TITLE = "Web page (.html, works offline)"


@pytest.fixture
def save_panel(qtbot, make_window, trained_run):
    window = make_window(start=False)
    window.state.add_run(LoadedRun.read(trained_run))
    window.go_to("export")
    return window.pages["export"].save_panel


def choose(panel, fmt: str, target: Path) -> None:
    panel.format_choice.setCurrentIndex(panel.format_choice.findData(fmt))
    panel.target.setText(str(target))


def no_error_dialog() -> bool:
    return not [w for w in QApplication.topLevelWidgets()
                if isinstance(w, ErrorDialog) and w.isVisible()]


def refused_at_once(qtbot, panel) -> str:
    """Save model is pressed; the refusal must be in the panel, with no job and no dialog."""
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    assert not panel.export_runner.is_running and not panel.export_progress.isVisible()
    assert no_error_dialog()
    text = panel.export_result.text()
    assert panel.export_result.kind == "warning" and "Traceback" not in text
    return text


# -- item 4: the web page, offered only when it can be made --------------------------------------
def test_without_the_web_runtime_the_web_page_is_unavailable_with_what_to_do(
        qtbot, make_window, trained_run, tmp_path, monkeypatch):
    from finetune_gui.jobs.child_process import prepare_child_processes

    # The jobs' fork server keeps the environment it starts with: started here, after the
    # change below, it gave the next test's export a web runtime "nowhere", and that export
    # failed unseen until its 300 s wait ran out (this module run on its own).
    prepare_child_processes()
    monkeypatch.setenv("FINETUNE_GUI_WEB_RUNTIME", str(tmp_path / "nowhere"))
    window = make_window(start=False)
    window.state.add_run(LoadedRun.read(trained_run))
    window.go_to("export")
    panel = window.pages["export"].save_panel
    row = panel.format_choice.findData("web")
    item = panel.format_choice.model().item(row)
    assert not item.isEnabled() and item.text() == f"{WEB_TITLE}: not available here"
    assert "ONNX Runtime Web" in item.toolTip() and "make web-runtime" in item.toolTip()
    assert panel.unavailable_note.isVisible()
    assert panel.unavailable_note.text().startswith(
        f"{WEB_TITLE}: Not available here: the web page needs ONNX Runtime Web")
    others = [panel.format_choice.model().item(i) for i in range(panel.format_choice.count())
              if i != row]
    assert all(other.isEnabled() for other in others)
    # A choice remembered from an earlier session lands on it: why, and Save waits.
    panel.restore_choices(str(tmp_path / "shipped"), "web")
    assert "make web-runtime" in panel.format_purpose.text()
    assert not panel.export_button.isEnabled()
    panel.export()
    assert not panel.export_runner.is_running and not (tmp_path / "shipped").exists()


@pytest.mark.skipif(bool(web.missing_runtime_files()),
                    reason="the web runtime is not installed (make web-runtime)")
def test_without_chromium_the_web_page_is_saved_marked_not_checked(
        qtbot, save_panel, tmp_path, monkeypatch):
    monkeypatch.setattr("finetune_gui.core.export.availability.find_chromium", lambda: None)
    panel = save_panel
    panel.refresh_formats()
    target = tmp_path / "shipped"
    choose(panel, "web", target)
    assert "not checked in a browser" in panel.format_purpose.text()
    assert panel.export_button.isEnabled()
    with qtbot.waitSignal(panel.exported, timeout=300_000) as saved:
        qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    assert saved.args[0][0] == target / "model.html"
    shown = panel.export_result.text()
    assert "Saved model.html" in shown and "The page is not checked in a browser" in shown
    assert "verif" not in shown.lower() and "Checked on" not in shown
    assert panel.export_result.kind == "warning"
    card = (target / "model_card.md").read_text(encoding="utf-8")
    assert "This page was not checked in a browser" in card and "verif" not in card.lower()
    assert json.loads((target / "model_card.json").read_text())["checked_in_browser"] is False


# -- item 5: the folder is made; what cannot be is refused before the job -------------------------
def test_a_missing_folder_is_created(qtbot, save_panel, tmp_path):
    panel = save_panel
    target = tmp_path / "not" / "there" / "yet"
    choose(panel, "keras", target)
    with qtbot.waitSignal(panel.exported, timeout=240_000):
        qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    assert (target / "model.keras").is_file() and no_error_dialog()
    assert panel.export_result.kind == "success"


def test_an_earlier_export_in_the_folder_is_replaced_only_when_the_user_says_so(
        qtbot, save_panel, trained_run, tmp_path):
    panel = save_panel
    target = tmp_path / "models"
    target.mkdir()
    (target / "model.keras").write_bytes(b"the model of another run")
    (target / "model_card.json").write_text(json.dumps(
        {"name": "run-A", "file": "model.keras", "exported": "2026-12-01T10:20:31"}))
    before = {path.name: path.read_bytes() for path in target.iterdir()}
    choose(panel, "keras", target)
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    box = panel.replace_question
    assert box is not None and box.isVisible() and not panel.export_runner.is_running
    assert box.text() == (
        f"{target} already holds model.keras and model_card.json (from run-A, exported "
        f"2026-12-01 10:20) from an earlier export. Saving here replaces them, and the earlier "
        f"model is then gone.")
    assert box.defaultButton().text() == "Keep it"
    box.defaultButton().click()
    assert not panel.export_runner.is_running
    assert panel.export_result.text().startswith("Nothing was saved; the earlier export is")
    assert {path.name: path.read_bytes() for path in target.iterdir()} == before
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    replace = next(b for b in panel.replace_question.buttons() if b.text() == "Replace")
    with qtbot.waitSignal(panel.exported, timeout=240_000):
        replace.click()
    assert (target / "model.keras").read_bytes() != b"the model of another run"
    assert json.loads((target / "model_card.json").read_text())["name"] == trained_run.name
    assert "(in place of the earlier export)" in panel.export_result.text()
    assert panel.export_result.kind == "success" and no_error_dialog()
    # Another format of the same run beside it: nothing to replace, so nothing is asked.
    keras_bytes = (target / "model.keras").read_bytes()
    asked = panel.replace_question
    choose(panel, "tflite", target)
    with qtbot.waitSignal(panel.exported, timeout=240_000):
        qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    assert panel.replace_question is asked  # no new question
    assert (target / "model.keras").read_bytes() == keras_bytes
    assert (target / "model.tflite").is_file()
    assert ("beside model.keras of the same run (the model card describes each)"
            in panel.export_result.text())
    card = json.loads((target / "model_card.json").read_text())
    assert [other["file"] for other in card["other_formats"]] == ["model.keras"]


def test_a_file_in_the_way_is_refused_before_the_job_in_words(qtbot, save_panel, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    choose(save_panel, "keras", blocker / "out")
    assert refused_at_once(qtbot, save_panel) == (
        f"Cannot export to {blocker / 'out'}: {blocker} is a file, not a folder.")
    assert blocker.read_text() == "in the way"


def test_a_folder_without_permission_is_refused_before_the_job_in_words(
        qtbot, save_panel, tmp_path, monkeypatch):
    import finetune_gui.core.export.destination as destination

    locked = tmp_path / "locked"
    locked.mkdir()
    # Tests may run as root, who may write anywhere: the check is told the folder is locked.
    monkeypatch.setattr(destination.os, "access", lambda path, mode: Path(path) != locked)
    choose(save_panel, "keras", locked / "models")
    text = refused_at_once(qtbot, save_panel)
    assert text.startswith(f"Cannot export to {locked / 'models'}: you may not write in {locked}")
    assert list(locked.iterdir()) == []


def test_a_convnext_run_is_not_offered_onnx_or_the_web_page_and_says_why(
    qtbot, make_window, trained_run, tmp_path
):
    """tf2onnx has no ONNX form for some of ConvNeXt's operations: the page says so before the
    user tries, and offers the formats that work; another run gets ONNX back."""
    import shutil

    convnext = tmp_path / "convnext-run"
    shutil.copytree(trained_run, convnext)
    settings = json.loads((convnext / "settings.json").read_text())
    (convnext / "settings.json").write_text(json.dumps(settings | {"backbone": "convnexttiny"}))
    window = make_window(start=False)
    window.state.add_run(LoadedRun.read(convnext))
    window.go_to("export")
    panel = window.pages["export"].save_panel
    for fmt in ("onnx", "web"):
        item = panel.format_choice.model().item(panel.format_choice.findData(fmt))
        assert not item.isEnabled() and item.text().endswith("not available here")
        assert "ConvNeXt" in item.toolTip() and "TFLite formats work" in item.toolTip()
    assert "ConvNeXt" in panel.unavailable_note.text()
    for fmt in ("keras", "savedmodel", "tflite"):
        assert panel.format_choice.model().item(panel.format_choice.findData(fmt)).isEnabled()
    window.state.add_run(LoadedRun.read(trained_run))
    onnx = panel.format_choice.model().item(panel.format_choice.findData("onnx"))
    assert onnx.isEnabled()
