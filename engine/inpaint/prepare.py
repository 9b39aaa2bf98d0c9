"""From an inpainting request to the pictures the pipeline works on, and back (torch-free).

The rules follow A1111's img2img inpainting (``modules/processing.py``,
``StableDiffusionProcessingImg2Img.init``), written anew:

- The mask (255 = repaint) is feathered by a Gaussian of ``mask_blur`` pixels.
- Inpaint area "whole": picture and mask are fitted to (width, height) together (crop and
  resize, as every init image). The result is pasted over the fitted picture with the feathered
  mask doubled and clipped (fully generated where the feathered mask reaches one half, fading to
  the original over its outer half).
- Inpaint area "masked": the crop region (``engine.inpaint.region``) of the ORIGINAL picture
  is scaled to (width, height) and inpainted; the result is scaled back and pasted into the
  original picture with the feathered mask. The output has the original picture's size.
- Paste-back: where the feathered mask is 0 the output IS the input picture, bit for bit, so
  repeated inpainting never wears untouched areas down through the VAE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.api import GenerationRequest
from engine.errors import InvalidRequestError
from engine.inpaint import masks
from engine.inpaint.fill import fill_masked
from engine.inpaint.region import Box, crop_region

EMPTY_MASK_MESSAGE = (
    "The mask is empty: there is nothing to repaint. Paint the area to change in white "
    "(or run img2img without a mask)."
)
FULL_MASK_NOTE = "The mask covers the whole picture: it ran as plain img2img."


@dataclass(frozen=True)
class InpaintPlan:
    """What one inpainting request works on; all arrays uint8."""

    picture: np.ndarray  # (height, width, 3) encoded as the init image ("fill" applied)
    mask: np.ndarray  # (height, width) feathered, aligned with ``picture``: 255 = repaint
    base: np.ndarray  # (H, W, 3) the picture the result is pasted into (the output's size)
    overlay: np.ndarray  # (H, W) paste weights over ``base``: 255 = generated pixel
    crop: Box | None  # where in ``base`` the generated picture goes ("masked" area only)
    notes: tuple[str, ...] = ()


def mask_pixels(request: GenerationRequest) -> np.ndarray:
    """The request's mask as (H, W) uint8 (an RGB or RGBA array is read by
    ``masks.mask_from_pixels``: alpha is the mask)."""
    assert request.mask is not None
    return masks.mask_from_pixels(np.asarray(request.mask))


def plan_inpaint(request: GenerationRequest) -> InpaintPlan | None:
    """The plan for an img2img request with a mask; None when the mask covers everything (then
    it is plain img2img: the caller adds ``FULL_MASK_NOTE``). Raises InvalidRequestError for an
    empty mask."""
    from engine.images import fit_image

    assert request.init_image is not None and request.mask is not None
    source = request.init_image
    original = fit_image(source, source.shape[1], source.shape[0])  # RGB, original size
    mask, notes = _mask_for(original, mask_pixels(request))
    if masks.is_empty(mask):
        raise InvalidRequestError(EMPTY_MASK_MESSAGE)
    if masks.is_full(mask):
        return None
    if request.inpaint_area == "masked":
        plan = _plan_masked(request, original, mask)
    else:
        plan = _plan_whole(request, original, mask)
    if request.masked_content == "fill":
        plan = _with_picture(plan, fill_masked(plan.picture, plan.mask))
    return _with_notes(plan, notes)


def _mask_for(picture: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    height, width = picture.shape[:2]
    if mask.shape == (height, width):
        return mask, ()
    note = (
        f"The mask is {mask.shape[1]}x{mask.shape[0]} pixels but the image is {width}x{height}: "
        "the mask was scaled to the image."
    )
    return masks.resize_mask(mask, width, height), (note,)


def _plan_whole(request: GenerationRequest, original: np.ndarray, mask: np.ndarray):
    from engine.images import fit_image

    width, height = request.width, request.height
    picture = fit_image(original, width, height)
    fitted_mask = fit_image(np.repeat(mask[:, :, None], 3, axis=2), width, height)[:, :, 0]
    feathered = masks.feather(fitted_mask, request.mask_blur)
    overlay = np.clip(feathered.astype(np.int32) * 2, 0, 255).astype(np.uint8)
    return InpaintPlan(picture, feathered, picture, overlay, None)


def _plan_masked(request: GenerationRequest, original: np.ndarray, mask: np.ndarray):
    from PIL import Image

    width, height = request.width, request.height
    feathered = masks.feather(mask, request.mask_blur)  # original size
    box = crop_region(feathered, request.inpaint_padding, width, height)
    assert box is not None  # the mask is not empty
    lanczos = Image.Resampling.LANCZOS
    picture = np.asarray(Image.fromarray(original).crop(box).resize((width, height), lanczos))
    cut = Image.fromarray(feathered, "L").crop(box).resize((width, height), lanczos)
    return InpaintPlan(picture.copy(), np.asarray(cut).copy(), original, feathered, box)


def _with_picture(plan: InpaintPlan, picture: np.ndarray) -> InpaintPlan:
    return InpaintPlan(picture, plan.mask, plan.base, plan.overlay, plan.crop, plan.notes)


def _with_notes(plan: InpaintPlan, notes: tuple[str, ...]) -> InpaintPlan:
    return InpaintPlan(plan.picture, plan.mask, plan.base, plan.overlay, plan.crop, notes)


def paste_back(plan: InpaintPlan, generated: np.ndarray) -> np.ndarray:
    """The generated (height, width, 3) picture put back into ``plan.base`` (scaled into the crop
    for "masked"), blended by ``plan.overlay``; exactly ``plan.base`` where the overlay is 0."""
    from PIL import Image

    placed = plan.base.copy()
    if plan.crop is None:
        placed = generated
    else:
        left, top, right, bottom = plan.crop
        size = (right - left, bottom - top)
        scaled = Image.fromarray(generated).resize(size, Image.Resampling.LANCZOS)
        placed[top:bottom, left:right] = np.asarray(scaled)
    weight = plan.overlay.astype(np.float32)[:, :, None] / 255.0  # (H, W, 1)
    mixed = plan.base.astype(np.float32) * (1.0 - weight) + placed.astype(np.float32) * weight
    out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    out[plan.overlay == 0] = plan.base[plan.overlay == 0]  # exact, whatever the float rounding
    return out
