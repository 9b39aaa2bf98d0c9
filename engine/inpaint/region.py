"""Inpaint area "only masked" (A1111's "inpaint at full resolution"): the region to cut out.

The mask's bounding box plus padding, widened to the generation size's aspect ratio, so the
crop scales to (width, height) without distortion and the small masked area gets the model's
full resolution. Torch-free.
"""

from __future__ import annotations

import numpy as np

from engine.inpaint.masks import bounding_box

Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive): a PIL crop box


def crop_region(mask: np.ndarray, padding: int, width: int, height: int) -> Box | None:
    """Where to cut: the bounding box of ``mask``'s non-zero pixels grown by ``padding`` on each
    side, then grown on the short side (equally both ways) to the aspect ratio ``width:height``,
    then shifted or clamped to stay inside the picture (a crop wider than the picture keeps the
    picture's width, so its ratio then differs slightly). None for an empty mask."""
    box = bounding_box(mask)
    if box is None:
        return None
    image_h, image_w = mask.shape
    left, top, right, bottom = box
    left, top = max(left - padding, 0), max(top - padding, 0)
    right, bottom = min(right + padding, image_w), min(bottom + padding, image_h)
    crop_w, crop_h = right - left, bottom - top
    if crop_w * height < crop_h * width:  # too narrow for the target: widen
        left, right = _widen(left, right, -(-crop_h * width // height), image_w)
    else:  # too flat: heighten
        top, bottom = _widen(top, bottom, -(-crop_w * height // width), image_h)
    return left, top, right, bottom


def _widen(start: int, end: int, length: int, limit: int) -> tuple[int, int]:
    """[start, end) grown to ``length`` around its centre, shifted back inside [0, limit)."""
    length = min(length, limit)
    grow = length - (end - start)
    start -= grow // 2
    end = start + length
    if start < 0:
        start, end = 0, length
    if end > limit:
        start, end = limit - length, limit
    return start, end
