"""The files the frozen app carries beside its compiled modules: every file of the package that
is read at run time, found from the package itself (not a hand-kept list that the next move of
a file breaks). `finetune-gui.spec` calls `package_data`; tests/test_packaging.py checks that it
covers every file the package reads.

Read at run time: every file of `src/finetune_gui` that is not Python, and every file in a
folder named in TEXT_FOLDERS, Python sources included (a template such as `load_image.py` is
copied as text into each run and export folder; PyInstaller would otherwise only keep it as
compiled bytecode, and copying it failed in the frozen app).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "finetune_gui"
TEXT_FOLDERS = ("templates",)
NEVER = {".pyc", ".pyo"}


def read_at_run_time(path: Path, package_root: Path) -> bool:
    """True for a file of the package that the package opens as a file."""
    if path.suffix in NEVER or "__pycache__" in path.parts or path.name == "__init__.py":
        return False
    in_text_folder = bool(set(path.relative_to(package_root).parts[:-1]) & set(TEXT_FOLDERS))
    return path.suffix != ".py" or in_text_folder


def package_data(src: Path) -> list[tuple[str, str]]:
    """(file, folder in the bundle) for each file of `src/finetune_gui` read at run time; the
    folder mirrors the package, so `Path(__file__).parent / name` finds it when frozen."""
    root = Path(src) / PACKAGE
    return [
        (str(path), str(path.parent.relative_to(src)))
        for path in sorted(root.rglob("*"))
        if path.is_file() and read_at_run_time(path, root)
    ]
