"""Copies of one picture in a folder: labelling conflicts and train/val/test leaks.

Two kinds, both confirmed on the pixels: an **exact copy** has the same pixels (identical files,
or a PNG re-saved without change), a **near copy** ("the same picture, resized or re-saved") is
one resized, recompressed, slightly cropped or brightened (`similarity.py`: a hash proposes, an
aligned pixel check confirms). A group never chains: every member is confirmed against every other member, so
200 different handwritten "1"s that each resemble the next stay apart (docs/duplicates.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from finetune_gui.core.data.hashing import GREY_SIDE, fingerprint_image, pixel_digest
from finetune_gui.core.data.images import ImageReadError, load_rgb
from finetune_gui.core.data.similarity import confirmed_pairs
from finetune_gui.core.words import counted, counted_are


@dataclass(frozen=True)
class DuplicateGroup:
    """Images that are the same picture; `labels` and `splits` run parallel to `paths`."""

    paths: tuple[Path, ...]
    kind: str  # "exact": the same pixels; "near": the same picture resized or re-saved
    labels: tuple[str, ...]
    splits: tuple[str | None, ...]
    conflict: bool  # the copies are filed under different classes
    leak: bool  # the copies sit in different folder splits (train/val/test)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "paths": [str(p) for p in self.paths],
            "labels": list(self.labels),
            "splits": list(self.splits),
            "conflict": self.conflict,
            "leak": self.leak,
        }


def perceptual_hash(image: Path | str | np.ndarray | Image.Image) -> bytes:
    """The fingerprint of an image file, uint8 pixels (H, W, 3) or a Pillow image."""
    if isinstance(image, Image.Image):
        return fingerprint_image(image)
    if isinstance(image, np.ndarray):
        return fingerprint_image(Image.fromarray(np.asarray(image, dtype=np.uint8)))
    return fingerprint_image(Image.fromarray(load_rgb(Path(image))))


def find_duplicate_groups(
    records: Sequence, hashes: Sequence[bytes | None] | None = None
) -> list[DuplicateGroup]:
    """Group `records` (ImageRecord-like: path, label, split, sha1) that show the same picture.

    `hashes` are the fingerprints parallel to `records` (default: each record's `phash`); a
    record without one can still be an identical file. Exact copies (same file or same pixels)
    group first; then each remaining image seeds a group, best-connected seeds first, and an
    image joins only when it is confirmed the same as every member (complete linkage), so a
    chain A~B~C with A unlike C does not merge. Conflicts
    come first, then leaks.
    """
    if hashes is None:
        hashes = [getattr(r, "phash", None) for r in records]
    exact: dict[object, int] = {}
    owner = list(range(len(records)))  # the exact-copy set each record belongs to
    for i, record in enumerate(records):
        key = pixel_digest(hashes[i]) if hashes[i] is not None else ("file", record.sha1)
        owner[i] = exact.setdefault(key, exact.setdefault(("file", record.sha1), i))
    heads = sorted({owner[i] for i in range(len(records)) if hashes[owner[i]] is not None})
    partners: dict[int, set[int]] = {h: set() for h in heads}
    def look(index: int, side: int) -> np.ndarray | None:
        try:
            pixels = load_rgb(Path(records[heads[index]].path), side)
        except (ImageReadError, OSError):
            return None  # gone or changed since the scan: compare on the fingerprint
        return np.asarray(Image.fromarray(pixels).convert("L"), np.float32)

    for a, b in confirmed_pairs([hashes[h] for h in heads], look):
        partners[heads[a]].add(heads[b])
        partners[heads[b]].add(heads[a])
    members: dict[int, list[int]] = {}
    for i in range(len(records)):
        members.setdefault(owner[i], []).append(i)
    placed: set[int] = set()
    groups = []
    for seed in sorted(heads, key=lambda h: (-len(partners[h]), h)):
        if seed in placed:
            continue
        joined: list[int] = []
        for h in sorted(partners[seed] - placed, key=lambda h: (-len(partners[h]), h)):
            if all(h in partners[m] for m in joined):  # complete linkage: like every member
                joined.append(h)
        placed.update([seed, *joined])
        indices = [i for h in (seed, *joined) for i in members[h]]
        if len(indices) > 1:
            groups.append(_group(records, indices, near=bool(joined)))
    for head, indices in members.items():
        if head not in partners and len(indices) > 1:
            groups.append(_group(records, indices, near=False))
    groups.sort(key=lambda g: (not g.conflict, not g.leak, str(g.paths[0])))
    return groups


def _group(records, indices: list[int], near: bool) -> DuplicateGroup:
    chosen = sorted(indices, key=lambda i: str(records[i].path))
    labels = tuple(records[i].label for i in chosen)
    splits = tuple(records[i].split for i in chosen)
    return DuplicateGroup(
        paths=tuple(records[i].path for i in chosen),
        kind="near" if near else "exact",
        labels=labels,
        splits=splits,
        conflict=len(set(labels)) > 1,
        leak=len(set(splits)) > 1,  # all None in the classes layout: never a leak there
    )


def duplicate_warnings(groups: Sequence[DuplicateGroup], layout: str = "classes",
                       sides: Mapping[Path, int] | None = None) -> list[str]:
    """Plain sentences about the groups for the scan's warnings (none when there are none);
    `sides` (each image's shorter side in pixels) adds a caution where pictures are too small
    for the check to tell copies from look-alikes (`small_picture_caution`)."""
    if not groups:
        return []
    copies = sum(len(g.paths) - 1 for g in groups)
    kept = (
        "each group is kept in one split, so no copy is tested on after training on its twin"
        if layout == "classes"
        else "the train/val/test folders are used as given"
    )
    lines = [f"{counted(len(groups), 'picture')} found more than once "
             f"({counted(copies, 'extra copy', 'extra copies')}); {kept}."]
    conflicts = [g for g in groups if g.conflict]
    if conflicts:
        lines.append(
            f"{counted_are(len(conflicts), 'picture')} filed under different classes (labelling "
            f"conflict: one label is wrong), e.g. {_describe(conflicts[0], across='labels')}."
        )
    leaks = [g for g in groups if g.leak]
    if leaks:
        lines.append(
            f"{counted(len(leaks), 'picture')} {'sits' if len(leaks) == 1 else 'sit'} in more "
            f"than one of train/val/test (leak: the test "
            f"score will be too optimistic), e.g. {_describe(leaks[0], across='splits')}."
        )
    caution = small_picture_caution(groups, sides or {})
    return lines + ([caution] if caution else [])


def small_picture_caution(groups: Sequence[DuplicateGroup], sides: Mapping[Path, int]) -> str:
    """A caution when some "near" groups hold only pictures no larger than the check's own
    thumbnail (`GREY_SIDE`), or "". At that size two writers' thin strokes laid over each other
    pass every measure the check has: on 5,000 MNIST digits (28 px) it reported 138 groups of
    different drawings, and no rule strict enough to part them kept planted resized copies
    (docs/duplicates.md, "Known limit"). Exact copies are the same pixels: never cautioned."""
    small = [g for g in groups if g.kind == "near" and g.paths
             and all(0 < sides.get(path, GREY_SIDE + 1) <= GREY_SIDE for path in g.paths)]
    if not small:
        return ""
    side = max(sides[path] for g in small for path in g.paths)
    one = len(small) == 1
    return (f"{len(small):,} of these groups {'holds' if one else 'hold'} pictures only {side} "
            f"px or less on their shorter side, where different drawings of one shape (two "
            f"people's \"1\") can pass for the same picture: look at {'it' if one else 'them'} "
            f"before trusting the duplicate and leak counts.")


def _describe(group: DuplicateGroup, across: str) -> str:
    """Two copies that differ in `across` ('labels' or 'splits'): the example shows the problem."""
    values = getattr(group, across)
    first = 0
    second = next(k for k in range(len(values)) if values[k] != values[first])
    return " and ".join(
        f"{group.paths[k].name} ({'/'.join(x for x in (group.splits[k], group.labels[k]) if x)})"
        for k in (first, second)
    )


def group_index(groups: Sequence[DuplicateGroup]) -> dict[Path, int]:
    """Path -> the number of its group, for keeping each group in one split."""
    return {path: number for number, group in enumerate(groups) for path in group.paths}


def takes_unit(filled: int, unit_size: int, share: int) -> bool:
    """Should a split that holds `filled` of its `share` images take a group of `unit_size`?

    Yes when that brings it nearer its share than leaving it: a split then misses its share by
    at most half the largest group. For single images this is `filled < share`, the plain
    shuffle-and-slice, seed for seed.
    """
    return 2 * filled + unit_size < 2 * share
