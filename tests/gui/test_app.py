"""The window as a whole: first start, remembered sessions, project files, unexpected errors,
and the screenshot mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QMessageBox

from finetune_gui.demo import demo_dataset_dir, make_shapes_dataset
from finetune_gui.gui.app import install_excepthook, run_app
from finetune_gui.gui.logfile import log_file
from finetune_gui.gui.screenshot import TRAINED_PAGES
from finetune_gui.gui.state import STEPS
from finetune_gui.gui.widgets.error_dialog import ErrorDialog


def test_first_start_opens_the_demo_images_ready_to_train(qtbot, make_window):
    window = make_window()
    assert window.state.data_dir == demo_dataset_dir()
    assert window.current_step() == "data"
    assert window.pages["train"].start_button.isEnabled()
    assert window.state.settings.weights == "imagenet"
    qtbot.waitUntil(lambda: window.readiness.text() == "Ready", timeout=60_000)
    assert window.versions.startswith("finetune-gui ") and "TensorFlow:" in window.versions


@pytest.mark.parametrize("remembered_by", ["autosave", "preferences"])
def test_a_folder_named_on_the_command_line_is_opened_as_the_image_folder(
        qtbot, make_window, prefs, tmp_path, monkeypatch, remembered_by):
    """`finetune-gui ~/photos` opens the window on those photos, checked on the Data step, with
    the last session's settings; it used to refuse the folder as "not a project file". A "~"
    that no shell expanded (a launcher's argument) is the home folder, as for project files.
    The last session's folder is not scanned on the way: it used to be, and then cancelled."""
    first = make_window()
    first.state.update_settings(backbone="efficientnetb0")
    first.go_to("augment")
    first.close()
    if remembered_by == "preferences":  # a window that closed before autosaving existed
        first.autosave_path.unlink()
    photos = make_shapes_dataset(tmp_path / "photos", per_class=4, size=32, seed=3)
    monkeypatch.setenv("HOME", str(tmp_path))

    window = make_window(start=False)
    folders_shown = []
    window.state.data_dir_changed.connect(lambda: folders_shown.append(window.state.data_dir))
    with qtbot.waitSignal(window.pages["data"].scan_finished, timeout=30_000):
        window.start(Path("~/photos"))
    assert folders_shown == [photos.resolve()]
    assert window.last_dialog is None
    assert window.state.data_dir == photos.resolve() and window.current_step() == "data"
    assert window.state.settings.backbone == "efficientnetb0"
    assert window.pages["data"].folder_label.text() == str(photos.resolve())
    assert window.state.scan is not None and len(window.state.scan.records) == 12


def test_the_session_is_remembered_between_starts(qtbot, make_window, prefs):
    first = make_window()
    first.state.update_settings(backbone="efficientnetb0", epochs_head=7)
    first.go_to("augment")
    first.resize(1100, 700)
    export = first.pages["export"].save_panel
    export.target.setText("/tmp/models")
    export.format_choice.setCurrentIndex(export.format_choice.findData("tflite"))
    first.close()

    second = make_window()
    assert second.state.settings.backbone == "efficientnetb0"
    assert second.state.settings.epochs_head == 7
    assert second.current_step() == "augment"
    # The offscreen screen is 800 px wide, so only the height can be restored exactly.
    assert second.height() == 700
    assert second.state.data_dir == demo_dataset_dir()
    assert second.pages["export"].choices() == ("/tmp/models", "tflite")


def test_save_new_and_reopen_a_project(qtbot, make_window, tmp_path):
    window = make_window()
    window.state.update_settings(backbone="resnet50", unfreeze_blocks=4)
    assert window.save_project_to(tmp_path / "shapes")
    saved = tmp_path / "shapes.ftproj"
    assert saved.is_file()
    assert window.windowTitle().startswith("shapes.ftproj —")

    window.new_project()
    assert window.state.settings.backbone == "mobilenetv2"
    assert window.state.data_dir is None

    window._fill_recent_menu()
    actions = [a for a in window.recent_menu.actions() if a.text() == str(saved)]
    assert actions, "the saved project is listed under Open recent"
    with qtbot.waitSignal(window.pages["data"].scan_finished, timeout=30_000):
        actions[0].trigger()
    assert window.state.settings.backbone == "resnet50"
    assert window.state.settings.unfreeze_blocks == 4
    assert window.state.data_dir == demo_dataset_dir()
    assert not window.state.dirty


def test_a_damaged_project_file_is_refused_in_plain_words(make_window, tmp_path):
    window = make_window()
    bad = tmp_path / "bad.ftproj"
    bad.write_text("{ not json")
    before = window.state.settings
    assert not window.open_project(bad)
    assert isinstance(window.last_dialog, ErrorDialog)
    assert "damaged" in window.last_dialog.text()
    assert window.state.settings == before
    window.last_dialog.close()


def test_a_project_whose_folder_moved_asks_for_the_new_place(qtbot, make_window, tmp_path,
                                                              monkeypatch):
    data = make_shapes_dataset(tmp_path / "photos", per_class=4, size=24)
    window = make_window()
    with qtbot.waitSignal(window.pages["data"].scan_finished, timeout=30_000):
        window.state.set_data_dir(data)
    window.save_project_to(tmp_path / "moving")
    moved = data.rename(tmp_path / "photos-2025")

    with qtbot.waitSignal(window.pages["data"].scan_finished, timeout=30_000):
        window.open_project(tmp_path / "moving.ftproj")
    box = window.last_dialog
    assert isinstance(box, QMessageBox) and "was not found" in box.text()
    monkeypatch.setattr("finetune_gui.gui.main_window.QFileDialog.getExistingDirectory",
                        lambda *a, **k: str(moved))
    locate = next(b for b in box.buttons() if b.text().startswith("Choose"))
    with qtbot.waitSignal(window.pages["data"].scan_finished, timeout=30_000):
        locate.click()
    assert window.state.data_dir == moved
    assert window.state.scan is not None and len(window.state.scan.classes) == 3


def test_unexpected_errors_go_to_the_log_and_a_dialog_names_it(qtbot, make_window):
    make_window()
    previous = sys.excepthook
    install_excepthook()
    try:
        try:
            raise RuntimeError("a bug behind a button")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = previous
    dialogs = [w for w in QApplication.topLevelWidgets() if isinstance(w, ErrorDialog)]
    assert dialogs
    dialog = dialogs[-1]
    assert str(log_file()) in dialog.text()
    assert "RuntimeError" in dialog.text() and "Traceback" not in dialog.text()
    assert "Traceback" in dialog.detailedText()
    assert "a bug behind a button" in log_file().read_text()
    dialog.close()


def test_a_problem_the_user_can_fix_shows_its_cause_in_plain_words_not_a_traceback(qtbot):
    import traceback
    import urllib.error

    from finetune_gui.core.errors import WeightsError
    from finetune_gui.gui.widgets.error_dialog import show_error

    try:
        try:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        except urllib.error.URLError as offline:
            raise WeightsError("Could not download the ImageNet weights for MobileNetV2; the "
                               "computer may be offline.") from offline
    except WeightsError as exc:
        error, trace = exc, traceback.format_exc()
    dialog = show_error(None, error, trace, "loading the network")
    assert dialog.text().startswith("Could not download the ImageNet weights")
    assert dialog.detailedText() == ("Caused by: URLError: <urlopen error [Errno -3] Temporary "
                                     "failure in name resolution>")
    assert "Traceback" not in dialog.text() + dialog.detailedText()
    # Whoever looks into it finds the traceback in the log file.
    assert "Temporary failure in name resolution" in log_file().read_text(encoding="utf-8")
    dialog.close()


def _record_saves(monkeypatch) -> list[dict]:
    """What the window showed each time the screenshot director saved a page."""
    from finetune_gui.gui.screenshot import ScreenshotDirector

    saved: list[dict] = []
    real_save = ScreenshotDirector._save

    def save_and_record(director) -> None:
        window = director.window
        run = window.state.current_run
        saved.append({
            "step": window.current_step(), "target": director.target,
            "run": str(run.folder.path) if run is not None else None,
            "run_status": run.folder.status if run is not None else None,
            "tried": window.pages["export"].try_panel.predictions.rowCount(),
            "data": window.state.data_dir,
        })  # fmt: skip
        real_save(director)

    monkeypatch.setattr(ScreenshotDirector, "_save", save_and_record)
    return saved


def _assert_png(path) -> None:
    image = QImage(str(path))
    assert not image.isNull() and image.width() >= 1000, path


UNTRAINED_PAGES = [p for p in STEPS if p not in TRAINED_PAGES]


@pytest.mark.parametrize("page", UNTRAINED_PAGES)
def test_screenshot_mode_writes_a_png_of_every_page(qtbot, tmp_path, monkeypatch, page):
    """Each page before training is captured in the state its screenshot is for."""
    saved = _record_saves(monkeypatch)
    target = tmp_path / "shots" / f"{page}.png"
    assert run_app(["--screenshot", str(target), "--page", page]) == 0
    _assert_png(target)
    assert [(s["step"], s["target"], s["run"]) for s in saved] == [(page, target, None)]


def test_screenshot_mode_opens_the_folder_it_is_given(qtbot, tmp_path, monkeypatch):
    """`--data FOLDER`: the frozen app's smoke test opens the window on a folder it made."""
    from finetune_gui.demo import make_shapes_dataset

    data = make_shapes_dataset(tmp_path / "mine", per_class=6, size=32, seed=2)
    saved = _record_saves(monkeypatch)
    target = tmp_path / "data.png"
    assert run_app(["--screenshot", str(target), "--page", "data", "--data", str(data)]) == 0
    _assert_png(target)
    assert [s["data"] for s in saved] == [data.resolve()]


@pytest.mark.slow
def test_screenshots_after_training_share_one_real_run(qtbot, tmp_path, monkeypatch):
    """train, results and export in one call: one real (tiny) training run, then each page in
    its state (results with a mistake's heatmap, export with images tried), one PNG each."""
    saved = _record_saves(monkeypatch)
    target = tmp_path / "shots" / "window.png"
    assert run_app(["--screenshot", str(target), "--page", *TRAINED_PAGES]) == 0
    assert [s["step"] for s in saved] == list(TRAINED_PAGES)
    assert [s["target"].name for s in saved] == [f"window-{p}.png" for p in TRAINED_PAGES]
    for shot in saved:
        _assert_png(shot["target"])
    assert {s["run_status"] for s in saved} == {"completed"}
    assert len({s["run"] for s in saved}) == 1  # one run for the three pages
    assert [s["tried"] > 0 for s in saved] == [False, False, True]
    assert not target.exists()


def test_screenshot_targets_name_each_page_when_there_are_several(tmp_path):
    from finetune_gui.gui.screenshot import page_targets

    assert page_targets(tmp_path / "a.png", ["data"]) == {"data": tmp_path / "a.png"}
    assert page_targets(tmp_path / "a.png", ["data", "model", "data"]) == {
        "data": tmp_path / "a-data.png", "model": tmp_path / "a-model.png"}


def test_without_a_screen_the_app_explains_instead_of_crashing():
    from finetune_gui.gui.app import no_screen_message

    headless = {"PATH": "/usr/bin"}
    assert "No screen was found" in no_screen_message(headless, "linux")
    assert no_screen_message({"DISPLAY": ":0"}, "linux") is None
    assert no_screen_message({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert no_screen_message({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert no_screen_message(headless, "win32") is None


def test_run_app_with_no_display_exits_2_with_the_message(monkeypatch, capsys):
    from finetune_gui.gui.app import run_app

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert run_app([]) == 2
    assert "finetune-gui --help" in capsys.readouterr().err


def test_a_screenshot_leaves_no_timer_behind_to_stop_the_next_event_loop(
        qtbot, tmp_path, monkeypatch, capfd):
    """The screenshot's time limit dies with it: a left-over one fired later, in whatever the
    process did next, and exited that event loop and every one after it."""
    from PySide6.QtCore import QTimer

    from finetune_gui.gui import screenshot

    monkeypatch.setattr(screenshot, "TIMEOUT_MS", 3_000)
    assert run_app(["--screenshot", str(tmp_path / "data.png"), "--page", "data"]) == 0
    qtbot.wait(4_000)  # past the time limit
    tick = QTimer()
    tick.setSingleShot(True)
    with qtbot.waitSignal(tick.timeout, timeout=5_000):
        tick.start(200)
    assert "timed out" not in capfd.readouterr().err
