"""From the window: Compare runs → "Combine into an ensemble" makes a run whose test accuracy
stands beside its members' in the table; runs that differ are refused with the core's sentence;
the Export page lists each exported format's size and time per image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from tests.compare_runs import FILES, fake_run
from tests.conftest import folder_fingerprint

from finetune_gui.core.export.benchmark import read_exports, size_text
from finetune_gui.core.export.formats import FORMATS
from finetune_gui.core.run.folder import RunFolder
from finetune_gui.gui.state import LoadedRun


def _row(table, label: str) -> list[str]:
    rows = [r for r in range(table.rowCount())
            if table.verticalHeaderItem(r) and table.verticalHeaderItem(r).text() == label]
    assert len(rows) == 1
    return [table.item(rows[0], c).text() for c in range(table.columnCount())]


@pytest.mark.slow
def test_combining_two_runs_adds_an_ensemble_run_scored_beside_its_members(
        qtbot, make_window, ensemble_members):
    trained_run, second_run = ensemble_members  # one folder and split, at 32 and 40 px
    before = [folder_fingerprint(run) for run in ensemble_members]
    window = make_window(start=False)
    window.state.set_runs([trained_run, second_run])
    dialog = window.show_comparison()
    bar = dialog.combine_bar
    assert dialog.ticked_runs() == [trained_run, second_run]
    assert bar.button.isEnabled() and "Combine the 2 ticked runs" in bar.note.text()

    with qtbot.waitSignal(bar.finished, timeout=600_000):
        qtbot.mouseClick(bar.button, Qt.MouseButton.LeftButton)
    made = [p for p in window.state.runs if p not in (trained_run, second_run)]
    assert len(made) == 1 and made[0].parent == window.state.runs_root
    ensemble = RunFolder.open(made[0])
    members = json.loads((made[0] / "ensemble.json").read_text())["members"]
    assert [m["path"] for m in members] == [str(trained_run), str(second_run)]
    assert window.state.current_run.path == made[0]  # Results and Export show it now
    accuracy = ensemble.report.accuracy
    assert f"test accuracy {accuracy:.1%}" in bar.result.text()
    assert ", ".join(f"{m['test_accuracy']:.1%}" for m in members) in bar.result.text()

    # The new run is ticked beside its members: its score in the same row as theirs.
    table = dialog.table
    assert table.columnCount() == 3
    assert table.horizontalHeaderItem(2).text().startswith("Ensemble of 2\n")
    assert _row(table, "test accuracy") == [
        f"{RunFolder.open(p).report.accuracy:.1%}" for p in (trained_run, second_run, made[0])]
    assert _row(table, "test accuracy")[2] == f"{accuracy:.1%}"
    assert _row(table, "ensemble of") == ["–", "–", f"{trained_run.name}, {second_run.name}"]
    assert "ensemble" in window.pages["export"].run_label.text()
    dialog.shutdown()
    assert [folder_fingerprint(run) for run in ensemble_members] == before  # members untouched


def test_runs_on_another_split_cannot_be_combined_and_the_bar_says_why(
        qtbot, make_window, tmp_path):
    first = fake_run(tmp_path / "a", "/data/pets", FILES, 3)
    other = fake_run(tmp_path / "b", "/data/pets", FILES[2:] + FILES[:2], 2)
    window = make_window(start=False)
    window.state.set_runs([first, other])
    dialog = window.show_comparison()
    bar = dialog.combine_bar
    assert not bar.button.isEnabled()
    assert bar.note.text() == (
        "These runs cannot be combined: a and b split the images into training, validation and "
        "test differently, so no test image is unseen by every member.")
    assert bar.button.toolTip() == bar.note.text()
    dialog.tick([first])
    assert not bar.button.isEnabled()
    assert bar.note.text() == "Tick two or more runs on the same images and split to combine them."
    dialog.shutdown()


@pytest.mark.slow
def test_the_export_page_lists_size_and_time_per_image_of_each_format_exported(
        qtbot, make_window, trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)  # the shared run stays without an export record
    window = make_window(start=False)
    window.state.add_run(LoadedRun.read(run))
    page = window.pages["export"]
    window.go_to("export")
    assert page.speed_table.row_texts() == []
    assert "No format exported from this run yet" in page.speed_table.note.text()
    save = page.save_panel
    for fmt in ("keras", "tflite"):
        save.format_choice.setCurrentIndex(save.format_choice.findData(fmt))
        save.target.setText(str(tmp_path / "shipped" / fmt))
        (tmp_path / "shipped").mkdir(exist_ok=True)
        with qtbot.waitSignal(save.exported, timeout=300_000):
            qtbot.mouseClick(save.export_button, Qt.MouseButton.LeftButton)
    recorded = read_exports(run)
    rows = page.speed_table.row_texts()
    assert [r[0] for r in rows] == [FORMATS["keras"].title, FORMATS["tflite"].title]
    for row, entry in zip(rows, recorded, strict=True):
        assert row[1] == size_text(Path(entry["path"]).stat().st_size)
        assert row[2].endswith(" ms") and float(row[2].split()[0]) > 0
        assert row[3] == entry["path"]
    tflite = recorded[1]
    assert f"{tflite['ms_per_image']:.1f} ms per image on this computer" in \
        save.export_result.text()
