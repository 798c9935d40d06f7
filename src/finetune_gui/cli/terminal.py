"""What every command shares: exit codes and core events drawn on a terminal."""

from __future__ import annotations

import sys
import time

EXIT_OK, EXIT_FAILED, EXIT_USER_ERROR, EXIT_CANCELLED = 0, 1, 2, 130


# How a run's last line begins (core.training.result.finished_message, a cancelled run's).
LAST_LINE_OPENINGS = ("Finished", "Cancelled")


class TerminalProgress:
    """Core events as a progress bar with ETA on a terminal, as plain lines elsewhere.

    With `last_line_on_stdout`, the caller prints the run's last line itself (on stdout, where
    scripts read it): a log line that may be it is held back until the next event, and
    `finish(last_line)` drops it when it is, so the terminal shows it once.
    """

    def __init__(self, enabled: bool = True, stream=None, last_line_on_stdout: bool = False) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_draw = 0.0
        self.stage_started = time.monotonic()
        self.last_line_on_stdout = last_line_on_stdout
        self._held: tuple[str, str] | None = None  # (the message, the line that shows it)

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        from finetune_gui.core import events as ev

        self._show_held()  # it was not the last line: more came
        if isinstance(event, ev.LogMessage):
            line = ("warning: " if event.level == "warning" else "") + event.text
            if self.last_line_on_stdout and event.text.startswith(LAST_LINE_OPENINGS):
                self._held = (event.text, line)
            else:
                self._line(line)
        elif isinstance(event, ev.StageStarted):
            self.stage_started = time.monotonic()
            if event.text:
                self._line(event.text)
        elif isinstance(event, ev.StageProgress):
            elapsed = time.monotonic() - self.stage_started
            eta = elapsed / event.done * (event.total - event.done) if event.done else None
            self._bar(event.stage, event.done, event.total, eta)
        elif isinstance(event, ev.BatchEnded):
            self._bar(
                f"epoch {event.epoch} ({event.phase})",
                event.batch,
                event.batches,
                event.eta_seconds,
                f"loss {event.loss:.4f}",
            )
        elif isinstance(event, ev.EpochEnded):
            parts = [f"{k} {v:.4f}" for k, v in event.metrics.items() if k != "lr"]
            self._line(f"epoch {event.epoch} ({event.phase}): " + ", ".join(parts))

    def finish(self, last_line: str) -> None:
        """The run ended with `last_line`, which the caller prints: a held line that says the
        same is dropped, any other is shown."""
        if self._held is not None and self._held[0] == last_line:
            self._held = None
        self._show_held()

    def _show_held(self) -> None:
        if self._held is not None:
            _, line = self._held
            self._held = None
            self._line(line)

    def _bar(self, label: str, done: int, total: int, eta: float | None, extra: str = "") -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if done < total and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        width = 30
        filled = int(width * done / max(total, 1))
        eta_text = f" ETA {format_seconds(eta)}" if eta is not None else ""
        self.stream.write(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{eta_text} {extra}\033[K"
        )
        self.stream.flush()

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()


def format_seconds(seconds: float | None) -> str:
    """Seconds as m:ss, or XhYYm past an hour; "?" when unknown."""
    if seconds is None:
        return "?"
    seconds = round(seconds)
    return (
        f"{seconds // 60}:{seconds % 60:02d}"
        if seconds < 3600
        else f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
    )
