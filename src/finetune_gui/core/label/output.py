"""The labelled pictures copied out: OUT/<class>/ and OUT/labels.csv, ready to train on.

The source folder is only read: every picture is copied (never moved) to a temporary name and
renamed, a name already taken in its class folder gets " (2)", and copies of a picture go with
it. OUT must be new or empty, so an earlier output is never mixed in, and everything is
checked before the first file is written: a refusal leaves nothing behind.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.errors import Cancelled, UserError
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.label.labels_csv import labels_text
from finetune_gui.core.label.pictures import FolderPictures
from finetune_gui.core.label.session import MODEL, USER, Decision
from finetune_gui.core.words import counted

LABELS_FILE = "labels.csv"


@dataclass
class OutputSummary:
    """What was copied where: files per class and by who decided."""

    out: Path
    per_class: Counter = field(default_factory=Counter)
    by: Counter = field(default_factory=Counter)  # "user" / "model" -> files
    renamed: int = 0
    cancelled: bool = False

    @property
    def total(self) -> int:
        return sum(self.per_class.values())

    def text(self) -> str:
        parts = ", ".join(f"{name}: {n}" for name, n in sorted(self.per_class.items()))
        lines = [f"{'Stopped: ' if self.cancelled else ''}"
                 f"{counted(self.total, 'picture')} copied into "
                 f"{self.out} ({parts}); {self.by[USER]} labelled by you, {self.by[MODEL]} "
                 f"accepted from the model."]
        if self.renamed:
            lines.append(f"{counted(self.renamed, 'copy', 'copies')} renamed because the name "
                         f"was already taken.")
        lines.append(f"Every label: {self.out / LABELS_FILE}")
        return "\n".join(lines)


def check_output_folder(source: Path, out: Path) -> None:
    """Refuse an OUT inside the source, a file, one whose parent is missing, or one that
    already holds files, in one sentence."""
    from finetune_gui.core.run.sort import check_destination

    check_destination(source, out)
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"{out} already holds files; choose a new or empty folder, so no earlier "
                        f"output is mixed in.")


def write_output(
    pictures: FolderPictures,
    decisions: dict[Path, Decision],
    out: Path | str,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> OutputSummary:
    """Copy every picture with a class (and its copies) into `out`/<class>/ and write
    `out`/labels.csv; pictures left out ("none of these") and undecided ones stay behind."""
    from finetune_gui.core.files import atomic_path, atomic_write_text
    from finetune_gui.core.run.sort import free_name

    out = Path(out).expanduser().absolute()
    check_output_folder(pictures.root, out)
    chosen = sorted((p, d) for p, d in decisions.items() if d.label is not None)
    files = [(path, d) for p, d in chosen for path in (p, *pictures.copies_of(p))]
    out.mkdir(exist_ok=True)
    summary = OutputSummary(out)
    taken: dict[str, set[str]] = {}
    rows: list[tuple[str, str, str, float | None]] = []
    progress(StageStarted("output", len(files),
                          f"Copying {counted(len(files), 'picture')} into {out}"))
    try:
        for done, (path, decision) in enumerate(files, start=1):
            check_cancel(cancel)
            folder = out / decision.label
            folder.mkdir(exist_ok=True)
            names = taken.setdefault(decision.label, set())
            target = free_name(folder, path.name, names)
            names.add(target)
            summary.renamed += target != path.name
            with atomic_path(folder / target) as tmp:
                shutil.copyfile(path, tmp)
                shutil.copystat(path, tmp)
            rows.append((pictures.relative(path), decision.label, decision.by,
                         decision.probability))
            summary.per_class[decision.label] += 1
            summary.by[decision.by] += 1
            progress(StageProgress("output", done, len(files)))
    except Cancelled:
        summary.cancelled = True
    atomic_write_text(out / LABELS_FILE, labels_text(rows))  # what was copied, even when stopped
    return summary
