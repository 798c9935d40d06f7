"""Step 3: random changes to the training images, with a live preview of what they do.

The preview is computed on a worker thread; while one is being computed, further changes only
remember the newest settings, which are previewed next (the window never waits).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.data.augment import (
    CHANGES,
    FLIP_HELP,
    FLIP_MODES,
    FLIP_TEXTS,
    PRESETS,
    AugmentSettings,
)
from finetune_gui.core.data.images import ImageReadError, load_rgb
from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.gui.start_folder import IMAGES, start_folder
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import Banner, help_label, page_header
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.thumbnails import array_to_qimage
from finetune_gui.gui.worker import JobRunner, load_tensorflow

PREVIEW_COUNT = 8
PREVIEW_SIZE = 150
def preview_job(
    path: Path,
    settings: AugmentSettings,
    seed: int,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> tuple[QImage, list[QImage]]:
    """A job: the chosen image and `PREVIEW_COUNT` random augmentations of it, as QImages."""
    load_tensorflow()
    from finetune_gui.core.data.augment import preview_augmentations

    original = load_rgb(path, PREVIEW_SIZE)
    drawn = preview_augmentations(original, settings, count=PREVIEW_COUNT, seed=seed)
    return array_to_qimage(original), [array_to_qimage(image) for image in drawn]


def augmentation_use(settings: TrainingSettings) -> str:
    """How the run will use these changes, given the speed mode and copies per image."""
    if settings.augment.is_off:
        return ""
    if settings.cache_mode != "fast":
        return "Exact mode: every epoch trains on a new random version of each image."
    extra = settings.views - 1
    if not settings.augmentation_used:
        return ("Speed mode trains on each image as it is, so these changes are not used. To "
                "use them, set \"Augmented copies per image\" to 2 or more on the Model page "
                "(each copy costs one more pass over the images), or choose Exact mode there.")
    return (f"Speed mode trains on each image as it is and on {extra} randomly changed "
            f"cop{'y' if extra == 1 else 'ies'} of it, made once before training.")


class AugmentPage(QWidget):
    """A control per augmentation, presets, an image picker and the preview grid."""

    preview_shown = Signal()  # a preview for the current settings is on screen

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.runner = JobRunner("augment-preview", self)
        self.seed = 0
        self._shown_request: tuple | None = None
        self._running_request: tuple | None = None
        self._build()
        self.runner.succeeded.connect(self._on_preview)
        self.runner.failed.connect(self._on_preview_failed)
        self.runner.cancelled.connect(self.refresh_preview)
        state.settings_changed.connect(self._show_settings)
        state.scan_changed.connect(self._fill_image_choices)
        self._fill_image_choices()
        self._show_settings()

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(page_header(
            "Augmentation",
            "Random changes to the training images, so the model learns what matters and not "
            "the exact picture. Only changes that could happen in real photos of your classes "
            "help: do not flip text upside down. The preview shows one image under several "
            "random draws.",
        ))
        self.usage_note = Banner("info")
        layout.addWidget(self.usage_note)
        row = QHBoxLayout()
        controls = QGroupBox("Changes")
        form = QFormLayout(controls)
        self.preset = QComboBox()
        for name in PRESETS:
            self.preset.addItem(name.capitalize(), name)
        self.preset.addItem("Custom", None)
        self.preset.setToolTip("A ready-made set of changes. Light suits most photos.")
        self.preset.currentIndexChanged.connect(self._on_preset)
        form.addRow(help_label("Preset:", self.preset.toolTip()), self.preset)
        self.flip = QComboBox()
        for text, value in zip(FLIP_TEXTS, FLIP_MODES, strict=True):
            self.flip.addItem(text, value)
        self.flip.setToolTip(FLIP_HELP)
        self.flip.currentIndexChanged.connect(lambda: self._commit("flip"))
        form.addRow(help_label("Flip:", FLIP_HELP), self.flip)
        # A slider per random change, its range, unit and tip as core/data/augment.py declares.
        self.sliders: dict[str, tuple[QSlider, QLabel, float, str]] = {}
        for name, change in CHANGES.items():
            text, tip, scale, unit = change.label, change.help, change.scale, change.unit
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, round(change.high * scale))
            slider.setToolTip(tip)
            slider.setObjectName(name)
            value_label = QLabel()
            value_label.setMinimumWidth(44)
            slider.valueChanged.connect(lambda _value, field=name: self._commit(field))
            line = QHBoxLayout()
            line.addWidget(slider, 1)
            line.addWidget(value_label)
            form.addRow(help_label(f"{text}:", tip), line)
            self.sliders[name] = (slider, value_label, scale, unit)
        row.addWidget(controls, 2)

        preview_box = QGroupBox("Preview")
        preview = QVBoxLayout(preview_box)
        picker = QHBoxLayout()
        self.image_choice = QComboBox()
        self.image_choice.setToolTip("The image to preview: one example of each class.")
        self.image_choice.currentIndexChanged.connect(self.refresh_preview)
        other = QPushButton("Other image…")
        other.clicked.connect(self.choose_image)
        self.redraw_button = QPushButton("New random draws")
        self.redraw_button.setToolTip("Show other random versions with the same settings.")
        self.redraw_button.clicked.connect(self._new_draws)
        picker.addWidget(self.image_choice, 1)
        picker.addWidget(other)
        picker.addWidget(self.redraw_button)
        preview.addLayout(picker)
        self.preview_status = QLabel()
        self.preview_status.setStyleSheet("color:#4b5563;")
        preview.addWidget(self.preview_status)
        grid = QGridLayout()
        grid.setSpacing(6)
        self.original_label = self._tile("the original image")
        self.original_label.setStyleSheet(
            "background:#eef1f4; border:2px solid #1f6feb; border-radius:4px;")
        grid.addWidget(self.original_label, 0, 0)
        self.preview_labels = []
        for index in range(PREVIEW_COUNT):
            tile = self._tile(f"random draw {index + 1}")
            self.preview_labels.append(tile)
            grid.addWidget(tile, (index + 1) // 3, (index + 1) % 3)
        preview.addLayout(grid)
        preview.addStretch(1)
        row.addWidget(preview_box, 3)
        layout.addLayout(row, 1)
        self.error_banner = Banner("error")
        layout.addWidget(self.error_banner)

    @staticmethod
    def _tile(tip: str) -> QLabel:
        label = QLabel()
        label.setFixedSize(PREVIEW_SIZE + 4, PREVIEW_SIZE + 4)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setStyleSheet("background:#eef1f4; border-radius:4px;")
        label.setToolTip(tip)
        return label

    # -- settings <-> controls ----------------------------------------------------------------
    def control_value(self, field: str) -> str | float:
        """The setting value one control shows (sliders hold whole degrees or percent)."""
        if field == "flip":
            return self.flip.currentData()
        slider, _, scale, _ = self.sliders[field]
        return round(slider.value() / scale, 4)

    def _commit(self, field: str) -> None:
        # Only the moved control changes: the others keep their exact values (a preset's 0.03
        # turn would otherwise become the slider's rounded 11/360).
        augment = replace(self.state.settings.augment, **{field: self.control_value(field)})
        error = self.state.update_settings(augment=augment)
        self.error_banner.show_text(error or "", "error")
        self._show_values()

    def _on_preset(self) -> None:
        name = self.preset.currentData()
        if name is not None:
            self.state.update_settings(augment=PRESETS[name])

    def _show_settings(self) -> None:
        augment = self.state.settings.augment
        widgets = [self.preset, self.flip] + [s for s, *_ in self.sliders.values()]
        for widget in widgets:
            widget.blockSignals(True)
        self.flip.setCurrentIndex(max(0, self.flip.findData(augment.flip)))
        for name, (slider, _, scale, _) in self.sliders.items():
            slider.setValue(round(getattr(augment, name) * scale))
        preset = next((key for key, value in PRESETS.items() if value == augment), None)
        self.preset.setCurrentIndex(self.preset.findData(preset) if preset else
                                    self.preset.count() - 1)
        for widget in widgets:
            widget.blockSignals(False)
        self._show_values()
        self.usage_note.show_text(augmentation_use(self.state.settings), "info")
        self.refresh_preview()

    def _show_values(self) -> None:
        for slider, label, _, unit in self.sliders.values():
            label.setText(f"{slider.value()}{unit}" if slider.value() else "off")

    # -- the preview --------------------------------------------------------------------------
    def _fill_image_choices(self) -> None:
        scan = self.state.scan
        self.image_choice.blockSignals(True)
        self.image_choice.clear()
        for summary in scan.summaries if scan else []:
            for path in summary.examples[:2]:
                self.image_choice.addItem(f"{summary.name}: {path.name}", str(path))
        self.image_choice.blockSignals(False)
        self.refresh_preview()

    def choose_image(self) -> None:
        start = start_folder(IMAGES, self.state)
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose an image to preview", start,
            "Images (*.jpg *.jpeg *.png *.bmp *.gif *.webp *.tif *.tiff)")
        if path:
            self.image_choice.addItem(Path(path).name, path)
            self.image_choice.setCurrentIndex(self.image_choice.count() - 1)

    def _new_draws(self) -> None:
        self.seed += 1
        self.refresh_preview()

    def _request(self) -> tuple | None:
        path = self.image_choice.currentData()
        if not path:
            return None
        return (Path(path), self.state.settings.augment, self.seed)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh_preview()

    def refresh_preview(self) -> None:
        """Preview the current settings, now or as soon as the running preview is done.

        Only while the page is shown: there is nothing to look at otherwise.
        """
        if not self.isVisible():
            return
        request = self._request()
        if request is None:
            self.preview_status.setText("Choose a folder of images first (step Data).")
            return
        if request == self._shown_request or self.runner.is_running:
            return  # `_on_preview` checks for a newer request
        if self._shown_request is None:
            self.preview_status.setText("Getting ready (loading TensorFlow the first time)…")
        else:
            self.preview_status.setText("Updating…")
        self._running_request = request
        self.runner.start(preview_job, *request)

    def _on_preview(self, result: tuple[QImage, list[QImage]]) -> None:
        original, drawn = result
        self._shown_request = self._running_request
        self.original_label.setPixmap(QPixmap.fromImage(original))
        for label, image in zip(self.preview_labels, drawn, strict=False):
            label.setPixmap(QPixmap.fromImage(image))
        if self._request() != self._shown_request:
            self.refresh_preview()
            return
        augment = self.state.settings.augment
        self.preview_status.setText(
            "Augmentation is off: the model sees the images as they are." if augment.is_off
            else "Framed in blue: the original. The others: what training may see instead.")
        self.preview_shown.emit()

    def _on_preview_failed(self, exc: BaseException, trace: str) -> None:
        self._shown_request = self._running_request
        if isinstance(exc, ImageReadError):
            self.preview_status.setText(f"This image cannot be shown: {exc.reason}.")
            return
        self.preview_status.setText("The preview could not be made.")
        show_error(self, exc, trace, "making the augmentation preview")

    def shutdown(self) -> None:
        self.runner.shutdown()

