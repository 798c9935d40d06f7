"""Writing files so that a crash or a full disk never leaves half a file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from finetune_gui.core.errors import ExportError


def _describe_os_error(target: Path, exc: OSError) -> str:
    parent = target.parent
    if isinstance(exc, FileNotFoundError) or not parent.exists():
        return f"Cannot write {target}: the folder {parent} does not exist."
    if parent.exists() and not parent.is_dir():
        return f"Cannot write {target}: {parent} is a file, not a folder."
    if exc.errno == 28:
        return f"Cannot write {target}: the disk is full."
    if isinstance(exc, PermissionError) or exc.errno in (1, 13, 30):
        return f"Cannot write {target}: permission denied or read-only location."
    return f"Cannot write {target}: {exc.strerror or exc}."


def unwritable_reason(target: Path | str) -> str:
    """Why the file `target` cannot be written, in plain words ("" when it can): said before the
    work that makes it (a report, a heatmap, a CSV), not after."""
    target = Path(target).expanduser()
    folder = target.parent
    if not folder.exists():
        return f"Cannot write {target}: the folder {folder} does not exist."
    if not folder.is_dir():
        return f"Cannot write {target}: {folder} is a file, not a folder."
    if target.is_dir():
        return f"Cannot write {target}: a folder of that name is in the way."
    if not os.access(folder, os.W_OK):
        return f"Cannot write {target}: you may not write in {folder}."
    return ""


def require_writable(target: Path | str) -> None:
    """Refuse (`UserError`) a file that `unwritable_reason` says cannot be written."""
    from finetune_gui.core.errors import UserError

    reason = unwritable_reason(target)
    if reason:
        raise UserError(reason)


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere the only way to read it is to set it; the lock keeps our own threads out.
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def give_user_permissions(path: Path | str) -> None:
    """Give a file or folder made by `tempfile` (always private, 0600/0700) the permissions any
    other program's new file gets: 0666 or 0777 less the user's umask."""
    path = Path(path)
    base = 0o777 if path.is_dir() else 0o666
    os.chmod(path, base & ~current_umask())


@contextlib.contextmanager
def atomic_path(target: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it onto `target`, else delete it."""
    target = Path(target)
    fd = None
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp", dir=target.parent
        )
    except OSError as exc:
        raise ExportError(_describe_os_error(target, exc)) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        give_user_permissions(tmp)
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        raise ExportError(_describe_os_error(target, exc)) from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: Path | str, data: bytes) -> None:
    """Write `data` to `target` all at once or not at all."""
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(target: Path | str, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_with(target: Path | str, writer: Callable[[Path], None], suffix: str = "") -> None:
    """Let `writer` fill a temporary path (e.g. `model.save`), then move it onto `target`."""
    with atomic_path(target, suffix=suffix) as tmp:
        writer(tmp)
