"""Files we write get the user's normal permissions, not tempfile's private 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from finetune_gui.core.export.destination import publish
from finetune_gui.core.files import atomic_write_text, atomic_write_with, current_umask
from finetune_gui.core.project import Project


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_the_process_umask(umask):
    assert current_umask() == umask


def test_atomic_writes_follow_the_umask(tmp_path, umask):
    atomic_write_text(tmp_path / "report.html", "<p>hi</p>")
    atomic_write_with(tmp_path / "model.keras", lambda tmp: tmp.write_bytes(b"x"))
    assert mode(tmp_path / "report.html") == 0o666 & ~umask
    assert mode(tmp_path / "model.keras") == 0o666 & ~umask


def test_project_files_follow_the_umask(tmp_path, umask):
    target = tmp_path / "mine.ftproj"
    Project().save(target)
    assert mode(target) == 0o666 & ~umask


def test_exported_files_and_folders_follow_the_umask(tmp_path, umask):
    source = tmp_path / "build"
    (source / "saved_model" / "variables").mkdir(parents=True)
    (source / "saved_model" / "saved_model.pb").write_bytes(b"pb")
    (source / "model.tflite").write_bytes(b"tfl")
    out = tmp_path / "shipped"
    pairs = [(source / "model.tflite", out / "model.tflite"),
             (source / "saved_model", out / "saved_model")]
    publish(pairs, out, cancel=None)
    assert mode(out / "model.tflite") == 0o666 & ~umask
    assert mode(out / "saved_model") == 0o777 & ~umask
    assert mode(out / "saved_model" / "saved_model.pb") == 0o666 & ~umask
