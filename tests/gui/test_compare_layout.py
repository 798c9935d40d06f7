"""Compare runs (issue 25, item 11): the key to the curves is outside the plots, so it covers no
curve, and the run list shows each run's whole name."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QRectF, Qt
from PySide6.QtWidgets import QStyle

from finetune_gui.core.run.folder import write_history
from finetune_gui.gui.pages.compare import CompareRunsDialog
from finetune_gui.gui.state import ProjectState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helpers
from compare_runs import FILES, fake_run


def three_runs(folder: Path) -> list[Path]:
    """Three runs on one data folder whose curves fill their plots (loss falls, accuracy
    rises): an in-plot legend anywhere would lie over some of them."""
    runs = []
    for i, hits in enumerate([4, 3, 2]):
        run = fake_run(folder / f"2026120{i + 1}-162000-mobilenetv3small",
                       "/home/me/photos/holiday pictures", FILES, hits,
                       updated=f"2026-12-0{i + 1}T16:20:00")
        write_history(run / "history.csv", [
            {"epoch": e, "loss": 1.0, "accuracy": 0.5, "val_accuracy": 0.5 + 0.1 * e - 0.02 * i,
             "val_loss": 1.2 - 0.2 * e + 0.05 * i} for e in range(1, 5)])
        runs.append(run)
    return runs


def in_dialog(dialog, widget, rect: QRect) -> QRect:
    return QRect(widget.mapTo(dialog, rect.topLeft()), rect.size())


def test_the_key_is_beside_the_curves_and_the_list_shows_whole_names(qtbot, tmp_path):
    runs = three_runs(tmp_path / "runs")
    state = ProjectState(tmp_path / "runs")
    state.set_runs(runs)
    dialog = CompareRunsDialog(state)
    qtbot.addWidget(dialog)
    dialog.tick(runs)
    dialog.show()
    qtbot.waitExposed(dialog)
    names = dialog.comparison.names
    assert len(names) == 3 and all(" · holiday pictures · " in n for n in names)

    # Every run is in the key, in curve order, and the key lies over neither plot's curves.
    assert dialog.legend_names() == names
    key_text = dialog.key.text().replace("&nbsp;", " ")
    assert all(name in key_text for name in names)
    key = in_dialog(dialog, dialog.key, dialog.key.rect())
    assert dialog.key.isVisible() and key.height() >= dialog.key.heightForWidth(key.width())
    for plot in (dialog.accuracy_plot, dialog.loss_plot):
        assert dialog.curve_count(plot) == 3
        item = plot.getPlotItem()
        view = item.getViewBox()
        curves = plot.mapFromScene(view.sceneBoundingRect()).boundingRect()
        assert not key.intersects(in_dialog(dialog, plot, curves))
        # Nothing drawn over the data area: no legend inside the plot.
        inside = [child for child in plot.scene().items()
                  if child is not view and child.isVisible()
                  and type(child).__name__ == "LegendItem"
                  and QRectF(view.sceneBoundingRect()).intersects(child.sceneBoundingRect())]
        assert inside == []

    # The list shows each whole name (wrapped, not cut), without scrolling sideways.
    run_list = dialog.run_list
    viewport = run_list.viewport().rect()
    assert run_list.horizontalScrollBar().maximum() == 0
    tick = run_list.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth) + 12
    for row in range(run_list.count()):
        item = run_list.item(row)
        name = item.text()
        assert name in names and item.toolTip().startswith(name)
        shown = run_list.visualItemRect(item)
        assert viewport.contains(QRect(QPoint(shown.left(), shown.top()), shown.size())), name
        needed = run_list.fontMetrics().boundingRect(
            QRect(0, 0, shown.width() - tick, 10_000), int(Qt.TextFlag.TextWordWrap), name)
        assert needed.height() <= shown.height(), name
        assert run_list.fontMetrics().horizontalAdvance(name) > shown.width()  # it did wrap
