"""The head and training options of the Model page: safe defaults, a plain tooltip each, and an
"advanced" fold for what most users never need to touch.

Every field is made from its setting's declaration (`SettingInfo` in core/settings.py): which box
it sits in, its widget, range, step, choices and their words, and its tip. One loop builds the
form, one shows the settings in it, one commits it; a setting added there with a `group` appears
here with nothing written twice.
"""

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

from finetune_gui.core.settings import (
    SETTINGS_INFO,
    SettingInfo,
    TrainingSettings,
    may_be_unset,
    value_type,
)
from finetune_gui.gui.state import ProjectState
from finetune_gui.gui.widgets.common import help_label

# The boxes of the form, in order, with their titles ("advanced" folds open on request).
GROUPS = {"training": "Training", "head": "New head", "advanced": ""}


def form_fields(group: str) -> list[str]:
    """The settings shown in `group`, in the order core/settings.py declares them."""
    return [name for name, info in SETTINGS_INFO.items() if info.group == group]


def field_widget(name: str, info: SettingInfo) -> QWidget:
    """The widget a setting's declaration asks for: a list of its words or suggested values,
    or a number box over its range."""
    if info.choices:
        texts = info.choice_texts or info.choices
        return _choices(QComboBox(), list(zip(texts, info.choices, strict=True)))
    if info.suggestions:
        unset = [(info.unset_text, None)] if may_be_unset(name) else []
        return _choices(QComboBox(), unset + [(f"{v:g}", v) for v in info.suggestions])
    kind = value_type(name)
    spin = QSpinBox() if kind is int else QDoubleSpinBox()
    if isinstance(spin, QDoubleSpinBox):
        spin.setDecimals(info.decimals)
    spin.setRange(kind(info.low), kind(info.high))
    if info.step:
        spin.setSingleStep(kind(info.step))
    if info.unset_text:
        spin.setSpecialValueText(info.unset_text)
    return spin


def show_value(widget: QWidget, value: object) -> None:
    if isinstance(widget, QComboBox):
        _set_combo(widget, value)
    else:
        widget.setValue(value)


def widget_value(widget: QWidget) -> object:
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QDoubleSpinBox):
        return round(widget.value(), widget.decimals())
    return widget.value()


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
        combo.addItem(f"{value:g}" if isinstance(value, float) else str(value), value)
        index = combo.count() - 1
    combo.setCurrentIndex(index)


class TrainingOptions(QWidget):
    """Head and hyperparameter controls bound to `state.settings`; each field's widget is also
    an attribute named as its setting (`options.epochs_head`)."""

    def __init__(self, state: ProjectState, on_error, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._on_error = on_error
        self.fields: dict[str, QWidget] = {}
        self._build()
        state.settings_changed.connect(self.show_settings)
        self.show_settings()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        for group in ("training", "head"):
            box = QGroupBox(GROUPS[group])
            self._add_fields(_form(box), group)
            row.addWidget(box, 1)
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
        self._add_fields(_form(self.advanced), "advanced")
        self.advanced.hide()
        layout.addWidget(self.advanced)

    def _add_fields(self, form: QFormLayout, group: str) -> None:
        """A form row for each setting of `group`, named and explained by its declaration."""
        for name in form_fields(group):
            info = SETTINGS_INFO[name]
            widget = field_widget(name, info)
            widget.setToolTip(info.help)
            widget.setObjectName(name)
            title = f"{info.label[0].upper()}{info.label[1:]}:"
            form.addRow(help_label(title, info.help), widget)
            if isinstance(widget, QComboBox):
                widget.currentIndexChanged.connect(self._commit)
            else:
                widget.valueChanged.connect(self._commit)
            self.fields[name] = widget
            setattr(self, name, widget)

    def _toggle_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def show_settings(self) -> None:
        s: TrainingSettings = self.state.settings
        for widget in self.fields.values():
            widget.blockSignals(True)
        for name, widget in self.fields.items():
            show_value(widget, getattr(s, name))
        self._enable_views(s.cache_mode)
        for widget in self.fields.values():
            widget.blockSignals(False)

    def _commit(self) -> None:
        error = self.state.update_settings(
            **{name: widget_value(widget) for name, widget in self.fields.items()})
        self._on_error(error or "")
        self._enable_views(self.fields["cache_mode"].currentData())
        if error:
            self.show_settings()

    def _enable_views(self, cache_mode: str) -> None:
        # Augmented copies are computed once only in fast mode; exact mode draws new ones.
        self.fields["views"].setEnabled(cache_mode == "fast")
