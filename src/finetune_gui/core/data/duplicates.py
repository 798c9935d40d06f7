"""Exact and near-duplicate images: labelling conflicts and train/val/test leaks.

Exact duplicates share a content hash (the scan's sha1 of the file bytes). Near duplicates have
nearly the same perceptual fingerprint: the image shrunk to an 8 x 8 greyscale thumbnail by
averaging, its 64 grey levels packed into one int. Two fingerprints are compared by their mean
absolute grey-level difference. Averaging whole regions cancels the noise that resizing and JPEG
recompression add, while a different picture moves many regions by many levels. A 64-bit
pHash or dHash (signs of frequencies or of neighbour differences) was measured first and lost:
on plain backgrounds many of its bits sit near their cut-off, so copies drifted up to 26 bits
apart while different pictures came within 5 (docs/duplicates.md, benchmarks/duplicate_threshold.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

THUMB_SIDE = 8
FINGERPRINT_BYTES = THUMB_SIDE * THUMB_SIDE
# Near duplicates differ by at most this many grey levels (0-255) on average. Measured
# (docs/duplicates.md): copies resized 0.5x-2x and re-saved as JPEG at quality 50-95 stay within
# it 99.5% of the time at 48 px and always from 64 px up, while no two different generated
# images came closer than 4.3; among photo crops only overlapping crops (3%) did.
NEAR_THRESHOLD = 3.5


@dataclass(frozen=True)
class DuplicateGroup:
    """Images that are the same picture; `labels` and `splits` run parallel to `paths`."""

    paths: tuple[Path, ...]
    kind: str  # "exact": identical files; "near": the same picture resized or re-encoded
    labels: tuple[str, ...]
    splits: tuple[str | None, ...]
    conflict: bool  # the copies are filed under different classes
    leak: bool  # the copies sit in different folder splits (train/val/test)
    max_distance: float = 0.0  # the largest fingerprint distance within the group

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "paths": [str(p) for p in self.paths],
            "labels": list(self.labels),
            "splits": list(self.splits),
            "conflict": self.conflict,
            "leak": self.leak,
            "max_distance": round(self.max_distance, 2),
        }


def hash_image(image: Image.Image) -> int:
    """The perceptual fingerprint of a Pillow image (any mode, already upright)."""
    # BOX averages every source pixel, so JPEG block noise and resize aliasing cancel out.
    thumb = image.convert("L").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
    return int.from_bytes(thumb.tobytes(), "big")


def perceptual_hash(image: Path | str | np.ndarray | Image.Image) -> int:
    """The perceptual fingerprint of an image file, uint8 pixels (H, W, 3) or a Pillow image."""
    if isinstance(image, Image.Image):
        return hash_image(image)
    if isinstance(image, np.ndarray):
        return hash_image(Image.fromarray(np.asarray(image, dtype=np.uint8)))
    from finetune_gui.core.data.images import load_rgb  # images.py imports this module

    return hash_image(Image.fromarray(load_rgb(Path(image))))


def thumbnail_levels(fingerprint: int) -> np.ndarray:
    """The 64 grey levels a fingerprint holds, row by row."""
    return np.frombuffer(fingerprint.to_bytes(FINGERPRINT_BYTES, "big"), dtype=np.uint8)


def fingerprint_distance(a: int, b: int) -> float:
    """Mean absolute grey-level difference (0-255) of two fingerprints' thumbnails."""
    return float(np.abs(thumbnail_levels(a).astype(np.int16) - thumbnail_levels(b)).mean())


def near_pairs(
    fingerprints: Sequence[int], threshold: float = NEAR_THRESHOLD
) -> list[tuple[int, int, float]]:
    """(i, j, distance) for every i < j whose fingerprints are within `threshold`.

    Two thumbnails' mean brightness differs by no more than their distance, so after sorting by
    brightness each image is compared only with the few that are nearly as bright.
    """
    if len(fingerprints) < 2:
        return []
    levels = np.stack([thumbnail_levels(f) for f in fingerprints]).astype(np.int16)
    brightness = levels.mean(axis=1)
    order = np.argsort(brightness, kind="stable")
    ranked = brightness[order]
    found = []
    for position, i in enumerate(order):
        stop = int(np.searchsorted(ranked, ranked[position] + threshold, side="right"))
        others = order[position + 1 : stop]
        if not len(others):
            continue
        distances = np.abs(levels[others] - levels[i]).mean(axis=1)
        for j, distance in zip(others[distances <= threshold], distances[distances <= threshold],
                               strict=True):
            found.append((min(int(i), int(j)), max(int(i), int(j)), float(distance)))
    return sorted(found)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        root_i, root_j = self.find(i), self.find(j)
        if root_i != root_j:
            self.parent[max(root_i, root_j)] = min(root_i, root_j)


def find_duplicate_groups(
    records: Sequence,
    hashes: Sequence[int | None] | None = None,
    threshold: float = NEAR_THRESHOLD,
) -> list[DuplicateGroup]:
    """Group `records` (ImageRecord-like: path, label, split, sha1) that show the same picture.

    `hashes` are the perceptual fingerprints parallel to `records` (default: each record's
    `phash`); a record without one can still be an exact duplicate. Copies link transitively:
    if A is near B and B near C, all three form one group. Conflicts come first, then leaks.
    """
    if hashes is None:
        hashes = [getattr(r, "phash", None) for r in records]
    links = _UnionFind(len(records))
    first_with_content: dict[str, int] = {}
    for i, record in enumerate(records):
        links.join(i, first_with_content.setdefault(record.sha1, i))
    hashed = [i for i, h in enumerate(hashes) if h is not None]
    link_distances: list[tuple[int, float]] = []
    for a, b, distance in near_pairs([hashes[i] for i in hashed], threshold):
        links.join(hashed[a], hashed[b])
        link_distances.append((hashed[a], distance))
    members: dict[int, list[int]] = {}
    for i in range(len(records)):
        members.setdefault(links.find(i), []).append(i)
    widest: dict[int, float] = {}
    for i, distance in link_distances:
        root = links.find(i)
        widest[root] = max(widest.get(root, 0.0), distance)
    groups = [
        _group(records, indices, widest.get(root, 0.0))
        for root, indices in members.items()
        if len(indices) > 1
    ]
    groups.sort(key=lambda g: (not g.conflict, not g.leak, str(g.paths[0])))
    return groups


def _group(records, indices: list[int], widest: float) -> DuplicateGroup:
    chosen = sorted(indices, key=lambda i: str(records[i].path))
    labels = tuple(records[i].label for i in chosen)
    splits = tuple(records[i].split for i in chosen)
    exact = len({records[i].sha1 for i in chosen}) == 1
    return DuplicateGroup(
        paths=tuple(records[i].path for i in chosen),
        kind="exact" if exact else "near",
        labels=labels,
        splits=splits,
        conflict=len(set(labels)) > 1,
        leak=len(set(splits)) > 1,  # all None in the classes layout: never a leak there
        max_distance=0.0 if exact else widest,
    )


def duplicate_warnings(groups: Sequence[DuplicateGroup], layout: str = "classes") -> list[str]:
    """Plain sentences about the groups for the scan's warnings (none when there are none)."""
    if not groups:
        return []
    copies = sum(len(g.paths) - 1 for g in groups)
    kept = (
        "each group is kept in one split, so no copy is tested on after training on its twin"
        if layout == "classes"
        else "the train/val/test folders are used as given"
    )
    lines = [f"{len(groups)} group(s) of duplicate images ({copies} extra copies); {kept}."]
    conflicts = [g for g in groups if g.conflict]
    if conflicts:
        lines.append(
            f"{len(conflicts)} duplicate group(s) are filed under different classes (labelling "
            f"conflict), e.g. {_describe(conflicts[0])}."
        )
    leaks = [g for g in groups if g.leak]
    if leaks:
        lines.append(
            f"{len(leaks)} duplicate group(s) span train/val/test folders (leak: the test score "
            f"will be too optimistic), e.g. {_describe(leaks[0])}."
        )
    return lines


def _describe(group: DuplicateGroup) -> str:
    return " and ".join(
        f"{p.name} ({'/'.join(x for x in (split, label) if x)})"
        for p, label, split in zip(group.paths[:2], group.labels, group.splits, strict=False)
    )


def group_index(groups: Sequence[DuplicateGroup]) -> dict[Path, int]:
    """Path -> the number of its group, for keeping each group in one split."""
    return {path: number for number, group in enumerate(groups) for path in group.paths}
