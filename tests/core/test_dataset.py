"""Scanning layouts, leaving out small classes, refusing untrainable folders, and splitting."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from finetune_gui.core.data.scan import scan_folder
from finetune_gui.core.data.split import DatasetSplit, carved_splits, split_dataset
from finetune_gui.core.errors import DatasetError
from finetune_gui.demo import make_shapes_dataset


def test_class_folders_are_counted_with_examples_and_sizes(small_shapes):
    scan = scan_folder(small_shapes)
    assert scan.layout == "classes"
    assert scan.classes == ["circles", "squares", "triangles"]
    assert scan.class_counts == {"circles": 12, "squares": 12, "triangles": 12}
    summary = scan.summaries[0]
    assert summary.min_size == (32, 32) and summary.max_size == (32, 32)
    assert all(p.parent.name == "circles" for p in summary.examples)
    assert scan.can_train and scan.problems == [] and not scan.is_imbalanced


def test_images_nested_inside_a_class_belong_to_it(small_shapes):
    deep = small_shapes / "circles" / "batch 2" / "day 1"
    deep.mkdir(parents=True)
    shutil.copy(small_shapes / "circles" / "circles_000.png", deep / "again.png")
    assert scan_folder(small_shapes).class_counts["circles"] == 13


def test_split_layout_is_used_as_given(tmp_path):
    for split, n in (("train", 10), ("validation", 4), ("test", 3)):
        make_shapes_dataset(tmp_path / split, per_class=n, size=32, seed=len(split))
    scan = scan_folder(tmp_path)
    assert scan.layout == "splits"
    split = split_dataset(scan, seed=3)
    assert split.counts() == {"train": 30, "val": 12, "test": 9}
    assert all("validation" in str(p) for p, _ in split.val)
    assert all("/test/" in p.as_posix() for p, _ in split.test)
    # The fractions are not used here, so shares that would leave too little of a folder to
    # train on are no reason to refuse it (they were, after the scan and before training).
    assert split_dataset(scan, 0.5, 0.5, seed=3).to_dict() == split.to_dict()
    assert carved_splits(scan) == ()
    assert carved_splits(scan_folder(tmp_path / "train")) == ("val", "test")  # class folders
    with pytest.raises(DatasetError, match="fraction"):  # out of range is still refused
        split_dataset(scan, 1.5, 0.0)


def test_split_layout_without_test_carves_test_from_train(tmp_path):
    make_shapes_dataset(tmp_path / "train", per_class=20, size=32, seed=1)
    make_shapes_dataset(tmp_path / "val", per_class=5, size=32, seed=2)
    split = split_dataset(scan_folder(tmp_path), test_fraction=0.2)
    assert split.counts() == {"train": 48, "val": 15, "test": 12}
    assert not {p for p, _ in split.test} & {p for p, _ in split.train}
    # Only the test fraction is used: a large validation share does not matter, a test share
    # that takes the training folder does.
    assert split_dataset(scan_folder(tmp_path), 0.85, 0.2).counts() == split.counts()
    with pytest.raises(DatasetError, match=r"test fraction \(0.95\) leaves too little of the train"):
        split_dataset(scan_folder(tmp_path), 0.15, 0.95)
    # The window greys out the box of the share that is not used, by the same decision.
    scan = scan_folder(tmp_path)
    assert carved_splits(scan) == ("test",)
    everything_in_val = frozenset(p for p, _ in split.val)
    assert carved_splits(scan, everything_in_val) == ("val", "test")


def test_empty_and_single_image_classes_are_left_out_with_a_reason(small_shapes):
    (small_shapes / "empty").mkdir()
    (small_shapes / "lonely").mkdir()
    shutil.copy(small_shapes / "squares" / "squares_000.png", small_shapes / "lonely" / "one.png")
    scan = scan_folder(small_shapes)
    assert scan.classes == ["circles", "squares", "triangles"]
    assert scan.excluded_classes["empty"] == "the folder has no images"
    assert "only 1 readable image" in scan.excluded_classes["lonely"]
    assert any("'lonely' was left out" in w for w in scan.warnings)


def test_one_class_is_refused_with_a_plain_message(tmp_path):
    make_shapes_dataset(tmp_path, per_class=5, size=32, classes={"only": ("ellipse", (200, 0, 0))})
    scan = scan_folder(tmp_path)
    assert not scan.can_train
    assert "at least 2 classes" in scan.refusal and "only 'only'" in scan.refusal
    with pytest.raises(DatasetError, match="at least 2 classes"):
        split_dataset(scan)


@pytest.mark.parametrize("make", ["file", "missing"])
def test_a_path_that_is_not_a_folder_is_refused(tmp_path, make):
    target = tmp_path / "photos"
    if make == "file":
        target.write_text("hello")
    with pytest.raises(DatasetError, match=str(target).replace("\\", "\\\\")):
        scan_folder(target)


def test_imbalance_over_3x_is_warned_in_plain_words(tmp_path):
    make_shapes_dataset(tmp_path, per_class={"circles": 16, "squares": 4, "triangles": 8}, size=32)
    scan = scan_folder(tmp_path)
    assert scan.is_imbalanced and scan.imbalance_ratio == 4.0
    warning = next(w for w in scan.warnings if "unbalanced" in w)
    assert "'circles' has 16" in warning and "'squares' only 4" in warning
    assert "Class weights" in warning


def test_split_is_stratified_seeded_and_disjoint(shapes_dir):
    scan = scan_folder(shapes_dir)
    first = split_dataset(scan, 0.15, 0.15, seed=11)
    again = split_dataset(scan, 0.15, 0.15, seed=11)
    other = split_dataset(scan, 0.15, 0.15, seed=12)
    assert first.to_dict() == again.to_dict()
    assert first.to_dict() != other.to_dict()
    assert first.counts() == {"train": 84, "val": 18, "test": 18}
    for part in (first.train, first.val, first.test):
        assert set(Counter(label for _, label in part).values()) == {len(part) // 3}
    sets = [{p for p, _ in part} for part in (first.train, first.val, first.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


def test_test_fraction_zero_gives_no_test_images(shapes_dir):
    split = split_dataset(scan_folder(shapes_dir), val_fraction=0.2, test_fraction=0.0)
    assert split.counts()["test"] == 0 and split.counts()["val"] == 24


@pytest.mark.parametrize("val,test", [(-0.1, 0.1), (0.5, 0.5), (1.0, 0.0)])
def test_bad_fractions_are_refused(shapes_dir, val, test):
    with pytest.raises(DatasetError, match="fraction"):
        split_dataset(scan_folder(shapes_dir), val, test)


def test_split_file_round_trips_and_relocates(tmp_path, small_shapes):
    split = split_dataset(scan_folder(small_shapes), seed=2)
    split.save(tmp_path / "split.json")
    stored = json.loads((tmp_path / "split.json").read_text())
    assert stored["train"][0][0].count("/") == 1  # relative: class/file
    assert DatasetSplit.load(tmp_path / "split.json").to_dict() == split.to_dict()
    moved = DatasetSplit.load(tmp_path / "split.json", root=Path("/elsewhere"))
    assert str(moved.train[0][0]).startswith("/elsewhere/")


def test_excluded_images_stay_out_of_every_split(small_shapes):
    scan = scan_folder(small_shapes)
    left_out = {small_shapes / "circles" / "circles_000.png"}
    split = split_dataset(scan, exclude=left_out)
    every = {p for part in (split.train, split.val, split.test) for p, _ in part}
    assert len(every) == 35 and not every & left_out


def test_scan_to_dict_is_json_ready(small_shapes):
    data = json.loads(json.dumps(scan_folder(small_shapes).to_dict()))
    assert data["can_train"] is True and data["total_images"] == 36
    assert [c["name"] for c in data["classes"]] == ["circles", "squares", "triangles"]
