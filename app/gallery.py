"""The strip under the preview: this session's pictures, a view of a GalleryModel
(app/gallery_model.py) that forwards actions to it.

Row i of the strip shows ``model.entries[i]``; every change goes through the strip, which keeps
the two in step. Thumbnails come from the finished images in memory; a saved file is decoded
again (off the GUI thread, by an ImageLoader) only to show, copy or sketch it at full size.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from PySide6.QtCore import QPoint, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QGuiApplication,
    QIcon,
    QImage,
    QPainter,
    QPaintEvent,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QWidget,
)

from app.gallery_model import GalleryEntry, GalleryError, GalleryModel
from app.imageio import ImageLoader
from app.jobs import FinishedImage
from app.qimages import array_to_qimage
from app.signals import emit

THUMB = 96
TITLE = "This session's pictures"
EMPTY_TEXT = "The pictures you make in this session appear here, newest first."
# What a decoded file is for: the ImageLoader's tag is (purpose, path).
SHOW, SKETCH, COPY, INPAINT = "show", "sketch", "copy", "inpaint"


class GalleryStrip(QListWidget):
    image_chosen = Signal(QImage)  # click: show it large
    parameters_chosen = Signal(str)  # double click: restore the controls
    sketch_chosen = Signal(QImage)  # "Use as sketch"
    inpaint_chosen = Signal(QImage)  # "Inpaint this"
    message = Signal(str)  # an error: a dialog
    notice = Signal(str)  # a confirmation: the status bar
    folder_not_opened = Signal(object)  # Path: no file manager could show it

    def __init__(self, model: GalleryModel | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("galleryView")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setFixedHeight(THUMB + 34)
        self.setSpacing(4)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setToolTip(
            f"{TITLE}: click to view · double-click to reuse its settings · right-click for more"
        )
        self.setAccessibleName(TITLE)
        self.gallery_model = model or GalleryModel()
        self.save_folder: Path | None = None  # where "Save as…" starts: the gallery folder
        self._loader = ImageLoader(self)
        self._loader.loaded.connect(self._on_loaded)
        self._loader.failed.connect(self._on_load_failed)
        self.itemClicked.connect(lambda item: self._full_image(item, SHOW))
        self.itemDoubleClicked.connect(self._restore)
        self.customContextMenuRequested.connect(self._menu)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        super().paintEvent(event)
        if self.count() == 0:  # say what this empty strip is for
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, EMPTY_TEXT)

    # -- contents ---------------------------------------------------------------------------

    def forget_missing(self) -> None:
        """Take out the pictures whose file is gone (deleted by another program, or moved to
        the trash from the gallery browser)."""
        before = list(self.gallery_model.entries)
        gone = self.gallery_model.forget_missing()
        for row in sorted((before.index(e) for e in gone), reverse=True):
            self.takeItem(row)

    def add_image(self, image: FinishedImage) -> None:
        entry = self.gallery_model.add(image)
        thumb = _thumbnail(array_to_qimage(image.array), unsaved=entry.path is None)
        self.insertItem(0, self._new_item(entry, thumb))
        self.scrollToTop()

    def _new_item(self, entry: GalleryEntry, icon: QPixmap) -> QListWidgetItem:
        item = QListWidgetItem(QIcon(icon), "")
        item.setSizeHint(QSize(THUMB + 8, THUMB + 8))
        item.setToolTip(_tooltip(entry))
        return item

    def entry(self, item: QListWidgetItem) -> GalleryEntry:
        return self.gallery_model.entries[self.row(item)]

    def entries(self) -> list[GalleryEntry]:
        return list(self.gallery_model.entries)

    def _load(self, purpose: str, entry: GalleryEntry) -> None:
        assert entry.path is not None
        self._loader.load((purpose, entry.path), entry.path)

    def _on_loaded(self, tag: object, image: QImage) -> None:
        purpose, path = cast(tuple[str, Path], tag)
        entry = self.gallery_model.entry_for_path(path)
        if entry is None:
            return  # deleted, or taken out as its file went
        if purpose == SHOW:
            emit(self.image_chosen, image)
        elif purpose == SKETCH:
            emit(self.sketch_chosen, image)
        elif purpose == INPAINT:
            emit(self.inpaint_chosen, image)
        elif purpose == COPY:
            QGuiApplication.clipboard().setImage(image)
            emit(self.notice, "Image copied.")

    def _on_load_failed(self, tag: object, message: str) -> None:
        emit(self.message, message)

    # -- actions ----------------------------------------------------------------------------

    def _full_image(self, item: QListWidgetItem, purpose: str) -> None:
        """Answer with the full-size image: at once if it is in memory, else decoded off-thread."""
        entry = self.entry(item)
        if entry.array is None:
            self._load(purpose, entry)
            return
        image = array_to_qimage(entry.array)
        if purpose == COPY:
            QGuiApplication.clipboard().setImage(image)
            emit(self.notice, "Image copied.")
        else:
            signals = {SHOW: self.image_chosen, SKETCH: self.sketch_chosen}
            emit(signals.get(purpose, self.inpaint_chosen), image)

    def parameters_of(self, item: QListWidgetItem) -> str:
        return self.gallery_model.parameters(self.entry(item))

    def _restore(self, item: QListWidgetItem) -> None:
        parameters = self.parameters_of(item)
        if parameters:
            emit(self.parameters_chosen, parameters)
        else:
            emit(self.notice, "This image carries no generation settings.")

    def _menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is not None:
            self.build_menu(item).exec(self.viewport().mapToGlobal(pos))

    def build_menu(self, item: QListWidgetItem) -> QMenu:
        path = self.entry(item).path
        menu = QMenu(self)
        if path is None:
            menu.addAction("Save as…", lambda: self.save_as(item))
        else:
            menu.addAction("Open file location", lambda: self.open_location(path))
        menu.addAction("Copy image", lambda: self._full_image(item, COPY))
        menu.addAction("Copy parameters", lambda: self.copy_parameters(item))
        menu.addAction("Use settings", lambda: self._restore(item))
        menu.addAction("Use as sketch", lambda: self._full_image(item, SKETCH))
        menu.addAction("Inpaint this", lambda: self._full_image(item, INPAINT))
        menu.addSeparator()
        menu.addAction("Delete…", lambda: self.delete(item))
        return menu

    def open_location(self, path: Path) -> None:
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent))):
            emit(self.folder_not_opened, path.parent)

    def copy_parameters(self, item: QListWidgetItem) -> None:
        QGuiApplication.clipboard().setText(self.parameters_of(item))
        emit(self.notice, "Parameters copied.")

    def confirm(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Latentdesk", question)
        return answer == QMessageBox.StandardButton.Yes

    def delete(self, item: QListWidgetItem) -> None:
        entry = self.entry(item)
        name = entry.path.name if entry.path else "this unsaved image"
        if not self.confirm(f"Delete {name}? This cannot be undone."):
            return
        try:
            self.gallery_model.delete(entry)
        except GalleryError as exc:
            emit(self.message, str(exc))
            return
        self.takeItem(self.row(item))

    def save_as(self, item: QListWidgetItem, path: str | None = None) -> None:
        entry = self.entry(item)
        if entry.array is None:
            return
        if path is None:
            start = str((self.save_folder or Path.home()) / "latentdesk.png")
            path, _ = QFileDialog.getSaveFileName(self, "Save image as", start, "PNG (*.png)")
            if not path:
                return
        thumb = _thumbnail(array_to_qimage(entry.array))
        try:
            saved = self.gallery_model.save_as(entry, path)
        except GalleryError as exc:
            emit(self.message, str(exc))
            return
        item.setIcon(QIcon(thumb))  # without the "unsaved" mark
        item.setToolTip(_tooltip(entry))
        emit(self.notice, f"Saved {saved.name}.")


def _tooltip(entry: GalleryEntry) -> str:
    if entry.path is None:
        return "Not saved yet: right-click and choose “Save as…”"
    return entry.path.name


def _thumbnail(image: QImage, unsaved: bool = False) -> QPixmap:
    scaled = image.scaled(
        THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    pixmap = QPixmap.fromImage(scaled)
    if unsaved:  # a red corner mark: this one exists only in memory
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(QColor(220, 50, 50))
        painter.setPen(QColor("white"))
        painter.drawEllipse(4, 4, 16, 16)
        painter.drawText(4, 4, 16, 16, Qt.AlignmentFlag.AlignCenter, "!")
        painter.end()
    return pixmap
