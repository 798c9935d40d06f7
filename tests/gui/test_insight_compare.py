"""Comparing runs: two real tiny runs with one different setting, side by side in a table and in
overlaid validation curves; the best score of a row is highlighted."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from finetune_gui.core.run.compare import RunComparison
from finetune_gui.core.run.folder import RunFolder
from finetune_gui.gui.pages.compare import BEST_BRUSH, CompareRunsDialog
from finetune_gui.gui.state import ProjectState


@pytest.fixture(scope="module")
def head_only_run(tmp_path_factory, trained_run) -> Path:
    """A second run on the same images, without the fine-tuning phase."""
    from finetune_gui.core.training.job import train_folder

    shared = RunFolder.open(trained_run)
    out = tmp_path_factory.mktemp("runs-compare") / "head-only"
    result = train_folder(Path(shared.facts.data), shared.settings.with_changes(
        epochs_finetune=0), out)
    assert result.status == "completed"
    return out


def row_of(table, label: str) -> int:
    rows = [r for r in range(table.rowCount())
            if table.verticalHeaderItem(r) and table.verticalHeaderItem(r).text() == label]
    assert len(rows) == 1, f"{label!r} is in {len(rows)} rows"
    return rows[0]


def row_texts(table, label: str) -> list[str]:
    row = row_of(table, label)
    return [table.item(row, c).text() for c in range(table.columnCount())]


def highlighted(table, label: str) -> set[int]:
    row = row_of(table, label)
    return {c for c in range(table.columnCount())
            if table.item(row, c).background() == BEST_BRUSH}


@pytest.mark.slow
def test_two_runs_side_by_side_show_the_differing_setting_both_scores_and_a_curve_each(
        qtbot, make_window, trained_run, head_only_run):
    window = make_window(start=False)
    train = window.pages["train"]
    window.state.set_runs([trained_run])
    assert not train.compare_button.isEnabled() and not window.compare_action.isEnabled()
    window.state.set_runs([trained_run, head_only_run])
    assert train.compare_button.isEnabled() and window.compare_action.isEnabled()

    qtbot.mouseClick(train.compare_button, Qt.MouseButton.LeftButton)
    dialog = window.comparison
    assert dialog is not None and dialog.isVisible()
    table = dialog.table
    names = dialog.comparison.names  # network · data folder · time · test accuracy
    assert [n.split(" · ")[:2] for n in names] == [["MobileNetV3Small", "data"]] * 2
    assert [table.horizontalHeaderItem(c).text() for c in range(2)] == [
        n.replace(" · ", "\n") for n in names]
    assert row_texts(table, "epochs of fine-tuning") == ["1", "0"]
    settings_rows = range(row_of(table, "Settings that differ") + 1, row_of(table, "Scores"))
    assert [table.verticalHeaderItem(r).text() for r in settings_rows] == [
        "epochs of fine-tuning"]
    accuracies = [RunFolder.open(p).report.accuracy for p in (trained_run, head_only_run)]
    assert row_texts(table, "test accuracy") == [f"{a:.1%}" for a in accuracies]
    # The tiny run's head may get every validation image right, which skips fine-tuning.
    assert row_texts(table, "epochs run") == [
        str(len(RunFolder.open(p).history)) for p in (trained_run, head_only_run)]
    for plot in (dialog.accuracy_plot, dialog.loss_plot):
        assert dialog.curve_count(plot) == 2
    assert dialog.legend_names() == names  # the key below both plots

    # Unticking a run leaves one column and one curve, and says what to do.
    listed = [dialog.run_list.item(i) for i in range(dialog.run_list.count())]
    assert sorted(i.text() for i in listed) == sorted(names)  # the list names runs as the table
    (item,) = [i for i in listed if i.data(Qt.ItemDataRole.UserRole) == str(head_only_run)]
    item.setCheckState(Qt.CheckState.Unchecked)
    assert table.columnCount() == 1 and dialog.curve_count(dialog.accuracy_plot) == 1
    assert "at least two runs" in dialog.message.text()
    window.show_comparison()
    assert window.comparison is dialog  # the menu and the button bring the same window forward


def test_the_best_score_of_each_row_is_highlighted_and_ties_are_not(qtbot, tmp_path):
    dialog = CompareRunsDialog(ProjectState(tmp_path / "runs"))
    qtbot.addWidget(dialog)
    dialog.show_comparison(RunComparison(
        names=["a", "b", "c"],
        paths=[tmp_path / n for n in "abc"],
        differing={"batch_size": [8, 16, 32]},
        shared={},
        metrics={"test accuracy": [0.8, 0.9, 0.7], "best val_loss": [0.5, 0.4, 0.6],
                 "macro f1": [0.5, 0.5, 0.5], "epochs run": [3, 5, 4],
                 "best val_accuracy": [0.9, 0.7, 0.9]},
        histories=[[{"epoch": 1, "val_accuracy": 0.5, "val_loss": 1.0}], [], []],
    ))
    table = dialog.table
    assert row_texts(dialog.table, "batch size") == ["8", "16", "32"]
    assert highlighted(table, "test accuracy") == {1}
    assert highlighted(table, "lowest validation loss") == {1}  # lower is better
    assert highlighted(table, "best validation accuracy") == {0, 2}  # a tie for the best
    assert highlighted(table, "F1 (mean over classes)") == set()  # all equal: nothing to prefer
    assert highlighted(table, "epochs run") == set()  # a count, not a score
    assert dialog.curve_count(dialog.accuracy_plot) == 1  # runs without history draw nothing


def test_runs_on_different_data_show_the_folder_warn_and_rank_nothing(qtbot, tmp_path):
    from tests.compare_runs import FILES, fake_run

    state = ProjectState(tmp_path / "runs")
    state.set_runs([fake_run(tmp_path / "flowers-run", "/photos/flowers", FILES, accuracy_hits=4),
                    fake_run(tmp_path / "faces-run", "/photos/faces", FILES, accuracy_hits=2)])
    dialog = CompareRunsDialog(state)
    qtbot.addWidget(dialog)
    dialog.tick(state.runs)
    table = dialog.table
    assert row_texts(table, "data folder") == ["/photos/flowers", "/photos/faces"]
    assert "different images" in dialog.message.text()
    assert highlighted(table, "test accuracy") == set()
    assert table.horizontalHeaderItem(0).text().startswith("MobileNetV3Small\nflowers\n")
