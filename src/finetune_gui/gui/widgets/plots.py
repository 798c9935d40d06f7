"""Live training curves: loss and accuracy per epoch, training and validation, with a marker
where fine-tuning begins. Each curve is created once and only its data changes."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QWidget

TRAIN_PEN = pg.mkPen("#1f77b4", width=2)
VAL_PEN = pg.mkPen("#ff7f0e", width=2)
PHASE_PEN = pg.mkPen("#6b7280", width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine)
SERIES = ("loss", "val_loss", "accuracy", "val_accuracy")


# The key to the colours is part of the title, above the plot: a legend inside it covered the
# "fine-tuning starts" label whenever fine-tuning began near the right edge.
TITLE_KEY = ('&nbsp;&nbsp;&nbsp;<span style="color:#1f77b4">━━ training</span>'
             '&nbsp;&nbsp;<span style="color:#ff7f0e">━━ validation</span>')


def epoch_plot(title: str, y_label: str,
               legend_offset: tuple[int, int] | None = None) -> pg.PlotWidget:
    """A plot of one value per epoch, titled, with a legend at `legend_offset` if one is given."""
    widget = pg.PlotWidget(background="w")
    item = widget.getPlotItem()
    item.setTitle(title, color="#1f2933", size="11pt")
    item.setLabel("bottom", "epoch")
    item.setLabel("left", y_label)
    # No "(x0.001)" unit prefixes: a loss of 0.4 should read 0.4.
    item.getAxis("left").enableAutoSIPrefix(False)
    # No grid: drawing it tripled the cost of each per-epoch repaint (measured: 15 -> 45 ms).
    if legend_offset is not None:
        item.addLegend(offset=legend_offset)
    item.setMouseEnabled(x=False, y=False)
    item.hideButtons()
    return widget


class TrainingCurves(QWidget):
    """Two plots side by side; `add_epoch` appends one point to each curve."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.loss_plot = epoch_plot("Loss (lower is better)" + TITLE_KEY, "loss")
        self.accuracy_plot = epoch_plot("Accuracy (higher is better)" + TITLE_KEY, "accuracy")
        self.accuracy_plot.getPlotItem().setYRange(0, 1, padding=0.02)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.accuracy_plot)
        symbol = {"symbol": "o", "symbolSize": 6}
        self.curves: dict[str, pg.PlotDataItem] = {
            "loss": self.loss_plot.plot(pen=TRAIN_PEN, name="training", symbolBrush="#1f77b4",
                                        symbolPen=None, **symbol),
            "val_loss": self.loss_plot.plot(pen=VAL_PEN, name="validation",
                                            symbolBrush="#ff7f0e", symbolPen=None, **symbol),
            "accuracy": self.accuracy_plot.plot(pen=TRAIN_PEN, name="training",
                                                symbolBrush="#1f77b4", symbolPen=None, **symbol),
            "val_accuracy": self.accuracy_plot.plot(pen=VAL_PEN, name="validation",
                                                    symbolBrush="#ff7f0e", symbolPen=None,
                                                    **symbol),
        }
        self.phase_lines = []
        for plot in (self.loss_plot, self.accuracy_plot):
            line = pg.InfiniteLine(angle=90, movable=False, pen=PHASE_PEN,
                                   label="fine-tuning starts",
                                   labelOpts={"position": 0.92, "color": "#4b5563"})
            line.setVisible(False)
            plot.addItem(line)
            self.phase_lines.append(line)
        self.clear()

    def clear(self) -> None:
        """Empty the curves for a new run (the curve objects stay)."""
        self.epochs: list[int] = []
        self.values: dict[str, list[float]] = {key: [] for key in SERIES}
        for curve in self.curves.values():
            curve.setData([], [])
        for line in self.phase_lines:
            line.setVisible(False)
        self._set_epoch_ticks()  # an empty plot too: its axis reads 0, 1, not 0.2 ... 0.8
        # An emptied curve keeps the view where the last run left it (seen: a new run's empty
        # loss plot read 0.6 ... 1.2 and epochs 1 ... 5); start from the empty plot's view.
        loss, accuracy = self.loss_plot.getPlotItem(), self.accuracy_plot.getPlotItem()
        loss.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        loss.enableAutoRange()
        accuracy.setXRange(0, 1, padding=0.02)
        accuracy.enableAutoRange(axis="x")

    def _set_epoch_ticks(self) -> None:
        """Whole epochs only (no 'epoch 1.5'), at most about ten labels."""
        step = max(1, math.ceil(len(self.epochs) / 10))
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.getPlotItem().getAxis("bottom").setTickSpacing(major=step, minor=step)

    def add_epoch(self, epoch: int, metrics: dict[str, float | None]) -> None:
        self.epochs.append(epoch)
        self._set_epoch_ticks()
        for key in SERIES:
            value = metrics.get(key)
            self.values[key].append(float("nan") if value is None else float(value))
            # connect="finite" leaves a gap rather than a line to a missing value.
            self.curves[key].setData(self.epochs, self.values[key], connect="finite")

    def mark_phase_two(self, first_epoch: int) -> None:
        """Draw the marker halfway between the last head epoch and the first fine-tuning one.
        Once per run: a resumed fine-tuning starts again after its earlier epochs, whose start
        the curves already mark (`show_history`)."""
        if self.phase_two_marked:
            return
        for line in self.phase_lines:
            line.setValue(first_epoch - 0.5)
            line.setVisible(True)

    @property
    def phase_two_marked(self) -> bool:
        return self.phase_lines[0].isVisible()

    def show_history(self, history: list[dict]) -> None:
        """Draw a finished run's curves at once (when a run is reopened)."""
        self.clear()
        previous_phase = None
        for row in history:
            if previous_phase == "head" and row.get("phase") == "finetune":
                self.mark_phase_two(row["epoch"])
            previous_phase = row.get("phase")
            self.add_epoch(row["epoch"], row)

    def point_count(self, key: str = "loss") -> int:
        x, _ = self.curves[key].getData()
        return 0 if x is None else len(x)
