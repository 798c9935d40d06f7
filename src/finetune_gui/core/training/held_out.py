"""The one look a run takes at its test split, at the very end."""

from __future__ import annotations

from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.events import CancelToken, ProgressCallback, StageStarted, check_cancel
from finetune_gui.core.run.evaluation import EvaluationReport, build_report, predict_probabilities
from finetune_gui.core.training.inputs import decode_part
from finetune_gui.core.training.tracking import PhaseStop


def evaluate_on_test_split(
    model,
    split: DatasetSplit,
    size: int,
    batch_size: int,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> EvaluationReport:
    """Score `model` on the test images it never saw; stops at the next batch on cancel."""
    from finetune_gui.core.training.callbacks import CancelStop

    test_x, test_y = decode_part(split.test, size, "evaluate", progress, cancel)
    progress(StageStarted("evaluate", len(test_y), f"Testing on {len(test_y)} held-out images"))
    probs = predict_probabilities(model, test_x, batch_size, [CancelStop(cancel, PhaseStop())])
    check_cancel(cancel)
    return build_report(split.classes, test_y, probs, [p for p, _ in split.test])
