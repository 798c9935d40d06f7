"""What a run's run.json says, as one typed, frozen record: the only reader of its keys.

Training writes the facts as it learns them (core/training/run_writer.py); everything else reads
them here, by name, typed. A field an older run lacks reads as its default (a run from before
the head could be refitted has no `head_refit`); keys this version does not know (a newer run's)
are kept in `extra` and written back unchanged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from finetune_gui.core.files import atomic_write_text

RUN_FILE = "run.json"
RUN_FORMAT = 1
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class RunFacts:
    """run.json, field by field."""

    status: str | None = None  # completed, cancelled, failed, interrupted, running
    message: str = ""  # what the run said at its end, in words
    data: str | None = None  # the image folder it learned from
    counts: dict | None = None  # images per part of the split
    best_epoch: int | None = None
    kept_model: str | None = None  # "fine-tuned" or "head-only" once phase 2 was decided
    head_refit: dict | None = None  # the kept head solved again on training + validation images
    head_l2_tried: list = field(default_factory=list)  # the head search's rows, one "chosen"
    calibration: dict | None = None  # the temperature folded into the output layer, and why
    kfold: dict | None = None  # a k-fold estimate on the cached features (small folders)
    unsure_rule: dict | None = None  # a summary of unsure.json
    ensemble_of: list | None = None  # an ensemble's members
    auto_trials: list = field(default_factory=list)  # what --auto tried
    updated: str | None = None  # when run.json was last written (TIME_FORMAT)
    pid: int | None = None  # the process that writes the run, and on which machine
    host: str | None = None
    format: int = RUN_FORMAT
    finetune_gui: str | None = None  # the versions that trained it
    tensorflow: str | None = None
    keras: str | None = None
    python: str | None = None
    extra: dict = field(default_factory=dict)  # keys this version does not know

    @classmethod
    def from_dict(cls, data: dict) -> RunFacts:
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        written = {k: v for k, v in data.items() if v is not None and v != [] and v != ""}
        return {**written, **self.extra}

    def with_changes(self, **changes) -> RunFacts:
        """The record with `changes` (field names, or a newer run's keys for `extra`)."""
        known = {f.name for f in fields(self)} - {"extra"}
        extra = {**self.extra, **{k: v for k, v in changes.items() if k not in known}}
        return replace(self, **{k: v for k, v in changes.items() if k in known}, extra=extra)

    # -- what the facts mean -------------------------------------------------------------------
    @property
    def chosen_head(self) -> dict | None:
        """The head search's row the run kept (`head_l2_tried`), or None when no head was
        solved (phase 1 trained, or not run)."""
        return next((row for row in self.head_l2_tried or () if row.get("chosen")), None)

    @property
    def temperature(self) -> float:
        """What the kept model's logits are divided by (1.0 for a run not calibrated)."""
        return float((self.calibration or {}).get("temperature", 1.0))

    @property
    def updated_at(self) -> float | None:
        """`updated` as seconds since the epoch, or None."""
        try:
            return time.mktime(time.strptime(self.updated or "", TIME_FORMAT))
        except ValueError:
            return None

    @property
    def newer_than_this_app(self) -> bool:
        return int(self.format or RUN_FORMAT) > RUN_FORMAT


class FactsDraft:
    """The facts a training run learns as it goes (the head search's rows, the k-fold estimate,
    the kept model, the head refit), shared by the job, its phases and its checkpoint, so a
    resumed run knows what the uninterrupted one knew. Only `RunFacts` fields can be learned."""

    LEARNED = ("head_l2_tried", "kfold", "kept_model", "head_refit", "calibration")

    def __init__(self, record: RunFacts | None = None) -> None:
        self.record = record or RunFacts()

    def learn(self, **changes) -> None:
        unknown = sorted(set(changes) - set(self.LEARNED))
        if unknown:
            raise TypeError(f"not a fact a run learns while training: {', '.join(unknown)}")
        self.record = replace(self.record, **changes)

    def learned(self) -> dict:
        """The facts learned so far, by field name (for run.json and the checkpoint)."""
        return {name: getattr(self.record, name) for name in self.LEARNED
                if getattr(self.record, name) not in (None, [])}


def read_facts(run_dir: Path | str) -> RunFacts:
    """A run's facts; empty when run.json is missing or unreadable (a listing must not fail)."""
    try:
        data = json.loads((Path(run_dir) / RUN_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return RunFacts()
    return RunFacts.from_dict(data) if isinstance(data, dict) else RunFacts()


def write_facts(run_dir: Path | str, facts: RunFacts) -> None:
    atomic_write_text(Path(run_dir) / RUN_FILE,
                      json.dumps(facts.to_dict(), indent=2, ensure_ascii=False, default=str))


def update_facts(run_dir: Path | str, **changes) -> RunFacts:
    """Change some facts of a run's run.json, keeping the others; returns the new record."""
    facts = read_facts(run_dir).with_changes(**changes)
    write_facts(run_dir, facts)
    return facts
