"""Where the exported files go: the destination checked before any work, then published at once.

The files are staged as hidden copies beside their targets and renamed into place only after the
last copy succeeded, so a failure, a full disk or a cancel leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from finetune_gui.core.errors import ExportError
from finetune_gui.core.events import CancelToken, check_cancel
from finetune_gui.core.export.formats import FORMATS, ExportFormat, export_format
from finetune_gui.core.files import _describe_os_error, give_user_permissions


def resolve_destination(spec: ExportFormat, to: Path | str) -> tuple[Path, Path]:
    """(folder, model path) for a destination that names either the model file or a folder."""
    to = Path(to).expanduser()
    suffix = to.suffix.lower()
    if spec.suffix and suffix == spec.suffix:
        return to.parent, to
    other = {f.suffix for f in FORMATS.values() if f.suffix} - {spec.suffix}
    if suffix in other:
        hint = f"a path ending in {spec.suffix} or a folder" if spec.suffix else "a folder"
        raise ExportError(
            f"{to} ends in {suffix}, which is not a {spec.title} file; give {hint}."
        )
    return to, to / spec.file_name


def check_destination(
    run_path: Path, spec: ExportFormat, folder: Path, model_target: Path
) -> None:
    """Refuse, before any slow work, a destination that cannot be written.

    Missing folders are fine (they are created when the files are published); what cannot be
    made is refused: a file where a folder should be, or a place the user may not write in.
    """
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            raise ExportError(f"Cannot export to {folder}: {parent} is a file, not a folder.")
    existing = next(p for p in [folder, *folder.parents] if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        made = "" if existing == folder else f" (to create {folder} in it)"
        raise ExportError(
            f"Cannot export to {folder}: you may not write in {existing}{made}. Choose a "
            f"folder of your own."
        )
    if folder.is_dir() and folder.resolve() == Path(run_path).resolve():
        raise ExportError(
            f"Cannot export into the run folder {folder} itself; choose another folder."
        )
    makes_folder = not spec.suffix
    if model_target.is_dir() and not makes_folder:
        raise ExportError(f"Cannot write {model_target}: a folder of that name is in the way.")
    if model_target.exists() and not model_target.is_dir() and makes_folder:
        raise ExportError(f"Cannot write {model_target}: a file of that name is in the way.")


def destination_problem(run_path: Path | str, fmt: str, to: Path | str) -> str:
    """Why `to` cannot receive `fmt` exported from the run at `run_path`, in one plain sentence;
    "" when it can. What the window asks before it starts the export job."""
    text = str(to).strip()
    if not text:
        return "Choose a folder to save into first."
    try:
        spec = export_format(fmt)
        folder, model_target = resolve_destination(spec, Path(text))
        check_destination(Path(run_path), spec, folder, model_target)
    except ExportError as exc:
        return str(exc)
    return ""


def publish(
    pairs: list[tuple[Path, Path]], folder: Path, cancel: CancelToken | None
) -> list[Path]:
    """Copy each (source, target) to a hidden file beside its target, then rename all.

    Only renames happen after the last copy succeeded, so a full disk or a cancel while
    copying leaves the destination as it was (a folder created here is removed again).
    """
    created = [p for p in reversed([folder, *folder.parents]) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(created)
        raise ExportError(_describe_os_error(folder, exc)) from exc
    staged: list[tuple[Path, Path]] = []
    try:
        for source, target in pairs:
            check_cancel(cancel)
            staged.append((_stage(source, target), target))
        for temporary, target in staged:
            _replace(temporary, target)
        return [target for _, target in staged]
    finally:
        for temporary, _ in staged:
            _remove(temporary)
        _remove_empty(created)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this export created (outermost first in `folders`) if still empty."""
    for made in reversed(folders):
        with contextlib.suppress(OSError):
            made.rmdir()  # only an empty folder goes; one holding the export stays


def _stage(source: Path, target: Path) -> Path:
    prefix, suffix = f".{target.name}.", ".part"
    temporary = None
    try:
        if source.is_dir():
            temporary = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=target.parent))
            give_user_permissions(temporary)
            copy_tree(source, temporary)
        else:
            handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
            os.close(handle)
            temporary = Path(name)
            give_user_permissions(temporary)
            _copy_file(source, temporary)
    except OSError as exc:
        if temporary is not None:
            _remove(temporary)
        raise ExportError(_describe_os_error(target, exc)) from exc
    return temporary


def _copy_file(source: Path, target: Path) -> None:
    # Our own copy with fsync: shutil.copytree would bundle a full disk into shutil.Error
    # without an errno, and the rename must not reach the disk before the bytes do.
    with open(source, "rb") as reader, open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())


def copy_tree(source: Path, target: Path) -> None:
    """Copy a folder file by file with `_copy_file`, so each file reaches the disk."""
    for here, dirs, files in os.walk(source):
        destination = target / Path(here).relative_to(source)
        destination.mkdir(exist_ok=True)
        for name in dirs:
            (destination / name).mkdir(exist_ok=True)
        for name in files:
            _copy_file(Path(here) / name, destination / name)


def _replace(temporary: Path, target: Path) -> None:
    try:
        if temporary.is_dir() and target.is_dir():
            # A folder cannot be renamed over a non-empty folder: move the old one aside first.
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            os.replace(temporary, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, target)
    except OSError as exc:
        raise ExportError(_describe_os_error(target, exc)) from exc


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()

