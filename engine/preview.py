"""Cheap previews of the x0 estimate: a fixed latent-to-RGB matrix instead of a VAE decode."""

from __future__ import annotations

import math

import numpy as np
import torch

# SD1.x: rows are the 4 latent channels, columns R, G, B; output in [-1, 1].
SD1_LATENT_RGB = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)


def latents_to_rgb(latents: torch.Tensor) -> np.ndarray:
    """(B, 4, h, w) x0 estimate (unscaled, as the sampler sees it) -> (rows*h, cols*w, 3) uint8.

    A batch is tiled into a near-square grid so the preview shows every image forming.
    """
    matrix = torch.tensor(SD1_LATENT_RGB, dtype=torch.float32, device=latents.device)
    rgb = torch.einsum("bchw,cr->brhw", latents.float(), matrix)  # (B, 3, h, w) in ~[-1, 1]
    return to_uint8_grid(rgb)


def to_uint8_grid(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> one (rows*H, cols*W, 3) uint8 array, rounded as diffusers."""
    b, _, h, w = images.shape
    cols = math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    pixels = ((images / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    grid = torch.zeros((rows * h, cols * w, 3), dtype=torch.uint8)
    for i in range(b):
        r, c = divmod(i, cols)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = pixels[i].permute(1, 2, 0)
    return grid.numpy()


def to_uint8_images(images: torch.Tensor) -> list[np.ndarray]:
    """(B, 3, H, W) in [-1, 1] -> B arrays (H, W, 3) uint8, rounded as diffusers' pipelines do."""
    pixels = (images.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    return [(p * 255).round().astype(np.uint8) for p in pixels]
