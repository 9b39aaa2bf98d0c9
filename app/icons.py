"""Our tool icons: SVG line drawings in resources/icons, tinted to the palette's text colour.

The SVGs stroke with ``currentColor``, which Qt's SVG renderer does not resolve, so the colour
is put into the text before rendering: the same files then serve the light and the dark theme.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

SIZES = (16, 24, 32, 48)  # pixmaps per icon: crisp at 1x and 2x without scaling at paint time


@cache
def _svg_text(name: str) -> str:
    try:
        from importlib.resources import files

        return files("latentdesk_resources").joinpath("icons", f"{name}.svg").read_text()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        # Running from a checkout without the installed package: the folder beside app/.
        folder = Path(__file__).resolve().parents[1] / "resources" / "icons"
        return (folder / f"{name}.svg").read_text()


def tinted_icon(name: str, colour: QColor) -> QIcon:
    """The icon ``resources/icons/<name>.svg`` drawn in ``colour``, with a paler disabled state."""
    icon = QIcon()
    disabled = QColor(colour)
    disabled.setAlphaF(0.35)
    for size in SIZES:
        icon.addPixmap(_render(name, colour, size), QIcon.Mode.Normal)
        icon.addPixmap(_render(name, disabled, size), QIcon.Mode.Disabled)
    return icon


def _render(name: str, colour: QColor, size: int) -> QPixmap:
    svg = _svg_text(name).replace("currentColor", colour.name(QColor.NameFormat.HexRgb))
    renderer = QSvgRenderer(QByteArray(svg.encode()))
    pixmap = QPixmap(QSize(size, size))
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setOpacity(colour.alphaF())
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return pixmap
