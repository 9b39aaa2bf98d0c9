"""Train the built-in demo model: a tiny SD1-architecture model that draws coloured shapes.

    python -m engine.demo.train --out resources/demo/demo-shapes.safetensors

CPU only, seeded and deterministic (same seed, same thread count, same torch on the same kind of
CPU: the same tensors; two ``--quick`` runs on two threads gave identical tensors; the bytes of
the file differ only in the seconds its metadata records). The shipped
``resources/demo/demo-shapes.safetensors`` is this script's output, unchanged; its
``latentdesk.training`` metadata records the steps, the seconds, the threads and the torch
version. It prints a probe every 500 UNet steps: DDIM pictures of eight captions read by
``engine.demo.judge`` (what ``python -m engine.demo.evaluate`` measures properly afterwards).

Choices, and why:

- **64x64, not 128x128.** One VAE step at 128x128 (batch 8) took 5.6 s against 1.6 s for
  batch 16 at 64x64 (on a busy machine), and the UNet works on 4x the latent cells at 128: in
  the time budget (~30 min) 128 would get a quarter of the steps, too few for clean shapes.
  64x64 gives 8x8 latents.
- **Two threads on a quiet machine** (a UNet step 0.19 s against 0.27 s with one). On a busy
  one use ``--threads 1``: two OpenMP threads then spin at every barrier (15-38 s a step).
- **Sizes.** SD1 key structure throughout, at the smallest widths GroupNorm's 32 groups allow
  and a depth that keeps the file under 10 MB (9.65 MB): UNet 64 channels, 4 levels, one
  ResBlock per level, attention at the 8x8 and 4x4 levels and in the mid block, 8 heads; VAE
  4 levels = factor 8, 4 latent channels, 64 channels, one ResBlock per level. The CLIP text
  transformer (our own ``engine.text.clip_model``, as the engine runs it) is 16 wide with 3
  layers; its 49408-token embedding (our shipped tokenizer's vocabulary, so the file is
  standard) is 1.6 MB of the file in float16. Tokens the captions never use keep their random
  initialisation. (A 3-level UNet with attention at all three levels, 9.30 MB, drew shapes
  worse: 70% of shape words right against 81%.)
- **VAE widths.** A GroupNorm of 32 groups over 32 channels normalises each channel alone and
  so erases its mean: after the encoder's and the decoder's ``norm_out`` (the two norms no
  residual path bypasses) a flat colour could not pass: with 32 channels there the
  reconstruction loss was still 0.6 after 350 steps, with 64 it was lower after 50. The first
  level must be 64 wide, and diffusers' VAE makes its first level as wide as ``conv_in``, so
  every level is 64 wide (``ch_mult=(1, 1, 1, 1)``; 32 in the middle levels would not load in
  diffusers). The UNet's ``out.0`` has the same limit, so the UNet is 64 wide.
- **VAE first**, on the pictures alone: L1 + MSE (flat colours, crisp edges; shape pixels
  weighted 5x), a 1e-6 KL term, and a linear read-out of the latent to each 8x8 cell's mean
  colour trained alongside (weight 0.5; it keeps the latent close to linear in colour, so the
  cheap preview resembles the picture: without it the last preview was 13 dB from the
  picture), on 32x32 crops (4x cheaper) and whole pictures for the last 600 steps (picture
  borders), at a peak learning rate of 1e-3 (2e-3 left a mean colour error of 18.6 of 255
  after 1200 steps, 1e-3 9.1; a VAE trained 600 steps at 2e-3 made red come out orange and
  blue and black teal). Afterwards its latents are standardised *exactly* by folding a
  per-channel affine map into ``quant_conv`` and ``post_quant_conv`` (both 1x1
  convolutions), so SD1's latent scale 0.18215 gives unit-variance latents and the engine
  needs no other scale.
- **Then the decoder alone** (``post_quant_conv`` and the decoder; the encoder frozen, so the
  latents stay as they were), 600 steps on whole pictures whose latents get Gaussian noise of
  a level drawn per picture in [0, 0.45) (unit-variance latent units). A sampled latent is
  never exactly an encoded picture, and a decoder that has only seen exact ones turned the
  UNet's small errors into four-lobed circles and pinched squares. Polishing run 5's decoder
  alone this way (its UNet unchanged) raised the shape words right from 81% to 83% (noise up
  to 0.2), 89% (0.3) and 92% (0.45); trained in from the start (the shipped file, 2174 s on
  two threads): 94%.
- **UNet and text encoder jointly** on the frozen VAE's latents of a seeded pool of 8192
  pictures (pre-encoded; captions are drawn afresh at every step, positions named half the
  time), epsilon prediction with SD1's scaled-linear schedule, Min-SNR-5 loss weighting (the
  high-noise steps that decide colour and layout are not drowned by the easy low-noise ones:
  Hang et al. 2023), 10% empty captions so classifier-free guidance works, an EMA of the
  weights (what ships). **Offset noise** (a per-picture, per-channel constant of 0.1 added to
  the noise): SD1's schedule leaves some signal at its last step, so without it the model read
  the background from the starting noise's mean and colours followed the seed, not the caption
  (runs 1 and 2); with it the probe's backgrounds went from 2 of 16 right to 12 of 16 within
  1000 steps.
- **Preview factors**: least squares from scaled latents (with an intercept) to the decoded
  picture averaged over each 8x8 cell, over a few hundred pictures; stored in the metadata.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.demo import shapes
from engine.demo.evaluate import object_prompt
from engine.family import SD1
from engine.models.unet import UNetConfig, UNetModel
from engine.models.vae import AutoencoderKL, VAEConfig
from engine.text.clip_model import ClipTextConfig, ClipTextModel
from engine.text.tokenizer import END_ID, START_ID, get_tokenizer

SIZE = 64
LATENT = SIZE // 8
CLIP_PREFIX = SD1.text_encoder_prefix + "text_model."
DISPLAY_NAME = "Demo (shapes)"

# 64 channels at every level: the norm_outs need 64 (see the docstring), and diffusers' VAE
# makes its first level as wide as conv_in, so the first multiplier must be 1.
VAE_CONFIG = VAEConfig(ch=64, ch_mult=(1, 1, 1, 1), num_res_blocks=1)
TEXT_CONFIG = ClipTextConfig(
    hidden_size=16,
    intermediate_size=64,
    num_hidden_layers=3,
    num_attention_heads=1,  # what the engine rebuilds from the shapes: max(width // 64, 1)
    bos_token_id=START_ID,
    eos_token_id=END_ID,
    pad_token_id=END_ID,
)
UNET_CONFIG = UNetConfig(
    model_channels=64,  # out.0's GroupNorm must see 2 channels per group (see the docstring)
    channel_mult=(1, 1, 1, 1),
    num_res_blocks=1,
    attention_levels=(0, 1),  # 8x8 and 4x4 latent cells (and the mid block)
    num_heads=SD1.unet_heads,  # detection assumes SD1's 8 heads
    context_dim=TEXT_CONFIG.hidden_size,
)


@dataclass(frozen=True)
class Budget:
    """Step counts: fixed numbers (not a time limit), so a run is reproducible."""

    vae_steps: int = 2000
    vae_lr: float = 1e-3  # 2e-3: mean colour error 18.6 against 9.1 after 1200 steps
    vae_batch: int = 16
    vae_full_steps: int = 600  # the last steps on whole pictures, after 32x32 crops
    decoder_steps: int = 600  # the decoder made robust to imperfect latents, encoder frozen
    pool: int = 8192
    unet_steps: int = 5000
    unet_batch: int = 32
    fit_samples: int = 384
    probe_every: int = 500


QUICK = Budget(
    vae_steps=40,
    vae_full_steps=10,
    decoder_steps=10,
    pool=256,
    unet_steps=40,
    fit_samples=64,
    probe_every=20,
)
OFFSET_NOISE = 0.1
PREVIEW_WEIGHT = 0.5
# The largest noise (in scaled-latent units, where latents have unit variance) the decoder
# learns to see through; each picture draws its own level in [0, DECODER_NOISE). Measured by
# polishing run 5's decoder alone (600 steps) and evaluating with its UNet: shape words right
# 81% (no polish), 83% (0.2), 89% (0.3), 92% (0.45).
DECODER_NOISE = 0.45


def text_config():
    """transformers' CLIPTextConfig of the same model (tests build diffusers' pipeline with it)."""
    from dataclasses import asdict

    from transformers import CLIPTextConfig

    return CLIPTextConfig(**asdict(TEXT_CONFIG))


def to_tensor(pictures: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(pictures).permute(0, 3, 1, 2).float() / 127.5 - 1


def _lr(step: int, total: int, peak: float, warmup: int = 50) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _log(start: float, text: str) -> None:
    print(f"[{time.perf_counter() - start:7.1f}s] {text}", flush=True)


# --- VAE --------------------------------------------------------------------------------------


def _vae_batch(rng: np.random.Generator, budget: Budget, full: bool) -> torch.Tensor:
    """Random 32x32 crops (4x cheaper; the VAE is convolutional), or whole pictures at the end
    so the attention at the lowest resolution sees the full 8x8 latent."""
    if full:
        return to_tensor(shapes.batch(rng, budget.vae_batch // 2, SIZE)[0])  # (B/2, 3, 64, 64)
    pictures, _, scenes = shapes.batch(rng, budget.vae_batch, SIZE)  # (B, 64, 64, 3)
    crops = []
    for picture, scene in zip(pictures, scenes, strict=True):
        shape = scene.shapes[0]  # a crop around a shape: background alone teaches nothing
        x, y = (int(np.clip(c * SIZE - 16, 0, SIZE - 32)) // 8 * 8 for c in (shape.cx, shape.cy))
        crops.append(picture[y : y + 32, x : x + 32])
    return to_tensor(np.stack(crops))  # (B, 3, 32, 32)


def _reconstruction_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L1 + MSE (flat colours and crisp edges), shape pixels weighted 5x."""
    err = recon - x
    w = _foreground_weights(x)
    return (w * (err.abs() + err.pow(2))).mean() / w.mean()


def _foreground_weights(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W): 5 where a pixel differs from the picture's corner (its background), else
    1, so the few shape pixels are not outweighed by the flat background."""
    corner = x[:, :, :1, :1]  # (B, 3, 1, 1)
    differs = (x - corner).abs().amax(dim=1, keepdim=True) > 0.05  # (B, 1, H, W)
    return 1 + 4 * differs.float()


def train_vae(budget: Budget, rng: np.random.Generator, start: float) -> AutoencoderKL:
    vae = AutoencoderKL(VAE_CONFIG)
    # A linear read-out of the latent to each 8x8 cell's mean colour, trained alongside: it
    # keeps the latent close to linear in colour, so the cheap preview (latent -> RGB factors
    # fitted at the end) resembles the picture. Not shipped; only the fitted factors are.
    readout = nn.Conv2d(VAE_CONFIG.embed_dim, 3, 1)
    params = [*vae.parameters(), *readout.parameters()]
    opt = torch.optim.AdamW(params, lr=budget.vae_lr, weight_decay=0.0)
    for step in range(budget.vae_steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, budget.vae_steps, budget.vae_lr)
        x = _vae_batch(rng, budget, full=step >= budget.vae_steps - budget.vae_full_steps)
        mean, logvar = vae.encode_moments(x)  # 2 x (B, 4, 8, 8)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(dim=(1, 2, 3)).mean()
        rec = _reconstruction_loss(vae.decode(z), x)
        preview = F.mse_loss(readout(mean), F.avg_pool2d(x, 8))
        loss = rec + PREVIEW_WEIGHT * preview + 1e-6 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == budget.vae_steps - 1:
            _log(
                start,
                f"vae {step:4d} recon {rec.item():.4f} preview {preview.item():.4f} "
                f"kl {kl.item():.1f}",
            )
    return vae.eval().requires_grad_(False)


def robust_decoder(
    vae: AutoencoderKL, budget: Budget, rng: np.random.Generator, start: float
) -> None:
    """Fine-tune post_quant_conv and the decoder on latents with noise added, the encoder
    frozen (so the latents, and the UNet trained on them, stay as they are). A sampled latent
    is never exactly an encoded picture; a decoder that has only seen exact ones turns the
    UNet's small errors into wobbly outlines (four-lobed circles, pinched squares). Needs the
    standardised latents: the noise is in their unit-variance units."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    params = [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]
    for param in params:
        param.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.0)
    for step in range(budget.decoder_steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, budget.decoder_steps, 3e-4)
        x = _vae_batch(rng, budget, full=True)  # (B/2, 3, 64, 64)
        with torch.no_grad():
            z = vae.encode(x)  # (B/2, 4, 8, 8), unscaled
            level = DECODER_NOISE * torch.rand((len(z), 1, 1, 1), generator=gen)
            z += level / SD1.latent_scale * torch.randn(z.shape, generator=gen)
        rec = _reconstruction_loss(vae.decode(z), x)
        opt.zero_grad(set_to_none=True)
        rec.backward()
        opt.step()
        if step % 50 == 0 or step == budget.decoder_steps - 1:
            _log(start, f"decoder {step:4d} recon {rec.item():.4f}")
    vae.requires_grad_(False)


@torch.no_grad()
def standardise_latents(vae: AutoencoderKL, pictures: torch.Tensor) -> None:
    """Fold z' = (z - m) / s * (1 / 0.18215) into quant_conv and its inverse into
    post_quant_conv, per channel, so scaled latents have zero mean and unit variance.
    Decoding is unchanged: post_quant_conv(z) = W z + b = (W s) z' + (W m + b)."""
    mean = torch.cat([vae.encode(chunk) for chunk in pictures.split(64)])  # (N, 4, h, w)
    m = mean.mean(dim=(0, 2, 3))  # (4,)
    s = mean.std(dim=(0, 2, 3)) * SD1.latent_scale  # (4,)
    k = vae.config.embed_dim
    quant_w = vae.quant_conv.weight  # (2k, 2z, 1, 1): rows [:k] mean, [k:] logvar
    quant_b = vae.quant_conv.bias
    post_w = vae.post_quant_conv.weight  # (z, k, 1, 1)
    post_b = vae.post_quant_conv.bias
    assert quant_b is not None and post_b is not None  # SD VAEs have these biases
    quant_w[:k] /= s[:, None, None, None]
    quant_b[:k] = (quant_b[:k] - m) / s
    quant_b[k:] -= 2 * torch.log(s)  # the variance scales with the mean
    post_b += post_w[:, :, 0, 0] @ m  # uses the old weights: add before scaling them
    post_w *= s[None, :, None, None]


# --- UNet and text encoder --------------------------------------------------------------------


@dataclass
class Pool:
    latents: torch.Tensor  # (N, 4, 8, 8) scaled latents, as the sampler sees them
    scenes: list[shapes.Scene]


@torch.no_grad()
def encode_pool(vae: AutoencoderKL, budget: Budget, rng: np.random.Generator) -> Pool:
    chunks, scenes = [], []
    for _ in range(0, budget.pool, 64):
        pictures, _, batch_scenes = shapes.batch(rng, 64, SIZE)
        chunks.append(vae.encode(to_tensor(pictures)) * SD1.latent_scale)
        scenes += batch_scenes
    return Pool(torch.cat(chunks)[: budget.pool], scenes[: budget.pool])


class Captions:
    """Token rows for captions, drawn afresh per sample: positions half the time, 10% empty."""

    def __init__(self, rng: np.random.Generator, dropout: float = 0.1) -> None:
        self.rng = rng
        self.dropout = dropout
        self.tokenizer = get_tokenizer()
        self._rows: dict[str, list[int]] = {}

    def row(self, text: str) -> list[int]:
        if text not in self._rows:
            self._rows[text] = self.tokenizer.chunk_ids(text)[0]  # (77,)
        return self._rows[text]

    def tokens(self, scenes: list[shapes.Scene]) -> torch.Tensor:
        texts = [
            "" if self.rng.random() < self.dropout else shapes.caption(s, self.rng) for s in scenes
        ]
        return torch.tensor([self.row(t) for t in texts], dtype=torch.long)  # (B, 77)


def _min_snr_weights(alphas: torch.Tensor, gamma: float = 5.0) -> torch.Tensor:
    """Min-SNR-gamma loss weights for epsilon prediction: min(SNR, gamma) / SNR."""
    snr = alphas / (1 - alphas)
    return snr.clamp(max=gamma) / snr


class EMA:
    """Exponential moving average of parameters, with the usual warm-up of the decay."""

    def __init__(self, model: nn.Module, decay: float = 0.995) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema, live in zip(self.model.parameters(), model.parameters(), strict=True):
            ema.lerp_(live, 1 - d)


class Conditioned(nn.Module):
    """The UNet and the text encoder trained as one module."""

    def __init__(self) -> None:
        super().__init__()
        self.unet = UNetModel(UNET_CONFIG)
        self.text = ClipTextModel(TEXT_CONFIG)
        with torch.no_grad():  # word identity first: distinct, well-spread token vectors
            nn.init.normal_(self.text.embeddings.token_embedding.weight, std=0.5)
            nn.init.normal_(self.text.embeddings.position_embedding.weight, std=0.1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, self.text(tokens))  # (B, 4, h, w); context (B, 77, D)


def _batches(pool: Pool, budget: Budget, gen: torch.Generator) -> Iterator[torch.Tensor]:
    while True:
        order = torch.randperm(len(pool.scenes), generator=gen)
        for i in range(0, len(order) - budget.unet_batch + 1, budget.unet_batch):
            yield order[i : i + budget.unet_batch]


def train_unet(
    pool: Pool,
    budget: Budget,
    rng: np.random.Generator,
    start: float,
    probe_vae: AutoencoderKL | None = None,
) -> Conditioned:
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    model = Conditioned()
    ema = EMA(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-3, weight_decay=0.01)
    alphas = SD1.alphas_cumprod().float()  # (1000,)
    weights = _min_snr_weights(alphas)
    captions = Captions(rng)
    batches = _batches(pool, budget, gen)
    for step in range(budget.unet_steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, budget.unet_steps, 1.5e-3, warmup=100)
        idx = next(batches)
        x0 = pool.latents[idx]  # (B, 4, 8, 8)
        tokens = captions.tokens([pool.scenes[i] for i in idx.tolist()])  # (B, 77)
        t = torch.randint(0, len(alphas), (len(idx),), generator=gen)  # (B,)
        noise = torch.randn(x0.shape, generator=gen)
        # Offset noise: a per-picture, per-channel constant in the noise, so the model cannot
        # read the background (the latent's mean) from the noise it starts from and must take
        # it from the caption; without it colours followed the seed.
        noise += OFFSET_NOISE * torch.randn((*x0.shape[:2], 1, 1), generator=gen)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        per_sample = (model(xt, t, tokens) - noise).pow(2).mean(dim=(1, 2, 3))  # (B,)
        loss = (weights[t] * per_sample).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
        if step % 50 == 0 or step == budget.unet_steps - 1:
            _log(start, f"unet {step:4d} loss {loss.item():.4f}")
        if probe_vae is not None and (step + 1) % budget.probe_every == 0:
            _log(start, f"probe at {step + 1}: {probe(cast(Conditioned, ema.model), probe_vae)}")
    return cast(Conditioned, ema.model)


PROBE_PROMPTS = [  # (prompt, colour, shape, background)
    (object_prompt(c, k, background=b), c, k, b)
    for c, k, b in [
        ("red", "circle", "white"),
        ("green", "square", "white"),
        ("blue", "triangle", "white"),
        ("yellow", "circle", "black"),
        ("white", "square", "black"),
        ("black", "triangle", "white"),
        ("orange", "square", "blue"),
        ("purple", "circle", "yellow"),
    ]
]


@torch.no_grad()
def probe(model: Conditioned, vae: AutoencoderKL, seeds: int = 2) -> str:
    """Training-time check (not the tests): the engine's own DDIM, 20 steps, guidance 7, on a
    few captions; how many pictures show the named colour, shape and background (judged by
    engine.demo.judge)."""
    from engine.demo import judge
    from engine.sampling.conditioning import Conditioning
    from engine.sampling.denoiser import CFGDenoiser, UNetDenoiser
    from engine.sampling.ldm_samplers import sample_ddim
    from engine.sampling.schedules import sigmas_normal

    captions = Captions(np.random.default_rng(0), dropout=0.0)
    rows = [captions.row(p) for p, *_ in PROBE_PROMPTS] * seeds
    cond = Conditioning(model.text(torch.tensor(rows)))  # context (N, 77, D)
    uncond = Conditioning(model.text(torch.tensor([captions.row("")] * len(rows))))
    alphas = SD1.alphas_cumprod().float()
    sigmas = sigmas_normal(20, alphas)  # (21,)
    denoiser = CFGDenoiser(UNetDenoiser(model.unet, alphas), cond, uncond, 7.0, sigmas.tolist())
    noise = torch.randn((len(rows), 4, LATENT, LATENT), generator=torch.Generator().manual_seed(1))
    x = sample_ddim(denoiser, noise * sigmas[0], sigmas)  # (N, 4, 8, 8) in sigma space
    pictures = ((vae.decode(x / SD1.latent_scale).clamp(-1, 1) + 1) * 127.5).round()
    pictures_np = pictures.permute(0, 2, 3, 1).to(torch.uint8).numpy()  # (N, 64, 64, 3)
    right = {"colour": 0, "shape": 0, "background": 0}
    for picture, (_, colour, kind, background) in zip(
        pictures_np, PROBE_PROMPTS * seeds, strict=True
    ):
        reading = judge.read(picture)
        right["colour"] += reading.has_shape and reading.colour_name == colour
        right["shape"] += reading.has_shape and reading.shape_name == kind
        right["background"] += reading.background_name == background
    return ", ".join(f"{k} {v}/{len(rows)}" for k, v in right.items())


# --- preview factors and the file -------------------------------------------------------------


@torch.no_grad()
def fit_latent_rgb(vae: AutoencoderKL, pool: Pool, count: int) -> tuple[list, list]:
    """Least squares: scaled latent (4) + 1 -> mean decoded RGB of its 8x8 cell, in [-1, 1]."""
    latents = pool.latents[:count]  # (N, 4, 8, 8)
    decoded = torch.cat([vae.decode(c / SD1.latent_scale) for c in latents.split(64)])
    cells = F.avg_pool2d(decoded.clamp(-1, 1), 8)  # (N, 3, 8, 8)
    x = latents.permute(0, 2, 3, 1).reshape(-1, 4).double()  # (N*64, 4)
    y = cells.permute(0, 2, 3, 1).reshape(-1, 3).double()  # (N*64, 3)
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)  # (N*64, 5)
    solution = torch.linalg.lstsq(design, y).solution  # (5, 3)
    matrix = [[round(v, 4) for v in row] for row in solution[:4].tolist()]
    bias = [round(v, 4) for v in solution[4].tolist()]
    return matrix, bias


def _text_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """CLIP weights under SD1's ``cond_stage_model.transformer.text_model.`` prefix."""
    return {CLIP_PREFIX + k: v for k, v in model.state_dict().items()}


def checkpoint(vae: AutoencoderKL, model: Conditioned) -> dict[str, torch.Tensor]:
    sd = {SD1.unet_prefix + k: v for k, v in model.unet.state_dict().items()}
    sd |= {SD1.vae_prefix + k: v for k, v in vae.state_dict().items()}
    sd |= _text_state_dict(model.text)
    return {k: v.detach().to(torch.float16).contiguous() for k, v in sd.items()}


def metadata(latent_rgb: list, bias: list, summary: str) -> dict[str, str]:
    return {
        "latentdesk.name": DISPLAY_NAME,
        "latentdesk.native_size": str(SIZE),
        "latentdesk.latent_rgb": json.dumps(latent_rgb),
        "latentdesk.latent_rgb_bias": json.dumps(bias),
        "latentdesk.grammar": shapes.GRAMMAR_VERSION,
        "latentdesk.training": summary,
    }


def train(out: Path, budget: Budget, seed: int, threads: int) -> None:
    from safetensors.torch import save_file

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    vae = train_vae(budget, rng, start)
    standardise_latents(vae, to_tensor(shapes.batch(rng, 512, SIZE)[0]))
    robust_decoder(vae, budget, rng, start)
    pool = encode_pool(vae, budget, rng)
    _log(start, f"pool of {len(pool.scenes)} latents, std {pool.latents.std().item():.3f}")
    model = train_unet(pool, budget, rng, start, vae)
    latent_rgb, bias = fit_latent_rgb(vae, pool, budget.fit_samples)
    seconds = time.perf_counter() - start
    summary = (
        f"seed {seed}; VAE {budget.vae_steps} steps x {budget.vae_batch}, decoder "
        f"{budget.decoder_steps} on noisy latents; UNet+CLIP "
        f"{budget.unet_steps} steps x {budget.unet_batch} on {budget.pool} pictures; "
        f"{seconds:.0f} s on {threads} CPU thread(s); torch {torch.__version__}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(checkpoint(vae, model), str(out), metadata=metadata(latent_rgb, bias, summary))
    _log(start, f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {summary}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("resources/demo/demo-shapes.safetensors"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few steps")
    args = parser.parse_args(argv)
    train(args.out, QUICK if args.quick else Budget(), args.seed, args.threads)


if __name__ == "__main__":
    main()
