""""Group similar pictures": each proposed group with a few of its pictures and a name to give it.

Giving two groups the same name merges them; a group left unnamed or ticked "Dismiss" labels
nothing. Only the pictures shown (the ones nearest the group's centre) are labelled: those are
the ones the user looked at.
"""

from __future__ import annotations

from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.widgets.thumbnails import ThumbnailStrip

THUMB = 64


class GroupsDialog(QDialog):
    """Name, merge (same name) or dismiss the proposed groups; `names()` after Accepted."""

    def __init__(self, groups: list[tuple[int, int, list[str]]], images: dict[str, QImage],
                 classes: list[str], parent: QWidget | None = None) -> None:
        """`groups`: (number, size, paths shown) each; `images` their thumbnails by path."""
        super().__init__(parent)
        self.setWindowTitle("Group similar pictures")
        layout = QVBoxLayout(self)
        intro = QLabel("Pictures the network sees as alike, in groups. Type a class name for a "
                       "group (the same name for two groups merges them), or dismiss it. The "
                       "pictures shown get the name; the others are then proposed.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        body = QWidget()
        grid = QGridLayout(body)
        self.name_boxes: dict[int, QComboBox] = {}
        self.dismiss_boxes: dict[int, QCheckBox] = {}
        self.shown: dict[int, list[str]] = {}
        for row, (number, size, paths) in enumerate(groups):
            strip = ThumbnailStrip(THUMB)
            strip.set_images([(images.get(p), p) for p in paths])
            name = QComboBox()
            name.setEditable(True)
            name.addItems(["", *classes])
            name.setMinimumWidth(180)
            name.lineEdit().setPlaceholderText("class name")
            dismiss = QCheckBox("Dismiss")
            grid.addWidget(QLabel(f"Group {number}<br>{size} pictures"), row, 0)
            grid.addWidget(strip, row, 1)
            grid.addWidget(name, row, 2)
            grid.addWidget(dismiss, row, 3)
            self.name_boxes[number], self.dismiss_boxes[number] = name, dismiss
            self.shown[number] = list(paths)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        layout.addWidget(scroll, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Name the groups")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(900, 620)

    def name_group(self, number: int, name: str) -> None:
        self.name_boxes[number].setEditText(name)

    def names(self) -> dict[str, list[str]]:
        """Class name -> the paths shown of every group given that name (not dismissed)."""
        named: dict[str, list[str]] = {}
        for number, box in self.name_boxes.items():
            name = box.currentText()
            if name.strip() and not self.dismiss_boxes[number].isChecked():
                named.setdefault(name, []).extend(self.shown[number])
        return named
