"""The Export page's table of the formats already exported from the current run: each file's
size and its time per image on this computer, measured at export (core.export.benchmark)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.export.benchmark import read_exports, size_text
from finetune_gui.core.export.formats import FORMATS
from finetune_gui.gui.state import LoadedRun

COLUMNS = ("Format", "File size", "Time per image", "Saved as")
ROWS_SHOWN = 3  # more formats scroll: the table leaves the page's height to trying the model


class ExportSpeedTable(QGroupBox):
    """One row per format exported from the run (the latest export of each)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Size and speed of the formats exported", parent)
        layout = QVBoxLayout(self)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#4b5563;")
        layout.addWidget(self.note)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        rows = self.table.verticalHeader()
        rows.setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        layout.addWidget(self.table)
        self.show_run(None)

    def show_run(self, run: LoadedRun | None) -> None:
        """Fill the table from the run's record of its exports."""
        entries = read_exports(run.path) if run is not None else []
        self.table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            cells = (
                FORMATS[entry["format"]].title,
                size_text(entry["size_bytes"]),
                f"{entry['ms_per_image']:.1f} ms" if entry["ms_per_image"] >= 1
                else f"{entry['ms_per_image']:.2f} ms",
                entry.get("path", ""),
            )
            tip = (f"Median of {entry['runs']} runs of one image after {entry['warm_up_runs']} "
                   f"warm-up runs (fastest {entry['fastest_ms']:.2f} ms, slowest "
                   f"{entry['slowest_ms']:.2f} ms), {entry['runtime']}, measured "
                   f"{entry['measured']} on {entry['computer']}.")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip if column != 3 else text)
                if column in (1, 2):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.table.setVisible(bool(entries))
        self._fit_height(len(entries))
        self.note.setText(
            "Each export is timed in its own runtime on this computer: one image at a time, the "
            "median of repeated runs after a warm-up." if entries else
            "No format exported from this run yet: each export's file size and time per image "
            "on this computer will be listed here.")

    def _fit_height(self, rows: int) -> None:
        """As tall as its rows (up to ROWS_SHOWN), not a box of empty space."""
        shown = min(max(rows, 1), ROWS_SHOWN)
        height = (self.table.horizontalHeader().sizeHint().height()
                  + shown * self.table.verticalHeader().defaultSectionSize()
                  + 2 * self.table.frameWidth())
        self.table.setFixedHeight(height)

    def row_texts(self) -> list[list[str]]:
        """The table's cells, row by row (for tests)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]
