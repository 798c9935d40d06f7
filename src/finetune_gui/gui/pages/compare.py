"""Runs side by side: the user ticks runs of the project and sees the settings that differ, the
scores (the best one of each row highlighted) and the validation curves overlaid.

`compare.compare_runs` reads only small JSON and CSV files (about 1 ms per run, measured), so
it runs on the GUI thread when the ticks change; no model is loaded.
"""

from __future__ import annotations

import contextlib
import html
import math
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.errors import UserError
from finetune_gui.core.run.compare import RunComparison, compare_runs, readable_names
from finetune_gui.core.run.folder import RunFolder, run_state
from finetune_gui.core.settings import setting_label
from finetune_gui.gui.pages.compare_combine import CombineBar
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import Banner
from finetune_gui.gui.widgets.plots import epoch_plot

# One colour per run, in tick order (matplotlib's tab10: tells ten runs apart, also in print).
RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf")
BEST_BRUSH = QBrush(QColor("#d1fadf"))
METRIC_NAMES = {
    "status": "how it ended",
    "test accuracy": "test accuracy",
    "macro f1": "F1 (mean over classes)",
    "macro roc-auc": "ROC-AUC (mean over classes)",
    "test images": "test images",
    "epochs run": "epochs run",
    "best epoch": "best epoch",
    "best val_loss": "lowest validation loss",
    "best val_accuracy": "best validation accuracy",
}
# Scores where one run can be better than another; counts such as "epochs run" are not.
SCORES = ("test accuracy", "macro f1", "macro roc-auc", "best val_loss", "best val_accuracy")
PERCENTAGES = ("test accuracy", "best val_accuracy")


def value_text(value, key: str = "") -> str:
    """A setting's or metric's value for a table cell."""
    if value is None:
        return "–"
    if key == "weights" and isinstance(value, str) and ("/" in value or "\\" in value):
        return Path(value).name  # a weights file: the name is enough, the tooltip has the path
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.1%}" if key in PERCENTAGES else f"{value:.4g}"
    if isinstance(value, tuple):
        return ", ".join(value_text(v) for v in value) or "none"
    return str(value)


def best_columns(comparison: RunComparison, metric: str) -> set[int]:
    """The runs to highlight for `metric`: all that tie for the best value; none when every run
    has the same value (nothing to prefer)."""
    best = comparison.best_run(metric)
    if best is None:
        return set()
    values = comparison.metrics[metric]
    winners = {i for i, v in enumerate(values) if v == values[best]}
    return set() if len(winners) == len(values) else winners


class CompareRunsDialog(QDialog):
    """Non-modal: it stays open beside the window and follows new runs."""

    compared = Signal()  # the table and curves show the ticked runs (for tests)

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.comparison: RunComparison | None = None
        self._key_names: list[str] = []
        self.setWindowTitle("Compare runs")
        self.resize(1180, 760)
        self._build()
        state.runs_changed.connect(self.refresh_runs)
        self.refresh_runs()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel("Tick the runs to compare. The table lists the settings that were "
                       "different and the scores, best in green; the curves show how each run "
                       "did on the validation images, epoch by epoch.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.message = Banner("info")
        layout.addWidget(self.message)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("Runs of this project:"))
        self.run_list = QListWidget()
        # Whole names, wrapped at word boundaries: they differ at their ends (time and score).
        self.run_list.setWordWrap(True)
        self.run_list.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.run_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.run_list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.run_list.setSpacing(2)
        self.run_list.itemChanged.connect(self.compare)
        left_layout.addWidget(self.run_list, 1)
        splitter.addWidget(left)

        right = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        right.addWidget(self.table)
        plots = QWidget()
        plots_layout = QVBoxLayout(plots)
        plots_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        # No legend inside a plot, where it would cover curves: one key below both.
        self.accuracy_plot = epoch_plot("Validation accuracy (higher is better)", "accuracy")
        self.accuracy_plot.getPlotItem().setYRange(0, 1, padding=0.02)
        self.loss_plot = epoch_plot("Validation loss (lower is better)", "loss")
        row.addWidget(self.accuracy_plot)
        row.addWidget(self.loss_plot)
        plots_layout.addLayout(row, 1)
        self.key = QLabel()
        self.key.setWordWrap(True)
        self.key.setTextFormat(Qt.TextFormat.RichText)
        plots_layout.addWidget(self.key)
        right.addWidget(plots)
        right.setSizes([360, 320])
        splitter.addWidget(right)
        splitter.setSizes([240, 940])
        layout.addWidget(splitter, 1)

        self.combine_bar = CombineBar(self.state)
        layout.addWidget(self.combine_bar)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)

    # -- the runs to choose from --------------------------------------------------------------
    def refresh_runs(self) -> None:
        """List the project's runs, newest first; keep the ticks, tick runs that are new."""
        known = {self.run_list.item(i).data(Qt.ItemDataRole.UserRole):
                 self.run_list.item(i).checkState() for i in range(self.run_list.count())}
        self.run_list.blockSignals(True)
        self.run_list.clear()
        newest_first = list(reversed(self.state.runs))
        for number, (path, name) in enumerate(zip(newest_first, _list_names(newest_first),
                                                  strict=True)):
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            item.setToolTip(f"{name}\n{path}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            default = Qt.CheckState.Checked if (known or number < 2) else Qt.CheckState.Unchecked
            item.setCheckState(known.get(str(path), default))
            self.run_list.addItem(item)
        self.run_list.blockSignals(False)
        self.compare()

    def tick(self, paths) -> None:
        """Tick exactly these runs (the others are unticked) and compare them."""
        wanted = {str(p) for p in paths}
        self.run_list.blockSignals(True)
        for i in range(self.run_list.count()):
            item = self.run_list.item(i)
            ticked = item.data(Qt.ItemDataRole.UserRole) in wanted
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
        self.run_list.blockSignals(False)
        self.compare()

    def ticked_runs(self) -> list[Path]:
        """The ticked runs, oldest first (the order of the table's columns)."""
        items = [self.run_list.item(i) for i in range(self.run_list.count())]
        return [Path(item.data(Qt.ItemDataRole.UserRole)) for item in reversed(items)
                if item.checkState() == Qt.CheckState.Checked]

    def _colour_run_list(self, compared: list[Path]) -> None:
        """Each compared run's name in the colour of its column and curves."""
        colours = {str(path): RUN_COLOURS[i % len(RUN_COLOURS)] for i, path in enumerate(compared)}
        self.run_list.blockSignals(True)
        for i in range(self.run_list.count()):
            item = self.run_list.item(i)
            colour = colours.get(item.data(Qt.ItemDataRole.UserRole))
            item.setForeground(QColor(colour) if colour else QBrush())
        self.run_list.blockSignals(False)

    # -- comparing ----------------------------------------------------------------------------
    def compare(self) -> None:
        """Compare the ticked runs that can be read; say which cannot, and why."""
        from finetune_gui.core.run.folder import RunFolder

        folders, problems = [], []
        for path in self.ticked_runs():
            try:
                folders.append(RunFolder.open(path))
            except UserError as exc:
                problems.append(str(exc))
        self.comparison = compare_runs(folders) if folders else None
        self.combine_bar.set_runs([folder.path for folder in folders])
        self._colour_run_list([folder.path for folder in folders])
        if not self.state.runs:
            self.message.show_text("This project has no runs yet: train a model first (step "
                                   "Train).", "info")
        elif problems:
            self.message.show_text("Left out, cannot be read: " + " ".join(problems), "warning")
        elif len(folders) < 2:
            self.message.show_text("Tick at least two runs to compare them.", "info")
        elif self.comparison.data_warning:
            self.message.show_text(self.comparison.data_warning, "warning")
        else:
            self.message.show_text("")
        self.show_comparison(self.comparison)
        self.compared.emit()

    def show_comparison(self, comparison: RunComparison | None) -> None:
        """Fill the table and the curves (empty for None)."""
        self._fill_table(comparison)
        self._draw_curves(comparison)

    def _fill_table(self, comparison: RunComparison | None) -> None:
        self.table.clear()
        self.table.clearSpans()
        if comparison is None:
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            return
        self.table.setColumnCount(len(comparison.names))
        # One part of the name per line: network, data folder, time, score.
        self.table.setHorizontalHeaderLabels([name.replace(" · ", "\n")
                                              for name in comparison.names])
        for column, path in enumerate(comparison.paths):
            header = self.table.horizontalHeaderItem(column)
            header.setToolTip(str(path))
            header.setForeground(QColor(RUN_COLOURS[column % len(RUN_COLOURS)]))
        rows: list[tuple[str, str, list, set[int]]] = []  # (kind, key, values, best columns)
        if len(comparison.names) > 1:
            rows.append(("section", "Settings that differ", [], set()))
            if not comparison.differing:
                rows.append(("note", "none: the same settings (other images or chance)", [],
                             set()))
            rows += [("setting", key, values, set())
                     for key, values in comparison.differing.items()]
        rows.append(("section", "Scores", [], set()))
        rows += [("metric", key, values, best_columns(comparison, key) if key in SCORES
                  else set()) for key, values in comparison.metrics.items()]
        self.table.setRowCount(len(rows))
        bold = QFont()
        bold.setBold(True)
        for row, (kind, key, values, best) in enumerate(rows):
            if kind in ("section", "note"):
                label = QTableWidgetItem(key)
                if kind == "section":
                    label.setFont(bold)
                self.table.setVerticalHeaderItem(row, label)
                self.table.setSpan(row, 0, 1, len(comparison.names))
                filler = QTableWidgetItem("")
                filler.setBackground(QBrush(QColor("#f3f4f6")))
                self.table.setItem(row, 0, filler)
                continue
            name = setting_label(key) if kind == "setting" else METRIC_NAMES.get(key, key)
            header = QTableWidgetItem(name)
            header.setToolTip(key)
            self.table.setVerticalHeaderItem(row, header)
            for column, value in enumerate(values):
                cell = QTableWidgetItem(value_text(value, key))
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setToolTip(str(value))
                if column in best:
                    cell.setBackground(BEST_BRUSH)
                    cell.setFont(bold)
                    cell.setToolTip(f"{value} (best of these runs)")
                self.table.setItem(row, column, cell)

    def _draw_curves(self, comparison: RunComparison | None) -> None:
        # Redrawn only when the ticks change; each run gets a curve in its column's colour.
        for plot in (self.accuracy_plot, self.loss_plot):
            plot.getPlotItem().clear()
        self._key_names = list(comparison.names) if comparison is not None else []
        # A run's entry stays on one line; the key wraps between runs.
        self.key.setText("" if comparison is None else "&nbsp;&nbsp; ".join(
            f"<span style='color:{RUN_COLOURS[i % len(RUN_COLOURS)]}'>━●━</span>&nbsp;"
            + html.escape(name).replace(" ", "&nbsp;") for i, name in enumerate(comparison.names)))
        if comparison is None:
            return
        longest = max((len(history) for history in comparison.histories), default=0)
        step = max(1, math.ceil(longest / 10))  # whole epochs, at most about ten labels
        for plot in (self.accuracy_plot, self.loss_plot):
            plot.getPlotItem().getAxis("bottom").setTickSpacing(major=step, minor=step)
        for index, (name, history) in enumerate(zip(comparison.names, comparison.histories,
                                                    strict=True)):
            colour = RUN_COLOURS[index % len(RUN_COLOURS)]
            epochs = [row["epoch"] for row in history]
            for plot, key in ((self.accuracy_plot, "val_accuracy"), (self.loss_plot, "val_loss")):
                values = [float("nan") if row.get(key) is None else float(row[key])
                          for row in history]
                plot.plot(epochs, values, name=name, connect="finite", pen=pg.mkPen(colour,
                          width=2), symbol="o", symbolSize=6, symbolBrush=colour, symbolPen=None)

    def shutdown(self) -> None:
        """Stop combining runs, if it is under way (window close)."""
        self.combine_bar.shutdown()

    def curve_count(self, plot: pg.PlotWidget) -> int:
        """How many runs have a curve with points in `plot`."""
        return sum(1 for item in plot.getPlotItem().listDataItems()
                   if item.getData()[0] is not None and len(item.getData()[0]))

    def legend_names(self) -> list[str]:
        """The runs the key below the curves names, in its order (the curves' colours)."""
        return list(self._key_names)



def _list_names(paths) -> list[str]:
    """Each run as the table names it (network, data, time, score; alike ones get their folder
    name), or its folder name and state while it has no model yet."""
    folders: dict[int, RunFolder] = {}
    for index, path in enumerate(paths):
        with contextlib.suppress(UserError):  # no model yet: before its first epoch, ...
            folders[index] = RunFolder.open(path)
    named = dict(zip(folders, readable_names(list(folders.values())), strict=True))
    return [named.get(i, f"{Path(p).name} ({run_state(p)})") for i, p in enumerate(paths)]
