"""The preview pane: the picture forming during sampling, then the result."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget


class PreviewPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("previewPane")
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pixmap: QPixmap | None = None
        self._image: QImage | None = None
        self.placeholder = "Your picture will appear here.\nType a prompt and press Ctrl+Enter."
        self.updates = 0  # how many images were shown: lets tests see previews arrive
        self.cancelled = False  # the picture shown is a cancelled run's half-finished preview

    def set_image(self, image: QImage) -> None:
        # QPixmap lives on the GUI thread only: this slot runs there.
        self._image = image
        self._pixmap = QPixmap.fromImage(image)
        self.cancelled = False
        self.setAccessibleDescription("")
        self.updates += 1
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def clear(self) -> None:
        self._image = self._pixmap = None
        self.cancelled = False
        self.update()

    def mark_cancelled(self) -> None:
        """Badge the half-finished picture, so nobody takes it for a result."""
        if self._pixmap is not None:
            self.cancelled = True
            self.setAccessibleDescription("Cancelled: an unfinished preview")
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        if self._pixmap is None:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        size = self._pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) / 2
        y = (self.height() - size.height()) / 2
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        target = QRectF(x, y, size.width(), size.height())
        painter.drawPixmap(target, self._pixmap, QRectF())
        if self.cancelled:
            self._paint_cancelled(painter, target)

    def _paint_cancelled(self, painter: QPainter, picture: QRectF) -> None:
        veil = QColor(self.palette().base().color())
        veil.setAlphaF(0.45)  # dimmed, still recognisable: it shows how far the run got
        painter.fillRect(picture, veil)
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        text = "Cancelled"
        metrics = painter.fontMetrics()
        badge = QRectF(0, 0, metrics.horizontalAdvance(text) + 24, metrics.height() + 12)
        badge.moveCenter(picture.center())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # Outlined: the screenshots showed a bare badge melting into a pale picture.
        painter.setPen(self.palette().mid().color())
        painter.setBrush(self.palette().window())
        painter.drawRoundedRect(badge, 6, 6)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(384, 384)
