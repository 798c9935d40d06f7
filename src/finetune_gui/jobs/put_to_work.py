"""Jobs behind "Sort a folder…" and "Similar images": no Qt.

Sorting reads every image of a folder through the model (minutes for thousands): it runs in a
child process (`JobRunner.start(..., separate_process=True)`), reopens the run there and returns
the plain `SortSummary`. Similar images is one image against the stored dataset features: it
runs on a worker thread with the model loaded once and handed back for the next time.
"""

from __future__ import annotations

from pathlib import Path

from finetune_gui.core.errors import Cancelled
from finetune_gui.core.events import (
    CancelToken,
    LogMessage,
    ProgressCallback,
    check_cancel,
    ignore_progress,
)
from finetune_gui.jobs.engine import get_ready


def sort_folder(
    run_path: Path,
    source: Path,
    out: Path,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
):
    """Copy `source`'s images into `out`/<class or "not sure">/ (`core.run.sort`); a cancel
    ends as cancelled (the copies made so far stay)."""
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.run.sort import check_destination, sort_folder

    run = RunFolder.open(run_path)  # before TensorFlow: a deleted run fails at once, plainly
    check_destination(Path(source), Path(out))
    get_ready(progress)
    check_cancel(cancel)
    progress(LogMessage("Loading the model…"))
    summary = sort_folder(run, source, out, progress=progress, cancel=cancel)
    if summary.cancelled:
        raise Cancelled()
    return summary


def similar(run, image: Path, model=None, top: int = 8):
    """The `top` dataset images nearest to `image`, and the model for the next call.
    TensorFlow must already be imported."""
    from finetune_gui.core.run.similar import similar_images

    model = model or run.load_model()
    return model, similar_images(run, image, top=top, model=model)
