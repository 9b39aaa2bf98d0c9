"""A dropped or pasted picture: read off the GUI thread, then its parameters offered.

Reading happens on a pool thread of its own (a 200 MB file must not hold up the window, nor the
gallery's thumbnails in the global pool). Only the newest drop is answered: a picture dropped
while another is still being read replaces it. The offer is a ``ParametersDialog``; the
window acts on ``parameters_chosen``, ``sketch_chosen`` and ``inpaint_chosen``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader
from PySide6.QtWidgets import QWidget

from app.imageio import MAX_PIXELS, read_image
from app.parameters_dialog import ParametersDialog
from app.picture_drop import Dropped, PictureBytes, PictureFile, PictureImage, TooLarge, WebAddress
from app.signals import emit
from engine.gallery.read import read_metadata
from engine.gallery.recovered import RecoveredParameters
from engine.gallery.restore import restore_fields
from engine.units import human_size

CANNOT_FETCH = (
    "Latentdesk does not download pictures from the web. Save the picture first (in the "
    "browser: right-click › Save image as…), then drop or open the saved file."
)


@dataclass(frozen=True)
class PictureRead:
    name: str
    image: QImage  # null when the picture could not be decoded
    recovered: RecoveredParameters | None = None  # None: no parameters found
    fields: dict[str, object] = field(default_factory=dict)  # what "Use" puts in the controls
    dropped: tuple[str, ...] = ()  # in the file but not usable here, and why
    error: str = ""  # why this is no picture we can use; then nothing is offered


def read_picture(item: PictureFile | PictureBytes | PictureImage) -> PictureRead:
    """Decode the picture and read its metadata. Runs on a pool thread; never raises."""
    if isinstance(item, PictureImage):  # decoded already: no metadata came with it
        return PictureRead(item.name, item.image)
    source: Path | bytes
    if isinstance(item, PictureFile):
        name, source = item.path.name, item.path
        try:
            image, error = read_image(item.path), ""
        except ValueError as exc:
            image, error = QImage(), str(exc)
    else:
        name, source = item.name, item.data
        image, error = _decode(item.data, item.name)
    recovered = _metadata(source)
    if recovered is None and error:
        return PictureRead(name, image, error=error)
    if recovered is None:
        return PictureRead(name, image)
    restored = restore_fields(recovered)
    return PictureRead(name, image, recovered, restored.fields, restored.dropped)


def _decode(data: bytes, name: str) -> tuple[QImage, str]:
    """Picture bytes (a browser's copy) decoded with the same limits as files."""
    array = QByteArray(data)
    buffer = QBuffer(array)
    buffer.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buffer)
    reader.setAutoTransform(True)
    size = reader.size()
    if not size.isValid():
        return QImage(), f"{name.capitalize()} is not an image Latentdesk can read."
    if size.width() * size.height() > MAX_PIXELS:
        too_big = f"{name.capitalize()} is too large ({size.width()}x{size.height()}); "
        return QImage(), too_big + "please use an image under 8192x8192."
    image = reader.read()
    if image.isNull():
        return image, f"{name.capitalize()} could not be read: {reader.errorString()}."
    return image, ""


def _metadata(source: Path | bytes) -> RecoveredParameters | None:
    try:
        return read_metadata(source)
    except OSError:  # gone or unreadable since the drop: as good as none
        return None


class _Read:
    """One read on the pool; answers through the offers object's queued signal."""

    def __init__(self, offers: PictureOffers, token: int, item: Dropped) -> None:
        self.offers, self.token, self.item = offers, token, item

    def __call__(self) -> None:
        assert isinstance(self.item, PictureFile | PictureBytes | PictureImage)
        emit(self.offers._read, self.token, read_picture(self.item))


class PictureOffers(QObject):
    parameters_chosen = Signal(object)  # dict of GenerationParams values
    sketch_chosen = Signal(QImage)
    inpaint_chosen = Signal(QImage)
    message = Signal(str)  # a problem: the window shows a dialog
    notice = Signal(str)  # progress: the status bar
    _read = Signal(int, object)  # (token, PictureRead) from the pool thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._token = 0
        self._read.connect(self._on_read)
        self.dialog: ParametersDialog | None = None  # the open offer, if any

    def offer(self, item: Dropped) -> None:
        """Read ``item`` and offer what it holds. Web addresses and oversized clipboard data
        are refused at once, with what to do instead."""
        self._token += 1  # an older read still running is answered no more
        if isinstance(item, WebAddress):
            emit(self.message, CANNOT_FETCH)
        elif isinstance(item, TooLarge):
            emit(
                self.message,
                f"The dropped picture is too large to take ({human_size(item.size)}). "
                "Save it as a file first, then open the file.",
            )
        else:
            name = item.path.name if isinstance(item, PictureFile) else item.name
            emit(self.notice, f"Reading {name}…")
            self._pool.start(_Read(self, self._token, item))

    def shutdown(self) -> None:
        """At close: queued reads are dropped, a running one is waited for."""
        self._token += 1
        self._pool.clear()
        self._pool.waitForDone()

    def _on_read(self, token: int, read: PictureRead) -> None:
        if token != self._token:
            return
        if read.error:
            emit(self.message, read.error)
            return
        emit(self.notice, "")
        if self.dialog is not None:
            self.dialog.close()
        parent = self.parent()
        dialog = ParametersDialog(
            read.name,
            read.recovered,
            read.image,
            read.dropped,
            bool(read.fields),
            parent if isinstance(parent, QWidget) else None,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.use_parameters.connect(lambda: emit(self.parameters_chosen, read.fields))
        dialog.use_sketch.connect(lambda: emit(self.sketch_chosen, read.image))
        dialog.use_inpaint.connect(lambda: emit(self.inpaint_chosen, read.image))
        dialog.finished.connect(lambda _: self._forget_dialog(dialog))
        self.dialog = dialog
        dialog.open()

    def _forget_dialog(self, dialog: ParametersDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
