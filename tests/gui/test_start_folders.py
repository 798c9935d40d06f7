"""Every file dialog starts where the user's images or run are (gui/start_folder.py), never at
the home folder or the folder of an unrelated earlier choice. The dialogs are replaced by
recorders of the folder they were given."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtWidgets import QFileDialog

from finetune_gui.gui.start_folder import IMAGE_FOLDER, PROJECT, WEIGHTS, start_folder
from finetune_gui.gui.state import LoadedRun
from finetune_gui.gui.widgets.sort_folder import SortFolderDialog


@pytest.fixture
def dialogs(monkeypatch) -> list[tuple[str, str]]:
    """(title, start folder) of each file dialog opened; every one is cancelled."""
    asked = []

    def recorder(answer):
        def dialog(parent, title, start="", *rest, **kwargs):
            asked.append((title, start))
            return answer
        return dialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", recorder(("", "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", recorder(([], "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", recorder(("", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", recorder(""))
    return asked


def run_images(run: Path) -> Path:
    return Path(json.loads((run / "run.json").read_text())["data"])


@pytest.fixture
def window(qtbot, make_window, trained_run, tmp_path):
    """A window on the run's image folder with the run open; the export folder field holds an
    unrelated earlier choice, as a restored session does."""
    window = make_window(start=False)
    with qtbot.waitSignal(window.pages["data"].scan_finished, timeout=30_000):
        window.state.set_data_dir(run_images(trained_run))
    window.state.add_run(LoadedRun.read(trained_run))
    elsewhere = tmp_path / "unrelated"
    elsewhere.mkdir()
    window.pages["export"].restore_choices(str(elsewhere), "keras")
    return window


def only_start(dialogs) -> str:
    assert len(dialogs) == 1, dialogs
    return dialogs[0][1]


IMAGE_DIALOGS = {
    "data page: choose the folder of images": lambda w: w.pages["data"].choose_folder(),
    "data page: similar images": lambda w: w.pages["data"].similar._choose(),
    "augmentation: other image": lambda w: w.pages["augment"].choose_image(),
    "results: similar images": lambda w: w.pages["results"].similar._choose(),
    "export: try images": lambda w: w.pages["export"].try_panel._choose_images(),
}


@pytest.mark.parametrize("name", list(IMAGE_DIALOGS))
def test_image_dialogs_start_in_the_image_folder(window, dialogs, trained_run, name):
    IMAGE_DIALOGS[name](window)
    assert only_start(dialogs) == str(run_images(trained_run))


@pytest.mark.parametrize("name", ["results: similar images", "export: try images"])
def test_image_dialogs_without_a_chosen_folder_start_in_the_runs_images(
        qtbot, make_window, trained_run, dialogs, name):
    window = make_window(start=False)
    window.state.add_run(LoadedRun.read(trained_run))
    assert window.state.data_dir is None
    IMAGE_DIALOGS[name](window)
    assert only_start(dialogs) == str(run_images(trained_run)) != str(Path.home())


def test_save_report_starts_in_the_run_folder(window, dialogs, trained_run):
    window.pages["export"].report_panel.choose_report_file()
    assert only_start(dialogs) == str(trained_run / f"{trained_run.name}-report.html")


def test_the_export_folder_dialog_starts_at_the_field_else_the_run_folder(
        window, dialogs, trained_run, tmp_path):
    panel = window.pages["export"].save_panel
    panel._choose_target()
    panel.target.setText(str(tmp_path / "not-made-yet" / "deeper"))
    panel._choose_target()
    panel.target.setText("")
    panel._choose_target()
    assert [start for _, start in dialogs] == [str(tmp_path / "unrelated"), str(tmp_path),
                                               str(trained_run)]


def test_sort_a_folder_starts_at_the_images_then_beside_the_folder_to_sort(
        qtbot, dialogs, trained_run, tmp_path):
    dialog = SortFolderDialog(trained_run)
    qtbot.addWidget(dialog)
    dialog._browse(dialog.source_edit, "Folder to sort")
    new_photos = tmp_path / "new-photos"
    new_photos.mkdir()
    dialog.source_edit.setText(str(new_photos))
    dialog._browse(dialog.out_edit, "Copy into")
    assert [start for _, start in dialogs] == [str(run_images(trained_run)), str(new_photos)]


def test_weights_file_starts_beside_the_one_chosen_before(window, dialogs, base_weights_file):
    assert window.state.update_settings(weights=str(base_weights_file)) is None
    window.pages["model"].choose_weights_file()
    assert only_start(dialogs) == str(base_weights_file.parent)


def test_project_dialogs_start_beside_the_project_else_beside_the_images(
        window, dialogs, trained_run, tmp_path):
    window.choose_project_to_open()
    window.save_project_as()
    beside_images = str(run_images(trained_run).parent)
    assert [start for _, start in dialogs] == [beside_images, str(Path(beside_images) /
                                                                  "project.ftproj")]
    project = tmp_path / "projects" / "mine.ftproj"
    project.parent.mkdir()
    window.state.set_project_path(project)
    window.choose_project_to_open()
    assert dialogs[-1][1] == str(project.parent)


def test_a_moved_folder_is_looked_for_from_where_it_was(tmp_path):
    state = SimpleNamespace(data_dir=tmp_path / "photos" / "gone", current_run=None,
                            project_path=None, settings=SimpleNamespace(weights="none"))
    (tmp_path / "photos").mkdir()
    assert start_folder(IMAGE_FOLDER, state) == str(tmp_path / "photos")
    assert start_folder(PROJECT, state) == str(tmp_path / "photos")
    assert start_folder(WEIGHTS, SimpleNamespace(**{**vars(state), "data_dir": None})) in (
        str(Path.home()), str(Path.home() / ".keras" / "models"))
