"""Help → User guide opens offline and shows a page per step."""

from __future__ import annotations

from finetune_gui.gui.widgets.user_guide import UserGuide, guide_pages


def test_the_help_menu_opens_the_guide_with_a_page_per_step(qtbot, make_window):
    window = make_window(start=False)
    help_menu = next(action.menu() for action in window.menuBar().actions()
                     if action.text() == "&Help")
    assert help_menu.actions()[0].text() == "&User guide"
    window.guide_action.trigger()
    guide = window.user_guide
    assert isinstance(guide, UserGuide) and guide.isVisible()
    titles = [guide.contents.item(i).text() for i in range(guide.contents.count())]
    assert titles[:7] == ["Start here", "1. Data", "2. Model", "3. Augmentation", "4. Train",
                          "5. Results", "6. Export and try"]
    assert "Go down the list on the left" in guide.text.toPlainText()  # the first page
    guide.show_step("4.")
    assert guide.current_title() == "4. Train"
    shown = guide.text.toPlainText()
    assert "Start training" in shown and "#" not in shown.splitlines()[0]  # rendered, not raw
    window.guide_action.trigger()
    assert window.user_guide is guide  # the same window comes forward


def test_every_page_has_a_title_and_text():
    pages = guide_pages()
    assert len(pages) >= 8
    for title, text in pages:
        assert title and len(text.split()) > 40, title
