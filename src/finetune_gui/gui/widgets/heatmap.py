"""Grad-CAM heatmaps in the window: a side panel showing one image, and the service behind it.

The service runs one small Grad-CAM at a time on a worker thread, keeps the run's model loaded
between them (loading takes seconds, one heatmap a fraction of one), remembers recent pictures so
switching back is instant, and when the user clicks faster than it can draw, skips to the image
clicked last. Several panels can share one service; each shows only what it asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.widgets.error_dialog import describe_failure
from finetune_gui.gui.widgets.thumbnails import array_to_qimage, placeholder_pixmap
from finetune_gui.gui.worker import JobRunner, load_tensorflow
from finetune_gui.jobs import insight as insight_jobs

PANEL_SIDE = 240  # the picture's longest side on screen
TEXT_WIDTH = 220  # the column beside the picture
CACHE_SIZE = 24
HOT = "#dc0000"
COLD = "#00008c"


@dataclass(frozen=True)
class HeatmapKey:
    """What one heatmap shows: an image of a run, explained for a class (None: its prediction)."""

    run_path: Path
    path: Path
    class_name: str | None


def explain_job(run, path: Path, class_name: str | None, model=None, *, progress, cancel):
    """A worker-thread job: import TensorFlow (once, safely) and explain one image."""
    load_tensorflow()
    return insight_jobs.explain(run, path, class_name, model)


class HeatmapService(QObject):
    """Makes heatmaps for the panels that ask, one at a time, newest wish first."""

    explained = Signal(object, object)  # HeatmapKey, insight_jobs.HeatmapPicture
    failed = Signal(object, str)  # HeatmapKey, a plain message

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(name, self)
        self.runner.succeeded.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._next)
        self._run = None  # core.run.folder.RunFolder
        self._model = None
        self._model_run: Path | None = None
        self._wanted: dict[int, HeatmapKey] = {}  # panel id -> what it waits for
        self._pending: list[HeatmapKey] = []
        self._running: HeatmapKey | None = None
        self._cache: OrderedDict[HeatmapKey, object] = OrderedDict()
        self._paused = False

    def set_run(self, run) -> None:
        """The run (`RunFolder`, or None) whose model explains images from now on."""
        self._run = run
        path = run.path if run is not None else None
        if path != self._model_run:
            self._model = None
            self._model_run = None
            self._cache.clear()
            self._pending.clear()

    def adopt_model(self, run_path: Path, model) -> None:
        """Reuse a model another job already loaded for the same run."""
        if self._run is not None and self._run.path == run_path and model is not None:
            self._model, self._model_run = model, run_path

    @property
    def model(self):
        return self._model

    def request(self, owner: QObject, path: Path | str, class_name: str | None) -> HeatmapKey | None:
        """Ask for a heatmap; `explained` or `failed` answers with the returned key."""
        if self._run is None:
            return None
        key = HeatmapKey(self._run.path, Path(path), class_name)
        self._wanted[id(owner)] = key
        if key in self._cache:
            self._cache.move_to_end(key)
            self.explained.emit(key, self._cache[key])
            return key
        if key != self._running and key not in self._pending:
            self._pending.append(key)
        self._next()
        return key

    def forget(self, owner: QObject) -> None:
        """`owner` no longer waits for anything (it was closed or cleared)."""
        self._wanted.pop(id(owner), None)

    def pause(self, paused: bool) -> None:
        """Hold new heatmaps back (while another job uses the same model), then go on."""
        self._paused = paused
        self._next()

    @property
    def is_busy(self) -> bool:
        return self.runner.is_running

    def _next(self) -> None:
        if self.runner.is_running or self._run is None or self._paused:
            return
        wanted = set(self._wanted.values())
        self._pending = [k for k in self._pending if k in wanted and k not in self._cache]
        if not self._pending:
            return
        key = self._pending.pop()  # the newest wish: the user has moved on from older ones
        self._running = key
        model = self._model if self._model_run == key.run_path else None
        self.runner.start(explain_job, self._run, key.path, key.class_name, model)

    def _on_done(self, outcome) -> None:
        model, picture = outcome
        key, self._running = self._running, None
        if key is not None and self._run is not None and key.run_path == self._run.path:
            self._model, self._model_run = model, key.run_path
            self._cache[key] = picture
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            self.explained.emit(key, picture)
        self._next()

    def _on_failed(self, exc: BaseException, trace: str) -> None:
        key, self._running = self._running, None
        message, _, _ = describe_failure(exc, trace, "making the heatmap")
        if key is not None:
            self.failed.emit(key, message)
        self._next()

    def shutdown(self) -> None:
        self._pending.clear()
        self.runner.shutdown()


def _pixmap(pixels, side: int) -> QPixmap:
    pixmap = QPixmap.fromImage(array_to_qimage(pixels))
    return pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)


class HeatmapPanel(QWidget):
    """One image, large, with the heatmap of the class chosen below it and what it means."""

    shown = Signal()  # a heatmap (or a plain message instead) is on screen

    def __init__(self, service: HeatmapService, intro: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self._key: HeatmapKey | None = None
        self._picture = None
        self._path: Path | None = None
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        self.setFixedWidth(PANEL_SIDE + TEXT_WIDTH + 20)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 0, 0, 0)
        layout.setSpacing(4)
        self.intro = QLabel(intro)
        self.intro.setWordWrap(True)
        self.intro.setStyleSheet("color:#4b5563;")
        layout.addWidget(self.intro)
        row = QHBoxLayout()
        row.setSpacing(10)
        self.picture = QLabel()
        self.picture.setFixedSize(PANEL_SIDE, PANEL_SIDE)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("background:#f3f4f6; border-radius:4px;")
        row.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignTop)
        text = QVBoxLayout()
        text.setSpacing(6)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setFixedWidth(TEXT_WIDTH)
        text.addWidget(self.title)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        text.addWidget(self.caption)
        self._heading = QLabel("Heatmap for:")
        text.addWidget(self._heading)
        self.class_choice = QComboBox()
        self.class_choice.setToolTip("Which answer to explain: the heatmap shows where the "
                                     "model saw that class.")
        self.class_choice.currentIndexChanged.connect(self._ask)
        text.addWidget(self.class_choice)
        self.show_heat = QCheckBox("Show the heatmap")
        self.show_heat.setChecked(True)
        self.show_heat.setToolTip("Untick to see the image as it is.")
        self.show_heat.toggled.connect(self._draw)
        text.addWidget(self.show_heat)
        self.meaning = QLabel()
        self.meaning.setWordWrap(True)
        self.meaning.setStyleSheet("color:#4b5563;")
        text.addWidget(self.meaning)
        text.addStretch(1)
        row.addLayout(text)
        layout.addLayout(row)
        layout.addStretch(1)
        service.explained.connect(self._on_explained)
        service.failed.connect(self._on_failed)
        self.clear()

    # -- what to show -------------------------------------------------------------------------
    def show_image(
        self,
        path: Path | str,
        caption: str,
        choices: list[tuple[str, str | None]],
    ) -> None:
        """Show `path`: `caption` says what it is; `choices` are (text, class name) pairs for
        the heatmap, the first shown first (None: the class the model predicts)."""
        self._path = Path(path)
        self._picture = None
        self.title.setText(f"<b>{self._path.name}</b><br><span style='color:#6b7280'>"
                           f"{self._path}</span>")
        self.title.setToolTip(str(self._path))
        self.caption.setText(caption)
        self.class_choice.blockSignals(True)
        self.class_choice.clear()
        for text, name in choices:
            self.class_choice.addItem(text, name)
        self.class_choice.blockSignals(False)
        self.class_choice.setEnabled(len(choices) > 1)
        for widget in (self.class_choice, self.show_heat):
            widget.setVisible(True)
        self._heading.setVisible(True)
        self._ask()

    def clear(self, text: str = "") -> None:
        """Show nothing (with `text` in place of the picture)."""
        self._path = self._key = self._picture = None
        self.service.forget(self)
        self.title.setText("")
        self.caption.setText("")
        self.meaning.setText("")
        self.class_choice.clear()
        for widget in (self.class_choice, self.show_heat):
            widget.setVisible(False)
        self._heading.setVisible(False)
        self.picture.setPixmap(placeholder_pixmap(PANEL_SIDE, text or "no image chosen"))

    @property
    def current_class(self) -> str | None:
        return self.class_choice.currentData()

    @property
    def key(self) -> HeatmapKey | None:
        return self._key

    def _ask(self) -> None:
        if self._path is None:
            return
        self._picture = None
        first = self.service.model is None
        self.picture.setPixmap(placeholder_pixmap(PANEL_SIDE, "working…"))
        self.meaning.setText("Loading the model and making the heatmap…" if first
                             else "Making the heatmap…")
        self._key = self.service.request(self, self._path, self.current_class)

    # -- answers from the service -------------------------------------------------------------
    def _on_explained(self, key: HeatmapKey, picture) -> None:
        if key != self._key:
            return
        self._picture = picture
        self.meaning.setText(
            f"<span style='color:{HOT}'><b>Red</b></span>: the parts of the image that made the "
            f"model think <b>{picture.class_name}</b> ({picture.probability:.0%}). "
            f"<span style='color:{COLD}'><b>Blue</b></span> or no colour: parts that did not.")
        self._draw()
        self.shown.emit()

    def _on_failed(self, key: HeatmapKey, message: str) -> None:
        if key != self._key:
            return
        self.picture.setPixmap(placeholder_pixmap(PANEL_SIDE, "no heatmap"))
        self.meaning.setText(message)
        self.shown.emit()

    def _draw(self) -> None:
        if self._picture is None:
            return
        pixels = self._picture.overlay if self.show_heat.isChecked() else self._picture.image
        self.picture.setPixmap(_pixmap(pixels, PANEL_SIDE))
