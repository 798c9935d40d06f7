"""The window puts a run to work: "not sure" in Try it, "Sort a folder…" (child process, cancel,
Open) and similar images on the Results and Data pages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from finetune_gui.gui.state import LoadedRun

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helpers
from core.test_sort_similar import checksums, messy_folder
from insight_runs import PLANTED_COPY, flipped_run
from unrelated_images import write_digits

pytestmark = pytest.mark.slow

CHILD_JOB_MS = 180_000


@pytest.fixture
def flipped(tmp_path_factory, pretrained_base):
    return flipped_run(tmp_path_factory, pretrained_base)


def open_run(make_window, run_dir: Path, page: str):
    window = make_window()
    window.state.add_run(LoadedRun.read(run_dir))
    window.go_to(page)
    return window


def test_try_it_says_not_sure_for_digits_and_names_the_class_for_shapes(
    qtbot, make_window, flipped, tmp_path
):
    window = open_run(make_window, flipped.run_dir, "export")
    page = window.pages["export"].try_panel
    digits = write_digits(tmp_path / "digits", 6)
    shape = flipped.data / "squares" / "squares_030.png"
    with qtbot.waitSignal(page.predicted, timeout=120_000):
        page.predict([shape, *digits])
    from finetune_gui.gui.pages.export_try import ANSWER_COLUMN, SURE_COLUMN

    rows = range(page.predictions.rowCount())
    best = [page.predictions.item(row, ANSWER_COLUMN).text() for row in rows]
    sure = [page.predictions.item(row, SURE_COLUMN).text() for row in rows]
    assert best[0].startswith("squares") and sure[0] == "yes"
    assert sum(s.startswith("not sure") for s in sure[1:]) >= 5


def test_sort_a_folder_copies_by_class_in_a_child_process_and_offers_open(
    qtbot, make_window, flipped, tmp_path, monkeypatch
):
    window = open_run(make_window, flipped.run_dir, "export")
    page = window.pages["export"].try_panel
    source = messy_folder(tmp_path / "in", flipped.data)
    before = checksums(source)
    qtbot.mouseClick(page.sort_button, Qt.MouseButton.LeftButton)
    dialog = page.sort_dialog
    dialog.source_edit.setText(str(source))
    dialog.out_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dialog.runner.succeeded, timeout=CHILD_JOB_MS):
        qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)
        assert dialog.status_row.cancel_button.isVisible()
    assert dialog.summary.total_copied == 13 and len(dialog.summary.unreadable) == 4
    assert "13 images copied" in dialog.result.text()
    assert checksums(source) == before
    opened = []
    monkeypatch.setattr("finetune_gui.gui.widgets.opener.opener_command", lambda: None)
    monkeypatch.setattr("PySide6.QtGui.QDesktopServices.openUrl",
                        lambda url: opened.append(url) or True)
    assert dialog.open_button.isEnabled()
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert opened and opened[0].toLocalFile() == str(tmp_path / "out")
    assert dialog.open_status.text() == f"Opened in your file manager: {tmp_path / 'out'}"


def test_sort_cancel_stops_the_child_and_keeps_the_source(qtbot, make_window, flipped, tmp_path):
    window = open_run(make_window, flipped.run_dir, "export")
    page = window.pages["export"].try_panel
    source = messy_folder(tmp_path / "in", flipped.data)
    before = checksums(source)
    page.open_sort_dialog()
    dialog = page.sort_dialog
    dialog.source_edit.setText(str(source))
    dialog.out_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dialog.runner.cancelled, timeout=CHILD_JOB_MS):
        dialog.start()
        dialog.status_row.cancel()
    assert "Cancelled" in dialog.status_row.status.text()
    assert dialog.sort_button.isEnabled() and not dialog.open_button.isEnabled()
    assert checksums(source) == before


@pytest.mark.parametrize("page_name", ["results", "data"])
def test_similar_images_show_the_planted_copy_first_with_label_and_distance(
    qtbot, make_window, flipped, page_name
):
    window = open_run(make_window, flipped.run_dir, page_name)
    panel = window.pages[page_name].similar
    window.pages[page_name].tabs.setCurrentWidget(panel)
    label, original, copy = PLANTED_COPY
    with qtbot.waitSignal(panel.runner.succeeded, timeout=120_000):
        panel.show_similar(flipped.data / label / original)
    assert panel.gallery.count() == 8
    first = panel.gallery.item(0)
    assert Path(first.data(panel.gallery.PATH_ROLE)).name == copy
    caption = first.text().split("\n")
    assert caption[0] == label and float(caption[1]) < 0.001
