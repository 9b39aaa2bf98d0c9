"""Reading image files off the GUI thread, with a size limit so a huge file cannot hurt."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader

from app.signals import emit

MAX_PIXELS = 8192 * 8192  # bigger files are refused, not decoded


def read_image(path: str | Path, thumbnail: int = 0) -> QImage:
    """Decode ``path`` (optionally as a thumbnail). Raises ValueError with a kind message."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if not size.isValid():
        raise ValueError(f"{Path(path).name} is not an image Latentdesk can read.")
    if size.width() * size.height() > MAX_PIXELS:
        raise ValueError(
            f"{Path(path).name} is too large ({size.width()}x{size.height()}); "
            "please use an image under 8192x8192."
        )
    if thumbnail:
        reader.setScaledSize(
            size.scaled(QSize(thumbnail, thumbnail), Qt.AspectRatioMode.KeepAspectRatio)
        )
    image = reader.read()
    if image.isNull():
        raise ValueError(f"{Path(path).name} could not be read: {reader.errorString()}.")
    return image


class _Task(QRunnable):
    def __init__(self, loader: ImageLoader, tag: object, path: str, thumbnail: int) -> None:
        super().__init__()
        self.loader, self.tag, self.path, self.thumbnail = loader, tag, path, thumbnail

    def run(self) -> None:
        try:
            image = read_image(self.path, self.thumbnail)
        except ValueError as exc:
            emit(self.loader.failed, self.tag, str(exc))
            return
        emit(self.loader.loaded, self.tag, image)


class ImageLoader(QObject):
    """``load(tag, path)`` decodes in the thread pool and answers with ``loaded(tag, QImage)``."""

    loaded = Signal(object, QImage)
    failed = Signal(object, str)

    def load(self, tag: object, path: str | Path, thumbnail: int = 0) -> None:
        QThreadPool.globalInstance().start(_Task(self, tag, str(path), thumbnail))
