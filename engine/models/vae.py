"""The SD VAE (AutoencoderKL): images in [-1, 1] to 4-channel latents at 1/8 size, and back.

Keys mirror ``first_stage_model.*``: ``encoder.*``, ``decoder.*``, ``quant_conv``,
``post_quant_conv``. The 0.18215 latent scale is the caller's business, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.vae_blocks import AttnBlock, Downsample, ResnetBlock, Upsample, vae_norm


@dataclass(frozen=True)
class VAEConfig:
    """Defaults are the SD 1.x/2.x VAE."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 4
    embed_dim: int = 4
    in_channels: int = 3
    out_channels: int = 3


class MidBlock(nn.Module):
    """ResnetBlock, self-attention, ResnetBlock at the lowest resolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    """One resolution of the encoder (``down.i``) or decoder (``up.i``).

    ``resample`` is "downsample", "upsample" or None: the attribute name in the checkpoint.
    """

    def __init__(self, widths: list[tuple[int, int]], resample: str | None = None) -> None:
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(cin, cout) for cin, cout in widths)
        self.resample = resample
        if resample == "downsample":
            self.downsample = Downsample(widths[-1][1])
        elif resample == "upsample":
            self.upsample = Upsample(widths[-1][1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        return x if self.resample is None else getattr(self, self.resample)(x)


class Encoder(nn.Module):
    """Image (B, 3, H, W) -> Gaussian moments (B, 2*z, H/f, W/f)."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        widths = [cfg.ch * m for m in cfg.ch_mult]
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin = cfg.ch
        for i, cout in enumerate(widths):
            pairs = [(cin if j == 0 else cout, cout) for j in range(cfg.num_res_blocks)]
            last = i == len(widths) - 1
            self.down.append(Level(pairs, None if last else "downsample"))
            cin = cout
        self.mid = MidBlock(widths[-1])
        self.norm_out = vae_norm(widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], 2 * cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)  # (B, ch, H, W)
        for level in self.down:
            h = level(h)  # (B, C_i, H_i, W_i)
        h = self.mid(h)  # (B, C_last, H/f, W/f)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, 2*z, H/f, W/f)


class Decoder(nn.Module):
    """Latent (B, z, h, w) -> image (B, 3, h*f, w*f). ``up.i`` is built and run in reverse."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        widths = [cfg.ch * m for m in cfg.ch_mult]
        self.conv_in = nn.Conv2d(cfg.z_channels, widths[-1], 3, padding=1)
        self.mid = MidBlock(widths[-1])
        levels: list[Level] = []
        cin = widths[-1]
        for i in reversed(range(len(widths))):
            cout = widths[i]
            pairs = [(cin if j == 0 else cout, cout) for j in range(cfg.num_res_blocks + 1)]
            levels.insert(0, Level(pairs, "upsample" if i > 0 else None))
            cin = cout
        self.up = nn.ModuleList(levels)
        self.norm_out = vae_norm(widths[0])
        self.conv_out = nn.Conv2d(widths[0], cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))  # (B, C_last, h, w)
        for level in reversed(self.up):
            h = level(h)  # (B, C_i, H_i, W_i)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, 3, H, W)


class AutoencoderKL(nn.Module):
    """The KL-regularised autoencoder of latent diffusion."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(2 * config.z_channels, 2 * config.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)

    def encode_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the latent Gaussian for images x (B, 3, H, W) in [-1, 1]."""
        moments = self.quant_conv(self.encoder(x))  # (B, 2*embed, H/f, W/f)
        mean, logvar = moments.chunk(2, dim=1)  # 2 x (B, embed, H/f, W/f)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The mean latent (B, embed, H/f, W/f), before the 0.18215 scale factor."""
        return self.encode_moments(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latents (B, embed, h, w) -> images (B, 3, h*f, w*f), nominally in [-1, 1]."""
        return self.decoder(self.post_quant_conv(z))
