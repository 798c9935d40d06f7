"""The images a run learns from: its split, from whatever the caller gave, and each part of the
split as decoded pixels with their labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finetune_gui.core.data.kept_pixels import KeptPixels
from finetune_gui.core.data.pipeline import decode_images
from finetune_gui.core.data.scan import DatasetScan, scan_folder
from finetune_gui.core.data.split import DatasetSplit, split_dataset
from finetune_gui.core.data.storage import give_back_memory
from finetune_gui.core.events import CancelToken, LogMessage, ProgressCallback
from finetune_gui.core.settings import TrainingSettings


def resolve_split(
    data: Path | str | DatasetScan | DatasetSplit,
    settings: TrainingSettings,
    exclude: frozenset[Path],
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> DatasetSplit:
    """A split as given, or made from a scan (scanning a folder first); scan warnings are logged."""
    if isinstance(data, DatasetSplit):
        return data
    scanned_here = not isinstance(data, DatasetScan)
    if scanned_here:
        # The scan decodes every file whole anyway: it keeps the pixels at the run's size.
        keep = KeptPixels(settings.resolved_image_size)
        data = scan_folder(data, progress=progress, cancel=cancel, keep=keep)
    for warning in data.warnings:
        progress(LogMessage(warning, "warning"))
    s = settings
    split = split_dataset(data, s.val_fraction, s.test_fraction, s.seed, exclude=exclude)
    if scanned_here:
        # The scan's records and fingerprints (1.3 KB an image) are not needed any more.
        del data
        give_back_memory()
    return split


def decode_part(
    items: list[tuple[Path, int]],
    size: int,
    stage: str,
    progress: ProgressCallback,
    cancel: CancelToken | None,
    kept: KeptPixels | None = None,
):
    """One part of the split as uint8 pixels at the run's size, and its labels (the pixels
    the run's scan kept, `kept`, are taken rather than decoded again)."""
    pixels = decode_images(
        [p for p, _ in items], size, progress=progress, cancel=cancel, stage=stage, kept=kept
    )
    return pixels, np.array([label for _, label in items], dtype="int32")
