"""Inpainting in latent space: masks at latent size, starting latents, the masked blend."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, sigma) -> denoised x0


def soft_latent_mask(mask: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(1, 1, h, w) float32 in [0, 1]: the share of each latent cell's pixels to repaint (area
    average), so a feathered mask gives a graded blend rather than a seam."""
    pixels = torch.from_numpy(mask.astype(np.float32) / 255.0)[None, None]  # (1, 1, H, W)
    return F.interpolate(pixels, size=(height, width), mode="area")  # (1, 1, h, w)


def conditioning_mask(mask: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(1, 1, h, w) of 0/1: the inpainting UNet's mask channel, as diffusers'
    StableDiffusionInpaintPipeline: binarised at 0.5 in pixels, then nearest-sampled to the
    latent size (torch's default ``interpolate``)."""
    binary = torch.from_numpy((mask >= 128).astype(np.float32))[None, None]  # (1, 1, H, W)
    return F.interpolate(binary, size=(height, width))  # (1, 1, h, w)


def masked_picture(picture: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The inpainting UNet's masked image: the picture where the mask is below 0.5, mid grey
    (0 in [-1, 1]) where it is to be repainted. (3, H, W) float32 in [-1, 1]."""
    values = picture.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0  # (3, H, W)
    return values * (mask < 128)[None].astype(np.float32)


def start_latents(
    content: str,
    init_latent: torch.Tensor,
    mask: torch.Tensor,
    noise: torch.Tensor,
    sigma: float,
    fill_noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Where sampling starts, by A1111's "masked content" (below strength 1):

    "original" and "fill": the init latent (for "fill", of the pre-filled picture) noised to
    ``sigma``; "latent noise": under the mask, ``fill_noise`` (unit Gaussian) instead of the
    init latent, then noised; "latent nothing": zeros under the mask, then noised. The mask
    (B or 1, 1, h, w) may be soft: the contents are mixed in proportion.
    """
    base = init_latent.expand_as(noise)  # (B, C, h, w)
    if content == "latent_noise":
        assert fill_noise is not None
        base = base * (1 - mask) + fill_noise * mask
    elif content == "latent_nothing":
        base = base * (1 - mask)
    return base + noise * sigma


def blend_outside_mask(model: Model, init_latent: torch.Tensor, mask: torch.Tensor, noise) -> Model:
    """``model`` with the known latents kept outside the mask at every call (normal checkpoints).

    Before the call, x outside the mask is replaced by the init latent noised to the call's
    sigma with the job's own starting noise (as diffusers re-noises its known latents); after
    it, the x0 estimate outside the mask is replaced by the clean init latent (A1111's
    ``CFGDenoiser`` blend of ``denoised``). So every sampler, unchanged, sees the picture's
    known part and steps it towards the init latent; a soft mask mixes in proportion.
    """
    keep = 1 - mask  # (1, 1, h, w)

    def blended(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        known = init_latent + noise * sigma.reshape(-1, 1, 1, 1)  # (B, C, h, w)
        denoised = model(x * mask + known * keep, sigma)
        return denoised * mask + init_latent * keep

    return blended
