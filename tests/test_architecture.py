"""The engine's import graph has no circles, between modules or between its subpackages.

The graph is read from the source (every `import` statement, including those inside functions,
which Python runs late and which therefore hide a circle until the day they run), so the test
needs neither TensorFlow nor Qt and sees imports that a run of the program might never reach.
"""

from __future__ import annotations

import ast
from pathlib import Path

import finetune_gui.core

CORE = "finetune_gui.core"
CORE_DIR = Path(finetune_gui.core.__file__).parent
# Imports under `if TYPE_CHECKING:` are for type hints only and never run: they are left out.
KNOWN_MODULE_EDGES: set[tuple[str, str]] = set()
KNOWN_PACKAGE_EDGES: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE_DIR.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(CORE_DIR.rglob("*.py"))}


def imported_names(path: Path, name: str) -> set[str]:
    """Every module name `path` imports, absolute, with `from a import b` as both a and a.b."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """Core module -> the core modules it imports (names that are not modules are dropped)."""
    modules = core_modules()
    return {
        name: {
            other
            for other in imported_names(path, name)
            if other in modules and other != name and (name, other) not in KNOWN_MODULE_EDGES
        }
        for name, path in modules.items()
    }


def subpackage(name: str) -> str:
    """finetune_gui.core.export.job -> finetune_gui.core.export; core's own modules stay."""
    parts = name.split(".")
    return ".".join(parts[:3]) if len(parts) > 3 else name


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One circle in `graph` as [a, b, ..., a], or [] when there is none."""
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        trail.append(node)
        for other in sorted(graph.get(node, ())):
            if state.get(other) == "open":
                return [*trail[trail.index(other):], other]
            if other not in state:
                cycle = visit(other)
                if cycle:
                    return cycle
        state[node] = "done"
        trail.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph with each subpackage's modules merged into one node."""
    packages: dict[str, set[str]] = {}
    for name, imports in graph.items():
        here = subpackage(name)
        packages.setdefault(here, set()).update(
            there
            for there in map(subpackage, imports)
            if there != here and (here, there) not in KNOWN_PACKAGE_EDGES
        )
    return packages


def test_the_graph_sees_imports_inside_functions_and_relative_ones(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "import os\n"
        "from . import sibling\n"
        "def late():\n"
        "    from finetune_gui.core.run.folder import RunFolder\n"
    )
    names = imported_names(source, "finetune_gui.core.export.sample")
    assert {"os", "finetune_gui.core.export.sibling", "finetune_gui.core.run.folder"} <= names
    graph = import_graph()
    assert "finetune_gui.core.run.folder" in graph["finetune_gui.core.export.job"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_core_module_imports_itself_back_in_a_circle():
    cycle = find_cycle(import_graph())
    assert cycle == [], "import circle: " + " -> ".join(cycle)


def test_no_circle_between_core_subpackages():
    packages = package_graph(import_graph())
    assert {"finetune_gui.core.export", "finetune_gui.core.run"} <= set(packages)
    cycle = find_cycle(packages)
    assert cycle == [], "import circle between packages: " + " -> ".join(cycle)


def test_the_run_folder_does_not_export():
    """A run folder is read by the export; the export is called by whoever wants one."""
    packages = package_graph(import_graph())
    assert "finetune_gui.core.run" in packages["finetune_gui.core.export"]
    assert "finetune_gui.core.export" not in packages["finetune_gui.core.run"]


def test_every_import_of_the_package_names_a_module_that_exists():
    """An import inside a function runs late: one left pointing at a moved module fails only on
    the day that code path runs, so every `finetune_gui` import in the source is checked here."""
    root = CORE_DIR.parent
    modules = {
        module_name_any(path) for path in root.rglob("*.py")
    }
    stale = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            stale += [
                f"{path.relative_to(root.parent)}:{node.lineno} {name}"
                for name in names
                if name.startswith("finetune_gui") and name not in modules
            ]
    assert stale == []


def module_name_any(path: Path) -> str:
    parts = path.relative_to(CORE_DIR.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_modules_scheduled_first_still_exist():
    """A renamed module would silently lose its early start (tests/conftest.py)."""
    from tests.conftest import LONGEST_MODULES_FIRST

    root = Path(__file__).parent.parent
    assert [m for m in LONGEST_MODULES_FIRST if not (root / m).is_file()] == []


# The README's size rule: "No engine file is over 400 lines and none at all over 600". A file
# that grows past it is split by idea; `# fmt: skip` keeps a table's layout, never a line count.
ENGINE_LIMIT, ANY_LIMIT, FMT_SKIPS_ALLOWED = 400, 600, 5


def test_no_engine_file_over_400_lines_and_no_file_over_600():
    package = Path(finetune_gui.core.__file__).parent.parent
    too_long = {}
    for path in sorted(package.rglob("*.py")):
        limit = ENGINE_LIMIT if "core" in path.relative_to(package).parts[:1] else ANY_LIMIT
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            too_long[str(path.relative_to(package))] = lines
    assert not too_long, f"split these by idea: {too_long}"


def test_fmt_skip_is_kept_for_tables():
    package = Path(finetune_gui.core.__file__).parent.parent
    skips = [f"{path.relative_to(package)}:{number}"
             for path in sorted(package.rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if "# fmt: skip" in line]
    assert len(skips) <= FMT_SKIPS_ALLOWED, skips
