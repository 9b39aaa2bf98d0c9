"""One picture of the gallery read off the GUI thread: its pixels and its parameters text.

The large view needs both at once (to show, to copy, to reuse), and both mean reading the file,
so one pool job reads them. A file that has vanished or cannot be decoded still answers: a null
image with a message, and whatever parameters text could be read.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from app.imageio import read_image
from app.signals import emit


def read_parameters_text(path: Path) -> str:
    """The A1111 ``parameters`` text the file carries (ours and A1111's); "" if none."""
    from engine.image_metadata import read_png_parameters

    return read_png_parameters(path) or ""


class _Job(QRunnable):
    def __init__(self, loader: PictureLoader, tag: object, path: Path) -> None:
        super().__init__()
        self.loader, self.tag, self.path = loader, tag, path

    def run(self) -> None:
        if self.loader.latest != self.tag:
            return  # stepped past while waiting: only the picture shown now is read
        text = read_parameters_text(self.path)
        try:
            image, message = read_image(self.path), ""
        except ValueError as exc:
            image, message = QImage(), str(exc)
        emit(self.loader.loaded, self.tag, image, text, message)


class PictureLoader(QObject):
    """``load(tag, path)`` answers with ``loaded(tag, image, parameters_text, error)``: the
    image is null and ``error`` says why when the pixels could not be read. Only the latest
    request is sure to be answered: older ones still waiting are skipped."""

    loaded = Signal(object, QImage, str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one picture at a time, in the order asked
        self.latest: object = None

    def load(self, tag: object, path: Path) -> None:
        self.latest = tag
        self._pool.start(_Job(self, tag, path))

    def wait_idle(self, msecs: int = 5000) -> bool:
        return self._pool.waitForDone(msecs)
