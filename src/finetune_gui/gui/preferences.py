"""What the app remembers between sessions (QSettings): window geometry, the last session's folder,
settings and runs, and the recent project files. Tests pass their own QSettings file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from finetune_gui.core.errors import UserError
from finetune_gui.core.settings import TrainingSettings

log = logging.getLogger(__name__)
MAX_RECENT = 8


def default_preferences() -> QSettings:
    """The user's own settings store (native format, per user)."""
    return QSettings("finetune-gui", "finetune-gui")


class Preferences:
    """Typed access to a QSettings store."""

    def __init__(self, store: QSettings) -> None:
        self.store = store

    def _json(self, key: str, default):
        raw = self.store.value(key)
        if not raw:
            return default
        try:
            return json.loads(str(raw))
        except ValueError:
            log.warning("ignoring unreadable preference %s", key)
            return default

    def _set_json(self, key: str, value) -> None:
        self.store.setValue(key, json.dumps(value))

    # -- window -------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self.store.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, geometry: QByteArray) -> None:
        self.store.setValue("window/geometry", geometry)

    @property
    def page(self) -> str:
        return str(self.store.value("session/page", "data"))

    @page.setter
    def page(self, value: str) -> None:
        self.store.setValue("session/page", value)

    # -- the last session ---------------------------------------------------------------------
    @property
    def has_session(self) -> bool:
        return self.store.contains("session/settings")

    def data_dir(self) -> Path | None:
        value = self.store.value("session/data_dir", "")
        return Path(str(value)) if value else None

    def settings(self) -> TrainingSettings | None:
        data = self._json("session/settings", None)
        if data is None:
            return None
        try:
            return TrainingSettings.from_dict(data)
        except (UserError, TypeError) as exc:  # e.g. a weights file that was deleted since
            log.warning("ignoring remembered settings: %s", exc)
            return None

    def runs(self) -> list[Path]:
        return [Path(p) for p in self._json("session/runs", []) if Path(p).is_dir()]

    def remember_session(self, data_dir: Path | None, settings: TrainingSettings,
                         runs: list[Path]) -> None:
        self.store.setValue("session/data_dir", str(data_dir) if data_dir else "")
        self._set_json("session/settings", settings.to_dict())
        self._set_json("session/runs", [str(p) for p in runs])

    # -- folders the user picked last ---------------------------------------------------------
    def last_folder(self, purpose: str) -> str:
        return str(self.store.value(f"folders/{purpose}", ""))

    def set_last_folder(self, purpose: str, folder: Path | str) -> None:
        self.store.setValue(f"folders/{purpose}", str(folder))

    def choice(self, key: str, default: str = "") -> str:
        return str(self.store.value(f"choices/{key}", default))

    def set_choice(self, key: str, value: str) -> None:
        self.store.setValue(f"choices/{key}", value)

    # -- recent projects ----------------------------------------------------------------------
    def recent_projects(self) -> list[Path]:
        return [Path(p) for p in self._json("recent_projects", [])]

    def add_recent_project(self, path: Path) -> None:
        paths = [str(path)] + [str(p) for p in self.recent_projects() if p != path]
        self._set_json("recent_projects", paths[:MAX_RECENT])

    def remove_recent_project(self, path: Path) -> None:
        self._set_json("recent_projects", [str(p) for p in self.recent_projects() if p != path])

    def sync(self) -> None:
        self.store.sync()
