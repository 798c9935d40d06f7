"""Jobs behind the Results page's insight views: no Qt, so the heavy ones run in a child process.

`suspect_labels` and `embedding` read every image of a run through the model (seconds to
minutes): they run in a child process (`JobRunner.start(..., separate_process=True)`), take the
run's path and reopen it there, and return plain picklable results. `explain` is one small
Grad-CAM: the GUI runs it on a worker thread with the model loaded once and passed back in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.events import (
    CancelToken,
    LogMessage,
    ProgressCallback,
    check_cancel,
    ignore_progress,
)
from finetune_gui.jobs.engine import get_ready


@dataclass
class SuspectSearch:
    """What the suspect-label search found, and whether the run's backbone saw the labels."""

    run_path: Path
    suspects: list  # core.insight.suspects.Suspect, surest first
    saw_labels: bool
    images: int  # how many images were scored


@dataclass
class HeatmapPicture:
    """One image with its Grad-CAM overlay, both uint8 RGB of the same size."""

    path: Path
    class_name: str  # the class the heatmap explains
    probability: float  # the model's probability for that class
    image: np.ndarray
    overlay: np.ndarray


def _open_run(run_path: Path, progress: ProgressCallback, cancel: CancelToken | None):
    """The run folder and its model, in this process (TensorFlow imported first)."""
    from finetune_gui.core.run.folder import RunFolder

    run = RunFolder.open(run_path)  # before TensorFlow: a deleted run fails at once, plainly
    check_cancel(cancel)
    get_ready(progress)
    check_cancel(cancel)
    progress(LogMessage("Loading the model…"))
    model = run.load_model()
    check_cancel(cancel)
    return run, model


def suspect_labels(
    run_path: Path,
    exclude: frozenset[Path] = frozenset(),
    *,
    data_root: Path | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> SuspectSearch:
    """The run's suspect labels (`core.insight.suspects.review_suspects`), surest first: what
    the Suspect labels view and `finetune-gui suspects` show."""
    from finetune_gui.core.insight.suspects import review_suspects

    run, model = _open_run(Path(run_path), progress, cancel)
    review = review_suspects(run, model=model, exclude=set(exclude), data_root=data_root,
                             progress=progress, cancel=cancel)
    check_cancel(cancel)  # a cancel during the last, uncheckable step still wins
    return SuspectSearch(run.path, review.suspects, review.saw_labels, review.images)


def embedding(
    run_path: Path,
    method: str = "pca",
    exclude: frozenset[Path] = frozenset(),
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
):
    """The run's images as a 2-D map (`core.insight.embedding.EmbeddingMap`), its crosses the
    suspect labels found with the same `exclude`."""
    from finetune_gui.core.insight.embedding import embedding_map

    run, model = _open_run(Path(run_path), progress, cancel)
    found = embedding_map(run, model=model, method=method, exclude=set(exclude),
                          progress=progress, cancel=cancel)
    check_cancel(cancel)
    return found


def explain(run, path: Path, class_name: str | None, model=None) -> tuple[object, HeatmapPicture]:
    """Grad-CAM of one image for `class_name` (default: the predicted class); returns the model
    too, for the caller to pass in next time. TensorFlow must already be imported."""
    from PIL import Image

    from finetune_gui.core.data.images import load_rgb
    from finetune_gui.core.insight.gradcam import explain_image

    model = model or run.load_model()
    explanation = explain_image(run, path, class_name, model=model)
    height, width = explanation.overlay.shape[:2]
    plain = Image.fromarray(load_rgb(Path(path))).resize((width, height),
                                                         Image.Resampling.BICUBIC)
    return model, HeatmapPicture(Path(path), explanation.label, explanation.probability,
                                 np.asarray(plain, dtype=np.uint8), explanation.overlay)
