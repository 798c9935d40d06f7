"""Progress events and the cancel token that every long core job accepts.

Core jobs call `progress(event)` with one of the dataclasses below and check `cancel` between
steps. The GUI turns events into Qt signals; the CLI prints them. Neither is known here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from finetune_gui.core.errors import Cancelled


class CancelToken:
    """A flag one thread sets and a job polls; safe to share across threads."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass(frozen=True)
class StageStarted:
    """A named stage of a job began (e.g. "scan", "decode", "extract", "evaluate")."""

    stage: str
    total: int
    text: str = ""


@dataclass(frozen=True)
class StageProgress:
    """`done` of `total` items of the current stage are finished."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class PhaseStarted:
    """Training phase 1 ("head") or 2 ("finetune") began; `first_epoch` is the global epoch index."""

    phase: str
    epochs: int
    first_epoch: int
    trainable_params: int = 0


@dataclass(frozen=True)
class BatchEnded:
    """One training batch finished. `eta_seconds` covers the rest of the current phase."""

    phase: str
    epoch: int
    batch: int
    batches: int
    loss: float
    eta_seconds: float | None = None


@dataclass(frozen=True)
class EpochEnded:
    """One epoch finished; `epoch` counts from 1 across both phases."""

    phase: str
    epoch: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LogMessage:
    """A line for the log pane or the terminal."""

    text: str
    level: str = "info"


Event = StageStarted | StageProgress | PhaseStarted | BatchEnded | EpochEnded | LogMessage
ProgressCallback = Callable[[Event], None]


def ignore_progress(event: Event) -> None:
    """The default progress callback: drop every event."""


def check_cancel(cancel: CancelToken | None) -> None:
    """Raise `Cancelled` if the token was set; a `None` token never cancels."""
    if cancel is not None:
        cancel.raise_if_cancelled()
