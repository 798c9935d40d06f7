"""The Model page: backbone table, weights source, unfreeze slider and picture, options."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QRadioButton,
    QSlider,
    QSpinBox,
    QTableWidget,
)

from finetune_gui.core.model.backbones import BACKBONES


@pytest.fixture
def model_page(qtbot, make_window):
    window = make_window()
    page = window.pages["model"]
    with qtbot.waitSignal(page.network_described, timeout=60_000):
        window.go_to("model")
    return window, page


def test_every_backbone_is_listed_with_size_input_and_hint(model_page):
    _, page = model_page
    table: QTableWidget = page.backbone_table
    assert table.rowCount() == len(BACKBONES)
    rows = {table.item(r, 0).text(): [table.item(r, c).text() for c in range(1, 5)]
            for r in range(table.rowCount())}
    assert rows["ResNet50"] == ["ResNet", "23.6 M", "224 px", "medium speed, more accurate"]
    assert rows["InceptionV3"][2] == "299 px"


def test_every_control_explains_itself_in_a_tooltip(model_page):
    _, page = model_page
    controls = [w for kind in (QSpinBox, QDoubleSpinBox, QComboBox, QSlider, QRadioButton)
                for w in page.findChildren(kind)]
    assert len(controls) >= 18
    missing = [w.objectName() or type(w).__name__ for w in controls if not w.toolTip()]
    assert missing == []


def test_unfreeze_slider_redraws_the_picture_and_the_count_at_once(qtbot, model_page):
    window, page = model_page
    description = page.description
    assert page.unfreeze_slider.maximum() == description.max_unfreeze_blocks
    page.unfreeze_slider.setValue(0)
    assert window.state.settings.unfreeze_blocks == 0
    assert not any(b.trainable for b in page.network.description.blocks)
    assert "only the new head learns" in page.unfreeze_label.text()
    page.unfreeze_slider.setValue(3)
    trainable = [b.trainable for b in page.network.description.blocks]
    assert trainable.count(True) == 3 and all(trainable[-3:])
    assert page.network.description.trainable_params > description.head_params
    assert window.steps.status_text("model") == "MobileNetV2, tune 3 blocks"


def test_training_from_scratch_makes_every_block_trainable(qtbot, model_page):
    window, page = model_page
    qtbot.mouseClick(page.weights_buttons["none"], Qt.MouseButton.LeftButton)
    assert window.state.settings.weights == "none"
    assert not page.unfreeze_slider.isEnabled()
    assert all(b.trainable for b in page.network.description.blocks)
    assert "from scratch" in window.steps.status_text("model")


def test_advanced_settings_fold_open_and_apply(qtbot, model_page):
    window, page = model_page
    options = page.options
    assert not options.advanced.isVisible()
    qtbot.mouseClick(options.advanced_toggle, Qt.MouseButton.LeftButton)
    assert options.advanced.isVisible()
    options.optimizer.setCurrentIndex(options.optimizer.findData("sgd"))
    options.patience.setValue(0)
    assert window.state.settings.optimizer == "sgd"
    assert window.state.settings.patience == 0
    assert options.patience.text() == "never stop early"
    # What the head reads: every block unless the user asks for the classic last block only.
    assert window.state.settings.head_reads == "every-block"
    assert options.head_reads.currentText() == "every block of the network"
    options.head_reads.setCurrentIndex(options.head_reads.findData("last-block"))
    assert window.state.settings.head_reads == "last-block"


def test_options_are_named_and_explained_by_the_settings_own_description(model_page):
    from PySide6.QtWidgets import QFormLayout, QLabel

    from finetune_gui.core.settings import SETTINGS_INFO

    _, page = model_page
    rows = {}
    for form in page.options.findChildren(QFormLayout):
        for r in range(form.rowCount()):
            label = form.itemAt(r, QFormLayout.ItemRole.LabelRole).widget()
            field = form.itemAt(r, QFormLayout.ItemRole.FieldRole).widget()
            assert isinstance(label, QLabel)
            rows[field.objectName()] = (label.text(), label.toolTip(), field.toolTip())
    assert len(rows) == 16
    for key, (text, label_tip, field_tip) in rows.items():
        info = SETTINGS_INFO[key]
        assert text.lower() == f"{info.label}:".lower() and label_tip == field_tip == info.help
    assert rows["l2"][0] == "Weight penalty (L2):"


def test_the_train_page_says_the_plan_the_engine_will_run(qtbot, model_page):
    window, page = model_page
    plan = window.pages["train"].plan
    assert ("the new head solved in one step, then up to 5 epochs fine-tuning the top 2 blocks, "
            "only if it can still beat the head alone") in plan.text()
    page.unfreeze_slider.setValue(0)
    assert "the new head solved in one step; no fine-tuning: 0 blocks" in plan.text()
    qtbot.mouseClick(page.weights_buttons["none"], Qt.MouseButton.LeftButton)
    assert "10 epochs training the whole network from scratch" in plan.text()


def test_an_impossible_setting_is_refused_in_plain_words(model_page):
    window, page = model_page
    options = page.options
    options.epochs_finetune.setValue(0)
    options.epochs_head.setValue(0)
    assert "at least one epoch" in page.error_banner.text()
    assert window.state.settings.epochs_head == 5  # kept, and the control shows it again
    assert options.epochs_head.value() == 5


def test_a_smaller_image_size_is_kept_only_when_the_new_backbone_accepts_it(qtbot, model_page):
    window, page = model_page
    page.image_size.setCurrentIndex(page.image_size.findData(32))
    assert window.state.settings.image_size == 32
    page.select_backbone("inceptionv3")  # needs 75 px or more
    assert window.state.settings.backbone == "inceptionv3"
    assert window.state.settings.image_size is None
    assert page.image_size.currentText() == "the network's own (299 px)"


def test_find_good_settings_is_an_option_with_a_time_budget(qtbot, model_page):
    window, page = model_page
    plan = window.pages["train"].plan
    assert window.state.auto_budget_minutes is None and not page.auto_budget.isEnabled()
    assert "finding better settings" not in plan.text()
    page.auto_check.click()
    assert window.state.auto_budget_minutes == 10 and page.auto_budget.isEnabled()
    page.auto_budget.setValue(3)
    assert window.state.auto_budget_minutes == 3
    assert "First up to 3 minutes finding better settings on the validation images" in (
        plan.text()
    )
    assert "validation images (never the test images)" in page.auto_check.toolTip()
    page.auto_check.click()
    assert window.state.auto_budget_minutes is None
    assert "finding better settings" not in plan.text()


@pytest.mark.slow
def test_a_run_with_find_good_settings_tries_settings_then_saves_the_chosen_ones(
    qtbot, make_window, base_weights_file
):
    import json

    from .conftest import TINY

    window = make_window()
    window.state.update_settings(**{**TINY, "weights": str(base_weights_file),
                                    "unfreeze_blocks": 1})
    window.go_to("model")
    page = window.pages["model"]
    page.auto_check.click()
    page.auto_budget.setValue(1)
    assert window.state.auto_budget_minutes == 1
    # The box's smallest budget is a minute of trials; the flow is the same with the one trial
    # that always runs (the core's tests try several).
    window.state.set_auto_budget(0.01)
    train = window.pages["train"]
    with qtbot.waitSignal(train.run_finished, timeout=600_000) as finished:
        train.start_training()
    assert finished.args == ["completed"]
    facts = json.loads((train.run_dir / "run.json").read_text())
    trials = facts["auto_trials"]
    assert trials and sum(t["chosen"] for t in trials) == 1
    chosen = next(t for t in trials if t["chosen"])
    saved = json.loads((train.run_dir / "settings.json").read_text())
    expected = window.state.settings.with_changes(**chosen["changes"]).to_dict()
    assert saved == expected  # the settings it chose, saved like any others
    assert "Settings tried (* chosen)" in train.log.toPlainText()


def test_every_option_widget_takes_its_range_and_choices_from_the_settings(model_page):
    """The form is made from core/settings.py: each number box spans the setting's declared
    range (epochs 0-10,000, dropout up to 0.95, ...), each list offers exactly its words or
    values inside that range, and a setting given a box appears in it."""
    from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QSpinBox

    from finetune_gui.core.settings import SETTINGS_INFO, may_be_unset

    options = model_page[1].options
    grouped = {name for name, info in SETTINGS_INFO.items() if info.group}
    assert set(options.fields) == grouped and len(grouped) == 16
    for name, widget in options.fields.items():
        info = SETTINGS_INFO[name]
        assert widget.toolTip() == info.help
        if isinstance(widget, QComboBox):
            values = [widget.itemData(i) for i in range(widget.count())]
            if info.choices:
                assert values == list(info.choices), name
                assert [widget.itemText(i) for i in range(widget.count())] == list(
                    info.choice_texts or info.choices)
            else:
                offered = [v for v in values if v is not None]
                assert offered == list(info.suggestions), name
                assert all(info.low <= v <= info.high for v in offered), name
                assert (None in values) == may_be_unset(name), name
        else:
            assert isinstance(widget, QSpinBox | QDoubleSpinBox), name
            assert (widget.minimum(), widget.maximum()) == (info.low, info.high), name
            if info.step:
                assert widget.singleStep() == pytest.approx(info.step), name
    assert options.epochs_head.maximum() == 10_000 and options.dropout.maximum() == 0.95
    # The page's own controls are explained by the settings too.
    page = model_page[1]
    assert page.unfreeze_slider.toolTip() == SETTINGS_INFO["unfreeze_blocks"].help
    assert page.image_size.toolTip() == SETTINGS_INFO["image_size"].help


def test_a_setting_from_a_project_outside_the_suggested_values_is_shown_and_kept(model_page):
    window, page = model_page
    window.state.update_settings(lr_head=0.005, batch_size=24)
    options = page.options
    assert options.lr_head.currentText() == "0.005" and options.batch_size.currentText() == "24"
    options.epochs_head.setValue(7)  # committing the form keeps them
    assert (window.state.settings.lr_head, window.state.settings.batch_size) == (0.005, 24)


def test_what_the_head_reads_changes_the_parameter_count_shown(qtbot, model_page):
    window, page = model_page
    before = page.trainable_label.text()
    with qtbot.waitSignal(page.network_described, timeout=60_000):
        page.options.head_reads.setCurrentIndex(page.options.head_reads.findData("last-block"))
    assert window.state.settings.head_reads == "last-block"
    assert page.trainable_label.text() != before
