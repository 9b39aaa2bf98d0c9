"""Finding the A1111 ``parameters`` text in image files (the text format: parameters.py).

PNG files carry it in a tEXt, zTXt or iTXt chunk named ``parameters``; JPEG and WebP files
written by A1111 carry it in the EXIF UserComment.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import BinaryIO


def read_png_parameters(source: str | os.PathLike[str] | bytes | BinaryIO) -> str | None:
    """The ``parameters`` text of a PNG (tEXt, zTXt or iTXt chunk), or of a JPEG/WebP
    written by A1111 (EXIF UserComment). None when there is none or the file is unreadable."""
    from PIL import Image

    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            # Only the header is read (pixels only up to 64 MP): a huge image is no danger here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                return _parameters_of(image)
    except Exception:  # any broken file means "no parameters": never a crash
        return None


def _parameters_of(image: object) -> str | None:
    info = getattr(image, "info", {})
    value = info.get("parameters")
    if value is None and getattr(image, "format", None) == "PNG":
        # Text chunks after the image data are only seen once the file has been read.
        width, height = getattr(image, "size", (0, 0))
        if width * height <= 64_000_000:
            value = image.text.get("parameters")  # type: ignore[attr-defined]
    if value is None:
        value = _exif_user_comment(image)
    return str(value) if value is not None else None


def _exif_user_comment(image: object) -> str | None:
    getexif = getattr(image, "getexif", None)
    if getexif is None:
        return None
    exif_ifd = getexif().get_ifd(0x8769)
    raw = exif_ifd.get(0x9286)  # UserComment
    if isinstance(raw, str):
        return raw or None
    if not isinstance(raw, bytes) or len(raw) < 8:
        return None
    return _decode_user_comment(raw[:8], raw[8:]) or None


def _decode_user_comment(prefix: bytes, data: bytes) -> str:
    if prefix == b"UNICODE\0":
        # The EXIF spec means UCS-2 in the file's byte order, but writers disagree (piexif,
        # used by A1111, writes big-endian): take the decoding that reads as more ASCII.
        big = data.decode("utf-16-be", errors="replace")
        little = data.decode("utf-16-le", errors="replace")
        return big if _ascii_share(big) >= _ascii_share(little) else little
    return data.decode("utf-8", errors="replace").rstrip("\0")


def _ascii_share(text: str) -> float:
    return sum(c.isascii() for c in text) / max(1, len(text))
