"""Project files: round trip, and every bad file gives a plain message, never a crash."""

from __future__ import annotations

import json

import pytest

from finetune_gui.core.project import Project, ProjectError
from finetune_gui.core.settings import TrainingSettings


def test_a_saved_project_opens_with_the_same_folder_settings_runs_and_exclusions(
    tmp_path, small_shapes
):
    settings = TrainingSettings(
        backbone="resnet50", weights="none", epochs_head=2, augment="strong"
    )
    excluded = small_shapes / "circles" / "circles_003.png"
    project = Project(small_shapes, settings, [tmp_path / "runs" / "a"], [excluded])
    saved = project.save(tmp_path / "mine")
    assert saved.name == "mine.ftproj"
    again = Project.load(saved)
    assert again.data_dir == small_shapes and again.settings == settings
    assert again.runs == [tmp_path / "runs" / "a"] and again.excluded == [excluded]
    assert json.loads(saved.read_text())["data_dir"] == "data"  # relative: moves with the project


@pytest.mark.parametrize(
    "content,match",
    [
        (b"\x00\xff garbage", "damaged"),
        (b'{"format": 1', "damaged"),
        (b'{"hello": "world"}', "not a finetune-gui project"),
        (b'{"app": "finetune-gui", "format": 99}', "newer version"),
        (
            b'{"app": "finetune-gui", "format": 1, "settings": {"epochs_head": -4}}',
            "unusable settings",
        ),
        (
            b'{"app": "finetune-gui", "format": 1, "settings": {"colour": "red"}}',
            "unusable settings",
        ),
    ],
)
def test_bad_project_files_give_a_plain_message_and_are_left_unchanged(tmp_path, content, match):
    path = tmp_path / "broken.ftproj"
    path.write_bytes(content)
    with pytest.raises(ProjectError, match=match):
        Project.load(path)
    assert path.read_bytes() == content


def test_missing_project_file_and_folder_instead_of_file(tmp_path):
    with pytest.raises(ProjectError, match="does not exist"):
        Project.load(tmp_path / "nope.ftproj")
    with pytest.raises(ProjectError, match="is a folder"):
        Project.load(tmp_path)


def test_a_moved_image_folder_opens_with_a_message_and_can_be_relocated(tmp_path, small_shapes):
    excluded = small_shapes / "squares" / "squares_001.png"
    (tmp_path / "elsewhere").mkdir()
    saved = Project(small_shapes, runs=[], excluded=[excluded]).save(tmp_path / "elsewhere" / "p")
    moved = small_shapes.rename(tmp_path / "moved-data")
    project = Project.load(saved)
    assert project.data_dir_missing
    assert "was not found" in project.missing_folder_message()
    project.relocate(moved)
    assert not project.data_dir_missing and project.missing_folder_message() is None
    assert project.excluded == [moved / "squares" / "squares_001.png"]
    with pytest.raises(ProjectError, match="not a folder"):
        project.relocate(tmp_path / "missing")


def test_saving_into_a_missing_folder_is_a_plain_error(tmp_path):
    from finetune_gui.core.errors import ExportError

    with pytest.raises(ExportError, match="does not exist"):
        Project().save(tmp_path / "no" / "such" / "p.ftproj")
