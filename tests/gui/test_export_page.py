"""The Export page offers exactly the formats of the core's registry, each with its purpose."""

from __future__ import annotations

from PySide6.QtCore import Qt

from finetune_gui.core.export.formats import FORMATS
from finetune_gui.gui.pages.export import ExportPage
from finetune_gui.gui.state import ProjectState


def test_the_format_choice_lists_exactly_the_registry_with_titles_and_purposes(qtbot, tmp_path):
    page = ExportPage(ProjectState(tmp_path / "runs"))
    qtbot.addWidget(page)
    choice = page.save_panel.format_choice
    assert [choice.itemData(i) for i in range(choice.count())] == list(FORMATS)
    for index, spec in enumerate(FORMATS.values()):
        assert choice.itemText(index) == spec.title
        assert choice.itemData(index, Qt.ItemDataRole.ToolTipRole) == spec.purpose
        choice.setCurrentIndex(index)
        assert page.save_panel.format_purpose.text() == spec.purpose
    page.restore_choices("/tmp/models", "onnx")
    assert page.choices() == ("/tmp/models", "onnx")
    # Nothing to export yet: the buttons wait for a run, and the page says why.
    assert not page.save_panel.export_button.isEnabled()
    assert not page.report_panel.report_button.isEnabled()
    assert not page.try_panel.drop_area.isEnabled()
    assert "Train a model first" in page.notice.text()
    page.shutdown()
