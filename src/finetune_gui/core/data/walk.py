"""Listing the files below a folder as a user means it: hidden and system files left out, links
followed but never around a loop, and folders that cannot be opened named with a reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from finetune_gui.core.data.images import UNREADABLE

# Files that operating systems and tools leave in folders; never images, never worth a warning.
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", "icon\r", ".ds_store"})


def is_hidden(name: str) -> bool:
    """Dot-files, AppleDouble `._x` files and OS thumbnail databases: skipped without comment."""
    return name.startswith(".") or name.lower() in SYSTEM_FILES


def leads_back_up(link: str, current_real: str) -> bool:
    """True when the folder `link` resolves to `current_real` itself or one of its parents."""
    target = os.path.realpath(link)
    return current_real == target or current_real.startswith(target.rstrip(os.sep) + os.sep)


def folder_reason(error: OSError) -> str:
    if isinstance(error, PermissionError):
        return UNREADABLE
    return f"cannot be read ({error.strerror or error})"


def walk_files(folder: Path, unreadable: list[tuple[Path, str]] | None = None) -> Iterator[Path]:
    """Every non-hidden file below `folder`, following links but never around a loop.

    Folders that cannot be listed are appended to `unreadable` with a plain reason: os.walk
    skips them silently, and their images would vanish without a word.
    """

    def note(error: OSError) -> None:
        if unreadable is not None and error.filename:
            unreadable.append((Path(error.filename), folder_reason(error)))

    seen: set[tuple[int, int]] = set()
    for current, dirs, files in os.walk(folder, followlinks=True, onerror=note):
        try:
            stat = os.stat(current)
        except OSError:
            dirs[:] = []
            continue
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            dirs[:] = []
            continue
        seen.add(key)
        # A link to a parent (`up -> ..`) is a loop too; following it once would file every
        # other class's images (and the top-level strays) under this class as well.
        current_real = os.path.realpath(current)
        dirs[:] = sorted(
            d
            for d in dirs
            if not is_hidden(d) and not leads_back_up(os.path.join(current, d), current_real)
        )
        for name in sorted(files):
            if not is_hidden(name):
                yield Path(current) / name
