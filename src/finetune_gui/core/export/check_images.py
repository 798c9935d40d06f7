"""The images an export is checked and calibrated on: held-out images of the run, still present."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.errors import DatasetError, ExportError, RunFolderError
from finetune_gui.core.events import CancelToken, LogMessage, ProgressCallback
from finetune_gui.core.run.folder import RunFolder, has_split

MAX_VERIFY_IMAGES = 200
MAX_CALIBRATION_IMAGES = 100


def load_split(run: RunFolder, data_root: Path | str | None) -> DatasetSplit:
    """The run's split, its images looked for in `data_root` when the folder was moved."""
    if not has_split(run.path):
        raise ExportError(
            f"The run folder {run.path} has no list of its images, so there are no held-out images "
            f"to check the export against."
        )
    try:
        split = run.split(data_root)
    except RunFolderError as exc:
        raise ExportError(str(exc)) from exc
    if not split.root.is_dir():
        raise ExportError(
            f"The images of this run are no longer in {split.root}, and the export must be "
            f"checked on some of them. Put the folder back, or give its new place "
            f"(finetune-gui export ... --data FOLDER)."
        )
    return split


def verification_paths(
    split: DatasetSplit, progress: ProgressCallback
) -> tuple[list[Path], str]:
    """Held-out images (test first, then validation) that still exist, and how to name them."""
    held_out = [("test", p) for p, _ in split.test] + [("validation", p) for p, _ in split.val]
    kind = "held-out images"
    if not held_out:
        held_out = [("training", p) for p, _ in split.train]
        kind = "training images (the run has no test or validation images)"
    present = [(name, p) for name, p in held_out if p.is_file()]
    if not present:
        raise ExportError(
            f"None of the {len(held_out)} images to check the export on is in {split.root} "
            f"any more, so the export cannot be verified. Put the images back, or give the "
            f"folder's new place (finetune-gui export ... --data FOLDER)."
        )
    if len(present) < len(held_out):
        progress(
            LogMessage(
                f"{len(held_out) - len(present)} of {len(held_out)} images to verify on are "
                f"missing from {split.root}; verifying on the {len(present)} that remain.",
                "warning",
            )
        )
    chosen = _spread(present, MAX_VERIFY_IMAGES)
    if kind == "held-out images":
        counts = Counter(name for name, _ in chosen)  # insertion order: test, then validation
        kind = f"held-out images ({', '.join(f'{n} {name}' for name, n in counts.items())})"
    return [p for _, p in chosen], kind


def calibration_paths(split: DatasetSplit) -> list[Path]:
    """Training images (still present, every class) that int8 quantisation is calibrated on."""
    present = [p for p, _ in split.train if p.is_file()]
    if not present:
        raise ExportError(
            f"The int8 export is calibrated on the training images, and none of them is in "
            f"{split.root} any more. Put them back, or give the folder's new place "
            f"(finetune-gui export ... --data FOLDER)."
        )
    return _spread(present, MAX_CALIBRATION_IMAGES)


def _spread(items: list, limit: int) -> list:
    """At most `limit` items, evenly spaced, so every class (the lists are sorted) is included."""
    if len(items) <= limit:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, limit)]


def decode(
    paths: list[Path], size: int, progress: ProgressCallback, cancel: CancelToken | None
) -> np.ndarray:
    """The images as the model sees them, or a plain error naming the one that cannot be read."""
    from finetune_gui.core.data.pipeline import decode_images

    try:
        return np.asarray(decode_images(paths, size, progress=progress, cancel=cancel))
    except DatasetError as exc:
        raise ExportError(f"The export could not read its check images: {exc}") from exc

