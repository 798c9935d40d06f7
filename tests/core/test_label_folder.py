"""A folder to label: checked as the Data step checks it, copies labelled once, a partly sorted
folder's labels kept; labels.csv read strictly and written so it reads back the same; the
output copies (copies follow their picture) and never touches the source."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import folder_fingerprint
from tests.core.label_folders import make_heap

from finetune_gui.core.data.images import CORRUPT, EMPTY_FILE
from finetune_gui.core.data.scan import NOT_IMAGE_TYPE
from finetune_gui.core.errors import UserError
from finetune_gui.core.label.labels_csv import labels_text, read_labels
from finetune_gui.core.label.output import LABELS_FILE, write_output
from finetune_gui.core.label.pictures import check_folder
from finetune_gui.core.label.session import MODEL, USER, Decision


@pytest.fixture
def heap(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "heap"
    return root, make_heap(root)


def test_check_finds_nested_pictures_bad_files_copies_and_class_folders(heap):
    root, facts = heap
    found = check_folder(root)
    relative = {found.relative(p) for p in found.pictures}
    # Every usable file is a picture or a copy of one; each copy under its picture.
    copies = {found.relative(p): {found.relative(c) for c in cs} for p, cs in found.copies.items()}
    for picture, copy in facts["copies"].items():
        assert copies[picture] == {copy}
        assert copy not in relative
    assert relative | {c for cs in copies.values() for c in cs} == set(facts["truth"])
    assert any(r.startswith("unsorted/2023/05/") for r in relative)  # nested folders read
    reasons = {found.relative(p.path): p.reason for p in found.problems}
    assert set(reasons) == facts["bad"]
    assert reasons["empty.png"] == EMPTY_FILE
    assert reasons["notes.txt"].startswith(NOT_IMAGE_TYPE)
    assert reasons["unsorted/cut.png"] == CORRUPT
    # circles/ is a class beside a heap; unsorted/ is never one.
    assert found.subfolders_are_classes
    labelled = {found.relative(p): label for p, label in found.folder_labels.items()}
    assert labelled and set(labelled.values()) == {"circles"}
    assert all(r.startswith("circles/") for r in labelled)
    assert check_folder(root, subfolders_are_classes=False).folder_labels == {}


def test_a_picture_filed_under_two_classes_is_asked_not_guessed(tmp_path):
    root = tmp_path / "two"
    facts = make_heap(root)
    circle = next(r for r in facts["truth"] if r.startswith("circles/"))
    (root / "squares").mkdir()
    (root / "squares" / "same.png").write_bytes((root / circle).read_bytes())
    found = check_folder(root)
    assert [found.relative(p) for p in found.conflicts] == [circle]
    assert root / circle not in found.folder_labels


def test_a_folder_without_pictures_is_refused_in_one_sentence(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(UserError, match="no pictures that can be read"):
        check_folder(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        check_folder(tmp_path / "missing")


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_labels_csv_round_trips_and_copies_resolve_to_their_picture(heap, tmp_path):
    root, facts = heap
    found = check_folder(root, subfolders_are_classes=False)
    picture, copy = next(iter(facts["copies"].items()))
    rows = [(copy, "squares", USER, None),  # named by its copy: the picture gets it
            ("circles/" + sorted((root / "circles").iterdir())[0].name, "a, \"b\"; c", MODEL,
             0.875)]
    decisions = read_labels(_csv(tmp_path, labels_text(rows)), found)
    assert decisions[root / picture] == Decision("squares", USER, None)
    circle = root / rows[1][0]
    assert decisions[circle] == Decision('a, "b"; c', MODEL, 0.875)
    # Absolute paths are read too.
    again = read_labels(_csv(tmp_path, f"path,label\n{circle},x\n"), found)
    assert again == {circle: Decision("x")}


@pytest.mark.parametrize("text, words", [
    ("file,class\na.png,x\n", "needs a header row with the columns path and label"),
    ("path,label\n{one},a/b\n", "has a slash in it"),
    ("path,label\n{one}, starts\n", "starts with a space"),
    ("path,label\n../outside.png,x\n", "is outside the folder"),
    ("path,label\nmissing.png,x\n", "does not exist"),
    ("path,label\n,lonely\n", "has no picture"),
    ("path,label\nempty.png,x\n", "cannot be labelled: empty file"),
    ("path,label\n{one},x\n{one},y\n", "are the same picture but labelled 'x' and 'y'"),
])
def test_bad_labels_csv_is_refused_in_one_sentence(heap, tmp_path, text, words):
    root, _facts = heap
    found = check_folder(root, subfolders_are_classes=False)
    one = found.relative(found.pictures[0])
    (tmp_path / "outside.png").write_bytes((root / one).read_bytes())
    with pytest.raises(UserError) as refused:
        read_labels(_csv(tmp_path, text.format(one=one)), found)
    message = str(refused.value)
    assert words in message
    assert "\n" not in message and message.endswith(".")


def test_output_copies_follow_and_the_source_is_byte_identical(heap, tmp_path):
    root, facts = heap
    before = folder_fingerprint(root)
    found = check_folder(root)
    truth = facts["truth"]
    decisions = {p: Decision(truth[found.relative(p)]) for p in found.pictures[::2]}
    left_out = found.pictures[1]
    decisions[left_out] = Decision(None)
    with_copy = next(p for p in found.copies if p not in decisions)
    decisions[with_copy] = Decision(truth[found.relative(with_copy)], MODEL, 0.97)
    out = tmp_path / "sorted"
    summary = write_output(found, decisions, out)
    assert folder_fingerprint(root) == before
    written = read_labels(out / LABELS_FILE, found)  # labels.csv round-trips
    assert written == {p: d for p, d in decisions.items() if d.label is not None}
    for picture, decision in decisions.items():
        names = [picture.name] + [c.name for c in found.copies_of(picture)]
        for name in names:
            if decision.label is None:
                assert not list(out.rglob(name))  # "none of these" is copied nowhere
            else:
                assert (out / decision.label / name).is_file()
    assert summary.total == sum(1 + len(found.copies_of(p)) for p, d in decisions.items()
                                if d.label is not None)
    lines = (out / LABELS_FILE).read_text().splitlines()
    assert lines[0] == "path,label,decided_by,probability"
    assert any(line.endswith(",model,0.970000") for line in lines)


@pytest.mark.parametrize("where", ["inside", "not empty"])
def test_output_refusals_write_nothing(heap, tmp_path, where):
    root, _facts = heap
    found = check_folder(root)
    before = folder_fingerprint(root)
    out = root / "sorted" if where == "inside" else tmp_path / "full"
    if where == "not empty":
        out.mkdir()
        (out / "old.txt").write_text("old")
    with pytest.raises(UserError):
        write_output(found, {found.pictures[0]: Decision("x")}, out)
    assert folder_fingerprint(root) == before
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == ["old.txt"]
