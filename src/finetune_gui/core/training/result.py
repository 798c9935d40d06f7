"""What a finished (or cancelled) training run hands back to its caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.run.evaluation import EvaluationReport


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
