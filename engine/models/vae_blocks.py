"""The VAE's building blocks, named as in ``first_stage_model.*`` of the CompVis checkpoints."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.attention import multihead_attention


def vae_norm(channels: int) -> nn.GroupNorm:
    # The VAE normalises with eps 1e-6 everywhere (the UNet uses 1e-5).
    return nn.GroupNorm(32, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """Two GroupNorm-SiLU-conv steps and a residual; a 1x1 ``nin_shortcut`` when widths differ."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = vae_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = vae_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut: nn.Module = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, Cout, H, W)
        h = self.conv2(F.silu(self.norm2(h)))  # (B, Cout, H, W)
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over pixels, with q/k/v/proj_out as 1x1 convolutions.

    Some converted files store those four weights as 2-D linear matrices ([C, C] instead of
    [C, C, 1, 1]); a load hook reshapes them so both forms load with ``strict=True``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = vae_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)
        self.register_load_state_dict_pre_hook(_linear_to_conv_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        hn = self.norm(x)  # (B, C, H, W)
        # Contiguous (B, H*W, C): with strided inputs torch's attention falls back to a path
        # that holds all (H*W)^2 scores, 16 GiB for a 2048-pixel decode (H*W = 65,536).
        q, k, v = (
            conv(hn).flatten(2).transpose(1, 2).contiguous() for conv in (self.q, self.k, self.v)
        )
        out = multihead_attention(q, k, v, heads=1)  # (B, H*W, C)
        out = out.transpose(1, 2).reshape(b, c, h, w)  # (B, C, H, W)
        return x + self.proj_out(out)


def _linear_to_conv_weights(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    for name in ("q", "k", "v", "proj_out"):
        key = f"{prefix}{name}.weight"
        weight = state_dict.get(key)
        if weight is not None and weight.dim() == 2:
            state_dict[key] = weight[:, :, None, None]  # (C, C) -> (C, C, 1, 1)


class Downsample(nn.Module):
    """Stride-2 3x3 conv after padding only right and bottom, as the original VAE does."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 1, 0, 1))  # (B, C, H+1, W+1)
        return self.conv(x)  # (B, C, H/2, W/2)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, then a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, C, 2H, 2W)
        return self.conv(x)
