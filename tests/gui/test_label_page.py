"""The labelling window, driven as a user drives it (pytest-qt, offscreen): the way in from the
main window, the first pass in a child process, keys on the page (number keys, 0 for "none of
these", Space to see a picture large, Enter to accept the page), a click, a correction, a new
class, the proposals and their estimate after the page, "Accept the rest above", resume after
closing the window, no choice lost to a crash before a page is accepted, the output and "Train on these" opening the Data step on it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from tests.conftest import folder_fingerprint
from tests.core.label_folders import make_heap

from finetune_gui.core.label.asking import ASKING_TEXT, FIRST_ASKING_TEXT
from finetune_gui.core.label.session import MODEL, USER, LabelSession
from finetune_gui.gui.widgets.label_grid import PictureViewer
from finetune_gui.gui.widgets.label_groups import GroupsDialog


def network(weights: Path) -> dict:
    """The conftest's stand-in for a pretrained base (MobileNetV2 trained on shapes, 48 px):
    random weights would propose nothing worth accepting."""
    return {"backbone": "mobilenetv2", "weights": str(weights), "image_size": 48}


def _open_labelling(window, qtbot, heap: Path, weights: Path):
    assert window.state.update_settings(**network(weights)) is None
    qtbot.mouseClick(window.label_button, Qt.MouseButton.LeftButton)
    labelling = window.labelling
    assert labelling is not None and labelling.isVisible()
    labelling.start_view.folder_edit.setText(str(heap))
    with qtbot.waitSignal(labelling.page_runner.succeeded, timeout=180_000):
        qtbot.mouseClick(labelling.start_view.start_button, Qt.MouseButton.LeftButton)
    return labelling


def _press(qtbot, grid, key) -> None:
    qtbot.keyClick(grid, key)


def _listed_counts(labelling) -> dict[str, int]:
    """What the window says: each class's pictures labelled by the user (the class list), and
    the pictures still to decide and left out (the line below it)."""
    import re

    counts = {}
    for i in range(labelling.class_list.count()):
        text = labelling.class_list.item(i).text()
        name, yours = re.fullmatch(r"\d?\s*(.+?)\s+\((\d+) yours, \d+ accepted\)", text).groups()
        counts[name] = int(yours)
    to_decide, left_out = re.fullmatch(r"([\d,]+) pictures? still to decide; (\d+) left out\.",
                                       labelling.counts_line.text()).groups()
    return counts | {"to decide": int(to_decide.replace(",", "")), "left out": int(left_out)}


def test_label_a_folder_in_the_window_resume_and_train_on_it(make_window, qtbot, tmp_path,
                                                            pretrained_base):
    heap = tmp_path / "heap"
    facts = make_heap(heap, per_class=12)
    truth = facts["truth"]
    before = folder_fingerprint(heap)
    window = make_window(start=False)
    labelling = _open_labelling(window, qtbot, heap, pretrained_base)
    labeller, grid = labelling.labeller, labelling.grid
    # The folder's circles/ are labelled already; a page of 24 is asked, no proposals yet.
    assert labeller.session.classes == ["circles"]
    assert len(grid.tiles) == 24
    assert "label pictures of at least two classes" in labelling.estimate.text()
    name_of = {str(p): labeller.pictures.relative(p) for p in labeller.pictures.pictures}

    # Number keys and new classes: each tile gets its true class and the next is framed.
    for index in range(len(grid.tiles)):
        assert grid.current == index
        want = truth[name_of[grid.paths[index]]]
        if want not in labeller.session.classes:
            assert labelling.add_class(want)  # "New class": it goes to the framed picture
        else:
            _press(qtbot, grid, Qt.Key.Key_1 + labeller.session.classes.index(want))
    assert grid.chosen() and len(grid.chosen()) == 24
    # A click frames a picture; 0 says "none of these"; a slip is corrected.
    # The class list and the line below it count each choice as it is made.
    left_out = 5
    lost = truth[name_of[grid.paths[left_out]]]
    counted = _listed_counts(labelling)
    qtbot.mouseClick(grid.tiles[left_out], Qt.MouseButton.LeftButton)
    assert grid.current == left_out
    _press(qtbot, grid, Qt.Key.Key_0)
    after = _listed_counts(labelling)
    assert after[lost] == counted[lost] - 1 and after["left out"] == counted["left out"] + 1
    assert after["to decide"] == counted["to decide"]
    slip = 7
    grid.make_current(slip)
    right = truth[name_of[grid.paths[slip]]]
    wrong = next(c for c in labeller.session.classes if c != right)
    counted = _listed_counts(labelling)
    _press(qtbot, grid, Qt.Key.Key_1 + labeller.session.classes.index(wrong))
    after = _listed_counts(labelling)
    assert (after[wrong], after[right]) == (counted[wrong] + 1, counted[right] - 1)
    grid.make_current(slip)
    _press(qtbot, grid, Qt.Key.Key_1 + labeller.session.classes.index(right))
    assert _listed_counts(labelling) == counted
    # A crash now, before the page is accepted, would lose none of these choices: each is
    # saved as it is made (the file on disk, as a new process would read it).
    on_disk = LabelSession.load(labeller.session.path).decisions
    for row, label in grid.chosen().items():
        assert (on_disk[labeller.names[row]].label, on_disk[labeller.names[row]].by) == (
            label, USER)
    assert on_disk[labeller.names[grid.rows[slip]]].label == right
    # A name a folder cannot have is refused in one sentence, and nothing changes.
    assert not labelling.add_class("a/b")
    assert "slash" in labelling.estimate.text()
    # Space shows the framed picture large; Space closes it.
    _press(qtbot, grid, Qt.Key.Key_Space)
    viewer = labelling.last_dialog
    assert isinstance(viewer, PictureViewer) and viewer.isVisible()
    qtbot.keyClick(viewer, Qt.Key.Key_Space)
    assert not viewer.isVisible()
    page = {row: truth[name_of[path]] for row, path in zip(grid.rows, grid.paths, strict=True)}
    page[grid.rows[left_out]] = None

    # Nothing proposes yet (one class): the line above the page does not say "least sure".
    assert labelling.asking_line.text() == FIRST_ASKING_TEXT
    with qtbot.waitSignal(labelling.page_runner.succeeded, timeout=60_000):
        _press(qtbot, grid, Qt.Key.Key_Return)  # Enter accepts the page
    session = labeller.session
    assert session.pages == 1
    assert labelling.asking_line.text() == ASKING_TEXT  # three classes now propose
    for row, label in page.items():
        decision = session.decisions[labeller.names[row]]
        assert (decision.label, decision.by) == (label, USER)
    assert set(session.classes) == {"circles", "squares", "triangles"}
    # The head was solved again: proposals on the new page, an estimate, counts per class.
    assert not set(grid.rows) & set(page)
    assert all(p is not None for p in grid.proposed)
    assert "of the proposals are right" in labelling.estimate.text()
    listed = [labelling.class_list.item(i).text() for i in range(labelling.class_list.count())]
    assert any("circles" in text and "yours" in text for text in listed)

    # "Accept the rest above N% sure".
    labelling.threshold.setValue(50)
    assert labelling.accept_rest_button.isEnabled()
    with qtbot.waitSignal(labelling.page_runner.succeeded, timeout=60_000):
        qtbot.mouseClick(labelling.accept_rest_button, Qt.MouseButton.LeftButton)
    accepted = {p: d for p, d in session.decisions.items() if d.by == MODEL}
    assert accepted and all(d.probability >= 0.5 for d in accepted.values())

    # "Group similar pictures": name one group, dismiss another; the named one's pictures
    # shown get the name as the user's label.
    with qtbot.waitSignal(labelling.groups_runner.succeeded, timeout=60_000):
        qtbot.mouseClick(labelling.groups_button, Qt.MouseButton.LeftButton)
    dialog = labelling.last_dialog
    assert isinstance(dialog, GroupsDialog) and dialog.isVisible()
    first, second = list(dialog.name_boxes)[:2]
    dialog.name_group(first, "group one")
    dialog.name_group(second, "ignored")
    dialog.dismiss_boxes[second].setChecked(True)
    with qtbot.waitSignal(labelling.page_runner.succeeded, timeout=60_000):
        dialog.accept()
    named = {labeller.pictures.relative(Path(p)) for p in dialog.shown[first]}
    assert {session.decisions[n].label for n in named} == {"group one"}
    assert all(session.decisions[n].by == USER for n in named)
    assert "ignored" not in session.classes
    saved = dict(session.decisions)

    # Closing loses nothing: a new window continues the same session.
    window.close()
    again = make_window(start=False)
    qtbot.mouseClick(again.label_button, Qt.MouseButton.LeftButton)
    resumed = again.labelling
    assert resumed.start_view.folder_edit.text() == str(heap)
    assert resumed.start_view.start_button.text() == "Continue labelling"
    labelled = sum(1 for d in saved.values() if d.label is not None)
    assert resumed.start_view.session_note.text() == (
        f"You started labelling this folder before ({labelled} pictures in "
        f"{len(session.classes)} classes, 1 page). Continue where you stopped.")
    again.state.update_settings(**network(pretrained_base))
    with qtbot.waitSignal(resumed.page_runner.succeeded, timeout=180_000):
        qtbot.mouseClick(resumed.start_view.start_button, Qt.MouseButton.LeftButton)
    assert resumed.labeller.session.decisions == saved
    assert resumed.labeller.session.pages == 1

    # The output, then "Train on these" opens the Data step on it.
    out = tmp_path / "sorted"
    with qtbot.waitSignal(resumed.output_runner.succeeded, timeout=60_000):
        resumed.write_output(out)
    assert (out / "labels.csv").is_file()
    copied = {p.name for p in out.rglob("*.png")} | {p.name for p in out.rglob("*.jpg")}
    for picture, copy in facts["copies"].items():
        if saved.get(picture) and saved[picture].label:
            assert Path(copy).name in copied  # a copy follows its picture
    assert resumed.train_button.isEnabled()
    again.go_to("model")
    qtbot.mouseClick(resumed.train_button, Qt.MouseButton.LeftButton)
    assert again.state.data_dir == out
    assert again.current_step() == "data"
    assert folder_fingerprint(heap) == before


def test_a_page_on_ten_thousand_pictures_is_quick_and_never_stalls_the_window(
        make_window, qtbot, tmp_path, gap_meter):
    """10,000 pictures (hard links to a few real files, so thumbnails load), features stored
    as after the first pass: accepting a page solves the head again, picks the next page and
    loads its thumbnails on the worker thread, in under 2 s, with the window's event loop
    free all along."""
    import os
    import time

    import numpy as np

    from finetune_gui.core.data.duplicates import perceptual_hash
    from finetune_gui.core.label.features import PictureFeatures
    from finetune_gui.core.label.pictures import FolderPictures
    from finetune_gui.demo import make_shapes_dataset

    shapes = make_shapes_dataset(tmp_path / "shapes", per_class=4, size=32, seed=2)
    originals = sorted(shapes.rglob("*.png"))
    heap = tmp_path / "ten-thousand"
    heap.mkdir()
    paths, fingerprints = [], {}
    # The check's fingerprints give the proposals the pictures' grey levels as a second view,
    # which doubles the held-out fits when the labels are judged: inside the 2 s too.
    printed = [perceptual_hash(original) for original in originals]
    for i in range(10_000):
        path = heap / f"picture-{i:05d}.png"
        os.link(originals[i % len(originals)], path)
        paths.append(path)
        fingerprints[path] = printed[i % len(originals)]
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 10, len(paths))
    centres = rng.normal(0, 1, (10, 256))
    features = (centres[truth] + rng.normal(0, 3, (len(paths), 256))).astype(np.float32)
    window = make_window(start=False)
    labelling = window.show_labelling()
    with qtbot.waitSignal(labelling.page_runner.succeeded, timeout=60_000):
        labelling._on_prepared((FolderPictures(heap, pictures=paths, fingerprints=fingerprints),
                                PictureFeatures(features, [], None)))
    assert labelling.labeller.grey is not None
    for row in rng.choice(len(paths), 300, replace=False):  # some pages done already
        labelling.labeller.session.set_label(labelling.labeller.names[row], f"c{truth[row]}")
    grid = labelling.grid
    for index, row in enumerate(grid.rows):
        grid.choose(f"c{truth[row]}", index)
    gap_meter.start()
    started = time.monotonic()
    with qtbot.waitSignal(labelling.page_runner.succeeded, timeout=30_000):
        qtbot.keyClick(grid, Qt.Key.Key_Return)
    took = time.monotonic() - started
    gap_meter.stop()
    assert took < 2.0, took
    assert len(grid.tiles) == 24 and all(p is not None for p in grid.proposed)
    assert "of the proposals are right" in labelling.estimate.text()
    # The GUI thread's own work between two ticks of its 20 ms timer stayed small.
    assert gap_meter.longest_busy < 0.15, gap_meter.stacks()


def test_the_earlier_run_offered_is_the_newest_unless_the_user_chose_one(make_window, qtbot,
                                                                         tmp_path):
    """A run that finishes while the labelling window is open is offered first; a run the
    user picked stays picked when another finishes."""
    runs = []
    for name in ("20261201-090000-mobilenetv2", "20261202-090000-mobilenetv2",
                 "20261203-090000-mobilenetv2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.keras").write_bytes(b"")
        runs.append(tmp_path / name)
    window = make_window(start=False)
    window.state.join_run(runs[0])
    qtbot.mouseClick(window.label_button, Qt.MouseButton.LeftButton)
    choice = window.labelling.start_view.run_choice
    assert choice.currentData() == str(runs[0])
    window.state.join_run(runs[1])
    assert [choice.itemData(i) for i in range(choice.count())] == [str(runs[1]), str(runs[0])]
    assert choice.currentData() == str(runs[1])
    choice.setCurrentIndex(1)
    choice.activated.emit(1)  # the user picks the older run
    window.state.join_run(runs[2])
    assert choice.currentData() == str(runs[0])


def test_a_network_that_cannot_be_loaded_stops_the_start_with_a_plain_message(make_window,
                                                                              qtbot, tmp_path):
    """Weights the network cannot read: one plain sentence, no traceback even folded away, and
    the line under the button no longer says the network is loading."""
    heap = tmp_path / "heap"
    make_heap(heap, per_class=4)
    junk = tmp_path / "mobilenet.weights.h5"
    junk.write_bytes(b"not a weights file")
    window = make_window(start=False)
    assert window.state.update_settings(backbone="mobilenetv2", weights=str(junk),
                                        image_size=48) is None
    qtbot.mouseClick(window.label_button, Qt.MouseButton.LeftButton)
    labelling = window.labelling
    start = labelling.start_view
    assert "MobileNetV2, the weights in mobilenet.weights.h5, 48 px" in start.from_model.text()
    start.folder_edit.setText(str(heap))
    with qtbot.waitSignal(labelling.prepare_runner.failed, timeout=180_000):
        qtbot.mouseClick(start.start_button, Qt.MouseButton.LeftButton)
    dialog = labelling.last_dialog
    assert "mobilenet.weights.h5" in dialog.text()
    assert "Traceback" not in dialog.text() + dialog.detailedText()
    assert start.status_row.status.text() == (
        "Stopped while reading the pictures: the message says why.")
    assert start.start_button.isEnabled() and not start.status_row.progress.isVisible()
    dialog.close()
