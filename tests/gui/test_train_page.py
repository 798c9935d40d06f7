"""The Train page shows the current run only: a fresh log that follows its newest line, curves
and outcome that go when the data changes, readable plots and progress, plain offline words."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from finetune_gui.core.events import BatchEnded, EpochEnded, LogMessage
from finetune_gui.demo import make_shapes_dataset
from finetune_gui.gui.widgets.plots import TrainingCurves

from .conftest import TINY


def metrics(epoch: int) -> dict[str, float]:
    return {"loss": 1.5 / epoch, "val_loss": 1.6 / epoch, "accuracy": 0.3 + 0.1 * epoch,
            "val_accuracy": 0.25 + 0.1 * epoch}


@pytest.mark.slow
def test_each_run_starts_on_a_clear_log(qtbot, make_window):
    window = make_window()
    window.state.update_settings(**TINY)
    train = window.pages["train"]
    window.go_to("train")
    train.log.appendPlainText("Finished: test accuracy 57.0% (the run before)")
    with qtbot.waitSignal(train.run_finished, timeout=120_000):
        train.start_training()
        text = train.log.toPlainText()
        train.cancel_training()
    assert "the run before" not in text and text.startswith("— New run in")


def test_the_log_follows_its_newest_line_unless_the_user_scrolled_up(qtbot, make_window):
    window = make_window(start=False)
    train = window.pages["train"]
    bar = train.log.verticalScrollBar()
    window.go_to("data")  # the user looks elsewhere while training writes its log
    for line in range(200):
        train._on_event(LogMessage(f"line {line}"))
    window.go_to("train")
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    assert bar.value() == bar.maximum()  # the newest line is in view

    reading = bar.maximum() // 2
    bar.setValue(reading)  # the user scrolls up to read something
    for line in range(50):
        train._on_event(LogMessage(f"more {line}"))
    assert bar.value() == reading < bar.maximum()  # what they read stays in view

    bar.setValue(bar.maximum())  # back at the bottom: following again
    train._on_event(LogMessage("Finished."))
    assert bar.value() == bar.maximum()


def test_new_data_clears_the_last_runs_curves_and_outcome(qtbot, make_window, tmp_path):
    window = make_window(start=False)
    train = window.pages["train"]
    for epoch in (1, 2, 3):
        train._on_event(EpochEnded("head", epoch, metrics(epoch)))
    train.outcome.show_text("Finished: test accuracy 57.0%", "success")
    train.results_button.show()
    assert train.curves.point_count() == 3

    other = make_shapes_dataset(tmp_path / "faces", per_class=6, size=24, seed=2)
    window.state.set_data_dir(other)
    assert train.curves.point_count() == 0 and train.curves.point_count("val_accuracy") == 0
    assert train.outcome.isHidden() and "57.0%" not in train.outcome.text()
    assert train.results_button.isHidden()


def whole_epochs_only(curves: TrainingCurves) -> bool:
    for plot in (curves.loss_plot, curves.accuracy_plot):
        axis = plot.getPlotItem().getAxis("bottom")
        for _spacing, ticks in axis.tickValues(*axis.range, axis.geometry().width()):
            if any(tick != round(tick) for tick in ticks):
                return False
    return True


def test_plots_show_whole_epochs_even_when_empty(qtbot):
    curves = TrainingCurves()
    qtbot.addWidget(curves)
    curves.resize(1200, 360)
    curves.show()
    assert whole_epochs_only(curves)  # was 0.2, 0.4 ... 0.8 before the first epoch
    for epoch in range(1, 4):
        curves.add_epoch(epoch, metrics(epoch))
    curves.clear()
    assert whole_epochs_only(curves)


@pytest.mark.parametrize("epochs, first_finetune", [(2, 2), (6, 6), (10, 9)])
def test_no_legend_covers_the_fine_tuning_label(qtbot, epochs, first_finetune):
    curves = TrainingCurves()
    qtbot.addWidget(curves)
    curves.resize(1200, 360)
    curves.show()
    for epoch in range(1, epochs + 1):
        if epoch == first_finetune:
            curves.mark_phase_two(epoch)
        curves.add_epoch(epoch, metrics(epoch))
    qtbot.wait(50)
    for plot, line in zip((curves.loss_plot, curves.accuracy_plot), curves.phase_lines,
                          strict=True):
        item = plot.getPlotItem()
        label = line.label.sceneBoundingRect()
        assert item.legend is None or not item.legend.sceneBoundingRect().intersects(label)
        title = item.titleLabel.text
        assert "training" in title and "validation" in title  # the colour key is still shown


def test_progress_words_sit_beside_the_bar_not_across_its_colours(make_window):
    window = make_window(start=False)
    train = window.pages["train"]
    window.go_to("train")
    train._on_event(BatchEnded("head", 1, 3, 10, 0.9, eta_seconds=42))
    assert not train.progress.isTextVisible()
    assert train.progress.value() == 3 and train.progress.maximum() == 10
    assert train.progress_text.text() == "batch 3 of 10   about 42 s left"
    assert train.progress_text.isVisible()


def test_offline_weights_dialog_uses_plain_words_and_defaults_to_a_weights_file(make_window):
    from finetune_gui.core.model.backbones import _download_message, get_backbone

    window = make_window(start=False)
    train = window.pages["train"]
    message = _download_message(get_backbone("mobilenetv2"), OSError("URL fetch failure"))
    box = train._offer_weights_choice(message)
    words = box.text() + " " + box.informativeText()
    assert "'none'" not in words and "weights 'none'" not in words
    assert "train from scratch without pretrained weights" in words
    assert box.defaultButton() is not None
    assert box.defaultButton().text() == "Choose a weights file…"
    box.close()


def test_enter_in_the_offline_dialog_chooses_a_weights_file(qtbot, make_window, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    window = make_window(start=False)
    train = window.pages["train"]
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *args, **kwargs: (asked.append(args), ("", ""))[1])
    box = train._offer_weights_choice("Could not download the ImageNet weights.")
    qtbot.waitUntil(box.isVisible)
    qtbot.keyClick(box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(asked))
    assert window.state.settings.weights != "none"  # Enter did not start from scratch


def test_a_resumed_fine_tuning_keeps_its_marker_where_history_starts_it(make_window):
    """Resumed after epoch 4 of a run whose fine-tuning began at epoch 2: the curves show the
    earlier epochs with the marker at 1.5, and the resumed phase's start does not move it."""
    from finetune_gui.core.events import PhaseStarted

    window = make_window(start=False)
    train = window.pages["train"]
    history = [{"epoch": e, "phase": "head" if e == 1 else "finetune", **metrics(e)}
               for e in range(1, 5)]
    train.curves.show_history(history)
    assert [line.value() for line in train.curves.phase_lines] == [1.5, 1.5]
    train._on_event(PhaseStarted("finetune", 3, 5, 1000))
    train._on_event(EpochEnded("finetune", 5, metrics(5)))
    assert [line.value() for line in train.curves.phase_lines] == [1.5, 1.5]
    # A new run clears the curves; its own fine-tuning gets its marker.
    train.curves.clear()
    train._on_event(PhaseStarted("finetune", 3, 3, 1000))
    assert [line.value() for line in train.curves.phase_lines] == [2.5, 2.5]


def test_a_phase_that_starts_says_so_instead_of_the_last_images_read(make_window):
    """The solved head sends no batch: the line used to say "Reading 66 images at 48 px" with a
    full bar for as long as the head was being solved."""
    from finetune_gui.core.events import PhaseStarted, StageProgress, StageStarted

    train = make_window(start=False).pages["train"]
    train._on_event(StageStarted("decode", 66, "Reading 66 images at 48 px"))
    train._on_event(StageProgress("decode", 66, 66))
    train._on_event(PhaseStarted("head", 1, 1, 1000))
    assert train.status.text() == "Training the new head…"
    assert train.progress.maximum() == 0 and train.progress_text.text() == ""  # busy
    train._on_event(PhaseStarted("finetune", 3, 2, 1000))
    assert train.status.text() == "Fine-tuning…"
