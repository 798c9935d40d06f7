"""A window listing the images behind one confusion-matrix cell, with their thumbnails."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.widgets.thumbnails import ImageGallery, load_thumbnails
from finetune_gui.gui.worker import JobRunner

THUMB = 96


class CellImagesDialog(QDialog):
    """Non-modal: several can be open side by side while the user compares cells."""

    def __init__(self, title: str, items: list[tuple[str, str]], parent: QWidget | None = None,
                 side: QWidget | None = None):
        """`items` are (path, caption) pairs; `side` (e.g. a heatmap panel) goes right of them."""
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(720 if side is None else 1000, 480 if side is None else 560)
        layout = QVBoxLayout(self)
        heading = QLabel(title if items else f"{title}: there are no images in this cell.")
        heading.setWordWrap(True)
        layout.addWidget(heading)
        self.gallery = ImageGallery(THUMB)
        for path, caption in items:
            self.gallery.add_image(path, caption)
        if side is None:
            layout.addWidget(self.gallery, 1)
        else:
            row = QHBoxLayout()
            row.addWidget(self.gallery, 1)
            row.addWidget(side)
            layout.addLayout(row, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.runner = JobRunner("cell-thumbnails", self)
        self.runner.succeeded.connect(self.gallery.set_images)
        if items:
            self.runner.start(load_thumbnails, [path for path, _ in items], THUMB)

    def closeEvent(self, event) -> None:
        self.runner.shutdown()
        super().closeEvent(event)
