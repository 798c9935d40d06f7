"""Find good settings for me: try unfreeze depths, learning rates, what the head reads and
head regularisation within a time budget, pick by validation only, then train the chosen
settings as a normal run.

The tutorials this tool replaces tell users to "experiment with different hyperparameters";
nobody does it by hand. Every trial trains on the same split with its test part left out, so the
test images are never seen while choosing. Trials reuse the frozen layers' output through the
feature cache (a depth already tried costs only its fine-tuning epochs), and the final run with
the chosen settings is an ordinary run: its settings.json repeats it without --auto.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from finetune_gui.core.data.scan import DatasetScan
from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.errors import Cancelled, SettingsError
from finetune_gui.core.events import (
    CancelToken,
    LogMessage,
    ProgressCallback,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.selection import criterion, describe, improves, switch_margin

# Tried in this order until the budget runs out: the settings as given first (so the choice is
# never worse on validation than not searching), then depth, then learning rate, then the
# regularisation of the head while fine-tuning; last the careful programmer's recipe (most of
# the network unfrozen, a new augmented version of every image each epoch: exact mode), which
# took the digits of the quality benchmark from 0.913 to 0.940 once (docs/benchmarks.md) and
# costs the most: all of MobileNetV2 but its first 4 blocks, all of VGG.
DEEP_FINETUNE = {"cache_mode": "exact", "unfreeze_blocks": 13, "epochs_finetune": 12}
CANDIDATES: tuple[dict, ...] = (
    {},
    {"epochs_finetune": 0},
    {"head_reads": "last-block"},
    {"unfreeze_blocks": 1},
    {"unfreeze_blocks": 4},
    {"lr_finetune": 3e-4},
    {"lr_finetune": 3e-5},
    {"unfreeze_blocks": 1, "lr_finetune": 3e-4},
    {"unfreeze_blocks": 4, "lr_finetune": 3e-5},
    {"l2": 1e-4, "dropout": 0.5},
    {"epochs_finetune": 10},
    DEEP_FINETUNE,
)
DEFAULT_BUDGET_MINUTES = 10.0
# Settings that change only fine-tuning when the head is solved: the solver takes neither the
# Dense layer's L2 nor dropout (fine-tuning after a solved head leaves the dropout out too).
FINETUNE_ONLY = frozenset({"unfreeze_blocks", "lr_finetune", "epochs_finetune", "l2", "dropout"})


@dataclass
class Trial:
    """One set of changes tried, and how it did on the validation images."""

    changes: dict
    val_accuracy: float | None
    val_loss: float | None
    kept: str
    seconds: float

    @property
    def score(self) -> float:
        return criterion(self.val_accuracy, self.val_loss, float("inf"))

    def label(self, settings: TrainingSettings) -> str:
        tried = replace(settings, **self.changes) if self.changes else settings
        reads = ("" if tried.head_reads == settings.head_reads
                 else f", head reads {tried.head_reads.replace('-', ' ')}")
        if not tried.epochs_finetune or not tried.unfreeze_blocks:
            return "head only" + reads
        text = f"top {tried.unfreeze_blocks} blocks, lr {tried.resolved_lr_finetune:g}" + reads
        if tried.epochs_finetune != settings.epochs_finetune:
            text += f", {tried.epochs_finetune} epochs"
        if tried.l2 or tried.dropout != settings.dropout:
            text += f", L2 {tried.l2:g}, dropout {tried.dropout:g}"
        if tried.cache_mode != settings.cache_mode:
            text += f", {tried.cache_mode} mode"
        return text


def choose_settings(
    split: DatasetSplit,
    settings: TrainingSettings,
    *,
    budget_minutes: float = DEFAULT_BUDGET_MINUTES,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    candidates: tuple[dict, ...] = CANDIDATES,
) -> tuple[TrainingSettings, list[Trial]]:
    """Train each candidate on `split`'s train part, score it on its validation part, and return
    the best settings and every trial. The test part is removed before any trial runs."""
    from finetune_gui.core.training.job import TrainingJob

    if budget_minutes <= 0:
        raise SettingsError(
            f"The --budget must be a positive number of minutes; got {budget_minutes}."
        )
    if not split.val:
        raise SettingsError(
            "Finding settings needs validation images to compare them on; set a validation "
            "fraction above 0."
        )
    without_test = replace(split, test=[])
    budget = budget_minutes * 60.0
    started = time.monotonic()
    trials: list[Trial] = []
    given_history: list[dict] = []  # the settings as given: their run's history
    given_search: list[dict] | None = None  # and their head's search (`head_l2_tried`)
    scratch = Path(tempfile.mkdtemp(prefix="finetune-gui-auto-"))
    try:
        for index, changes in enumerate(candidates):
            check_cancel(cancel)
            elapsed = time.monotonic() - started
            typical = max((t.seconds for t in trials), default=0.0)
            if trials and elapsed + typical > budget:
                progress(LogMessage(
                    f"Time budget reached after {len(trials)} of {len(candidates)} trials."
                ))
                break
            tried = replace(settings, **changes)
            if any(replace(settings, **t.changes) == tried for t in trials):
                continue  # same settings as a trial already run (e.g. 0 blocks to unfreeze)
            why = (ends_as_given(given_history, tried, changes, len(split.val), given_search)
                   if trials else "")
            if why:
                progress(LogMessage(
                    f"Not tried: {Trial(changes, None, None, '', 0).label(settings)}. It would "
                    f"solve the same head as the settings as given and end as they did: {why}"))
                continue
            trial_start = time.monotonic()
            # The settings as given always finish: the search is never worse than none. Any
            # later trial stops where the budget ends (a deep one can take many times the
            # trials before it) and is not counted.
            stop = cancel if not trials else BudgetCancel(cancel, started + budget)
            job = TrainingJob(without_test, tried, scratch / f"trial-{index}", cancel=stop)
            result = job.run()
            if result.status != "completed":
                check_cancel(cancel)
                progress(LogMessage(
                    f"Time budget reached during trial {len(trials) + 1} "
                    f"({Trial(changes, None, None, '', 0).label(settings)}); it is not counted."
                ))
                break
            best = job.ledger.best.row(result.history)
            trial = Trial(
                changes,
                best["val_accuracy"] if best else None,
                best["val_loss"] if best else None,
                "fine-tuned" if best and best["phase"] == "finetune" else "head-only",
                time.monotonic() - trial_start,
            )
            trials.append(trial)
            if len(trials) == 1:
                given_history = result.history
                given_search = job.facts.record.head_l2_tried
            progress(LogMessage(
                f"Trial {len(trials)}: {trial.label(settings)}: {describe(trial.score)} "
                f"({trial.seconds:.0f} s)."
            ))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not trials:
        raise SettingsError("No trial finished, so no settings could be chosen.")
    best = chosen_trial(trials, len(split.val))
    return replace(settings, **best.changes), trials


def ends_as_given(given_history: list[dict], tried: TrainingSettings, changes: dict,
                  val_images: int, given_search: list[dict] | None = None) -> str:
    """Why a trial of `tried` would end as the settings as given did (`given_history`: their
    run's history; `given_search`: their head's search), so it need not run; "" when it might
    not. That is when `changes` touch only fine-tuning (`FINETUNE_ONLY`) while the head is
    solved, so the same stored features give the same head, and the given run's phase 2 was
    skipped before any epoch for a reason that holds for `tried` too (or `tried` does not
    fine-tune). Each such trial cost a whole run that could only repeat the first (issue 26)."""
    from finetune_gui.core.training.head_solver import solves_head
    from finetune_gui.core.training.selection import finetune_skipped

    if not changes or not set(changes) <= FINETUNE_ONLY or not solves_head(tried):
        return ""
    if any(row["phase"] == "finetune" for row in given_history):
        return ""
    if not tried.epochs_finetune or not tried.unfreeze_blocks:
        return "the head alone, as they kept."
    return finetune_skipped(given_history, tried, val_images, given_search)


class BudgetCancel(CancelToken):
    """The user's cancel (`user`), or the search's time budget running out (`deadline`, a
    `time.monotonic()` value): a trial that outlasts the budget stops at its next batch."""

    def __init__(self, user: CancelToken | None, deadline: float) -> None:
        super().__init__()
        self.user, self.deadline = user, deadline

    @property
    def cancelled(self) -> bool:
        user_cancelled = self.user is not None and self.user.cancelled
        return user_cancelled or self._event.is_set() or time.monotonic() > self.deadline

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled()


def chosen_trial(trials: list[Trial], val_images: int) -> Trial:
    """The best trial on validation; the settings as given (the first trial) unless another
    beats them by more than chance (`selection.switch_margin`): with the plain best, on 22
    validation faces a fine-tuning trial won by one image and lost 4 points on the test images."""
    given = trials[0]
    best = min(trials, key=lambda t: t.score)  # the earliest of equals
    if given.changes or best is given:
        return best
    margin = switch_margin(given.val_accuracy, val_images)
    return best if improves(best.score + margin, given.score) else given


def trials_table(settings: TrainingSettings, trials: list[Trial], chosen: Trial) -> str:
    """What --auto tried, as a table for the terminal and the log."""
    width = max(len(t.label(settings)) for t in trials)
    lines = [f"  {'settings':<{width}}  val accuracy  val loss  kept        time"]
    for t in trials:
        accuracy = f"{t.val_accuracy:.1%}" if t.val_accuracy is not None else "-"
        loss = f"{t.val_loss:.4f}" if t.val_loss is not None else "-"
        mark = "*" if t is chosen else " "
        lines.append(
            f"{mark} {t.label(settings):<{width}}  {accuracy:>12}  {loss:>8}  {t.kept:<10} "
            f"{t.seconds:5.0f} s"
        )
    return "\n".join(lines)


def auto_train(
    data: Path | str | DatasetScan | DatasetSplit,
    settings: TrainingSettings,
    out_dir: Path | str,
    *,
    budget_minutes: float = DEFAULT_BUDGET_MINUTES,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    exclude: frozenset[Path] | set[Path] = frozenset(),
    kfold: bool = False,
):
    """Choose settings within the budget, then train them as an ordinary run in `out_dir`
    (`exclude` and `kfold` as for `TrainingJob`)."""
    from finetune_gui.core.run.record import update_facts
    from finetune_gui.core.training.inputs import resolve_split
    from finetune_gui.core.training.job import TrainingJob

    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SettingsError(
            f"The run folder {out} already exists and is not empty; choose a new one."
        )
    split = resolve_split(data, settings, frozenset(Path(p) for p in exclude), progress, cancel)
    progress(LogMessage(
        f"Finding settings on the validation images (budget {budget_minutes:g} min); the test "
        f"images stay unseen until the end."
    ))
    chosen, trials = choose_settings(
        split, settings, budget_minutes=budget_minutes, progress=progress, cancel=cancel
    )
    winner = next(t for t in trials if replace(settings, **t.changes) == chosen)
    table = trials_table(settings, trials, winner)
    progress(LogMessage("Settings tried (* chosen):\n" + table))
    result = TrainingJob(split, chosen, out, progress=progress, cancel=cancel, kfold=kfold).run()
    if result.status == "completed":
        update_facts(out, auto_trials=[
            {"settings": t.label(settings), "changes": t.changes, "val_accuracy": t.val_accuracy,
             "val_loss": t.val_loss, "kept": t.kept, "seconds": round(t.seconds, 1),
             "chosen": t is winner}
            for t in trials
        ])
    result.message = f"{result.message}\nSettings tried (* chosen):\n{table}"
    return result
