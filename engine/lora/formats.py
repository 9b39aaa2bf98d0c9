"""LoRA files: read one and group its tensors into layers (down, up, alpha), whatever the format.

The formats, by their key names (as their writers define them):

- kohya-ss sd-scripts ``networks/lora.py``, the format A1111 reads: ``lora_unet_<module>`` and
  ``lora_te_<module>`` with ``.lora_down.weight`` (rank, in[, kh, kw]), ``.lora_up.weight``
  (out, rank[, 1, 1]) and ``.alpha`` (a scalar; the update is scaled by alpha / rank, 1 without
  it). ``<module>`` is the module path with ``.`` written ``_``: diffusers' UNet names in SD1
  files (``down_blocks_0_attentions_0_...``), the original LDM names in SDXL files and some
  converters (``input_blocks_1_1_...``), transformers' names for CLIP. LyCORIS LoCon uses the
  same keys for convolutions (a 3x3 down with a 1x1 up).
- diffusers before PEFT (``loaders/lora_pipeline.py``): ``unet.<module>.lora.down.weight``,
  ``text_encoder.<module>.lora_linear_layer.down.weight``, and attention processors
  ``...attn1.processor.to_q_lora.down.weight``; ``.alpha`` when converted from kohya.
- PEFT, diffusers' ``save_lora_weights`` since 0.22: ``unet.<module>.lora_A.weight`` (down) and
  ``.lora_B.weight`` (up); raw PEFT saves prefix ``base_model.model.``. Alpha is not a tensor:
  diffusers >= 0.33 writes it to the safetensors metadata (``lora_adapter_metadata``, a JSON
  object with ``unet.lora_alpha``, ``unet.alpha_pattern``, ...); without it alpha = rank.
- LyCORIS LoHa (``hada_w1_a``...), LoKr (``lokr_w1``...), OFT, DoRA and Tucker-decomposed
  LoCon (``lora_mid``) are recognised and refused by name.

Nothing is unpickled: safetensors files are read as such, ``.pt``/``.ckpt`` LoRAs only through
``torch.load(weights_only=True)`` (engine.loading.checkpoint).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.errors import CheckpointError
from engine.loading.file_metadata import read_raw_metadata
from engine.lora.errors import LoraError, UnsupportedLoraError

# Key fragments of network types we recognise but do not apply, with what to call them.
REFUSED_MARKERS = {
    ".hada_w1_a": "a LoHa (LyCORIS)",
    ".hada_w2_a": "a LoHa (LyCORIS)",
    ".lokr_w1": "a LoKr (LyCORIS)",
    ".lokr_w2": "a LoKr (LyCORIS)",
    ".oft_blocks": "an OFT (LyCORIS)",
    ".oft_diag": "an OFT (LyCORIS)",
    ".dora_scale": "a DoRA",
    ".lora_magnitude_vector": "a DoRA",
    ".lora_mid.": "a LoCon with a Tucker decomposition (lora_mid)",
}

# (key suffix, role, format); the first match wins, so longer suffixes come first.
_SUFFIXES = (
    (".lora_down.weight", "down", "kohya"),
    (".lora_up.weight", "up", "kohya"),
    (".lora_linear_layer.down.weight", "down", "diffusers"),
    (".lora_linear_layer.up.weight", "up", "diffusers"),
    ("_lora.down.weight", "down", "diffusers"),  # attention processors: to_q_lora
    ("_lora.up.weight", "up", "diffusers"),
    (".lora.down.weight", "down", "diffusers"),
    (".lora.up.weight", "up", "diffusers"),
    (".alpha", "alpha", ""),
)
_PEFT_KEY = re.compile(r"^(?P<base>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")

SDXL_PREFIXES = ("lora_te1_", "lora_te2_", "text_encoder_2.")
_UNET_HEADS = {
    "down_blocks",
    "up_blocks",
    "mid_block",
    "conv_in",
    "conv_out",
    "conv_norm_out",
    "time_embedding",
    "input_blocks",
    "middle_block",
    "output_blocks",
    "time_embed",
    "out",
}
_TEXT_HEADS = {"text_model", "encoder", "embeddings", "final_layer_norm"}


@dataclass(frozen=True)
class LoraLayer:
    """One low-rank update: delta W = scale * up @ down, for one module of the model."""

    component: str  # "unet" or "te" (the text encoder)
    module: str  # as the file names it, after the component prefix
    dotted: bool  # "down_blocks.0..." (diffusers, PEFT) rather than "down_blocks_0_..." (kohya)
    down: torch.Tensor = field(repr=False)  # (rank, in) or (rank, in, kh, kw)
    up: torch.Tensor = field(repr=False)  # (out, rank) or (out, rank, 1, 1)
    scale: float  # alpha / rank, or what the file's metadata says

    @property
    def rank(self) -> int:
        return self.down.shape[0]


@dataclass(frozen=True)
class LoraFile:
    path: Path
    format: str  # "kohya", "diffusers" or "peft"
    layers: tuple[LoraLayer, ...]
    metadata: Mapping[str, str]  # the safetensors header's __metadata__ ({} for pickles)
    sdxl: bool  # keys that only SDXL LoRAs have (a second text encoder)
    ignored: int  # tensors that are part of no layer (biases, a lone down or up, ...)


def read_lora(path: Path) -> LoraFile:
    """Read and parse a LoRA file; LoraError (naming the file) when it cannot be used."""
    tensors, metadata = _read_tensors(path)
    return parse_lora(path, tensors, metadata)


def parse_lora(
    path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]
) -> LoraFile:
    refuse_unsupported(path, tensors)
    groups: dict[str, dict[str, Any]] = {}
    formats: set[str] = set()
    ignored = 0
    for key, tensor in tensors.items():
        found = _role(key)
        if found is None:
            ignored += 1
            continue
        base, role, fmt = found
        groups.setdefault(base, {})[role] = tensor
        if fmt:
            formats.add(fmt)
    alphas = _peft_alphas(metadata)
    layers = []
    for base, parts in groups.items():
        layer = _layer(base, parts, alphas)
        if layer is None:
            ignored += len(parts)
        else:
            layers.append(layer)
    fmt = "peft" if "peft" in formats else "diffusers" if "diffusers" in formats else "kohya"
    sdxl = any(k.removeprefix("base_model.model.").startswith(SDXL_PREFIXES) for k in tensors)
    return LoraFile(path, fmt, tuple(layers), dict(metadata), sdxl, ignored)


def refuse_unsupported(path: Path, keys) -> None:
    for key in keys:
        for marker, what in REFUSED_MARKERS.items():
            if marker in key:
                raise UnsupportedLoraError(
                    f"{path.name} is {what} network, which this version cannot apply (only LoRA "
                    "and LoCon are supported). Remove its tag from the prompt, or use a LoRA."
                )


def _role(key: str) -> tuple[str, str, str] | None:
    """(layer base name, "down" / "up" / "alpha", format) of a key, or None."""
    match = _PEFT_KEY.match(key)
    if match:
        return match["base"], "down" if match["ab"] == "A" else "up", "peft"
    for suffix, role, fmt in _SUFFIXES:
        if key.endswith(suffix):
            base = key[: -len(suffix)]
            if suffix.startswith("_lora."):  # "...attn1.processor.to_q" -> "...attn1.to_q"
                base = base.replace(".processor.", ".")
                base = base + ".0" if base.endswith(".to_out") else base
            return base, role, fmt
    return None


def _layer(base: str, parts: dict[str, Any], alphas: _PeftAlphas) -> LoraLayer | None:
    down, up = parts.get("down"), parts.get("up")
    if down is None or up is None or down.dim() not in (2, 4) or up.dim() != down.dim():
        return None
    where = _component(base)
    if where is None:
        return None
    component, module, dotted = where
    rank = down.shape[0]
    if up.shape[1] != rank or rank == 0:
        return None
    alpha = parts.get("alpha")
    if alpha is not None and alpha.numel() == 1:
        scale = float(alpha.float().item()) / rank
    else:
        scale = alphas.scale(component, module, rank)
    return LoraLayer(component, module, dotted, down, up, scale)


def _component(base: str) -> tuple[str, str, bool] | None:
    """("unet" or "te", the module name after its prefix, dotted?) or None."""
    name = base.removeprefix("base_model.model.")
    if name.startswith("lora_unet_"):
        return "unet", name.removeprefix("lora_unet_"), False
    if name.startswith("lora_te_"):
        return "te", name.removeprefix("lora_te_"), False
    for prefix, component in (("unet.", "unet"), ("text_encoder.", "te")):
        if name.startswith(prefix):
            return component, name.removeprefix(prefix), True
    head = name.split(".", 1)[0]
    if head in _UNET_HEADS:
        return "unet", name, True
    if head in _TEXT_HEADS:
        return "te", name, True
    return None


@dataclass(frozen=True)
class _PeftAlphas:
    """PEFT's alphas from diffusers' ``lora_adapter_metadata``: one per component, with
    per-module exceptions; scale = alpha / rank (alpha / sqrt(rank) with rsLoRA)."""

    config: Mapping[str, Any]

    def scale(self, component: str, module: str, rank: int) -> float:
        prefix = "unet" if component == "unet" else "text_encoder"
        alpha = self.config.get(f"{prefix}.lora_alpha")
        pattern = self.config.get(f"{prefix}.alpha_pattern")
        if isinstance(pattern, dict):
            for key, value in pattern.items():  # PEFT matches a pattern at the name's end
                if module == key or module.endswith("." + key):
                    alpha = value
        if not isinstance(alpha, int | float) or isinstance(alpha, bool):
            return 1.0
        root = math.sqrt(rank) if self.config.get(f"{prefix}.use_rslora") is True else rank
        return float(alpha) / root


def _peft_alphas(metadata: Mapping[str, str]) -> _PeftAlphas:
    try:
        config = json.loads(metadata.get("lora_adapter_metadata", "{}"))
    except (TypeError, ValueError, RecursionError):
        config = {}
    return _PeftAlphas(config if isinstance(config, dict) else {})


# --- reading ---------------------------------------------------------------------------------


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from engine.loading.checkpoint import (
        load_pickle_checkpoint,
        load_safetensors,
        sniff_format,
        unwrap_state_dict,
    )

    try:
        if sniff_format(path) == "safetensors":
            return load_safetensors(path), read_raw_metadata(path)
        return unwrap_state_dict(load_pickle_checkpoint(path)), {}
    except CheckpointError as e:
        raise LoraError(f"The LoRA {path.name} cannot be read: {e}") from None
    except OSError as e:
        raise LoraError(f"The LoRA {path} cannot be read ({e.strerror or e}).") from None
