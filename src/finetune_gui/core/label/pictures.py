"""The pictures of a folder to label: every file checked as the Data step checks it, copies of one
picture found so it is labelled once, and the labels a partly sorted folder already has.

The folder is only read. Pictures may sit at any depth. When its subfolders are classes (a
folder partly sorted by hand: `cats/`, `dogs/` beside a heap of loose pictures), a picture in
`cats/` (at any depth) starts labelled `cats`; a subfolder named like a heap (`unsorted`,
`todo`, ...) is never a class.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.data.duplicates import find_duplicate_groups
from finetune_gui.core.data.scan import ImageProblem, ImageRecord, inspect_file
from finetune_gui.core.data.walk import walk_files
from finetune_gui.core.errors import DatasetError
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.label.names import label_problem
from finetune_gui.core.words import counted

# Subfolder names that hold the pictures still to sort, never a class (compared casefolded).
HEAP_NAMES = frozenset({
    "unsorted", "unlabelled", "unlabeled", "to sort", "to_sort", "todo", "inbox", "new",
    "unknown", "misc", "other pictures",
})
# A subfolder named like a date or a number (2023, 2023-05, 001) is how cameras and people
# file pictures by time, not by what they show.
_DATE_LIKE = re.compile(r"^[\d\s._-]+$")


@dataclass
class FolderPictures:
    """What a folder holds for labelling; paths are absolute, `pictures` one per distinct
    picture (the first of its copies by path), sorted."""

    root: Path
    pictures: list[Path] = field(default_factory=list)
    copies: dict[Path, tuple[Path, ...]] = field(default_factory=dict)  # picture -> its copies
    problems: list[ImageProblem] = field(default_factory=list)
    folder_labels: dict[Path, str] = field(default_factory=dict)  # picture -> its class folder
    subfolders_are_classes: bool = False
    # Pictures whose copies sit in different class folders: which is right is asked.
    conflicts: list[Path] = field(default_factory=list)
    # picture -> the check's fingerprint of it (core/data/hashing.py; its grey levels are a
    # view for the proposals, core/label/pixel_view.py), None when it has none
    fingerprints: dict[Path, bytes | None] = field(default_factory=dict)

    @property
    def files(self) -> int:
        """Usable files, copies included."""
        return len(self.pictures) + sum(len(c) for c in self.copies.values())

    def relative(self, path: Path) -> str:
        """`path` relative to the folder, with forward slashes (how labels.csv names it)."""
        return Path(path).relative_to(self.root).as_posix()

    def copies_of(self, picture: Path) -> tuple[Path, ...]:
        return self.copies.get(picture, ())

    def picture_of(self) -> dict[Path, Path]:
        """Every usable file -> the picture it is a copy of (itself for a picture)."""
        owner = {p: p for p in self.pictures}
        for picture, copies in self.copies.items():
            owner.update(dict.fromkeys(copies, picture))
        return owner

    def summary(self) -> str:
        """One line: pictures, copies, problems, labels the folder already has."""
        extra = self.files - len(self.pictures)
        parts = [f"{len(self.pictures)} pictures in {self.root}"]
        if extra:
            parts.append(f"{extra} copies of them (labelled with them)")
        if self.folder_labels:
            parts.append(f"{len(self.folder_labels)} already in class folders")
        if self.problems:
            parts.append(f"{counted(len(self.problems), 'file')} cannot be used")
        return "; ".join(parts) + "."


def check_root(root: Path) -> None:
    """Refuse a folder that is missing, a file, or cannot be opened, in one sentence."""
    if not root.exists():
        raise DatasetError(f"The folder {root} does not exist.")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file, not a folder; choose the folder of pictures.")
    try:
        next(iter(root.iterdir()), None)
    except PermissionError as exc:
        raise DatasetError(f"The folder {root} cannot be read (permission denied).") from exc


def class_folder(root: Path, path: Path) -> str | None:
    """The top-level subfolder `path` sits in when it can be a class, else None."""
    parts = path.relative_to(root).parts
    if len(parts) < 2:
        return None
    name = parts[0]
    if name.casefold() in HEAP_NAMES or _DATE_LIKE.match(name) or label_problem(name):
        return None
    return name


def looks_partly_sorted(root: Path, paths: list[Path]) -> bool:
    """Guess whether the subfolders are classes: some subfolder can be a class, and there is a
    heap beside it (loose pictures or a heap-named folder) or a second such subfolder. The
    window shows the guess as a box the user can untick."""
    classes = {class_folder(root, p) for p in paths} - {None}
    if not classes:
        return False
    heap = any(len(p.relative_to(root).parts) == 1 or class_folder(root, p) is None for p in paths)
    return heap or len(classes) >= 2


def check_folder(
    root: Path | str,
    *,
    subfolders_are_classes: bool | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    workers: int | None = None,
) -> FolderPictures:
    """Open every file below `root` (in parallel threads): usable pictures, grouped copies, bad
    files with their reason. `subfolders_are_classes` None: `looks_partly_sorted` decides."""
    root = Path(root).expanduser().absolute()
    check_root(root)
    unreadable: list[tuple[Path, str]] = []
    paths = list(walk_files(root, unreadable))
    found = FolderPictures(root, problems=[ImageProblem(p, why) for p, why in unreadable])
    progress(StageStarted("check", len(paths), f"Checking {len(paths)} files"))
    records: list[ImageRecord] = []
    step = max(1, len(paths) // 100)
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        outcomes = zip(paths, pool.map(inspect_file, paths), strict=True)
        for done, (path, outcome) in enumerate(outcomes, start=1):
            if isinstance(outcome, str):
                found.problems.append(ImageProblem(path, outcome))
            else:
                records.append(ImageRecord(path, "", None, outcome.width, outcome.height,
                                           outcome.sha1, outcome.phash))
            if done % step == 0 or done == len(paths):
                progress(StageProgress("check", done, len(paths)))
            if cancel is not None and cancel.cancelled:
                pool.shutdown(wait=False, cancel_futures=True)
                check_cancel(cancel)
    usable = [r.path for r in records]
    if subfolders_are_classes is None:
        subfolders_are_classes = looks_partly_sorted(root, usable)
    found.subfolders_are_classes = subfolders_are_classes
    labels = {p: (class_folder(root, p) if subfolders_are_classes else None) for p in usable}
    progress(StageStarted("copies", 0, "Looking for copies of the same picture"))
    in_group: set[Path] = set()
    for group in find_duplicate_groups(records):
        picture, *copies = group.paths  # sorted by path: the first stands for the group
        found.copies[picture] = tuple(copies)
        in_group.update(group.paths)
        named = {labels[p] for p in group.paths} - {None}
        if len(named) == 1:
            found.folder_labels[picture] = named.pop()
        elif len(named) > 1:
            found.conflicts.append(picture)
    for path in usable:
        if path not in in_group and labels[path] is not None:
            found.folder_labels[path] = labels[path]
    found.pictures = sorted([p for p in usable if p not in in_group] + list(found.copies))
    fingerprint = {r.path: r.phash for r in records}
    found.fingerprints = {p: fingerprint.get(p) for p in found.pictures}
    if not found.pictures:
        raise DatasetError(
            f"The folder {root} has no pictures that can be read"
            + (f" ({counted(len(found.problems), 'file')} cannot be used)."
               if found.problems else "."))
    return found
