"""Tiny SD 1.x checkpoints for tests: the real key layout, small widths, random weights.

Shared by every engine and app test; keep the API small and stable:

- ``TINY_UNET``, ``TINY_UNET_INPAINT``, ``TINY_VAE``: model configs; ``tiny_clip_config()``.
- ``tiny_sd1_state_dict(seed, inpainting, dtype)``: a whole checkpoint with CompVis prefixes.
- ``tiny_unet(seed)``, ``tiny_vae(seed)``: the same weights as ready modules.
- ``write_checkpoint(sd, path, metadata)``: ``.safetensors`` (with metadata) or ``.ckpt``.
- ``reference_shapes(name, prefix)``, ``full_sd1_shapes()``: the real key lists as shape maps.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import torch

from engine.models.unet import UNetConfig, UNetModel
from engine.models.vae import AutoencoderKL, VAEConfig

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."

TINY_CONTEXT = 64  # the UNet's context width is the text encoder's hidden size

TINY_UNET = UNetConfig(
    model_channels=32,
    channel_mult=(1, 2, 4),
    num_res_blocks=2,
    attention_levels=(0, 1),
    num_heads=8,  # SD1's fixed head count, which detection assumes
    context_dim=TINY_CONTEXT,
)
TINY_UNET_INPAINT = dataclasses.replace(TINY_UNET, in_channels=9)

# Three levels: 4 pixels per latent cell (8 in real models), so 64x64 images give 16x16 latents.
TINY_VAE = VAEConfig(ch=32, ch_mult=(1, 2, 2), num_res_blocks=1)

TINY_CLIP_KWARGS = dict(
    hidden_size=TINY_CONTEXT,
    num_hidden_layers=2,
    intermediate_size=128,
    num_attention_heads=TINY_CONTEXT // 64,
    vocab_size=49408,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
)

# Vendored with the tests (see its README): a fresh clone runs every test without outside files.
KEY_LIST_DIR = Path(__file__).resolve().parent / "data" / "checkpoint-keys"


def tiny_clip_config():
    """A transformers CLIPTextConfig with SD1's vocabulary and positions but a 64-wide model."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(**TINY_CLIP_KWARGS)


# --- random weights -----------------------------------------------------------------------


def _random_tensor(key: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Deterministic in (seed, key), so a tensor does not change when other keys come or go.

    Matrices and kernels get 1/sqrt(fan_in) scaling to keep activations O(1); norm scales sit
    near 1 and biases near 0. Unlike the CompVis init, nothing is zero, so no path is dead.
    """
    gen = torch.Generator().manual_seed((seed << 32) ^ zlib.crc32(key.encode()))
    noise = torch.randn(shape, generator=gen, dtype=torch.float32)
    if len(shape) >= 2:
        return noise / math.sqrt(math.prod(shape[1:]))
    if key.endswith("weight"):
        return 1.0 + 0.1 * noise
    return 0.02 * noise


def random_weights(
    shapes: Mapping[str, tuple[int, ...]], seed: int = 0, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """A state dict for the given key -> shape map, keys as given (seeded by the full key)."""
    return {k: _random_tensor(k, tuple(s), seed).to(dtype) for k, s in shapes.items()}


def shapes_of(module_or_sd: torch.nn.Module | Mapping[str, torch.Tensor]) -> dict[str, tuple]:
    sd = module_or_sd.state_dict() if isinstance(module_or_sd, torch.nn.Module) else module_or_sd
    return {k: tuple(v.shape) for k, v in sd.items()}


def _meta_shapes(factory, config, prefix: str) -> dict[str, tuple[int, ...]]:
    """Key shapes of a module built on the meta device: no memory, no random init."""
    with torch.device("meta"):
        module = factory(config)
    return {prefix + k: s for k, s in shapes_of(module).items()}


def _clip_shapes() -> dict[str, tuple[int, ...]]:
    from transformers import CLIPTextModel

    shapes = _meta_shapes(CLIPTextModel, tiny_clip_config(), "")
    # transformers < 5.6 names keys text_model.*, later versions drop it: normalise to the latter.
    return {CLIP_PREFIX + k.removeprefix("text_model."): s for k, s in shapes.items()}


def _schedule_buffers() -> dict[str, torch.Tensor]:
    """The SD1 noise schedule, stored in real checkpoints next to the weights."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    return {"betas": betas.float(), "alphas_cumprod": alphas_cumprod.float()}


@functools.cache
def _tiny_sd1_shapes(inpainting: bool) -> Mapping[str, tuple[int, ...]]:
    # Cached: building CLIP, even on meta, costs more than drawing the random weights.
    unet_cfg = TINY_UNET_INPAINT if inpainting else TINY_UNET
    shapes = _meta_shapes(UNetModel, unet_cfg, UNET_PREFIX)
    shapes |= _meta_shapes(AutoencoderKL, TINY_VAE, VAE_PREFIX)
    return MappingProxyType(shapes | _clip_shapes())


def tiny_sd1_state_dict(
    seed: int = 0, inpainting: bool = False, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """A whole tiny SD 1.x checkpoint as a single file holds it: UNet, VAE, CLIP, schedule."""
    sd = random_weights(_tiny_sd1_shapes(inpainting), seed, dtype)
    # Many real files carry CLIP's position ids (int64); loaders must tolerate them.
    sd[CLIP_PREFIX + "embeddings.position_ids"] = torch.arange(77).unsqueeze(0)  # (1, 77)
    sd |= {k: v.to(dtype) for k, v in _schedule_buffers().items()}
    return sd


def strip_prefix(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix``, with it removed."""
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def _load(module: torch.nn.Module, sd: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    module.load_state_dict(sd, strict=True, assign=True)
    return module.eval().requires_grad_(False)


def tiny_unet(seed: int = 0, inpainting: bool = False) -> UNetModel:
    """The UNet of ``tiny_sd1_state_dict(seed, inpainting)``, float32, in eval mode."""
    cfg = TINY_UNET_INPAINT if inpainting else TINY_UNET
    with torch.device("meta"):
        unet = UNetModel(cfg)
    weights = random_weights(_meta_shapes(UNetModel, cfg, UNET_PREFIX), seed)
    return _load(unet, strip_prefix(weights, UNET_PREFIX))


def tiny_vae(seed: int = 0) -> AutoencoderKL:
    """The VAE of ``tiny_sd1_state_dict(seed)``, float32, in eval mode."""
    with torch.device("meta"):
        vae = AutoencoderKL(TINY_VAE)
    weights = random_weights(_meta_shapes(AutoencoderKL, TINY_VAE, VAE_PREFIX), seed)
    return _load(vae, strip_prefix(weights, VAE_PREFIX))


# --- files -------------------------------------------------------------------------------------


def write_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    path: Path | str,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Save as a real single-file checkpoint: safetensors, or a ``.ckpt`` pickle as CompVis did.
    ``metadata``: the safetensors header's ``__metadata__`` (strings only)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        tensors = {k: v.contiguous() for k, v in state_dict.items()}
        save_file(tensors, str(path), metadata=dict(metadata) if metadata else None)
    elif path.suffix == ".ckpt":
        torch.save({"state_dict": dict(state_dict)}, path)
    else:
        raise ValueError(f"unknown checkpoint suffix {path.suffix!r}: use .safetensors or .ckpt")
    return path


# --- reference key lists ------------------------------------------------------------------------


def parse_key_list(text: str) -> dict[str, tuple[int, ...]]:
    """Parse ``key [a,b,c]`` lines (``[]`` for scalars, -1 for a LoRA's free rank)."""
    shapes = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, _, dims = line.rpartition(" ")
        dims = dims.strip("[]")
        shapes[key] = tuple(int(d) for d in dims.split(",")) if dims else ()
    return shapes


def reference_shapes(name: str, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """A key list from tests/data/checkpoint-keys (e.g. "UNET-v1-SD"), keys prefixed."""
    text = (KEY_LIST_DIR / f"{name}.txt").read_text()
    return {prefix + k: s for k, s in parse_key_list(text).items()}


def full_sd1_shapes(unet: str = "UNET-v1-SD") -> dict[str, tuple[int, ...]]:
    """Every tensor of a real single-file SD 1.5 checkpoint, with prefixes."""
    return (
        reference_shapes(unet, UNET_PREFIX)
        | reference_shapes("VAE-v1-SD", VAE_PREFIX)
        | reference_shapes("CLIP-v1-SD", CLIP_PREFIX)
        | {"alphas_cumprod": (1000,)}
    )
