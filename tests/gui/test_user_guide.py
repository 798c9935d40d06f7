"""Help → User guide opens offline and shows a page per step; every control it names in bold is
on the window, and every count of tabs it gives is right."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QLabel,
    QTabWidget,
    QWidget,
)

from finetune_gui.demo import make_shapes_dataset
from finetune_gui.gui.widgets.user_guide import UserGuide, guide_pages


def test_the_help_menu_opens_the_guide_with_a_page_per_step(qtbot, make_window):
    window = make_window(start=False)
    help_menu = next(action.menu() for action in window.menuBar().actions()
                     if action.text() == "&Help")
    assert help_menu.actions()[0].text() == "&User guide"
    window.guide_action.trigger()
    guide = window.user_guide
    assert isinstance(guide, UserGuide) and guide.isVisible()
    titles = [guide.contents.item(i).text() for i in range(guide.contents.count())]
    assert titles[:7] == ["Start here", "1. Data", "2. Model", "3. Augmentation", "4. Train",
                          "5. Results", "6. Export and try"]
    assert "Go down the list on the left" in guide.text.toPlainText()  # the first page
    guide.show_step("4.")
    assert guide.current_title() == "4. Train"
    shown = guide.text.toPlainText()
    assert "Start training" in shown and "#" not in shown.splitlines()[0]  # rendered, not raw
    window.guide_action.trigger()
    assert window.user_guide is guide  # the same window comes forward


def test_every_page_has_a_title_and_text():
    pages = guide_pages()
    assert len(pages) >= 8
    for title, text in pages:
        assert title and len(text.split()) > 40, title


# -- every name the guide writes in bold is on the window ------------------------------------
# The guide's convention: **bold** is a name written on the window (a step, tab, button, menu
# path "Menu → Item", box title or choice), *italics* is emphasis. Each bold name must be found
# in the window, so renaming a control without the guide (or the guide without the control)
# fails here; so does a count of tabs that is not the number of tabs.
NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "gui.md"


def normal(text: str) -> str:
    """Case, mnemonics (&), markup and line breaks do not matter."""
    text = re.sub(r"<[^>]+>", "", text.replace("&&", "\0").replace("&", "").replace("\0", "&"))
    return " ".join(text.split()).lower().rstrip(":")


def names_on(widget: QWidget) -> set[str]:
    """Every name written on `widget` and its children: tabs, buttons, box titles, choices,
    labels, list entries and table headers (each line of a text counts on its own)."""
    texts: list[str] = []
    for tabs in widget.findChildren(QTabWidget):
        texts += [tabs.tabText(i) for i in range(tabs.count())]
    texts += [button.text() for button in widget.findChildren(QAbstractButton)]
    texts += [box.title() for box in widget.findChildren(QGroupBox)]
    texts += [label.text() for label in widget.findChildren(QLabel)]
    for combo in widget.findChildren(QComboBox):
        texts += [combo.itemText(i) for i in range(combo.count())]
    for view in widget.findChildren(QAbstractItemView):
        model = view.model()
        if model is None:
            continue
        rows = model.rowCount(QModelIndex())
        columns = 1 if isinstance(model, QAbstractListModel) else model.columnCount(QModelIndex())
        texts += [str(model.data(model.index(row, 0)) or "") for row in range(rows)]
        for orientation, count in ((Qt.Orientation.Horizontal, columns),
                                   (Qt.Orientation.Vertical, rows)):
            texts += [str(model.headerData(i, orientation) or "") for i in range(count)]
    return {normal(line) for text in texts for line in text.split("\n") if line.strip()}


def menu_paths(window) -> set[str]:
    """"file → save project" for every action of every menu of the window's menu bar."""
    paths = set()
    for top in window.menuBar().actions():
        for action in top.menu().actions():
            paths.add(f"{normal(top.text())} → {normal(action.text())}")
    return paths


def found(name: str, names: set[str]) -> bool:
    """`name` is a whole name, or the start of one ("Mistakes" for "Mistakes, most confident
    first", "ImageNet" for "ImageNet (download once)")."""
    wanted = normal(name)
    return any(text == wanted or (text.startswith(wanted) and not text[len(wanted)].isalnum())
               for text in names)


def bold_names(text: str) -> list[str]:
    return [" ".join(name.split()) for name in re.findall(r"\*\*(.+?)\*\*", text, re.S)]


def tab_claims(text: str) -> list[tuple[int, list[str]]]:
    """Each "N tabs" of a text with the bold names of the bullet list that follows it."""
    claims = []
    for match in re.finditer(r"\b(" + "|".join(NUMBERS) + r")\s+tabs\b", text, re.I):
        rest = text[match.end():].split("\n")[1:]
        listed = []
        for line in rest:
            if line.startswith("- "):
                listed += bold_names(line)[:1]
            elif listed and (not line.strip() or not line.startswith("  ")):
                break
        claims.append((NUMBERS[match.group(1).lower()], listed))
    return claims


def duplicated_folder(root: Path) -> Path:
    """Shapes with one exact copy, so the Duplicates tab has a copy to choose."""
    make_shapes_dataset(root, per_class=6, size=32, seed=2)
    shutil.copyfile(root / "circles" / "circles_001.png", root / "circles" / "zz_copy.png")
    return root


@pytest.fixture
def window_names(qtbot, make_window, tmp_path):
    """The started window's names, with those of its other states and windows: a duplicate
    chosen (and left out), the Compare runs window, and the weights dialog of an offline run."""
    window = make_window(start=False)
    data = window.pages["data"]
    with qtbot.waitSignal(data.scan_finished, timeout=60_000):
        window.state.set_data_dir(duplicated_folder(tmp_path / "photos"))
    names = names_on(window)
    panel = data.duplicates
    assert panel.groups, "the planted copy was not found"
    panel.choose(0, 1)
    names |= names_on(window)
    qtbot.mouseClick(panel.exclude_button, Qt.MouseButton.LeftButton)  # left out: "Put it back"
    names |= names_on(window)
    names |= names_on(window.show_comparison())
    dialog = window.pages["train"]._offer_weights_choice("The ImageNet weights cannot be "
                                                         "downloaded.")
    names |= names_on(dialog)
    dialog.close()
    return window, names


def test_every_name_the_guide_writes_in_bold_is_on_the_window(window_names):
    window, names = window_names
    paths = menu_paths(window)
    missing = []
    for title, text in guide_pages():
        for name in bold_names(text):
            ok = normal(name) in paths if "→" in name else found(name, names)
            if not ok:
                missing.append(f"{title}: **{name}**")
    assert missing == [], "\n".join(missing)


def test_every_count_of_tabs_in_the_guide_and_docs_is_the_window_s(window_names):
    window, _ = window_names
    tab_sets = [[normal(tabs.tabText(i)) for i in range(tabs.count())]
                for tabs in window.findChildren(QTabWidget)]
    texts = [(title, text) for title, text in guide_pages()] + [("docs/gui.md",
                                                                 DOCS.read_text("utf-8"))]
    claims = [(title, n, listed) for title, text in texts for n, listed in tab_claims(text)]
    assert any(title == "5. Results" for title, _, _ in claims)  # the one that was wrong
    for title, count, listed in claims:
        assert len(listed) == count, (title, count, listed)
        # One tab widget of the window has exactly these tabs.
        assert any(len(tabs) == count and all(found(name, set(tabs)) for name in listed)
                   for tabs in tab_sets), (title, listed, tab_sets)
