"""The Data page: choosing a folder (dialog, demo button, drop), the background scan and its
findings, cancelling, and the split fractions."""

from __future__ import annotations

import time

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog

from finetune_gui.core.data.scan import DatasetScan
from finetune_gui.core.events import StageProgress, StageStarted, check_cancel
from finetune_gui.demo import make_shapes_dataset


def messy_folder(root):
    """Unbalanced classes, a damaged JPEG and a text file among the images."""
    make_shapes_dataset(root, per_class={"circles": 24, "squares": 4, "triangles": 24}, size=32,
                        seed=2)
    (root / "circles" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "squares" / "notes.txt").write_text("shopping list")
    return root


def test_choosing_a_folder_shows_classes_problems_and_imbalance(qtbot, make_window, tmp_path,
                                                                monkeypatch):
    window = make_window()
    page = window.pages["data"]
    folder = messy_folder(tmp_path / "photos")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    with qtbot.waitSignal(page.scan_finished, timeout=30_000):
        qtbot.mouseClick(page.choose_button, Qt.MouseButton.LeftButton)

    assert window.state.data_dir == folder
    counts = {page.class_table.item(r, 0).text(): page.class_table.item(r, 1).text()
              for r in range(page.class_table.rowCount())}
    assert counts == {"circles": "24", "squares": "4", "triangles": "24"}
    problems = {page.problem_table.item(r, 0).text(): page.problem_table.item(r, 1).text()
                for r in range(page.problem_table.rowCount())}
    assert set(problems) == {"circles/broken.jpg", "squares/notes.txt"}
    assert "corrupt" in problems["circles/broken.jpg"]
    assert "not an image" in problems["squares/notes.txt"]
    assert page.tabs.tabText(1) == "Problem files (2)"
    assert page.warnings.isVisibleTo(window)
    assert "unbalanced" in page.warnings.text() and "'squares' only 4" in page.warnings.text()
    assert "images to learn from" in page.split_label.text()
    assert window.steps.status_text("data") == "52 images, 3 classes"


def test_dropping_a_folder_on_the_page_scans_it(qtbot, make_window, tmp_path):
    window = make_window()
    page = window.pages["data"]
    folder = make_shapes_dataset(tmp_path / "dropped", per_class=5, size=24, seed=4)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(page.scan_finished, timeout=30_000):
        page.dropEvent(event)
    assert window.state.data_dir == folder
    assert page.class_table.rowCount() == 3


def test_a_scan_can_be_cancelled_and_the_window_stays_usable(qtbot, make_window, tmp_path,
                                                            monkeypatch):
    def slow_scan(root, *, progress, cancel):
        progress(StageStarted("scan", 1000, "Checking 1000 files"))
        for done in range(1000):
            check_cancel(cancel)
            progress(StageProgress("scan", done, 1000))
            time.sleep(0.01)
        return DatasetScan(root=root, layout="classes")

    window = make_window()
    page = window.pages["data"]
    monkeypatch.setattr("finetune_gui.gui.pages.data.scan_folder", slow_scan)
    with qtbot.waitSignal(page.runner.event, timeout=60_000):
        window.state.set_data_dir(tmp_path)
    assert page.progress_box.isVisible() and window.state.scanning
    assert window.steps.status_text("data") == "checking the images…"
    with qtbot.waitSignal(page.runner.cancelled, timeout=60_000):
        qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    assert not page.progress_box.isVisible() and not window.state.scanning
    assert "cancelled" in page.summary.text()
    window.go_to("model")  # still usable
    assert window.current_step() == "model"


def test_a_folder_with_one_class_is_refused_in_plain_words(qtbot, make_window, tmp_path):
    window = make_window()
    page = window.pages["data"]
    folder = tmp_path / "one"
    make_shapes_dataset(folder, per_class=4, size=24,
                        classes={"cats": ("ellipse", (200, 40, 40))})
    with qtbot.waitSignal(page.scan_finished, timeout=30_000):
        window.state.set_data_dir(folder)
    assert "at least 2 classes" in page.refusal.text()
    train = window.pages["train"]
    assert not train.start_button.isEnabled()
    assert "at least 2 classes" in train.blocker.text()
    assert window.steps.status_text("train") == "needs data first"


def test_a_missing_folder_is_explained_without_a_crash(qtbot, make_window, tmp_path):
    window = make_window()
    page = window.pages["data"]
    with qtbot.waitSignal(page.scan_finished, timeout=30_000):
        window.state.set_data_dir(tmp_path / "gone")
    assert "does not exist" in page.refusal.text()


def test_split_fractions_change_the_settings_and_the_counts(qtbot, make_window):
    window = make_window()  # the demo images: 40 per class
    page = window.pages["data"]
    page.val_box.setValue(25)
    page.test_box.setValue(10)
    assert window.state.settings.val_fraction == 0.25
    assert window.state.settings.test_fraction == 0.10
    assert page.split_label.text() == "→ 78 images to learn from, 30 to validate, 12 to test."


def test_transparent_images_get_white_thumbnails_not_black(qtbot, tmp_path):
    from PIL import Image

    from finetune_gui.gui.widgets.thumbnails import load_thumbnail

    icon = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
    for x in range(20, 28):
        for y in range(20, 28):
            icon.putpixel((x, y), (30, 30, 30, 255))  # a dark glyph on a transparent sheet
    icon.save(tmp_path / "glyph.png")
    thumb = load_thumbnail(tmp_path / "glyph.png", 48)
    assert thumb.pixelColor(2, 2).name() == "#ffffff"
    assert thumb.pixelColor(24, 24).name() == "#1e1e1e"



def test_a_picture_moved_away_says_missing_and_a_damaged_one_unreadable(qtbot, tmp_path):
    """A run opened after its folder changed showed every mistake as "unreadable"."""
    from finetune_gui.gui.widgets.thumbnails import load_thumbnail, placeholder_pixmap, to_pixmap

    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(b"not a picture")
    gone = tmp_path / "moved away.jpg"
    for path, said in ((damaged, "unreadable"), (gone, "missing")):
        shown = to_pixmap(load_thumbnail(path, 48), 48, path).toImage()
        assert shown == placeholder_pixmap(48, said).toImage(), said
        assert shown != placeholder_pixmap(48, "unreadable" if said == "missing"
                                           else "missing").toImage()

def test_the_split_boxes_take_their_range_and_tip_from_the_settings(qtbot, make_window):
    from finetune_gui.core.settings import SETTINGS_INFO

    window = make_window()
    page = window.pages["data"]
    for box, name in ((page.val_box, "val_fraction"), (page.test_box, "test_fraction")):
        info = SETTINGS_INFO[name]
        assert (box.minimum(), box.maximum()) == (info.low * 100, info.high * 100)
        assert box.toolTip() == info.help
    # Within each range, shares that leave too little to learn from are refused in words.
    page.val_box.setValue(60)
    page.test_box.setValue(35)
    assert "too little for training" in page.split_label.text()


def test_a_train_val_test_folder_greys_out_the_shares_it_does_not_use(qtbot, make_window,
                                                                     tmp_path):
    """A folder with its own val/ folder ignores the validation share: the box said nothing
    and seemed to change the split."""
    make_shapes_dataset(tmp_path / "split" / "train", per_class=10, size=24, seed=1)
    make_shapes_dataset(tmp_path / "split" / "val", per_class=4, size=24, seed=2)
    window = make_window()
    page = window.pages["data"]
    assert page.val_box.isEnabled() and page.test_box.isEnabled()  # the demo's class folders
    with qtbot.waitSignal(page.scan_finished, timeout=30_000):
        window.state.set_data_dir(tmp_path / "split")
    assert not page.val_box.isEnabled()
    assert "own val/ folder" in page.val_box.toolTip()
    assert page.test_box.isEnabled()  # the test images are still carved out of train/
    page.test_box.setValue(20)
    assert page.split_label.text() == ("→ 24 images to learn from, 12 to validate, 6 to test "
                                       "(val/ as it is).")
