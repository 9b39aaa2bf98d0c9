"""The torch-free parts: mask preparation, outpainting, the "only masked" crop, fill, paste."""

import numpy as np
import pytest
from PIL import Image

from engine.api import GenerationRequest
from engine.inpaint import masks
from engine.inpaint.fill import fill_masked
from engine.inpaint.outpaint import SEAM_OVERLAP, extend
from engine.inpaint.prepare import paste_back, plan_inpaint
from engine.inpaint.region import crop_region
from tests.engine.inpaint.conftest import box_mask, drawn_picture


def test_mask_from_pixels_reads_grey_rgb_and_alpha():
    grey = box_mask(2, 2, 6, 6, size=8)
    assert np.array_equal(masks.mask_from_pixels(grey), grey)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert np.array_equal(masks.mask_from_pixels(rgb), grey)
    # Transparency present: the alpha is the mask, whatever the colours (here all black).
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :, 3] = grey
    assert np.array_equal(masks.mask_from_pixels(rgba), grey)
    # Fully opaque RGBA: the colours are the mask.
    opaque = np.concatenate([rgb, np.full((8, 8, 1), 255, np.uint8)], axis=2)
    assert np.array_equal(masks.mask_from_pixels(opaque), grey)


def test_binarize_invert_grow_shrink():
    mask = box_mask(10, 10, 20, 20, size=32)
    assert masks.bounding_box(masks.grow(mask, 3)) == (7, 7, 23, 23)
    assert masks.bounding_box(masks.shrink(mask, 3)) == (13, 13, 17, 17)
    assert np.array_equal(masks.shrink(masks.grow(mask, 3), 3), mask)
    assert np.array_equal(masks.grow(mask, -3), masks.shrink(mask, 3))
    assert masks.is_empty(masks.shrink(mask, 5))
    assert np.array_equal(masks.invert(masks.invert(mask)), mask)
    assert masks.invert(mask)[0, 0] == 255 and masks.invert(mask)[15, 15] == 0
    soft = np.array([[0, 127, 128, 255]], np.uint8)
    assert masks.binarize(soft).tolist() == [[0, 0, 255, 255]]
    # A mask touching the border does not erode from the border.
    full = np.full((8, 8), 255, np.uint8)
    assert masks.is_full(masks.shrink(full, 2))


def test_feather_is_graded_and_symmetric():
    mask = box_mask(0, 16, 32, 32, size=32)  # right half white
    soft = masks.feather(mask, 4)
    row = soft[16].astype(int)
    assert row[0] == 0 and row[-1] == 255  # far from the edge: unchanged
    assert all(np.diff(row) >= 0)  # graded across the edge
    assert 100 < row[15] < 160 and 100 < row[16] < 160  # the old edge is about half
    assert np.array_equal(masks.feather(mask, 0), mask)


def test_bounding_box_and_empty():
    assert masks.bounding_box(np.zeros((4, 4), np.uint8)) is None
    assert masks.bounding_box(box_mask(3, 5, 7, 9, size=16)) == (5, 3, 9, 7)


@pytest.mark.parametrize("fill", ["edge", "noise"])
def test_outpaint_extends_and_keeps_the_old_pixels(fill):
    picture = drawn_picture(48)
    bigger, mask = extend(picture, left=16, top=0, right=8, bottom=24, fill=fill, seed=1)
    assert bigger.shape == (72, 72, 3) and mask.shape == (72, 72)
    assert np.array_equal(bigger[0:48, 16:64], picture)
    # Masked: the new area plus SEAM_OVERLAP pixels into the old picture on extended sides.
    assert (mask[:, : 16 + SEAM_OVERLAP] == 255).all()
    assert (mask[:, 64 - SEAM_OVERLAP :] == 255).all()
    assert (mask[48 - SEAM_OVERLAP :] == 255).all()
    kept = mask[0 : 48 - SEAM_OVERLAP, 16 + SEAM_OVERLAP : 64 - SEAM_OVERLAP]
    assert (kept == 0).all() and mask.sum() == 255 * (72 * 72 - kept.size)
    if fill == "edge":
        assert np.array_equal(bigger[10, :16], np.repeat(picture[10, :1], 16, axis=0))
        assert np.array_equal(bigger[71, 16:64], picture[47])
    else:  # reproducible noise
        again, _ = extend(picture, left=16, top=0, right=8, bottom=24, fill=fill, seed=1)
        assert np.array_equal(bigger, again) and bigger[60:, :16].std() > 50


def test_crop_region_pads_keeps_aspect_and_stays_inside():
    mask = box_mask(40, 70, 56, 90, size=128)  # 20 wide, 16 high
    assert crop_region(mask, 8, 64, 64) == (62, 30, 98, 66)  # 36x32 padded, made square
    assert crop_region(mask, 8, 128, 64) == (48, 32, 112, 64)  # widened to 2:1
    corner = box_mask(0, 0, 10, 10, size=128)
    assert crop_region(corner, 4, 64, 64) == (0, 0, 14, 14)  # clamped at the border
    assert crop_region(np.zeros((8, 8), np.uint8), 4, 64, 64) is None


def _request(picture, mask, **kw):
    base = dict(width=64, height=64, init_image=picture, mask=mask, mask_blur=0)
    return GenerationRequest("x", **{**base, **kw})


def test_only_masked_crops_scales_and_pastes_in_place():
    """A drawn picture's crop, scaled to the generation size and pasted back unchanged, must
    reproduce the picture: any shift or wrong scale would show on the gradient."""
    picture = drawn_picture(128)
    mask = box_mask(40, 70, 56, 90, size=128)
    plan = plan_inpaint(_request(picture, mask, inpaint_area="masked", inpaint_padding=8))
    assert plan is not None and plan.crop == (62, 30, 98, 66)
    expected = Image.fromarray(picture).crop(plan.crop).resize((64, 64), Image.Resampling.LANCZOS)
    assert np.array_equal(plan.picture, np.asarray(expected))
    assert plan.mask.shape == (64, 64) and plan.base.shape == (128, 128, 3)
    same = paste_back(plan, plan.picture)
    assert same.shape == (128, 128, 3)
    inside = mask == 255
    assert np.abs(same[inside].astype(int) - picture[inside].astype(int)).mean() < 3
    # A flat colour lands exactly on the masked box, nowhere else.
    green = np.zeros((64, 64, 3), np.uint8)
    green[:, :, 1] = 255
    pasted = paste_back(plan, green)
    assert (pasted[inside] == (0, 255, 0)).all()
    assert np.array_equal(pasted[~inside], picture[~inside])


def test_whole_picture_paste_is_exact_outside_and_feathered():
    picture = drawn_picture()
    plan = plan_inpaint(_request(picture, box_mask(16, 16, 48, 48), mask_blur=4))
    assert plan is not None and plan.crop is None
    black = np.zeros_like(picture)
    out = paste_back(plan, black)
    outside = plan.overlay == 0
    assert np.array_equal(out[outside], picture[outside])
    assert (out[24:40, 24:40] == 0).all()  # deep inside: all generated
    # The feathered rim mixes the two.
    rim = (plan.overlay > 0) & (plan.overlay < 255)
    assert rim.any() and (out[rim].astype(int) < picture[rim].astype(int) + 1).all()


def test_fill_paints_the_hole_from_its_surroundings():
    picture = np.zeros((64, 64, 3), np.uint8)
    picture[:, :32] = (200, 0, 0)
    picture[:, 32:] = (0, 0, 200)
    mask = box_mask(20, 20, 40, 44)
    filled = fill_masked(picture, mask)
    assert np.array_equal(filled[mask == 0], picture[mask == 0])
    assert filled[30, 21, 0] > 150 and filled[30, 42, 2] > 150  # near each side, its colour
    assert 60 < filled[30, 32, 0] < 140  # the middle mixes both
    plan = plan_inpaint(_request(picture, mask, masked_content="fill"))
    assert plan is not None and np.array_equal(plan.picture, filled)


def test_mask_of_another_size_is_scaled_with_a_note():
    picture = drawn_picture()
    small = box_mask(8, 8, 24, 24, size=32)
    plan = plan_inpaint(_request(picture, small))
    assert plan is not None
    assert plan.notes == (
        "The mask is 32x32 pixels but the image is 64x64: the mask was scaled to the image.",
    )
    assert masks.bounding_box(masks.binarize(plan.mask)) == (16, 16, 48, 48)
