"""Hostile init images through the CLI's --init-img and Engine.generate (test_images.py covers
engine.images alone). Each works, with the pixels the person sees, or gives a one-line message."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from engine import Engine, GenerationRequest
from engine.cli import main
from engine.images import load_image
from engine.session import Engine as SessionEngine
from tests.factories import tiny_sd1_state_dict, write_checkpoint

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=6), path)
    return path


@pytest.fixture(scope="module")
def engine(ckpt) -> Engine:
    eng = Engine(device="cpu", precision="full")
    eng.load_model(ckpt)
    return eng


# --- the images: (file bytes, the RGB array a person sees) -----------------------------------


def _encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _quadrants() -> np.ndarray:
    """Red top-left, blue elsewhere: shows any rotation or flip."""
    pixels = np.zeros((16, 24, 3), np.uint8)  # (H, W, 3)
    pixels[:] = BLUE
    pixels[:8, :12] = RED
    return pixels


def _cmyk():
    image = Image.new("CMYK", (8, 4), (0, 255, 255, 0))  # pure red in CMYK
    return _encode(image, "TIFF"), np.full((4, 8, 3), RED, np.uint8)


def _cmyk_jpeg():
    data = _encode(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG", quality=100)
    return data, np.full((8, 8, 3), WHITE, np.uint8)


def _sixteen_bit():
    values = np.tile(np.array([0, 65535], np.uint16), (4, 4))  # (4, 8)
    expected = np.repeat(np.tile(np.array([0, 255], np.uint8), (4, 4))[:, :, None], 3, axis=2)
    return _encode(Image.fromarray(values)), expected


def _sixteen_bit_rgb():
    # PNG allows 16 bits per channel; Pillow opens it as 8-bit RGB.
    width, height = 4, 2
    row = b"\x00" + b"\xff\xff\x00\x00\x00\x00" * width  # filter byte, red in 16-bit
    raw = zlib.compress(row * height)
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    return data, np.full((height, width, 3), RED, np.uint8)


def _palette():
    image = Image.new("P", (6, 2))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putdata([0, 1] * 6)
    expected = np.tile(np.array([RED, BLUE], np.uint8), (2, 3, 1))
    return _encode(image), expected


def _transparent():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # invisible red
    image.putpixel((0, 0), (0, 0, 255, 255))
    expected = np.full((4, 4, 3), WHITE, np.uint8)
    expected[0, 0] = BLUE
    return _encode(image), expected


def _transparent_webp():
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    return _encode(image, "WEBP", lossless=True), np.full((4, 4, 3), WHITE, np.uint8)


def _animated():
    frames = [Image.new("RGB", (4, 4), colour) for colour in (RED, BLUE, BLUE)]
    data = io.BytesIO()
    frames[0].save(data, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return data.getvalue(), np.full((4, 4, 3), RED, np.uint8)


def _animated_png():
    frames = [Image.new("RGB", (4, 4), colour) for colour in (BLUE, RED)]
    data = io.BytesIO()
    frames[0].save(data, "PNG", save_all=True, append_images=frames[1:])
    return data.getvalue(), np.full((4, 4, 3), BLUE, np.uint8)


def _exif(orientation: int, transform):
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = _quadrants()
    return _encode(Image.fromarray(stored), "JPEG", quality=100, exif=exif), transform(stored)


def _one_by_one():
    return _encode(Image.new("RGB", (1, 1), RED)), np.full((1, 1, 3), RED, np.uint8)


def _greyscale_alpha():
    image = Image.new("LA", (2, 2), (0, 255))
    return _encode(image), np.zeros((2, 2, 3), np.uint8)


WORKING = {
    "cmyk-tiff": _cmyk,
    "cmyk-jpeg": _cmyk_jpeg,
    "16-bit-grey": _sixteen_bit,
    "16-bit-rgb": _sixteen_bit_rgb,
    "palette": _palette,
    "transparent-png": _transparent,
    "transparent-webp": _transparent_webp,
    "animated-gif": _animated,
    "animated-png": _animated_png,
    "exif-rotate-90": lambda: _exif(6, lambda a: np.rot90(a, k=-1)),
    "exif-rotate-180": lambda: _exif(3, lambda a: np.rot90(a, k=2)),
    "exif-mirror": lambda: _exif(2, lambda a: a[:, ::-1]),
    "exif-rotate-270": lambda: _exif(8, lambda a: np.rot90(a, k=1)),
    "1x1": _one_by_one,
    "grey-alpha": _greyscale_alpha,
}


def _truncated():
    noise = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise))
    return data[: len(data) // 2]


def _truncated_jpeg():
    noise = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), "JPEG")
    return data[: len(data) // 3]


def _claims(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb's shape."""
    data = bytearray(_encode(Image.new("RGB", (1, 1))))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _real_10000_square() -> bytes:
    """A complete, valid 10000x10000 PNG (1 bit per pixel, so it is cheap to make)."""
    return _encode(Image.new("1", (10000, 10000)))


REFUSED = {
    "truncated-png": (_truncated, "damaged or incomplete"),
    "truncated-jpeg": (_truncated_jpeg, "damaged or incomplete"),
    "text-file": (lambda: b"a castle on a hill\n" * 20, "not an image"),
    "empty": (lambda: b"", "not an image"),
    "html": (lambda: b"<!DOCTYPE html><html>404</html>", "not an image"),
    "png-magic-then-garbage": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(200), "not an image"),
    "bomb-30000": (lambda: _claims(30000, 30000), "too large"),
    "bomb-100000x1": (lambda: _claims(100_000, 1000), "too large"),
    "10000x10000": (_real_10000_square, "too large"),
}


# --- through the CLI ----------------------------------------------------------------------------


def _cli(ckpt: Path, out: Path, init: Path, *extra: str) -> list[str]:
    return [
        "img2img",
        "--ckpt",
        str(ckpt),
        "--outdir",
        str(out),
        "--init-img",
        str(init),
        "--prompt",
        "a castle",
        "--H",
        "64",
        "--W",
        "64",
        "--steps",
        "2",
        "--strength",
        "0.5",
        "--precision",
        "full",
        "--seed",
        "3",
        "--json",
        *extra,
    ]


@pytest.fixture
def seen_by_engine(monkeypatch) -> list[np.ndarray]:
    """The init images that reach the engine, as arrays."""
    seen: list[np.ndarray] = []
    real = SessionEngine.generate

    def generate(self, request, *args, **kwargs):
        seen.append(request.init_image)
        return real(self, request, *args, **kwargs)

    monkeypatch.setattr(SessionEngine, "generate", generate)
    return seen


@pytest.mark.parametrize("name", list(WORKING))
def test_cli_accepts_and_reads_what_a_person_sees(name, ckpt, tmp_path, capsys, seen_by_engine):
    data, expected = WORKING[name]()
    init = tmp_path / f"init-{name}"
    init.write_bytes(data)
    assert main(_cli(ckpt, tmp_path / "out", init)) == 0, capsys.readouterr().err
    (entry,) = json.loads(capsys.readouterr().out)["images"]
    (array,) = seen_by_engine
    assert array.shape == expected.shape and array.dtype == np.uint8
    # JPEG blurs colour edges (mean error ~5); a wrong orientation would give ~40.
    tolerance = 10 if "jpeg" in name or "exif" in name else 0
    assert np.abs(array.astype(int) - expected.astype(int)).mean() <= tolerance
    with Image.open(entry["path"]) as out:
        out.load()
        assert out.size == (64, 64) and "Denoising strength: 0.5" in out.info["parameters"]


@pytest.mark.parametrize("name", list(REFUSED))
def test_cli_refuses_with_one_line(name, ckpt, tmp_path, capsys, monkeypatch):
    make, message = REFUSED[name]
    init = tmp_path / "init.png"
    init.write_bytes(make())
    monkeypatch.setattr(ImageFile.ImageFile, "load", _never_decode if "0000" in name else _real)
    loads: list[str] = []
    monkeypatch.setattr(SessionEngine, "load_model", lambda *a, **k: loads.append("load"))
    assert main(_cli(ckpt, tmp_path / "out", init)) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and message in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert str(init) in captured.err  # names the file
    assert loads == [] and not (tmp_path / "out").exists()  # refused before the model loads


_real = ImageFile.ImageFile.load


def _never_decode(self):
    raise AssertionError("a bomb's pixels were decoded")


def test_cli_missing_init_image(ckpt, tmp_path, capsys):
    assert main(_cli(ckpt, tmp_path / "out", tmp_path / "nope.png")) == 1
    assert "does not exist" in capsys.readouterr().err


# --- through Engine.generate ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cmyk-tiff", "16-bit-grey", "exif-rotate-90", "1x1"])
def test_engine_generates_from_loaded_images(name, engine, tmp_path):
    data, expected = WORKING[name]()
    array = load_image(data)
    req = GenerationRequest(
        "a castle", width=64, height=64, steps=2, seed=3, sampler="euler", init_image=array
    )
    image = engine.generate(req).images[0].image
    assert image.shape == (64, 64, 3) and image.std() > 0
