"""Masked content "fill": the area to repaint pre-painted with the colours around it.

A1111 fills by compositing ever finer Gaussian blurs of the kept pixels; we do the same idea as
normalised convolution: at each radius, blur(picture * kept) / blur(kept) is the average colour
of the kept pixels nearby, and finer radii overwrite coarser ones where they have enough kept
pixels to average. Torch-free.
"""

from __future__ import annotations

import numpy as np

# Coarse to fine, in pixels: the coarsest reaches across any hole a picture can have.
_RADII = (256, 64, 16, 4, 2)
_EPS = 1e-6


def fill_masked(picture: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``picture`` (H, W, 3) uint8 with the area where ``mask`` (H, W) >= 128 replaced by a
    smooth estimate from the kept pixels; kept pixels are unchanged. An all-masked picture
    becomes mid grey (nothing to take colours from)."""
    kept = (mask < 128).astype(np.float32)  # (H, W) 1 = known colour
    if not kept.any():
        return np.full_like(picture, 128)
    values = picture.astype(np.float32)  # (H, W, 3)
    mean = (values * kept[:, :, None]).sum(axis=(0, 1)) / kept.sum()
    estimate = np.broadcast_to(mean, values.shape).copy()  # (H, W, 3)
    for radius in _RADII:
        weight = _blur(kept, radius)  # (H, W) share of known pixels nearby
        colour = _blur(values * kept[:, :, None], radius) / np.maximum(weight, _EPS)[:, :, None]
        # Trust the finer estimate in proportion to how much known colour it averaged.
        trust = np.clip(weight * 4.0, 0.0, 1.0)[:, :, None]
        estimate = colour * trust + estimate * (1.0 - trust)
    filled = np.where(kept[:, :, None] > 0, values, estimate)
    return np.clip(np.rint(filled), 0, 255).astype(np.uint8)


def _blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Three box blurs of half-width ``radius // 2`` along each axis (close to a Gaussian),
    by running sums, so the cost does not grow with the radius. Works on (H, W) or (H, W, C).
    Pixels beyond the border count as absent (zero): the ratio in ``fill_masked`` cancels that."""
    half = max(radius // 2, 1)
    for axis in (0, 1):
        for _ in range(3):
            values = _box(values, half, axis)
    return values


def _box(values: np.ndarray, half: int, axis: int) -> np.ndarray:
    n = values.shape[axis]
    sums = np.cumsum(values, axis=axis, dtype=np.float32)
    pad_shape = list(values.shape)
    pad_shape[axis] = 1
    # sums[i] = the sum of values [0, i)
    sums = np.concatenate([np.zeros(pad_shape, np.float32), sums], axis=axis)
    hi = np.minimum(np.arange(n) + half + 1, n)
    lo = np.maximum(np.arange(n) - half, 0)
    window = np.take(sums, hi, axis=axis) - np.take(sums, lo, axis=axis)
    return (window / (2 * half + 1)).astype(np.float32)
