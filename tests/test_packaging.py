"""The frozen app carries every file the package reads at run time (packaging/bundle_data.py).

The files are found here independently of bundle_data's rule: every file of the package that is
not Python, and every file a module names in a module-level `Path` (how the package points at
its templates: `LOADER_TEMPLATE = Path(__file__).parent / "load_image.py"`). A file found here
and missing from the spec's data entries is a frozen app that fails when it reads it.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE_ROOT = SRC / "finetune_gui"
sys.path.insert(0, str(ROOT / "packaging"))
from bundle_data import package_data  # noqa: E402


def module_names() -> list[str]:
    """Every module of the package except the `__main__` ones (importing those runs the app)."""
    import finetune_gui

    return [finetune_gui.__name__] + [
        info.name
        for info in pkgutil.walk_packages(finetune_gui.__path__, f"{finetune_gui.__name__}.")
        if not info.name.endswith("__main__")
    ]


def files_named_by_modules() -> set[Path]:
    """Files inside the package that a module names in a module-level Path (or str), other
    than its own `__file__`."""
    found = set()
    for name in module_names():
        module = importlib.import_module(name)
        for key, value in vars(module).items():
            if key.startswith("__") or not isinstance(value, Path | str) or not str(value).startswith(str(PACKAGE_ROOT)):
                continue
            path = Path(value)
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(path.resolve())
    return found


def non_python_files() -> set[Path]:
    return {
        p.resolve() for p in PACKAGE_ROOT.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }  # fmt: skip


def test_every_file_the_package_reads_at_run_time_is_in_the_bundle():
    bundled = {Path(source).resolve(): folder for source, folder in package_data(SRC)}
    needed = files_named_by_modules() | non_python_files()
    # The template that every run copies: the file whose absence stopped the frozen app.
    assert (PACKAGE_ROOT / "core" / "export" / "templates" / "load_image.py").resolve() in needed
    missing = sorted(str(p.relative_to(PACKAGE_ROOT)) for p in needed - set(bundled))
    assert not missing, f"read at run time but not bundled by the spec: {missing}"
    for path in needed:
        # Bundled at its own place in the package, where `Path(__file__).parent` finds it.
        assert bundled[path] == str(path.parent.relative_to(SRC))


def test_compiled_modules_are_not_bundled_again_as_files():
    bundled = [Path(source) for source, _ in package_data(SRC)]
    assert all(p.name != "__init__.py" and p.suffix != ".pyc" for p in bundled)
    assert not [p for p in bundled if p.suffix == ".py" and "templates" not in p.parts]


def test_the_spec_takes_its_data_entries_from_the_package():
    spec = (ROOT / "packaging" / "finetune-gui.spec").read_text()
    assert "*package_data(ROOT / \"src\")" in spec


@pytest.mark.parametrize("name", ["notes.txt", "shape.svg", "page.html"])
def test_a_new_data_file_anywhere_in_the_package_is_bundled(tmp_path, name):
    package = tmp_path / "finetune_gui" / "core" / "somewhere"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "module.py").write_text("")
    (package / name).write_text("data")
    assert package_data(tmp_path) == [(str(package / name), "finetune_gui/core/somewhere")]
