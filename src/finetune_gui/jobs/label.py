"""The labelling view's slow part, in a child process: check the folder and look at every picture
with the network once (core.label.labeller.prepare). No Qt.

The pass over thousands of pictures runs TensorFlow for minutes; in its own process it cannot
stall the window (see child_process.py). What comes back is plain: the folder's pictures and
one row of features per picture (256 numbers each after projection: 10 MB for 10,000
pictures), from which the window solves the head again after every page on a worker thread.
"""

from __future__ import annotations

from pathlib import Path

from finetune_gui.core.events import CancelToken, ProgressCallback, check_cancel, ignore_progress
from finetune_gui.jobs.engine import get_ready


def prepare(
    folder: Path,
    source,
    subfolders_are_classes: bool | None,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
):
    """(FolderPictures, PictureFeatures) for `folder` seen by `source` (a FeatureSource)."""
    from finetune_gui.core.label.labeller import prepare as prepare_pictures
    from finetune_gui.core.label.pictures import check_root

    check_root(Path(folder))  # a missing folder is refused before TensorFlow loads
    source.check()
    get_ready(progress)
    check_cancel(cancel)
    return prepare_pictures(folder, source, subfolders_are_classes=subfolders_are_classes,
                            progress=progress, cancel=cancel)
