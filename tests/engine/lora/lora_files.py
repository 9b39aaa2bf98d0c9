"""LoRA files for the tests, written in the layouts real tools write.

kohya files name layers after diffusers' module names (SD1), taken here from the diffusers
model itself, so the engine's own key mapping is not used to make its test data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
CLIP_LAYERS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def kohya_lora(
    unet: nn.Module,
    text_encoder: nn.Module,
    *,
    seed: int,
    rank: int = 4,
    alpha: float | None = 2.0,
    locon: Iterable[str] = ("down_blocks.0.resnets.0.conv1",),
    size: float = 1.0,
) -> dict[str, torch.Tensor]:
    """A random kohya LoRA: every UNet attention projection and proj_in (a 1x1 conv), every
    CLIP projection, and LoCon layers (a 3x3 down, a 1x1 up) on the ``locon`` convolutions.
    ``unet`` and ``text_encoder`` are diffusers' and transformers' modules."""
    gen = torch.Generator().manual_seed(seed)
    lora: dict[str, torch.Tensor] = {}
    wanted_conv = set(locon)
    for name, module in unet.named_modules():
        if name.endswith(ATTENTION + ("proj_in",)) or name in wanted_conv:
            _add(lora, "lora_unet_" + name.replace(".", "_"), module, rank, alpha, gen, size)
    for name, module in text_encoder.named_modules():
        if isinstance(module, nn.Linear) and name.endswith(CLIP_LAYERS):
            flat = "text_model." + name.removeprefix("text_model.")
            _add(lora, "lora_te_" + flat.replace(".", "_"), module, rank, alpha, gen, size)
    return lora


def _add(lora, key, module, rank, alpha, gen, size) -> None:
    out, inp = module.weight.shape[:2]
    kernel = tuple(module.weight.shape[2:])  # () for Linear
    # Scaled so that the update is about `size` times the weight's own scale (1/sqrt(fan_in)).
    fan_in = inp * (kernel[0] * kernel[1] if kernel else 1)
    down = torch.randn(rank, inp, *kernel, generator=gen) * size / fan_in**0.5
    up = torch.randn(out, rank, *((1, 1) if kernel else ()), generator=gen) / rank**0.5
    lora[f"{key}.lora_down.weight"] = down
    lora[f"{key}.lora_up.weight"] = up
    if alpha is not None:
        lora[f"{key}.alpha"] = torch.tensor(alpha)


def write_lora(tensors: Mapping[str, torch.Tensor], path: Path, metadata=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def layer(key: str, out: int, inp: int, rank: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """One kohya layer by name: (rank, inp) down, (out, rank) up."""
    gen = torch.Generator().manual_seed(seed)
    return {
        f"{key}.lora_down.weight": torch.randn(rank, inp, generator=gen) / inp**0.5,
        f"{key}.lora_up.weight": torch.randn(out, rank, generator=gen),
    }
