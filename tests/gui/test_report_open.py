""""Open" after saving a report or sorting a folder, and Help's log folder: the window says a
file opened only when a program opened it; otherwise it says so, shows the path and offers to
copy it. The openers are replaced: a real child process with the exit status xdg-open gives
(3: no program for it), or Qt's own opener answering False or True."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices, QGuiApplication

from finetune_gui.gui.widgets import opener
from finetune_gui.gui.widgets.sort_folder import SortFolderDialog


def opener_exits_with(monkeypatch, status: int, seconds: float = 0.0) -> None:
    """The desktop opener is a child process ending with `status` (after `seconds`)."""
    code = f"import sys, time; time.sleep({seconds}); sys.exit({status})"
    monkeypatch.setattr(opener, "opener_command", lambda: [sys.executable, "-c", code])


def qt_opener_answers(monkeypatch, answer: bool) -> list:
    """No opener with an exit status (macOS, Windows): Qt's answer is taken."""
    opened = []
    monkeypatch.setattr(opener, "opener_command", lambda: None)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or answer)
    return opened


def saved_report(make_window, tmp_path):
    window = make_window(start=False)
    window.go_to("export")
    page = window.pages["export"].report_panel
    report = tmp_path / "shapes-report.html"
    report.write_text("<p>report</p>")
    page._on_report_written(report)  # what the report job's success does
    return page, report


def click_open(qtbot, page) -> None:
    with qtbot.waitSignal(page.opener.finished, timeout=15_000):
        qtbot.mouseClick(page.report_open, Qt.MouseButton.LeftButton)


def test_a_report_nothing_opens_is_said_with_its_path_and_a_copy_button(
        qtbot, make_window, tmp_path, monkeypatch):
    opener_exits_with(monkeypatch, 3)  # xdg-open: "no method available for opening"
    page, report = saved_report(make_window, tmp_path)
    click_open(qtbot, page)
    text = page.report_result.text()
    assert "Opened" not in text and "Nothing opened it" in text and str(report) in text
    assert page.report_result.kind == "warning" and page.report_copy.isVisible()
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(page.report_copy, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == str(report)


@pytest.mark.parametrize("seconds", [0.0, 1.0])
def test_a_report_a_browser_opens_is_confirmed(qtbot, make_window, tmp_path, monkeypatch,
                                               seconds):
    # 0 s: the opener handed it over and ended well; 1 s: it still runs (a browser it waits
    # for) when the grace time is over.
    monkeypatch.setattr(opener, "GRACE_SECONDS", 0.5)
    opener_exits_with(monkeypatch, 0, seconds)
    page, report = saved_report(make_window, tmp_path)
    click_open(qtbot, page)
    assert page.report_result.text() == f"Opened in your web browser: {report}"
    assert page.report_result.kind == "success" and not page.report_copy.isVisible()


@pytest.mark.parametrize("answer", [False, True])
def test_qt_own_opener_answer_is_taken(qtbot, make_window, tmp_path, monkeypatch, answer):
    opened = qt_opener_answers(monkeypatch, answer)
    page, report = saved_report(make_window, tmp_path)
    click_open(qtbot, page)
    assert [url.toLocalFile() for url in opened] == [str(report)]
    assert ("Opened in your web browser" in page.report_result.text()) is answer
    assert page.report_copy.isVisible() is not answer


def sorted_dialog(qtbot, tmp_path) -> tuple[SortFolderDialog, Path]:
    out = tmp_path / "sorted"
    out.mkdir()
    dialog = SortFolderDialog(tmp_path / "run")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog._on_sorted(SimpleNamespace(out=out, text=lambda: "3 images copied."))
    return dialog, out


@pytest.mark.parametrize("status", [4, 0])
def test_open_after_sorting_checks_the_file_manager(qtbot, tmp_path, monkeypatch, status):
    opener_exits_with(monkeypatch, status)
    dialog, out = sorted_dialog(qtbot, tmp_path)
    with qtbot.waitSignal(dialog.opener.finished, timeout=15_000):
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    text = dialog.open_status.text()
    if status == 0:
        assert text == f"Opened in your file manager: {out}"
        assert not dialog.copy_button.isVisible()
    else:
        assert "Nothing opened it: no file manager" in text and str(out) in text
        assert dialog.copy_button.isVisible()
        qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
        assert QGuiApplication.clipboard().text() == str(out)
    assert dialog.open_button.isEnabled()


def test_the_log_folder_nothing_opens_is_said_with_its_path(qtbot, make_window, monkeypatch):
    qt_opener_answers(monkeypatch, False)
    window = make_window(start=False)
    window._open_log_folder()
    box = window.last_dialog
    assert box is not None and box.isVisible()
    assert "Nothing opened it" in box.text() and str(window.log_opener.last.path) in box.text()
    copy = next(b for b in box.buttons() if b.text() == "Copy path")
    QGuiApplication.clipboard().clear()
    copy.click()
    assert QGuiApplication.clipboard().text() == str(window.log_opener.last.path)
