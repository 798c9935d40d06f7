"""The Augmentation page: a control per change, presets, and a preview made off the GUI thread."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFileDialog

from finetune_gui.core.data.augment import PRESETS


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


def test_moving_a_slider_changes_the_settings_and_refreshes_the_preview(qtbot, augment_page,
                                                                      gap_meter):
    window, page = augment_page
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
    # The preview runs TensorFlow in this process (a child process would take seconds to
    # start); its garbage collection may pause the window briefly, never for long.
    # (conftest.GapMeter: the GUI thread's own work is bounded tightly, the wall gap, which a
    # loaded machine stretches, generously)
    assert gap_meter.longest_busy < 0.5, gap_meter.stacks()
    assert gap_meter.longest < 2.0, gap_meter.stacks()


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
    assert window.steps.status_text("augment") == "strong"


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
    window.state.update_settings(views=3)
    assert "2 randomly changed copies" in page.usage_note.text()
    window.state.update_settings(cache_mode="exact")
    assert "new random version of each image" in page.usage_note.text()
    with qtbot.waitSignal(page.preview_shown, timeout=30_000):
        page.preset.setCurrentIndex(page.preset.findData("none"))
    assert window.state.settings.augment.is_off and not page.usage_note.isVisible()


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
