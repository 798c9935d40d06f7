"""Finding the images in a user's folder and checking every file (splitting: `data/split.py`).

The folder is only read. Layouts: one subfolder per class, or `train/`, `val/` (or
`validation/`), `test/` each holding class subfolders. Images nested deeper inside a class
folder belong to that class.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.data.class_names import display_name, names_refusal
from finetune_gui.core.data.duplicates import (
    DuplicateGroup,
    duplicate_warnings,
    find_duplicate_groups,
)
from finetune_gui.core.data.images import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    inspect_image,
)
from finetune_gui.core.data.kept_pixels import KeptPixels
from finetune_gui.core.data.walk import folder_reason, is_hidden, leads_back_up, walk_files
from finetune_gui.core.errors import DatasetError
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.words import counted

SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "test": "test"}
IMBALANCE_RATIO = 3.0
MIN_IMAGES_PER_CLASS = 2
EXAMPLES_PER_CLASS = 8


@dataclass(frozen=True)
class ImageRecord:
    """One usable image: where it is, its class, and the split the folder put it in (if any)."""

    path: Path
    label: str
    split: str | None
    width: int
    height: int
    sha1: str
    phash: bytes | None = None  # fingerprint for finding copies (core/data/hashing.py)


@dataclass(frozen=True)
class ImageProblem:
    """A file that was skipped, and why, in plain words."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ClassSummary:
    """Per class: how many usable images, a few examples, the smallest and largest size."""

    name: str
    count: int
    examples: list[Path]
    min_size: tuple[int, int]
    max_size: tuple[int, int]


@dataclass
class DatasetScan:
    """Everything the scan found in a folder; problems are listed, never fatal."""

    root: Path
    layout: str  # "classes" or "splits"
    records: list[ImageRecord] = field(default_factory=list)
    problems: list[ImageProblem] = field(default_factory=list)
    excluded_classes: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    duplicate_groups: list[DuplicateGroup] = field(default_factory=list)
    name_refusal: str | None = None  # a class folder's name its files cannot keep (class_names.py)
    # The pixels a run's own scan kept for it (`kept_pixels.py`); never saved, never sent.
    pixels: KeptPixels | None = field(default=None, repr=False, compare=False)

    @property
    def classes(self) -> list[str]:
        return sorted({r.label for r in self.records})

    @property
    def class_counts(self) -> dict[str, int]:
        counts = Counter(r.label for r in self.records)
        return {name: counts[name] for name in self.classes}

    @property
    def summaries(self) -> list[ClassSummary]:
        result = []
        for name in self.classes:
            mine = [r for r in self.records if r.label == name]
            by_area = sorted(mine, key=lambda r: r.width * r.height)
            result.append(
                ClassSummary(
                    name=name,
                    count=len(mine),
                    examples=[r.path for r in mine[:EXAMPLES_PER_CLASS]],
                    min_size=(by_area[0].width, by_area[0].height),
                    max_size=(by_area[-1].width, by_area[-1].height),
                )
            )
        return result

    @property
    def imbalance_ratio(self) -> float:
        counts = list(self.class_counts.values())
        return max(counts) / min(counts) if counts else 1.0

    @property
    def is_imbalanced(self) -> bool:
        return len(self.classes) >= 2 and self.imbalance_ratio > IMBALANCE_RATIO

    @property
    def refusal(self) -> str | None:
        """Why this folder cannot be trained on, or None when it can."""
        if self.name_refusal:
            return self.name_refusal
        usable = self.classes
        if len(usable) >= 2:
            return None
        found = f"only '{usable[0]}'" if usable else "none"
        return (
            f"Training needs at least 2 classes with 2 or more readable images each; "
            f"{self.root} has {found}. Put each class's images in its own subfolder."
        )

    @property
    def can_train(self) -> bool:
        return self.refusal is None

    def require_trainable(self) -> None:
        """Raise `DatasetError` with the plain reason when the folder cannot be trained on."""
        if self.refusal:
            raise DatasetError(self.refusal)

    def to_dict(self) -> dict:
        """A JSON-ready summary (paths as strings) for `scan --json` and the project file."""
        return {
            "root": str(self.root),
            "layout": self.layout,
            "can_train": self.can_train,
            "refusal": self.refusal,
            "classes": [
                {
                    "name": s.name,
                    "count": s.count,
                    "examples": [str(p) for p in s.examples],
                    "min_size": list(s.min_size),
                    "max_size": list(s.max_size),
                }
                for s in self.summaries
            ],
            "imbalance_ratio": round(self.imbalance_ratio, 3),
            "imbalanced": self.is_imbalanced,
            "problems": [{"path": str(p.path), "reason": p.reason} for p in self.problems],
            "excluded_classes": dict(self.excluded_classes),
            "warnings": list(self.warnings),
            "total_images": len(self.records),
            "duplicate_groups": [group.to_dict() for group in self.duplicate_groups],
        }


def _list_dirs(folder: Path) -> list[Path]:
    real = os.path.realpath(folder)
    try:
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_dir() and not is_hidden(p.name) and not leads_back_up(str(p), real)
        )
    except OSError as exc:  # e.g. a train/ folder the user may not open
        raise DatasetError(f"The folder {folder} {folder_reason(exc)}.") from exc


def _top_level_strays(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not is_hidden(p.name))


def _detect_layout(root: Path) -> tuple[str, list[tuple[str | None, Path]]]:
    """("splits"|"classes", [(split or None, class folder)])."""
    top = _list_dirs(root)
    split_dirs = {SPLIT_NAMES[p.name.lower()]: p for p in top if p.name.lower() in SPLIT_NAMES}
    if "train" in split_dirs and len(split_dirs) >= 2:
        folders = [(split, c) for split, d in split_dirs.items() for c in _list_dirs(d)]
        return "splits", folders
    return "classes", [(None, c) for c in top]


def _check_root(root: Path) -> None:
    if not root.exists():
        raise DatasetError(f"The folder {root} does not exist.")
    if not root.is_dir():
        raise DatasetError(
            f"{root} is a file, not a folder. Choose the folder that holds the class folders."
        )
    try:
        next(iter(root.iterdir()), None)
    except PermissionError as exc:
        raise DatasetError(f"The folder {root} cannot be read (permission denied).") from exc


def scan_folder(
    root: Path | str,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    workers: int | None = None,
    keep: KeptPixels | None = None,
) -> DatasetScan:
    """Open every file below `root` (in parallel threads) and sort it into usable or problem.
    `keep` is offered every readable image's pixels (a run keeps them: `kept_pixels.py`)."""
    root = Path(root).expanduser().absolute()  # the run records it; see DatasetSplit.to_dict
    _check_root(root)
    layout, class_folders = _detect_layout(root)
    scan = DatasetScan(root=root, layout=layout, pixels=keep)
    for stray in _top_level_strays(root):
        scan.problems.append(ImageProblem(stray, "not inside a class folder (ignored)"))
    if layout == "splits":
        for stray_dir in _list_dirs(root):
            if stray_dir.name.lower() not in SPLIT_NAMES:
                scan.warnings.append(
                    f"The folder '{stray_dir.name}' is not train, val or test, so it was ignored."
                )

    candidates: list[tuple[str | None, str, Path]] = []
    class_names: set[str] = set()
    folders_with_files: set[str] = set()
    for split, folder in class_folders:
        unreadable: list[tuple[Path, str]] = []
        files = list(walk_files(folder, unreadable))
        class_names.add(folder.name)
        if files or unreadable:
            folders_with_files.add(folder.name)
        scan.problems.extend(ImageProblem(path, reason) for path, reason in unreadable)
        candidates.extend((split, folder.name, f) for f in files)

    progress(StageStarted("scan", len(candidates), f"Checking {len(candidates)} files"))
    results = _inspect_all(candidates, progress, cancel, workers, keep)
    for (split, label, path), outcome in zip(candidates, results, strict=True):
        if isinstance(outcome, str):
            scan.problems.append(ImageProblem(path, outcome))
        else:
            scan.records.append(
                ImageRecord(
                    path, label, split, outcome.width, outcome.height, outcome.sha1, outcome.phash
                )
            )
    _exclude_small_classes(scan, class_names, folders_with_files)
    kept = set(scan.classes)  # a left-out class writes no label: its name does not matter
    scan.name_refusal = names_refusal([folder for _, folder in class_folders if folder.name in kept])
    scan.duplicate_groups = find_duplicate_groups(scan.records)
    _add_warnings(scan)
    return scan


def inspect_file(path: Path, keep: KeptPixels | None = None):
    """What one file is: its image facts (`inspect_image`), or the plain reason it cannot be
    used (a string)."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return f"{NOT_IMAGE_TYPE} ({path.suffix or 'no extension'})"
    try:
        return inspect_image(path, keep)
    except ImageReadError as exc:
        return exc.reason


def _inspect_all(candidates, progress, cancel, workers, keep) -> list:
    def inspect(item):
        return inspect_file(item[2], keep)

    results: list = []
    workers = workers or min(8, (os.cpu_count() or 2) * 2)
    step = max(1, len(candidates) // 100)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, outcome in enumerate(pool.map(inspect, candidates), start=1):
            results.append(outcome)
            if i % step == 0 or i == len(candidates):
                progress(StageProgress("scan", i, len(candidates)))
            if cancel is not None and cancel.cancelled:
                pool.shutdown(wait=False, cancel_futures=True)
                check_cancel(cancel)
    return results


NOT_IMAGE_TYPE = "not an image file type"


def _exclude_small_classes(
    scan: DatasetScan, class_names: set[str], folders_with_files: set[str]
) -> None:
    counts = Counter(r.label for r in scan.records)
    # A class whose every file was skipped must be named too, or it silently disappears.
    for name in sorted(class_names - set(counts)):
        scan.excluded_classes[name] = (
            "none of its files could be read as an image"
            if name in folders_with_files
            else "the folder has no images"
        )
    for name, count in sorted(counts.items()):
        if count < MIN_IMAGES_PER_CLASS:
            scan.excluded_classes[name] = (
                f"only {count} readable image; a class needs at least {MIN_IMAGES_PER_CLASS}"
            )
    if scan.excluded_classes:
        scan.records = [r for r in scan.records if r.label not in scan.excluded_classes]
        for name, why in scan.excluded_classes.items():
            scan.warnings.append(f"Class '{name}' was left out: {why}.")


def _add_warnings(scan: DatasetScan) -> None:
    if scan.problems:
        scan.warnings.append(f"{counted(len(scan.problems), 'file')} could not be used and will be "
                             f"skipped.")
    if scan.is_imbalanced:
        counts = scan.class_counts
        big = max(counts, key=counts.get)
        small = min(counts, key=counts.get)
        scan.warnings.append(
            f"The classes are unbalanced: '{big}' has {counts[big]} images, '{small}' only "
            f"{counts[small]} ({scan.imbalance_ratio:.1f}x). Class weights will be used so the "
            f"small class still counts."
        )
    sides = {r.path: min(r.width, r.height) for r in scan.records}
    scan.warnings.extend(duplicate_warnings(scan.duplicate_groups, scan.layout, sides))
    if scan.layout == "splits":
        train_classes = {r.label for r in scan.records if r.split == "train"}
        for name in scan.classes:
            if name not in train_classes:
                scan.warnings.append(f"Class '{name}' has no images in train/.")


def scan_summary_line(scan: DatasetScan) -> str:
    """One line for a terminal: classes and counts."""
    counts = ", ".join(f"{display_name(k)}: {v:,}" for k, v in scan.class_counts.items())
    classes = counted(len(scan.classes), "class", "classes")
    return f"{counted(len(scan.records), 'image')} in {classes} ({counts})"
