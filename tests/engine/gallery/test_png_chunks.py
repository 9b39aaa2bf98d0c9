"""The bounded PNG text reader: every chunk kind, and files built to hurt it."""

from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from PIL import Image, PngImagePlugin

from engine.gallery import png_chunks
from engine.gallery.png_chunks import MAX_TEXT_BYTES, read_png_text
from tests.engine.gallery.png_bytes import SIGNATURE, chunk, idat, ihdr, itxt, png, text, ztxt


def _pil_png(value: str, *, zip: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", value, zip=zip)
    buffer = io.BytesIO()
    Image.new("RGB", (5, 3)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("value", "zip", "kind"),
    [
        ("a cat\nSteps: 3", False, "tEXt"),
        ("caf\u00e9\nSteps: 3", False, "tEXt"),  # Latin-1 fits tEXt
        ("a cat\nSteps: 3", True, "zTXt"),
        ("猫 😀\nNegative prompt: 犬", False, "iTXt"),
        ("猫 😀\nNegative prompt: 犬", True, "iTXt"),  # compressed iTXt
    ],
)
def test_reads_each_kind_of_text_chunk_as_pillow_writes_it(value, zip, kind):
    found = read_png_text(_pil_png(value, zip=zip))
    assert [(c.keyword, c.text, c.kind) for c in found.chunks] == [("parameters", value, kind)]
    assert (found.width, found.height, found.problems, found.is_png) == (5, 3, (), True)


def test_reads_texts_after_the_image_data_and_keeps_file_order(tmp_path):
    data = png(text("Title", "before"), after=(text("parameters", "after"), text("Title", "2")))
    path = tmp_path / "late.png"
    path.write_bytes(data)
    for source in (data, path, str(path), io.BytesIO(data)):
        found = read_png_text(source)
        assert [(c.keyword, c.text) for c in found.chunks] == [
            ("Title", "before"),
            ("parameters", "after"),
            ("Title", "2"),
        ]
        assert found.first("Title") == "before"


def test_text_encodings_latin1_utf8_in_text_and_broken_utf8_in_itxt():
    data = png(
        text("latin", "caf\u00e9", "latin-1"),
        text("utf8", "猫", "utf-8"),  # not the spec, but tools do it: read as UTF-8
        itxt("broken", b"ok \xff\xfe end"),
    )
    found = read_png_text(data)
    assert [c.text for c in found.chunks] == ["caf\u00e9", "猫", "ok \ufffd\ufffd end"]
    assert found.problems == ("iTXt 'broken' is not valid UTF-8: bad bytes replaced",)


def test_a_ztxt_bomb_is_refused_after_inflating_no_more_than_the_limit():
    bomb = ztxt("parameters", b"\0" * (MAX_TEXT_BYTES + 1))
    assert len(bomb) < 40_000  # 16 MiB of zeros in ~16 KB
    start = time.perf_counter()
    found = read_png_text(png(text("Title", "kept"), bomb, after=(text("after", "also kept"),)))
    assert time.perf_counter() - start < 2
    assert [c.keyword for c in found.chunks] == ["Title", "after"]
    assert found.problems == (
        f"text 'parameters' inflates to more than {MAX_TEXT_BYTES} bytes: skipped",
    )


def test_a_compressed_itxt_bomb_is_refused_too():
    found = read_png_text(png(itxt("workflow", b"{" * 5000, compressed=True)), max_text_bytes=4096)
    assert found.chunks == ()
    assert "inflates to more than 4096 bytes" in found.problems[0]


def test_text_just_under_the_limit_is_kept():
    found = read_png_text(png(ztxt("parameters", b"x" * 4096)), max_text_bytes=4096)
    assert found.chunks[0].text == "x" * 4096 and found.problems == ()


def test_a_huge_declared_length_is_never_allocated():
    huge = struct.pack(">I", 0x7FFF_FFF0) + b"tEXt" + b"parameters\0tiny"
    found = read_png_text(SIGNATURE + ihdr() + text("Title", "kept") + huge)
    assert [c.text for c in found.chunks] == ["kept"]
    assert found.problems[0].startswith("a tEXt chunk of 2147483632 bytes is over")
    assert "truncated" in found.problems[1]


def test_a_length_beyond_the_specification_stops_the_walk():
    bad = struct.pack(">I", 0x8000_0000) + b"tEXt" + b"x" * 20
    found = read_png_text(SIGNATURE + ihdr() + text("a", "1") + bad + text("b", "2"))
    assert [c.keyword for c in found.chunks] == ["a"]
    assert "invalid header" in found.problems[0]


def test_every_truncation_of_a_file_is_read_without_error():
    data = png(text("parameters", "a cat\nSteps: 3"), after=(ztxt("workflow", b"{}"),))
    for cut in range(len(data)):
        found = read_png_text(data[:cut])
        assert found.is_png == (cut >= 8)
        if cut < len(data) - 4:  # (a missing IEND CRC goes unnoticed: nothing follows it)
            assert found.problems or not found.is_png
    whole = read_png_text(data)
    assert [c.text for c in whole.chunks] == ["a cat\nSteps: 3", "{}"] and whole.problems == ()


def test_a_damaged_chunk_is_skipped_and_the_rest_read():
    bad = chunk(b"tEXt", b"parameters\0forged", crc=123)
    found = read_png_text(png(bad, text("Title", "fine")))
    assert [c.text for c in found.chunks] == ["fine"]
    assert found.problems == ("a tEXt chunk is damaged (CRC mismatch): skipped",)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"no separator", "a tEXt chunk has no valid keyword: skipped"),
        (b"\0empty keyword", "a tEXt chunk has no valid keyword: skipped"),
        (b"k" * 80 + b"\0too long", "a tEXt chunk has no valid keyword: skipped"),
    ],
)
def test_malformed_keywords_are_skipped(raw, problem):
    found = read_png_text(png(chunk(b"tEXt", raw)))
    assert found.chunks == () and found.problems == (problem,)


def test_malformed_compressed_chunks_are_skipped():
    found = read_png_text(
        png(
            chunk(b"zTXt", b"a\0\1" + zlib.compress(b"x")),  # unknown method
            chunk(b"zTXt", b"b\0\0not zlib at all"),
            chunk(b"iTXt", b"c\0\1"),  # cut short
            chunk(b"zTXt", b"d\0\0" + zlib.compress(b"half of it")[:-6]),
        )
    )
    assert [c.keyword for c in found.chunks] == ["d"]
    assert found.chunks[0].text.startswith("half of")  # what inflates before the cut
    assert found.problems == (
        "zTXt 'a' uses an unknown compression: skipped",
        "text 'b' is not valid compressed data: skipped",
        "iTXt 'c' is cut short: skipped",
        "text 'd' is cut short: kept what could be read",
    )


def test_the_number_of_chunks_and_of_texts_is_bounded(monkeypatch):
    many_texts = png(*[text(f"k{i}", "v") for i in range(png_chunks.MAX_TEXT_CHUNKS + 5)])
    found = read_png_text(many_texts)
    assert len(found.chunks) == png_chunks.MAX_TEXT_CHUNKS
    assert found.problems[0].startswith(f"more than {png_chunks.MAX_TEXT_CHUNKS} text chunks")

    monkeypatch.setattr(png_chunks, "MAX_CHUNKS", 1000)
    filler = chunk(b"prVt", b"") * 2000
    found = read_png_text(SIGNATURE + ihdr() + filler + text("late", "x") + idat())
    assert found.chunks == () and found.problems == (
        "more than 1000 chunks: the rest was not read",
    )


def test_the_total_text_is_bounded():
    data = png(*[text(f"k{i}", "v" * 1000) for i in range(10)])
    found = read_png_text(data, max_total_text_bytes=3500)
    assert len(found.chunks) == 3
    assert len(found.problems) == 7 and "total text limit" in found.problems[0]


@pytest.mark.parametrize("data", [b"", b"GIF89a", b"\xff\xd8\xff\xe0", SIGNATURE[:7]])
def test_other_files_are_not_png(data):
    assert read_png_text(data) == png_chunks.PngText()


def test_a_missing_file_gives_the_reason():
    found = read_png_text("/no/such/file.png")
    assert found.chunks == () and not found.is_png
    assert found.problems == ("cannot read the file: No such file or directory",)
