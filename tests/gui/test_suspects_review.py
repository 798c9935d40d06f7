"""Suspect labels a person can review: the surest first, twenty at a time with "Show more", and
the map's crosses are the very images the Suspect labels tab lists."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from tests.gui.test_insight_results import CHILD_JOB_MS, open_run

from finetune_gui.core.insight.suspects import Suspect
from finetune_gui.core.words import counted
from finetune_gui.gui.pages.results_suspects import PAGE
from finetune_gui.jobs.insight import SuspectSearch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for insight_runs.py
from insight_runs import flipped_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flipped(tmp_path_factory, pretrained_base):
    return flipped_run(tmp_path_factory, pretrained_base)


def shown_rows(view) -> list[tuple[str, str]]:
    return [(view.table.item(r, 1).text(), view.table.item(r, 4).text())
            for r in range(view.table.rowCount())]


def test_show_more_adds_the_next_twenty_surest(qtbot, make_window, flipped):
    window = open_run(make_window, flipped.run_dir)
    view = window.pages["results"].suspects
    window.pages["results"].tabs.setCurrentWidget(view)
    images = [path for part in ("train", "val", "test") for path, _ in
              getattr(flipped.run.split(), part)][:2 * PAGE + 5]
    found = [Suspect(path, "circles", "squares", 0.99 - i / 100, 0.5, "train", 0.99 - i / 100)
             for i, path in enumerate(images)]
    # What a finished search hands the view.
    view.runner.succeeded.emit(SuspectSearch(flipped.run_dir, found, False, 121))
    expected = [(s.path.name, f"{s.sureness:.0%}") for s in found]

    assert shown_rows(view) == expected[:PAGE]
    assert f"{counted(len(found), 'suspect label')} among 121 images, surest first" in view.status.text()
    assert view.more_button.isVisible() and view.more_button.text() == f"Show {PAGE} more"
    assert view.shown_note.text() == f"Showing the {PAGE} surest of {len(found)}."
    qtbot.mouseClick(view.more_button, Qt.MouseButton.LeftButton)
    assert shown_rows(view) == expected[:2 * PAGE]
    assert view.more_button.text() == "Show 5 more"
    qtbot.mouseClick(view.more_button, Qt.MouseButton.LeftButton)
    assert shown_rows(view) == expected
    assert not view.more_button.isVisible() and view.shown_note.text() == ""
    # Every row shown gets its thumbnail, those "Show more" added too.
    qtbot.waitUntil(lambda: not view.thumb_runner.is_running, timeout=30_000)
    assert all(not view.table.cellWidget(r, 0).pixmap().isNull()
               for r in range(view.table.rowCount()))


def test_the_map_crosses_the_images_the_suspects_tab_lists(qtbot, make_window, flipped):
    window = open_run(make_window, flipped.run_dir)
    results = window.pages["results"]
    suspects, image_map = results.suspects, results.map_view
    results.tabs.setCurrentWidget(suspects)
    with qtbot.waitSignal(suspects.finished, timeout=CHILD_JOB_MS) as done:
        qtbot.mouseClick(suspects.find_button, Qt.MouseButton.LeftButton)
    assert done.args == ["ok"]
    while suspects.more_button.isVisible():
        qtbot.mouseClick(suspects.more_button, Qt.MouseButton.LeftButton)
    listed = suspects.paths()
    assert len(listed) == len(suspects.search.suspects) > 0

    results.tabs.setCurrentWidget(image_map)
    with qtbot.waitSignal(image_map.finished, timeout=CHILD_JOB_MS) as done:
        qtbot.mouseClick(image_map.draw_button, Qt.MouseButton.LeftButton)
    assert done.args == ["ok"]
    crossed = [image_map.map.paths[p.data()] for s in image_map.class_items.values()
               for p in s.points() if p.symbol() == "x"]
    assert sorted(crossed) == sorted(listed)
    assert f"{counted(len(listed), 'suspect label')} (crosses" in image_map.status.text()
    assert suspects.status.text().startswith(f"{counted(len(listed), 'suspect label')} among")
    # A crossed dot says what the list says of it.
    first = suspects.search.suspects[0]
    index = image_map.map.paths.index(first.path)
    image_map.choose_point(index)
    assert (f"({first.sureness:.0%} sure it is wrong): it looks like "
            f"<b>{first.suggested_label}</b>" in image_map.panel.caption.text())


def test_the_suspects_the_map_found_are_listed_without_looking_again(qtbot, make_window,
                                                                     flipped):
    """The map's crosses are the suspect labels: once it is drawn, the Suspect labels tab lists
    them at once, with no second pass over the images; with other images left out it looks
    again."""
    window = open_run(make_window, flipped.run_dir)
    results = window.pages["results"]
    suspects, image_map = results.suspects, results.map_view
    started = []
    suspects.runner.running_changed.connect(lambda running: running and started.append(1))
    results.tabs.setCurrentWidget(image_map)
    with qtbot.waitSignal(image_map.finished, timeout=CHILD_JOB_MS):
        qtbot.mouseClick(image_map.draw_button, Qt.MouseButton.LeftButton)
    crossed = {image_map.map.paths[p.data()] for s in image_map.class_items.values()
               for p in s.points() if p.symbol() == "x"}
    results.tabs.setCurrentWidget(suspects)
    assert suspects.search is not None and not started  # listed already, nothing started
    assert {s.path for s in suspects.search.suspects} == crossed and crossed
    assert suspects.status.text().startswith(f"{counted(len(crossed), 'suspect label')} among")
    with qtbot.waitSignal(suspects.finished, timeout=1_000) as done:
        qtbot.mouseClick(suspects.find_button, Qt.MouseButton.LeftButton)
    assert done.args == ["ok"] and not started  # the button too answers from what is known
    suspects.table.selectRow(0)
    left_out = suspects.paths()[0]
    qtbot.mouseClick(suspects.leave_out_button, Qt.MouseButton.LeftButton)
    assert window.state.excluded == {left_out}
    with qtbot.waitSignal(suspects.finished, timeout=CHILD_JOB_MS) as done:
        qtbot.mouseClick(suspects.find_button, Qt.MouseButton.LeftButton)
    assert done.args == ["ok"] and started  # another question: looked again
    assert left_out not in suspects.paths()
