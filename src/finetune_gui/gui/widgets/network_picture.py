"""A picture of the network: the backbone's blocks left to right, frozen ones grey, trainable
ones coloured, then the new head. Bar height follows each block's parameter count."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

FROZEN = QColor("#b8c2cc")
TRAINABLE = QColor("#f08c2e")
HEAD = QColor("#2e9d5b")
INK = QColor("#37414b")


def format_params(count: int) -> str:
    """1234567 -> '1.23 M'; 12345 -> '12.3 k'."""
    if count >= 1_000_000:
        return f"{count / 1e6:.2f} M"
    if count >= 1_000:
        return f"{count / 1e3:.1f} k"
    return str(count)


class NetworkPicture(QWidget):
    """Shows a `core.model.NetworkDescription`; `set_message` shows text instead (e.g. busy)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.description = None
        self.message = "Measuring the network…"
        self._bars: list[tuple[QRectF, str]] = []
        self.setMouseTracking(True)
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(600, 170)

    def set_description(self, description) -> None:
        self.description = description
        self.message = ""
        self.update()

    def set_message(self, text: str) -> None:
        self.message = text
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        if self.description is None or self.message:
            painter.setPen(INK)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            painter.end()
            return
        self._paint_network(painter)
        painter.end()

    def _paint_network(self, painter: QPainter) -> None:
        blocks = self.description.blocks
        margin, label_h, legend_h = 10.0, 18.0, 22.0
        top = margin + label_h
        bottom = self.height() - margin - legend_h
        area_h = max(20.0, bottom - top)
        head_w = 44.0
        gap = 2.0 if len(blocks) < 40 else 1.0
        left = margin
        right = self.width() - margin - head_w - 12.0
        bar_w = max(2.0, (right - left - gap * (len(blocks) - 1)) / max(1, len(blocks)))
        largest = max([b.params for b in blocks] + [self.description.head_params, 1])

        def height_for(params: int) -> float:
            # Square-root scale: a 1 M block stays visible beside a 10 M one.
            return max(6.0, area_h * math.sqrt(params / largest))

        self._bars = []
        x = left
        painter.setPen(Qt.PenStyle.NoPen)
        for block in blocks:
            h = height_for(block.params)
            rect = QRectF(x, bottom - h, bar_w, h)
            painter.setBrush(TRAINABLE if block.trainable else FROZEN)
            painter.drawRoundedRect(rect, 2, 2)
            state = "trainable" if block.trainable else "frozen"
            self._bars.append(
                (QRectF(x, top, bar_w + gap, area_h),
                 f"{block.name}: {format_params(block.params)} parameters, {state}")
            )
            x += bar_w + gap
        head_rect = QRectF(right + 12.0, bottom - height_for(self.description.head_params),
                           head_w, height_for(self.description.head_params))
        painter.setBrush(HEAD)
        painter.drawRoundedRect(head_rect, 3, 3)
        self._bars.append((QRectF(right + 12.0, top, head_w, area_h),
                           f"new head: {format_params(self.description.head_params)} "
                           f"parameters, always trained"))

        painter.setPen(INK)
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() - 1))
        painter.setFont(small)
        painter.drawText(QRectF(left, margin, right - left, label_h),
                         Qt.AlignmentFlag.AlignLeft, "input → backbone blocks (stem first)")
        painter.drawText(QRectF(right - 20.0, margin, head_w + 40.0, label_h),
                         Qt.AlignmentFlag.AlignRight, "head")
        self._paint_legend(painter, QRectF(left, bottom + 6.0, self.width() - 2 * margin, legend_h))

    def _paint_legend(self, painter: QPainter, rect: QRectF) -> None:
        x = rect.left()
        for colour, text in ((FROZEN, "frozen (kept as is)"), (TRAINABLE, "fine-tuned"),
                             (HEAD, "new head")):
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QBrush(colour))
            painter.drawRect(QRectF(x, rect.top() + 4, 12, 12))
            painter.setPen(QPen(INK))
            width = painter.fontMetrics().horizontalAdvance(text) + 8
            painter.drawText(QRectF(x + 16, rect.top(), width, rect.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
            x += 16 + width + 14

    def mouseMoveEvent(self, event) -> None:
        for rect, text in self._bars:
            if rect.contains(event.position()):
                QToolTip.showText(event.globalPosition().toPoint(), text, self)
                return
        QToolTip.hideText()
