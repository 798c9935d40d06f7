"""Results tab "Map": every image of the run as a dot, placed by how the model sees it.

The map (`core.insight.embedding.embedding_map`) reads every image through the model, so it is
made in a child process (`insight_jobs.embedding`) with progress and cancel. Clicking a dot shows
that image with its heatmap in the side panel. The crosses are the run's suspect labels, the very
list of the Suspect labels tab (`core.insight.suspects.review_suspects`, the same images left out).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.words import counted
from finetune_gui.gui.pages.results_suspects import plain_failure
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import Banner
from finetune_gui.gui.widgets.heatmap import HeatmapPanel, HeatmapService
from finetune_gui.gui.widgets.job_row import JobStatusRow
from finetune_gui.gui.worker import JobRunner
from finetune_gui.jobs import insight as insight_jobs

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
DOT, CROSS, RING = 9, 13, 22
DARK = "#111827"
CHOSEN = "#f59e0b"


def class_colour(index: int, count: int) -> str:
    """A distinct colour per class (Tableau's ten, then evenly spread hues)."""
    if count <= len(PALETTE):
        return PALETTE[index]
    return pg.intColor(index, hues=count).name()


class EmbeddingMapView(QWidget):
    """Draw the map on request; a click on a dot shows that image."""

    finished = Signal(str)  # "ok", "cancelled" or "failed"
    point_chosen = Signal(int)

    def __init__(self, state: ProjectState, heatmaps: HeatmapService,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.map = None  # core.insight.embedding.EmbeddingMap
        self.class_items: dict[str, pg.ScatterPlotItem] = {}
        self._run_path = None
        self._excluded: frozenset = frozenset()
        self.runner = JobRunner("embedding-map", self)
        self.runner.succeeded.connect(self._on_map)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.failed.connect(self._on_failed)
        self._build(heatmaps)
        self.show_run()

    def _build(self, heatmaps: HeatmapService) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Each dot is one image, placed by how the model sees it: images it finds alike sit "
            "close together. A cross is a suspect label (the list of the Suspect labels tab): "
            "an image the model, judging it unseen, gives to another class than its label; a "
            "ring, one far from the rest of its class. Click a dot to see the image.")
        intro.setWordWrap(True)
        intro.setStyleSheet("color:#4b5563;")
        layout.addWidget(intro)
        row = QHBoxLayout()
        self.draw_button = QPushButton("Draw the map")
        self.draw_button.setObjectName("primaryButton")
        self.draw_button.setToolTip("Reads every image of this run with its model.")
        self.draw_button.clicked.connect(self.draw)
        self.method = QComboBox()
        self.method.addItem("Quick layout (PCA)", "pca")
        self.method.addItem("Separate the groups (t-SNE, slower)", "tsne")
        self.method.setToolTip("PCA keeps real distances; t-SNE pulls groups apart more "
                               "clearly, but distances between groups then mean little.")
        self.job_row = JobStatusRow(self.runner, "Placing the images…")
        self.cancel_button = self.job_row.cancel_button
        self.progress = self.job_row.progress
        self.status = self.job_row.status
        row.addWidget(self.draw_button)
        row.addWidget(self.method)
        row.addWidget(self.job_row, 1)
        layout.addLayout(row)
        self.problem = Banner("error")
        layout.addWidget(self.problem)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.plot = pg.PlotWidget(background="w")
        item = self.plot.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.setMenuEnabled(False)
        item.hideButtons()
        self.rings = pg.ScatterPlotItem(symbol="o", size=RING, pen=pg.mkPen(DARK, width=2),
                                        brush=None)
        self.chosen = pg.ScatterPlotItem(symbol="o", size=RING + 6,
                                         pen=pg.mkPen(CHOSEN, width=3), brush=None)
        self.chosen.setZValue(10)
        for extra in (self.rings, self.chosen):
            self.plot.addItem(extra)
            extra.sigClicked.connect(self._on_clicked)
        # The legend sits above the plot, where it never hides a dot.
        plot_box = QWidget()
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        plot_layout.addWidget(self.legend)
        plot_layout.addWidget(self.plot, 1)
        splitter.addWidget(plot_box)
        self.panel = HeatmapPanel(heatmaps, "The image under the dot you clicked.")
        splitter.addWidget(self.panel)
        splitter.setStretchFactor(0, 1)
        splitter.setCollapsible(1, False)
        layout.addWidget(splitter, 1)

    # -- the run ------------------------------------------------------------------------------
    def show_run(self) -> None:
        """Forget the map of another run; offer to draw this one's."""
        if self.runner.is_running:
            self.runner.cancel()
        self._clear_plot()
        self.problem.show_text("")
        self.panel.clear()
        run = self.state.current_run
        self.draw_button.setEnabled(run is not None and not self.runner.is_running)
        self.status.setText("" if run is None else "Press the button to draw this run's map.")

    def _clear_plot(self) -> None:
        self.map = None
        for scatter in self.class_items.values():
            self.plot.removeItem(scatter)
        self.class_items.clear()
        self.legend.setText("")
        self.rings.clear()
        self.chosen.clear()

    # -- making the map -----------------------------------------------------------------------
    def draw(self) -> None:
        """Start making the map of the current run (in a child process)."""
        run = self.state.current_run
        if run is None or self.runner.is_running:
            return
        self._clear_plot()
        self.panel.clear()
        self.problem.show_text("")
        self._set_busy(True)
        self.status.setText("Starting…")
        self._run_path = run.path
        self._excluded = frozenset(self.state.excluded)
        self.runner.start(insight_jobs.embedding, run.path, self.method.currentData(),
                          self._excluded, separate_process=True)

    def cancel(self) -> None:
        self.job_row.cancel()

    def _set_busy(self, busy: bool) -> None:
        self.draw_button.setEnabled(not busy and self.state.current_run is not None)
        self.method.setEnabled(not busy)
        self.job_row.set_busy(busy)

    def _on_map(self, found) -> None:
        self._set_busy(False)
        run = self.state.current_run
        if run is None or run.path != self._run_path:
            self.show_run()
            self.finished.emit("cancelled")
            return
        self._show_map(found)
        # Its crosses are the run's suspect labels: the Suspect labels view need not look again.
        self.state.remember_suspects(self._excluded, insight_jobs.SuspectSearch(
            run.path, found.suspects, found.saw_labels, len(found.paths)))
        self.finished.emit("ok")

    def _show_map(self, found) -> None:
        self._clear_plot()
        self.map = found
        labels = found.classes_of_points
        wrong = found.suspected
        for index, name in enumerate(found.classes):
            members = [i for i, label in enumerate(labels) if label == name]
            colour = class_colour(index, len(found.classes))
            scatter = pg.ScatterPlotItem(
                symbol="o", size=DOT, pen=pg.mkPen("w", width=0.8), brush=pg.mkBrush(colour),
                name=name, hoverable=True, tip=self._tip)
            scatter.setData(
                pos=found.points[members] if members else np.zeros((0, 2)),
                data=members,
                symbol=["x" if wrong[i] else "o" for i in members],
                size=[CROSS if wrong[i] else DOT for i in members],
                pen=[pg.mkPen(DARK, width=1) if wrong[i] else pg.mkPen("w", width=0.8)
                     for i in members])
            scatter.sigClicked.connect(self._on_clicked)
            self.plot.addItem(scatter)
            self.class_items[name] = scatter
        far = np.flatnonzero(found.outliers)
        self.rings.setData(pos=found.points[far] if len(far) else np.zeros((0, 2)),
                           data=list(far))
        entries = [f"<span style='color:{class_colour(i, len(found.classes))}; "
                   f"font-size:14pt'>●</span>&nbsp;{name}" for i, name in enumerate(found.classes)]
        entries.append("<b>✕</b>&nbsp;suspect label")
        entries.append("<span style='font-size:13pt'>◯</span>&nbsp;far from its class")
        self.legend.setText("&nbsp;&nbsp;&nbsp; ".join(entries))
        self.plot.getPlotItem().autoRange(padding=0.08)
        self.status.setText(
            f"{counted(len(found.paths), 'image')}. {counted(int(wrong.sum()), 'suspect label')} "
            f"(crosses, the list of the Suspect labels tab); {len(far)} far from "
            f"{'its' if len(far) == 1 else 'their'} class (rings).")

    def _tip(self, x: float, y: float, data) -> str:
        if self.map is None or data is None:
            return ""
        return self._describe(int(data))

    def _describe(self, index: int) -> str:
        found = self.map
        given, predicted = found.given[index], found.predicted[index]
        path = found.paths[index]
        suspect = found.suspect_of(index)
        if suspect is not None:
            return (f"{path.name}: labelled {given}, {suspect.sureness:.0%} sure it is wrong; "
                    f"looks like {suspect.suggested_label}")
        if given is None:
            return f"{path.name}: the model says {predicted}"
        if given == predicted:
            return f"{path.name}: labelled {given}; the model agrees"
        return f"{path.name}: labelled {given}; the model says {predicted}"

    def _on_cancelled(self) -> None:
        self._set_busy(False)
        self.status.setText("Stopped before the map was drawn.")
        self.finished.emit("cancelled")

    def _on_failed(self, exc: BaseException, trace: str) -> None:
        self._set_busy(False)
        self.status.setText("")
        self.problem.show_text(plain_failure(exc, trace, "drawing the map"), "error")
        self.finished.emit("failed")

    # -- choosing a dot -----------------------------------------------------------------------
    def _on_clicked(self, item, points, event=None) -> None:
        if not len(points):
            return
        # Dots overlap where a class is dense; the user means the one nearest the pointer,
        # not whichever pyqtgraph happens to list first.
        chosen = points[0]
        if event is not None:
            where = np.array([event.pos().x(), event.pos().y()])
            chosen = min(points, key=lambda p: float(np.sum(
                (np.array([p.pos().x(), p.pos().y()]) - where) ** 2)))
        self.choose_point(int(chosen.data()))

    def choose_point(self, index: int) -> None:
        """Show image `index` of the map in the side panel, and ring its dot."""
        found = self.map
        if found is None:
            return
        self.chosen.setData(pos=found.points[[index]], data=[index])
        given, predicted = found.given[index], found.predicted[index]
        suspect = found.suspect_of(index)
        if suspect is not None:
            caption = (f"Labelled <b>{given}</b>, a suspect label ({suspect.sureness:.0%} sure "
                       f"it is wrong): it looks like <b>{suspect.suggested_label}</b>.")
            looks = suspect.suggested_label
            choices = [(f"what it looks like: {looks}", looks), (f"the label: {given}", given)]
        elif given is not None and given != predicted:
            caption = f"Labelled <b>{given}</b>; the model says <b>{predicted}</b>."
            choices = [(f"what it says: {predicted}", predicted), (f"the label: {given}", given)]
        else:
            caption = (f"Labelled <b>{given}</b>; the model agrees." if given is not None
                       else f"The model says <b>{predicted}</b>.")
            choices = [(f"what it says: {predicted}", predicted)]
        if found.outliers[index]:
            caption += " Far from the rest of its class: worth a look."
        self.panel.show_image(found.paths[index], caption, choices)
        self.point_chosen.emit(index)

    def shutdown(self) -> None:
        self.runner.shutdown()
