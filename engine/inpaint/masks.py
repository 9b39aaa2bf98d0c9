"""Inpainting masks: (H, W) ``uint8`` arrays where 255 = repaint and 0 = keep.

Torch-free (numpy and Pillow only): the app's canvas uses these for its grow, shrink, feather
and invert buttons, and the engine uses the same functions when it prepares a request, so what
the canvas shows is what the engine repaints. Every function returns a new array and leaves its
argument untouched.
"""

from __future__ import annotations

import numpy as np

REPAINT, KEEP = 255, 0
# Alpha counts as "the mask" only when some pixel is not fully opaque: a plain RGBA export of a
# black-and-white mask has alpha 255 everywhere and means its colours.
_OPAQUE = 255


def mask_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """Any mask picture as an (H, W) uint8 mask.

    (H, W) greyscale is taken as it is. (H, W, 3) RGB: its luminance (white = repaint).
    (H, W, 4) RGBA (or (H, W, 2) grey + alpha): when the alpha channel varies or is below 255
    anywhere, the ALPHA IS THE MASK (opaque = repaint), as a brush painted onto a transparent
    layer; a fully opaque one falls back to the colours.
    """
    if pixels.ndim == 2:
        return pixels.astype(np.uint8, copy=True)
    if pixels.ndim != 3 or pixels.shape[2] not in (2, 3, 4):
        raise ValueError(f"a mask must be (H, W), (H, W, 3) or (H, W, 4), not {pixels.shape}")
    if pixels.shape[2] in (2, 4):
        alpha = pixels[:, :, -1]
        if (alpha < _OPAQUE).any():
            return alpha.astype(np.uint8, copy=True)
        pixels = pixels[:, :, :-1]
    if pixels.shape[2] == 1:
        return pixels[:, :, 0].astype(np.uint8, copy=True)
    # ITU-R 601 luma, as Pillow's convert("L").
    rgb = pixels[:, :, :3].astype(np.float32)  # (H, W, 3)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (H, W)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def binarize(mask: np.ndarray, threshold: int = 128) -> np.ndarray:
    """255 where ``mask >= threshold``, else 0 (128 = "at 0.5")."""
    return np.where(mask >= threshold, REPAINT, KEEP).astype(np.uint8)


def invert(mask: np.ndarray) -> np.ndarray:
    """Repaint what was kept and keep what was repainted (A1111's "Inpaint not masked")."""
    return (255 - mask.astype(np.int16)).astype(np.uint8)


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate the repaint area by ``pixels`` (a grey mask: each pixel takes the largest value
    within ``pixels`` horizontally and vertically, a square neighbourhood). A negative
    ``pixels`` shrinks instead (see ``shrink``); 0 returns a copy."""
    if pixels < 0:
        return shrink(mask, -pixels)
    if pixels == 0:
        return mask.copy()
    return _window_filter(mask, pixels, np.max, pad_value=KEEP)


def shrink(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Erode the repaint area by ``pixels`` (the opposite of ``grow``). The picture's border does
    not erode a mask that touches it. A negative ``pixels`` grows."""
    if pixels < 0:
        return grow(mask, -pixels)
    if pixels == 0:
        return mask.copy()
    return _window_filter(mask, pixels, np.min, pad_value=REPAINT)


def _window_filter(mask: np.ndarray, radius: int, reduce, pad_value: int) -> np.ndarray:
    """Max or min over a (2r+1)-square window, separably: rows then columns, O(H*W*r)."""
    from numpy.lib.stride_tricks import sliding_window_view

    radius = min(radius, max(mask.shape))  # a larger window changes nothing more
    size = 2 * radius + 1
    padded = np.pad(mask, radius, constant_values=pad_value)  # (H + 2r, W + 2r)
    rows = reduce(sliding_window_view(padded, size, axis=1), axis=-1)  # (H + 2r, W)
    return reduce(sliding_window_view(rows, size, axis=0), axis=-1).astype(np.uint8)  # (H, W)


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of standard deviation ``radius`` pixels: a soft edge that fades over about
    2 * radius on each side of the hard one. A1111's "Mask blur" (there an OpenCV Gaussian of
    sigma = blur); 0 returns a copy. Pixels beyond the picture are taken as the edge pixel, so a
    mask touching the border stays fully white there."""
    if radius <= 0:
        return mask.copy()
    from PIL import Image, ImageFilter

    image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), "L")
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8).copy()


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Stretch a mask to (height, width) (bilinear: a scaled hard edge stays a thin grey edge).
    Used when a mask of another size than its picture is handed in."""
    from PIL import Image

    if mask.shape == (height, width):
        return mask.copy()
    image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), "L")
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8).copy()


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the non-zero pixels, right and bottom exclusive (a PIL
    crop box); None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def is_empty(mask: np.ndarray) -> bool:
    """Nothing to repaint."""
    return not mask.any()


def is_full(mask: np.ndarray) -> bool:
    """Everything is repainted at full strength (inpainting is then plain img2img)."""
    return bool((mask == REPAINT).all())
