"""The brush size is shown as a number, and its outline follows the cursor over the canvas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QLabel, QSlider

from app.canvas import EYEDROPPER, SketchCanvas
from app.qimages import qimage_to_array
from app.sketchpanel import SketchPanel

CENTRE = QPointF(96, 96)


def hover(widget, point: QPointF) -> None:
    """The mouse moving over the widget with no button held."""
    no = Qt.MouseButton.NoButton
    global_point = QPointF(widget.mapToGlobal(point.toPoint()))
    event = QMouseEvent(
        QEvent.Type.MouseMove, point, global_point, no, no, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, event)


def ring(shot: np.ndarray, centre: QPointF, radius: float) -> np.ndarray:
    """The darkest grey within a pixel of ``radius``, at 24 angles around ``centre``."""
    grey = shot[..., :3].min(axis=2)
    darkest = []
    for k in range(24):
        angle = 2 * math.pi * k / 24
        x = round(centre.x() + radius * math.cos(angle))
        y = round(centre.y() + radius * math.sin(angle))
        darkest.append(grey[y - 1 : y + 2, x - 1 : x + 2].min())
    return np.array(darkest)


@pytest.fixture
def canvas(qtbot):
    c = SketchCanvas(64, 64)
    qtbot.addWidget(c)
    c.resize(192, 192)  # 3 widget pixels per image pixel
    c.show()
    return c


def test_the_size_label_follows_the_slider(qtbot, canvas):
    panel = SketchPanel(canvas)
    qtbot.addWidget(panel)
    slider = panel.findChild(QSlider, "brushSizeSlider")
    label = panel.findChild(QLabel, "brushSizeLabel")
    assert label.text() == f"{round(canvas.brush_size)} px"
    slider.setValue(40)
    assert (label.text(), canvas.brush_size) == ("40 px", 40)
    slider.setValue(1)
    assert label.text() == "1 px"


def test_the_outline_is_drawn_under_the_cursor_at_the_on_screen_size(qtbot, canvas):
    canvas.brush_size = 10  # image pixels: 30 on screen
    assert canvas.outline_diameter() == pytest.approx(30)
    before = canvas.to_array()
    hover(canvas, CENTRE)
    shot = qimage_to_array(canvas.grab().toImage())
    assert (ring(shot, CENTRE, 15) < 160).all()  # the dark ring all around
    assert (ring(shot, CENTRE, 8) == 255).all()  # nothing inside it
    assert (ring(shot, CENTRE, 21) == 255).all()  # nor outside
    assert (canvas.to_array() == before).all()  # an overlay, not part of the picture


def test_the_outline_follows_the_size_and_goes_when_the_cursor_leaves(qtbot, canvas):
    hover(canvas, CENTRE)
    canvas.brush_size = 20  # 60 on screen
    shot = qimage_to_array(canvas.grab().toImage())
    assert (ring(shot, CENTRE, 30) < 160).all()
    QApplication.sendEvent(canvas, QEvent(QEvent.Type.Leave))
    assert (qimage_to_array(canvas.grab().toImage()) == 255).all()


def test_no_outline_for_the_colour_picker(qtbot, canvas):
    canvas.tool = EYEDROPPER
    hover(canvas, CENTRE)
    assert (qimage_to_array(canvas.grab().toImage()) == 255).all()
