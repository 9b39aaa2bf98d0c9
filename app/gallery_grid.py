"""The gallery browser's grid: fixed cells in rows that wrap, painted by a delegate.

Every cell has the same size (``setUniformItemSizes``), so the view lays out 10,000 rows without
asking the model about any of them; it asks only for the cells it paints, which is what keeps
the pages fetched and the thumbnails made to what is on screen.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from app.gallery_grid_model import STARRED_ROLE
from app.thumbnails import THUMB_SIZE

CELL = THUMB_SIZE + 12
EMPTY_TEXT = "No pictures here yet. Finished pictures appear here as they are saved."
NO_MATCH_TEXT = "No pictures match this search."


class ThumbnailDelegate(QStyledItemDelegate):
    """The thumbnail centred in its cell, a grey tile until it is ready, a star if starred."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        rect: QRect = option.rect  # type: ignore[attr-defined]
        palette = option.palette  # type: ignore[attr-defined]
        state = option.state  # type: ignore[attr-defined]
        cell = rect.adjusted(3, 3, -3, -3)
        if state & QStyle.StateFlag.State_Selected:
            painter.fillRect(cell, palette.highlight())
        thumb = index.data(Qt.ItemDataRole.DecorationRole)
        picture = cell.adjusted(3, 3, -3, -3)
        if isinstance(thumb, QPixmap) and not thumb.isNull():
            size = thumb.size().scaled(picture.size(), Qt.AspectRatioMode.KeepAspectRatio)
            centre = picture.center()
            picture = QRect(0, 0, size.width(), size.height())
            picture.moveCenter(centre)
            painter.drawPixmap(picture, thumb)
        else:  # being made: a quiet tile, not a spinner per cell
            # Opaque: a translucent fill blends every pixel, ten times slower per cell.
            painter.fillRect(picture, palette.midlight())
        if index.data(STARRED_ROLE):
            self._paint_star(painter, picture)
        if state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(palette.highlight().color())
            painter.drawRect(cell.adjusted(0, 0, -1, -1))

    def _paint_star(self, painter: QPainter, picture: QRect) -> None:
        badge = QRect(picture.right() - 25, picture.top() + 3, 22, 22)  # the picture's corner
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 140))  # readable over light and dark pictures
        painter.drawEllipse(badge)
        painter.setPen(QColor(255, 210, 60))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, "★")
        painter.restore()

    def sizeHint(  # noqa: N802 (Qt name)
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        return QSize(CELL, CELL)


class GalleryGrid(QListView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("galleryGrid")
        # List mode with wrapping is a grid whose layout needs no per-item sizes; icon mode
        # would place every item in a spatial tree, row by row.
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setGridSize(QSize(CELL, CELL))
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(CELL // 4)
        self.setItemDelegate(ThumbnailDelegate(self))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAccessibleName("Pictures")
        self.empty_text = EMPTY_TEXT

    def dataChanged(  # noqa: N802 (Qt name)
        self,
        top_left: QModelIndex | QPersistentModelIndex,
        bottom_right: QModelIndex | QPersistentModelIndex,
        roles: Sequence[int] = (),
    ) -> None:
        """Repaint, without QListView's relayout of every row (it lays all 10,000 out again
        for each thumbnail that arrives): cells have one size, so no change moves any."""
        if top_left == bottom_right:
            self.update(top_left)
        else:
            self.viewport().update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0:  # say why the grid is empty
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(self.viewport().rect().adjusted(20, 0, -20, 0), flags, self.empty_text)
