"""A labelling session: the classes and every decision so far, kept in one file.

The file is written whole to a temporary name and renamed (core/files.py) after every page, so
closing the window or a crash loses at most the page on screen, and reopening the folder
continues. It lives in the app's own data folder, one file per labelled folder (the folder
itself is never written), found again by the folder's real path. Decisions are keyed by the
picture's path relative to the folder, as labels.csv names pictures.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.errors import UserError
from finetune_gui.core.files import atomic_write_text
from finetune_gui.core.label.features import FeatureSource
from finetune_gui.core.label.names import check_label

SESSION_VERSION = 1
USER, MODEL = "user", "model"


@dataclass(frozen=True)
class Decision:
    """A picture's class (None: "none of these", left out), who decided, and the model's
    probability when the model did."""

    label: str | None
    by: str = USER
    probability: float | None = None


@dataclass
class LabelSession:
    """The classes and decisions for one folder, and where they are saved."""

    folder: Path
    source: FeatureSource
    classes: list[str] = field(default_factory=list)
    decisions: dict[str, Decision] = field(default_factory=dict)  # relative path -> decision
    pages: int = 0
    subfolders_are_classes: bool | None = None
    path: Path | None = None  # the session file; None: not saved (the command line)

    # -- classes and decisions ----------------------------------------------------------------
    def add_class(self, name: str) -> str:
        """Add a class (a legal folder name, else `UserError`); adding one twice is a no-op."""
        name = check_label(name)
        if name not in self.classes:
            self.classes.append(name)
        return name

    def set_label(self, picture: str, label: str, *, by: str = USER,
                  probability: float | None = None) -> None:
        """The user (or, accepted, the model) says `picture` is `label`."""
        self.add_class(label)
        self.decisions[picture] = Decision(label, by, None if by == USER else probability)

    def leave_out(self, picture: str) -> None:
        """"None of these": the picture is in no class and is not asked again."""
        self.decisions[picture] = Decision(None, USER)

    def undecide(self, picture: str) -> None:
        self.decisions.pop(picture, None)

    def merge_classes(self, names: list[str], into: str) -> None:
        """Every decision for one of `names` becomes `into`; the others are dropped."""
        into = self.add_class(into)
        for picture, decision in list(self.decisions.items()):
            if decision.label in names:
                self.decisions[picture] = Decision(into, decision.by, decision.probability)
        self.classes = [c for c in self.classes if c == into or c not in names]

    def user_labels(self) -> dict[str, str]:
        """Pictures the user labelled (what the head learns from)."""
        return {p: d.label for p, d in self.decisions.items() if d.by == USER and d.label}

    def counts(self) -> dict[str, dict[str, int]]:
        """Per class: pictures labelled by the user and accepted from the model."""
        table = {name: {USER: 0, MODEL: 0} for name in self.classes}
        for decision in self.decisions.values():
            if decision.label is not None:
                table.setdefault(decision.label, {USER: 0, MODEL: 0})[decision.by] += 1
        return table

    # -- the file -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "version": SESSION_VERSION,
            "folder": str(self.folder),
            "source": self.source.to_dict(),
            "classes": list(self.classes),
            "pages": self.pages,
            "subfolders_are_classes": self.subfolders_are_classes,
            "decisions": {p: [d.label, d.by, d.probability] for p, d in self.decisions.items()},
        }

    def save(self) -> None:
        """Write the session file whole or not at all (no-op without a file)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: Path | str) -> LabelSession:
        """The session saved in `path` (`UserError` in words when it cannot be read)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text("utf-8"))
            if data.get("version", 0) > SESSION_VERSION:
                raise UserError(f"The labelling session {path} was saved by a newer "
                                f"finetune-gui; update the app to continue it.")
            return cls(
                folder=Path(data["folder"]),
                source=FeatureSource.from_dict(data.get("source") or {}),
                classes=list(data.get("classes") or []),
                decisions={p: Decision(label, by, probability)
                           for p, (label, by, probability) in data["decisions"].items()},
                pages=int(data.get("pages", 0)),
                subfolders_are_classes=data.get("subfolders_are_classes"),
                path=path,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"The labelling session {path} cannot be read ({exc}).") from exc


def session_file(folder: Path | str, sessions_root: Path | str) -> Path:
    """Where the session of `folder` is kept: one file per folder, named by its real path."""
    real = os.path.realpath(Path(folder).expanduser())
    digest = hashlib.sha1(real.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return Path(sessions_root) / f"{Path(real).name or 'folder'}-{digest}.json"


def saved_session(folder: Path | str, sessions_root: Path | str) -> LabelSession | None:
    """The session saved for `folder`, or None when there is none (or it cannot be read)."""
    path = session_file(folder, sessions_root)
    if not path.is_file():
        return None
    try:
        return LabelSession.load(path)
    except UserError:
        return None


def sessions_in(sessions_root: Path | str) -> list[LabelSession]:
    """Every readable session under `sessions_root`, most recently saved first."""
    root = Path(sessions_root)
    files = sorted(root.glob("*.json"), key=lambda p: -p.stat().st_mtime) if root.is_dir() else []
    found = []
    for path in files:
        try:
            found.append(LabelSession.load(path))
        except UserError:
            continue
    return found
