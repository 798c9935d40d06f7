"""Help → User guide: short pages, one per step, shipped with the app and shown offline.

The pages are Markdown files in `resources/guide/` (so they travel with the frozen app and need
no browser); the first heading of each file is its name in the list. In them **bold** is kept for
names written on the window (a step, tab, button, "Menu → Item", box title or choice) and
*italics* for emphasis: tests/gui/test_user_guide.py finds every bold name in the window and
checks every count of tabs.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.resources import resource_path


def guide_pages(folder: Path | None = None) -> list[tuple[str, str]]:
    """(title, Markdown text) of each guide page, in file-name order."""
    folder = folder or resource_path("guide")
    pages = []
    for path in sorted(folder.glob("*.md")):
        text = path.read_text("utf-8")
        first = text.splitlines()[0] if text else path.stem
        pages.append((first.lstrip("# ").strip() or path.stem, text))
    return pages


class UserGuide(QDialog):
    """A list of pages on the left, the chosen page on the right."""

    def __init__(self, parent: QWidget | None = None, folder: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("finetune-gui user guide")
        self.resize(860, 600)
        self.pages = guide_pages(folder)
        self.contents = QListWidget()
        self.contents.setMaximumWidth(220)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        for title, _ in self.pages:
            self.contents.addItem(QListWidgetItem(title))
        self.contents.currentRowChanged.connect(self.show_page)
        row = QHBoxLayout()
        row.addWidget(self.contents)
        row.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addLayout(row, 1)
        layout.addWidget(buttons)
        if self.pages:
            self.contents.setCurrentRow(0)
        else:
            self.text.setPlainText(f"The guide's pages were not found in {resource_path('guide')}.")

    def show_page(self, index: int) -> None:
        if 0 <= index < len(self.pages):
            self.text.setMarkdown(self.pages[index][1])
            self.text.verticalScrollBar().setValue(0)

    def show_step(self, title_start: str) -> None:
        """Open the page whose title starts with `title_start` (e.g. "4." for Train)."""
        for index, (title, _) in enumerate(self.pages):
            if title.startswith(title_start):
                self.contents.setCurrentRow(index)
                return

    def current_title(self) -> str:
        item = self.contents.currentItem()
        return item.text() if item is not None else ""



