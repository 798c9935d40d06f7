"""The Export page offers the web page and saves one from the window (real export, real Chromium)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from tests.web_tools import missing_web_tools

from finetune_gui.gui.state import LoadedRun

pytestmark = pytest.mark.slow




def test_the_export_page_lists_the_web_page_with_its_purpose(qtbot, make_window, trained_run):
    window = make_window()
    window.state.add_run(LoadedRun.read(trained_run))
    export = window.pages["export"].save_panel
    titles = [export.format_choice.itemText(i) for i in range(export.format_choice.count())]
    assert "Web page (.html, works offline)" in titles
    export.format_choice.setCurrentIndex(export.format_choice.findData("web"))
    assert "double-click" in export.format_purpose.text()


@pytest.mark.skipif(missing_web_tools() is not None, reason=f"web export: {missing_web_tools()}")
def test_exporting_a_web_page_from_the_window(qtbot, make_window, trained_run, tmp_path):
    window = make_window()
    window.state.add_run(LoadedRun.read(trained_run))
    window.go_to("export")
    export = window.pages["export"].save_panel
    export.format_choice.setCurrentIndex(export.format_choice.findData("web"))
    target = tmp_path / "shipped"
    export.target.setText(str(target))
    with qtbot.waitSignal(export.exported, timeout=240_000) as saved:
        qtbot.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    assert [p.name for p in saved.args[0]][:3] == ["model.html", "labels.txt", "metrics.json"]
    page = (target / "model.html").read_text(encoding="utf-8")
    assert "window.finetuneGui" in page and "shared-run" in page
    shown = export.export_result.text()
    assert "Saved model.html" in shown and "held-out images" in shown
    assert export.export_button.isEnabled()
