"""The confusion matrix stays readable with long class names and up to 20 classes."""

from __future__ import annotations

import pytest

from finetune_gui.gui.widgets.confusion_matrix import ConfusionMatrix


def class_names(count: int) -> list[str]:
    return [f"first aid action {i:02d}" if i % 2 else f"décaféiné café_E{i}"
            for i in range(count)]


@pytest.mark.parametrize("count", [7, 20])
def test_names_and_numbers_are_whole_at_the_default_size(qtbot, count):
    matrix = ConfusionMatrix()
    qtbot.addWidget(matrix)
    matrix.resize(459, 293)  # what the Results page gives it in a 1280 x 860 window (measured)
    names = class_names(count)
    matrix.set_matrix(names, [[(123 if i == j else (i * j) % 7) for j in range(count)]
                              for i in range(count)])
    matrix.show()
    qtbot.wait(20)
    metrics = matrix.fontMetrics()
    header, rows = matrix.horizontalHeader(), matrix.verticalHeader()
    for j, name in enumerate(names):  # written upwards, wrapped, whole
        assert header.fits(f"said {name}", header.text_room(), header.sectionSize(j)), name
    assert matrix.viewport().height() >= 4 * rows.sectionSize(0)  # wrapping keeps rows in view
    for i in range(count):
        assert rows.sectionSize(i) >= 2 * metrics.lineSpacing()  # "123" over "100%"
        for j in range(count):
            widest = max(metrics.horizontalAdvance(line)
                         for line in matrix.item(i, j).text().split("\n"))
            assert widest + 6 <= header.sectionSize(j), (i, j, matrix.item(i, j).text())
    # Cells keep their size and the table scrolls, rather than squeezing 20 columns into view.
    assert matrix.horizontalScrollBar().maximum() > 0 and matrix.verticalScrollBar().maximum() > 0


def test_a_name_longer_than_the_header_ends_in_an_ellipsis_and_has_its_tooltip(qtbot):
    matrix = ConfusionMatrix()
    qtbot.addWidget(matrix)
    long_name = "a very long class name that goes on and on and on for ever and ever"
    matrix.set_matrix([long_name, "b"], [[3, 1], [0, 4]])
    assert matrix.horizontalHeader().sizeHint().height() <= 170 + 12
    assert long_name in matrix.horizontalHeaderItem(0).toolTip()
