"""The layers stay apart: the engine and the child-process jobs never load Qt, and the modules
the window needs at start never load TensorFlow (seconds of start-up for nothing)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import finetune_gui.core
import finetune_gui.jobs

QT_PACKAGES = ("PySide6", "pyqtgraph")
# Modules that must stay light: settings, events, data checks, run folders, the plan.
WITHOUT_TENSORFLOW = (
    "finetune_gui.core.errors",
    "finetune_gui.core.events",
    "finetune_gui.core.files",
    "finetune_gui.core.settings",
    "finetune_gui.core.project",
    "finetune_gui.core.data.images",
    "finetune_gui.core.data.scan",
    "finetune_gui.core.data.split",
    "finetune_gui.core.data.duplicates",
    "finetune_gui.core.data.augment",
    "finetune_gui.core.model.backbones",
    "finetune_gui.core.model.build",
    "finetune_gui.core.run.folder",
    "finetune_gui.core.run.compare",
    "finetune_gui.core.run.naming",
    "finetune_gui.core.training.plan",
)


def all_modules(package) -> list[str]:
    found = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        found.append(info.name)
    return sorted(found)


def loaded_after_import(modules: list[str], watched: tuple[str, ...]) -> dict[str, list[str]]:
    """Import each module in turn in one fresh interpreter; which watched packages each
    import brought in (cumulative imports are fine: the first module to load one is named)."""
    script = (
        "import importlib, json, sys\n"
        f"watched = {list(watched)!r}\n"
        "found = {}\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    hits = [w for w in watched if w in sys.modules]\n"
        "    if hits:\n"
        "        found[name] = hits\n"
        "        break\n"
        "print(json.dumps(found))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("package", [finetune_gui.core, finetune_gui.jobs],
                         ids=["core", "jobs"])
def test_no_engine_or_job_module_loads_qt(package):
    modules = all_modules(package)
    assert len(modules) > 3
    assert loaded_after_import(modules, QT_PACKAGES) == {}


@pytest.mark.parametrize("module", WITHOUT_TENSORFLOW)
def test_light_modules_do_not_load_tensorflow(module):
    assert loaded_after_import([module], ("tensorflow", "keras")) == {}
