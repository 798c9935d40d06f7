"""labels.csv: `path,label` rows (and who decided, with the model's probability), read and written.

The command line takes the user's labels in this form and the output writes it, so an output's
labels.csv can be given back (`--labels OUT/labels.csv`) and reads as the same labels. Every
row is checked before anything is used, and the first problem is refused in one sentence that
names the line: a label that cannot be a folder name, a path outside the folder or missing, a
file that is not a usable picture, a class with no picture, two labels for one picture, a file
without the columns.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from finetune_gui.core.data.class_names import shown
from finetune_gui.core.errors import UserError
from finetune_gui.core.label.names import check_label
from finetune_gui.core.label.pictures import FolderPictures
from finetune_gui.core.label.session import MODEL, USER, Decision

COLUMNS = ("path", "label", "decided_by", "probability")


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"The labels file {path} does not exist.")
    try:
        return path.read_text("utf-8-sig")  # a spreadsheet's UTF-8 starts with a byte mark
    except UnicodeDecodeError as exc:
        raise UserError(f"The labels file {path} is not UTF-8 text; save it as UTF-8 CSV.") from exc
    except OSError as exc:
        raise UserError(f"The labels file {path} cannot be read ({exc.strerror or exc}).") from exc


def _inside(root: Path, path: Path) -> bool:
    root_text = os.path.normpath(root)
    return os.path.normpath(path).startswith(root_text.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class LabelRow:
    """One row of labels.csv, checked against the folder: `path` absolute and inside it."""

    line: int
    given: str  # the path as written
    path: Path
    label: str
    by: str
    probability: float | None


def read_rows(csv_path: Path | str, root: Path) -> list[LabelRow]:
    """The rows of `csv_path`, each checked without opening a picture: the columns, the label,
    the path (inside `root`, existing). The checks that need the folder's pictures are
    `resolve`'s."""
    csv_path = Path(csv_path)
    name = csv_path.name
    reader = csv.reader(io.StringIO(_read_text(csv_path)))
    header = [cell.strip().lower() for cell in next(reader, [])]
    if "path" not in header or "label" not in header:
        found = ", ".join(h for h in header if h) or "none"
        raise UserError(f"The labels file {csv_path} has the columns {found}; it needs a header "
                        f"row with the columns path and label.")
    at = {column: header.index(column) for column in COLUMNS if column in header}
    rows = []
    for line, row in enumerate(reader, start=2):
        cell = {column: (row[i] if i < len(row) else "") for column, i in at.items()}
        given, label = cell["path"].strip(), cell["label"]
        if not given and not label.strip():
            continue  # a blank line
        where = f"on line {line} of {name}"
        if not given:
            raise UserError(f"The class {shown(label)} {where} has no picture (its path is "
                            f"empty); give each class at least one picture.")
        if not label:
            raise UserError(f"The picture {given} {where} has no label.")
        check_label(label, where)
        path = Path(os.path.normpath(root / given))
        if not _inside(root, path):
            raise UserError(f"The path {given} {where} is outside the folder {root}.")
        if not path.exists():
            raise UserError(f"The picture {given} {where} does not exist in {root}.")
        by = MODEL if cell.get("decided_by", "").strip().lower() == MODEL else USER
        probability = (_probability(cell.get("probability", "").strip(), where)
                       if by == MODEL else None)
        rows.append(LabelRow(line, given, path, label, by, probability))
    return rows


def resolve(rows: list[LabelRow], pictures: FolderPictures, name: str = "labels.csv"
            ) -> dict[Path, Decision]:
    """The decisions of checked `rows`, by picture (copies resolved to their picture); a file
    that is not a usable picture, or two labels for one picture, is refused."""
    owner = pictures.picture_of()
    problems = {p.path: p.reason for p in pictures.problems}
    decisions: dict[Path, Decision] = {}
    first: dict[Path, LabelRow] = {}
    for row in rows:
        if row.path not in owner:
            why = problems.get(row.path, "not a picture the folder check found")
            raise UserError(f"The file {row.given} on line {row.line} of {name} cannot be "
                            f"labelled: {why}.")
        picture = owner[row.path]
        earlier = first.setdefault(picture, row)
        if earlier.label != row.label:
            raise UserError(
                f"{earlier.given} (line {earlier.line}) and {row.given} (line {row.line}) of "
                f"{name} are the same picture but labelled {shown(earlier.label)} and "
                f"{shown(row.label)}; give them one label.")
        decisions[picture] = Decision(row.label, row.by, row.probability)
    return decisions


def read_labels(csv_path: Path | str, pictures: FolderPictures) -> dict[Path, Decision]:
    """The decisions `csv_path` gives, by picture (`read_rows`, then `resolve`)."""
    return resolve(read_rows(csv_path, pictures.root), pictures, Path(csv_path).name)


def _probability(text: str, where: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"The probability {text!r} {where} is not a number.") from None
    if not 0.0 <= value <= 1.0:
        raise UserError(f"The probability {text} {where} is not between 0 and 1.")
    return value


def labels_text(rows: list[tuple[str, str, str, float | None]]) -> str:
    """labels.csv's text: a header, then (path, label, decided_by, probability) rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for path, label, by, probability in rows:
        writer.writerow([path, label, by, "" if probability is None else f"{probability:.6f}"])
    return out.getvalue()
