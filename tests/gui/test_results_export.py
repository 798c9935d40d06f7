"""Results and Export pages on a finished run (one tiny run made once by the core)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from finetune_gui.gui.state import LoadedRun

pytestmark = pytest.mark.slow


@pytest.fixture
def window(qtbot, make_window, trained_run):
    window = make_window()
    window.state.add_run(LoadedRun.read(trained_run))
    return window


def test_results_show_metrics_matrix_and_mistakes(qtbot, window):
    report = window.state.current_run.report
    results = window.pages["results"]
    window.go_to("results")
    # Named as Compare names it: network · data · time · test accuracy.
    assert results.run_choice.currentText().startswith("MobileNetV3Small · data · ")
    assert results.run_choice.currentText().endswith(f" · {report.accuracy:.1%}")
    assert f"{report.accuracy:.1%}" in results.headline.text()
    low, high = report.accuracy_interval
    assert f"(95% interval {low:.1%}-{high:.1%})" in results.headline.text()
    if report.count < 50:
        assert "rough estimate" in results.notice.text() and results.notice.isVisibleTo(results)
    assert results.metrics_table.rowCount() == len(report.classes) + 2
    first = report.per_class[0]
    assert results.metrics_table.item(0, 0).text() == first.name
    recall_low, recall_high = first.recall_interval
    assert results.metrics_table.item(0, 2).text().endswith(
        f"({recall_low:.0%}-{recall_high:.0%})"
    )
    assert results.metrics_table.item(0, 4).text() == str(first.support)
    # On a laptop-sized window every score is shown whole (an interval cut to "(44%-100…"
    # says nothing).
    window.resize(1280, 760)
    qtbot.waitUntil(lambda: results.metrics_table.isVisible())
    table = results.metrics_table
    metrics = table.fontMetrics()
    for column in range(table.columnCount()):
        texts = [table.horizontalHeaderItem(column).text()]
        texts += [table.item(row, column).text() for row in range(table.rowCount())]
        for text in texts:
            assert metrics.horizontalAdvance(text) + 6 <= table.columnWidth(column), text
    assert table.horizontalScrollBar().maximum() == 0  # and no column hides behind a scroll bar
    n = len(report.classes)
    assert sum(results.matrix.count_at(i, j) for i in range(n) for j in range(n)) == report.count
    assert results.gallery.count() == len(report.misclassified)
    if report.misclassified:
        qtbot.waitUntil(lambda: not results.runner.is_running, timeout=10_000)
        worst = report.misclassified[0]
        assert results.gallery.item(0).text().startswith(f"is {worst.true_label}")
    assert window.steps.status_text("results").startswith("test accuracy")


@pytest.mark.parametrize("diagonal", [True, False])
def test_each_matrix_cell_opens_its_images(qtbot, window, diagonal):
    report = window.state.current_run.report
    results = window.pages["results"]
    window.go_to("results")
    n = len(report.classes)
    cells = [(i, j) for i in range(n) for j in range(n)
             if (i == j) == diagonal and report.confusion[i][j] > 0]
    if not cells:
        pytest.skip("this run has no such cell")
    i, j = cells[0]
    rect = results.matrix.visualRect(results.matrix.model().index(i, j))
    qtbot.mouseClick(results.matrix.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    dialog = results.cell_dialogs[-1]
    assert dialog.gallery.count() == report.confusion[i][j]
    assert f"'{report.classes[i]}'" in dialog.windowTitle()
    with qtbot.waitSignal(dialog.runner.succeeded, timeout=10_000, raising=False):
        pass
    dialog.close()


def test_try_it_shows_top_three_and_explains_unreadable_files(qtbot, window, tmp_path):
    export = window.pages["export"].try_panel
    run = window.state.current_run
    test_image = run.report.predictions[0]["path"]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 nothing")
    with qtbot.waitSignal(export.predicted, timeout=120_000):
        export.predict([test_image, broken])
    from finetune_gui.gui.pages.export_try import ANSWER_COLUMN, ANSWER_COLUMNS

    assert export.predictions.rowCount() == 2
    answers = [export.predictions.item(0, c).text() for c in ANSWER_COLUMNS]
    # The model's own numbers for this image, as the run's report has them, best first.
    scored = run.report.predictions[0]["probabilities"]
    assert answers == [f"{run.classes[k]}  {scored[k]:.0%}" for k in np.argsort(scored)[::-1]]
    assert export.predictions.item(1, ANSWER_COLUMN).text().startswith("cannot read")
    assert not any(export.predictions.isColumnHidden(c) for c in ANSWER_COLUMNS)

    # A model of two classes has no third answer: its column is hidden, not left empty.
    from finetune_gui.core.run.predict import Prediction

    two = [Prediction(Path(test_image), [("circles", 0.8), ("squares", 0.2)])]
    export._on_predicted((export._model, two, {}))
    assert [export.predictions.isColumnHidden(c) for c in ANSWER_COLUMNS] == [False, False, True]


def test_mistakes_can_be_left_out_of_the_next_run_and_put_back(qtbot, window):
    results = window.pages["results"]
    data = window.pages["data"]
    window.go_to("results")
    if results.gallery.count() == 0:
        pytest.skip("this run made no mistakes")
    assert not results.leave_out_button.isEnabled()
    results.gallery.item(0).setSelected(True)
    qtbot.mouseClick(results.leave_out_button, Qt.MouseButton.LeftButton)
    worst = window.state.current_run.report.misclassified[0].path
    assert window.state.excluded == {Path(worst)}
    assert results.left_out_note.text() == "1 image will be left out of the next run; 1 in all."
    assert window.state.dirty
    window.go_to("data")
    assert data.excluded_box.isVisible() and "1 image is left out" in data.excluded_note.text()
    qtbot.mouseClick(data.put_back_button, Qt.MouseButton.LeftButton)
    assert window.state.excluded == set()
    assert not data.excluded_box.isVisible()
