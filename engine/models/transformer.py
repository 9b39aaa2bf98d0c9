"""The UNet's SpatialTransformer: self-attention, cross-attention to the prompt, GEGLU MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.attention import CrossAttention
from engine.models.conv import Conv2d


class GEGLU(nn.Module):
    """Linear to twice the width, then value * gelu(gate) (Shazeer 2020)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)  # 2 x (B, T, dim_out)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU MLP with a 4x hidden width; ``net.0.proj`` and ``net.2`` as in the checkpoints."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """Pre-norm residual block: self-attention, cross-attention, feed-forward."""

    def __init__(self, dim: int, heads: int, context_dim: int) -> None:
        super().__init__()
        self.attn1 = CrossAttention(dim, None, heads)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))  # (B, T, C)
        x = x + self.attn2(self.norm2(x), context)  # (B, T, C)
        return x + self.ff(self.norm3(x))  # (B, T, C)


class SpatialTransformer(nn.Module):
    """Transformer over the pixels of a feature map, with SD1's 1x1-conv in/out projections."""

    def __init__(self, channels: int, heads: int, context_dim: int, depth: int = 1) -> None:
        super().__init__()
        # CompVis builds this norm with eps 1e-6, unlike the ResBlocks' 1e-5.
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = Conv2d(channels, channels, kernel_size=1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(channels, heads, context_dim) for _ in range(depth)
        )
        self.proj_out = Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.proj_in(self.norm(x))  # (B, C, H, W)
        tokens = tokens.flatten(2).transpose(1, 2)  # (B, H*W, C)
        for block in self.transformer_blocks:
            tokens = block(tokens, context)  # (B, H*W, C)
        tokens = tokens.transpose(1, 2).reshape(b, c, h, w)  # (B, C, H, W)
        return x + self.proj_out(tokens)
