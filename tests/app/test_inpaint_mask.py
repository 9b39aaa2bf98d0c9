"""The mask layer of the canvas: painted with the mouse, erased, undone, and changed as a whole
by the mask row's buttons (with the engine's own mask functions)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtWidgets import QApplication

from app.canvas import BRUSH, ERASER, EYEDROPPER, FILL, SketchCanvas
from app.mask_layer import array_to_mask, mask_from_picture, mask_to_array, mask_to_greyscale
from app.sketchpanel import SketchPanel
from engine.inpaint.masks import bounding_box, feather, grow, shrink

LEFT = Qt.MouseButton.LeftButton


def drag(qtbot, widget, points: list[QPoint]) -> None:
    """A real stroke: press, moves with the button held, release (widget coordinates)."""
    qtbot.mousePress(widget, LEFT, pos=points[0])
    for point in points[1:]:
        event = QMouseEvent(
            QEvent.Type.MouseMove,
            QPointF(point),
            QPointF(widget.mapToGlobal(point)),
            Qt.MouseButton.NoButton,
            LEFT,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(widget, event)
    qtbot.mouseRelease(widget, LEFT, pos=points[-1])


@pytest.fixture
def panel(qtbot):
    canvas = SketchCanvas(64, 64)
    p = SketchPanel(canvas)
    qtbot.addWidget(p)
    p.show()
    canvas.setFixedSize(192, 192)  # 3 widget pixels per picture pixel
    qtbot.wait_until(lambda: canvas.target_rect().width() == 192)
    canvas.hardness = 1.0  # a hard brush: pixels are in or out
    canvas.brush_size = 8
    p.set_inpainting(True)
    return p


def stroke_across(qtbot, canvas) -> None:
    """Picture pixels (16, 32) to (48, 32): a band 8 pixels high."""
    drag(qtbot, canvas, [QPoint(48, 96), QPoint(96, 96), QPoint(144, 96)])


def test_the_brush_paints_the_mask_where_the_mouse_went_and_not_the_picture(qtbot, panel):
    canvas = panel.canvas
    stroke_across(qtbot, canvas)
    mask = canvas.mask_array()
    assert mask.shape == (64, 64) and mask.dtype == np.uint8
    assert (mask[31:34, 16:49] == 255).all()  # along the stroke
    left, top, right, bottom = bounding_box(mask)
    assert 11 <= left <= 13 and 51 <= right <= 53 and 27 <= top <= 29 and 35 <= bottom <= 37
    assert mask[10, 32] == 0 and mask[50, 32] == 0  # above and below
    assert (canvas.to_array() == 255).all()  # the picture stays as it is


def test_the_mask_is_shown_over_the_picture_only_in_inpaint_mode(qtbot, panel):
    canvas = panel.canvas
    canvas.fill_background(QColor(255, 40, 90))  # the mask's own colour: stripes still show
    stroke_across(qtbot, canvas)
    shot = canvas.grab().toImage()
    masked = {shot.pixelColor(x, 96).name() for x in range(80, 112)}
    assert len(masked) >= 2 and masked != {"#ff285a"}  # the stripes' second colour
    assert shot.pixelColor(96, 20).name() == "#ff285a"  # unmasked: the picture
    panel.set_inpainting(False)
    assert canvas.grab().toImage().pixelColor(96, 96).name() == "#ff285a"
    assert canvas.mask_array().max() == 255  # hidden, not lost


def test_eraser_undo_and_redo_of_mask_strokes(qtbot, panel):
    canvas = panel.canvas
    stroke_across(qtbot, canvas)
    painted = canvas.mask_array()
    canvas.tool = ERASER
    drag(qtbot, canvas, [QPoint(96, 60), QPoint(96, 132)])  # down across the band at x = 32
    erased = canvas.mask_array()
    assert (erased[31:34, 31:34] == 0).all() and (erased[31:34, 16:24] == 255).all()
    canvas.undo()
    assert (canvas.mask_array() == painted).all()
    canvas.undo()
    assert canvas.mask_array().max() == 0 and not canvas.can_undo()
    canvas.redo()
    canvas.redo()
    assert (canvas.mask_array() == erased).all()


def test_one_history_for_picture_and_mask(qtbot, panel):
    canvas = panel.canvas
    panel.set_inpainting(False)
    canvas.tool = BRUSH
    drag(qtbot, canvas, [QPoint(96, 30), QPoint(96, 60)])  # on the picture
    sketch = canvas.to_array()
    assert sketch.min() == 0
    panel.set_inpainting(True)
    stroke_across(qtbot, canvas)
    canvas.undo()  # the mask stroke only
    assert canvas.mask_array().max() == 0 and (canvas.to_array() == sketch).all()
    canvas.undo()  # then the picture's
    assert (canvas.to_array() == 255).all()


def test_fill_masks_everything_and_the_picker_is_off(qtbot, panel):
    canvas = panel.canvas
    picker = panel.findChild(object, f"{EYEDROPPER}Tool")
    assert not picker.isEnabled()
    canvas.tool = FILL
    qtbot.mouseClick(canvas, LEFT, pos=QPoint(96, 96))
    assert (canvas.mask_array() == 255).all() and (canvas.to_array() == 255).all()
    panel.set_inpainting(False)
    assert picker.isEnabled()


def click_and_wait(qtbot, panel, name: str) -> None:
    bar = panel.mask_bar
    with qtbot.wait_signal(bar.ops.finished, timeout=5000):
        qtbot.mouseClick(bar.findChild(object, name), LEFT)


def test_invert_clear_grow_shrink_feather(qtbot, panel):
    canvas, bar = panel.canvas, panel.mask_bar
    start = np.zeros((64, 64), np.uint8)
    start[20:40, 24:44] = 255
    canvas.set_mask_array(start)
    click_and_wait(qtbot, panel, "invertMaskButton")
    assert (canvas.mask_array() == 255 - start).all()
    canvas.undo()
    panel.activateWindow()
    qtbot.wait_until(panel.isActiveWindow, timeout=2000)
    with qtbot.wait_signal(bar.ops.finished, timeout=5000):
        qtbot.keyClick(
            canvas,
            Qt.Key.Key_I,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
    assert (canvas.mask_array() == 255 - start).all()
    canvas.undo()
    bar.amount.setValue(4)
    click_and_wait(qtbot, panel, "growMaskButton")
    assert bounding_box(canvas.mask_array()) == (20, 16, 48, 44)
    assert (canvas.mask_array() == grow(start, 4)).all()
    click_and_wait(qtbot, panel, "shrinkMaskButton")
    click_and_wait(qtbot, panel, "shrinkMaskButton")
    assert bounding_box(canvas.mask_array()) == (28, 24, 40, 36)
    assert (canvas.mask_array() == shrink(shrink(grow(start, 4), 4), 4)).all()
    canvas.set_mask_array(start)
    click_and_wait(qtbot, panel, "featherMaskButton")
    soft = canvas.mask_array()
    assert (soft == feather(start, 2)).all()
    assert 0 < soft[30, 24] < 255 and soft[30, 34] == 255 and soft[30, 10] == 0
    qtbot.mouseClick(bar.clear_button, LEFT)
    assert canvas.mask_array().max() == 0
    canvas.undo()
    assert (canvas.mask_array() == soft).all()


def test_a_result_computed_from_an_older_mask_is_not_applied(qtbot, panel):
    canvas, bar = panel.canvas, panel.mask_bar
    canvas.set_mask_array(np.full((64, 64), 255, np.uint8))
    messages: list[str] = []
    bar.message.connect(messages.append)
    with qtbot.wait_signal(bar.ops.finished, timeout=5000):
        qtbot.mouseClick(bar.invert_button, LEFT)
        canvas.clear_mask()  # a change made while the inversion runs
    assert canvas.mask_array().max() == 0  # the clear stands: not overwritten by 255 - 255
    assert messages and "changed" in messages[0]


def test_the_mask_follows_a_new_canvas_size(qtbot, panel):
    canvas = panel.canvas
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :32] = 255
    canvas.set_mask_array(mask)
    canvas.set_canvas_size(128, 128)
    scaled = canvas.mask_array()
    assert scaled.shape == (128, 128) and scaled[64, 10] == 255 and scaled[64, 100] == 0
    canvas.undo()
    assert (canvas.mask_array() == mask).all()


def test_masks_to_and_from_files():
    mask = np.zeros((5, 7), np.uint8)
    mask[1:3, 2:6] = 200
    assert (mask_to_array(array_to_mask(mask)) == mask).all()
    grey = mask_to_greyscale(array_to_mask(mask))
    assert (mask_to_array(mask_from_picture(grey)) == mask).all()
    cut_out = grey.convertToFormat(grey.Format.Format_ARGB32)
    cut_out.fill(QColor(0, 0, 0, 0))
    cut_out.setPixelColor(3, 2, QColor(0, 0, 0, 255))  # a brush on a transparent layer
    alpha = mask_to_array(mask_from_picture(cut_out))
    assert alpha[2, 3] == 255 and alpha.sum() == 255


def test_the_overlay_patched_along_a_stroke_equals_one_made_whole(qtbot, panel):
    canvas = panel.canvas
    canvas.hardness = 0.5  # soft edges: partial values must be patched right too
    stroke_across(qtbot, canvas)
    canvas.grab()  # shown once: the overlay exists, later strokes patch it
    canvas.tool = ERASER
    drag(qtbot, canvas, [QPoint(96, 60), QPoint(100, 132), QPoint(150, 150)])
    patched = canvas.grab().toImage()
    canvas.set_mask_colour(canvas.mask_colour)  # made again, whole
    whole = canvas.grab().toImage()
    assert patched == whole
    assert canvas.mask_array()[32, 32] < 255 and canvas.mask_array()[32, 20] > 0
