"""`finetune-gui --version` and the facts behind the About dialog."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

from finetune_gui import __version__
from finetune_gui.about import version_facts, version_text
from finetune_gui.core.training.devices import GpuInfo


def test_version_prints_every_version_on_stdout_and_nothing_else():
    done = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "--version"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"},  # TensorFlow at its chattiest
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # TensorFlow's start-up messages went to the log file
    lines = done.stdout.splitlines()
    assert lines[0] == f"finetune-gui {__version__}"
    facts = dict(line.split(":", 1) for line in lines[1:])
    facts = {name: value.strip() for name, value in facts.items()}
    assert facts["TensorFlow"] == version("tensorflow")
    assert facts["Keras"] == version("keras")
    assert facts["Qt"].endswith(f"(PySide6 {version('PySide6-Essentials')})")
    assert facts["Python"].startswith(".".join(map(str, sys.version_info[:3])))
    assert facts["GPU"]  # "none: CPU only" here; the GPU names on a machine with one


def test_gpus_are_named_with_their_compute_capability_or_cpu_only():
    assert version_facts(gpu_lister=list)["GPU"] == "none: CPU only"
    gpus = [GpuInfo("Fake A100", (8, 0)), GpuInfo("Fake old card", None)]
    assert (
        version_facts(gpu_lister=lambda: gpus)["GPU"]
        == "Fake A100 (compute capability 8.0), Fake old card"
    )


def test_a_missing_qt_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(sys.modules, "PySide6", None)  # `import PySide6` now fails
    assert version_facts(gpu_lister=list)["Qt"] == "not installed"


def test_version_text_is_one_name_and_version_a_line():
    text = version_text(gpu_lister=list)
    first, *rest = text.splitlines()
    assert first == f"finetune-gui {__version__}"
    names = [line.split(":", 1)[0] for line in rest]
    assert names == ["Python", "TensorFlow", "Keras", "Qt", "GPU", "System"]
    assert "GPU:        none: CPU only" in text  # values line up in one column
