"""Step 6: save the trained model where the user wants it, and try it on new images.

The page shows the current run and holds three panels, each with its own background job:
saving the model (export_save), the run's report (export_report) and trying the model on new
images (export_try); under the first, the size and speed of each format exported (export_speed).
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget

from finetune_gui.gui.pages.export_report import ReportPanel
from finetune_gui.gui.pages.export_save import SavePanel
from finetune_gui.gui.pages.export_speed import ExportSpeedTable
from finetune_gui.gui.pages.export_try import TryPanel
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import Banner, page_header, scrolling_page


class ExportPage(QWidget):
    """Export to a folder; drop or pick images to see the model's top-3 answers."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        # Scrolls rather than squeezes: at 1280 x 860 the heatmap beside the answers had its
        # caption and legend cut in half once a model was saved and the speed table grew.
        layout = scrolling_page(self)
        layout.addWidget(page_header(
            "Export and try",
            "Save the trained model to use it elsewhere. Every format takes plain RGB pixels "
            "(no preprocessing needed); labels.txt lists the classes in output order, "
            "metrics.json holds the test results and model_card.md describes the model.",
        ))
        self.run_label = QLabel()
        layout.addWidget(self.run_label)
        self.notice = Banner("info")
        layout.addWidget(self.notice)
        self.save_panel = SavePanel(state)
        layout.addWidget(self.save_panel)
        self.speed_table = ExportSpeedTable()
        layout.addWidget(self.speed_table)
        self.save_panel.exported.connect(
            lambda _: self.speed_table.show_run(self.state.current_run))
        self.report_panel = ReportPanel(state)
        layout.addWidget(self.report_panel)
        self.try_panel = TryPanel(state)
        layout.addWidget(self.try_panel, 1)
        state.current_run_changed.connect(self._show_run)
        self._show_run()

    def _show_run(self) -> None:
        run = self.state.current_run
        for panel in (self.save_panel, self.speed_table, self.report_panel, self.try_panel):
            panel.show_run(run)
        if run is None:
            self.run_label.setText("")
            self.notice.show_text("Train a model first (step Train); then save it here.", "info")
            return
        self.notice.show_text("")
        accuracy = f", test accuracy {run.report.accuracy:.1%}" if run.report else ""
        self.run_label.setText(f"Model of run <b>{run.path.name}</b>{accuracy}.")

    def choices(self) -> tuple[str, str]:
        """(destination folder, format) as last chosen, for the next session."""
        return self.save_panel.choices()

    def restore_choices(self, folder: str, fmt: str) -> None:
        self.save_panel.restore_choices(folder, fmt)

    def shutdown(self) -> None:
        self.report_panel.shutdown()
        self.save_panel.shutdown()
        self.try_panel.shutdown()
