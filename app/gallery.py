"""The gallery strip: the folder's images, newest first, plus results that could not be saved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
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

from app.imageio import ImageLoader
from app.jobs import FinishedImage
from app.signals import emit
from app.worker import array_to_qimage

THUMB = 96
MAX_LISTED = 500  # the strip shows the newest ones; the folder keeps them all
ROLE = Qt.ItemDataRole.UserRole
EMPTY_TEXT = "Finished pictures are saved here, newest first."


@dataclass
class GalleryEntry:
    path: Path | None  # None: not saved yet
    parameters: str = ""
    array: np.ndarray | None = None  # kept for unsaved images, so "Save as…" can write them


def list_images(folder: Path) -> list[Path]:
    """PNG files in ``folder``, newest first (our names sort by time; mtime breaks ties)."""
    try:
        files = [p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.name[0] != "."]
    except OSError:
        return []
    files.sort(key=lambda p: (_mtime(p), p.name), reverse=True)
    return files[:MAX_LISTED]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def read_parameters(path: Path) -> str:
    from engine.metadata import read_png_parameters

    return read_png_parameters(path) or ""


class GalleryStrip(QListWidget):
    image_chosen = Signal(QImage)  # click: show it large
    parameters_chosen = Signal(str)  # double click: restore the controls
    sketch_chosen = Signal(QImage)  # "Use as sketch"
    message = Signal(str)  # for the status bar / a dialog

    def __init__(self, parent: QWidget | None = None) -> None:
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
        self.setToolTip("Click to view · double-click to reuse its settings · right-click for more")
        self.folder: Path | None = None
        self._loader = ImageLoader(self)
        self._loader.loaded.connect(self._on_loaded)
        self._loader.failed.connect(self._on_load_failed)
        self.itemClicked.connect(self._show)
        self.itemDoubleClicked.connect(self._restore)
        self.customContextMenuRequested.connect(self._menu)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        super().paintEvent(event)
        if self.count() == 0:  # say what this empty strip is for
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, EMPTY_TEXT)

    # -- contents ---------------------------------------------------------------------------

    def set_folder(self, folder: Path) -> None:
        self.folder = Path(folder)
        unsaved = [
            self.item(i) for i in range(self.count()) if self.entry(self.item(i)).path is None
        ]
        while self.count():
            item = self.takeItem(0)
            if item not in unsaved:
                del item
        for item in unsaved:
            self.addItem(item)
        for path in list_images(self.folder):
            self.addItem(self._new_item(GalleryEntry(path), _placeholder()))
            self._loader.load(("thumb", str(path)), path, THUMB)

    def add_finished(self, images: list[FinishedImage]) -> None:
        for finished in images:
            entry = GalleryEntry(finished.path, finished.parameters)
            if finished.path is None:
                entry.array = finished.array
            thumb = array_to_qimage(finished.array)
            self.insertItem(0, self._new_item(entry, _thumbnail(thumb, unsaved=entry.path is None)))
        self.scrollToTop()

    def _new_item(self, entry: GalleryEntry, icon: QPixmap) -> QListWidgetItem:
        item = QListWidgetItem(QIcon(icon), "")
        item.setData(ROLE, entry)
        item.setSizeHint(QSize(THUMB + 8, THUMB + 8))
        item.setToolTip(self._tooltip(entry))
        return item

    def _tooltip(self, entry: GalleryEntry) -> str:
        if entry.path is None:
            return "Not saved yet: right-click and choose “Save as…”"
        return entry.path.name

    def entry(self, item: QListWidgetItem) -> GalleryEntry:
        return item.data(ROLE)

    def entries(self) -> list[GalleryEntry]:
        return [self.entry(self.item(i)) for i in range(self.count())]

    def _item_for_path(self, path: str) -> QListWidgetItem | None:
        for i in range(self.count()):
            entry = self.entry(self.item(i))
            if entry.path is not None and str(entry.path) == path:
                return self.item(i)
        return None

    def _on_loaded(self, tag: object, image: QImage) -> None:
        kind, path = tag
        item = self._item_for_path(path)
        if item is None:
            return
        if kind == "thumb":
            item.setIcon(QIcon(_thumbnail(image)))
        elif kind == "show":
            emit(self.image_chosen, image)
        elif kind == "sketch":
            emit(self.sketch_chosen, image)

    def _on_load_failed(self, tag: object, message: str) -> None:
        if tag[0] != "thumb":
            emit(self.message, message)

    # -- actions ----------------------------------------------------------------------------

    def _full_image(self, item: QListWidgetItem, purpose: str) -> None:
        """Answer with the full-size image: at once if it is in memory, else decoded off-thread."""
        entry = self.entry(item)
        if entry.array is not None:
            image = array_to_qimage(entry.array)
            emit(self.image_chosen if purpose == "show" else self.sketch_chosen, image)
        elif entry.path is not None:
            self._loader.load((purpose, str(entry.path)), entry.path)

    def _show(self, item: QListWidgetItem) -> None:
        self._full_image(item, "show")

    def parameters_of(self, item: QListWidgetItem) -> str:
        entry = self.entry(item)
        if not entry.parameters and entry.path is not None:
            entry.parameters = read_parameters(entry.path)  # a small chunk, read once
        return entry.parameters

    def _restore(self, item: QListWidgetItem) -> None:
        parameters = self.parameters_of(item)
        if parameters:
            emit(self.parameters_chosen, parameters)
        else:
            emit(self.message, "This image carries no generation settings.")

    def _menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        menu = self.build_menu(item)
        menu.exec(self.viewport().mapToGlobal(pos))

    def build_menu(self, item: QListWidgetItem) -> QMenu:
        entry = self.entry(item)
        menu = QMenu(self)
        if entry.path is None:
            menu.addAction("Save as…", lambda: self.save_as(item))
        else:
            menu.addAction("Open file location", lambda: self.open_location(entry.path))
        menu.addAction("Copy image", lambda: self._copy_image(item))
        menu.addAction("Copy parameters", lambda: self.copy_parameters(item))
        menu.addAction("Use settings", lambda: self._restore(item))
        menu.addAction("Use as sketch", lambda: self._full_image(item, "sketch"))
        menu.addSeparator()
        menu.addAction("Delete…", lambda: self.delete(item))
        return menu

    def open_location(self, path: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))

    def _copy_image(self, item: QListWidgetItem) -> None:
        entry = self.entry(item)
        if entry.array is not None:
            QGuiApplication.clipboard().setImage(array_to_qimage(entry.array))
        elif entry.path is not None:
            self._loader.load(("copy", str(entry.path)), entry.path)
            self._loader.loaded.connect(self._copy_when_loaded)

    def _copy_when_loaded(self, tag: object, image: QImage) -> None:
        if tag[0] == "copy":
            self._loader.loaded.disconnect(self._copy_when_loaded)
            QGuiApplication.clipboard().setImage(image)
            emit(self.message, "Image copied.")

    def copy_parameters(self, item: QListWidgetItem) -> None:
        QGuiApplication.clipboard().setText(self.parameters_of(item))

    def confirm(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Latentdesk", question)
        return answer == QMessageBox.StandardButton.Yes

    def delete(self, item: QListWidgetItem) -> None:
        entry = self.entry(item)
        name = entry.path.name if entry.path else "this unsaved image"
        if not self.confirm(f"Delete {name}? This cannot be undone."):
            return
        if entry.path is not None:
            try:
                entry.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                emit(self.message, f"Could not delete {name}: {exc.strerror or exc}")
                return
        self.takeItem(self.row(item))

    def save_as(self, item: QListWidgetItem, path: str | None = None) -> None:
        entry = self.entry(item)
        if entry.array is None:
            return
        if path is None:
            start = str((self.folder or Path.home()) / "latentdesk.png")
            path, _ = QFileDialog.getSaveFileName(self, "Save image as", start, "PNG (*.png)")
            if not path:
                return
        from engine import EngineError
        from engine.output import save_png_to

        try:
            saved = save_png_to(path, entry.array, entry.parameters)
        except EngineError as exc:
            emit(self.message, str(exc))
            return
        item.setIcon(QIcon(_thumbnail(array_to_qimage(entry.array))))
        entry.path, entry.array = saved, None
        item.setToolTip(self._tooltip(entry))
        emit(self.message, f"Saved {saved.name}.")


def _placeholder() -> QPixmap:
    pixmap = QPixmap(THUMB, THUMB)
    pixmap.fill(QColor(128, 128, 128, 60))
    return pixmap


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
