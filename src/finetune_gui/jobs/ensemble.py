"""The ensemble job, run in a child process (see `child_process`): no Qt."""

from __future__ import annotations

from pathlib import Path

from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress
from finetune_gui.jobs.engine import get_ready


def combine(
    run_paths: list[Path],
    out: Path,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
):
    """Combine runs into an ensemble run with the core; returns the core's `EnsembleResult`."""
    get_ready(progress)
    from finetune_gui.core.training.ensemble_run import combine_runs

    return combine_runs(run_paths, out, progress=progress, cancel=cancel)
