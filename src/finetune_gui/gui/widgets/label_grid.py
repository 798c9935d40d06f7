"""The labelling view's page: a grid of pictures, each with its proposed class, run by the keys.

One picture is current (framed in blue). A number key gives it that class and moves on; 0 is
"none of these"; a click makes a picture current (a click on a class in the class list then
gives it that class); Space opens it large; Enter accepts the page: every picture takes the
class chosen for it, else its proposal. The grid holds no engine state: it reports answers,
and the window records them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QGridLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.widgets.thumbnails import load_thumbnail, placeholder_pixmap, to_pixmap

COLUMNS = 6
THUMB = 112
NONE_OF_THESE = "none of these"
_LEFT_OUT = object()  # the choice "none of these" (None means: no choice made)
_FRAMES = {
    "current": "QFrame#tile { border:3px solid #2563eb; border-radius:6px; background:#eff6ff; }",
    "chosen": "QFrame#tile { border:2px solid #16a34a; border-radius:6px; background:#f0fdf4; }",
    "none": "QFrame#tile { border:2px dashed #9ca3af; border-radius:6px; background:#f3f4f6; }",
    "plain": "QFrame#tile { border:1px solid #d1d5db; border-radius:6px; background:white; }",
}


class PictureTile(QFrame):
    """One picture and the line under it: the class chosen, or the one proposed."""

    clicked = Signal(int)
    double_clicked = Signal(int)

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setObjectName("tile")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        self.picture = QLabel()
        self.picture.setFixedSize(THUMB, THUMB)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setWordWrap(True)
        self.caption.setFixedWidth(THUMB + 8)
        layout.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.caption)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_image(self, image: QImage | None) -> None:
        self.picture.setPixmap(to_pixmap(image, THUMB).scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.clicked.emit(self.index)
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.double_clicked.emit(self.index)


class LabelGrid(QWidget):
    """The pictures asked now; `answers()` is what Enter accepts."""

    page_accepted = Signal()
    open_requested = Signal(str)  # the path of the picture to show large
    changed = Signal()  # a choice or the current picture changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._layout = QGridLayout(self)
        self._layout.setSpacing(6)
        self.tiles: list[PictureTile] = []
        self.rows: list[int] = []  # the labeller's row of each tile
        self.paths: list[str] = []
        self.proposed: list[tuple[str, float] | None] = []
        self.choices: dict[int, object] = {}  # tile -> class name or _LEFT_OUT
        self.classes: list[str] = []
        self.current = 0

    # -- filling ------------------------------------------------------------------------------
    def set_page(self, rows: list[int], paths: list[str],
                 proposed: list[tuple[str, float] | None], classes: list[str]) -> None:
        """Show a new page: the pictures (without images yet) and their proposals."""
        for tile in self.tiles:
            tile.deleteLater()
        self.tiles, self.rows, self.paths, self.proposed = [], list(rows), list(paths), list(
            proposed)
        self.choices, self.classes, self.current = {}, list(classes), 0
        for index, path in enumerate(paths):
            tile = PictureTile(index)
            tile.picture.setPixmap(placeholder_pixmap(THUMB, "…"))
            tile.setToolTip(path)
            tile.clicked.connect(self.make_current)
            tile.double_clicked.connect(lambda i: self.open_requested.emit(self.paths[i]))
            self._layout.addWidget(tile, index // COLUMNS, index % COLUMNS)
            self.tiles.append(tile)
        self._redraw()
        self.setFocus()

    def set_images(self, images: dict[str, QImage]) -> None:
        for tile, path in zip(self.tiles, self.paths, strict=True):
            if path in images:
                tile.set_image(images[path])

    def set_classes(self, classes: list[str]) -> None:
        self.classes = list(classes)
        self._redraw()

    # -- choosing -----------------------------------------------------------------------------
    def make_current(self, index: int) -> None:
        if 0 <= index < len(self.tiles):
            self.current = index
            self._redraw()
            self.setFocus()

    def choose(self, name: str | None, index: int | None = None, advance: bool = True) -> None:
        """Give the current picture (or tile `index`) class `name` (None: "none of these")."""
        index = self.current if index is None else index
        if not 0 <= index < len(self.tiles):
            return
        self.choices[index] = _LEFT_OUT if name is None else name
        if advance and index == self.current and self.current < len(self.tiles) - 1:
            self.current += 1
        self._redraw()

    def chosen(self) -> dict[int, str | None]:
        """Row -> class (None: left out) for the pictures the user gave a class to."""
        return {self.rows[index]: (None if choice is _LEFT_OUT else choice)
                for index, choice in self.choices.items()}

    def answers(self) -> dict[int, str | None]:
        """Row -> class (None: left out) for every picture with a choice or a proposal; a
        picture with neither stays unanswered and is asked again."""
        found: dict[int, str | None] = {}
        for index, row in enumerate(self.rows):
            choice = self.choices.get(index)
            if choice is _LEFT_OUT:
                found[row] = None
            elif choice is not None:
                found[row] = choice
            elif self.proposed[index] is not None:
                found[row] = self.proposed[index][0]
        return found

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            number = key - Qt.Key.Key_1
            if number < len(self.classes):
                self.choose(self.classes[number])
        elif key == Qt.Key.Key_0:
            self.choose(None)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.page_accepted.emit()
        elif key == Qt.Key.Key_Space and self.tiles:
            self.open_requested.emit(self.paths[self.current])
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_Tab):
            self.make_current(min(self.current + 1, len(self.tiles) - 1))
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Backtab):
            self.make_current(max(self.current - 1, 0))
        elif key == Qt.Key.Key_Down:
            self.make_current(min(self.current + COLUMNS, len(self.tiles) - 1))
        elif key == Qt.Key.Key_Up:
            self.make_current(max(self.current - COLUMNS, 0))
        else:
            super().keyPressEvent(event)

    def focusNextPrevChild(self, forward: bool) -> bool:
        return False  # Tab moves between pictures, not out of the grid

    # -- drawing ------------------------------------------------------------------------------
    def caption(self, index: int) -> str:
        """The line under a picture: "2 · squares" chosen, "squares 87%?" proposed."""
        choice = self.choices.get(index)
        if choice is _LEFT_OUT:
            return f"<s>{NONE_OF_THESE}</s>"
        if choice is not None:
            number = self.classes.index(choice) + 1 if choice in self.classes else None
            prefix = f"{number} · " if number and number <= 9 else ""
            return f"<b>{prefix}{_escape(choice)}</b>"
        proposal = self.proposed[index]
        if proposal is None:
            return "<span style='color:#6b7280'>which class?</span>"
        name, probability = proposal
        return f"<span style='color:#374151'>{_escape(name)} {probability:.0%}?</span>"

    def _redraw(self) -> None:
        for index, tile in enumerate(self.tiles):
            choice = self.choices.get(index)
            kind = ("current" if index == self.current else "none" if choice is _LEFT_OUT
                    else "chosen" if choice is not None else "plain")
            tile.setStyleSheet(_FRAMES[kind])
            tile.caption.setText(self.caption(index))
        self.changed.emit()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class PictureViewer(QDialog):
    """One picture large (Space or a double click); Space or Escape closes it."""

    SIDE = 640

    def __init__(self, path: Path | str, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(Path(path).name)
        layout = QVBoxLayout(self)
        picture = QLabel()
        picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        image = load_thumbnail(path, self.SIDE)
        picture.setPixmap(to_pixmap(image, self.SIDE, path))
        text = QLabel(f"{path}<br>{caption}")
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(picture, 1)
        layout.addWidget(text)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            self.accept()
        else:
            super().keyPressEvent(event)
