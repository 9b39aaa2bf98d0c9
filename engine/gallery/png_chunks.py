"""The text chunks of a PNG file (tEXt, zTXt, iTXt), read within fixed bounds.

The chunk layouts are those of the PNG specification (W3C PNG, third edition, sections 11.3.3.2
to 11.3.3.4): ``keyword NUL text`` (tEXt, Latin-1); ``keyword NUL method zlib-data`` (zTXt);
``keyword NUL flag method language NUL translated-keyword NUL text`` (iTXt, UTF-8, zlib when
the flag is 1). Text chunks may sit before or after the image data: all are read.

Nothing here trusts the file. Image data is skipped without being read, every declared length
is checked against the limits before anything is read, compressed text is inflated with a cap
on its output (a "zip bomb" costs at most the cap), the number of chunks walked and of texts
kept is bounded, and a broken or truncated file yields what could be read before the damage,
with a sentence per problem in ``problems``. No function here raises on file content.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")

# Bounds. Real files stay far below them: a large ComfyUI workflow is a few hundred KB of JSON,
# an A1111 text a few KB. PIL stops at 1 MB of inflated text per chunk; we allow more because
# workflows with embedded notes grow past that.
MAX_TEXT_BYTES = 16 * 1024 * 1024  # one chunk's text, compressed or not
MAX_TOTAL_TEXT_BYTES = 32 * 1024 * 1024  # all texts of a file together
MAX_TEXT_CHUNKS = 256  # texts kept; a file with more is hostile or broken
MAX_CHUNKS = 100_000  # chunks walked (a 100 MB image in 8 KB IDAT chunks has ~12,500)
_MAX_LENGTH = 2**31 - 1  # the specification's limit on a chunk length


@dataclass(frozen=True)
class TextChunk:
    keyword: str
    text: str
    kind: str  # "tEXt", "zTXt" or "iTXt"


@dataclass(frozen=True)
class PngText:
    """What :func:`read_png_text` found: the texts in file order, the size from IHDR (None when
    the file is not a PNG or has no valid IHDR), and what went wrong, in words."""

    chunks: tuple[TextChunk, ...] = ()
    width: int | None = None
    height: int | None = None
    problems: tuple[str, ...] = ()
    is_png: bool = False
    exif: bytes | None = None  # the first eXIf chunk's TIFF data (PNG 1.2 extension, 2017)

    def first(self, keyword: str) -> str | None:
        """The text of the first chunk with this keyword (as PIL's ``info`` keeps it)."""
        for chunk in self.chunks:
            if chunk.keyword == keyword:
                return chunk.text
        return None


def read_png_text(
    source: str | os.PathLike[str] | bytes | BinaryIO,
    *,
    max_text_bytes: int = MAX_TEXT_BYTES,
    max_total_text_bytes: int = MAX_TOTAL_TEXT_BYTES,
) -> PngText:
    """The text chunks of a PNG given as a path, bytes or a binary file. Never raises on the
    file's content; an unreadable path gives an empty result with the reason in ``problems``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _Reader(io.BytesIO(bytes(source)), max_text_bytes, max_total_text_bytes).read()
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as file:
                return _Reader(file, max_text_bytes, max_total_text_bytes).read()
        except OSError as error:
            return PngText(problems=(f"cannot read the file: {error.strerror or error}",))
    return _Reader(source, max_text_bytes, max_total_text_bytes).read()


class _Reader:
    def __init__(self, file: BinaryIO, max_text: int, max_total: int) -> None:
        self.file = file
        self.max_text = max_text
        self.budget = max_total  # text bytes still allowed
        self.chunks: list[TextChunk] = []
        self.problems: list[str] = []
        self.size: tuple[int, int] | None = None
        self.end = 0  # the file's size, for checking lengths before seeking
        self.exif: bytes | None = None

    def read(self) -> PngText:
        try:
            start = self.file.tell()
            self.end = self.file.seek(0, io.SEEK_END)
            self.file.seek(start)
            if self.file.read(8) != SIGNATURE:
                return PngText()
            self._walk()
        except (OSError, ValueError) as error:  # fails while being read: keep what we have
            self.problems.append(f"reading stopped: {error}")
        width, height = self.size or (None, None)
        chunks, problems = tuple(self.chunks), tuple(self.problems)
        return PngText(chunks, width, height, problems, is_png=True, exif=self.exif)

    def _walk(self) -> None:
        for _ in range(MAX_CHUNKS):
            header = self.file.read(8)
            if len(header) == 0:
                self.problems.append("the file ends without an IEND chunk (truncated?)")
                return
            if len(header) < 8:
                self.problems.append("the file ends inside a chunk header (truncated)")
                return
            length, kind = struct.unpack(">I4s", header)
            if length > _MAX_LENGTH or not kind.isalpha():
                where = self.file.tell() - 8
                self.problems.append(f"a chunk has an invalid header at byte {where}: stopped")
                return
            if kind == b"IEND":
                return
            if not self._chunk(kind, length):
                return
        self.problems.append(f"more than {MAX_CHUNKS} chunks: the rest was not read")

    def _chunk(self, kind: bytes, length: int) -> bool:
        """Handle one chunk whose header was just read; False when the walk must stop."""
        wanted = (
            kind in TEXT_CHUNKS
            or (kind == b"IHDR" and self.size is None)
            or (kind == b"eXIf" and self.exif is None)
        )
        if not wanted or length > self.max_text or len(self.chunks) >= MAX_TEXT_CHUNKS:
            if kind in TEXT_CHUNKS:
                self._note_skipped(kind, length)
            return self._skip(length + 4)
        data = self.file.read(length)
        crc = self.file.read(4)
        if len(data) < length or len(crc) < 4:
            self.problems.append(f"the file ends inside a {kind.decode()} chunk (truncated)")
            return False
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + data):
            self.problems.append(f"a {kind.decode()} chunk is damaged (CRC mismatch): skipped")
            return True
        if kind == b"IHDR":
            self._ihdr(data)
        elif kind == b"eXIf":
            self.exif = data
        else:
            self._text(kind.decode(), data)
        return True

    def _note_skipped(self, kind: bytes, length: int) -> None:
        if len(self.chunks) >= MAX_TEXT_CHUNKS:
            self.problems.append(f"more than {MAX_TEXT_CHUNKS} text chunks: the rest skipped")
        else:
            self.problems.append(
                f"a {kind.decode()} chunk of {length} bytes is over the {self.max_text}-byte "
                "limit: skipped"
            )

    def _skip(self, count: int) -> bool:
        """Seek past ``count`` bytes; False when the file is shorter (truncated)."""
        target = self.file.tell() + count
        if target > self.end:
            self.problems.append(f"the file ends inside a chunk (truncated at byte {self.end})")
            return False
        self.file.seek(target)
        return True

    def _ihdr(self, data: bytes) -> None:
        if len(data) == 13:
            width, height = struct.unpack(">II", data[:8])
            if 0 < width <= _MAX_LENGTH and 0 < height <= _MAX_LENGTH:
                self.size = (width, height)

    def _text(self, kind: str, data: bytes) -> None:
        keyword_bytes, sep, rest = data.partition(b"\0")
        if not sep or not 1 <= len(keyword_bytes) <= 79:
            self.problems.append(f"a {kind} chunk has no valid keyword: skipped")
            return
        keyword = keyword_bytes.decode("latin-1")
        text = self._decode(kind, keyword, rest)
        if text is None:
            return
        size = len(text.encode("utf-8", errors="replace"))
        if size > self.budget:
            self.problems.append(f"text {keyword!r} goes over the total text limit: skipped")
            return
        self.budget -= size
        self.chunks.append(TextChunk(keyword, text, kind))

    def _decode(self, kind: str, keyword: str, rest: bytes) -> str | None:
        if kind == "tEXt":
            return _latin1_or_utf8(rest)
        if kind == "zTXt":
            if rest[:1] != b"\0":
                self.problems.append(f"zTXt {keyword!r} uses an unknown compression: skipped")
                return None
            raw = self._inflate(keyword, rest[1:])
            return None if raw is None else _latin1_or_utf8(raw)
        return self._itxt(keyword, rest)

    def _itxt(self, keyword: str, rest: bytes) -> str | None:
        if len(rest) < 2:
            self.problems.append(f"iTXt {keyword!r} is cut short: skipped")
            return None
        compressed, method = rest[0], rest[1]
        parts = rest[2:].split(b"\0", 2)  # language, translated keyword, text
        if len(parts) < 3:
            self.problems.append(f"iTXt {keyword!r} is cut short: skipped")
            return None
        raw: bytes | None = parts[2]
        if compressed:
            if method != 0:
                self.problems.append(f"iTXt {keyword!r} uses an unknown compression: skipped")
                return None
            raw = self._inflate(keyword, parts[2])
        if raw is None:
            return None
        text = raw.decode("utf-8", errors="replace")
        if "\ufffd" in text and b"\xef\xbf\xbd" not in raw:
            self.problems.append(f"iTXt {keyword!r} is not valid UTF-8: bad bytes replaced")
        return text

    def _inflate(self, keyword: str, data: bytes) -> bytes | None:
        """zlib data inflated to at most ``max_text`` bytes; past that, None (a "bomb")."""
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, self.max_text)
            # Output stopped at the cap with input left over, or more still buffered: too big.
            over = bool(inflater.unconsumed_tail) or (
                not inflater.eof and bool(inflater.decompress(b"", 1))
            )
        except zlib.error:
            self.problems.append(f"text {keyword!r} is not valid compressed data: skipped")
            return None
        if over:
            self.problems.append(
                f"text {keyword!r} inflates to more than {self.max_text} bytes: skipped"
            )
            return None
        if not inflater.eof:
            self.problems.append(f"text {keyword!r} is cut short: kept what could be read")
        return out


def _latin1_or_utf8(raw: bytes) -> str:
    """tEXt is Latin-1 by the specification, but several tools put UTF-8 there. Valid UTF-8
    with non-ASCII bytes is almost never intended Latin-1 text, so it is read as UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
