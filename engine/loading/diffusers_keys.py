"""Key mapping from the diffusers layout to the original CompVis layout (SD1.x UNet and VAE).

The engine's modules carry the original checkpoint names, so a diffusers folder is renamed once at
load time. The block numbering is derived from the keys themselves (how many resnets each block
holds, whether it has attentions or a resampler), which makes scaled-down test models convert
exactly like real ones. Tensors are never copied: renaming reuses them, reshaping returns views.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch

from engine.errors import UnsupportedModelError

# Inside a UNet resnet the original names describe the Sequential positions of each layer.
_UNET_RESNET_RENAMES = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_RESNET_RENAMES = {"conv_shortcut": "nin_shortcut"}
# Current diffusers names first, then the names diffusers used before 0.14 (still found on disk).
_VAE_ATTENTION_RENAMES = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
    "query": "q",
    "key": "k",
    "value": "v",
    "proj_attn": "proj_out",
}
# diffusers stores the VAE attention projections as Linear weights; the original uses 1x1 convs.
_VAE_CONV_ATTENTION = re.compile(r"^(encoder|decoder)\.mid\.attn_1\.(q|k|v|proj_out)\.weight$")

_UNET_FIXED = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_FIXED = {
    "quant_conv": "quant_conv",
    "post_quant_conv": "post_quant_conv",
    **{
        f"{side}.{name}": f"{side}.{name}"
        for side in ("encoder", "decoder")
        for name in ("conv_in", "conv_out")
    },
    **{f"{side}.conv_norm_out": f"{side}.norm_out" for side in ("encoder", "decoder")},
}

_BLOCK_PART = re.compile(
    r"^(?P<stack>(?:encoder\.|decoder\.)?(?:down_blocks|up_blocks))\.(?P<block>\d+)\."
    r"(?P<kind>resnets|attentions|downsamplers|upsamplers)\.(?P<index>\d+)\."
)


@dataclass(frozen=True)
class _Rename:
    """Where one diffusers sub-module goes, and how the names inside it change."""

    target: str
    inner: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _BlockParts:
    """What one down or up block holds, read off its keys."""

    resnets: int = 0
    attentions: bool = False
    resampler: bool = False


def _block_layout(keys: Iterable[str], stack: str) -> list[_BlockParts]:
    """The parts of each block of ``stack`` ("down_blocks", "decoder.up_blocks", ...), in order."""
    blocks: dict[int, _BlockParts] = {}
    for key in keys:
        match = _BLOCK_PART.match(key)
        if match is None or match["stack"] != stack:
            continue
        parts = blocks.setdefault(int(match["block"]), _BlockParts())
        if match["kind"] == "resnets":
            parts.resnets = max(parts.resnets, int(match["index"]) + 1)
        elif match["kind"] == "attentions":
            parts.attentions = True
        else:
            parts.resampler = True
    return [blocks.get(i, _BlockParts()) for i in range(max(blocks, default=-1) + 1)]


def _unet_down_renames(layout: list[_BlockParts]) -> dict[str, _Rename]:
    """down_blocks.i.* -> input_blocks.n.*; input_blocks.0 is conv_in, so counting starts at 1."""
    renames: dict[str, _Rename] = {}
    index = 1
    for block, parts in enumerate(layout):
        for j in range(parts.resnets):
            resnet = _Rename(f"input_blocks.{index + j}.0", _UNET_RESNET_RENAMES)
            renames[f"down_blocks.{block}.resnets.{j}"] = resnet
            renames[f"down_blocks.{block}.attentions.{j}"] = _Rename(f"input_blocks.{index + j}.1")
        index += parts.resnets
        if parts.resampler:
            renames[f"down_blocks.{block}.downsamplers.0.conv"] = _Rename(
                f"input_blocks.{index}.0.op"
            )
            index += 1
    return renames


def _unet_up_renames(layout: list[_BlockParts]) -> dict[str, _Rename]:
    """up_blocks.i.* -> output_blocks.n.*; the upsampler joins the block's last output block."""
    renames: dict[str, _Rename] = {}
    index = 0
    for block, parts in enumerate(layout):
        for j in range(parts.resnets):
            resnet = _Rename(f"output_blocks.{index + j}.0", _UNET_RESNET_RENAMES)
            renames[f"up_blocks.{block}.resnets.{j}"] = resnet
            renames[f"up_blocks.{block}.attentions.{j}"] = _Rename(f"output_blocks.{index + j}.1")
        if parts.resampler:
            # Position 1 in the original Sequential when there is no attention before it, else 2.
            slot = 2 if parts.attentions else 1
            last = index + parts.resnets - 1
            renames[f"up_blocks.{block}.upsamplers.0.conv"] = _Rename(
                f"output_blocks.{last}.{slot}.conv"
            )
        index += parts.resnets
    return renames


def _unet_renames(keys: list[str]) -> dict[str, _Rename]:
    renames = {name: _Rename(target) for name, target in _UNET_FIXED.items()}
    renames["mid_block.resnets.0"] = _Rename("middle_block.0", _UNET_RESNET_RENAMES)
    renames["mid_block.attentions.0"] = _Rename("middle_block.1")
    renames["mid_block.resnets.1"] = _Rename("middle_block.2", _UNET_RESNET_RENAMES)
    renames.update(_unet_down_renames(_block_layout(keys, "down_blocks")))
    renames.update(_unet_up_renames(_block_layout(keys, "up_blocks")))
    return renames


def _vae_side_renames(keys: list[str], side: str) -> dict[str, _Rename]:
    """Renames of encoder or decoder blocks; the decoder numbers its up blocks in reverse."""
    stack = "down_blocks" if side == "encoder" else "up_blocks"
    layout = _block_layout(keys, f"{side}.{stack}")
    renames: dict[str, _Rename] = {}
    for block, parts in enumerate(layout):
        target = block if side == "encoder" else len(layout) - 1 - block
        original = f"{side}.{'down' if side == 'encoder' else 'up'}.{target}"
        for j in range(parts.resnets):
            resnet = _Rename(f"{original}.block.{j}", _VAE_RESNET_RENAMES)
            renames[f"{side}.{stack}.{block}.resnets.{j}"] = resnet
        if parts.resampler:
            sampler = "downsample" if side == "encoder" else "upsample"
            renames[f"{side}.{stack}.{block}.{sampler}rs.0.conv"] = _Rename(
                f"{original}.{sampler}.conv"
            )
    for j in (0, 1):
        renames[f"{side}.mid_block.resnets.{j}"] = _Rename(
            f"{side}.mid.block_{j + 1}", _VAE_RESNET_RENAMES
        )
    renames[f"{side}.mid_block.attentions.0"] = _Rename(
        f"{side}.mid.attn_1", _VAE_ATTENTION_RENAMES
    )
    return renames


def _vae_renames(keys: list[str]) -> dict[str, _Rename]:
    renames = {name: _Rename(target) for name, target in _VAE_FIXED.items()}
    renames.update(_vae_side_renames(keys, "encoder"))
    renames.update(_vae_side_renames(keys, "decoder"))
    return renames


def _rename_inner(rest: str, inner: Mapping[str, str]) -> str:
    """Rename the leading sub-module of ``rest`` (e.g. "norm1.weight" -> "in_layers.0.weight")."""
    for old, new in inner.items():
        if rest.startswith(old + "."):
            return new + rest[len(old) :]
    return rest


def _apply_renames(keys: list[str], renames: Mapping[str, _Rename], what: str) -> dict[str, str]:
    """Map every key through the longest matching sub-module prefix; unknown keys are refused."""
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for key in keys:
        parts = key.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            rename = renames.get(".".join(parts[:cut]))
            if rename is not None:
                rest = _rename_inner(".".join(parts[cut:]), rename.inner)
                mapping[key] = f"{rename.target}.{rest}"
                break
        else:
            unknown.append(key)
    if unknown:
        shown = ", ".join(sorted(unknown)[:5])
        raise UnsupportedModelError(
            f"The {what} holds {len(unknown)} weights that a Stable Diffusion 1.x model does not "
            f"have (for example {shown}). This is a different architecture; use an SD 1.x model."
        )
    return mapping


def unet_key_map(keys: Iterable[str]) -> dict[str, str]:
    """diffusers UNet2DConditionModel key -> original ``diffusion_model`` key (no prefix)."""
    key_list = list(keys)
    return _apply_renames(key_list, _unet_renames(key_list), "UNet")


def vae_key_map(keys: Iterable[str]) -> dict[str, str]:
    """diffusers AutoencoderKL key -> original ``first_stage_model`` key (no prefix)."""
    key_list = list(keys)
    return _apply_renames(key_list, _vae_renames(key_list), "VAE")


def convert_unet_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a diffusers UNet state dict to the original layout; shapes are the same in both."""
    return {new: state[old] for old, new in unet_key_map(state).items()}


def convert_vae_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a diffusers VAE state dict to the original layout, Linear attention -> 1x1 conv."""
    converted: dict[str, torch.Tensor] = {}
    for old, new in vae_key_map(state).items():
        tensor = state[old]
        if _VAE_CONV_ATTENTION.match(new) and tensor.ndim == 2:
            tensor = tensor.reshape(*tensor.shape, 1, 1)  # (C, C) -> (C, C, 1, 1), a view
        converted[new] = tensor
    return converted


def convert_text_encoder_state_dict(
    state: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """transformers CLIPTextModel keys -> keys relative to ``text_model.`` (both layouts exist).

    transformers before 5.6 saved ``text_model.encoder...``; later versions save ``encoder...``.
    ``position_ids`` is a constant buffer that single-file loaders ignore, so it is dropped.
    """
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith("position_ids"):
            continue
        converted[key.removeprefix("text_model.")] = tensor
    return converted
