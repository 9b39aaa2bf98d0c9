"""What a checkpoint is, read from tensor names and shapes alone.

Everything here works on ``key -> shape`` mappings, so it runs on a safetensors header before a
single tensor is read, and scaled-down test models are recognised exactly like real ones.
It imports no torch (the model configs only inside the functions that build them), so the model
library classifies files with these same rules while it scans.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from engine.errors import MissingComponentError, NotACheckpointError, UnsupportedModelError
from engine.family import FAMILIES, SD1, ModelFamily, Shapes

if TYPE_CHECKING:
    from engine.models.unet import UNetConfig
    from engine.models.vae import VAEConfig

# SD2 and SDXL files use SD1's CompVis prefixes too: what tells the families apart is below them.
_COMPVIS_UNET_PREFIX = SD1.unet_prefix
_COMPVIS_VAE_PREFIX = SD1.vae_prefix

# A CLIP text encoder saved alone, with or without the SD prefix, old or new transformers layout.
_TEXT_ENCODER_PREFIXES = ("cond_stage_model.", "text_model.", "embeddings.", "encoder.layers.")

# kohya ("lora_down."), old diffusers ("to_q_lora.down."), PEFT ("lora_A."), LyCORIS variants.
LORA_MARKERS = ("lora_down.", "lora.down.", ".lora_A.", ".hada_w1_a", ".lokr_w1")
LORA_PREFIXES = ("lora_unet_", "lora_te")
# Textual-inversion files: A1111 .pt/.safetensors ("string_to_param", "emb_params"), SDXL pairs.
EMBEDDING_KEYS = ("string_to_param.", "emb_params", "clip_l", "clip_g")
# ControlNets: CompVis ("control_model." prefix, hint encoder, zero convs) and diffusers layouts.
CONTROLNET_PREFIXES = ("control_model.", "controlnet_")
CONTROLNET_MARKERS = ("input_hint_block.", "zero_convs.")

_LOAD_A_CHECKPOINT = "Load a full Stable Diffusion 1.x checkpoint (such as v1-5-pruned-emaonly)"


def _indices(shapes: Shapes, pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (a regex with one group) over the keys."""
    regex = re.compile(pattern)
    found = {int(m.group(1)) for key in shapes if (m := regex.match(key))}
    return sorted(found)


def _require(shapes: Shapes, key: str, what: str) -> tuple[int, ...]:
    if key not in shapes:
        raise MissingComponentError(
            f"The {what} weights are incomplete: '{key}' is missing. The file is damaged or "
            f"not a Stable Diffusion 1.x checkpoint. {_LOAD_A_CHECKPOINT}."
        )
    return tuple(shapes[key])


# --- UNet -----------------------------------------------------------------------------------


def _input_levels(shapes: Shapes) -> list[list[int]]:
    """input_blocks indices (after the stem conv) grouped by resolution level."""
    levels: list[list[int]] = [[]]
    for i in _indices(shapes, r"input_blocks\.(\d+)\.")[1:]:
        if f"input_blocks.{i}.0.op.weight" in shapes:
            levels.append([])  # a Downsample closes the level
        else:
            levels[-1].append(i)
    return levels


def _transformer_depth(shapes: Shapes, prefix: str) -> int:
    return len(_indices(shapes, re.escape(prefix) + r"transformer_blocks\.(\d+)\."))


def unet_config_from_shapes(shapes: Shapes, family: ModelFamily) -> UNetConfig:
    """The UNetConfig of a ``family`` UNet state dict (keys without the family's prefix)."""
    from engine.models.unet import UNetConfig  # torch: only when a model is built

    stem = _require(shapes, "input_blocks.0.0.weight", "UNet")  # (mc, in, 3, 3)
    mc, in_channels = stem[0], stem[1]
    out_channels = _require(shapes, "out.2.weight", "UNet")[0]
    mult, res_counts, attention, depths = [], set(), [], set()
    for level, blocks in enumerate(_input_levels(shapes)):
        if not blocks:
            raise UnsupportedModelError("This UNet has a resolution level without ResBlocks.")
        width = _require(shapes, f"input_blocks.{blocks[0]}.0.out_layers.3.weight", "UNet")[0]
        mult.append(width // mc)
        res_counts.add(len(blocks))
        with_attn = [f"input_blocks.{i}.1.proj_in.weight" in shapes for i in blocks]
        if any(with_attn):
            attention.append(level)
            depths |= {_transformer_depth(shapes, f"input_blocks.{i}.1.") for i in blocks}
        if any(with_attn) != all(with_attn):
            raise UnsupportedModelError("This UNet mixes blocks with and without attention.")
    depths.add(_transformer_depth(shapes, "middle_block.1."))
    if len(res_counts) != 1 or len(depths) != 1:
        raise UnsupportedModelError(
            "This UNet varies its depth from level to level (as SDXL does); only SD 1.x "
            "layouts are supported. " + _LOAD_A_CHECKPOINT + "."
        )
    context = _first_context_dim(shapes)
    return UNetConfig(
        in_channels=in_channels,
        out_channels=out_channels,
        model_channels=mc,
        channel_mult=tuple(mult),
        num_res_blocks=res_counts.pop(),
        attention_levels=tuple(attention),
        num_heads=family.unet_heads,
        context_dim=context,
        transformer_depth=depths.pop(),
    )


def _first_context_dim(shapes: Shapes) -> int:
    """Cross-attention input width, from any attn2.to_k weight (out, context)."""
    for key, shape in shapes.items():
        if key.endswith("attn2.to_k.weight"):
            return shape[1]
    raise UnsupportedModelError(
        "This UNet has no cross-attention to a text prompt, so it is not a text-to-image "
        "Stable Diffusion model. " + _LOAD_A_CHECKPOINT + "."
    )


# --- VAE ------------------------------------------------------------------------------------


def vae_config_from_shapes(shapes: Shapes) -> VAEConfig:
    """The VAEConfig of a VAE state dict (keys without ``first_stage_model.``)."""
    from engine.models.vae import VAEConfig  # torch: only when a model is built

    conv_in = _require(shapes, "encoder.conv_in.weight", "VAE")  # (ch, 3, 3, 3)
    ch = conv_in[0]
    levels = _indices(shapes, r"encoder\.down\.(\d+)\.")
    if not levels:
        raise MissingComponentError("The VAE has no encoder levels. " + _LOAD_A_CHECKPOINT + ".")
    mult = [
        _require(shapes, f"encoder.down.{i}.block.0.conv2.weight", "VAE")[0] // ch for i in levels
    ]
    blocks = _indices(shapes, r"encoder\.down\.0\.block\.(\d+)\.")
    return VAEConfig(
        ch=ch,
        ch_mult=tuple(mult),
        num_res_blocks=len(blocks),
        z_channels=_require(shapes, "decoder.conv_in.weight", "VAE")[1],
        embed_dim=_require(shapes, "post_quant_conv.weight", "VAE")[1],
        in_channels=conv_in[1],
        out_channels=_require(shapes, "decoder.conv_out.weight", "VAE")[0],
    )


# --- family -----------------------------------------------------------------------------------


def _any(shapes: Shapes, *, prefix: tuple[str, ...] = (), contains: tuple[str, ...] = ()) -> bool:
    """Whether a key starts with one of ``prefix`` or holds one of ``contains``."""
    if prefix and any(k.startswith(prefix) for k in shapes):
        return True
    keys = "\n".join(shapes) if contains else ""  # one substring search per marker, in C
    return any(c in keys for c in contains)


def file_kind(shapes: Shapes) -> str:
    """What a file holds, from its key names alone: "lora", "embedding", "controlnet",
    "checkpoint" (a CompVis UNet with or without the rest), "vae", "text-encoder",
    "vae+text-encoder", "unet" (diffusers layout, alone) or "unknown"."""
    if _any(shapes, prefix=LORA_PREFIXES, contains=LORA_MARKERS):
        return "lora"
    if _any(shapes, prefix=EMBEDDING_KEYS):
        return "embedding"
    if _any(shapes, prefix=CONTROLNET_PREFIXES, contains=CONTROLNET_MARKERS):
        return "controlnet"
    if _any(shapes, prefix=(_COMPVIS_UNET_PREFIX,)):
        return "checkpoint"
    has_vae = _any(shapes, prefix=(_COMPVIS_VAE_PREFIX, "encoder.conv_in.", "decoder.conv_in."))
    has_text = _any(shapes, prefix=_TEXT_ENCODER_PREFIXES)
    if has_vae or has_text:
        return {(True, False): "vae", (False, True): "text-encoder"}.get(
            (has_vae, has_text), "vae+text-encoder"
        )
    if _any(shapes, prefix=("input_blocks.", "down_blocks.", "conv_in.")):
        return "unet"
    return "unknown"


def _part_message(part: str, has_vae: bool) -> str:
    return f"This file holds {part}, not a whole model. {_LOAD_A_CHECKPOINT}" + (
        "; a separate VAE can replace the checkpoint's own one." if has_vae else "."
    )


_NOT_A_CHECKPOINT = {
    "lora": "This is a LoRA, not a checkpoint: it only modifies a model. "
    + _LOAD_A_CHECKPOINT
    + " and apply the LoRA on top of it.",
    "embedding": "This is a textual-inversion embedding, not a checkpoint: it adds a word to a "
    f"model's vocabulary. {_LOAD_A_CHECKPOINT} and use the embedding with it.",
    "controlnet": "This is a ControlNet, not a checkpoint: it guides a model but cannot generate "
    "alone. " + _LOAD_A_CHECKPOINT + ".",
    "vae": _part_message("only a VAE (the image decoder)", True),
    "text-encoder": _part_message("only a text encoder", False),
    "vae+text-encoder": _part_message("a VAE and a text encoder but no UNet", True),
    "unet": "This file holds only a UNet, without its VAE and text encoder. "
    + _LOAD_A_CHECKPOINT
    + ", or open the whole diffusers folder it came from.",
    "unknown": "This file is not a Stable Diffusion checkpoint: it has none of the expected "
    "weights (model.diffusion_model.*). " + _LOAD_A_CHECKPOINT + ".",
}


def _reject_non_checkpoints(shapes: Shapes) -> None:
    """Files people mistake for checkpoints: LoRAs, embeddings, ControlNets, lone components."""
    kind = file_kind(shapes)
    if kind != "checkpoint":
        raise NotACheckpointError(_NOT_A_CHECKPOINT[kind])


def _unsupported(what: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"This is {what}, which Latentdesk cannot run yet: only Stable Diffusion 1.x models are "
        f"supported. {_LOAD_A_CHECKPOINT}, or a model fine-tuned from SD 1.x."
    )


# Checkpoints of families this engine cannot run: (family id or None, what to call them).
_SDXL = ("sdxl", "an SDXL checkpoint")
_SD2_OPENCLIP = ("sd2", "a Stable Diffusion 2.x checkpoint (OpenCLIP text encoder)")
_SD2 = ("sd2", "a Stable Diffusion 2.x checkpoint")
_UNKNOWN_LAYOUT = (None, "a diffusion model with an unknown layout (not a CompVis UNet)")


def foreign_family(shapes: Shapes) -> tuple[str | None, str] | None:
    """(family id, description) of a CompVis checkpoint that is not SD 1.x (SD 2.x, SDXL, an
    unknown UNet layout), or None when it may be SD 1.x. Raises UnsupportedModelError for a
    UNet without cross-attention (not text-to-image)."""
    if (
        _any(shapes, prefix=("conditioner.embedders.",))
        or f"{_COMPVIS_UNET_PREFIX}label_emb.0.0.weight" in shapes
    ):
        return _SDXL
    if _any(shapes, prefix=("cond_stage_model.model.",)):
        return _SD2_OPENCLIP
    unet = unet_shapes(shapes)
    if "input_blocks.0.0.weight" not in unet or "out.2.weight" not in unet:
        return _UNKNOWN_LAYOUT
    proj_in = unet.get("input_blocks.1.1.proj_in.weight") or unet.get(
        "middle_block.1.proj_in.weight"
    )
    context = _first_context_dim(unet)
    if (proj_in is not None and len(proj_in) == 2) or context == 1024:
        return _SD2
    if context in (1280, 2048):
        return _SDXL
    return None


def _reject_other_families(shapes: Shapes) -> None:
    found = foreign_family(shapes)
    if found is not None:
        raise _unsupported(found[1])


def unet_shapes(shapes: Shapes) -> dict[str, tuple[int, ...]]:
    """The CompVis UNet's entries of a whole checkpoint, without ``model.diffusion_model.``."""
    n = len(_COMPVIS_UNET_PREFIX)
    return {k[n:]: s for k, s in shapes.items() if k.startswith(_COMPVIS_UNET_PREFIX)}


def _unknown_unet(unet: Shapes) -> UnsupportedModelError:
    """A CompVis UNet that no family takes: name it by its input channels."""
    in_channels = unet["input_blocks.0.0.weight"][1]
    kinds = {8: "an InstructPix2Pix model", 5: "a depth-conditioned model"}
    return _unsupported(kinds.get(in_channels, f"a UNet with {in_channels} input channels"))


def detect_family(full_shapes: Shapes) -> ModelFamily:
    """The model family of a whole checkpoint (keys with their prefixes), or an error.

    Raises NotACheckpointError for files that are not full models (LoRA, ControlNet, VAE or
    text encoder alone), UnsupportedModelError for SD 2.x, SDXL and other architectures.
    """
    if not full_shapes:
        raise NotACheckpointError("This file holds no tensors. " + _LOAD_A_CHECKPOINT + ".")
    _reject_non_checkpoints(full_shapes)
    _reject_other_families(full_shapes)
    unet = unet_shapes(full_shapes)
    for family in FAMILIES.values():
        if family.matches_unet(unet):
            return family
    raise _unknown_unet(unet)
