"""Combining finished runs into an ensemble run: check them, build the one model that averages
them (`core/run/ensemble.py`), score it beside each member, and write its run folder through
`RunWriter`, like a trained run, so its files are the ones any run has.

It lives here, beside the writer, because `core/run` cannot import `core/training`: training
reads runs, so the other way round would be a circle between the two packages.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from finetune_gui.core.errors import EnsembleError, UserError
from finetune_gui.core.events import (
    CancelToken,
    LogMessage,
    ProgressCallback,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.files import give_user_permissions
from finetune_gui.core.run import folder as rf
from finetune_gui.core.run.ensemble import (
    NO_TEST_IMAGES,
    EnsembleResult,
    MemberScore,
    build_ensemble_model,
    check_combinable,
    ensemble_size,
    how_to_score,
    score_members,
    write_ensemble,
)
from finetune_gui.core.run.evaluation import EvaluationReport
from finetune_gui.core.run.folder import RunFolder
from finetune_gui.core.training.run_writer import RunWriter


def combine_runs(
    runs: list[RunFolder | Path | str],
    out: Path | str,
    *,
    data_root: Path | str | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> EnsembleResult:
    """Combine `runs` into a new run folder `out`, scored on their shared test split (not
    scored when they kept no test images: `EnsembleResult.report` is None).

    `data_root` is where the runs' images are now, if their folder was moved.
    """
    from finetune_gui.core.data.split import DatasetSplit

    folders = [r if isinstance(r, RunFolder) else RunFolder.open(r) for r in runs]
    split = check_combinable(folders)
    out = Path(out).expanduser()
    _check_out(out, folders)
    if data_root:
        split = DatasetSplit.from_dict(split.to_dict(), Path(data_root).expanduser())
    missing = [str(p) for p, _ in split.test if not p.is_file()]
    if missing:
        raise EnsembleError(
            f"{len(missing)} of the {len(split.test)} test images are no longer in "
            f"{split.root} (for example {missing[0]}), so the ensemble cannot be scored; put "
            f"them back or give the folder's new place.")
    size = ensemble_size(folders)
    progress(LogMessage(f"Combining {len(folders)} runs at {size} px: loading their models…"))
    check_cancel(cancel)
    model, member_outputs = build_ensemble_model(folders)
    report, members = score_members(folders, model, member_outputs, split, progress, cancel)
    check_cancel(cancel)
    if report is None:
        message = f"{NO_TEST_IMAGES} {how_to_score(out)}"
    else:
        message = (f"Ensemble test accuracy {report.accuracy:.1%} on {report.count:,} images; "
                   f"members: " + ", ".join(f"{m.test_accuracy:.1%}" for m in members) + ".")
    _write_run(out, model, folders, split, report, members, message)
    progress(LogMessage(f"Ensemble saved in {out}. {message}"))
    return EnsembleResult(out, members, report)


def _check_out(out: Path, folders: list[RunFolder]) -> None:
    if any(out.resolve() == run.path.resolve() for run in folders):
        raise EnsembleError(f"Cannot save the ensemble over its member {out}; choose a new folder.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EnsembleError(
            f"Cannot save the ensemble in {out}: something is already there; choose a new folder.")
    if not out.parent.is_dir():
        raise EnsembleError(
            f"Cannot save the ensemble in {out}: the folder {out.parent} does not exist.")


def _write_run(out: Path, model, folders: list[RunFolder], split,
               report: EvaluationReport | None, members: list[MemberScore], message: str) -> None:
    """Every file in a hidden folder beside `out`, then one rename: never half an ensemble."""
    size = ensemble_size(folders)
    largest = next(run for run in folders if run.image_size == size)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        give_user_permissions(staging)
        writer = RunWriter(staging)
        writer.prepare()
        # The settings of the member whose size the ensemble takes: the run's input size, and
        # the settings a model card or the Compare table reads; the members are in ensemble.json.
        writer.write_start(largest.settings.with_changes(image_size=size), split)
        rf.save_model(model, staging / rf.MODEL_FILE)
        write_ensemble(staging, members, report, size)
        writer.write_results([], report)  # nothing was trained: no epochs in its history
        writer.write_status("completed", message=message, ensemble_of=[m.path for m in members],
                            image_size=size)
        if out.is_dir():
            out.rmdir()  # empty (checked): a folder cannot be renamed over a folder
        os.replace(staging, out)
    except OSError as exc:
        from finetune_gui.core.files import _describe_os_error

        raise UserError(_describe_os_error(out / rf.MODEL_FILE, exc)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
