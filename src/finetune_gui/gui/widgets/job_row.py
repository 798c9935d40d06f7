"""Cancel, progress and a line of status for a view's background job (suspects, map, ...)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from finetune_gui.core.events import LogMessage, StageProgress, StageStarted
from finetune_gui.gui.worker import JobRunner


class JobStatusRow(QWidget):
    """Shows what `runner`'s job is doing; `last_step` is said once the images are all read."""

    def __init__(self, runner: JobRunner, last_step: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.last_step = last_step
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel()
        self.status.setStyleSheet("color:#4b5563;")
        self.status.setWordWrap(True)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.progress, 1)
        layout.addWidget(self.status, 2)
        runner.event.connect(self._on_event)

    def cancel(self) -> None:
        if self.runner.is_running:
            self.status.setText("Cancelling…")
            self.runner.cancel()

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setVisible(busy)
        self.progress.setVisible(busy)
        self.progress.setRange(0, 0)  # busy until the job says how much there is to do

    def stopped(self, text: str) -> None:
        """The job ended without its result (cancelled, or failed): say so in `text`, so the
        last thing it was doing ("Loading MobileNetV2…") does not stay as if it still were."""
        self.set_busy(False)
        self.status.setText(text)

    def _on_event(self, event: object) -> None:
        if isinstance(event, LogMessage):
            self.status.setText(event.text)
        elif isinstance(event, StageStarted):
            self.progress.setRange(0, max(1, event.total))
            self.progress.setValue(0)
            self.status.setText(event.text or "Reading the images…")
        elif isinstance(event, StageProgress):
            self.progress.setValue(event.done)
            if event.done >= event.total:
                self.progress.setRange(0, 0)
                self.status.setText(self.last_step)
