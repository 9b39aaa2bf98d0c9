"""Checks on a request's inpainting fields, before any work starts (torch-free)."""

from __future__ import annotations

import numpy as np

from engine.api import INPAINT_AREAS, MASKED_CONTENT, GenerationRequest
from engine.errors import InvalidRequestError
from engine.inpaint.masks import is_empty, mask_from_pixels
from engine.inpaint.prepare import EMPTY_MASK_MESSAGE
from engine.inpaint.settings import MAX_MASK_BLUR, MAX_PADDING


def check_inpainting(req: GenerationRequest) -> None:
    """Raise InvalidRequestError for a mask that cannot be used or an unknown option."""
    if req.masked_content not in MASKED_CONTENT:
        raise InvalidRequestError(
            f"Unknown masked content {req.masked_content!r}: choose one of "
            f"{', '.join(MASKED_CONTENT)}."
        )
    if req.inpaint_area not in INPAINT_AREAS:
        raise InvalidRequestError(
            f"Unknown inpaint area {req.inpaint_area!r}: choose one of {', '.join(INPAINT_AREAS)}."
        )
    _check_int("Mask blur", req.mask_blur, MAX_MASK_BLUR)
    _check_int("Masked area padding", req.inpaint_padding, MAX_PADDING)
    if req.mask is None:
        return
    if req.init_image is None:
        raise InvalidRequestError(
            "A mask needs an init image: inpainting repaints part of a picture. "
            "Give the picture (--init-img) with the mask."
        )
    if is_empty(_mask_of(req.mask)):
        raise InvalidRequestError(EMPTY_MASK_MESSAGE)


def _mask_of(mask: object) -> np.ndarray:
    from engine.images import MAX_PIXELS

    ok = (
        isinstance(mask, np.ndarray)
        and mask.dtype == np.uint8
        and (mask.ndim == 2 or (mask.ndim == 3 and mask.shape[2] in (2, 3, 4)))
        and mask.shape[0] >= 1
        and mask.shape[1] >= 1
    )
    if not ok:
        raise InvalidRequestError(
            "The mask must be a picture of 8 bits per channel (height x width, white = repaint; "
            "or with an alpha channel, opaque = repaint)."
        )
    assert isinstance(mask, np.ndarray)
    height, width = mask.shape[:2]
    if height * width > MAX_PIXELS:
        raise InvalidRequestError(
            f"The mask is too large: {width}x{height} pixels (the limit is "
            f"{MAX_PIXELS / 1e6:.0f} megapixels). Scale it down first."
        )
    return mask_from_pixels(mask)


def _check_int(name: str, value: object, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise InvalidRequestError(f"{name} must be a whole number from 0 to {high}, not {value!r}.")
