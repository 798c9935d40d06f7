"""Export > Try it at 1400 x 900 (issue 25, item 6): eight answers are all on screen, each with
its answer and whether the model is sure first, nothing needs sideways scrolling and the reason
for "not sure" is there in full, in the table and beside it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFontMetrics, QImage

from finetune_gui.core.run.predict import Prediction
from finetune_gui.gui.pages.export_try import ANSWER_COLUMN, HEADERS, SURE_COLUMN, THUMB
from finetune_gui.gui.state import LoadedRun

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helpers
from compare_runs import FILES, fake_run

REASONS = ("unlike the training images", "the model cannot decide", None, None)


def exported(run: Path, formats: list[str]) -> None:
    """The run's record of exports, as after saving it in a few formats (the size-and-speed
    table above Try it then has rows, as in the walkthrough)."""
    entries = [{"format": f, "size_bytes": 3_600_000, "ms_per_image": 4.2, "fastest_ms": 4.0,
                "slowest_ms": 5.1, "runs": 30, "warm_up_runs": 3, "batch": 1, "runtime": "x",
                "computer": "test", "measured": "2026-12-04", "path": f"/home/me/model.{f}"}
               for f in formats]
    (run / "exports.json").write_text(json.dumps(entries))


def answers(folder: Path) -> tuple[list[Prediction], dict[str, QImage]]:
    predictions, thumbnails = [], {}
    for i in range(8):
        path = folder / f"holiday photo from the beach number {i:02d}.jpg"
        predictions.append(Prediction(path, [("circles", 0.61), ("squares", 0.3),
                                             ("triangles", 0.09)], unsure=REASONS[i % 4]))
        picture = QImage(THUMB, THUMB, QImage.Format.Format_RGB32)
        picture.fill(QColor("#3b82f6"))
        thumbnails[str(path)] = picture
    return predictions, thumbnails


def text_fits(table, row: int, column: int) -> bool:
    """The cell's whole text fits its cell as the table draws it: on one line, or wrapped at
    word boundaries when the table wraps (nothing elided)."""
    item = table.item(row, column)
    cell = table.visualRect(table.model().index(row, column)).adjusted(4, 1, -4, -1)
    metrics = QFontMetrics(item.font())
    flags = int(Qt.TextFlag.TextWordWrap) if table.wordWrap() else 0
    needed = metrics.boundingRect(cell, flags, item.text())
    return needed.width() <= cell.width() and needed.height() <= cell.height()


def test_eight_answers_fit_at_1400_by_900_with_why_not_sure_in_full(
    qtbot, make_window, tmp_path, monkeypatch
):
    run = fake_run(tmp_path / "runs" / "20261204-233421-mobilenetv2", str(tmp_path / "data"),
                   FILES, 3)
    exported(run, ["keras", "tflite", "onnx", "savedmodel"])
    window = make_window(start=False)
    window.resize(1400, 900)
    window.state.add_run(LoadedRun.read(run))
    window.go_to("export")
    panel = window.pages["export"].try_panel
    monkeypatch.setattr(panel.heatmaps, "_next", lambda: None)  # no model to load: no heatmap
    predictions, thumbnails = answers(tmp_path / "new")
    panel._on_predicted((None, predictions, thumbnails))
    qtbot.waitUntil(lambda: window.height() == 900 and panel.predictions.isVisible())
    qtbot.wait(50)  # the layout settles
    table = panel.predictions
    view = table.viewport().rect()

    # Every row is on screen, without scrolling either way.
    assert table.rowCount() == 8
    for row in range(8):
        assert view.contains(table.visualRect(table.model().index(row, ANSWER_COLUMN))), row
    assert table.horizontalScrollBar().maximum() == 0
    shown = [c for c in range(len(HEADERS)) if not table.isColumnHidden(c)]
    assert table.horizontalHeader().sectionViewportPosition(shown[-1]) \
        + table.columnWidth(shown[-1]) <= view.width()

    # The answer and whether it is sure come right after the image.
    headers = [table.horizontalHeaderItem(c).text() for c in shown]
    assert headers[:3] == ["Image", "Answer", "Sure?"]
    assert table.item(0, ANSWER_COLUMN).text() == "circles  61%"
    assert [table.item(r, SURE_COLUMN).text() for r in range(4)] == [
        "not sure: unlike the training images", "not sure: the model cannot decide", "yes", "yes"]

    # The reason is whole: wrapped in its cell, and in full in the panel beside.
    for row in range(8):
        assert text_fits(table, row, SURE_COLUMN), table.item(row, SURE_COLUMN).text()
        assert text_fits(table, row, ANSWER_COLUMN)
    caption = panel.heatmap_panel.caption
    assert "not sure" in caption.text() and "unlike the training images" in caption.text()
    assert caption.isVisible() and caption.height() >= caption.heightForWidth(caption.width())
    assert table.item(0, 0).toolTip() == str(predictions[0].path)
