"""Outpainting: extend the canvas on any side and mask the new area, to inpaint in one step.

Torch-free: the app calls ``extend`` when a person grows the canvas, then sends the bigger
picture and its mask as an ordinary inpainting request.
"""

from __future__ import annotations

import numpy as np

from engine.inpaint.masks import REPAINT

# The mask reaches this many pixels into the old picture on every extended side, so the seam
# itself is repainted and the new area blends in rather than ending at a hard line. 8 pixels
# is one latent cell of SD: the seam's latent column is regenerated, not kept.
SEAM_OVERLAP = 8
FILLS = ("edge", "noise")


def extend(
    image: np.ndarray,
    left: int,
    top: int,
    right: int,
    bottom: int,
    fill: str = "edge",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The (H + top + bottom, W + left + right, 3) picture and its (H', W') uint8 mask.

    The old pixels sit unchanged at (top, left). The new area is pre-filled with ``"edge"``: the
    nearest edge pixel repeated outwards (each new row or column copies the border), or
    ``"noise"``: uniform random colours from ``seed`` (reproducible). The mask is 255 over the
    new area plus ``SEAM_OVERLAP`` pixels into the old picture on each extended side (never more
    than the old picture), and 0 elsewhere.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"extend takes an (H, W, 3) picture, not {image.shape}")
    sides = (left, top, right, bottom)
    if min(sides) < 0:
        raise ValueError(f"sides to extend must be >= 0, got {sides}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    pad = ((top, bottom), (left, right), (0, 0))
    if fill == "edge":
        bigger = np.pad(image, pad, mode="edge")
    else:
        shape = (image.shape[0] + top + bottom, image.shape[1] + left + right, 3)
        bigger = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
        bigger[top : top + image.shape[0], left : left + image.shape[1]] = image
    return bigger, _extension_mask(image.shape[:2], sides)


def _extension_mask(size: tuple[int, int], sides: tuple[int, int, int, int]) -> np.ndarray:
    height, width = size
    left, top, right, bottom = sides
    mask = np.full((height + top + bottom, width + left + right), REPAINT, np.uint8)
    # The part of the old picture kept as it is: shrunk by the overlap on extended sides only.
    keep_left = left + (min(SEAM_OVERLAP, width) if left else 0)
    keep_right = left + width - (min(SEAM_OVERLAP, width) if right else 0)
    keep_top = top + (min(SEAM_OVERLAP, height) if top else 0)
    keep_bottom = top + height - (min(SEAM_OVERLAP, height) if bottom else 0)
    if keep_left < keep_right and keep_top < keep_bottom:
        mask[keep_top:keep_bottom, keep_left:keep_right] = 0
    return mask
