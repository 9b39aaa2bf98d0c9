"""Finding the A1111 ``parameters`` text in image files (the text format: parameters.py).

PNG files carry it in a tEXt, zTXt or iTXt chunk named ``parameters`` (read within bounds by
``engine.gallery.png_chunks``, before or after the image data); JPEG and WebP files written by
A1111 carry it in the EXIF UserComment (``engine.gallery.exif_text``). For any tool's
parameters as one record, see ``engine.gallery.read``.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from engine.gallery.exif_text import exif_block_texts, read_exif_texts
from engine.gallery.png_chunks import read_png_text


def read_png_parameters(source: str | os.PathLike[str] | bytes | BinaryIO) -> str | None:
    """The ``parameters`` text of a PNG (tEXt, zTXt or iTXt chunk), or of a JPEG/WebP
    written by A1111 (EXIF UserComment). None when there is none or the file is unreadable."""
    start = _position(source)
    png = read_png_text(source)
    if png.is_png:
        value = png.first("parameters")
        if value is None and png.exif:  # a PNG eXIf chunk, as Pillow reads it too
            value = exif_block_texts(png.exif).get("UserComment")
        return value
    if start is not None:
        source.seek(start)  # type: ignore[union-attr]
    return read_exif_texts(source).get("UserComment")


def _position(source: object) -> int | None:
    tell = getattr(source, "tell", None)
    try:
        return tell() if tell is not None else None
    except (OSError, ValueError):
        return None
