"""Exact and near duplicates found by the scan: conflicts across classes, leaks across splits,
few false alarms on clean data, and every group kept in one split."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from finetune_gui.cli import main
from finetune_gui.core.data.duplicates import (
    NEAR_THRESHOLD,
    find_duplicate_groups,
    fingerprint_distance,
    near_pairs,
    perceptual_hash,
)
from finetune_gui.core.data.scan import scan_folder
from finetune_gui.core.data.split import split_dataset
from finetune_gui.demo import make_shapes_dataset


def resized_jpeg_copy(source: Path, target: Path, scale: float, quality: int) -> Path:
    image = Image.open(source).convert("RGB")
    size = (round(image.width * scale), round(image.height * scale))
    image.resize(size, Image.Resampling.LANCZOS).save(target, "JPEG", quality=quality)
    return target


def group_of(scan, path: Path):
    found = [g for g in scan.duplicate_groups if path in g.paths]
    assert len(found) == 1, f"{path.name} is in {len(found)} groups"
    return found[0]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Shapes with an exact copy, two resized JPEG copies and a copy filed under another class."""
    root = make_shapes_dataset(tmp_path_factory.mktemp("dups") / "data", per_class=30, size=48, seed=4)
    circles, squares, triangles = (root / n for n in ("circles", "squares", "triangles"))
    exact = shutil.copyfile(circles / "circles_000.png", circles / "zz_exact_copy.png")
    bigger = resized_jpeg_copy(squares / "squares_001.png", squares / "zz_bigger.jpg", 1.5, 80)
    smaller = resized_jpeg_copy(squares / "squares_002.png", squares / "zz_smaller.jpg", 0.75, 70)
    wrong_class = shutil.copyfile(triangles / "triangles_003.png", circles / "zz_was_a_triangle.png")
    return {
        "root": root,
        "scan": scan_folder(root),
        "exact": (circles / "circles_000.png", exact),
        "bigger": (squares / "squares_001.png", bigger),
        "smaller": (squares / "squares_002.png", smaller),
        "conflict": (triangles / "triangles_003.png", wrong_class),
    }


@pytest.mark.parametrize(("case", "kind"), [("exact", "exact"), ("bigger", "near"), ("smaller", "near")])
def test_planted_copies_are_grouped_with_their_original(planted, case, kind):
    original, copy = planted[case]
    group = group_of(planted["scan"], copy)
    assert set(group.paths) == {original, copy}
    assert group.kind == kind
    assert not group.conflict and not group.leak


def test_a_copy_filed_under_another_class_is_a_labelling_conflict(planted):
    original, copy = planted["conflict"]
    group = group_of(planted["scan"], copy)
    assert set(group.paths) == {original, copy}
    assert group.conflict and group.kind == "exact"
    assert sorted(group.labels) == ["circles", "triangles"]
    assert planted["scan"].duplicate_groups[0] == group  # conflicts are listed first
    assert any("labelling conflict" in w for w in planted["scan"].warnings)


def test_nothing_else_in_the_planted_folder_is_called_a_duplicate(planted):
    assert len(planted["scan"].duplicate_groups) == 4


def test_clean_generated_data_gives_few_false_alarms(tmp_path):
    # Measured with this fingerprint: 2 of 1440 images (0.14%); pHash at 10 bits flagged ~50%.
    images = flagged = 0
    for seed in range(4):
        for size in (48, 64):
            scan = scan_folder(make_shapes_dataset(tmp_path / f"{seed}_{size}", 60, size, seed))
            images += len(scan.records)
            flagged += sum(len(g.paths) for g in scan.duplicate_groups)
    assert images == 1440
    assert flagged / images <= 0.01


def test_copies_across_train_and_test_folders_are_a_leak(tmp_path):
    for split, seed in (("train", 1), ("test", 2)):
        make_shapes_dataset(tmp_path / split, per_class=6, size=48, seed=seed)
    source = tmp_path / "train" / "squares" / "squares_000.png"
    leaked = resized_jpeg_copy(source, tmp_path / "test" / "squares" / "leaked.jpg", 1.25, 85)
    both = shutil.copyfile(
        tmp_path / "train" / "circles" / "circles_000.png", tmp_path / "test" / "triangles" / "x.png"
    )
    scan = scan_folder(tmp_path)
    assert scan.layout == "splits"
    leak = group_of(scan, leaked)
    assert leak.leak and not leak.conflict
    assert sorted(leak.splits) == ["test", "train"]
    assert group_of(scan, both).leak and group_of(scan, both).conflict
    assert any("leak" in w for w in scan.warnings)


def test_split_keeps_every_group_in_one_split(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=20, size=48, seed=6)
    planted_groups = []
    for i, name in enumerate(("circles", "squares", "triangles") * 3):
        original = root / name / f"{name}_{i:03d}.png"
        copies = [original]
        for k, (scale, quality) in enumerate(((1.5, 85), (0.8, 75))):
            copies.append(resized_jpeg_copy(original, root / name / f"copy{k}_{i}.jpg", scale, quality))
        planted_groups.append(set(copies))
    other = "squares"
    planted_groups[0].add(shutil.copyfile(root / "circles" / "circles_000.png", root / other / "c.png"))
    scan = scan_folder(root)
    groups = [set(g.paths) for g in scan.duplicate_groups]
    for planted_group in planted_groups:
        assert planted_group in groups
    for seed in range(6):
        split = split_dataset(scan, 0.2, 0.2, seed=seed)
        where = {path: part for part in ("train", "val", "test") for path, _ in getattr(split, part)}
        assert len(where) == len(scan.records)
        for group in groups:
            assert len({where[path] for path in group}) == 1, (seed, sorted(p.name for p in group))
        assert min(split.counts().values()) > 0


def test_split_without_duplicates_is_unchanged_by_grouping(tmp_path, shapes_dir):
    scan = scan_folder(shapes_dir)
    assert not scan.duplicate_groups
    split = split_dataset(scan, 0.15, 0.15, seed=11)
    # The seed-11 split as the plain shuffle-and-slice made it before duplicates were grouped.
    rng = random.Random(11)
    index = {name: i for i, name in enumerate(scan.classes)}
    expected_test = []
    for name in scan.classes:
        items = [(r.path, index[name]) for r in scan.records if r.label == name]
        rng.shuffle(items)
        expected_test.extend(items[:6])
    assert sorted(split.test) == sorted(expected_test)


def test_scan_json_lists_the_groups_with_their_paths(planted, capsys):
    assert main(["scan", str(planted["root"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    listed = [set(g["paths"]) for g in data["duplicate_groups"]]
    for case in ("exact", "bigger", "smaller", "conflict"):
        assert {str(p) for p in planted[case]} in listed
    conflict = next(g for g in data["duplicate_groups"] if g["conflict"])
    assert conflict["kind"] == "exact" and sorted(conflict["labels"]) == ["circles", "triangles"]


def test_fingerprint_is_the_same_from_a_file_pixels_or_an_image(planted):
    path = planted["exact"][0]
    image = Image.open(path).convert("RGB")
    assert perceptual_hash(path) == perceptual_hash(np.asarray(image)) == perceptual_hash(image)
    record = next(r for r in planted["scan"].records if r.path == path)
    assert record.phash == perceptual_hash(path)


def test_pruned_pair_search_finds_what_comparing_every_pair_finds():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(40, 64))
    noisy = np.clip(base[:20] + rng.integers(-6, 7, size=(20, 64)), 0, 255)
    levels = np.concatenate([base, noisy]).astype(np.uint8)
    prints = [int.from_bytes(row.tobytes(), "big") for row in levels]
    every = sorted(
        (i, j, fingerprint_distance(prints[i], prints[j]))
        for i in range(len(prints))
        for j in range(i + 1, len(prints))
        if fingerprint_distance(prints[i], prints[j]) <= NEAR_THRESHOLD
    )
    # Some noisy copies fall inside the threshold and some just outside: both edges are exercised.
    assert 10 <= len(every) < 20
    assert near_pairs(prints) == every


def test_groups_are_transitive_and_exact_files_need_no_fingerprint():
    class Record:
        def __init__(self, name, sha1, label="a", split=None):
            self.path, self.sha1, self.label, self.split = Path(name), sha1, label, split

    levels = np.full(64, 100, dtype=np.uint8)
    a, b, c = (int.from_bytes((levels + k).tobytes(), "big") for k in (0, 3, 6))
    records = [Record("a", "1"), Record("b", "2"), Record("c", "3"), Record("d", "4"), Record("e", "4")]
    groups = find_duplicate_groups(records, [a, b, c, None, None])
    assert [set(g.paths) for g in groups] == [{Path("a"), Path("b"), Path("c")}, {Path("d"), Path("e")}]
    assert [g.kind for g in groups] == ["near", "exact"]
    assert groups[0].max_distance == 3.0
