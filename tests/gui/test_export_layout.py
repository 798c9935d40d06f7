"""The Export page at the window's usual size: it scrolls rather than squeezes, so the heatmap
panel beside the answers keeps every line of its text."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QScrollArea


def test_the_heatmap_text_keeps_its_lines_when_the_page_is_full(make_window, qtbot):
    window = make_window(start=False)
    window.resize(1280, 860)
    window.show()
    window.go_to("export")
    page = window.pages["export"]
    assert page.findChild(QScrollArea) is not None
    # A saved model's three-line result above, and a picture's long caption beside the answers.
    page.save_panel.export_result.show_text(
        "Saved model.keras, labels.txt, metrics.json, model_card.md, model_card.json, "
        "load_image.py, unsure.json in /tmp/a/folder/with/a/long/name.\nChecked on 44 held-out "
        "images (22 test, 22 validation): the file gives the trained model's answer on 100.0% "
        "of them. 9.7 MB, 230.3 ms per image on this computer.", "success")
    panel = page.try_panel.heatmap_panel
    panel.title.setText("<b>astronaut.png</b><br><span>/tmp/pkgs/skimg/skimage/data/"
                        "astronaut.png</span>")
    panel.caption.setText("The model is <b>not sure</b> (unlike the training images); its best "
                          "guess is face (62%).")
    for _ in range(5):
        QApplication.processEvents()
    for label in (panel.title, panel.caption):
        assert label.height() >= label.heightForWidth(label.width()), label.text()
