"""Damaged and hostile files through the whole reader: never an exception, never a hang,
never anything run."""

from __future__ import annotations

import copy
import io
import json
import random
import struct
import time
from pathlib import Path

import pytest
from PIL import Image

from engine.gallery.exif_text import decode_user_comment, read_exif_texts
from engine.gallery.read import read_metadata, read_texts
from tests.engine.gallery.fixtures import make_fixtures as made
from tests.engine.gallery.png_bytes import png, text, ztxt

FIXTURES = Path(__file__).parent / "fixtures"
PICTURES = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".png", ".jpg", ".webp"))


@pytest.mark.parametrize("path", PICTURES, ids=lambda p: p.name)
def test_every_truncation_and_random_damage_is_survived(path):
    data = path.read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 150)):
        read_metadata(data[:cut])
    rng = random.Random(path.name)
    for _ in range(150):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        read_metadata(bytes(damaged))


def test_a_webp_claiming_a_4_gb_exif_chunk_is_refused_at_once():
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WEBP"
    data = (
        header
        + b"VP8X"
        + struct.pack("<I", 10)
        + b"\0" * 10
        + b"EXIF"
        + struct.pack("<I", 0xFFFFFFF0)
    )
    start = time.perf_counter()
    assert read_exif_texts(data + b"MM\0*") == {}
    assert read_metadata(data) is None
    assert time.perf_counter() - start < 1


def test_a_jpeg_of_endless_segments_is_walked_only_so_far():
    segment = b"\xff\xfe" + struct.pack(">H", 6) + b"abcd"  # COM segments
    data = b"\xff\xd8" + segment * 50_000
    start = time.perf_counter()
    assert read_exif_texts(data) == {}
    assert time.perf_counter() - start < 2


def test_exif_after_the_start_of_scan_is_not_looked_for():
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + "late\nSteps: 1".encode("utf-16-be")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=exif)
    data = buffer.getvalue()
    assert read_exif_texts(data)["UserComment"] == "late\nSteps: 1"
    start = data.index(b"\xff\xe1")
    length = struct.unpack(">H", data[start + 2 : start + 4])[0]
    moved = data[:start] + b"\xff\xda" + data[start : start + 2 + length]
    assert read_exif_texts(moved) == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"UNICODE\0" + "caf\u00e9 猫".encode("utf-16-be"), "caf\u00e9 猫"),  # piexif, A1111
        (b"UNICODE\0" + "caf\u00e9 cat".encode("utf-16-le"), "caf\u00e9 cat"),
        (b"ASCII\0\0\0plain text\0", "plain text"),
        (b"\0" * 8 + "caf\u00e9".encode(), "caf\u00e9"),
        (b"\xff\xfe\xfd not utf-8", "\ufffd\ufffd\ufffd not utf-8"),
        ("Fooocus wrote a str", "Fooocus wrote a str"),
        (b"", None),
        (b"UNICODE\0", None),
        (12, None),
    ],
)
def test_user_comment_encodings(raw, expected):
    assert decode_user_comment(raw) == expected


def test_a_resolution_or_size_written_as_code_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch() or (512, 512)"
    fooocus = {**made.FOOOCUS_JSON, "resolution": code}
    record = read_texts({"parameters": json.dumps(fooocus), "fooocus_scheme": "fooocus"})
    assert record is not None and (record.width, record.height) == (None, None)
    a1111 = read_texts({"parameters": f"p\nSteps: 3, Size: {code}, Seed: 1"})
    assert a1111 is not None and a1111.width is None and a1111.seed == 1
    assert not marker.exists()


def test_json_nested_too_deep_in_any_format_is_just_unreadable():
    deep = "[" * 200_000 + "]" * 200_000
    for key in ("invokeai_metadata", "sd-metadata", "prompt", "workflow"):
        record = read_texts({key: deep})
        assert record is None or record.seed is None
    nai = read_texts({"Software": "NovelAI", "Comment": deep, "Description": "a cat"})
    assert nai is not None and nai.prompt == "a cat" and nai.seed is None


def test_reading_problems_become_notes():
    bomb = ztxt("workflow", b" " * (17 * 1024 * 1024))
    record = read_metadata(png(text("parameters", "a cat\nSteps: 3"), bomb))
    assert record is not None and record.prompt == "a cat" and record.steps == 3
    assert record.notes == (
        "While reading the file: text 'workflow' inflates to more than 16777216 bytes: skipped.",
    )


def test_settings_and_raw_text_are_bounded():
    huge = {f"key{i}": "v" * 10_000 for i in range(1000)}
    record = read_texts({"invokeai_metadata": json.dumps({**huge, "seed": 3})})
    assert record is not None and record.seed == 3
    assert len(record.settings) == 200 and max(map(len, record.settings.values())) == 4000
    assert record.text is not None and len(record.text) == 256 * 1024


@pytest.mark.parametrize(
    ("key", "data", "extra"),
    [
        ("invokeai_metadata", made.INVOKEAI_V3, {}),
        ("sd-metadata", made.INVOKEAI_V2, {}),
        ("parameters", made.FOOOCUS_JSON, {"fooocus_scheme": "fooocus"}),
        ("Comment", made.NOVELAI_COMMENT, {"Software": "NovelAI", "Description": "d"}),
    ],
)
def test_wrong_types_in_every_json_format_never_raise(key, data, extra):
    rng = random.Random(key)
    junk: list[object] = [None, -1, 2**80, 1e308, "x", "", [], {}, [{}], {"a": [1]}, True]
    for _ in range(200):
        damaged = json.loads(json.dumps(data))
        for _ in range(rng.randint(1, 5)):
            target = damaged
            if "image" in damaged and isinstance(damaged["image"], dict) and rng.random() < 0.5:
                target = damaged["image"]
            target[rng.choice(list(target) or ["k"])] = copy.deepcopy(rng.choice(junk))
        record = read_texts({key: json.dumps(damaged), **extra})
        assert record is None or isinstance(record.seed, (int, type(None)))
