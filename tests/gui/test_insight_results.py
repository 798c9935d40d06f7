"""Insight views on a finished run: heatmaps of mistakes and of tried images, suspect labels,
the map of all images, cancel, and a plain message when the run folder is gone."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel, QPoint, QPointF, Qt

from finetune_gui.core.run.folder import RunFolder
from finetune_gui.core.words import counted
from finetune_gui.gui.pages.results_map import class_colour
from finetune_gui.gui.state import LoadedRun
from finetune_gui.gui.widgets.heatmap import PANEL_SIDE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for insight_runs.py
from insight_runs import flipped_run, folder_bytes

pytestmark = pytest.mark.slow

CHILD_JOB_MS = 120_000


def open_run(make_window, run_dir: Path):
    window = make_window()
    window.state.add_run(LoadedRun.read(run_dir))
    window.go_to("results")
    return window


def no_traceback(text: str) -> bool:
    return "Traceback" not in text and 'File "' not in text


def click_gallery_item(qtbot, gallery, row: int) -> None:
    rect = gallery.visualItemRect(gallery.item(row))
    qtbot.mouseClick(gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def shows_picture(panel) -> bool:
    pixmap = panel.picture.pixmap()
    return panel._picture is not None and not pixmap.isNull()


# -- heatmaps -----------------------------------------------------------------------------------
def test_selecting_a_mistake_shows_its_heatmap_for_either_class(qtbot, make_window, trained_run):
    window = open_run(make_window, trained_run)
    results = window.pages["results"]
    report = window.state.current_run.report
    assert report.misclassified, "the shared tiny run is expected to make mistakes"
    worst = report.misclassified[0]
    panel = results.heatmap_panel
    results.tabs.setCurrentIndex(0)
    with qtbot.waitSignal(panel.shown, timeout=60_000):
        click_gallery_item(qtbot, results.gallery, 0)
    assert shows_picture(panel)
    pixmap = panel.picture.pixmap()
    assert (pixmap.width(), pixmap.height()) == (PANEL_SIDE, PANEL_SIDE)  # square images
    assert f"Labelled <b>{worst.true_label}</b>" in panel.caption.text()
    assert f"said <b>{worst.predicted_label}</b>" in panel.caption.text()
    assert Path(worst.path).name in panel.title.text()
    assert f"think <b>{worst.predicted_label}</b>" in panel.meaning.text()
    assert [panel.class_choice.itemData(i) for i in range(panel.class_choice.count())] == [
        worst.predicted_label, worst.true_label]
    with qtbot.waitSignal(panel.shown, timeout=30_000):
        panel.class_choice.setCurrentIndex(1)
    assert f"think <b>{worst.true_label}</b>" in panel.meaning.text()
    assert panel.key.class_name == worst.true_label
    assert not results.heatmaps.is_busy


def test_a_confusion_matrix_cell_shows_heatmaps_of_its_images(qtbot, make_window, trained_run):
    window = open_run(make_window, trained_run)
    results = window.pages["results"]
    report = window.state.current_run.report
    n = len(report.classes)
    i, j = next((i, j) for i in range(n) for j in range(n) if report.confusion[i][j])
    dialog = results.open_cell(i, j)
    with qtbot.waitSignal(dialog.heatmap_panel.shown, timeout=60_000):
        click_gallery_item(qtbot, dialog.gallery, 0)
    panel = dialog.heatmap_panel
    assert shows_picture(panel)
    assert f"Labelled <b>{report.classes[i]}</b>" in panel.caption.text()
    assert f"think <b>{report.classes[j]}</b>" in panel.meaning.text()
    dialog.close()


def test_try_it_shows_a_heatmap_of_the_best_answer(qtbot, make_window, trained_run):
    window = open_run(make_window, trained_run)
    export = window.pages["export"].try_panel
    window.go_to("export")
    image = Path(window.state.current_run.report.predictions[0]["path"])
    panel = export.heatmap_panel
    with qtbot.waitSignal(panel.shown, timeout=60_000):
        export.predict([image])
    from finetune_gui.gui.pages.export_try import ANSWER_COLUMN

    best = export.predictions.item(0, ANSWER_COLUMN).text().split()[0]
    assert shows_picture(panel)
    assert panel.picture.pixmap().width() == PANEL_SIDE
    (shown,) = export._shown_predictions
    said = (f"its best guess is {best} (" if shown.unsure  # a tiny run may well be unsure
            else f"says <b>{best}</b>")  # fmt: skip
    assert shown.top[0][0] == best and said in panel.caption.text()
    assert f"think <b>{best}</b>" in panel.meaning.text()
    assert panel.class_choice.count() == 3
    # The heatmap reused the model the prediction loaded.
    assert export.heatmaps.model is export._model


# -- suspect labels -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flipped(tmp_path_factory, pretrained_base):
    """The core tests' run with planted wrong labels (trained once per session, shared)."""
    return flipped_run(tmp_path_factory, pretrained_base)


def test_suspects_list_planted_wrong_labels_and_leave_them_out(qtbot, make_window, flipped):
    window = open_run(make_window, flipped.run_dir)
    view = window.pages["results"].suspects
    window.pages["results"].tabs.setCurrentWidget(view)
    with qtbot.waitSignal(view.finished, timeout=CHILD_JOB_MS) as done:
        qtbot.mouseClick(view.find_button, Qt.MouseButton.LeftButton)
        assert view.cancel_button.isVisible() and not view.find_button.isEnabled()
    assert done.args == ["ok"]
    listed = view.paths()
    assert set(flipped.flipped) <= set(listed)
    top = listed[: len(flipped.flipped)]
    assert len(set(top) & set(flipped.flipped)) >= len(flipped.flipped) - 1
    for row, path in enumerate(listed):
        if path in flipped.flipped:
            assert view.table.item(row, 2).text() == path.parent.name  # the given label
            assert view.table.item(row, 3).text() == flipped.flipped[path]  # the true class
    assert not view.saw_labels_note.isVisible()  # a frozen pretrained base saw no labels
    assert f"{counted(len(listed), 'suspect label')} among 121 images, surest first" in view.status.text()

    view.table.clearSelection()
    selection = view.table.selectionModel()
    for row, path in enumerate(listed):
        if path in flipped.flipped:
            selection.select(view.table.model().index(row, 1),
                             QItemSelectionModel.SelectionFlag.Select
                             | QItemSelectionModel.SelectionFlag.Rows)
    qtbot.mouseClick(view.leave_out_button, Qt.MouseButton.LeftButton)
    assert window.state.excluded == set(flipped.flipped)
    count = len(flipped.flipped)
    assert view.left_out_note.text().startswith(
        f"{count} images will be left out of the next run; {count} in all. Train again")
    assert folder_bytes(flipped.data) == flipped.fingerprint_before
    left_out = [view.table.item(r, 1).text() for r in range(len(listed))
                if listed[r] in flipped.flipped]
    assert all(text.endswith("(left out)") for text in left_out)


def test_suspects_say_when_the_backbone_saw_the_labels(qtbot, make_window, trained_run):
    window = open_run(make_window, trained_run)
    view = window.pages["results"].suspects
    window.pages["results"].tabs.setCurrentWidget(view)
    with qtbot.waitSignal(view.finished, timeout=CHILD_JOB_MS) as done:
        view.find()
    assert done.args == ["ok"]
    # One block was set to be fine-tuned; the note follows whether that model was kept.
    fine_tuned = RunFolder.open(trained_run).facts.kept_model == "fine-tuned"
    assert view.saw_labels_note.isVisible() == fine_tuned
    if fine_tuned:
        assert "learned some wrong labels by heart" in view.saw_labels_note.text()


# -- the map ------------------------------------------------------------------------------------
def test_map_has_a_point_per_image_in_class_colours_and_a_click_shows_it(
        qtbot, make_window, trained_run):
    window = open_run(make_window, trained_run)
    results = window.pages["results"]
    view = results.map_view
    results.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(view.finished, timeout=CHILD_JOB_MS) as done:
        qtbot.mouseClick(view.draw_button, Qt.MouseButton.LeftButton)
    assert done.args == ["ok"]
    run = RunFolder.open(trained_run)
    split = run.split()
    expected = {path: run.classes[label] for part in (split.train, split.val, split.test)
                for path, label in part}
    shown = {}
    for index, name in enumerate(run.classes):
        scatter = view.class_items[name]
        assert scatter.opts["brush"].color().name() == class_colour(index, len(run.classes))
        for point in scatter.points():
            shown[view.map.paths[point.data()]] = name
    assert shown == expected  # one point per image, in its class's colour
    assert all(name in view.legend.text() for name in run.classes)
    crossed = {view.map.paths[p.data()] for s in view.class_items.values() for p in s.points()
               if p.symbol() == "x"}
    assert crossed == {s.path for s in view.map.suspects}  # the Suspect labels tab's list

    # A real click on a dot shows that image in the side panel. The dot is the one furthest
    # from any other, so the click can mean only it.
    points = view.map.points
    gaps = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    np.fill_diagonal(gaps, np.inf)
    index = int(np.argmax(gaps.min(axis=1)))
    scatter = view.class_items[view.map.classes_of_points[index]]
    point = next(p for p in scatter.points() if p.data() == index)
    view_box = view.plot.getPlotItem().getViewBox()
    scene_pos = view_box.mapViewToScene(QPointF(point.pos()))
    widget_pos = view.plot.mapFromScene(scene_pos)
    with qtbot.waitSignal(view.point_chosen, timeout=5_000) as chosen:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton,
                         pos=QPoint(widget_pos.x(), widget_pos.y()))
    clicked = chosen.args[0]
    assert clicked == index
    assert str(view.map.paths[clicked]) in view.panel.title.text()
    with qtbot.waitSignal(view.panel.shown, timeout=60_000):
        pass
    assert shows_picture(view.panel)


# -- cancel and failures ------------------------------------------------------------------------
def test_cancel_stops_the_suspect_search_and_the_map(qtbot, make_window, trained_run):
    window = open_run(make_window, trained_run)
    results = window.pages["results"]
    for view, start in ((results.suspects, results.suspects.find),
                        (results.map_view, results.map_view.draw)):
        results.tabs.setCurrentWidget(view)
        with qtbot.waitSignal(view.finished, timeout=CHILD_JOB_MS) as done:
            start()
            assert view.cancel_button.isVisible() and view.progress.isVisible()
            qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
        assert done.args == ["cancelled"]
        assert view.status.text().startswith("Stopped")
        assert not view.cancel_button.isVisible() and not view.progress.isVisible()
    assert results.suspects.table.rowCount() == 0
    assert results.map_view.map is None
    assert results.suspects.find_button.isEnabled() and results.map_view.draw_button.isEnabled()


def test_a_deleted_run_folder_gives_plain_messages(qtbot, make_window, trained_run, tmp_path):
    copy = tmp_path / "soon-gone"
    shutil.copytree(trained_run, copy)
    window = open_run(make_window, copy)
    results = window.pages["results"]
    shutil.rmtree(copy)
    for view, start in ((results.suspects, results.suspects.find),
                        (results.map_view, results.map_view.draw)):
        results.tabs.setCurrentWidget(view)
        with qtbot.waitSignal(view.finished, timeout=CHILD_JOB_MS) as done:
            start()
        assert done.args == ["failed"]
        assert view.problem.isVisible()
        assert "is not a run folder" in view.problem.text()
        assert no_traceback(view.problem.text())
    panel = results.heatmap_panel
    results.tabs.setCurrentIndex(0)
    with qtbot.waitSignal(panel.shown, timeout=60_000):
        click_gallery_item(qtbot, results.gallery, 0)
    assert panel._picture is None
    assert "cannot be loaded" in panel.meaning.text()
    assert no_traceback(panel.meaning.text())
