"""The Augmentation page: a control per change, presets, and a preview made off the GUI thread."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from finetune_gui.core.data.augment import PRESETS
from finetune_gui.gui.pages import augment


@pytest.fixture
def augment_page(qtbot, make_window):
    window = make_window()
    page = window.pages["augment"]
    with qtbot.waitSignal(page.preview_shown, timeout=60_000):
        window.go_to("augment")
    return window, page


def test_each_change_has_a_control(augment_page):
    _, page = augment_page
    assert set(page.sliders) == {"rotation", "zoom", "shift", "brightness", "contrast", "noise"}
    assert page.flip.count() == 4
    assert all(slider.toolTip() for slider, *_ in page.sliders.values())


def large_photo(path: Path) -> Path:
    """A 6000 x 4000 PNG (330 KB): decoding and shrinking it takes a preview about 0.2 s of CPU."""
    pixels = np.empty((4000, 6000, 3), np.uint8)
    pixels[..., 0] = (np.arange(6000) * 255 // 6000).astype(np.uint8)
    pixels[..., 1] = (np.arange(4000) * 255 // 4000).astype(np.uint8)[:, None]
    pixels[..., 2] = ((np.arange(4000) % 256).astype(np.uint8)[:, None]
                      + (np.arange(6000) % 256).astype(np.uint8))  # wraps: a fine pattern
    Image.fromarray(pixels).save(path, compress_level=1)
    return path


def test_moving_a_slider_changes_the_settings_and_refreshes_the_preview(
    qtbot, augment_page, gap_meter, tmp_path, monkeypatch
):
    window, page = augment_page
    # A large photo: most of each preview's work is reading it, so that work done on the GUI
    # thread would show in the GUI thread's CPU time.
    photo = large_photo(tmp_path / "large photo.png")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(photo), ""))
    with qtbot.waitSignal(page.preview_shown, timeout=30_000):
        page.choose_image()
    made = []  # each preview's own CPU seconds, on the thread that made it
    real = augment.preview_job

    def timed(*args, **kwargs):
        started = time.thread_time()
        try:
            return real(*args, **kwargs)
        finally:
            made.append(time.thread_time() - started)

    monkeypatch.setattr(augment, "preview_job", timed)
    before = page.preview_labels[0].pixmap().toImage()
    gap_meter.start()
    with qtbot.waitSignal(page.preview_shown, timeout=30_000):
        page.sliders["rotation"][0].setValue(45)
        assert page.preview_status.text() == "Updating…"
    gap_meter.stop()
    assert window.state.settings.augment.rotation == 0.125  # 45 degrees of a full turn
    assert page.sliders["rotation"][1].text() == "45°"
    assert page.preview_labels[0].pixmap().toImage() != before
    assert page.preset.currentText() == "Custom"
    # The preview is made off the GUI thread: the GUI thread's longest stretch of work (its own
    # CPU time between two ticks of a 20 ms timer, conftest.GapMeter) is a fraction of the
    # preview's. Made on the GUI thread, one stretch would hold all of it. CPU time, not wall
    # seconds: a loaded machine stretches the gaps, not the work. The preview runs TensorFlow in
    # this process (a child process would take seconds to start); its garbage collection may
    # pause the window briefly, never for long.
    assert made and gap_meter.longest_busy < made[-1] / 2, (made, gap_meter.stacks())
    assert gap_meter.longest_busy < 0.5, gap_meter.stacks()


def test_quick_changes_are_previewed_once_with_the_newest_settings(qtbot, augment_page):
    _, page = augment_page
    starts = []
    page.runner.running_changed.connect(lambda running: running and starts.append(1))
    for value in (5, 10, 15, 20, 25):
        page.sliders["zoom"][0].setValue(value)
    qtbot.waitUntil(lambda: page._shown_request is not None
                    and page._shown_request[1].zoom == 0.25, timeout=30_000)
    assert len(starts) <= 2  # the running preview, then one for the newest settings


def test_a_preset_sets_every_control(augment_page):
    window, page = augment_page
    page.preset.setCurrentIndex(page.preset.findData("strong"))
    assert window.state.settings.augment == PRESETS["strong"]
    assert page.flip.currentData() == "horizontal"  # the page says: do not flip upside down
    assert page.sliders["noise"][0].value() == 8
    assert window.steps.status_text("augment") == "strong, not used in speed mode"


def test_an_unreadable_preview_image_is_explained(qtbot, augment_page, tmp_path, monkeypatch):
    _, page = augment_page
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(broken), ""))
    with qtbot.waitSignal(page.runner.failed, timeout=30_000):
        page.choose_image()
    assert "cannot be shown" in page.preview_status.text()


def test_the_page_says_whether_the_run_will_use_these_changes(qtbot, augment_page):
    window, page = augment_page
    # Speed mode with one copy per image trains on the images as they are.
    assert window.state.settings.cache_mode == "fast" and window.state.settings.views == 1
    assert page.usage_note.isVisible() and "not used" in page.usage_note.text()
    # The step list says so too, rather than naming a preset training will not use.
    assert window.steps.status_text("augment") == "light, not used in speed mode"
    window.state.update_settings(views=3)
    assert "2 randomly changed copies" in page.usage_note.text()
    assert window.steps.status_text("augment") == "light"
    window.state.update_settings(views=1, cache_mode="exact")
    assert "new random version of each image" in page.usage_note.text()
    assert window.steps.status_text("augment") == "light"
    with qtbot.waitSignal(page.preview_shown, timeout=30_000):
        page.preset.setCurrentIndex(page.preset.findData("none"))
    assert window.state.settings.augment.is_off and not page.usage_note.isVisible()
    assert window.steps.status_text("augment") == "off"


def test_each_control_takes_its_range_words_and_tip_from_the_engine(augment_page):
    """The sliders reach exactly the strongest value the engine accepts, no more, no less."""
    from finetune_gui.core.data.augment import CHANGES, FLIP_HELP, FLIP_MODES, AugmentSettings
    from finetune_gui.core.errors import SettingsError

    _, page = augment_page
    assert [page.flip.itemData(i) for i in range(page.flip.count())] == list(FLIP_MODES)
    assert page.flip.toolTip() == FLIP_HELP
    assert set(page.sliders) == set(CHANGES)
    for name, (slider, _label, scale, _unit) in page.sliders.items():
        change = CHANGES[name]
        assert (slider.minimum(), slider.maximum()) == (0, round(change.high * change.scale))
        assert slider.toolTip() == change.help and scale == change.scale
        slider.setValue(slider.maximum())
        assert getattr(page.state.settings.augment, name) == pytest.approx(change.high)
        with pytest.raises(SettingsError, match="out of range"):
            AugmentSettings(**{name: change.high * 1.01})
