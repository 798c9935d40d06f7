"""Job functions that run in a child process (see `child_process`): no Qt, so the child starts
with only the engine to import."""

from __future__ import annotations

from pathlib import Path

from finetune_gui.core.data.scan import DatasetScan
from finetune_gui.core.events import CancelToken, LogMessage, ProgressCallback, ignore_progress
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.quiet import import_tensorflow_quietly


def get_ready(progress: ProgressCallback) -> None:
    """What every job does first in its child process: say so, then import TensorFlow (its
    start-up chatter goes to the log file, not the user's screen)."""
    progress(LogMessage("Getting ready: loading TensorFlow…"))
    import_tensorflow_quietly()


def train(
    scan: DatasetScan,
    settings: TrainingSettings,
    run_dir: Path,
    exclude: frozenset[Path],
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
):
    """Train with the core in this process; returns the core's `RunResult`."""
    get_ready(progress)
    from finetune_gui.core.training.job import TrainingJob

    return TrainingJob(scan, settings, run_dir, progress=progress, cancel=cancel,
                       exclude=exclude).run()


def train_auto(
    scan: DatasetScan,
    settings: TrainingSettings,
    run_dir: Path,
    exclude: frozenset[Path],
    budget_minutes: float,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
):
    """Find good settings within `budget_minutes`, then train them; returns the `RunResult`."""
    get_ready(progress)
    from finetune_gui.core.training.auto import auto_train

    return auto_train(scan, settings, run_dir, budget_minutes=budget_minutes, progress=progress,
                      cancel=cancel, exclude=exclude)


def resume(
    run_dir: Path,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
):
    """Continue an interrupted run from its last completed epoch; returns the `RunResult`."""
    get_ready(progress)
    from finetune_gui.core.training.job import TrainingJob

    return TrainingJob.resume(run_dir, progress=progress, cancel=cancel).run()


def export(
    run_path: Path,
    fmt: str,
    target: Path,
    *,
    in_browser: bool | None = None,
    replace: bool = False,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
):
    """Export and verify a run's model with the core; returns the core's `ExportResult`.
    `in_browser`: check a web page in Chromium (the window's finding), None: look here.
    `replace`: the user agreed to replace an earlier export at `target`."""
    get_ready(progress)
    from finetune_gui.core.export.job import export_model

    return export_model(run_path, fmt, target, progress=progress, cancel=cancel,
                        in_browser=in_browser, replace=replace)


def report(
    run_path: Path,
    out_html: Path,
    scan: DatasetScan | None = None,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> Path:
    """Write the run's one-file HTML report with the core; returns the file's path.

    `scan` is the window's scan of the run's image folder (saves checking it again), or None.
    """
    get_ready(progress)
    from finetune_gui.core.insight.report import write_report

    return write_report(run_path, out_html, scan=scan, progress=progress, cancel=cancel)


def evaluate_test_split(
    run_path: Path,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
):
    """Score a run's kept weights on its test split and save the report; returns the report."""
    get_ready(progress)
    from finetune_gui.core.run.folder import evaluate_test_split as evaluate

    return evaluate(run_path, progress=progress, cancel=cancel)
