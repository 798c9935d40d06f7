"""A project file: the image folder, the settings, the runs, and the images left out.

Small JSON, written atomically. Opening one never crashes: a damaged file, a file from a newer
version, or a folder that has moved each give a plain message (and, for a moved folder, the
project still opens so the user can point it at the new place).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.errors import SettingsError, UserError
from finetune_gui.core.files import atomic_write_text
from finetune_gui.core.settings import TrainingSettings

PROJECT_FORMAT = 1
PROJECT_SUFFIX = ".ftproj"


class ProjectError(UserError):
    """A project file cannot be opened or saved."""


@dataclass
class Project:
    """What the user is working on; the GUI's state and `train --project` both read it."""

    data_dir: Path | None = None
    settings: TrainingSettings = field(default_factory=TrainingSettings)
    runs: list[Path] = field(default_factory=list)
    excluded: list[Path] = field(default_factory=list)  # images left out of the next run
    path: Path | None = None  # where this project was loaded from or saved to
    # For an autosaved copy: the project file it is a copy of (None for an untitled project).
    origin: Path | None = None

    @property
    def data_dir_missing(self) -> bool:
        """True when the project names a folder that is not there (moved, renamed, unplugged)."""
        return self.data_dir is not None and not self.data_dir.is_dir()

    def to_dict(self) -> dict:
        base = self.path.parent if self.path else None
        data = {
            "format": PROJECT_FORMAT,
            "app": "finetune-gui",
            "data_dir": _portable(self.data_dir, base),
            "settings": self.settings.to_dict(),
            "runs": [_portable(r, base) for r in self.runs],
            "excluded": [str(p) for p in self.excluded],
        }
        if self.origin is not None:
            data["origin"] = str(self.origin)
        return data

    def save(self, path: Path | str | None = None) -> Path:
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ProjectError("Choose where to save the project first.")
        if target.suffix != PROJECT_SUFFIX:
            target = target.with_name(target.name + PROJECT_SUFFIX)
        self.path = target
        atomic_write_text(target, json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
        return target

    @classmethod
    def load(cls, path: Path | str) -> Project:
        path = Path(path).expanduser()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ProjectError(f"The project file {path} does not exist.") from exc
        except IsADirectoryError as exc:
            raise ProjectError(f"{path} is a folder, not a project file.") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProjectError(f"The project file {path} is damaged and cannot be read.") from exc
        except OSError as exc:
            raise ProjectError(f"The project file {path} cannot be read: {exc.strerror}.") from exc
        if not isinstance(data, dict) or data.get("app") != "finetune-gui":
            raise ProjectError(f"{path} is not a finetune-gui project file.")
        version = data.get("format")
        if not isinstance(version, int) or version > PROJECT_FORMAT:
            raise ProjectError(
                f"The project {path.name} was saved by a newer version of finetune-gui "
                f"(format {version}); update the app to open it."
            )
        base = path.parent
        try:
            settings = TrainingSettings.from_dict(data.get("settings") or {})
        except (SettingsError, TypeError) as exc:
            raise ProjectError(f"The project {path.name} has unusable settings: {exc}") from exc
        return cls(
            data_dir=_resolve(data.get("data_dir"), base),
            settings=settings,
            runs=[p for p in (_resolve(r, base) for r in data.get("runs", [])) if p is not None],
            excluded=[Path(p) for p in data.get("excluded", [])],
            path=path,
            origin=Path(data["origin"]) if data.get("origin") else None,
        )

    def relocate(self, new_data_dir: Path | str) -> None:
        """Point the project at the folder's new place; excluded images move with it."""
        new_dir = Path(new_data_dir)
        if not new_dir.is_dir():
            raise ProjectError(f"{new_dir} is not a folder.")
        old = self.data_dir
        if old is not None:
            moved = []
            for p in self.excluded:
                try:
                    moved.append(new_dir / p.relative_to(old))
                except ValueError:
                    moved.append(p)
            self.excluded = moved
        self.data_dir = new_dir

    def missing_folder_message(self) -> str | None:
        if not self.data_dir_missing:
            return None
        return (
            f"The image folder {self.data_dir} was not found; it may have been moved or renamed. "
            f"Choose its new location to continue."
        )


def _portable(path: Path | None, base: Path | None) -> str | None:
    """Relative to the project file when below it, so a project and its data can move together."""
    if path is None:
        return None
    if base is not None:
        try:
            return Path(path).resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def _resolve(value: str | None, base: Path) -> Path | None:
    if not value:
        return None
    candidate = Path(value)
    return candidate if candidate.is_absolute() else base / candidate
