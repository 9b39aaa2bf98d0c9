"""Which module of the loaded model a LoRA layer changes.

Our UNet carries the original LDM names (``input_blocks.1.1.transformer_blocks.0.attn1.to_q``);
LoRA files name UNet layers in diffusers' terms (``down_blocks.0.attentions.0...``), kohya
files write those with ``_`` for ``.``, and some use the LDM names. diffusers names go through
the same mapping a diffusers folder does (``engine.loading.diffusers_keys``), told the model's
block layout, since a LoRA that touches only attention layers does not show how many resnets
each block holds. Text-encoder layers carry transformers' CLIP names, with or without
``text_model.`` (transformers >= 5.6 dropped it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from engine.errors import UnsupportedModelError
from engine.loading.diffusers_keys import unet_key_map
from engine.lora.formats import LoraLayer
from engine.models.unet import UNetConfig

# Words of diffusers' UNet module names that hold "_": a kohya name is split at every "_" and
# these are joined again (longest first).
_COMPOUNDS = (
    ("conv", "norm", "out"),
    ("time", "emb", "proj"),
    ("down", "blocks"),
    ("up", "blocks"),
    ("mid", "block"),
    ("transformer", "blocks"),
    ("to", "q"),
    ("to", "k"),
    ("to", "v"),
    ("to", "out"),
    ("proj", "in"),
    ("proj", "out"),
    ("conv", "shortcut"),
    ("conv", "in"),
    ("conv", "out"),
    ("time", "embedding"),
    ("linear", "1"),
    ("linear", "2"),
)
_LDM_HEADS = ("input_blocks", "middle_block", "output_blocks", "time_embed", "out")
TEXT_WRAPPER = "text_model."


@dataclass(frozen=True)
class Target:
    """A module of the model, by a name that says which network it is in."""

    key: str  # "unet:input_blocks.1.1.proj_in" or "te:encoder.layers.0.mlp.fc1"
    module: nn.Module

    @property
    def weight(self) -> torch.Tensor:
        weight = self.module.weight
        assert isinstance(weight, torch.Tensor)  # Linear and Conv2d only
        return weight


class TargetIndex:
    """The patchable modules (Linear, Conv2d) of a UNet and a CLIP text model, by name."""

    def __init__(self, unet: nn.Module, unet_config: UNetConfig, text_model: nn.Module) -> None:
        self._unet = _weighted_modules(unet)
        self._text = {
            k.removeprefix(TEXT_WRAPPER): m for k, m in _weighted_modules(text_model).items()
        }
        self._unet_by_flat = {k.replace(".", "_"): k for k in self._unet}
        self._text_by_flat = {k.replace(".", "_"): k for k in self._text}
        self._layout = layout_keys(unet_config)
        self._diffusers: dict[str, str | None] = {}  # diffusers module name -> ours (cache)

    def find(self, layer: LoraLayer) -> Target | None:
        if layer.component == "te":
            name = self._text_name(layer)
            return Target(f"te:{name}", self._text[name]) if name else None
        name = self._unet_name(layer)
        return Target(f"unet:{name}", self._unet[name]) if name else None

    def _text_name(self, layer: LoraLayer) -> str | None:
        if layer.dotted:
            name = layer.module.removeprefix(TEXT_WRAPPER)
            return name if name in self._text else None
        return self._text_by_flat.get(layer.module.removeprefix("text_model_"))

    def _unet_name(self, layer: LoraLayer) -> str | None:
        module = layer.module
        flat = module.replace(".", "_")
        if flat.startswith(_LDM_HEADS) and flat in self._unet_by_flat:
            return self._unet_by_flat[flat]  # LDM names, with "." or "_"
        dotted = module if layer.dotted else kohya_to_dotted(module)
        name = self._from_diffusers(dotted)
        return name if name in self._unet else None

    def _from_diffusers(self, dotted: str) -> str | None:
        if dotted not in self._diffusers:
            self._diffusers[dotted] = diffusers_to_ldm(dotted, self._layout)
        return self._diffusers[dotted]


def _weighted_modules(root: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in root.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)}


def kohya_to_dotted(name: str) -> str:
    """``down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0`` ->
    ``down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0``."""
    words = name.split("_")
    parts: list[str] = []
    i = 0
    while i < len(words):
        for compound in _COMPOUNDS:
            if tuple(words[i : i + len(compound)]) == compound:
                parts.append("_".join(compound))
                i += len(compound)
                break
        else:
            parts.append(words[i])
            i += 1
    return ".".join(parts)


def diffusers_to_ldm(module: str, layout: list[str]) -> str | None:
    """Our name of a diffusers UNet module, or None when the model has no such block."""
    key = module + ".weight"
    try:
        mapped = unet_key_map([*layout, key])[key]
    except UnsupportedModelError:
        return None
    return mapped.removesuffix(".weight")


def layout_keys(config: UNetConfig) -> list[str]:
    """One diffusers key per resnet, attention and resampler the UNet has, so the diffusers
    mapping numbers the blocks as the model does (input_blocks.0 is conv_in, then per level
    num_res_blocks resnets and a downsampler; output blocks one resnet more per level)."""
    levels = len(config.channel_mult)
    keys: list[str] = []
    for level in range(levels):
        keys += _block_keys(f"down_blocks.{level}", config.num_res_blocks, level, config)
        if level != levels - 1:
            keys.append(f"down_blocks.{level}.downsamplers.0.conv.weight")
    for block in range(levels):
        level = levels - 1 - block
        keys += _block_keys(f"up_blocks.{block}", config.num_res_blocks + 1, level, config)
        if block != levels - 1:
            keys.append(f"up_blocks.{block}.upsamplers.0.conv.weight")
    keys += ["mid_block.resnets.0.conv1.weight", "mid_block.resnets.1.conv1.weight"]
    return keys + ["mid_block.attentions.0.proj_in.weight"]


def _block_keys(block: str, resnets: int, level: int, config: UNetConfig) -> Iterable[str]:
    for j in range(resnets):
        yield f"{block}.resnets.{j}.conv1.weight"
        if level in config.attention_levels:
            yield f"{block}.attentions.{j}.proj_in.weight"
