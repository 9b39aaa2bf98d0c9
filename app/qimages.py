"""Numpy RGB arrays to and from QImages: the one place that knows both pixel layouts.

QImages are safe to make on any thread (QPixmaps are not): the worker builds previews with
these, the GUI thread turns them into pixmaps.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def array_to_qimage(array: np.ndarray) -> QImage:
    """An RGB uint8 (H, W, 3) array as a QImage that owns its own pixels."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w, _ = array.shape
    # The QImage only borrows ``array``'s buffer: copy() before the array can be freed.
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def qimage_to_array(image: QImage) -> np.ndarray:
    """A QImage as an RGB uint8 (H, W, 3) array that owns its pixels."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    # Qt pads each line to 4 bytes: read whole lines, then cut the padding off.
    data = np.frombuffer(rgb.constBits(), np.uint8, count=stride * h)
    return data.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()
