"""The split rules for duplicate groups (docs/duplicates.md): in the class layout a group is dealt
whole, a cross-class group with the class most of its copies carry; in the split layout the
folders are used as given (a leak stays, and is reported) and a val or test part carved out of
`train/` takes whole groups."""

from __future__ import annotations

import shutil
from pathlib import Path

from finetune_gui.core.data.scan import scan_folder
from finetune_gui.core.data.split import split_dataset
from finetune_gui.demo import make_shapes_dataset


def copies_of(original: Path, folders: list[Path], stem: str) -> set[Path]:
    """Exact copies of `original` into each folder (one group of identical files)."""
    made = {original}
    for k, folder in enumerate(folders):
        made.add(Path(shutil.copyfile(original, folder / f"{stem}-{k}.png")))
    return made


def where_each_image_went(split) -> dict[Path, tuple[str, int]]:
    return {
        path: (part, label)
        for part in ("train", "val", "test")
        for path, label in getattr(split, part)
    }


def test_a_cross_class_group_is_dealt_whole_with_the_class_most_of_its_copies_carry(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=10, size=32, seed=4)
    # A circle filed twice more under circles and once under squares: 3 circles, 1 square.
    group = copies_of(root / "circles" / "circles_000.png",
                      [root / "circles", root / "circles", root / "squares"], "again")
    scan = scan_folder(root)
    assert group in [set(g.paths) for g in scan.duplicate_groups]
    for seed in range(8):
        split = split_dataset(scan, 0.25, 0.25, seed=seed)
        where = where_each_image_went(split)
        assert len({where[path][0] for path in group}) == 1, seed  # one part for all 4 copies
        # Stratified with the group counted under circles: squares keep their 10 of their own
        # dealt as if the stray copy were not theirs (2-3 test, 2 val, the rest train).
        squares = [p for p, (_, label) in where.items()
                   if label == split.classes.index("squares") and p not in group]
        assert len(squares) == 10
        square_test = sum(where[p][0] == "test" for p in squares)
        assert square_test == round(10 * 0.25)


def test_the_split_layout_keeps_a_leak_where_it_is_and_carves_whole_groups(tmp_path):
    make_shapes_dataset(tmp_path / "train", per_class=12, size=32, seed=1)
    make_shapes_dataset(tmp_path / "test", per_class=4, size=32, seed=2)
    copies_of(tmp_path / "train" / "squares" / "squares_000.png",
              [tmp_path / "test" / "squares"], "leaked")
    groups = [
        copies_of(tmp_path / "train" / name / f"{name}_00{i}.png",
                  [tmp_path / "train" / name] * 2, f"copy{i}")
        for name in ("circles", "triangles") for i in (1, 2, 3)
    ]
    scan = scan_folder(tmp_path)
    assert scan.layout == "splits" and any("leak" in w for w in scan.warnings)
    for seed in range(8):
        split = split_dataset(scan, 0.3, 0.0, seed=seed)
        where = where_each_image_went(split)
        # The folders decide: the leaked copy stays in test, its original out of it (in train,
        # or in the val carved from train).
        original = tmp_path / "train" / "squares" / "squares_000.png"
        assert where[tmp_path / "test" / "squares" / "leaked-0.png"][0] == "test"
        assert where[original][0] in ("train", "val")
        assert len(split.test) == 12 + 1
        # val/ is missing, so it is carved from train/, and every group moves whole.
        assert len(split.val) > 0
        for group in groups:
            assert len({where[path][0] for path in group}) == 1, (seed, sorted(p.name for p in group))


def test_a_folder_given_by_a_relative_path_is_recorded_by_its_absolute_one(tmp_path, monkeypatch):
    """`finetune-gui train photos/` records where photos/ is, so the run's images are found
    when the window or the CLI opens it later from another folder."""
    import json

    make_shapes_dataset(tmp_path / "photos", per_class=4, size=32, seed=1)
    monkeypatch.chdir(tmp_path)
    scan = scan_folder("photos")
    assert scan.root == tmp_path / "photos"
    saved = json.loads(json.dumps(split_dataset(scan, 0.25, 0.25).to_dict()))
    monkeypatch.chdir(tmp_path.parent)
    from finetune_gui.core.data.split import DatasetSplit

    again = DatasetSplit.from_dict(saved)
    assert saved["root"] == str(tmp_path / "photos")
    assert all(path.is_file() for part in (again.train, again.val, again.test) for path, _ in part)
