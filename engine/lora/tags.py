"""What ``<lora:...>`` tags ask for: a name and two multipliers.

We follow A1111 (``extensions-builtin/Lora/extra_networks_lora.py``). The issue that asked for
LoRA wrote the UNet weight first (``<lora:NAME:unet:te>``); A1111 reads the text-encoder weight
first, and A1111 compatibility wins: prompts copied from A1111 pictures (and their metadata,
which we write and read the same way) must mean the same here. So:

- ``<lora:name>``: both multipliers 1.
- ``<lora:name:te>``: the first number is the text-encoder multiplier, and the UNet one
  defaults to it (so ``<lora:name:0.8>`` is 0.8 for both).
- ``<lora:name:te:unet>``: the second number is the UNet multiplier.
- Named items override the positional ones: ``te=0.5``, ``unet=1``. A fourth positional item
  or ``dyn=`` (A1111's dynamic rank) is accepted and has no effect.

Only the positive prompt's tags apply a LoRA, as in A1111, whose processing parses the prompts
for extra networks and passes the negative prompts to the text encoder as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.errors import InvalidRequestError
from engine.prompts.extra_networks import ExtraNetworkTag, split_extra_networks

KIND = "lora"


@dataclass(frozen=True)
class LoraTag:
    name: str  # as written in the prompt
    te: float  # text-encoder multiplier
    unet: float  # UNet multiplier


def lora_tags(prompt: str) -> list[LoraTag]:
    """The ``<lora:...>`` tags of a prompt, in order; InvalidRequestError for a bad number."""
    _, tags = split_extra_networks(prompt)
    return [_lora_tag(tag) for tag in tags if tag.kind == KIND]


def _lora_tag(tag: ExtraNetworkTag) -> LoraTag:
    if not tag.name:
        raise InvalidRequestError("A <lora:...> tag has no name: write <lora:NAME:0.8>.")
    items = tag.positional
    te = _number(tag, items[1]) if len(items) > 1 else 1.0
    te = _number(tag, tag.named["te"]) if "te" in tag.named else te
    unet = _number(tag, items[2]) if len(items) > 2 else te
    unet = _number(tag, tag.named["unet"]) if "unet" in tag.named else unet
    return LoraTag(tag.name, te, unet)


def _number(tag: ExtraNetworkTag, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidRequestError(
            f'The LoRA tag for "{tag.name}" has "{text}" where a weight belongs. Write it as '
            f"<lora:{tag.name}:0.8> (text encoder and UNet) or <lora:{tag.name}:0.5:1>."
        )
    return value
