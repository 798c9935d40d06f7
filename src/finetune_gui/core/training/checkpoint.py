"""A run's `checkpoint/` folder: the weights after every epoch, the best weights, and what a
killed run needs to continue from its last completed epoch."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.errors import RunFolderError, images_gone
from finetune_gui.core.files import atomic_write_with
from finetune_gui.core.run import folder as rf
from finetune_gui.core.run.record import FactsDraft, RunFacts
from finetune_gui.core.settings import TrainingSettings

CHECKPOINT_DIR = "checkpoint"
# Checkpoints are plain .npz files: Keras' save_weights took 1.1 s for a MobileNetV2 (one HDF5
# dataset per variable), twice per epoch; a snapshot to numpy and np.savez take 0.04 s.
LAST_WEIGHTS = "last.weights.npz"
BEST_WEIGHTS = "best.weights.npz"
STATE_FILE = "state.json"


def save_checkpoint_weights(model, target: Path) -> None:
    """All of `model`'s variables, in order and named by path, into one .npz file (atomic)."""
    arrays = {f"w{i}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}
    paths = np.array([v.path for v in model.weights])

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            np.savez(out, paths=paths, **arrays)

    atomic_write_with(target, write, suffix=".npz")


def load_checkpoint_weights(model, source: Path) -> None:
    """Set `model`'s variables from `save_checkpoint_weights`; refuse a file of another network."""
    try:
        with np.load(source, allow_pickle=False) as found:
            arrays = [found[f"w{i}"] for i in range(len(found["paths"]))]
    except (OSError, KeyError, ValueError) as exc:
        raise RunFolderError(f"The checkpoint {source} cannot be read ({exc}).") from exc
    variables = model.weights
    # Shapes in order, not paths: a model built twice in one process gets a new root name.
    if len(arrays) != len(variables) or any(
        a.shape != tuple(v.shape) for a, v in zip(arrays, variables, strict=True)
    ):
        raise RunFolderError(
            f"The checkpoint {source} belongs to a different network than this run's settings."
        )
    for variable, array in zip(variables, arrays, strict=True):
        variable.assign(array)


class RunCheckpoint:
    """The checkpoint files of the run folder `run_dir`."""

    def __init__(self, run_dir: Path, facts: FactsDraft | None = None) -> None:
        self.run_dir = run_dir
        self.folder = run_dir / CHECKPOINT_DIR
        # What the run has learned about itself so far (the head search's rows, the k-fold
        # estimate): kept with each epoch, so a resumed run refits and records as an
        # uninterrupted one does.
        self.facts = facts if facts is not None else FactsDraft()

    def save_epoch(
        self,
        model,
        history: list[dict],
        *,
        best_value: float,
        best_epoch: int | None,
        batch_size: int,
        first_loss: float | None,
    ) -> None:
        """After each epoch: weights, history and position, so a killed run can resume here."""
        self.folder.mkdir(exist_ok=True)
        save_checkpoint_weights(model, self.folder / LAST_WEIGHTS)
        rf.write_history(self.run_dir / rf.HISTORY_FILE, history)
        state = {
            "epochs_done": len(history),
            "best_value": best_value if math.isfinite(best_value) else None,
            "best_epoch": best_epoch,
            "batch_size": batch_size,
            "first_loss": first_loss,
            "facts": self.facts.learned(),
        }
        rf.write_json(self.folder / STATE_FILE, state)

    def save_best(self, model) -> None:
        """The weights of the epoch that just became the best one."""
        self.folder.mkdir(exist_ok=True)
        save_checkpoint_weights(model, self.folder / BEST_WEIGHTS)

    @property
    def has_best(self) -> bool:
        return (self.folder / BEST_WEIGHTS).exists()

    def load_best(self, model) -> None:
        load_checkpoint_weights(model, self.folder / BEST_WEIGHTS)

    def load_last(self, model) -> None:
        load_checkpoint_weights(model, self.folder / LAST_WEIGHTS)


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted run continues: its settings and split, the epochs it finished, and
    what its checkpoint remembered (batch size after out-of-memory retries, best so far)."""

    settings: TrainingSettings
    split: DatasetSplit
    history: list[dict]
    epochs_done: int
    batch_size: int
    first_loss: float | None
    best_value: float  # inf before any epoch was the best
    best_epoch: int | None
    facts: RunFacts  # what the job had learned at the last checkpoint (empty for older ones)


def read_resume_point(run_dir: Path) -> ResumePoint:
    """What `run_dir` needs to continue; a plain `RunFolderError` when it cannot.

    Same settings and the same split as the run folder records; the image folder must still
    be where the split says.
    """
    state_file = run_dir / CHECKPOINT_DIR / STATE_FILE
    facts = rf.read_facts(run_dir)
    if facts.status is None:
        raise RunFolderError(f"{run_dir} is not a run folder that can be resumed.")
    if facts.status == "completed":
        raise RunFolderError(f"The run in {run_dir} already finished; there is nothing to resume.")
    if not rf.has_split(run_dir):
        raise RunFolderError(
            f"The run in {run_dir} stopped before it had split the images, so there is nothing "
            f"to resume. Start a new run instead."
        )
    settings = rf.read_settings(run_dir)
    split = rf.read_split(run_dir)
    missing = [
        p for part in (split.train, split.val, split.test) for p, _ in part if not p.exists()
    ]
    if missing:
        raise images_gone(missing, "image", " to resume")
    # Stopped before its first epoch finished: it starts again, with the same settings and
    # split (nothing was trained, so nothing is lost).
    started = state_file.exists() and (run_dir / CHECKPOINT_DIR / LAST_WEIGHTS).exists()
    state = json.loads(state_file.read_text("utf-8")) if started else {}
    best_value = state.get("best_value")
    return ResumePoint(
        settings=settings,
        split=split,
        # history.csv is written just before state.json: a kill between the two leaves one row
        # more than the checkpoint knows, and that epoch is trained again.
        history=rf.RunFolder.read_history(run_dir)[: int(state.get("epochs_done", 0))],
        epochs_done=state.get("epochs_done", 0),
        batch_size=int(state.get("batch_size") or settings.batch_size),
        first_loss=state.get("first_loss"),
        best_value=float(best_value) if best_value is not None else math.inf,
        best_epoch=state.get("best_epoch") if best_value is not None else None,
        facts=RunFacts.from_dict(state.get("facts") or {}),
    )


def interrupted_runs(folder: Path | str) -> list[Path]:
    """Run folders below `folder` that stopped mid-training and can be resumed; newest first.

    Killed (run.json says "running" but its process is gone) or stopped by closing the window.
    """
    return rf.resumable_runs(folder)
