"""What a finished (or cancelled) training run hands back to its caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.run.evaluation import EvaluationReport
from finetune_gui.core.run.intervals import kfold_text


@dataclass
class RunResult:
    """What a run produced; `status` is "completed" or "cancelled"."""

    run_dir: Path
    status: str
    classes: list[str]
    history: list[dict] = field(default_factory=list)
    report: EvaluationReport | None = None
    message: str = ""
    wrote_run_folder: bool = True  # False on a worker that trained with others but is not the chief


def finished_message(report: EvaluationReport | None, run_dir: Path, kfold: dict | None) -> str:
    """The last line of a completed run: its test score, or how to score a run without one."""
    if report is not None:
        return f"Finished: test accuracy {report.accuracy:.1%} on {report.count:,} images."
    # No test split (test fraction 0, or a pre-split folder without test/) is a legal choice.
    return (
        f"Finished. No test images were kept aside, so there is no test score; score the model "
        f"on a labelled folder with: finetune-gui evaluate {run_dir} FOLDER"
        + (f"\n{kfold_text(kfold)}." if kfold else "")
    )
