"""Non-Keras formats saved from the Export page: the file is written, checked, and the numbers of
that check (how many held-out images, how often the file agrees with the model) are shown."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from finetune_gui.gui.state import LoadedRun

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("fmt,model_file", [("tflite", "model.tflite"), ("onnx", "model.onnx")])
def test_a_non_keras_export_from_the_page_shows_its_verification_numbers(
    qtbot, make_window, trained_run, tmp_path, fmt, model_file
):
    window = make_window()
    window.state.add_run(LoadedRun.read(trained_run))
    window.go_to("export")
    export = window.pages["export"].save_panel
    export.format_choice.setCurrentIndex(export.format_choice.findData(fmt))
    target = tmp_path / "shipped"
    export.target.setText(str(target))
    with qtbot.waitSignal(export.exported, timeout=240_000) as saved:
        qtbot.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    assert saved.args[0][0].name == model_file and (target / model_file).stat().st_size > 0
    check = json.loads((target / "model_card.json").read_text())["verification"]
    assert check["passed"] and check["n_images"] > 0
    shown = export.export_result.text()
    assert f"Saved {model_file}" in shown
    assert (f"Checked on {check['n_images']} {check['images']}: the file gives the trained "
            f"model's answer on {check['agreement']:.1%} of them.") in shown
