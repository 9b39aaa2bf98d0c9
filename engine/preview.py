"""Cheap previews of the x0 estimate: a fixed latent-to-RGB matrix instead of a VAE decode."""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.family import RGB, LatentRGB


def latents_to_rgb(
    latents: torch.Tensor, factors: LatentRGB, bias: RGB = (0.0, 0.0, 0.0)
) -> np.ndarray:
    """(B, C, h, w) x0 estimate (as the sampler sees it) -> (rows*h, cols*w, 3) uint8.

    ``factors`` and ``bias`` are the model family's ``latent_rgb`` and ``latent_rgb_bias``:
    rows are the C latent channels, columns R, G, B, output in [-1, 1]. A batch is tiled into a
    near-square grid so the preview shows every image forming.
    """
    matrix = torch.tensor(factors, dtype=torch.float32, device=latents.device)  # (C, 3)
    offset = torch.tensor(bias, dtype=torch.float32, device=latents.device)  # (3,)
    rgb = torch.einsum("bchw,cr->brhw", latents.float(), matrix)  # (B, 3, h, w) in ~[-1, 1]
    return to_uint8_grid(rgb + offset[:, None, None])


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
