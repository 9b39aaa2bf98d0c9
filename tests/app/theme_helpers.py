"""Contrast measured on rendered widgets, as WCAG 2 defines it."""

from __future__ import annotations

from collections import defaultdict

from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QWidget


def luminance(colour: QColor) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * linear(colour.redF())
        + 0.7152 * linear(colour.greenF())
        + 0.0722 * linear(colour.blueF())
    )


def contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_contrast(widget: QWidget, show_text, hide_text) -> dict[str, float]:
    """Per background colour under the text: the best contrast of a text pixel against it.

    The widget is grabbed with and without its text; the pixels that differ are text, and the
    grab without text gives the background under each. Anti-aliased edges mix the two colours,
    so the best pixel (a glyph's solid core) stands for the text colour.
    """
    hide_text()
    plain = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    show_text()
    texted = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    best: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for y in range(plain.height()):
        for x in range(plain.width()):
            under, over = plain.pixelColor(x, y), texted.pixelColor(x, y)
            if under != over:
                key = under.name()
                count[key] += 1
                best[key] = max(best[key], contrast(under, over))
    # A few pixels of a colour are the bar's rounded edge, not a background the text sits on.
    return {key: value for key, value in best.items() if count[key] >= 15}
