"""Reading the A1111 ``parameters`` text from PNG chunks and EXIF UserComments."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import pytest
from PIL import Image, PngImagePlugin

from engine.image_metadata import read_png_parameters


def _png_bytes(text: str | None, *, zip: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    if text is not None:
        info.add_text("parameters", text, zip=zip)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 20, 30)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize(
    ("text", "zip", "chunk"),
    [
        ("a cat\nSteps: 3", False, b"tEXt"),
        ("caf\u00e9\nSteps: 3", False, b"tEXt"),  # Latin-1 still fits tEXt
        ("a cat\nSteps: 3", True, b"zTXt"),
        ("猫 😀\nNegative prompt: 犬\nSteps: 3", False, b"iTXt"),  # not Latin-1
    ],
)
def test_read_png_parameters_from_each_chunk_type(text: str, zip: bool, chunk: bytes) -> None:
    data = _png_bytes(text, zip=zip)
    assert chunk + b"parameters" in data
    assert read_png_parameters(data) == text
    assert read_png_parameters(io.BytesIO(data)) == text


def test_read_png_parameters_from_a_path_and_after_the_image_data(tmp_path) -> None:
    plain = _png_bytes(None)
    late = _chunk(b"tEXt", b"parameters\0late text\nSteps: 1")
    data = plain[:-12] + late + plain[-12:]  # just before IEND
    path = tmp_path / "late.png"
    path.write_bytes(data)
    assert read_png_parameters(path) == "late text\nSteps: 1"
    assert read_png_parameters(str(path)) == "late text\nSteps: 1"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_read_parameters_from_exif_user_comment(fmt: str, encoding: str) -> None:
    text = "a caf\u00e9 at night\nSteps: 20, Sampler: Euler a"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode(encoding)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, fmt, exif=exif)
    assert read_png_parameters(buffer.getvalue()) == text


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", _png_bytes(None), _png_bytes("x\nSteps: 1")[:40]],
)
def test_read_png_parameters_gives_none_for_bad_or_bare_files(data: bytes) -> None:
    assert read_png_parameters(data) is None


def test_read_png_parameters_of_a_huge_image_reads_only_the_header() -> None:
    data = bytearray(_png_bytes("big\nSteps: 2"))
    data[16:24] = struct.pack(">II", 10000, 10000)  # 100 MP claimed: Pillow would warn
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_png_parameters(bytes(data)) == "big\nSteps: 2"
    assert caught == []


def test_read_png_parameters_gives_none_for_missing_file(tmp_path) -> None:
    assert read_png_parameters(tmp_path / "absent.png") is None
    assert read_png_parameters(tmp_path) is None  # a folder
