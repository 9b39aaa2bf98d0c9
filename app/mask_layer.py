"""The inpainting mask as the canvas's second layer: an 8-bit image the size of the picture.

The mask is a ``QImage`` of ``Format_Alpha8``: 255 = repaint, 0 = keep, as the engine's
``GenerationRequest.mask``. Alpha8 lets the canvas paint it with the same soft dabs as the
sketch (source-over adds, destination-out erases) and lets it be shown by masking a coloured
pattern with it (destination-in), with no per-pixel Python. On disk it is a greyscale PNG
(white = repaint), the form a person and ``latentdesk-cli --mask`` read.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QLinearGradient, QPainter

MASK_FORMAT = QImage.Format.Format_Alpha8
DEFAULT_MASK_COLOUR = QColor(255, 40, 90)  # a red no photograph is full of
OVERLAY_OPACITY = 0.55  # the picture stays readable under the mask


def blank_mask(size: QSize) -> QImage:
    mask = QImage(size, MASK_FORMAT)
    mask.fill(0)
    return mask


def mask_to_array(mask: QImage) -> np.ndarray:
    """The mask as (H, W) uint8, 255 = repaint: ``GenerationRequest.mask``."""
    mask = mask if mask.format() == MASK_FORMAT else mask.convertToFormat(MASK_FORMAT)
    h, w, stride = mask.height(), mask.width(), mask.bytesPerLine()
    data = np.frombuffer(mask.constBits(), np.uint8, count=stride * h)
    return data.reshape(h, stride)[:, :w].copy()  # lines are padded to 4 bytes


def array_to_mask(array: np.ndarray) -> QImage:
    """(H, W) uint8 (255 = repaint) as an Alpha8 QImage that owns its pixels."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w = array.shape
    return QImage(array.data, w, h, w, MASK_FORMAT).copy()


def mask_to_greyscale(mask: QImage) -> QImage:
    """What is saved: white where the mask repaints."""
    array = np.ascontiguousarray(mask_to_array(mask))
    h, w = array.shape
    return QImage(array.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def mask_from_picture(image: QImage) -> QImage:
    """A mask read back from a file: its alpha when it has transparency (a cut-out), else its
    brightness (white = repaint)."""
    if image.hasAlphaChannel():
        argb = image.convertToFormat(QImage.Format.Format_ARGB32)
        h, w, stride = argb.height(), argb.width(), argb.bytesPerLine()
        data = np.frombuffer(argb.constBits(), np.uint8, count=stride * h)
        alpha = data.reshape(h, stride)[:, : 4 * w].reshape(h, w, 4)[..., 3]  # BGRA in memory
        if alpha.min() < 255:
            return array_to_mask(alpha)
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    h, w, stride = grey.height(), grey.width(), grey.bytesPerLine()
    data = np.frombuffer(grey.constBits(), np.uint8, count=stride * h)
    return array_to_mask(data.reshape(h, stride)[:, :w])


def cover_mask(mask: QImage, size: QSize) -> QImage:
    """The mask scaled as the canvas scales its picture: to cover ``size``, centred."""
    if mask.size() == size:
        return mask.copy()
    scaled = mask.scaled(
        size,
        Qt.AspectRatioMode.KeepAspectRatioByExpanding,
        Qt.TransformationMode.SmoothTransformation,
    )
    out = blank_mask(size)
    painter = QPainter(out)
    painter.drawImage((size.width() - scaled.width()) // 2, (size.height() - scaled.height()) // 2,
                      scaled)  # fmt: skip
    painter.end()
    return out


def stripes(size: QSize, colour: QColor) -> QImage:
    """Diagonal stripes of ``colour`` and a contrasting grey: one of the two shows on any
    picture (a plain tint vanishes over a picture of its own colour)."""
    pattern = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    contrast = QColor(20, 20, 20) if colour.lightnessF() > 0.6 else QColor(245, 245, 245)
    period = max(8.0, max(size.width(), size.height()) / 48)  # a few screen pixels when shown
    gradient = QLinearGradient(QPointF(0, 0), QPointF(period, period))
    gradient.setSpread(QLinearGradient.Spread.RepeatSpread)
    for at, c in ((0.0, colour), (0.6, colour), (0.6001, contrast), (1.0, contrast)):
        gradient.setColorAt(at, c)
    painter = QPainter(pattern)
    painter.fillRect(pattern.rect(), QBrush(gradient))
    painter.end()
    return pattern


def mask_overlay(mask: QImage, pattern: QImage) -> QImage:
    """``pattern`` kept only where the mask is, as strongly as the mask is."""
    overlay = pattern.copy()
    painter = QPainter(overlay)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
    painter.drawImage(0, 0, mask)
    painter.end()
    return overlay


def patch_overlay(overlay: QImage, mask: QImage, pattern: QImage, rect: QRect) -> None:
    """Make ``rect`` of ``overlay`` anew after a stroke there: a whole 2048² overlay takes
    25 ms, too slow to redo at every mouse move."""
    painter = QPainter(overlay)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
    painter.drawImage(rect.topLeft(), pattern, rect)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
    painter.drawImage(rect.topLeft(), mask, rect)
    painter.end()
