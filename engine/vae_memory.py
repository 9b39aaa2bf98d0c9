"""Running the VAE on pictures of any size: tiled or not (``GenerationRequest.vae_tiling``), and
what it costs in memory.

The "auto" rule: tile when the untiled pass's estimated peak exceeds half of the memory at hand
(CPU: ``MemAvailable`` of /proc/meminfo, else free pages from ``os.sysconf``; CUDA:
``torch.cuda.mem_get_info``'s free bytes plus what torch's cache holds unused). Half, because
the estimate is an estimate and memory also goes to the rest of the process and to other
programs; tiling gives the same picture (``engine.models.vae_tiling``), so erring towards it costs
only time. When the memory at hand is unknown (MPS, an exotic OS), tile above 4 GB. And when an
untiled "auto" pass runs out of memory all the same, it is run again in tiles.

The estimates, measured on the full-size random SD1 VAE (ch 128) on the CPU in bfloat16 with
``tests/benchmarks/vae_tiling.py`` (peak RSS growth during one decode):

- untiled: the convolutions hold several full-size activations of 128-256 channels at once (512²:
  0.65 GB, about 9 bytes per pixel per unit of ``VAEConfig.ch`` per byte of element size; 2048²:
  8.62 GB). The mid-block's attention over all latent pixels adds nothing on the CPU, where
  torch's fused attention streams its scores (since ``AttnBlock`` hands it contiguous q/k/v;
  before, 2048² asked for one 16 GiB block of float32 scores). On other devices (CUDA with the
  VAE's one 512-wide head, MPS) it may still hold all tokens² scores, so they are counted there;
- tiled: about three full-size 128-channel activations (2048²: 3.07 GB, 2.9 bytes per pixel
  per unit of ch per byte), the attention in chunks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.models.vae import AutoencoderKL, VAEConfig
from engine.models.vae_tiling import DEFAULT_TILE, tiled_decode, tiled_encode

# Peak bytes per output pixel, per channel of VAEConfig.ch, per byte of element size.
UNTILED_FACTOR = 9.0
TILED_FACTOR = 3.0
ATTENTION_SCORE_BYTES = 4  # per (query, key) pair of the untiled mid-block: float32 scores
UNKNOWN_MEMORY_LIMIT = 4 << 30  # tile above this untiled estimate when memory is not known
AUTO_SHARE = 0.5  # "auto" tiles when the untiled estimate exceeds this share of what is free

# How allocators word it: CUDA/MPS "out of memory"; torch's CPU allocator "can't allocate
# memory" (Linux, macOS) or "not enough memory" (Windows), as a plain RuntimeError.
_OOM_WORDS = ("out of memory", "can't allocate memory", "not enough memory")


def is_out_of_memory(e: BaseException) -> bool:
    if isinstance(e, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and any(words in text for words in _OOM_WORDS)


def vae_peak_bytes(
    config: VAEConfig,
    batch: int,
    height: int,
    width: int,
    dtype: torch.dtype,
    tiled: bool,
    scores_held: bool = True,
) -> int:
    """Estimated peak memory of one VAE pass over (batch, height, width) pixels.
    ``scores_held``: whether the untiled attention may hold all its scores at once (not on the
    CPU: ``scores_held_on``)."""
    element = torch.empty((), dtype=dtype).element_size()
    if tiled:
        return int(TILED_FACTOR * config.ch * element * batch * height * width)
    activations = UNTILED_FACTOR * config.ch * element * batch * height * width
    if not scores_held:
        return int(activations)
    tokens = (height * width) // (2 ** (len(config.ch_mult) - 1)) ** 2  # latent pixels
    return int(activations + ATTENTION_SCORE_BYTES * batch * tokens**2)


def scores_held_on(device: torch.device) -> bool:
    """Whether torch's attention may hold all (query, key) scores of the untiled mid-block at
    once on ``device``: not on the CPU, whose fused kernel streams them (measured)."""
    return device.type != "cpu"


def available_memory(device: torch.device) -> int | None:
    """Bytes the VAE can still use on ``device``; None when this platform does not say."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free + cached
    if device.type == "cpu":
        return _cpu_available()
    return None


def _cpu_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def decide_tiling(mode: str, untiled_bytes: int, available: int | None) -> bool:
    """Whether to tile: ``mode`` is "on", "off" or "auto" (the rule in this module's docstring)."""
    if mode in ("on", "off"):
        return mode == "on"
    if available is None:
        return untiled_bytes > UNKNOWN_MEMORY_LIMIT
    return untiled_bytes > AUTO_SHARE * available


@dataclass(frozen=True)
class TilingFit:
    """What an out-of-memory advice needs to know: would the tiled pass fit (asked after the
    failed pass's memory is freed)."""

    device: torch.device
    tiled_bytes: int

    def fits(self, available: int | None = None) -> bool:
        free = available_memory(self.device) if available is None else available
        return free is None or self.tiled_bytes <= free


class VaeOutOfMemory(RuntimeError):
    """An untiled VAE pass ran out of memory; ``fit`` says whether tiling would help."""

    def __init__(self, message: str, fit: TilingFit) -> None:
        super().__init__(f"VAE out of memory: {message}")
        self.fit = fit


def _plan(vae: AutoencoderKL, mode: str, batch: int, h: int, w: int, dtype, device):
    held = scores_held_on(device)
    untiled = vae_peak_bytes(vae.config, batch, h, w, dtype, tiled=False, scores_held=held)
    tiled = decide_tiling(mode, untiled, available_memory(device) if mode == "auto" else None)
    return tiled, TilingFit(device, vae_peak_bytes(vae.config, batch, h, w, dtype, tiled=True))


def decode_latents(
    vae: AutoencoderKL, z: torch.Tensor, mode: str, tile: int | None = None
) -> torch.Tensor:
    """``vae.decode(z)`` (unscaled latents), tiled as ``mode`` decides; ``tile``: tile side in
    pixels of each layer (default ``DEFAULT_TILE``)."""
    b, _, h, w = z.shape
    f = 2 ** (len(vae.config.ch_mult) - 1)
    tiled, fit = _plan(vae, mode, b, h * f, w * f, z.dtype, z.device)
    if not tiled and (image := _untiled(lambda: vae.decode(z), fit, mode)) is not None:
        return image
    return tiled_decode(vae, z, tile or DEFAULT_TILE)


def encode_pixels(
    vae: AutoencoderKL, x: torch.Tensor, mode: str, tile: int | None = None
) -> torch.Tensor:
    """``vae.encode(x)`` (the mean latent), tiled as ``mode`` decides. The encoder's largest
    activations are narrower than the decoder's: the decode estimate errs on the safe side."""
    b, _, h, w = x.shape
    tiled, fit = _plan(vae, mode, b, h, w, x.dtype, x.device)
    if not tiled and (latent := _untiled(lambda: vae.encode(x), fit, mode)) is not None:
        return latent
    return tiled_encode(vae, x, tile or DEFAULT_TILE)


def _untiled(work, fit: TilingFit, mode: str) -> torch.Tensor | None:
    """The untiled pass. Out of memory: None under "auto" (the estimate was wrong or memory
    went elsewhere: the caller tiles, which gives the same picture), else VaeOutOfMemory."""
    try:
        return work()
    except Exception as e:
        if not is_out_of_memory(e):
            raise
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
    # Outside the handler: the failed pass's frames and tensors are gone by now.
    if fit.device.type == "cuda":
        torch.cuda.empty_cache()
    if mode == "auto":
        return None
    raise VaeOutOfMemory(message, fit)
