"""Similar images: pick a picture, see the 8 images of the run's dataset nearest to it (by the
run's pooled features) with their labels and distances. Used on the Results and Data pages."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.data.images import IMAGE_EXTENSIONS
from finetune_gui.gui.start_folder import IMAGES, start_folder
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.thumbnails import ImageGallery, load_thumbnail
from finetune_gui.gui.worker import JobRunner, load_tensorflow
from finetune_gui.jobs import put_to_work

TOP = 8
THUMB = 96


def similar_job(run, image: Path, model=None, *, progress=None, cancel=None):
    """A worker-thread job: the neighbours, their thumbnails, and the model for next time."""
    load_tensorflow()
    model, found = put_to_work.similar(run, image, model, TOP)
    thumbnails = {str(s.path): load_thumbnail(s.path, THUMB) for s in found}
    return model, found, thumbnails


PROMPT = ("Pick an image to see the 8 most similar images of the dataset, as the trained model "
          "sees them (a distance near 0: the same).")
NO_RUN = "Open a run with a saved model to look for similar images."


class SimilarImagesPanel(QWidget):
    """A "Pick an image…" button, the picked image's name, and its nearest dataset images."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.runner = JobRunner("similar", self)
        self.runner.succeeded.connect(self._on_found)
        self.runner.failed.connect(self._on_failed)
        self.found: list = []
        self.last_dialog = None
        self._model = None
        self._model_run: Path | None = None
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.pick_button = QPushButton("Pick an image…")
        self.pick_button.clicked.connect(self._choose)
        self.status = QLabel(PROMPT)
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color:#4b5563;")
        row.addWidget(self.pick_button)
        row.addWidget(self.status, 1)
        layout.addLayout(row)
        self.gallery = ImageGallery(THUMB)
        layout.addWidget(self.gallery, 1)
        state.current_run_changed.connect(self._on_run_changed)
        self._on_run_changed()

    def _on_run_changed(self) -> None:
        run = self.state.current_run
        self.pick_button.setEnabled(run is not None and not self.runner.is_running)
        if run is None or run.path != self._model_run:
            # Nothing of another run stays: its images, its count, its model.
            self._model, self._model_run = None, None
            self.gallery.clear()
            self.found = []
            self.status.setText(PROMPT if run is not None else NO_RUN)

    def _choose(self) -> None:
        patterns = " ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS))
        path, _ = QFileDialog.getOpenFileName(self, "Pick an image",
                                              start_folder(IMAGES, self.state),
                                              f"Images ({patterns})")
        if path:
            self.show_similar(Path(path))

    def show_similar(self, image: Path) -> None:
        """Find and show the images nearest to `image` (in the background)."""
        run = self.state.current_run
        if run is None or self.runner.is_running:
            return
        self.status.setText(f"Looking for images like {image.name}…")
        self.pick_button.setEnabled(False)
        self.runner.start(similar_job, run.folder, image, self._model)
        self._model_run = run.path

    def _on_found(self, outcome) -> None:
        run = self.state.current_run
        self.pick_button.setEnabled(run is not None)
        if run is None or run.path != self._model_run:
            return  # found for a run no longer shown
        self._model, self.found, thumbnails = outcome
        self.gallery.clear()
        for s in self.found:
            self.gallery.add_image(str(s.path), f"{s.label}\n{s.distance:.3f}",
                                   f"{s.path}\n{s.part} image, labelled {s.label}, "
                                   f"distance {s.distance:.4f}")
        self.gallery.set_images(thumbnails)
        self.status.setText(f"{len(self.found)} most similar images: label, then distance.")

    def _on_failed(self, exc: BaseException, trace: str) -> None:
        self.pick_button.setEnabled(True)
        self.status.setText("")
        self.last_dialog = show_error(self, exc, trace, "finding similar images")

    def shutdown(self) -> None:
        self.runner.shutdown()
