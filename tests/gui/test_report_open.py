""""Open" after Save report: the report opens in a browser, or the page says none was found and
where the file is."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices


def saved_report(make_window, tmp_path):
    window = make_window(start=False)
    window.go_to("export")
    page = window.pages["export"].report_panel
    report = tmp_path / "shapes-report.html"
    report.write_text("<p>report</p>")
    page._on_report_written(report)  # what the report job's success does
    return page, report


def test_no_browser_is_said_with_the_path(qtbot, make_window, tmp_path, monkeypatch):
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)  # no browser installed
    page, report = saved_report(make_window, tmp_path)
    qtbot.mouseClick(page.report_open, Qt.MouseButton.LeftButton)
    text = page.report_result.text()
    assert "No web browser" in text and str(report) in text
    assert page.report_result.isVisible() and page.report_result.kind == "warning"


def test_a_browser_that_opens_is_confirmed(qtbot, make_window, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    page, report = saved_report(make_window, tmp_path)
    qtbot.mouseClick(page.report_open, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened] == [str(report)]
    assert str(report) in page.report_result.text()
