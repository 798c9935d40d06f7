"""The Export page's "Save report…": one self-contained HTML file written in a child process,
with an Open button; failures give a plain message and leave no file behind."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog

from finetune_gui.gui.state import LoadedRun
from finetune_gui.gui.widgets.error_dialog import ErrorDialog

pytestmark = pytest.mark.slow


@pytest.fixture
def export_page(qtbot, make_window, trained_run):
    window = make_window(start=False)
    window.state.add_run(LoadedRun.read(trained_run))
    window.go_to("export")
    return window.pages["export"].report_panel


def answer_save_dialog(monkeypatch, path: Path) -> list[str]:
    """Make the save dialog answer `path`; returns the list the proposed names are put in."""
    proposed = []

    def dialog(parent, caption, start, *rest, **kwargs):
        proposed.append(start)
        return str(path), "Web page (*.html)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    return proposed


def plain_error(page) -> str:
    dialog = page.last_dialog
    assert isinstance(dialog, ErrorDialog) and dialog.isVisible()
    text = dialog.text()
    assert "Traceback" not in text and "Something went wrong" not in text
    dialog.close()
    return text


def test_save_report_writes_one_self_contained_file_and_offers_to_open_it(
        qtbot, export_page, tmp_path, monkeypatch):
    page = export_page
    out = tmp_path / "reports"
    out.mkdir()
    proposed = answer_save_dialog(monkeypatch, out / "my report")
    opened = []
    monkeypatch.setattr("finetune_gui.gui.widgets.opener.opener_command", lambda: None)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)

    with qtbot.waitSignal(page.report_runner.succeeded, timeout=120_000):
        qtbot.mouseClick(page.report_button, Qt.MouseButton.LeftButton)
        assert page.report_cancel.isVisibleTo(page) and page.report_progress_box.isVisibleTo(page)
    assert Path(proposed[0]).name == "shared-run-report.html"

    written = out / "my report.html"
    assert sorted(out.iterdir()) == [written]  # one file, no temporary left over
    html = written.read_text("utf-8")
    accuracy = page.state.current_run.report.accuracy
    assert f"Accuracy <b>{accuracy:.1%}</b>" in html
    assert re.findall(r'src="(?!data:)', html) == []  # every picture is inside the file
    assert str(written) in page.report_result.text()
    assert not page.report_cancel.isVisibleTo(page) and page.report_button.isEnabled()
    qtbot.mouseClick(page.report_open, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened] == [str(written)]


def test_an_unwritable_target_is_refused_at_once_in_plain_words(qtbot, export_page, tmp_path,
                                                                 monkeypatch):
    page = export_page
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("in the way")
    answer_save_dialog(monkeypatch, blocker / "report.html")
    qtbot.mouseClick(page.report_button, Qt.MouseButton.LeftButton)
    assert not page.report_runner.is_running
    assert "is a file, not a folder" in plain_error(page)
    assert blocker.read_text() == "in the way" and sorted(tmp_path.iterdir()) == [blocker]


def test_a_failing_report_job_gives_a_plain_message_and_no_partial_file(
        qtbot, export_page, tmp_path, trained_run, monkeypatch):
    page = export_page
    damaged = Path(shutil.copytree(trained_run, tmp_path / "damaged-run"))
    page.state.add_run(LoadedRun.read(damaged))
    (damaged / "model.keras").unlink()  # e.g. deleted by hand after the run was opened
    out = tmp_path / "reports"
    out.mkdir()
    answer_save_dialog(monkeypatch, out / "report.html")
    with qtbot.waitSignal(page.report_runner.failed, timeout=120_000):
        qtbot.mouseClick(page.report_button, Qt.MouseButton.LeftButton)
    assert "model.keras missing" in plain_error(page)
    assert list(out.iterdir()) == []
    assert page.report_button.isEnabled() and not page.report_open.isVisible()
