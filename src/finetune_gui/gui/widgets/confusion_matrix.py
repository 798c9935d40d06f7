"""The confusion matrix as a heatmap table: rows are the true class, columns the prediction.

A table (rather than a plot) gives readable class names, keyboard navigation and clickable cells
for free; each cell's colour follows its share of the row, so small classes read as clearly as
large ones.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

CORRECT = (46, 125, 50)  # green for the diagonal
WRONG = (198, 40, 40)  # red for mistakes


def _blend(rgb: tuple[int, int, int], share: float) -> QColor:
    """White at share 0, the full colour at share 1."""
    share = max(0.0, min(1.0, share))
    return QColor(*(round(255 + (c - 255) * share) for c in rgb))


class ConfusionMatrix(QTableWidget):
    """Emits `cell_chosen(true_index, predicted_index)` when a cell is clicked or activated."""

    cell_chosen = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setToolTip("Rows: the true class. Columns: what the model said. Click a cell to see "
                        "its images.")
        self.cellClicked.connect(self.cell_chosen)
        self.cellActivated.connect(self.cell_chosen)

    def set_matrix(self, classes: list[str], confusion: list[list[int]]) -> None:
        n = len(classes)
        self.clear()
        self.setRowCount(n)
        self.setColumnCount(n)
        self.setHorizontalHeaderLabels([f"said {name}" for name in classes])
        self.setVerticalHeaderLabels([f"is {name}" for name in classes])
        for i, row in enumerate(confusion):
            total = sum(row) or 1
            for j, count in enumerate(row):
                share = count / total
                item = QTableWidgetItem(f"{count}\n{share:.0%}" if count else "0")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                colour = _blend(CORRECT if i == j else WRONG, share * 0.85)
                item.setBackground(QBrush(colour))
                item.setForeground(QBrush(QColor("white" if share > 0.55 else "#1f2933")))
                verdict = "correct" if i == j else "mistaken"
                item.setToolTip(
                    f"{count} image(s) of '{classes[i]}' the model called '{classes[j]}' "
                    f"({verdict}). Click to see them."
                )
                self.setItem(i, j, item)

    def count_at(self, true_index: int, predicted_index: int) -> int:
        return int(self.item(true_index, predicted_index).text().split("\n")[0])
