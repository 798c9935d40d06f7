"""What the model was trained and tested on: counts per split and class, and content hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.events import (
    ProgressCallback,
    StageProgress,
    StageStarted,
    ignore_progress,
)
from finetune_gui.core.words import counted_are


def dataset_summary(split: DatasetSplit, progress: ProgressCallback = ignore_progress) -> dict:
    """Counts per split and class, and a hash of the file list and of every file's bytes.

    The content hash identifies exactly these images (names, labels, bytes) as they are now;
    it is left out, with the reason, when some files are missing.
    """
    parts = {"train": split.train, "val": split.val, "test": split.test}
    total = sum(len(items) for items in parts.values())
    progress(StageStarted("hash", total, f"Hashing {total} images for the model card"))
    listing, content = hashlib.sha256(), hashlib.sha256()
    missing, done = 0, 0
    for name, items in parts.items():
        for path, label in items:
            line = f"{name}\t{_relative(path, split.root)}\t{label}"
            listing.update(f"{line}\n".encode())
            try:
                with open(path, "rb") as handle:
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()
            except OSError:
                missing += 1
                digest = "missing"
            content.update(f"{line}\t{digest}\n".encode())
            done += 1
            if done % 200 == 0 or done == total:
                progress(StageProgress("hash", done, total))
    per_class = {
        name: {
            part: sum(1 for _, label in items if label == index)
            for part, items in parts.items()
        }
        for index, name in enumerate(split.classes)
    }
    return {
        "root": str(split.root),
        "images": total,
        "counts": split.counts(),
        "per_class": per_class,
        "split_seed": split.seed,
        "content_sha256": content.hexdigest() if not missing else None,
        "file_list_sha256": listing.hexdigest(),
        "missing_files": missing,
        "hash_note": (
            "sha256 over every image's split, relative path, label and file sha256, "
            "computed at export time"
            if not missing
            else f"no content hash: {counted_are(missing, 'image')} missing from the folder"
        ),
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)

