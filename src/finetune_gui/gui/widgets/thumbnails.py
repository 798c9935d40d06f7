"""Small pictures of images: made as QImage on a worker thread, shown as QPixmap on the GUI thread.

QImage may be created on any thread; QPixmap only on the GUI thread. So job functions here return
QImages, and the widgets turn them into pixmaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QImageReader, QPainter, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem, QWidget

from finetune_gui.core.data.images import ImageReadError, load_rgb
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)


def array_to_qimage(pixels: np.ndarray) -> QImage:
    """A deep-copied QImage of uint8 RGB pixels (H, W, 3)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    image = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # the numpy buffer goes away; the copy owns its pixels


def on_white(image: QImage) -> QImage:
    """Transparent pixels laid on white, as the engine does when it reads an image; a plain
    conversion to RGB turns them black, and dark icons then vanish into black squares."""
    if not image.hasAlphaChannel():
        return image.convertToFormat(QImage.Format.Format_RGB32)
    flat = QImage(image.size(), QImage.Format.Format_RGB32)
    flat.fill(QColor("white"))
    painter = QPainter(flat)
    painter.drawImage(0, 0, image)
    painter.end()
    return flat


def load_thumbnail(path: Path | str, size: int) -> QImage:
    """The image scaled to fit `size` x `size`, or a null QImage if it cannot be read.

    Qt's reader decodes JPEGs at reduced scale and applies EXIF rotation; the core reader is
    the fallback for what Qt cannot read (e.g. 16-bit or CMYK files on some builds).
    """
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    original = reader.size()
    if original.isValid() and (original.width() > size or original.height() > size):
        reader.setScaledSize(original.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if not image.isNull():
        return on_white(image)
    try:
        pixels = load_rgb(Path(path))
    except ImageReadError:
        return QImage()
    image = array_to_qimage(pixels)
    return image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation)


def load_thumbnails(
    paths: Sequence[Path | str],
    size: int,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> dict[str, QImage]:
    """A job: thumbnails for many files, keyed by the path as a string."""
    progress(StageStarted("thumbnails", len(paths), "Making thumbnails"))
    images: dict[str, QImage] = {}
    for done, path in enumerate(paths, start=1):
        check_cancel(cancel)
        images[str(path)] = load_thumbnail(path, size)
        progress(StageProgress("thumbnails", done, len(paths)))
    return images


def placeholder_pixmap(size: int, text: str = "?") -> QPixmap:
    """A grey square for a file that cannot be shown."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor("#d9dde3"))
    painter = QPainter(pixmap)
    painter.setPen(QColor("#6b7280"))
    painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return pixmap


def to_pixmap(image: QImage | None, size: int, path: Path | str | None = None) -> QPixmap:
    """The picture, or a grey square saying why there is none: "missing" when `path` names no
    file any more (moved or deleted since the scan), else "unreadable"."""
    if image is None or image.isNull():
        gone = path is not None and not Path(path).exists()
        return placeholder_pixmap(size, "missing" if gone else "unreadable")
    return QPixmap.fromImage(image)


class ThumbnailStrip(QWidget):
    """A row of small pictures (the examples of one class)."""

    def __init__(self, size: int = 48, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumb_size = size
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.setSpacing(3)
        self._layout.addStretch(1)

    def set_images(self, images: Sequence[tuple[QImage | None, str]]) -> None:
        """Show (image, tooltip) pairs, replacing what was shown."""
        while self._layout.count() > 1:
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for index, (image, tip) in enumerate(images):
            label = QLabel()
            label.setFixedSize(self.thumb_size, self.thumb_size)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setPixmap(to_pixmap(image, self.thumb_size).scaled(
                self.thumb_size, self.thumb_size, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))
            label.setToolTip(tip)
            self._layout.insertWidget(index, label)

    def count(self) -> int:
        return self._layout.count() - 1


class ImageGallery(QListWidget):
    """A grid of pictures with a caption under each; the item's data holds the file path."""

    PATH_ROLE = Qt.ItemDataRole.UserRole

    def __init__(self, icon_size: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.thumb_size = icon_size
        # Qt wraps a caption at the picture's width: pictures padded to a wider area leave room
        # for "said triangles (100%)" on one line.
        self.setIconSize(QSize(icon_size + 64, icon_size))
        self.setGridSize(QSize(icon_size + 84, icon_size + 48))
        self.setWordWrap(True)
        self.setSpacing(4)
        self.setUniformItemSizes(True)

    def add_image(self, path: str, caption: str, tooltip: str = "") -> QListWidgetItem:
        """Add one picture; its image arrives later through `set_image`."""
        item = QListWidgetItem(self._icon(placeholder_pixmap(self.thumb_size, "…")), caption)
        item.setData(self.PATH_ROLE, path)
        item.setToolTip(tooltip or path)
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.addItem(item)
        return item

    def set_images(self, images: dict[str, QImage]) -> None:
        """Fill in pictures loaded by `load_thumbnails` (keyed by path)."""
        size = self.thumb_size
        for row in range(self.count()):
            item = self.item(row)
            path = item.data(self.PATH_ROLE)
            if path in images:
                item.setIcon(self._icon(to_pixmap(images[path], size, path)))

    def _icon(self, picture: QPixmap) -> QIcon:
        """`picture` centred on a transparent canvas of the (wide) icon size."""
        area = self.iconSize()
        picture = picture.scaled(area, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        canvas = QPixmap(area)
        canvas.fill(Qt.GlobalColor.transparent)
        painter = QPainter(canvas)
        painter.drawPixmap((area.width() - picture.width()) // 2,
                           (area.height() - picture.height()) // 2, picture)
        painter.end()
        return QIcon(canvas)

    def paths(self) -> list[str]:
        return [self.item(row).data(self.PATH_ROLE) for row in range(self.count())]
