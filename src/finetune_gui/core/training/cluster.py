"""A run on several machines (TF_CONFIG): every process trains in step, only the chief keeps a
run folder, and a process that stops takes the others down with a plain message."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from finetune_gui.core.errors import SettingsError, UserError
from finetune_gui.core.training.devices import DevicePlan, multiworker_strategy
from finetune_gui.core.training.result import RunResult


def run_on_cluster(
    plan: DevicePlan, run_into: Callable[[Path | None], RunResult], *, resumed: bool
) -> RunResult:
    """`run_into(folder)` on this process of the cluster: the chief into the run folder (None),
    any other worker into a scratch folder deleted at the end."""
    import tensorflow as tf

    multiworker_strategy()  # first: it cannot be made after any TensorFlow operation
    if resumed:
        raise SettingsError(
            "A run is resumed on one machine: unset TF_CONFIG and run `finetune-gui "
            "train --resume RUN` where the run folder is."
        )
    try:
        return run_into(None) if plan.is_chief else _run_in_scratch_folder(plan, run_into)
    except (tf.errors.UnavailableError, tf.errors.AbortedError) as exc:
        raise UserError(
            f"Another process of the cluster stopped, so this one stopped too "
            f"({_collective_failure(exc)}). The chief's run folder keeps every finished "
            f"epoch: start all processes again, or unset TF_CONFIG and continue on one "
            f"machine with `finetune-gui train --resume RUN`."
        ) from exc


def _run_in_scratch_folder(
    plan: DevicePlan, run_into: Callable[[Path | None], RunResult]
) -> RunResult:
    """A worker that is not the chief trains in step with the others and saves when they do
    (saving can take part in collective operations), but into a folder deleted at the end."""
    scratch = Path(tempfile.mkdtemp(prefix="finetune-gui-worker-"))
    try:
        result = run_into(scratch / "run")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    task = plan.cluster
    result.message += (
        f" This was {task.task_type} {task.index}: the chief writes the run folder, "
        f"nothing was kept here."
    )
    result.wrote_run_folder = False
    return result


def _collective_failure(exc: Exception) -> str:
    """TensorFlow's reason without its internal function name: "...: The following tasks..."."""
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", getattr(exc, "message", str(exc)))
    return " ".join(text.split("\n")[:2]).strip()
