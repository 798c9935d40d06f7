"""Sort a folder: copy each image into OUT/<class>/ or OUT/not sure/ by a run's prediction.

The source is only read: files are copied (never moved), each copy is written to a temporary
name and renamed, and a name already taken gets " (2)", " (3)", ... before its extension.
Unreadable files are listed with their reason and copied nowhere. `predictions.csv` in OUT has
the same rows `finetune-gui predict RUN FOLDER --csv` writes.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.errors import UserError
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageStarted,
    ignore_progress,
)
from finetune_gui.core.words import counted

NOT_SURE = "not sure"
CSV_NAME = "predictions.csv"


@dataclass
class SortSummary:
    """What a sort did: copies per folder, and the files it could not read (with the reason)."""

    out: Path
    copied: Counter = field(default_factory=Counter)  # folder name -> images copied
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    renamed: int = 0  # copies that got a new name because the name was taken
    cancelled: bool = False

    @property
    def total_copied(self) -> int:
        return sum(self.copied.values())

    def text(self) -> str:
        parts = [f"{n} to {name}" for name, n in sorted(self.copied.items())]
        lines = [
            f"{'Stopped: ' if self.cancelled else ''}"
            f"{counted(self.total_copied, 'image')} copied into "
            f"{self.out}" + (f" ({', '.join(parts)})" if parts else "") + "."
        ]
        if self.renamed:
            lines.append(f"{counted(self.renamed, 'copy', 'copies')} renamed because the name "
                         f"was already taken.")
        if self.unreadable:
            lines.append(f"{counted(len(self.unreadable), 'file')} could not be read and "
                         f"{'was' if len(self.unreadable) == 1 else 'were'} not copied:")
            lines += [f"  {path}: {reason}" for path, reason in self.unreadable]
        return "\n".join(lines)


def check_destination(source: Path, out: Path) -> None:
    """Refuse an OUT inside the source (the copies would be sorted again) or that is a file."""
    source_real, out_real = os.path.realpath(source), os.path.realpath(out)
    if out_real == source_real or out_real.startswith(source_real.rstrip(os.sep) + os.sep):
        raise UserError(
            f"{out} is inside the folder being sorted ({source}); choose a folder outside it."
        )
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; choose a folder to sort into.")
    if not out.parent.is_dir():
        raise UserError(f"Cannot create {out}: the folder {out.parent} does not exist.")


def free_name(folder: Path, name: str, taken: set[str]) -> str:
    """`name`, or `stem (2).ext`, `stem (3).ext`... the first not in `folder` nor `taken`."""
    stem, suffix = os.path.splitext(name)
    candidate, n = name, 1
    while candidate in taken or (folder / candidate).exists():
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    return candidate


def sort_folder(
    run,
    source: Path | str,
    out: Path | str,
    *,
    model=None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> SortSummary:
    """Copy every readable image below `source` into `out`/<class or "not sure">/."""
    from finetune_gui.core.errors import Cancelled
    from finetune_gui.core.files import atomic_path
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.run.predict import PredictionCsv, list_images, predict_paths

    run = run if isinstance(run, RunFolder) else RunFolder.open(run)
    source, out = Path(source).expanduser(), Path(out).expanduser()
    paths, unreadable_folders = list_images(source)
    check_destination(source, out)
    out.mkdir(exist_ok=True)
    summary = SortSummary(out, unreadable=list(unreadable_folders))
    taken: dict[str, set[str]] = {}
    progress(StageStarted("sort", len(paths), f"Sorting {counted(len(paths), 'file')} into {out}"))
    with atomic_path(out / CSV_NAME) as csv_tmp, open(csv_tmp, "w", newline="", encoding="utf-8") as handle:
        table = PredictionCsv(handle)
        try:
            for p in predict_paths(
                run, paths, model=model, total=len(paths), progress=progress, cancel=cancel
            ):
                table.write(p)
                if p.error:
                    summary.unreadable.append((p.path, p.error))
                    continue
                name = NOT_SURE if p.unsure else p.label
                folder = out / _safe_folder_name(name)
                folder.mkdir(exist_ok=True)
                names = taken.setdefault(name, set())
                target = free_name(folder, p.path.name, names)
                names.add(target)
                summary.renamed += target != p.path.name
                with atomic_path(folder / target) as tmp:
                    shutil.copyfile(p.path, tmp)
                    shutil.copystat(p.path, tmp)
                summary.copied[name] += 1
        except Cancelled:
            summary.cancelled = True
        handle.flush()
    return summary


def _safe_folder_name(label: str) -> str:
    """A class name as one folder name (a "/" in a label would make a sub-folder)."""
    cleaned = label.replace("/", "_").replace("\\", "_").strip() or "unnamed"
    return "_" + cleaned if cleaned in (".", "..") else cleaned
