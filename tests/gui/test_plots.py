"""The training curves start every run from an empty view, whatever the last run showed."""

from __future__ import annotations

from finetune_gui.gui.widgets.plots import TrainingCurves


def _view(plot) -> tuple[tuple[float, float], tuple[float, float]]:
    (x0, x1), (y0, y1) = plot.getPlotItem().getViewBox().viewRange()
    return (round(x0, 1), round(x1, 1)), (round(y0, 1), round(y1, 1))


def test_clearing_the_curves_forgets_the_last_runs_range(qtbot):
    curves = TrainingCurves()
    qtbot.addWidget(curves)
    curves.resize(800, 300)
    curves.show()
    for epoch, loss in enumerate([4.0, 3.5, 3.0, 2.5, 2.0, 1.8, 1.6, 1.5], start=1):
        curves.add_epoch(epoch, {"loss": loss, "val_loss": loss + 0.5,
                                 "accuracy": 0.5, "val_accuracy": 0.6})
    qtbot.waitUntil(lambda: _view(curves.loss_plot)[1][1] > 3)  # the view follows the data
    curves.clear()
    qtbot.wait(50)
    assert curves.point_count() == 0
    (_, loss_x_max), (_, loss_y_max) = _view(curves.loss_plot)
    assert loss_x_max <= 1.1 and loss_y_max <= 1.1  # not epochs 1 ... 8, loss 1.5 ... 4.5
    assert _view(curves.accuracy_plot)[0][1] <= 1.1  # not epochs 1 ... 8 any more
    curves.add_epoch(1, {"loss": 9.0, "val_loss": 10.0, "accuracy": 0.1, "val_accuracy": 0.2})
    qtbot.waitUntil(lambda: _view(curves.loss_plot)[1][1] >= 9)  # and follows the new run
