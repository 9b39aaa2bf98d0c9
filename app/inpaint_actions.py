"""The window's inpainting: pictures taken in to inpaint, the mask for the request, outpainting.

Every source of a picture to inpaint (the gallery strip's and browser's "Inpaint this", the last
result, File › Open, paste, drop, the dropped-picture offer) ends in ``inpaint(image)``: the
picture goes onto the canvas at its own size (the generation size follows it, so nothing is
cropped and the paste-back is pixel for pixel), the mask starts empty, and the mode is Inpaint.
Both layers change in one undoable step, so a picture taken in by mistake is one Ctrl+Z away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QSize
from PySide6.QtGui import QImage

from app.mask_layer import array_to_mask
from app.outpaint_dialog import OutpaintDialog
from app.qimages import array_to_qimage
from app.viewmodel import INPAINT, RANDOM_SEED
from engine.api import MAX_SIZE, MIN_SIZE, GenerationRequest
from engine.errors import EngineError
from engine.inpaint.checks import check_inpainting
from engine.inpaint.masks import is_empty
from engine.inpaint.outpaint import extend

if TYPE_CHECKING:
    from app.window import MainWindow

SKETCH_TITLE = "Sketch  (used in “Sketch to image” mode)"
INPAINT_TITLE = "Picture to inpaint  (paint the mask over what to repaint)"
# Said after the engine's own "nothing to repaint" message, in the window's words.
BRUSH_HINT = "In Inpaint mode the brush paints the mask: paint over the part to change."


def inpaint_size(width: int, height: int) -> QSize:
    """The generation size for a picture of ``width`` x ``height``: its own when the engine
    makes it, else the nearest one (within the limits, sides multiples of 8, same shape)."""
    scale = min(1.0, MAX_SIZE / max(width, height))  # too large: scaled down, never up
    scale = max(scale, MIN_SIZE / max(1, min(width, height)))  # too small: scaled up

    def side(value: int) -> int:
        return min(MAX_SIZE, max(MIN_SIZE, round(value * scale / 8) * 8))

    return QSize(side(width), side(height))


class InpaintActions(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.dialog: OutpaintDialog | None = None
        self.following = False  # the generation size is being set to the canvas's
        window.canvas.changed.connect(self._follow_canvas_size)

    def _follow_canvas_size(self) -> None:
        """A picture taken in at its own size, an extension, or the undo of either: the
        generation size follows the canvas (set side by side, the canvas must not rescale to
        the half-changed size in between)."""
        size, params = self.window.canvas.picture_size(), self.window.params
        if (params.width, params.height) == (size.width(), size.height()):
            return
        self.following = True
        try:
            params.width, params.height = size.width(), size.height()
        finally:
            self.following = False

    def inpaint(self, image: QImage) -> None:
        """Take ``image`` to inpaint: on the canvas at its size, empty mask, Inpaint mode."""
        w = self.window
        if image.isNull():
            w.show_error("This picture could not be read, so it cannot be inpainted.")
            return
        size = inpaint_size(image.width(), image.height())
        w.canvas.set_picture(image, None, size)  # the generation size follows
        w.params.mode = INPAINT
        w.pictures.show_sketch()
        if size != image.size():
            w.statusBar().showMessage(
                f"The picture is {image.width()} × {image.height()}; it is inpainted at "
                f"{size.width()} × {size.height()}, the nearest size this app makes.",
                10000,
            )

    def sync_mode(self, mode: str) -> None:
        """In Inpaint mode the canvas's brush paints the mask, and its title says so."""
        w = self.window
        w.sketch.set_inpainting(mode == INPAINT)
        if w.sketch_title is not None:
            w.sketch_title.setText(f"<b>{INPAINT_TITLE if mode == INPAINT else SKETCH_TITLE}</b>")

    def take(self, image: QImage) -> None:
        """A picture for the canvas from a source that serves both modes (Load…, paste into
        the sketch, a drop on the canvas, Use result): to inpaint in Inpaint mode, else the
        sketch."""
        if self.window.params.mode == INPAINT:
            self.inpaint(image)
        else:
            self.window.use_as_sketch(image)

    def request_mask(self) -> np.ndarray | None:
        """The mask for the request in Inpaint mode; None in the other modes."""
        if self.window.params.mode != INPAINT:
            return None
        return self.window.canvas.mask_array()

    @staticmethod
    def problem(request: GenerationRequest) -> str:
        """The engine's own message for inpainting settings it would refuse (an empty mask:
        "nothing to repaint"), said before a job is queued; "" when there is none."""
        try:
            check_inpainting(request)
        except EngineError as exc:
            empty = request.mask is not None and is_empty(request.mask)
            return f"{exc}\n{BRUSH_HINT}" if empty else str(exc)
        return ""

    # -- outpainting ------------------------------------------------------------------------

    def ask_outpaint(self) -> None:
        canvas = self.window.canvas
        size = canvas.image().size()
        self.dialog = OutpaintDialog(size.width(), size.height(), self.window)
        self.dialog.accepted.connect(self._outpaint_chosen)
        self.dialog.open()

    def _outpaint_chosen(self) -> None:
        if self.dialog is None:
            return
        e = self.dialog.extension()
        self.outpaint(e.left, e.top, e.right, e.bottom, e.fill)

    def outpaint(self, left: int, top: int, right: int, bottom: int, fill: str = "edge") -> None:
        """Extend the picture, mask the new area (keeping what was masked already) and switch
        to Inpaint: one Generate paints the new area in."""
        w = self.window
        picture, old_mask = w.canvas.to_array(), w.canvas.mask_array()
        seed = w.params.seed if w.params.seed != RANDOM_SEED else 0
        bigger, mask = extend(picture, left, top, right, bottom, fill=fill, seed=seed)
        h, wd = old_mask.shape
        inner = mask[top : top + h, left : left + wd]
        np.maximum(inner, old_mask, out=inner)  # what was masked stays masked
        w.canvas.set_picture(array_to_qimage(bigger), array_to_mask(mask))  # size follows
        w.params.mode = INPAINT
        w.pictures.show_sketch()
