"""Loading any image a person hands us, refusing bombs and broken files, and fitting."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from engine.errors import ImageError
from engine.images import fit_image, load_image

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255,) * 3, (0,) * 3


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def _png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def test_rgb_png_from_path_and_bytes(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)  # (H, W, 3)
    path = _save(Image.fromarray(pixels), tmp_path / "a.png")
    for source in (path, str(path), path.read_bytes()):
        loaded = load_image(source)
        assert loaded.dtype == np.uint8 and loaded.shape == (5, 7, 3)
        np.testing.assert_array_equal(loaded, pixels)
    assert loaded.flags.writeable


def test_one_by_one(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (1, 1), BLUE), tmp_path / "dot.png")
    np.testing.assert_array_equal(load_image(path), [[BLUE]])


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (3, 1))
    image.putdata([(255, 0, 0, 0), (255, 0, 0, 255), (0, 0, 0, 128)])
    loaded = load_image(_save(image, tmp_path / "a.png"))
    np.testing.assert_array_equal(loaded[0, 0], WHITE)  # fully transparent -> background
    np.testing.assert_array_equal(loaded[0, 1], RED)
    assert np.all(np.abs(loaded[0, 2].astype(int) - 127) <= 1)  # half black over white


def test_la_is_composited_over_white(tmp_path: Path) -> None:
    image = Image.new("LA", (2, 1))
    image.putdata([(0, 0), (0, 255)])
    np.testing.assert_array_equal(load_image(_save(image, tmp_path / "la.png")), [[WHITE, BLACK]])


def test_palette_with_transparent_index(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    image.putdata([0, 1])
    path = _save(image, tmp_path / "p.png", transparency=0)
    with Image.open(path) as check:
        assert check.mode == "P" and "transparency" in check.info
    np.testing.assert_array_equal(load_image(path), [[WHITE, RED]])


def test_rgb_with_transparent_colour_key(tmp_path: Path) -> None:
    image = Image.new("RGB", (2, 1))
    image.putdata([GREEN, BLUE])
    path = _save(image, tmp_path / "key.png", transparency=GREEN)
    np.testing.assert_array_equal(load_image(path), [[WHITE, BLUE]])


def test_cmyk(tmp_path: Path) -> None:
    image = Image.new("CMYK", (2, 1))
    image.putdata([(0, 0, 0, 0), (0, 255, 255, 0)])
    np.testing.assert_array_equal(load_image(_save(image, tmp_path / "c.tiff")), [[WHITE, RED]])


def test_bilevel(tmp_path: Path) -> None:
    image = Image.new("1", (2, 1))
    image.putdata([0, 255])
    np.testing.assert_array_equal(load_image(_save(image, tmp_path / "b.png")), [[BLACK, WHITE]])


def test_sixteen_bit_grey_is_scaled(tmp_path: Path) -> None:
    image = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))
    path = _save(image, tmp_path / "g16.png")
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    np.testing.assert_array_equal(load_image(path)[0, :, 0], [0, 128, 255])
    assert load_image(path).shape == (1, 3, 3)


def test_32_bit_integer_grey_in_byte_range(tmp_path: Path) -> None:
    image = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32))
    assert image.mode == "I"
    np.testing.assert_array_equal(
        load_image(_save(image, tmp_path / "i.tiff"))[0, :, 1], [0, 100, 255]
    )


def test_float_grey_from_zero_to_one(tmp_path: Path) -> None:
    image = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert image.mode == "F"
    np.testing.assert_array_equal(
        load_image(_save(image, tmp_path / "f.tiff"))[0, :, 2], [0, 128, 255]
    )


def test_animated_gif_gives_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), colour) for colour in (RED, BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 2
    assert np.all(load_image(path) == RED)


def test_exif_orientation_six_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((2, 4, 3), np.uint8)  # (H, W, 3): wide as stored
    stored[0, 0] = RED  # top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = _save(Image.fromarray(stored), tmp_path / "rot.png", exif=exif)
    loaded = load_image(path)
    assert loaded.shape == (4, 2, 3)  # tall once upright
    np.testing.assert_array_equal(loaded[0, 1], RED)  # top-left went to top-right
    assert loaded.sum() == 255


def test_truncated_file(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _png(Image.fromarray(noise))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(ImageError, match=r"cut.png' is damaged or incomplete.*choose another"):
        load_image(path)


@pytest.mark.parametrize("data", [b"", b"\x00" * 10, bytes(range(256)) * 4, b"GIF89a broken"])
def test_not_an_image(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(data)
    with pytest.raises(ImageError, match="notes.png' is not an image"):
        load_image(path)
    with pytest.raises(ImageError, match="dropped image"):
        load_image(data)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "gone.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def _claiming_png(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims ``width`` x ``height`` pixels."""
    data = bytearray(_png(Image.new("RGB", (1, 1))))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any pixel data is decoded."""

    def load(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.mark.parametrize(
    "size",
    [
        (30000, 30000),  # beyond Pillow's own error threshold
        (10000, 10000),  # where Pillow would only warn
        (9000, 8000),  # 72 MP: under Pillow's limits, over ours
    ],
)
def test_decompression_bomb_is_refused_before_decoding(size, no_decoding) -> None:
    data = _claiming_png(*size)
    assert struct.unpack(">II", data[16:24]) == size  # the header really claims that size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError, match="too large.*Scale it down"):
            load_image(data)
    assert caught == []  # refused outright, no DecompressionBombWarning leaks out


def test_pixel_limit_is_a_parameter_and_global_limit_untouched(tmp_path: Path) -> None:
    before = Image.MAX_IMAGE_PIXELS
    path = _save(Image.new("RGB", (20, 10)), tmp_path / "small.png")
    with pytest.raises(ImageError, match="20x10 pixels"):
        load_image(path, max_pixels=199)
    assert load_image(path, max_pixels=200).shape == (10, 20, 3)
    assert Image.MAX_IMAGE_PIXELS == before


# --- fit_image -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "target"),
    [((100, 200), (64, 64)), ((200, 100), (64, 128)), ((33, 17), (512, 512)), ((64, 96), (96, 64))],
)
def test_fit_image_shapes(src: tuple[int, int], target: tuple[int, int]) -> None:
    image = np.full((src[1], src[0], 3), 90, np.uint8)  # (H, W, 3)
    fitted = fit_image(image, *target)
    assert fitted.shape == (target[1], target[0], 3) and fitted.dtype == np.uint8
    assert np.all(np.abs(fitted.astype(int) - 90) <= 1)  # no border, no padding colour


def _bands(length: int, across: int, vertical: bool) -> np.ndarray:
    """Red first quarter, green middle half, blue last quarter, along one axis."""
    line = np.zeros((length, 3), np.uint8)
    line[: length // 4] = RED
    line[length // 4 : length - length // 4] = GREEN
    line[length - length // 4 :] = BLUE
    bands = np.repeat(line[:, None], across, axis=1)  # (length, across, 3)
    return bands if vertical else bands.transpose(1, 0, 2)


@pytest.mark.parametrize("vertical", [True, False])
def test_fit_image_crops_the_centre(vertical: bool) -> None:
    image = _bands(200, 100, vertical)  # tall when vertical, else wide: 2:1 either way
    fitted = fit_image(image, 50, 50)  # scale by 1/2, then lose a quarter at each end
    assert fitted.shape == (50, 50, 3)
    # All green; Lanczos may blur the outermost rows a little towards the cut-off bands.
    assert np.all(fitted[..., 1] >= 235) and np.all(fitted[..., [0, 2]] <= 20)
    assert np.all(np.abs(fitted[2:-2, 2:-2].astype(int) - GREEN) <= 2)


def test_fit_image_keeps_aspect_ratio_when_upscaling() -> None:
    image = _bands(16, 16, vertical=False)  # square: red left, green middle, blue right
    fitted = fit_image(image, 64, 32)  # cover: 4x to 64x64, then keep the middle 32 rows
    assert fitted.shape == (32, 64, 3)
    assert np.all(np.abs(fitted[:, :14].astype(int) - RED) <= 8)
    assert np.all(np.abs(fitted[:, 18:46].astype(int) - GREEN) <= 8)
    assert np.all(np.abs(fitted[:, 50:].astype(int) - BLUE) <= 8)


def test_fit_image_same_size_is_an_exact_copy() -> None:
    image = np.random.default_rng(2).integers(0, 256, (8, 16, 3), dtype=np.uint8)
    fitted = fit_image(image, 16, 8)
    np.testing.assert_array_equal(fitted, image)
    assert fitted is not image
