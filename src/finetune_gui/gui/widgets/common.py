"""Small building blocks every page uses: a heading, a coloured banner, a help-tipped form row."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.words import counted

BANNER_STYLES = {
    "info": "background:#e8f1fb; border:1px solid #b6d0ee; color:#173a5e;",
    "warning": "background:#fff4e0; border:1px solid #f0c987; color:#5c3b00;",
    "error": "background:#fdecea; border:1px solid #f2b8b5; color:#7a1c16;",
    "success": "background:#e9f6ec; border:1px solid #b5dfc0; color:#1d4d2b;",
}


class Banner(QLabel):
    """A rounded, coloured box of plain text; hidden while it has nothing to say."""

    def __init__(self, kind: str = "info", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.set_kind(kind)
        self.hide()

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        self.setStyleSheet(f"QLabel {{ {BANNER_STYLES[kind]} border-radius:6px; padding:8px; }}")

    def show_text(self, text: str, kind: str | None = None) -> None:
        if kind:
            self.set_kind(kind)
        self.setText(text)
        self.setVisible(bool(text))


def scrolling_page(page: QWidget) -> QVBoxLayout:
    """The layout of `page`'s contents, inside a frameless scroll area that fills the page: a
    page taller than the window scrolls rather than squeezing its labels to half a line."""
    outer = QVBoxLayout(page)
    outer.setContentsMargins(0, 0, 0, 0)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    outer.addWidget(scroll)
    body = QWidget()
    scroll.setWidget(body)
    return QVBoxLayout(body)


def page_header(title: str, text: str) -> QWidget:
    """The title of a page and one or two sentences saying what to do here."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 4)
    layout.setSpacing(2)
    heading = QLabel(title)
    heading.setObjectName("pageTitle")
    font = heading.font()
    font.setPointSizeF(font.pointSizeF() * 1.5)
    font.setBold(True)
    heading.setFont(font)
    intro = QLabel(text)
    intro.setObjectName("pageIntro")
    intro.setWordWrap(True)
    intro.setStyleSheet("color:#4b5563;")
    layout.addWidget(heading)
    layout.addWidget(intro)
    return box


def help_label(text: str, tip: str) -> QLabel:
    """A form label whose tooltip explains the setting in plain words."""
    label = QLabel(text)
    label.setToolTip(tip)
    return label


class LeaveOutRow(QHBoxLayout):
    """"Leave the selected images out of the next run" and a note of how many are left out."""

    def __init__(self, tooltip: str) -> None:
        super().__init__()
        self.button = QPushButton("Leave the selected images out of the next run")
        self.button.setToolTip(tooltip)
        self.button.setEnabled(False)
        self.note = QLabel()
        self.note.setStyleSheet("color:#4b5563;")
        self.addWidget(self.button)
        self.addWidget(self.note, 1)

    def say_left_out(self, added: int, total: int, then: str = "") -> None:
        self.note.setText(f"{counted(added, 'image')} will be left out of the next run; "
                          f"{total} in all."
                          + (f" {then}" if then else ""))
