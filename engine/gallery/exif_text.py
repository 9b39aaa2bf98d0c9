"""The EXIF texts of JPEG and WebP files that image tools use for their parameters.

Where the bytes are: JPEG keeps EXIF in an APP1 segment starting ``Exif\\0\\0`` (JPEG/JFIF
markers, ITU T.81 B.1.1; EXIF 2.32 section 4.5.4); WebP in a RIFF chunk named ``EXIF`` (Google's
WebP container specification, "Extended File Format"). Both are found by walking the container
with bounded reads, never decoding pixels; the TIFF structure inside is then parsed by Pillow.

Which tags the tools write:

- A1111 (``modules/images.py``, ``save_image_with_geninfo``): its text in the Exif IFD's
  UserComment (0x9286) as piexif's ``UserComment.dump(text, encoding="unicode")``:
  ``b"UNICODE\\0"`` then UTF-16, big-endian as piexif writes it.
- Fooocus (``modules/meta_parser.py``, ``get_exif``): UserComment (0x9286) in IFD0 holding its
  JSON or A1111-style text, Software (0x0131) ``"Fooocus v2.x"``, MakerNote (0x927C) its
  scheme, ``"fooocus"`` or ``"a1111"``. Pillow writes these strings as ASCII.
- ComfyUI (``comfy_extras/nodes_images.py``, SaveAnimatedWEBP): IFD0 Model (0x0110)
  ``"prompt:" + json``, then Make (0x010F) ``"workflow:" + json`` counting down per key.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from typing import BinaryIO

MAX_EXIF_BYTES = 16 * 1024 * 1024  # a WebP EXIF chunk may be larger than JPEG's 64 KB
_MAX_SEGMENTS = 10_000

USER_COMMENT = 0x9286
MAKER_NOTE = 0x927C
SOFTWARE = 0x0131
# IFD0 tags ComfyUI fills with "key:json" (Model, Make, ImageDescription, and below).
COMFY_TAGS = tuple(range(0x0110, 0x0100, -1))


def read_exif_texts(source: str | os.PathLike[str] | bytes | BinaryIO) -> dict[str, str]:
    """The parameter-bearing EXIF texts of a JPEG or WebP: keys ``"UserComment"``,
    ``"MakerNote"``, ``"Software"`` and ComfyUI's ``"prompt"``/``"workflow"``. Empty for
    anything else or a damaged file; never raises on the file's content."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            raw = _exif_block(io.BytesIO(bytes(source)))
        elif isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as file:
                raw = _exif_block(file)
        else:
            raw = _exif_block(source)
        return exif_block_texts(raw) if raw else {}
    except (OSError, ValueError, struct.error):
        return {}


def _exif_block(file: BinaryIO) -> bytes | None:
    head = file.read(12)
    if head[:3] == b"\xff\xd8\xff":
        file.seek(2)
        return _jpeg_exif(file)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_exif(file)
    return None


def _jpeg_exif(file: BinaryIO) -> bytes | None:
    for _ in range(_MAX_SEGMENTS):
        marker = file.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        if marker[1] in (0xD9, 0xDA):  # end of image, start of scan: no EXIF before pixels
            return None
        if 0xD0 <= marker[1] <= 0xD8 or marker[1] == 0x01:  # markers without a length
            continue
        length_bytes = file.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0] - 2
        if length < 0:
            return None
        data = file.read(length)
        if marker[1] == 0xE1 and data.startswith(b"Exif\0\0"):
            return data
    return None


def _webp_exif(file: BinaryIO) -> bytes | None:
    file.seek(12)
    for _ in range(_MAX_SEGMENTS):
        header = file.read(8)
        if len(header) < 8:
            return None
        kind, size = header[:4], struct.unpack("<I", header[4:])[0]
        if kind == b"EXIF":
            if size > MAX_EXIF_BYTES:
                return None
            data = file.read(size)
            # libwebp stores the TIFF data as given; some writers keep the JPEG prefix.
            return data if data.startswith(b"Exif\0\0") else b"Exif\0\0" + data
        file.seek(size + (size & 1), io.SEEK_CUR)  # chunks are padded to an even size
    return None


def exif_block_texts(raw: bytes) -> dict[str, str]:
    """The texts of raw EXIF (TIFF) data, with or without the ``Exif\\0\\0`` prefix: what
    a PNG's eXIf chunk holds. Empty when it is damaged."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data": we only want what is sound
            return _tags(raw)
    except Exception:  # Pillow's TIFF parser raises SyntaxError, KeyError... on damaged data
        return {}


def _tags(raw: bytes) -> dict[str, str]:
    from PIL import Image

    exif = Image.Exif()
    exif.load(raw)
    texts: dict[str, str] = {}
    exif_ifd = _safe_ifd(exif, 0x8769)
    for name, tag in (("UserComment", USER_COMMENT), ("MakerNote", MAKER_NOTE)):
        value = exif_ifd.get(tag, exif.get(tag))
        text = decode_user_comment(value) if tag == USER_COMMENT else _plain(value)
        if text:
            texts[name] = text
    software = _plain(exif.get(SOFTWARE))
    if software:
        texts["Software"] = software
    for tag in COMFY_TAGS:
        key, sep, value = (_plain(exif.get(tag)) or "").partition(":")
        if sep and key in ("prompt", "workflow") and key not in texts:
            texts[key] = value
    return texts


def _safe_ifd(exif: object, tag: int) -> dict:
    try:
        return dict(exif.get_ifd(tag))  # type: ignore[attr-defined]
    except Exception:  # Pillow's TIFF parser on a hostile offset table: no such IFD
        return {}


def _plain(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value.rstrip("\0") if isinstance(value, str) else None


def decode_user_comment(value: object) -> str | None:
    """An EXIF UserComment as text. The first 8 bytes name the encoding (EXIF 2.32, 4.6.5):
    ``UNICODE\\0`` is UCS-2 (big-endian from piexif, which A1111 uses; little-endian from
    some others: the reading with more ASCII wins), ``ASCII\\0\\0\\0`` or none is 8-bit text.
    Pillow hands over a str when a writer stored the tag as ASCII (Fooocus)."""
    if isinstance(value, str):
        return value.rstrip("\0") or None
    if not isinstance(value, bytes) or not value:
        return None
    prefix, data = value[:8], value[8:]
    if prefix == b"UNICODE\0":
        big = data.decode("utf-16-be", errors="replace")
        little = data.decode("utf-16-le", errors="replace")
        text = big if _ascii_share(big) >= _ascii_share(little) else little
    elif prefix in (b"ASCII\0\0\0", b"\0" * 8):
        text = data.decode("utf-8", errors="replace")
    else:
        text = value.decode("utf-8", errors="replace")
    return text.rstrip("\0") or None


def _ascii_share(text: str) -> float:
    return sum(c.isascii() for c in text) / max(1, len(text))
