"""How sure, how right: the reliability picture of a run's test answers. Each bar is the
accuracy of the answers given with about that confidence; on the diagonal, "90% sure" is right
9 times in 10. The numbers come from the run's report (core/run/calibration.py)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from finetune_gui.core.run.calibration import calibration_verdict

BAR_BRUSH = pg.mkBrush("#1f77b4")
DIAGONAL_PEN = pg.mkPen("#6b7280", width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine)
BINS = 10  # fewer bins than the error's 15: a test split of 80 images fills them


class ReliabilityPicture(QWidget):
    """The picture and one sentence saying what it means for the run shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget(background="w")
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "how sure the model said it was")
        item.setLabel("left", "how often it was right")
        item.setXRange(0, 1, padding=0.02)
        item.setYRange(0, 1.1, padding=0.02)  # room for the counts over a full bar
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        diagonal = self.plot.plot([0, 1], [0, 1], pen=DIAGONAL_PEN)
        diagonal.setZValue(1)  # over the bars: a bar on the line must not hide it
        self.bars = pg.BarGraphItem(x=[], height=[], width=1.0 / BINS, brush=BAR_BRUSH)
        item.addItem(self.bars)
        # Over each bar, how many answers it holds: a bar of 1 of 2 right reads otherwise like
        # a bar of 100 of 200, and a bar with none right is only a line.
        self.counts: list[pg.TextItem] = []
        layout.addWidget(self.plot, 1)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setObjectName("reliabilitySummary")
        layout.addWidget(self.summary)
        self.rows: list[dict] = []  # the bars shown

    def show_report(self, report) -> None:
        """The picture for `report` (an EvaluationReport), or empty with the reason (None)."""
        self.rows = report.reliability(BINS) if report is not None else []
        self.bars.setOpts(x=[(row["low"] + row["high"]) / 2 for row in self.rows],
                          height=[row["accuracy"] for row in self.rows], width=0.9 / BINS)
        item = self.plot.getPlotItem()
        for label in self.counts:
            item.removeItem(label)
        self.counts = []
        for row in self.rows:
            label = pg.TextItem(f"{row['right']} of {row['count']}", color="#374151", anchor=(0.5, 1.0))
            label.setPos((row["low"] + row["high"]) / 2, row["accuracy"])
            item.addItem(label)
            self.counts.append(label)
        error = report.calibration_error if report is not None else None
        if error is None:
            self.summary.setText("No test answers to compare confidence with.")
            return
        self.summary.setText(
            f"Calibration error {error:.3f} on {report.count:,} test images (0 is perfect): "
            f"{calibration_verdict(error, report.calibration_error_by_chance)} Bars on the "
            f"dashed line mean a \"90% sure\" answer is right 9 times in 10.")
