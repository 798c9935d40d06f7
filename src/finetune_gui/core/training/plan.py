"""What a run will do, phase by phase, decided from its settings alone (no model, no data),
so the window and the terminal say the same thing the engine then does."""

from __future__ import annotations

from dataclasses import dataclass, replace

from finetune_gui.core.events import LogMessage, ProgressCallback
from finetune_gui.core.model.build import ALL_BLOCKS, from_scratch
from finetune_gui.core.settings import TrainingSettings

# A head with a hidden layer is not convex: it trains until validation stops improving, with
# this many epochs at most and at least this much patience (5 fixed epochs stopped it while
# validation accuracy was still climbing, issue 12).
HIDDEN_HEAD_EPOCH_LIMIT = 200
HIDDEN_HEAD_MIN_PATIENCE = 5
PHASE_TITLES = {
    "head": "Phase 1: training the new head on the frozen base",
    "finetune": "Phase 2: fine-tuning the top blocks",
    "scratch": "Training the whole network from scratch",
}


@dataclass(frozen=True)
class PhasePlan:
    """One phase of training as planned: `phase` is the name the engine's events use."""

    phase: str  # "head", "finetune" or "scratch"
    epochs: int
    learning_rate: float
    unfrozen_blocks: int  # ALL_BLOCKS: the whole network; 0: only the new head
    sentence: str  # e.g. "up to 5 epochs fine-tuning the top 2 blocks, only if it can ..."


def phase_plan(settings: TrainingSettings) -> list[PhasePlan]:
    """The phases that will train, in order; a phase with no epochs is left out."""
    s = settings
    if from_scratch(s):
        epochs = s.epochs_head + s.epochs_finetune
        sentence = f"{_count(epochs, 'epoch')} training the whole network from scratch"
        return [PhasePlan("scratch", epochs, s.lr_head, ALL_BLOCKS, sentence)]
    from finetune_gui.core.training.head_solver import solves_head

    phases = []
    if s.epochs_head and solves_head(s):
        phases.append(PhasePlan("head", 1, s.lr_head, 0, "the new head solved in one step"))
    elif s.epochs_head and s.cache_mode == "fast" and s.patience:
        limit = max(s.epochs_head, HIDDEN_HEAD_EPOCH_LIMIT)
        phases.append(PhasePlan("head", limit, s.lr_head, 0,
                                f"the new head until validation stops improving (at most "
                                f"{limit} epochs)"))
    elif s.epochs_head:
        phases.append(PhasePlan("head", s.epochs_head, s.lr_head, 0,
                                f"{_count(s.epochs_head, 'epoch')} for the new head"))
    if s.epochs_finetune and s.unfreeze_blocks:
        sentence = (f"{_count(s.epochs_finetune, 'epoch')} fine-tuning the top "
                    f"{_count(s.unfreeze_blocks, 'block')}")
        if s.finetune_when == "can-win" and phases:
            # Skipped or stopped early whenever it cannot win: a plan that promised its epochs
            # was wrong on most real folders, where the head alone is kept.
            sentence = f"up to {sentence}, only if it can still beat the head alone"
        phases.append(PhasePlan("finetune", s.epochs_finetune, s.resolved_lr_finetune,
                                s.unfreeze_blocks, sentence))
    return phases


def plan_summary(settings: TrainingSettings) -> str:
    """The plan as one plain sentence part: "5 epochs for the new head, then up to 5 epochs
    fine-tuning the top 2 blocks, only if it can still beat the head alone"."""
    text = ", then ".join(p.sentence for p in phase_plan(settings))
    if settings.epochs_finetune and not settings.unfreeze_blocks and not from_scratch(settings):
        text += "; no fine-tuning: 0 blocks are set to be unfrozen"
    return text


def planned_epochs(settings: TrainingSettings) -> int:
    """How many epochs the run will train at most (early stopping may end a phase sooner)."""
    return sum(p.epochs for p in phase_plan(settings))


def phase_patience(settings: TrainingSettings, phase: str) -> int:
    """Epochs without improvement before `phase` stops (0: never)."""
    patience = settings.patience
    if phase == "head" and patience and settings.cache_mode == "fast":
        return max(patience, HIDDEN_HEAD_MIN_PATIENCE)
    return patience


def remaining_phases(phases: list[PhasePlan], history: list[dict]) -> list[PhasePlan]:
    """The phases a resumed run still has to train, from the epochs `history` records.

    Counted per phase, not as one total: a phase may have stopped early, before its limit, so a
    phase that a later one followed is done whatever its count.
    """
    done: dict[str, int] = {}
    for row in history:
        done[row["phase"]] = done.get(row["phase"], 0) + 1
    left = []
    for index, p in enumerate(phases):
        later_begun = any(done.get(later.phase) for later in phases[index + 1 :])
        epochs = 0 if later_begun else max(0, p.epochs - done.get(p.phase, 0))
        left.append(replace(p, epochs=epochs))
    return left


def phases_to_train(
    settings: TrainingSettings, done: list[dict], progress: ProgressCallback
) -> list[PhasePlan]:
    """The phases for the engine: the plan above, less the epochs history rows `done` record
    (a resumed run); says what the settings leave out."""
    s = settings
    if from_scratch(s):
        epochs = s.epochs_head + s.epochs_finetune
        progress(LogMessage(
            f"No pretrained weights: the whole network trains from scratch for {epochs} epochs."
        ))
    elif s.epochs_finetune and not s.unfreeze_blocks:
        progress(LogMessage("Fine-tuning skipped: 0 blocks are set to be unfrozen."))
    return remaining_phases(phase_plan(s), done)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
