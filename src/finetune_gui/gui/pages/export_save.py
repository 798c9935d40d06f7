"""The Export page's "Save the model" panel: a format from the registry, a folder, a checked file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.events import StageProgress, StageStarted
from finetune_gui.core.export.availability import (
    Availability,
    all_formats_availability,
    format_availability,
)
from finetune_gui.core.export.destination import destination_problem
from finetune_gui.core.export.earlier import earlier_export_at
from finetune_gui.core.export.formats import FORMATS
from finetune_gui.core.export.verify import check_sentence
from finetune_gui.gui.start_folder import RUN_OUTPUT, start_folder
from finetune_gui.gui.state import LoadedRun, ProjectState
from finetune_gui.gui.widgets.common import Banner
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.worker import JobRunner
from finetune_gui.jobs import engine as engine_jobs


class SavePanel(QGroupBox):
    """Export the current run's model in a chosen format to a chosen folder, in the background."""

    exported = Signal(list)  # the written files

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__("Save the model", parent)
        self.state = state
        self.export_runner = JobRunner("export", self)
        self.availability: dict[str, Availability] = {}
        self.replace_question: QMessageBox | None = None  # the latest one asked (tests read it)
        self._build()
        self.export_runner.event.connect(self._on_export_event)
        self.export_runner.succeeded.connect(self._on_exported)
        self.export_runner.cancelled.connect(self._on_export_cancelled)
        self.export_runner.failed.connect(self._on_export_failed)

    def _build(self) -> None:
        save = QVBoxLayout(self)
        format_row = QHBoxLayout()
        self.format_choice = QComboBox()
        for spec in FORMATS.values():
            self.format_choice.addItem(spec.title, spec.name)
        self.format_choice.setToolTip("The kind of file to make. Every export is checked "
                                      "against the trained model before it is saved.")
        self.format_choice.currentIndexChanged.connect(self._show_format)
        self.format_purpose = QLabel()
        self.format_purpose.setWordWrap(True)
        self.format_purpose.setStyleSheet("color:#4b5563;")
        format_row.addWidget(QLabel("Format:"))
        format_row.addWidget(self.format_choice)
        format_row.addWidget(self.format_purpose, 1)
        save.addLayout(format_row)
        # The formats this computer cannot make, each with why and what to do.
        self.unavailable_note = QLabel()
        self.unavailable_note.setWordWrap(True)
        self.unavailable_note.setStyleSheet("color:#92400e;")
        save.addWidget(self.unavailable_note)
        row = QHBoxLayout()
        self.target = QLineEdit()
        self.target.setPlaceholderText("Folder to save into (created if needed)")
        browse = QPushButton("Choose folder…")
        browse.clicked.connect(self._choose_target)
        self.export_button = QPushButton("Save model")
        self.export_button.setObjectName("primaryButton")
        self.export_button.clicked.connect(self.export)
        self.export_cancel = QPushButton("Cancel")
        self.export_cancel.clicked.connect(self.export_runner.cancel)
        self.export_cancel.hide()
        row.addWidget(self.target, 1)
        row.addWidget(browse)
        row.addWidget(self.export_button)
        row.addWidget(self.export_cancel)
        save.addLayout(row)
        self.export_progress = QProgressBar()
        self.export_progress.hide()
        save.addWidget(self.export_progress)
        self.export_result = Banner("success")
        save.addWidget(self.export_result)
        self.refresh_formats()

    def refresh_formats(self) -> None:
        """Mark each format this computer cannot make (the core decides) with why and what to
        do; asked again each time the page shows (the runtime may have been installed since)."""
        self.availability = all_formats_availability(self._backbone())
        items = self.format_choice.model()
        missing = []
        for row in range(self.format_choice.count()):
            spec = FORMATS[self.format_choice.itemData(row)]
            found = self.availability[spec.name]
            item = items.item(row)
            item.setEnabled(found.available)
            item.setText(spec.title if found.available else f"{spec.title}: not available here")
            item.setToolTip(spec.purpose if found.available else found.reason)
            if not found.available:
                missing.append(f"{spec.title}: {found.reason}")
        self.unavailable_note.setText("\n".join(missing))
        self.unavailable_note.setVisible(bool(missing))
        self._show_format()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self.export_runner.is_running:
            self.refresh_formats()

    def show_run(self, run: LoadedRun | None) -> None:
        """Saving waits for a run to save; what it can be saved as depends on its network."""
        if not self.export_runner.is_running:
            self.refresh_formats()
        self._enable_save()

    def _backbone(self) -> str | None:
        run = self.state.current_run
        return run.folder.settings.backbone if run is not None else None

    def _chosen_availability(self) -> Availability:
        fmt = self.format_choice.currentData()
        return self.availability.get(fmt) or format_availability(fmt, self._backbone())

    def _enable_save(self) -> None:
        self.export_button.setEnabled(
            self.state.current_run is not None and not self.export_runner.is_running
            and self._chosen_availability().available)

    def _choose_target(self) -> None:
        # The folder typed or chosen before (or where it would be made), else the run's.
        start = start_folder(RUN_OUTPUT, self.state, current=self.target.text())
        folder = QFileDialog.getExistingDirectory(self, "Save the model into", start)
        if folder:
            self.target.setText(folder)

    def choices(self) -> tuple[str, str]:
        """(destination folder, format) as last chosen, for the next session."""
        return self.target.text().strip(), self.format_choice.currentData()

    def restore_choices(self, folder: str, fmt: str) -> None:
        self.target.setText(folder)
        index = self.format_choice.findData(fmt)
        if index >= 0:
            self.format_choice.setCurrentIndex(index)

    def _show_format(self) -> None:
        spec = FORMATS[self.format_choice.currentData()]
        found = self._chosen_availability()
        if not found.available:
            self.format_purpose.setText(found.reason)
            self.format_purpose.setStyleSheet("color:#92400e;")
        else:
            self.format_purpose.setText(f"{spec.purpose} {found.note}".strip())
            self.format_purpose.setStyleSheet("color:#4b5563;")
        self._enable_save()

    def export(self) -> None:
        """Export the current run's model in the chosen format to the chosen folder."""
        run = self.state.current_run
        text = self.target.text().strip()
        if run is None or self.export_runner.is_running:
            return
        fmt = self.format_choice.currentData()
        found = format_availability(fmt, self._backbone())
        # Refused here, in words, before any job starts: nothing to unfold, no traceback.
        problem = found.reason if not found.available else destination_problem(run.path, fmt,
                                                                                text)
        if problem:
            self.export_result.show_text(problem, "warning")
            return
        earlier = earlier_export_at(fmt, text, run)
        if earlier is None:
            self._start_export(run.path, fmt, text, found.in_browser, replace=False)
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Replace the earlier export?")
        box.setText(earlier.question())
        replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep it", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)

        def decide(button) -> None:
            if button is replace:
                self._start_export(run.path, fmt, text, found.in_browser, replace=True)
            else:
                self.export_result.show_text(
                    "Nothing was saved; the earlier export is as it was. Choose another "
                    "folder to keep both.", "info")

        box.buttonClicked.connect(decide)
        box.open()
        self.replace_question = box

    def _start_export(self, run_path: Path, fmt: str, text: str, in_browser: bool,
                      *, replace: bool) -> None:
        if self.export_runner.is_running:
            return
        self._set_exporting(True)
        self.export_result.show_text("Converting, then checking the file against the trained "
                                     "model…", "info")
        # A separate process: converting holds Python's lock for long stretches.
        self.export_runner.start(engine_jobs.export, run_path, fmt, Path(text).expanduser(),
                                 in_browser=in_browser, replace=replace, separate_process=True)

    def _set_exporting(self, exporting: bool) -> None:
        self.format_choice.setEnabled(not exporting)
        self.export_cancel.setVisible(exporting)
        self.export_progress.setVisible(exporting)
        self.export_progress.setRange(0, 0)
        if exporting:
            self.export_button.setEnabled(False)
        else:
            self._enable_save()

    def _on_export_event(self, event: object) -> None:
        if isinstance(event, StageStarted) and event.stage == "export":
            self.export_progress.setRange(0, event.total)
            self.export_progress.setValue(0)
            self.export_progress.setFormat(event.text or "%v of %m")
        elif isinstance(event, StageProgress) and event.stage == "export":
            self.export_progress.setValue(event.done)

    def _on_exported(self, result) -> None:
        self._set_exporting(False)
        names = ", ".join(p.name for p in result.written)
        check = result.verification
        replaced = " (in place of the earlier export)" if result.replaced else ""
        if result.beside:
            replaced += (f", beside {', '.join(p.name for p in result.beside)} of the same run "
                         f"(the model card describes each)")
        self.export_result.show_text(
            f"Saved {names} in {result.model_path.parent}{replaced}.\n"
            f"{check_sentence(check)}" + (
                f" {result.speed.size_text}, {result.speed.ms_per_image:.1f} ms per image on "
                f"this computer." if result.speed else ""),
            "warning" if check.not_checked else "success")
        self.exported.emit(list(result.written))

    def _on_export_cancelled(self) -> None:
        self._set_exporting(False)
        self.export_result.show_text("Export cancelled; nothing was written.", "warning")

    def _on_export_failed(self, exc: BaseException, trace: str) -> None:
        self._set_exporting(False)
        self.export_result.show_text("")
        show_error(self, exc, trace, "saving the model", title="Could not save")


    def shutdown(self) -> None:
        self.export_runner.shutdown()
