"""Render resources/icons/finetune-gui.svg to the PNG that desktops and PyInstaller use.

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/render_icon.py

The PNG is committed; run this again only after changing the SVG. Qt's own SVG renderer draws it,
so the PNG is the SVG at that size, not a second drawing.
"""

from __future__ import annotations

import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
SIZE = 256


def render(svg: Path, png: Path, size: int) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (Qt needs one)
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not an SVG that Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(png)):
        raise SystemExit(f"could not write {png}")


if __name__ == "__main__":
    render(ICONS / "finetune-gui.svg", ICONS / f"finetune-gui-{SIZE}.png", SIZE)
    print(f"wrote {ICONS / f'finetune-gui-{SIZE}.png'}")
