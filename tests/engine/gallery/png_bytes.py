"""Hand-made PNG bytes for the reader tests: any chunk, in any order, right or wrong."""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    """One chunk with its length and (unless given) correct CRC."""
    if crc is None:
        crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def ihdr(width: int = 8, height: int = 8) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


def idat(width: int = 8, height: int = 8) -> bytes:
    rows = b"".join(b"\0" + b"\x10\x20\x30" * width for _ in range(height))
    return chunk(b"IDAT", zlib.compress(rows))


def png(*middle: bytes, after: tuple[bytes, ...] = (), end: bool = True) -> bytes:
    """A valid 8x8 PNG with ``middle`` chunks before the image data and ``after`` after it."""
    iend = chunk(b"IEND", b"") if end else b""
    return SIGNATURE + ihdr() + b"".join(middle) + idat() + b"".join(after) + iend


def text(keyword: str, value: str, encoding: str = "latin-1") -> bytes:
    return chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + value.encode(encoding))


def ztxt(keyword: str, raw: bytes) -> bytes:
    return chunk(b"zTXt", keyword.encode("latin-1") + b"\0\0" + zlib.compress(raw))


def itxt(keyword: str, value: bytes, *, compressed: bool = False) -> bytes:
    body = zlib.compress(value) if compressed else value
    flag = b"\1\0" if compressed else b"\0\0"
    return chunk(b"iTXt", keyword.encode("latin-1") + b"\0" + flag + b"en\0\0" + body)
