"""Reading a mask file: the same checks as init images (engine.images: size limit before
decoding, bombs, broken and non-image files refused with a message), but the alpha channel is
kept, because in a mask with transparency the alpha IS the mask (masks.mask_from_pixels)."""

from __future__ import annotations

import os
import warnings

import numpy as np

from engine.errors import ImageError
from engine.images import MAX_PIXELS, _capital, _check_size, _open, _to_rgb_array, _upright
from engine.inpaint.masks import mask_from_pixels


def load_mask(
    source: str | os.PathLike[str] | bytes, *, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """A mask file as (H, W) uint8, 255 = repaint. Raises ImageError."""
    name = _name(source)
    try:
        return mask_from_pixels(_read(source, name, max_pixels))
    except ImageError as error:  # the image checks' message, said of the mask
        raise ImageError(f"The mask cannot be used. {error}") from error


def _read(source: str | os.PathLike[str] | bytes, name: str, max_pixels: int) -> np.ndarray:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _open(source, name)
    with image:
        _check_size(image.size, max_pixels, name)
        try:
            image.load()
            upright = _upright(image)
            if upright.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in upright.info:
                return np.asarray(upright.convert("RGBA"), dtype=np.uint8).copy()  # (H, W, 4)
            return _to_rgb_array(upright)  # (H, W, 3)
        except Exception as error:  # truncated data, bad compression, odd modes, ...
            raise ImageError(
                f"{_capital(name)} is damaged or cannot be read ({error}). "
                "Re-save it as an ordinary PNG (white = repaint) or choose another file."
            ) from error


def _name(source: str | os.PathLike[str] | bytes) -> str:
    if isinstance(source, bytes):
        return "the dropped image"
    return repr(os.fspath(source))
