"""The Data page's Duplicates tab: planted copies are listed with their files, classes and a
plain verdict (conflicts first); a copy can be left out of the next run without touching the
folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from tests.conftest import folder_fingerprint

from finetune_gui.core.data.duplicates import DuplicateGroup
from finetune_gui.core.project import Project
from finetune_gui.demo import make_shapes_dataset
from finetune_gui.gui.pages.duplicates import group_verdict


def planted_folder(root: Path) -> dict[str, tuple[Path, Path]]:
    """Shapes with a triangle copied into circles/ and a resized JPEG copy of a square."""
    make_shapes_dataset(root, per_class=10, size=48, seed=4)
    original = root / "triangles" / "triangles_003.png"
    conflict = shutil.copyfile(original, root / "circles" / "zz_was_a_triangle.png")
    square = root / "squares" / "squares_001.png"
    bigger = root / "squares" / "zz_bigger.jpg"
    image = Image.open(square).convert("RGB")
    image.resize((72, 72), Image.Resampling.LANCZOS).save(bigger, "JPEG", quality=80)
    return {"conflict": (original, conflict), "near": (square, bigger)}


def scanned_window(qtbot, make_window, folder: Path):
    window = make_window(start=False)
    page = window.pages["data"]
    with qtbot.waitSignal(page.scan_finished, timeout=30_000):
        window.state.set_data_dir(folder)
    page.tabs.setCurrentWidget(page.duplicates)
    return window, page.duplicates


def row_paths(panel, row: int) -> set[Path]:
    return {Path(button.property("path")) for button in panel.buttons[row]}


def row_text(panel, row: int) -> str:
    return panel.table.cellWidget(row, 0).text()


def test_planted_copies_are_listed_conflict_first_with_files_classes_and_verdicts(
        qtbot, make_window, tmp_path):
    planted = planted_folder(tmp_path / "photos")
    window, panel = scanned_window(qtbot, make_window, tmp_path / "photos")
    data = window.pages["data"]

    assert data.tabs.tabText(2) == "Duplicates (2)"
    assert panel.table.rowCount() == 2 and panel.splitter.isVisibleTo(window)
    # Row 0: the triangle filed under circles, a labelling conflict.
    assert row_paths(panel, 0) == set(planted["conflict"])
    assert "two classes: one label is wrong" in row_text(panel, 0)
    assert "exact copies" in row_text(panel, 0) and "circles, triangles" in row_text(panel, 0)
    captions = {Path(b.property("path")).name: b.text() for b in panel.buttons[0]}
    assert captions == {"triangles_003.png": "triangles", "zz_was_a_triangle.png": "circles"}
    # Row 1: the resized JPEG beside its original, harmless.
    assert row_paths(panel, 1) == set(planted["near"])
    assert "the same picture, resized or re-saved" in row_text(panel, 1) and "class squares" in row_text(panel, 1)
    assert "harmless" in row_text(panel, 1)
    # The thumbnails were loaded by the scan job, not drawn as "unreadable" placeholders.
    assert all(not b.icon().isNull() for row in panel.buttons for b in row)

    # Clicking a copy shows it bigger with its path.
    copy = planted["conflict"][1]
    button = next(b for b in panel.buttons[0] if Path(b.property("path")) == copy)
    with qtbot.waitSignal(panel.preview_shown, timeout=10_000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert panel.path_label.text() == str(copy)
    assert "circles" in panel.where_label.text()
    assert panel.preview.pixmap().width() > 2 * 48  # bigger than the 48 px file itself


def test_leaving_a_copy_out_excludes_exactly_that_file_and_never_writes_the_folder(
        qtbot, make_window, tmp_path):
    planted = planted_folder(tmp_path / "photos")
    before = folder_fingerprint(tmp_path / "photos")
    window, panel = scanned_window(qtbot, make_window, tmp_path / "photos")
    state = window.state
    copy = planted["conflict"][1]
    row, index = next((r, i) for r, group in enumerate(panel.groups)
                      for i, path in enumerate(group.paths) if path == copy)
    qtbot.mouseClick(panel.buttons[row][index], Qt.MouseButton.LeftButton)
    used_before = state.split().counts()

    qtbot.mouseClick(panel.exclude_button, Qt.MouseButton.LeftButton)
    assert state.excluded == {copy}
    assert "(left out)" in panel.buttons[row][index].text()
    assert "Put it back" in panel.exclude_button.text()
    data = window.pages["data"]
    assert data.excluded_box.isVisibleTo(window)
    assert "1 image is left out" in data.excluded_note.text()
    assert sum(state.split().counts().values()) == sum(used_before.values()) - 1
    saved = window.save_project_to(tmp_path / "project.ftproj")
    assert saved and Project.load(tmp_path / "project.ftproj").excluded == [copy]
    assert folder_fingerprint(tmp_path / "photos") == before

    qtbot.mouseClick(panel.exclude_button, Qt.MouseButton.LeftButton)  # put it back
    assert state.excluded == set()
    assert "(left out)" not in panel.buttons[row][index].text()


def test_a_clean_folder_says_no_duplicates(qtbot, make_window, tmp_path):
    folder = make_shapes_dataset(tmp_path / "clean", per_class=6, size=32, seed=5)
    window, panel = scanned_window(qtbot, make_window, folder)
    assert window.pages["data"].tabs.tabText(2) == "Duplicates (0)"
    assert "No duplicates" in panel.intro.text()
    assert panel.table.rowCount() == 0 and not panel.splitter.isVisibleTo(window)


def group(labels, splits, kind="exact") -> DuplicateGroup:
    paths = tuple(Path(f"/data/{i}.png") for i in range(len(labels)))
    return DuplicateGroup(paths, kind, tuple(labels), tuple(splits), len(set(labels)) > 1,
                          len(set(splits)) > 1)


@pytest.mark.parametrize(("labels", "splits", "expected"), [
    (("cats", "dogs"), (None, None), "Same picture in two classes: one label is wrong"),
    (("cats", "cats"), ("train", "test"), "Same picture in train and test: the model is tested "
                                          "on a picture it learned from"),
    (("cats", "cats"), ("test", "val"), "Same picture in val and test: the test is not fully"),
    (("cats", "cats", "cats"), (None, None, None), "Same picture three times in one class: "
                                                   "harmless"),
])
def test_each_kind_of_group_gets_its_plain_verdict(labels, splits, expected):
    assert group_verdict(group(labels, splits)).startswith(expected)
