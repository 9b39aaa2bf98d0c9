"""Tiled VAE encode and decode: the untiled result (to float rounding) in a fraction of the memory.

How others do it, and why this module does something else:

- diffusers (``AutoencoderKL.tiled_decode``) and ComfyUI (``decode_tiled_``, ``tiled_scale``) run
  the whole network on overlapping tiles and blend the overlaps (ComfyUI also averages three
  tile layouts). Each tile normalises with its own GroupNorm statistics and attends only to
  itself in the mid-block, so tiles disagree and the blend hides the seam instead of removing it.
- The multidiffusion-upscaler's Tiled VAE pads tiles by 32 latent pixels and pauses all tiles at
  every GroupNorm to pool their statistics: exact convolutions and norms, but every tile's
  activations are held at once, so RAM grows with the picture.

Here the network runs layer by layer over *lazy activations* (``Lazy``): a window of any layer
is computed on demand from the last activation held in memory, with just the halo its
convolutions need (1 pixel per 3x3 conv). Every GroupNorm takes its statistics over the whole
picture, gathered tile by tile, so the norm is exactly the untiled one. A ResnetBlock holds its
first convolution's output and its own output (written over its input when the widths match);
the 2x upsample in front of a level, the largest activation (256 channels at full size in SD),
is never held but computed twice, tile by tile. The mid-block (self-attention over the whole
latent) runs untiled at the lowest resolution, where it is small, with queries in chunks. Tiles
agree exactly, so the overlaps (halos) are cropped, not blended.

Cost: the upsample convolutions run twice and every tile recomputes a thin halo: about 1.3x the
untiled arithmetic. Memory: about three full-size 128-channel activations instead of the
untiled pass's several 256-channel ones (figures: README, ``tests/benchmarks/vae_tiling.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.vae import AutoencoderKL, Level, MidBlock
from engine.models.vae_blocks import AttnBlock, Downsample, ResnetBlock, Upsample

DEFAULT_TILE = 256  # tile side, in pixels of the layer being computed
ATTENTION_CHUNK_SCORES = 1 << 24  # query chunk x keys: 64 MB of float32 scores at most

Window = tuple[int, int, int, int]  # y0, y1, x0, x1: rows [y0, y1), columns [x0, x1)


@dataclass(frozen=True)
class Lazy:
    """An activation (B, C, height, width): ``fetch(window)`` computes (or slices) a window.
    ``tensor``: the whole activation when it is held in memory, else None."""

    height: int
    width: int
    fetch: Callable[[Window], torch.Tensor]
    tensor: torch.Tensor | None = None


def held(x: torch.Tensor) -> Lazy:
    """An activation in memory, seen as a lazy one."""
    return Lazy(x.shape[-2], x.shape[-1], lambda w: x[:, :, w[0] : w[1], w[2] : w[3]], x)


def windows(height: int, width: int, tile: int) -> Iterator[Window]:
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            yield y0, min(y0 + tile, height), x0, min(x0 + tile, width)


def materialize(src: Lazy, tile: int) -> torch.Tensor:
    """Compute every tile of ``src`` into one tensor."""
    out: torch.Tensor | None = None
    for w in windows(src.height, src.width, tile):
        part = src.fetch(w)  # (B, C, y1-y0, x1-x0)
        if out is None:
            b, c = part.shape[:2]
            out = part.new_empty(b, c, src.height, src.width)
        out[:, :, w[0] : w[1], w[2] : w[3]] = part
    assert out is not None
    return out


# -- layers over lazy activations --------------------------------------------------------------


def conv(src: Lazy, layer: nn.Conv2d, pad: tuple[int, int] | None = None) -> Lazy:
    """``layer`` (stride 1 or 2, no padding of its own when ``pad`` is given) over ``src``.

    ``pad``: zero rows/columns added (before, after) each side; default the layer's padding.
    A window of the output reads the input window its kernel covers, zero-filled outside the
    picture exactly where the untiled convolution pads.
    """
    k, s = layer.kernel_size[0], layer.stride[0]
    padding = layer.padding
    assert isinstance(padding, tuple)  # not "same"/"valid": the VAE gives numbers
    before, after = pad if pad is not None else (int(padding[0]), int(padding[0]))
    height = (src.height + before + after - k) // s + 1
    width = (src.width + before + after - k) // s + 1

    def fetch(w: Window) -> torch.Tensor:
        y0, y1, x0, x1 = w
        iy0, iy1 = s * y0 - before, s * (y1 - 1) - before + k  # input rows the kernel reads
        ix0, ix1 = s * x0 - before, s * (x1 - 1) - before + k
        part = src.fetch((max(iy0, 0), min(iy1, src.height), max(ix0, 0), min(ix1, src.width)))
        zeros = (  # F.pad order: left, right, top, bottom
            max(-ix0, 0),
            max(ix1 - src.width, 0),
            max(-iy0, 0),
            max(iy1 - src.height, 0),
        )
        part = F.pad(part, zeros)  # (B, Cin, iy1-iy0, ix1-ix0)
        return F.conv2d(part, layer.weight, layer.bias, stride=s)  # (B, Cout, y1-y0, x1-x0)

    return Lazy(height, width, fetch)


def upsample2x(src: Lazy) -> Lazy:
    """Nearest-neighbour 2x, as ``Upsample`` before its convolution."""

    def fetch(w: Window) -> torch.Tensor:
        y0, y1, x0, x1 = w
        part = src.fetch((y0 // 2, (y1 + 1) // 2, x0 // 2, (x1 + 1) // 2))
        big = F.interpolate(part, scale_factor=2.0, mode="nearest")
        return big[:, :, y0 % 2 : y0 % 2 + y1 - y0, x0 % 2 : x0 % 2 + x1 - x0]

    return Lazy(2 * src.height, 2 * src.width, fetch)


def add(a: Lazy, b: Lazy) -> Lazy:
    return Lazy(a.height, a.width, lambda w: a.fetch(w) + b.fetch(w))


def pointwise(src: Lazy, layer: nn.Module) -> Lazy:
    """A per-pixel layer (the 1x1 ``nin_shortcut`` or Identity): no halo needed."""
    return Lazy(src.height, src.width, lambda w: layer(src.fetch(w)))


@dataclass(frozen=True)
class NormStats:
    mean: torch.Tensor  # (B, G), float64
    rstd: torch.Tensor  # (B, G), float64: 1 / sqrt(var + eps)


class StatsSum:
    """GroupNorm statistics per (sample, group) gathered tile by tile: each tile's mean and
    variance in float32, merged in float64 with Chan et al.'s parallel update (exact, and no
    float64 copy of a tile)."""

    def __init__(self, norm: nn.GroupNorm) -> None:
        self.norm = norm
        self.count = 0
        self.mean = self.m2 = torch.zeros(())

    def add(self, part: torch.Tensor) -> None:
        b, g = part.shape[0], self.norm.num_groups
        var, mean = torch.var_mean(part.reshape(b, g, -1).float(), dim=-1, correction=0)
        n = part[0].numel() // g
        total = self.count + n
        delta = mean.double() - self.mean  # (B, G)
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + var.double() * n + delta.square() * (self.count * n / total)
        self.count = total

    def result(self) -> NormStats:
        var = self.m2 / self.count
        return NormStats(self.mean, (var + self.norm.eps).rsqrt())


def group_norm_stats(src: Lazy, norm: nn.GroupNorm, tile: int) -> NormStats:
    """Statistics over the whole picture, computing (and dropping) one tile at a time."""
    stats = StatsSum(norm)
    for w in windows(src.height, src.width, tile):
        stats.add(src.fetch(w))
    return stats.result()


def norm_silu(src: Lazy, norm: nn.GroupNorm, stats: NormStats) -> Lazy:
    """SiLU(GroupNorm(x)) with the whole picture's statistics (every VAE norm is followed by
    SiLU). Computed in float32 and returned in the input's dtype, as torch's half GroupNorm."""
    g = norm.num_groups
    mean = stats.mean.float()[:, :, None, None]  # (B, G, 1, 1)
    rstd = stats.rstd.float()[:, :, None, None]
    weight, bias = norm.weight.float()[:, None, None], norm.bias.float()[:, None, None]

    def fetch(w: Window) -> torch.Tensor:
        x = src.fetch(w)  # (B, C, h, w)
        b, c, h, wd = x.shape
        y = (x.float().reshape(b, g, c // g, h * wd) - mean) * rstd
        y = y.reshape(b, c, h, wd) * weight + bias  # (B, C, h, w)
        return F.silu(y).to(x.dtype)

    return Lazy(src.height, src.width, fetch)


def _put(out: torch.Tensor | None, part: torch.Tensor, w: Window, src: Lazy) -> torch.Tensor:
    """Write one tile into ``out``, made at the first tile (its channels are known then)."""
    if out is None:
        out = part.new_empty(*part.shape[:2], src.height, src.width)
    out[:, :, w[0] : w[1], w[2] : w[3]] = part
    return out


def resnet_block(src: Lazy, block: ResnetBlock, tile: int) -> torch.Tensor:
    """The block over the whole picture in three passes over the tiles: the first norm's
    statistics; the first convolution (held) with the second norm's statistics and the
    shortcut (held); the second convolution added into the shortcut. A held input of the
    same width is the shortcut itself and is overwritten: the input is consumed."""
    stats1 = group_norm_stats(src, block.norm1, tile)
    conv1 = conv(norm_silu(src, block.norm1, stats1), block.conv1)
    identity = isinstance(block.nin_shortcut, nn.Identity)
    stats2 = StatsSum(block.norm2)
    base = src.tensor if identity else None
    h = None
    for w in windows(src.height, src.width, tile):
        part = conv1.fetch(w)  # (B, Cout, th, tw)
        stats2.add(part)
        h = _put(h, part, w, src)
        if not (identity and src.tensor is not None):  # else ``base`` is the input itself
            base = _put(base, block.nin_shortcut(src.fetch(w)), w, src)
    assert h is not None and base is not None
    conv2 = conv(norm_silu(held(h), block.norm2, stats2.result()), block.conv2)
    for w in windows(src.height, src.width, tile):
        base[:, :, w[0] : w[1], w[2] : w[3]] += conv2.fetch(w)
    return base


# -- the mid-block, untiled but with bounded attention memory ----------------------------------


def chunked_attention(block: AttnBlock, x: torch.Tensor) -> torch.Tensor:
    """``AttnBlock`` with queries in chunks: exact (softmax runs over all keys for each query),
    and the score matrix stays small even where SDPA would fall back to its plain kernel."""
    b, c, h, w = x.shape
    hn = block.norm(x)  # (B, C, H, W)
    q, k, v = (conv1(hn).flatten(2).transpose(1, 2) for conv1 in (block.q, block.k, block.v))
    chunk = max(1, ATTENTION_CHUNK_SCORES // (h * w))
    parts = [
        F.scaled_dot_product_attention(q[:, i : i + chunk], k, v) for i in range(0, h * w, chunk)
    ]  # each (B, chunk, C): one head over all channels, as AttnBlock
    out = torch.cat(parts, dim=1).transpose(1, 2).reshape(b, c, h, w)  # (B, C, H, W)
    return x + block.proj_out(out)


def mid_block(mid: MidBlock, x: torch.Tensor) -> torch.Tensor:
    return mid.block_2(chunked_attention(mid.attn_1, mid.block_1(x)))


# -- whole networks ----------------------------------------------------------------------------


def _levels(modules: nn.ModuleList) -> list[Level]:
    return [cast(Level, m) for m in modules]


def _resample_conv(level: Level) -> nn.Conv2d:
    resample = getattr(level, str(level.resample))
    assert isinstance(resample, Upsample | Downsample)
    return resample.conv


def tiled_decode(vae: AutoencoderKL, z: torch.Tensor, tile: int = DEFAULT_TILE) -> torch.Tensor:
    """``vae.decode(z)``, tile by tile: unscaled latents (B, z, h, w) -> images (B, 3, H, W)."""
    dec = vae.decoder
    h = mid_block(dec.mid, dec.conv_in(vae.post_quant_conv(z)))  # (B, C_last, h, w): small
    src = held(h)
    for level in reversed(_levels(dec.up)):
        for block in level.block:
            src = held(resnet_block(src, cast(ResnetBlock, block), tile))  # (B, C_i, H_i, W_i)
        if level.resample == "upsample":
            src = conv(upsample2x(src), _resample_conv(level))  # recomputed, never held
    out = norm_silu(src, dec.norm_out, group_norm_stats(src, dec.norm_out, tile))
    return materialize(conv(out, dec.conv_out), tile)  # (B, 3, H, W)


def tiled_encode_moments(
    vae: AutoencoderKL, x: torch.Tensor, tile: int = DEFAULT_TILE
) -> tuple[torch.Tensor, torch.Tensor]:
    """``vae.encode_moments(x)``, tile by tile: images (B, 3, H, W) -> mean and log-variance."""
    enc = vae.encoder
    src = conv(held(x), enc.conv_in)  # (B, ch, H, W), recomputed, never held
    for level in _levels(enc.down):
        for block in level.block:
            src = held(resnet_block(src, cast(ResnetBlock, block), tile))
        if level.resample == "downsample":
            # Downsample pads only right and bottom, then a stride-2 3x3 convolution.
            src = conv(src, _resample_conv(level), pad=(0, 1))
    h = mid_block(enc.mid, materialize(src, tile))  # (B, C_last, H/f, W/f): small
    moments = vae.quant_conv(enc.conv_out(F.silu(enc.norm_out(h))))  # (B, 2*embed, H/f, W/f)
    mean, logvar = moments.chunk(2, dim=1)
    return mean, logvar.clamp(-30.0, 20.0)


def tiled_encode(vae: AutoencoderKL, x: torch.Tensor, tile: int = DEFAULT_TILE) -> torch.Tensor:
    """``vae.encode(x)``, tile by tile: the mean latent."""
    return tiled_encode_moments(vae, x, tile)[0]
