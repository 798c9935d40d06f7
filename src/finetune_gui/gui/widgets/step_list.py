"""The left-hand list of steps: where the user is, what is done, and what is still missing."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from finetune_gui.gui.state import StepStatus

DONE_COLOUR = QColor("#2e7d32")
TODO_COLOUR = QColor("#c77700")
BLOCKED_COLOUR = QColor("#9aa0a6")


def _status_icon(number: int, status: StepStatus, size: int = 28) -> QIcon:
    """A numbered circle: green with a tick when done, orange when missing, grey when blocked."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = DONE_COLOUR if status.done else BLOCKED_COLOUR if status.blocked else TODO_COLOUR
    painter.setBrush(colour)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.setPen(QPen(QColor("white"), 2.4))
    if status.done:
        tick = [(0.28, 0.52), (0.44, 0.68), (0.72, 0.34)]
        painter.drawPolyline([QPointF(x * size, y * size) for x, y in tick])
    else:
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(size * 0.5))
        painter.setFont(font)
        painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, str(number))
    painter.end()
    return QIcon(pixmap)


class StepList(QListWidget):
    """One row per step: number or tick, title, and a short line of status."""

    step_chosen = Signal(str)

    def __init__(self, steps: dict[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stepList")
        self.setIconSize(QSize(28, 28))
        self.setSpacing(2)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._titles = dict(steps)
        self._keys = list(steps)
        for key, title in steps.items():
            item = QListWidgetItem(title)
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setSizeHint(QSize(240, 52))
            self.addItem(item)
        self.currentRowChanged.connect(self._on_row_changed)

    def _on_row_changed(self, row: int) -> None:
        if 0 <= row < len(self._keys):
            self.step_chosen.emit(self._keys[row])

    def select(self, key: str) -> None:
        self.setCurrentRow(self._keys.index(key))

    def set_status(self, key: str, status: StepStatus) -> None:
        row = self._keys.index(key)
        item = self.item(row)
        item.setText(f"{self._titles[key]}\n{status.text}")
        item.setIcon(_status_icon(row + 1, status))
        item.setToolTip(f"{self._titles[key]}: {status.text}")

    def status_text(self, key: str) -> str:
        return self.item(self._keys.index(key)).text().split("\n", 1)[-1]
