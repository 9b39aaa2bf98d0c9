"""Strokes change pixels; undo and redo bring them back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from app.canvas import ERASER, EYEDROPPER, FILL, UNDO_LIMIT, SketchCanvas


def drag(widget, points):
    """A real mouse drag: press, moves with the left button held, release."""
    left = Qt.MouseButton.LeftButton
    kinds = [QEvent.Type.MouseButtonPress] + [QEvent.Type.MouseMove] * (len(points) - 2)
    kinds.append(QEvent.Type.MouseButtonRelease)
    for kind, point in zip(kinds, points, strict=True):
        button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else left
        held = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else left
        global_point = QPointF(widget.mapToGlobal(point.toPoint()))
        event = QMouseEvent(kind, point, global_point, button, held, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)


@pytest.fixture
def canvas(qtbot):
    c = SketchCanvas(64, 64)
    qtbot.addWidget(c)
    c.resize(192, 192)  # 3 widget pixels per image pixel
    c.show()
    return c


def test_mouse_stroke_paints_and_undo_redo_restore(qtbot, canvas):
    blank = canvas.to_array()
    assert (blank == 255).all()
    drag(canvas, [QPointF(x, 96) for x in range(30, 165, 9)])
    drawn = canvas.to_array()
    assert drawn[32, 12:52].max() < 60  # a dark horizontal line across the middle
    assert (drawn[2] == 255).all()  # the top row is untouched
    canvas.undo()
    np.testing.assert_array_equal(canvas.to_array(), blank)
    canvas.redo()
    np.testing.assert_array_equal(canvas.to_array(), drawn)


def test_undo_goes_back_up_to_the_limit_and_forgets_older_strokes(canvas):
    canvas.brush_size = 2
    states = [canvas.to_array()]
    strokes = UNDO_LIMIT + 20
    for i in range(strokes):  # each stroke a dot of its own: every state differs
        canvas.begin_stroke(QPointF(2 + 3 * (i % 20), 2 + 3 * (i // 20)))
        canvas.end_stroke()
        states.append(canvas.to_array())
    assert not np.array_equal(states[-1], states[-2])
    for i in range(UNDO_LIMIT):  # the newest strokes undo one by one
        assert canvas.can_undo()
        canvas.undo()
        np.testing.assert_array_equal(canvas.to_array(), states[-2 - i])
    assert not canvas.can_undo()  # the 20 oldest strokes are beyond the limit
    np.testing.assert_array_equal(canvas.to_array(), states[strokes - UNDO_LIMIT])
    assert not np.array_equal(canvas.to_array(), states[0])
    canvas.undo()  # nothing left to undo: nothing changes
    np.testing.assert_array_equal(canvas.to_array(), states[strokes - UNDO_LIMIT])
    canvas.redo()
    np.testing.assert_array_equal(canvas.to_array(), states[strokes - UNDO_LIMIT + 1])


def test_eraser_paints_background_and_soft_brush_blends(canvas):
    canvas.fill_background(QColor("red"))
    canvas.tool = ERASER
    canvas.begin_stroke(QPointF(32, 32))
    canvas.end_stroke()
    assert tuple(canvas.to_array()[32, 32]) == (255, 255, 255)
    canvas.tool = "brush"
    canvas.hardness = 0.0
    canvas.brush_size = 20
    canvas.colour = QColor("blue")
    canvas.begin_stroke(QPointF(10, 50))
    canvas.end_stroke()
    r, g, b = canvas.to_array()[50, 10 + 8]  # near the soft edge: partly blue, partly red
    assert 0 < b < 255 and 0 < r < 255


def test_eyedropper_and_fill(qtbot, canvas):
    canvas.tool = FILL
    canvas.colour = QColor(10, 200, 30)
    canvas.begin_stroke(QPointF(1, 1))
    assert (canvas.to_array() == (10, 200, 30)).all()
    canvas.colour = QColor("black")
    canvas.tool = EYEDROPPER
    with qtbot.wait_signal(canvas.colour_picked) as blocker:
        canvas.begin_stroke(QPointF(5, 5))
    assert blocker.args[0] == QColor(10, 200, 30)


def test_canvas_follows_size_and_loads_images(canvas):
    canvas.set_canvas_size(96, 64)
    assert canvas.to_array().shape == (64, 96, 3)
    image = QImage(10, 10, QImage.Format.Format_RGB32)
    image.fill(QColor("green"))
    canvas.set_image(image)
    assert tuple(canvas.to_array()[5, 5]) == (0, 128, 0)
    canvas.undo()
    assert tuple(canvas.to_array()[5, 5]) == (255, 255, 255)
    canvas.clear()
    assert (canvas.to_array() == 255).all()
