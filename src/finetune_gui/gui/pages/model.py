"""Step 2: which pretrained network, which weights, how deep to fine-tune, and the options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress
from finetune_gui.core.model.backbones import BACKBONES, get_backbone, weights_kind
from finetune_gui.core.model.build import from_scratch
from finetune_gui.core.settings import SETTINGS_INFO, TrainingSettings
from finetune_gui.core.training.auto import DEFAULT_BUDGET_MINUTES
from finetune_gui.gui.pages.model_options import TrainingOptions
from finetune_gui.gui.start_folder import WEIGHTS, start_folder
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import Banner, help_label, page_header, scrolling_page
from finetune_gui.gui.widgets.error_dialog import show_error
from finetune_gui.gui.widgets.network_picture import NetworkPicture, format_params
from finetune_gui.gui.worker import JobRunner, load_tensorflow

IMAGE_SIZES = (32, 48, 64, 96, 128, 160, 192, 224, 240, 260, 299, 300, 320, 384, 448, 512)
WEIGHTS_TIP = {
    "imagenet": "Start from a network trained on 1.2 million photos (ImageNet). Downloaded once, "
                "then kept on this computer. Best accuracy with few images.",
    "file": "Use a weights file you already have (for example on a computer without internet). "
            "It must come from the same network without its top.",
    "none": "Start from random weights. Needs many more images and epochs; useful offline or "
            "for images unlike photos.",
}


def describe_network(
    settings: TrainingSettings,
    num_classes: int,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
):
    """A job: the blocks of the chosen backbone (builds it without weights; about a second)."""
    load_tensorflow()
    from finetune_gui.core.model.build import describe_blocks

    return describe_blocks(settings, num_classes)


def with_unfreeze(description, unfreeze_blocks: int | None):
    """The same network with the top `unfreeze_blocks` blocks trainable (as `describe_blocks`
    marks them; None: every block, as when training from scratch), so moving the slider
    redraws at once without building the network again."""
    if unfreeze_blocks is None:
        first_trainable = 0
    else:
        n = max(0, min(unfreeze_blocks, description.max_unfreeze_blocks))
        first_trainable = len(description.blocks) - n
    blocks = [replace(b, trainable=i >= first_trainable) for i, b in
              enumerate(description.blocks)]
    trainable = sum(b.trainable_params for b in blocks if b.trainable) + description.head_params
    return replace(description, blocks=blocks, trainable_params=trainable)


class ModelPage(QWidget):
    """Backbone table, weights source, unfreeze slider with the network picture, options."""

    network_described = Signal()  # the picture shows the current backbone (tests, screenshots)

    def __init__(self, state: ProjectState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.runner = JobRunner("describe", self)
        self.description = None
        self._described_key: tuple | None = None
        self._wanted_key: tuple | None = None
        self._running_key: tuple | None = None
        self._build()
        self.runner.succeeded.connect(self._on_described)
        self.runner.failed.connect(self._on_describe_failed)
        self.runner.cancelled.connect(self._refresh_network)
        state.settings_changed.connect(self._show_settings)
        state.scan_changed.connect(self._refresh_network)
        self._show_settings()

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = scrolling_page(self)
        layout.addWidget(page_header(
            "The model",
            "Pick a pretrained network (a backbone), where its starting weights come from, and "
            "how much of it to fine-tune. The defaults are safe; hover over any setting for an "
            "explanation.",
        ))
        layout.addWidget(self._build_backbones())
        layout.addWidget(self._build_weights())
        layout.addWidget(self._build_unfreeze())
        layout.addWidget(self._build_auto())
        self.options = TrainingOptions(self.state, self._show_error)
        layout.addWidget(self.options)
        self.error_banner = Banner("error")
        layout.addWidget(self.error_banner)
        layout.addStretch(1)

    def _build_backbones(self) -> QGroupBox:
        box = QGroupBox("Backbone")
        layout = QVBoxLayout(box)
        self.backbone_table = QTableWidget(len(BACKBONES), 5)
        self.backbone_table.setHorizontalHeaderLabels(
            ["Network", "Family", "Size (parameters)", "Input size", "Speed and accuracy"])
        self.backbone_table.verticalHeader().setVisible(False)
        self.backbone_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.backbone_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.backbone_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.backbone_table.horizontalHeader()
        for column in range(4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        for row, spec in enumerate(BACKBONES.values()):
            cells = [spec.keras_name, spec.family, f"{spec.params_millions:.1f} M",
                     f"{spec.default_size} px", spec.speed]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, spec.name)
                self.backbone_table.setItem(row, column, item)
        self.backbone_table.setMinimumHeight(200)
        self.backbone_table.setMaximumHeight(240)
        self.backbone_table.itemSelectionChanged.connect(self._on_backbone_chosen)
        layout.addWidget(self.backbone_table)

        size_row = QHBoxLayout()
        size_tip = SETTINGS_INFO["image_size"].help
        self.image_size = QComboBox()
        self.image_size.setToolTip(size_tip)
        self.image_size.currentIndexChanged.connect(self._on_image_size_chosen)
        size_row.addWidget(help_label("Image size:", size_tip))
        size_row.addWidget(self.image_size)
        size_row.addStretch(1)
        layout.addLayout(size_row)
        return box

    def _build_weights(self) -> QGroupBox:
        box = QGroupBox("Starting weights")
        layout = QHBoxLayout(box)
        self.weights_group = QButtonGroup(self)
        self.weights_buttons: dict[str, QRadioButton] = {}
        for key, text in (("imagenet", "ImageNet (download once)"),
                          ("file", "A weights file on this computer"),
                          ("none", "None: train from scratch")):
            button = QRadioButton(text)
            button.setToolTip(WEIGHTS_TIP[key])
            self.weights_group.addButton(button)
            self.weights_buttons[key] = button
            layout.addWidget(button)
        self.weights_file_button = QPushButton("Choose file…")
        self.weights_file_button.setToolTip(WEIGHTS_TIP["file"])
        self.weights_file_button.clicked.connect(self.choose_weights_file)
        layout.addWidget(self.weights_file_button)
        self.weights_file_label = QLabel()
        self.weights_file_label.setStyleSheet("color:#4b5563;")
        layout.addWidget(self.weights_file_label, 1)
        self.weights_buttons["imagenet"].toggled.connect(
            lambda on: on and self._commit(weights="imagenet"))
        self.weights_buttons["none"].toggled.connect(
            lambda on: on and self._commit(weights="none"))
        self.weights_buttons["file"].clicked.connect(self._on_file_radio)
        return box

    def _build_unfreeze(self) -> QGroupBox:
        box = QGroupBox("How deep to fine-tune")
        layout = QVBoxLayout(box)
        tip = SETTINGS_INFO["unfreeze_blocks"].help
        row = QHBoxLayout()
        self.unfreeze_slider = QSlider(Qt.Orientation.Horizontal)
        self.unfreeze_slider.setToolTip(tip)
        self.unfreeze_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.unfreeze_slider.setPageStep(1)
        self.unfreeze_slider.valueChanged.connect(self._on_unfreeze_moved)
        self.unfreeze_label = QLabel()
        self.unfreeze_label.setMinimumWidth(260)
        row.addWidget(help_label("Blocks to fine-tune:", tip))
        row.addWidget(self.unfreeze_slider, 1)
        row.addWidget(self.unfreeze_label)
        layout.addLayout(row)
        self.network = NetworkPicture()
        layout.addWidget(self.network)
        self.trainable_label = QLabel()
        self.trainable_label.setObjectName("trainableParams")
        layout.addWidget(self.trainable_label)
        return box

    def _build_auto(self) -> QGroupBox:
        box = QGroupBox("Find good settings for me")
        layout = QHBoxLayout(box)
        tip = ("Before the run, try other depths to fine-tune, learning rates and head "
               "regularisation for up to this many minutes, score each on the validation images "
               "(never the test images) and train the best. The run saves the settings it chose, "
               "so it can be repeated; the Train page log shows a table of what was tried.")
        self.auto_check = QCheckBox("Try settings first, for up to")
        self.auto_check.setToolTip(tip)
        self.auto_budget = QDoubleSpinBox()
        self.auto_budget.setRange(1, 600)
        self.auto_budget.setDecimals(0)
        self.auto_budget.setSuffix(" min")
        self.auto_budget.setValue(DEFAULT_BUDGET_MINUTES)
        self.auto_budget.setToolTip(tip)
        layout.addWidget(self.auto_check)
        layout.addWidget(self.auto_budget)
        layout.addWidget(help_label("then train the best on validation", tip))
        layout.addStretch(1)
        self.auto_check.toggled.connect(self._on_auto_changed)
        self.auto_budget.valueChanged.connect(self._on_auto_changed)
        return box

    # -- user actions -------------------------------------------------------------------------
    def _commit(self, **changes) -> None:
        self._show_error(self.state.update_settings(**changes) or "")

    def _show_error(self, text: str) -> None:
        self.error_banner.show_text(text, "error")

    def _on_backbone_chosen(self) -> None:
        items = self.backbone_table.selectedItems()
        if not items:
            return
        name = items[0].data(Qt.ItemDataRole.UserRole)
        if name == self.state.settings.backbone:
            return
        spec = get_backbone(name)
        size = self.state.settings.image_size
        # Keep a chosen size only if the new network accepts it.
        self._commit(backbone=name, image_size=size if size and size >= spec.min_size else None)

    def select_backbone(self, name: str) -> None:
        """Select `name` in the table, as a click would."""
        for row in range(self.backbone_table.rowCount()):
            if self.backbone_table.item(row, 0).data(Qt.ItemDataRole.UserRole) == name:
                self.backbone_table.selectRow(row)
                return
        raise KeyError(name)

    def _on_image_size_chosen(self) -> None:
        value = self.image_size.currentData()
        if value != self.state.settings.image_size:
            self._commit(image_size=value)

    def _on_file_radio(self) -> None:
        if weights_kind(self.state.settings.weights) != "file":
            self.choose_weights_file()

    def choose_weights_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a weights file", start_folder(WEIGHTS, self.state),
            "Keras weights (*.h5 *.weights.h5 *.keras);;All files (*)")
        if path:
            self._commit(weights=path)
        else:
            self._show_settings()  # put the radio buttons back to the current choice

    def _on_auto_changed(self) -> None:
        on = self.auto_check.isChecked()
        self.auto_budget.setEnabled(on)
        self.state.set_auto_budget(self.auto_budget.value() if on else None)

    def _on_unfreeze_moved(self, value: int) -> None:
        if value != self.state.settings.unfreeze_blocks:
            self._commit(unfreeze_blocks=value)

    # -- showing the settings -----------------------------------------------------------------
    def _show_settings(self) -> None:
        s = self.state.settings
        spec = get_backbone(s.backbone)
        self.backbone_table.blockSignals(True)
        for row in range(self.backbone_table.rowCount()):
            if self.backbone_table.item(row, 0).data(Qt.ItemDataRole.UserRole) == spec.name:
                self.backbone_table.selectRow(row)
        self.backbone_table.blockSignals(False)

        self.image_size.blockSignals(True)
        self.image_size.clear()
        self.image_size.addItem(f"the network's own ({spec.default_size} px)", None)
        for size in IMAGE_SIZES:
            if spec.min_size <= size:
                self.image_size.addItem(f"{size} px", size)
        index = self.image_size.findData(s.image_size) if s.image_size else 0
        if index < 0:
            self.image_size.addItem(f"{s.image_size} px", s.image_size)
            index = self.image_size.count() - 1
        self.image_size.setCurrentIndex(index)
        self.image_size.blockSignals(False)

        kind = weights_kind(s.weights)
        for key, button in self.weights_buttons.items():
            button.blockSignals(True)
            button.setChecked(key == kind)
            button.blockSignals(False)
        self.weights_file_label.setText(Path(s.weights).name if kind == "file" else "")
        budget = self.state.auto_budget_minutes
        for widget in (self.auto_check, self.auto_budget):
            widget.blockSignals(True)
        self.auto_check.setChecked(budget is not None)
        self.auto_budget.setEnabled(budget is not None)
        if budget is not None:
            self.auto_budget.setValue(budget)
        for widget in (self.auto_check, self.auto_budget):
            widget.blockSignals(False)
        self.weights_file_label.setToolTip(s.weights if kind == "file" else "")
        self._refresh_network()

    def _network_key(self) -> tuple:
        s = self.state.settings
        classes = len(self.state.scan.classes) if self.state.scan else 2
        # Everything the described network's shape depends on; the number of classes last.
        return (s.backbone, s.resolved_image_size, s.dense_units, s.head_reads, classes)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._refresh_network()

    def _refresh_network(self) -> None:
        """Describe the network again if its shape changed, else just redraw the slider's part.

        Only while the page is shown: building a network costs a second or more of CPU.
        """
        if not self.isVisible():
            return
        key = self._network_key()
        self._wanted_key = key
        if key == self._described_key and self.description is not None:
            self._show_network()
            return
        self.unfreeze_slider.setEnabled(False)
        self.network.set_message(f"Measuring {get_backbone(key[0]).keras_name}…")
        if self.runner.is_running:
            return  # `_on_described` starts again for the newest key
        s = self.state.settings
        self.runner.start(describe_network, s.with_changes(unfreeze_blocks=0), key[-1])
        self._running_key = key

    def _on_described(self, description) -> None:
        self.description = description
        self._described_key = self._running_key
        if self._described_key != self._wanted_key:
            self._refresh_network()
            return
        self._show_network()
        self.network_described.emit()

    def _on_describe_failed(self, exc: BaseException, trace: str) -> None:
        self.network.set_message("The network could not be measured.")
        show_error(self, exc, trace, "measuring the network")

    def _show_network(self) -> None:
        d = self.description
        s = self.state.settings
        self.unfreeze_slider.blockSignals(True)
        self.unfreeze_slider.setRange(0, d.max_unfreeze_blocks)
        self.unfreeze_slider.setValue(min(s.unfreeze_blocks, d.max_unfreeze_blocks))
        scratch = from_scratch(s)
        self.unfreeze_slider.setEnabled(not scratch)
        self.unfreeze_slider.blockSignals(False)
        shown = with_unfreeze(d, None if scratch else s.unfreeze_blocks)
        n = min(s.unfreeze_blocks, d.max_unfreeze_blocks)
        self.network.set_description(shown)
        share = shown.trainable_params / max(1, shown.total_params)
        if scratch:
            self.unfreeze_label.setText("from scratch: every block learns")
            self.trainable_label.setText(
                f"Without pretrained weights there is nothing to keep frozen: all "
                f"<b>{format_params(shown.trainable_params)}</b> parameters train from the "
                f"start, so the slider does not apply.")
            return
        self.unfreeze_label.setText(
            "only the new head learns" if n == 0 else
            f"top {n} of {d.max_unfreeze_blocks} blocks fine-tuned")
        self.trainable_label.setText(
            f"Trainable while fine-tuning: <b>{format_params(shown.trainable_params)}</b> of "
            f"{format_params(shown.total_params)} parameters ({share:.0%}). "
            f"In the first phase only the head learns ({format_params(d.head_params)}).")

    def shutdown(self) -> None:
        self.runner.shutdown()
