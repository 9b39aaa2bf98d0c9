"""What a drop or a paste carries, told apart: a file, picture bytes, or a web address.

File managers and our own gallery give ``text/uri-list`` with ``file://`` URLs; a web browser
gives the picture's bytes (``image/png`` …), a ``data:`` URL, or only the picture's ``http``
address. Qt's ``QMimeData.text()`` turns a URL list into text, which is how a dropped file
used to land in the prompt as ``file:///…``: ``is_picture_drop`` is what the prompt fields ask
before they take a drop as text.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QImage

# A browser's picture bytes are taken up to this size; beyond it the person saves the file.
MAX_PICTURE_BYTES = 256 * 2**20
# What browsers and image viewers put on the clipboard, most faithful first (PNG keeps chunks).
IMAGE_FORMATS = ("image/png", "image/webp", "image/jpeg", "image/gif", "image/bmp")
WEB_SCHEMES = ("http", "https", "ftp")


@dataclass(frozen=True)
class PictureFile:
    path: Path


@dataclass(frozen=True)
class PictureBytes:
    data: bytes
    name: str  # what the offer calls it: "the pasted picture", "the dropped picture"


@dataclass(frozen=True)
class PictureImage:
    """A picture handed over only decoded (another Qt program's copy): no metadata to read."""

    image: QImage
    name: str


@dataclass(frozen=True)
class WebAddress:
    url: str


@dataclass(frozen=True)
class TooLarge:
    size: int  # bytes


Dropped = PictureFile | PictureBytes | PictureImage | WebAddress | TooLarge


def is_picture_drop(mime: QMimeData) -> bool:
    """Whether a drop or paste into a text field is a file, a picture or a web address rather
    than text to insert. Text that comes with a rendering as a picture (word processors put
    both on the clipboard) stays text."""
    if mime.hasUrls():
        return True
    has_text = any(f.startswith("text/plain") for f in mime.formats())
    return not has_text and (mime.hasImage() or _image_format(mime) is not None)


def may_hold_picture(mime: QMimeData) -> bool:
    """Worth accepting a drag for: URLs or picture data, judged by format names only (asking
    another program for its data while the drag is still moving would be slow)."""
    return mime.hasUrls() or mime.hasImage() or _image_format(mime) is not None


def dropped_item(mime: QMimeData, name: str = "the dropped picture") -> Dropped | None:
    """The most useful thing in ``mime``: a local file first, then picture bytes (a browser's
    copy of the picture), then a web address (which we do not fetch). None: nothing of these.
    """
    urls = mime.urls()
    files = [url.toLocalFile() for url in urls if url.isLocalFile()]
    if files:
        return PictureFile(Path(files[0]))
    found = _picture_bytes(mime, name) or _data_url_bytes(urls, name)
    if found is not None:
        return found
    web = [url for url in urls if url.scheme().lower() in WEB_SCHEMES]
    return WebAddress(web[0].toString()) if web else None


def _image_format(mime: QMimeData) -> str | None:
    formats = mime.formats()
    known = [f for f in IMAGE_FORMATS if f in formats]
    others = [f for f in formats if f.startswith("image/") and f not in known]
    return next(iter(known + others), None)


def _picture_bytes(mime: QMimeData, name: str) -> PictureBytes | PictureImage | TooLarge | None:
    fmt = _image_format(mime)
    if fmt is not None:
        data = mime.data(fmt).data()
        if len(data) > MAX_PICTURE_BYTES:
            return TooLarge(len(data))
        if data:
            return PictureBytes(bytes(data), name)
    if mime.hasImage():  # only as a decoded picture (application/x-qt-image)
        image = mime.imageData()
        if isinstance(image, QImage) and not image.isNull():
            return PictureImage(image, name)
    return None


def _data_url_bytes(urls: list[QUrl], name: str) -> PictureBytes | TooLarge | None:
    """A ``data:image/png;base64,…`` URL, as browsers give for inline pictures."""
    for url in urls:
        text = url.toString()
        if not text.startswith("data:image/"):
            continue
        header, _, payload = text.partition(",")
        if len(payload) * 3 // 4 > MAX_PICTURE_BYTES:
            return TooLarge(len(payload) * 3 // 4)
        try:
            raw = unquote_to_bytes(payload)
            data = base64.b64decode(raw, validate=True) if header.endswith(";base64") else raw
        except (binascii.Error, ValueError):
            continue
        if data:
            return PictureBytes(data, name)
    return None
