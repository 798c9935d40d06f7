"""The head and training options of the Model page: safe defaults, a plain tooltip each, and an
"advanced" fold for what most users never need to touch."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.settings import SETTINGS_INFO, TrainingSettings
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import help_label

LEARNING_RATES = (0.01, 0.003, 0.001, 0.0003, 0.0001, 0.00003, 0.00001)
BATCH_SIZES = (8, 16, 32, 64, 128)


def _form(box: QGroupBox) -> QFormLayout:
    """A form whose fields keep their natural width (a number box as wide as the window is hard
    to read)."""
    form = QFormLayout(box)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
    return form


def _choices(combo: QComboBox, items: list[tuple[str, object]]) -> QComboBox:
    for text, value in items:
        combo.addItem(text, value)
    return combo


def _set_combo(combo: QComboBox, value: object) -> None:
    index = combo.findData(value)
    if index < 0:  # a value from a project file that the list lacks: add it rather than lose it
        combo.addItem(str(value), value)
        index = combo.count() - 1
    combo.setCurrentIndex(index)


class TrainingOptions(QWidget):
    """Head and hyperparameter controls bound to `state.settings`."""

    def __init__(self, state: ProjectState, on_error, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._on_error = on_error
        self._build()
        state.settings_changed.connect(self.show_settings)
        self.show_settings()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()

        basics = QGroupBox("Training")
        form = _form(basics)
        self.epochs_head = QSpinBox()
        self.epochs_head.setRange(0, 500)
        self.epochs_finetune = QSpinBox()
        self.epochs_finetune.setRange(0, 500)
        self.batch_size = _choices(QComboBox(), [(str(b), b) for b in BATCH_SIZES])
        self.lr_head = _choices(QComboBox(), [(f"{lr:g}", lr) for lr in LEARNING_RATES])
        self._add(form, self.epochs_head, "epochs_head")
        self._add(form, self.epochs_finetune, "epochs_finetune")
        self._add(form, self.batch_size, "batch_size")
        self._add(form, self.lr_head, "lr_head")
        row.addWidget(basics, 1)

        head = QGroupBox("New head")
        head_form = _form(head)
        self.dense_units = QSpinBox()
        self.dense_units.setRange(0, 4096)
        self.dense_units.setSingleStep(64)
        self.dense_units.setSpecialValueText("none")
        self.dropout = QDoubleSpinBox()
        self.dropout.setRange(0.0, 0.9)
        self.dropout.setSingleStep(0.05)
        self.dropout.setDecimals(2)
        self._add(head_form, self.dense_units, "dense_units")
        self._add(head_form, self.dropout, "dropout")
        row.addWidget(head, 1)
        layout.addLayout(row)

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        layout.addWidget(self.advanced_toggle)

        self.advanced = QGroupBox()
        adv = _form(self.advanced)
        self.head_reads = _choices(QComboBox(), [("every block of the network", "every-block"),
                                                 ("the last block only", "last-block")])
        self.finetune_when = _choices(QComboBox(), [("only when it can still win", "can-win"),
                                                    ("always", "always")])
        self.lr_finetune = _choices(
            QComboBox(), [("automatic (a tenth of the head's)", None)]
            + [(f"{lr:g}", lr) for lr in LEARNING_RATES])
        self.optimizer = _choices(QComboBox(), [("Adam", "adam"), ("SGD with momentum", "sgd"),
                                                ("RMSprop", "rmsprop")])
        self.l2 = QDoubleSpinBox()
        self.l2.setDecimals(5)
        self.l2.setRange(0.0, 0.1)
        self.l2.setSingleStep(0.0001)
        self.class_weights = _choices(QComboBox(), [("automatic", "auto"), ("always", "on"),
                                                    ("never", "off")])
        self.patience = QSpinBox()
        self.patience.setRange(0, 100)
        self.patience.setSpecialValueText("never stop early")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.cache_mode = _choices(QComboBox(), [("fast (reuse frozen features)", "fast"),
                                                 ("exact (slower)", "exact")])
        self._add(adv, self.head_reads, "head_reads")
        self._add(adv, self.finetune_when, "finetune_when")
        self._add(adv, self.lr_finetune, "lr_finetune")
        self._add(adv, self.optimizer, "optimizer")
        self._add(adv, self.l2, "l2")
        self._add(adv, self.class_weights, "class_weights")
        self._add(adv, self.patience, "patience")
        self._add(adv, self.seed, "seed")
        self._add(adv, self.cache_mode, "cache_mode")
        self.views = QSpinBox()
        self.views.setRange(1, 16)
        self._add(adv, self.views, "views")
        self.advanced.hide()
        layout.addWidget(self.advanced)

        for spin in (self.epochs_head, self.epochs_finetune, self.dense_units, self.patience,
                     self.seed, self.views):
            spin.valueChanged.connect(self._commit)
        for spin in (self.dropout, self.l2):
            spin.valueChanged.connect(self._commit)
        for combo in (self.batch_size, self.lr_head, self.lr_finetune, self.optimizer,
                      self.class_weights, self.cache_mode, self.head_reads, self.finetune_when):
            combo.currentIndexChanged.connect(self._commit)

    def _add(self, form: QFormLayout, widget: QWidget, key: str) -> None:
        """A form row named and explained by the setting's own description (core/settings.py)."""
        info = SETTINGS_INFO[key]
        widget.setToolTip(info.help)
        widget.setObjectName(key)
        form.addRow(help_label(f"{info.label[0].upper()}{info.label[1:]}:", info.help), widget)

    def _toggle_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _widgets(self) -> list[QWidget]:
        return [self.epochs_head, self.epochs_finetune, self.batch_size, self.lr_head,
                self.dense_units, self.dropout, self.lr_finetune, self.optimizer, self.l2,
                self.class_weights, self.patience, self.seed, self.cache_mode, self.views,
                self.head_reads, self.finetune_when]

    def show_settings(self) -> None:
        s: TrainingSettings = self.state.settings
        for widget in self._widgets():
            widget.blockSignals(True)
        self.epochs_head.setValue(s.epochs_head)
        self.epochs_finetune.setValue(s.epochs_finetune)
        _set_combo(self.batch_size, s.batch_size)
        _set_combo(self.lr_head, s.lr_head)
        self.dense_units.setValue(s.dense_units)
        self.dropout.setValue(s.dropout)
        _set_combo(self.lr_finetune, s.lr_finetune)
        _set_combo(self.optimizer, s.optimizer)
        self.l2.setValue(s.l2)
        _set_combo(self.class_weights, s.class_weights)
        self.patience.setValue(s.patience)
        self.seed.setValue(s.seed)
        _set_combo(self.cache_mode, s.cache_mode)
        self.views.setValue(s.views)
        _set_combo(self.head_reads, s.head_reads)
        _set_combo(self.finetune_when, s.finetune_when)
        self.views.setEnabled(s.cache_mode == "fast")
        for widget in self._widgets():
            widget.blockSignals(False)

    def _commit(self) -> None:
        error = self.state.update_settings(
            epochs_head=self.epochs_head.value(),
            epochs_finetune=self.epochs_finetune.value(),
            batch_size=self.batch_size.currentData(),
            lr_head=self.lr_head.currentData(),
            dense_units=self.dense_units.value(),
            dropout=round(self.dropout.value(), 2),
            lr_finetune=self.lr_finetune.currentData(),
            optimizer=self.optimizer.currentData(),
            l2=self.l2.value(),
            class_weights=self.class_weights.currentData(),
            patience=self.patience.value(),
            seed=self.seed.value(),
            cache_mode=self.cache_mode.currentData(),
            views=self.views.value(),
            head_reads=self.head_reads.currentData(),
            finetune_when=self.finetune_when.currentData(),
        )
        self._on_error(error or "")
        self.views.setEnabled(self.cache_mode.currentData() == "fast")
        if error:
            self.show_settings()
