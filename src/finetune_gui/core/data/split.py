"""Splitting a scanned folder into train, val and test: seeded, stratified, duplicates kept together.

A folder already split into `train/`, `val/`, `test/` is used as given; a part it lacks is carved
from `train/` the same way.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.data.duplicates import group_index, takes_unit
from finetune_gui.core.data.kept_pixels import KeptPixels
from finetune_gui.core.data.scan import DatasetScan
from finetune_gui.core.errors import DatasetError


@dataclass
class DatasetSplit:
    """Which file goes to train, val and test: saved with every run so it can be repeated."""

    root: Path
    classes: list[str]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]]
    test: list[tuple[Path, int]]
    seed: int = 0
    # The pixels the run's own scan kept (`kept_pixels.py`): decoding takes them from here.
    pixels: KeptPixels | None = field(default=None, repr=False, compare=False)

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def to_dict(self) -> dict:
        def rel(items):
            return [[_relative(p, self.root), label] for p, label in items]

        return {
            # Absolute: a run made from a relative path (`finetune-gui train photos/`) is
            # opened later from anywhere; a relative root then named no file ("unreadable").
            "root": str(Path(self.root).absolute()),
            "classes": list(self.classes),
            "seed": self.seed,
            "train": rel(self.train),
            "val": rel(self.val),
            "test": rel(self.test),
        }

    @classmethod
    def from_dict(cls, data: dict, root: Path | None = None) -> DatasetSplit:
        base = Path(root) if root is not None else Path(data["root"])

        def absolute(items):
            return [(base / p, int(label)) for p, label in items]

        return cls(
            root=base,
            classes=list(data["classes"]),
            train=absolute(data["train"]),
            val=absolute(data["val"]),
            test=absolute(data["test"]),
            seed=int(data.get("seed", 0)),
        )

    def save(self, path: Path) -> None:
        from finetune_gui.core.files import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path, root: Path | None = None) -> DatasetSplit:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), root)


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _check_fractions(val_fraction: float, test_fraction: float,
                     used: tuple[str, ...] = ("val", "test")) -> None:
    """Each fraction in its range, and the `used` ones (a split layout uses only those of its
    missing folders) leaving enough to train on."""
    for name, value in (("validation", val_fraction), ("test", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise DatasetError(f"The {name} fraction must be between 0 and 1; got {value}.")
    shares = {"val": val_fraction, "test": test_fraction}
    if sum(shares[name] for name in used) < 0.9:
        return
    if len(used) == 2:
        raise DatasetError(
            f"Validation ({val_fraction}) and test ({test_fraction}) fractions leave too little "
            f"for training; together they must stay below 0.9."
        )
    name = {"val": "validation", "test": "test"}[used[0]]
    raise DatasetError(f"The {name} fraction ({shares[used[0]]}) leaves too little of the train "
                       f"folder for training; it must stay below 0.9.")


def carved_splits(
    scan: DatasetScan, exclude: set[Path] | frozenset[Path] = frozenset()
) -> tuple[str, ...]:
    """The splits ("val", "test") that a fraction carves out of the training images: both for
    folders of classes; for a train/val/test layout only the folders it lacks (or whose every
    image is left out), since the others are used as given."""
    if scan.layout != "splits":
        return ("val", "test")
    present = {r.split for r in scan.records if r.path not in exclude}
    return tuple(name for name in ("val", "test") if name not in present)


def split_dataset(
    scan: DatasetScan,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    exclude: set[Path] | frozenset[Path] = frozenset(),
) -> DatasetSplit:
    """A stratified, seeded split; a split folder layout is used as given.

    Our own loop rather than scikit-learn's: it keeps classes with 2 images, and it keeps each
    group of duplicates (`scan.duplicate_groups`) in one split, so no copy of a training image
    is scored as unseen.
    """
    scan.require_trainable()
    classes = scan.classes
    index = {name: i for i, name in enumerate(classes)}
    rng = random.Random(seed)
    parts: dict[str, list[tuple[Path, int]]] = {"train": [], "val": [], "test": []}
    records = [r for r in scan.records if r.path not in exclude]
    groups = group_index(scan.duplicate_groups)

    if scan.layout == "splits":
        for r in records:
            parts[r.split or "train"].append((r.path, index[r.label]))
        missing = carved_splits(scan, exclude)
        fractions = {"val": val_fraction, "test": test_fraction}
        _check_fractions(val_fraction, test_fraction, used=missing)
        for name in missing:
            taken = _carve(parts["train"], fractions[name], rng, len(classes), groups)
            parts[name] = taken
    else:
        _check_fractions(val_fraction, test_fraction)
        units = _units_by_label([(r.path, index[r.label]) for r in records], groups)
        for label in range(len(classes)):
            mine = units.get(label, [])
            n = sum(len(unit) for unit in mine)
            n_test = _share(n, test_fraction)
            n_val = _share(n - n_test, val_fraction / max(1e-9, 1 - test_fraction))
            test, val, train = _deal(mine, rng, [n_test, n_val])
            parts["test"].extend(test)
            parts["val"].extend(val)
            parts["train"].extend(train)
    for items in parts.values():
        items.sort(key=lambda item: (item[1], str(item[0])))
    return DatasetSplit(scan.root, classes, parts["train"], parts["val"], parts["test"], seed,
                        pixels=scan.pixels)


def _share(n: int, fraction: float) -> int:
    """How many of `n` images a split gets: rounded, never all, at least one when asked for any."""
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, round(n * fraction)))


Item = tuple[Path, int]


def _units_by_label(items: list[Item], groups: dict[Path, int]) -> dict[int, list[list[Item]]]:
    """Items bundled so copies of one picture move together, each bundle under its most common
    label (a cross-class copy follows the majority). Bundles keep the order of their first item.
    """
    bundles: list[list[Item]] = []
    by_group: dict[int, list[Item]] = {}
    for item in items:
        number = groups.get(item[0])
        if number is None:
            bundles.append([item])
        elif number in by_group:
            by_group[number].append(item)
        else:
            by_group[number] = [item]
            bundles.append(by_group[number])
    per_label: dict[int, list[list[Item]]] = {}
    for bundle in bundles:
        label = Counter(item[1] for item in bundle).most_common(1)[0][0]
        per_label.setdefault(label, []).append(bundle)
    return per_label


def _deal(units: list[list[Item]], rng: random.Random, shares: list[int]) -> list[list[Item]]:
    """Shuffle whole units, fill each share in turn, the rest (and always the last unit) after.

    With single-image units this is the plain shuffle-and-slice it replaced, seed for seed.
    """
    rng.shuffle(units)
    parts: list[list[Item]] = [[] for _ in range(len(shares) + 1)]
    for position, unit in enumerate(units):
        target = len(shares)
        if position < len(units) - 1:
            target = next(
                (k for k, share in enumerate(shares) if takes_unit(len(parts[k]), len(unit), share)),
                target,
            )
        parts[target].extend(unit)
    return parts


def _carve(
    train: list[Item], fraction: float, rng: random.Random, n_classes: int, groups: dict[Path, int]
) -> list[Item]:
    """Move a stratified `fraction` of `train` out (for a split layout without val/ or test/)."""
    units = _units_by_label(train, groups)
    taken = []
    for label in range(n_classes):
        mine = units.get(label, [])
        share = _share(sum(len(unit) for unit in mine), fraction)
        taken.extend(_deal(mine, rng, [share])[0])
    chosen = set(taken)
    train[:] = [item for item in train if item not in chosen]
    return taken
