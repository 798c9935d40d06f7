"""`make run` installs the pinned web runtime as `make test` does, and opens the app without npm."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@needs_make
@pytest.mark.parametrize("target", ["run", "test"])
def test_the_web_runtime_step_comes_before_the_app_or_the_tests(target):
    # -n prints the commands without running them; the stamps are up to date after the install.
    done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    lines = done.stdout.splitlines()
    step = lines.index("sh packaging/web-runtime.sh")
    last = next(i for i, line in enumerate(lines)
                if line.startswith((".venv/bin/finetune-gui", "QT_QPA_PLATFORM=offscreen")))
    assert step < last, lines


@needs_make
def test_run_installs_what_every_export_format_needs():
    # The ONNX and web page exports need tf2onnx and onnxruntime (the onnx extra): after
    # `make run` on a fresh clone the window showed both formats "not available here".
    done = subprocess.run(["make", "-pn", "run"], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    installs = [line for line in done.stdout.splitlines() if "pip install" in line and "-e" in line]
    assert any('-e ".[onnx]"' in line for line in installs), installs


@needs_make
def test_run_depends_on_the_web_runtime_target():
    # The rule itself, whatever the stamps say: make prints it with -p (its database).
    done = subprocess.run(["make", "-pn", "run"], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    rule = next(line for line in done.stdout.splitlines() if line.startswith("run:"))
    assert "web-runtime" in rule.split(":", 1)[1].split()


def test_without_npm_the_step_says_so_and_succeeds(tmp_path):
    """A copy of the checkout's web/ without node_modules, and a PATH without npm: the step
    must end well (make goes on to open the app) and say what to do."""
    (tmp_path / "packaging").mkdir()
    shutil.copy(ROOT / "packaging" / "web-runtime.sh", tmp_path / "packaging")
    (tmp_path / "web").mkdir()
    shutil.copy(ROOT / "web" / "package-lock.json", tmp_path / "web")
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("dirname", "id"):
        (tools / name).symlink_to(shutil.which(name))
    done = subprocess.run(
        [shutil.which("sh"), str(tmp_path / "packaging" / "web-runtime.sh")],
        env={"PATH": str(tools), "HOME": str(tmp_path),
             "FINETUNE_GUI_CHROMIUM": "/usr/bin/true"},  # no apt-get for Chromium here
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "npm is not installed" in done.stdout and "make web-runtime" in done.stdout
    assert not (tmp_path / "web" / "node_modules").exists()
    assert os.listdir(tmp_path / "web") == ["package-lock.json"]
