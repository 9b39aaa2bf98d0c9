"""The SD 1.x denoising UNet, laid out exactly as the CompVis checkpoints name it.

A state dict from ``model.diffusion_model.*`` (prefix stripped) loads with ``strict=True`` and no
rename table: ``input_blocks.N.M``, ``middle_block.0/1/2``, ``output_blocks.N.M``, ``out.0/2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.models.conv import Conv2d
from engine.models.transformer import SpatialTransformer
from engine.models.unet_blocks import Downsample, ResBlock, Upsample, timestep_embedding


@dataclass(frozen=True)
class UNetConfig:
    """Defaults are SD 1.5; ``in_channels=9`` is the inpainting model."""

    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (0, 1, 2)  # levels whose blocks carry a transformer
    num_heads: int = 8
    context_dim: int = 768
    transformer_depth: int = 1

    @property
    def time_embed_dim(self) -> int:
        return self.model_channels * 4


class UNetBlock(nn.Sequential):
    """One numbered entry of input_blocks/output_blocks: routes each layer the inputs it needs."""

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        emb: torch.Tensor,
        context: torch.Tensor,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            elif isinstance(layer, Upsample):
                x = layer(x, size)
            else:
                x = layer(x)
        return x


class UNetModel(nn.Module):
    """eps = unet(x, timesteps, context): predicts the noise in latents ``x`` at ``timesteps``."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        mc, ted = config.model_channels, config.time_embed_dim
        self.time_embed = nn.Sequential(nn.Linear(mc, ted), nn.SiLU(), nn.Linear(ted, ted))
        self.input_blocks, skips = self._build_input_blocks()
        ch = skips[-1]
        self.middle_block = UNetBlock(
            ResBlock(ch, ted, ch), self._transformer(ch), ResBlock(ch, ted, ch)
        )
        self.output_blocks = self._build_output_blocks(skips)
        self.out = nn.Sequential(
            nn.GroupNorm(32, mc), nn.SiLU(), Conv2d(mc, config.out_channels, 3, padding=1)
        )

    def _transformer(self, channels: int) -> SpatialTransformer:
        cfg = self.config
        return SpatialTransformer(channels, cfg.num_heads, cfg.context_dim, cfg.transformer_depth)

    def _build_input_blocks(self) -> tuple[nn.ModuleList, list[int]]:
        """The encoder half; also returns the channel count of every skip connection it emits."""
        cfg = self.config
        mc = cfg.model_channels
        blocks = nn.ModuleList([UNetBlock(Conv2d(cfg.in_channels, mc, 3, padding=1))])
        skips, ch = [mc], mc
        last = len(cfg.channel_mult) - 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, cfg.time_embed_dim, mult * mc)]
                ch = mult * mc
                if level in cfg.attention_levels:
                    layers.append(self._transformer(ch))
                blocks.append(UNetBlock(*layers))
                skips.append(ch)
            if level != last:
                blocks.append(UNetBlock(Downsample(ch)))
                skips.append(ch)
        return blocks, skips

    def _build_output_blocks(self, skips: list[int]) -> nn.ModuleList:
        """The decoder half: each block eats one skip connection, in reverse order."""
        cfg = self.config
        skips = list(skips)
        ch = skips[-1]
        blocks = nn.ModuleList()
        for level in reversed(range(len(cfg.channel_mult))):
            width = cfg.channel_mult[level] * cfg.model_channels
            for i in range(cfg.num_res_blocks + 1):
                layers: list[nn.Module] = [ResBlock(ch + skips.pop(), cfg.time_embed_dim, width)]
                ch = width
                if level in cfg.attention_levels:
                    layers.append(self._transformer(ch))
                if level > 0 and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch))
                blocks.append(UNetBlock(*layers))
        return blocks

    def forward(
        self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """x (B, in_channels, h, w), timesteps (B,) float, context (B, T, context_dim)."""
        timesteps = timesteps.reshape(-1).expand(x.shape[0])  # (B,): a scalar is broadcast
        t_emb = timestep_embedding(timesteps, self.config.model_channels).to(x.dtype)  # (B, mc)
        emb = self.time_embed(t_emb)  # (B, 4*mc)
        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb, context)  # (B, C_i, h_i, w_i)
            skips.append(h)
        h = self.middle_block(h, emb, context)  # (B, C_mid, h_min, w_min)
        for block in self.output_blocks:
            skip = skips.pop()
            h = torch.cat([h, skip], dim=1)  # (B, C + C_skip, h_i, w_i)
            # An Upsample must land on the size of the skip connection that comes next.
            size = tuple(skips[-1].shape[-2:]) if skips else None
            h = block(h, emb, context, size)
        return self.out(h)  # (B, out_channels, h, w)
