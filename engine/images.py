"""Reading init images and images dropped on the canvas, and fitting them to a target size.

Everything a person can hand us (any file, any mode, a photo with EXIF rotation, a huge or
broken file) either becomes an RGB ``uint8`` array of shape (H, W, 3) or an ImageError that says
which file and what to do. Nothing is decoded before its size has been checked.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ImageError

# Refuse larger images before decoding: 64 MP of RGBA is already 256 MB in memory.
MAX_PIXELS = 64_000_000

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_HIGH_DEPTH_MODES = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
_WHITE = (255, 255, 255, 255)


def load_image(
    source: str | os.PathLike[str] | bytes, *, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """An image file (path) or its bytes as RGB uint8 (H, W, 3).

    EXIF orientation is applied, transparency is composited over white, animated images give
    their first frame, 16-bit and float images are scaled to 8 bits. Raises ImageError.
    """
    from PIL import Image

    name = _describe(source)
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice that: make it refuse there too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _open(source, name)
    with image:
        _check_size(image.size, max_pixels, name)
        return _decode(image, name)


def fit_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fit an (H, W, 3) image to (height, width, 3) the way A1111's "crop and resize" does.
    An (H, W, 4) RGBA image is first composited over white.

    The rule: scale (Lanczos) by the smaller factor that makes the image COVER the target in
    both directions, keeping its aspect ratio, then cut the overhang off equally on both sides
    (centre crop; an odd overhang leaves the extra pixel on the right/bottom). Nothing is
    stretched and no border is added; an image already of the target size is returned as a copy.
    """
    from PIL import Image

    if image.ndim == 3 and image.shape[2] == 4:  # RGBA from a canvas: flatten as load_image does
        image = _to_rgb_array(Image.fromarray(np.ascontiguousarray(image), "RGBA"))
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image.copy()
    scale = max(width / src_w, height / src_h)
    new_w = max(width, round(src_w * scale))
    new_h = max(height, round(src_h * scale))
    resized = Image.fromarray(np.ascontiguousarray(image)).resize(
        (new_w, new_h), Image.Resampling.LANCZOS
    )
    left, top = (new_w - width) // 2, (new_h - height) // 2
    cropped = resized.crop((left, top, left + width, top + height))
    return np.asarray(cropped, dtype=np.uint8).copy()  # (height, width, 3)


def _describe(source: object) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "the dropped image"
    return repr(str(Path(source)))  # type: ignore[arg-type]


def _open(source: str | os.PathLike[str] | bytes, name: str) -> Any:
    from PIL import Image

    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        return Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(
            f"The image {name} is too large to open safely ({error}). "
            "Scale it down in an image editor first."
        ) from error
    except FileNotFoundError as error:
        raise ImageError(f"The image {name} does not exist. Check the path.") from error
    except IsADirectoryError as error:
        raise ImageError(f"{name} is a folder, not an image file. Choose a file.") from error
    except PermissionError as error:
        raise ImageError(f"No permission to read the image {name}. Check its rights.") from error
    except Exception as error:  # Pillow raises many types for odd files; none may crash us
        raise ImageError(
            f"{_capital(name)} is not an image that can be read (PNG, JPEG, WebP, BMP, TIFF, "
            f"GIF, ...): {error}. Choose another file."
        ) from error


def _check_size(size: tuple[int, int], max_pixels: int, name: str) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageError(
            f"The image {name} is too large: {width}x{height} pixels "
            f"({width * height / 1e6:.1f} megapixels, the limit is {max_pixels / 1e6:.0f}). "
            "Scale it down in an image editor first."
        )


def _decode(image: Any, name: str) -> np.ndarray:
    """Pixels of an opened (size-checked) image as RGB uint8 (H, W, 3)."""
    try:
        image.load()
    except Exception as error:  # truncated data, bad compression, broken chunks, ...
        raise ImageError(
            f"{_capital(name)} is damaged or incomplete ({error}). "
            "Re-save it with an image editor or choose another file."
        ) from error
    try:
        return _to_rgb_array(_upright(image))
    except Exception as error:
        raise ImageError(
            f"{_capital(name)} uses a colour format that cannot be converted ({image.mode}): "
            f"{error}. Re-save it as an ordinary RGB PNG or JPEG."
        ) from error


def _upright(image: Any) -> Any:
    """Apply the EXIF orientation tag; a broken EXIF block just leaves the image as stored."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(image) or image
    except Exception:  # a malformed EXIF block is no reason to refuse the pixels
        return image


def _to_rgb_array(image: Any) -> np.ndarray:
    from PIL import Image

    if image.mode in _HIGH_DEPTH_MODES:
        return _high_depth_to_rgb(np.asarray(image))
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()  # (H, W, 3)


def _high_depth_to_rgb(values: np.ndarray) -> np.ndarray:
    """16-bit, 32-bit integer or float greyscale to 8 bits. Integers above 255 are taken as
    16-bit (0..65535); floats up to 1.0 as 0..1, larger ones as 0..255."""
    is_float = np.issubdtype(values.dtype, np.floating)
    values = values.astype(np.float64)  # (H, W)
    finite = values[np.isfinite(values)]
    peak = float(finite.max()) if finite.size else 0.0
    if is_float and peak <= 1.0:
        values = values * 255.0
    elif not is_float and peak > 255.0:
        values = values / 257.0
    grey = np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8)  # (H, W)
    return np.repeat(grey[:, :, None], 3, axis=2)  # (H, W, 3)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
