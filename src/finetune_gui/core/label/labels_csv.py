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


def read_labels(csv_path: Path | str, pictures: FolderPictures) -> dict[Path, Decision]:
    """The decisions `csv_path` gives, by picture (copies resolved to their picture)."""
    csv_path = Path(csv_path)
    name = csv_path.name
    reader = csv.reader(io.StringIO(_read_text(csv_path)))
    header = [cell.strip().lower() for cell in next(reader, [])]
    if "path" not in header or "label" not in header:
        found = ", ".join(h for h in header if h) or "none"
        raise UserError(f"The labels file {csv_path} has the columns {found}; it needs a header "
                        f"row with the columns path and label.")
    at = {column: header.index(column) for column in COLUMNS if column in header}
    owner = pictures.picture_of()
    problems = {p.path: p.reason for p in pictures.problems}
    decisions: dict[Path, Decision] = {}
    first_line: dict[Path, tuple[int, str]] = {}
    for line, row in enumerate(reader, start=2):
        cell = {column: (row[i].strip() if i < len(row) else "") for column, i in at.items()}
        given, label = cell["path"], row[at["label"]] if at["label"] < len(row) else ""
        if not given and not label.strip():
            continue  # a blank line
        where = f"on line {line} of {name}"
        if not given:
            raise UserError(f"The class {shown(label)} {where} has no picture (its path is "
                            f"empty); give each class at least one picture.")
        if not label:
            raise UserError(f"The picture {given} {where} has no label.")
        check_label(label, where)
        path = Path(os.path.normpath(pictures.root / given))
        if not _inside(pictures.root, path):
            raise UserError(f"The path {given} {where} is outside the folder {pictures.root}.")
        if not path.exists():
            raise UserError(f"The picture {given} {where} does not exist in {pictures.root}.")
        if path not in owner:
            why = problems.get(path, "not a picture the folder check found")
            raise UserError(f"The file {given} {where} cannot be labelled: {why}.")
        picture = owner[path]
        by = MODEL if cell.get("decided_by", "").lower() == MODEL else USER
        probability = _probability(cell.get("probability", ""), where) if by == MODEL else None
        earlier = decisions.get(picture)
        if earlier is not None and earlier.label != label:
            other_line, other = first_line[picture]
            raise UserError(
                f"{other} (line {other_line}) and {given} (line {line}) of {name} are the same "
                f"picture but labelled {shown(earlier.label)} and {shown(label)}; give them one "
                f"label.")
        decisions[picture] = Decision(label, by, probability)
        first_line.setdefault(picture, (line, given))
    return decisions


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
