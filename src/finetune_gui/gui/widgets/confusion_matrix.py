"""The confusion matrix as a heatmap table: rows are the true class, columns the prediction.

A table (rather than a plot) gives readable class names, keyboard navigation and clickable cells
for free; each cell's colour follows its share of the row, so small classes read as clearly as
large ones. Column names are written upwards, so a long class name needs height, not width, and
cells keep a size their numbers fit in: past about ten classes the table scrolls rather than
cutting names ("aid actio") and counts ("2...").
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyleOptionHeader,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from finetune_gui.core.words import counted

CORRECT = (46, 125, 50)  # green for the diagonal
WRONG = (198, 40, 40)  # red for mistakes


def _blend(rgb: tuple[int, int, int], share: float) -> QColor:
    """White at share 0, the full colour at share 1."""
    share = max(0.0, min(1.0, share))
    return QColor(*(round(255 + (c - 255) * share) for c in rgb))


class UpwardHeader(QHeaderView):
    """A column header that writes each name from bottom to top, wrapped onto as many lines as
    the column is wide, so a long name costs a little height rather than being cut. The height
    is capped at `longest_text` pixels (beyond it a name ends in "…"; its tooltip is whole)."""

    padding = 6
    wrap = Qt.TextFlag.TextWordWrap

    def __init__(self, parent: QWidget | None = None, longest_text: int = 170) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.longest_text = longest_text
        self.setSectionsClickable(True)

    def label(self, section: int) -> str:
        return str(self.model().headerData(section, self.orientation(),
                                           Qt.ItemDataRole.DisplayRole) or "")

    def text_room(self) -> int:
        """How long a line of a name may be (the header's height less its padding)."""
        return self.height() - 2 * self.padding

    def lines_across(self, width: int) -> int:
        """Lines of text side by side in a column `width` pixels wide."""
        return max(1, (width - self.padding) // self.fontMetrics().lineSpacing())

    def fits(self, text: str, length: int, width: int) -> bool:
        """Whether `text`, wrapped at `length` pixels, takes no more lines than `width` holds."""
        box = self.fontMetrics().boundingRect(QRect(0, 0, length, 10_000), self.wrap, text)
        return (box.width() <= length
                and box.height() <= self.lines_across(width) * self.fontMetrics().lineSpacing())

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        width = max(self.minimumSectionSize(), 1)
        needed = 0
        for i in range(self.count()):
            length = 40
            while length < self.longest_text and not self.fits(self.label(i), length, width):
                length += 10
            needed = max(needed, length)
        hint.setHeight(min(needed, self.longest_text) + 2 * self.padding)
        return hint

    def sectionSizeFromContents(self, logical_index: int) -> QSize:
        return QSize(self.fontMetrics().height() + 2 * self.padding, self.sizeHint().height())

    def paintSection(self, painter: QPainter, rect: QRect, logical_index: int) -> None:
        option = QStyleOptionHeader()
        self.initStyleOption(option)
        option.rect = rect
        option.section = logical_index
        painter.save()
        self.style().drawControl(QStyle.ControlElement.CE_HeaderSection, option, painter, self)
        length = rect.height() - 2 * self.padding
        text = self.label(logical_index)
        if not self.fits(text, length, rect.width()):
            text = self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, length)
        painter.translate(rect.left(), rect.bottom() - self.padding)
        painter.rotate(-90)
        # After the turn, x runs up the column and y across it.
        painter.drawText(QRect(0, 0, length, rect.width()),
                         int(self.wrap | Qt.AlignmentFlag.AlignLeft
                             | Qt.AlignmentFlag.AlignVCenter), text)
        painter.restore()


class ConfusionMatrix(QTableWidget):
    """Emits `cell_chosen(true_index, predicted_index)` when a cell is clicked or activated."""

    cell_chosen = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalHeader(UpwardHeader(self))
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setToolTip("Rows: the true class. Columns: what the model said. Click a cell to see "
                        "its images.")
        self.cellClicked.connect(self.cell_chosen)
        self.cellActivated.connect(self.cell_chosen)

    def set_matrix(self, classes: list[str], confusion: list[list[int]]) -> None:
        n = len(classes)
        self.clear()
        metrics = self.fontMetrics()
        largest = max((count for row in confusion for count in row), default=0)
        # Stretched sections never shrink below these, so every count and share stays whole.
        self.horizontalHeader().setMinimumSectionSize(
            max(metrics.horizontalAdvance(text) for text in (str(largest), "100%")) + 14)
        self.verticalHeader().setMinimumSectionSize(2 * metrics.lineSpacing() + 8)
        self.setRowCount(n)
        self.setColumnCount(n)
        self.setHorizontalHeaderLabels([f"said {name}" for name in classes])
        self.setVerticalHeaderLabels([f"is {name}" for name in classes])
        for j, name in enumerate(classes):
            self.horizontalHeaderItem(j).setToolTip(f"what the model said: {name}")
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
                    f"{counted(count, 'image')} of '{classes[i]}' the model called '{classes[j]}' "
                    f"({verdict}). Click to see them."
                )
                self.setItem(i, j, item)

    def count_at(self, true_index: int, predicted_index: int) -> int:
        return int(self.item(true_index, predicted_index).text().split("\n")[0])
