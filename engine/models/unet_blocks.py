"""The UNet's convolutional parts: timestep embedding, ResBlock, Downsample, Upsample."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.conv import Conv2d


def timestep_embedding(
    timesteps: torch.Tensor, dim: int, max_period: float = 10000.0
) -> torch.Tensor:
    """Sinusoidal embedding of (fractional) timesteps, cosines first, as in CompVis SD.

    Frequencies are computed here rather than stored in a buffer, so the module has no state
    that a checkpoint lacks and can be built on the meta device.
    """
    half = dim // 2
    steps = torch.arange(half, dtype=torch.float32, device=timesteps.device)  # (half,)
    # Same operation order as the reference: at t ~ 1000, float32 rounding shows otherwise.
    freqs = torch.exp(-math.log(max_period) * steps / half)  # (half,)
    args = timesteps.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, 2*half)
    if dim % 2:
        emb = F.pad(emb, (0, 1))  # (B, dim)
    return emb


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time embedding added in between."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(
            nn.GroupNorm(32, channels), nn.SiLU(), Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            nn.GroupNorm(32, out_channels),
            nn.SiLU(),
            nn.Dropout(0.0),
            Conv2d(out_channels, out_channels, 3, padding=1),
        )
        # Identity has no weights, which matches the files: the key exists only for a 1x1 conv.
        self.skip_connection: nn.Module = (
            nn.Identity() if channels == out_channels else Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)  # (B, Cout, H, W)
        h = h + self.emb_layers(emb)[:, :, None, None]  # (B, Cout, H, W)
        h = self.out_layers(h)  # (B, Cout, H, W)
        return self.skip_connection(x) + h


class Downsample(nn.Module):
    """Strided 3x3 convolution halving the resolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)  # (B, C, ceil(H/2), ceil(W/2))


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, then a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        # ``size`` lets odd-sized latents meet their skip connection again after downsampling.
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, C, 2H, 2W)
        else:
            x = F.interpolate(x, size=size, mode="nearest")  # (B, C, *size)
        return self.conv(x)
