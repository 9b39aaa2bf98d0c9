"""The sketch canvas: strokes are painted into an off-screen image; paintEvent only blits it.

The image always has the generation size, so what a person draws is exactly what img2img gets.
A second layer, the inpainting mask (``app.mask_layer``), has the same size; while
``editing_mask`` is on, the brush and eraser paint the mask and the picture stays as it is.
One undo history holds the edits of both layers.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QRadialGradient,
    QTabletEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.mask_layer import (
    DEFAULT_MASK_COLOUR,
    OVERLAY_OPACITY,
    array_to_mask,
    blank_mask,
    cover_mask,
    mask_overlay,
    mask_to_array,
    mask_to_greyscale,
    patch_overlay,
    stripes,
)
from app.qimages import qimage_to_array
from app.signals import emit

BRUSH, ERASER, EYEDROPPER, FILL = "brush", "eraser", "eyedropper", "fill"
UNDO_LIMIT = 100
OUTLINED_TOOLS = (BRUSH, ERASER)  # the picker and fill act on a point or everything
SKETCH_LAYER, MASK_LAYER = "sketch", "mask"


class SketchCanvas(QWidget):
    changed = Signal()  # pixels of the picture changed
    mask_changed = Signal()  # pixels of the mask changed
    colour_picked = Signal(QColor)  # eyedropper
    history_changed = Signal()  # undo / redo availability
    file_dropped = Signal(str)  # a file dropped here: the window opens it (image or model)

    def __init__(self, width: int = 512, height: int = 512, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sketchCanvas")
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.background = QColor("white")
        self.colour = QColor("black")
        self._brush_size = 12.0  # diameter in image pixels
        self.hardness = 0.8  # 1 = hard edge, 0 = soft
        self.tool = BRUSH
        self._image = self._blank(QSize(width, height))
        self._mask = blank_mask(QSize(width, height))
        self._editing_mask = False
        self.mask_colour = QColor(DEFAULT_MASK_COLOUR)
        self._overlay: QImage | None = None  # the mask as shown; made again when it changes
        self._pattern: QImage | None = None  # the stripes it is shown with
        self.mask_revision = 0  # counts mask changes: a slow mask operation checks it
        # Each entry holds the layers one edit changed, as they were before it.
        self._undo: list[dict[str, QImage]] = []
        self._redo: list[dict[str, QImage]] = []
        self._last: QPointF | None = None
        self._tablet_down = False
        self._hover: QPointF | None = None  # the cursor, in widget coordinates, while over us
        self.setMouseTracking(True)  # the brush outline follows the cursor without a button
        self.setAcceptDrops(True)

    @property
    def brush_size(self) -> float:
        return self._brush_size

    @brush_size.setter
    def brush_size(self, size: float) -> None:
        self._brush_size = float(size)
        self.update()  # the outline shows the new size at once

    # -- image ------------------------------------------------------------------------------

    def _blank(self, size: QSize) -> QImage:
        image = QImage(size, QImage.Format.Format_RGB32)
        image.fill(self.background)
        return image

    def image(self) -> QImage:
        return self._image.copy()

    def picture_size(self) -> QSize:
        return self._image.size()

    def to_array(self) -> np.ndarray:
        """The sketch as RGB uint8, (H, W, 3): the engine's init image."""
        return qimage_to_array(self._image)

    def set_image(self, image: QImage) -> None:
        """Replace the sketch (undoable), scaled to cover the canvas and centred."""
        self._push_undo()
        self._image = self._cover(image, self._image.size())
        self._changed()

    def set_picture(
        self, image: QImage, mask: QImage | None = None, size: QSize | None = None
    ) -> None:
        """Take ``image`` at ``size`` (default: its own) with ``mask`` (None: an empty one), in
        one undoable step: a picture to inpaint, or one extended for outpainting."""
        size = size or image.size()
        self._push_undo(SKETCH_LAYER, MASK_LAYER)
        self._image = self._cover(image, size)
        self._mask = cover_mask(mask, size) if mask is not None else blank_mask(size)
        self._changed(SKETCH_LAYER, MASK_LAYER)

    def restore(self, image: QImage) -> None:
        """Show a sketch kept from an earlier run: not an edit, so not undoable."""
        self._image = self._cover(image, self._image.size())
        self._changed()

    def set_canvas_size(self, width: int, height: int) -> None:
        """Follow the generation size; the drawing and the mask are scaled along (undoable)."""
        size = QSize(width, height)
        if size == self._image.size():
            return
        self._push_undo(SKETCH_LAYER, MASK_LAYER)
        self._image = self._cover(self._image, size)
        self._mask = cover_mask(self._mask, size)
        self._changed(SKETCH_LAYER, MASK_LAYER)

    def _cover(self, image: QImage, size: QSize) -> QImage:
        scaled = image.scaled(
            size,
            Qt.AspectRatioMode.KeepAspectRatioByExpanding,
            Qt.TransformationMode.SmoothTransformation,
        )
        out = self._blank(size)
        painter = QPainter(out)
        x = (size.width() - scaled.width()) // 2
        y = (size.height() - scaled.height()) // 2
        painter.drawImage(x, y, scaled)
        painter.end()
        return out

    def clear(self) -> None:
        self._push_undo()
        self._image.fill(self.background)
        self._changed()

    def fill_background(self, colour: QColor | None = None) -> None:
        """Fill the whole canvas with the current colour: a quick background."""
        self._push_undo()
        self._image.fill(colour or self.colour)
        self._changed()

    # -- mask -------------------------------------------------------------------------------

    @property
    def editing_mask(self) -> bool:
        """Inpaint mode: the brush paints the mask, which is shown over the picture."""
        return self._editing_mask

    @editing_mask.setter
    def editing_mask(self, on: bool) -> None:
        self._editing_mask = bool(on)
        self.update()

    def mask_image(self) -> QImage:
        return self._mask.copy()

    def mask_array(self) -> np.ndarray:
        """The mask as (H, W) uint8, 255 = repaint: the engine's ``mask``."""
        return mask_to_array(self._mask)

    def mask_for_store(self) -> QImage:
        """The mask as it is saved: greyscale, white = repaint."""
        return mask_to_greyscale(self._mask)

    def set_mask_array(self, mask: np.ndarray) -> None:
        """Replace the mask (undoable): invert, grow, shrink, feather, clear."""
        if mask.shape != (self._image.height(), self._image.width()):
            raise ValueError(f"a mask of {mask.shape} for a picture of {self._image.size()}")
        self._push_undo(MASK_LAYER)
        self._mask = array_to_mask(mask)
        self._changed(MASK_LAYER)

    def clear_mask(self) -> None:
        self._push_undo(MASK_LAYER)
        self._mask.fill(0)
        self._changed(MASK_LAYER)

    def restore_mask(self, mask: QImage) -> None:
        """Show a mask kept from an earlier run: not an edit, so not undoable."""
        self._mask = cover_mask(mask, self._image.size())
        self._changed(MASK_LAYER)

    def set_mask_colour(self, colour: QColor) -> None:
        self.mask_colour = QColor(colour)
        self._overlay = self._pattern = None
        self.update()

    def _mask_overlay(self) -> QImage:
        if self._pattern is None or self._pattern.size() != self._mask.size():
            self._pattern, self._overlay = stripes(self._mask.size(), self.mask_colour), None
        if self._overlay is None:
            self._overlay = mask_overlay(self._mask, self._pattern)
        return self._overlay

    # -- history ----------------------------------------------------------------------------

    def _layer(self, name: str) -> QImage:
        return self._mask if name == MASK_LAYER else self._image

    def _push_undo(self, *layers: str) -> None:
        self._undo.append({name: self._layer(name).copy() for name in layers or (SKETCH_LAYER,)})
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()
        emit(self.history_changed)

    def _swap(self, entry: dict[str, QImage]) -> dict[str, QImage]:
        """Put the entry's layers back; answer the ones they replace (for the other stack)."""
        replaced = {name: self._layer(name) for name in entry}
        for name, image in entry.items():
            if name == MASK_LAYER:
                self._mask = image
            else:
                self._image = image
        self._changed(*entry)
        return replaced

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> None:
        if self._undo:
            self._redo.append(self._swap(self._undo.pop()))
            emit(self.history_changed)

    def redo(self) -> None:
        if self._redo:
            self._undo.append(self._swap(self._redo.pop()))
            emit(self.history_changed)

    def _changed(self, *layers: str, dirty: QRect | None = None) -> None:
        """``dirty``: the part of the mask a stroke changed, where the overlay is made anew."""
        self.update()
        if MASK_LAYER in layers:
            if dirty is not None and self._overlay is not None and self._pattern is not None:
                area = dirty.intersected(self._mask.rect())
                patch_overlay(self._overlay, self._mask, self._pattern, area)
            else:
                self._overlay = None
            self.mask_revision += 1
            emit(self.mask_changed)
        if SKETCH_LAYER in layers or not layers:
            emit(self.changed)

    # -- painting ---------------------------------------------------------------------------

    def target_rect(self) -> QRectF:
        """Where the image sits in the widget: as large as fits, centred."""
        size = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) / 2
        y = (self.height() - size.height()) / 2
        return QRectF(x, y, size.width(), size.height())

    def to_image_pos(self, pos: QPointF) -> QPointF:
        rect = self.target_rect()
        scale = self._image.width() / max(1.0, rect.width())
        return (pos - rect.topLeft()) * scale

    def outline_diameter(self) -> float:
        """The brush as drawn on screen: its size in image pixels times the display scale."""
        return self.brush_size * self.target_rect().width() / max(1, self._image.width())

    def _dab(self, painter: QPainter, at: QPointF, pressure: float) -> None:
        radius = max(0.5, self.brush_size * pressure / 2)
        colour = self.background if self.tool == ERASER else self.colour
        if self._editing_mask:  # Alpha8: opaque adds to the mask; destination-out erases
            colour = QColor(255, 255, 255)
        if self.hardness >= 0.99:
            painter.setBrush(colour)
        else:
            gradient = QRadialGradient(at, radius)
            edge = QColor(colour)
            edge.setAlpha(0)
            gradient.setColorAt(min(self.hardness, 0.98), colour)
            gradient.setColorAt(1.0, edge)
            painter.setBrush(QBrush(gradient))
        painter.drawEllipse(at, radius, radius)

    def stroke_to(self, at: QPointF, pressure: float = 1.0) -> None:
        """Paint dabs from the last point to ``at`` (image coordinates)."""
        painter = QPainter(self._mask if self._editing_mask else self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        if self._editing_mask and self.tool == ERASER:
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationOut)
        start = self._last if self._last is not None else at
        spacing = max(0.5, self.brush_size * pressure / 8)  # dense enough for a smooth line
        distance = math.hypot(at.x() - start.x(), at.y() - start.y())
        count = max(1, int(distance / spacing))
        for i in range(1, count + 1):
            self._dab(painter, start + (at - start) * (i / count), pressure)
        painter.end()
        self._last = at
        reach = self.brush_size * pressure / 2 + 2
        dirty = QRectF(start, at).normalized().adjusted(-reach, -reach, reach, reach)
        self._changed(
            MASK_LAYER if self._editing_mask else SKETCH_LAYER, dirty=dirty.toAlignedRect()
        )

    def begin_stroke(self, at: QPointF, pressure: float = 1.0) -> None:
        if self.tool == EYEDROPPER:
            if not self._editing_mask:  # the mask has no colours to pick
                self._pick(at)
            return
        if self.tool == FILL:
            if self._editing_mask:  # the whole picture to repaint
                self.set_mask_array(np.full_like(self.mask_array(), 255))
            else:
                self.fill_background()
            return
        self._push_undo(MASK_LAYER if self._editing_mask else SKETCH_LAYER)
        self._last = None
        self.stroke_to(at, pressure)

    def end_stroke(self) -> None:
        self._last = None

    def _pick(self, at: QPointF) -> None:
        x, y = int(at.x()), int(at.y())
        if self._image.valid(x, y):
            self.colour = self._image.pixelColor(x, y)
            emit(self.colour_picked, QColor(self.colour))

    # -- events -----------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(self.target_rect(), self._image)
        if self._editing_mask:
            painter.setOpacity(OVERLAY_OPACITY)
            painter.drawImage(self.target_rect(), self._mask_overlay())
            painter.setOpacity(1.0)
        if self._hover is not None and self.tool in OUTLINED_TOOLS:
            self._draw_outline(painter, self._hover)
        painter.end()

    def _draw_outline(self, painter: QPainter, at: QPointF) -> None:
        # A dark ring inside a light one: visible on any colour. Not antialiased: a crisp line
        # reads better than a blurred one. Drawn over the widget only, never into the image.
        radius = max(1.0, self.outline_diameter() / 2)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for colour, r in ((QColor(0, 0, 0, 220), radius), (QColor(255, 255, 255, 220), radius + 1)):
            painter.setPen(QPen(colour, 1))
            painter.drawEllipse(at, r, r)

    def _outline_rect(self, at: QPointF | None) -> QRect:
        if at is None:
            return QRect()
        reach = self.outline_diameter() / 2 + 3
        return QRectF(at.x() - reach, at.y() - reach, 2 * reach, 2 * reach).toAlignedRect()

    def _move_outline(self, at: QPointF | None) -> None:
        """Repaint only where the outline was and where it goes."""
        self.update(self._outline_rect(self._hover))
        self._hover = at
        self.update(self._outline_rect(at))

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802
        self._move_outline(None)
        super().leaveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and not self._tablet_down:
            self.begin_stroke(self.to_image_pos(event.position()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._move_outline(event.position())
        if event.buttons() & Qt.MouseButton.LeftButton and self._last is not None:
            if not self._tablet_down:
                self.stroke_to(self.to_image_pos(event.position()))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.end_stroke()

    def tabletEvent(self, event: QTabletEvent) -> None:  # noqa: N802
        # Pen pressure scales the brush; Qt then skips the synthesized mouse events.
        self._move_outline(event.position())
        pos = self.to_image_pos(event.position())
        pressure = max(0.05, event.pressure())
        kind = event.type()
        if kind == QTabletEvent.Type.TabletPress:
            self._tablet_down = True
            self.begin_stroke(pos, pressure)
        elif kind == QTabletEvent.Type.TabletMove and self._tablet_down and self._last is not None:
            self.stroke_to(pos, pressure)
        elif kind == QTabletEvent.Type.TabletRelease:
            self._tablet_down = False
            self.end_stroke()
        event.accept()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        mime = event.mimeData()
        if mime.hasImage() or any(url.isLocalFile() for url in mime.urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        mime = event.mimeData()
        files = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
        if files:
            emit(self.file_dropped, files[0])
        elif mime.hasImage():
            self.set_image(QImage(mime.imageData()))
        event.acceptProposedAction()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(384, 384)
