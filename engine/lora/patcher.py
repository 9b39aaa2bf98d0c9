"""Put LoRA updates into the loaded weights and take them out again, exactly.

A patched weight is ``W + sum(multiplier * scale * up @ down)``, computed in float32 from the
original ``W`` (one ``addmm`` per LoRA) and written once in the model's dtype. Removal never
subtracts: in float16 or bfloat16 ``(W + d) - d`` is not ``W``. The original of every patched
weight is kept and put back, so the base weights after apply-and-remove are the same bits in
every dtype. A weight's value is always computed from its original and the updates wanted now,
never from what an earlier job left, so the same request gives the same bits whatever ran
before.

Where the originals are kept (``offload``):

- CPU (``offload=False``): the parameter is given a new tensor with the patched values and the
  original tensor is kept as it is. No copy is made; the cost is one extra tensor per patched
  weight, in the model's dtype, while a LoRA is applied. The originals are never written, which
  also matters because they may be pages of the memory-mapped checkpoint file.
- GPU (``offload=True``): the original is copied to host memory once and the weight is patched
  in place, so the device holds no second copy (only the float32 scratch of one weight at a
  time); the cost is host RAM for the patched weights, and one copy back on removal.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import torch

from engine.lora.formats import LoraLayer
from engine.lora.targets import Target


@dataclass(frozen=True)
class Update:
    """One LoRA layer's share of one weight."""

    source: Hashable  # the file version and layer it comes from
    multiplier: float
    layer: LoraLayer


def fits(layer: LoraLayer, weight: torch.Tensor) -> bool:
    """Whether ``up @ down`` has the weight's output width and size (a LoCon down may be 3x3,
    its up must be 1x1; a linear update fits a 1x1 convolution, as A1111 allows)."""
    down, up = layer.down, layer.up
    if down.dim() == 4 and tuple(up.shape[2:]) != (1, 1):
        return False
    numel = up.shape[0] * math.prod(down.shape[1:])
    return up.shape[0] == weight.shape[0] and numel == weight.numel()


def add_update(value: torch.Tensor, layer: LoraLayer, factor: float) -> None:
    """value += factor * scale * up @ down, in place; value is float32 and contiguous, so the
    product is added without another weight-sized tensor."""
    down = layer.down.to(value.device, torch.float32).flatten(1)  # (r, in * kh * kw)
    up = layer.up.to(value.device, torch.float32).flatten(1)  # (out, r)
    value.view(value.shape[0], -1).addmm_(up, down, alpha=factor * layer.scale)


class WeightPatcher:
    """The LoRA updates currently in a model's weights, and the originals they replaced."""

    def __init__(self, offload: bool = False) -> None:
        self.offload = offload
        self._originals: dict[str, torch.Tensor] = {}
        self._applied: dict[str, tuple[tuple[Hashable, float], ...]] = {}
        self._targets: dict[str, Target] = {}
        self.computed = 0  # weights written since this patcher was made (0 when nothing changed)

    @property
    def patched(self) -> int:
        return len(self._applied)

    @property
    def kept_bytes(self) -> int:
        """Memory held for removal: the originals (offload) or the patched copies (CPU)."""
        if self.offload:
            return sum(t.numel() * t.element_size() for t in self._originals.values())
        return sum(
            self._weight(key).numel() * self._weight(key).element_size() for key in self._applied
        )

    @torch.no_grad()
    def set(self, wanted: Mapping[str, tuple[Target, Sequence[Update]]]) -> int:
        """Make the weights hold exactly ``wanted`` (target key -> its updates); weights whose
        updates are unchanged are not touched. Returns how many weights were written."""
        written = 0
        for key in [k for k in self._applied if k not in wanted]:
            self._restore(key)
            written += 1
        for key, (target, updates) in wanted.items():
            identity = tuple((u.source, u.multiplier) for u in updates)
            if self._applied.get(key) == identity:
                continue
            self._patch(key, target, updates)
            self._applied[key] = identity
            written += 1
        self.computed += written
        return written

    def clear(self) -> None:
        """Every weight back to its original."""
        self.set({})

    def _weight(self, key: str) -> torch.Tensor:
        return self._targets[key].weight

    def _patch(self, key: str, target: Target, updates: Sequence[Update]) -> None:
        self._targets[key] = target
        weight = self._weight(key)
        original = self._originals.get(key)
        if original is None:
            original = weight.detach().to("cpu", copy=True) if self.offload else weight.data
            self._originals[key] = original
        value = torch.empty(original.shape, dtype=torch.float32, device=weight.device)
        value.copy_(original)  # a float32 copy in the default layout: added to in place
        for update in updates:
            add_update(value, update.layer, update.multiplier)
        if self.offload:
            weight.data.copy_(value)  # rounds to the model's dtype, keeps the layout
        else:
            patched = torch.empty_like(original)  # same dtype and strides (channels-last)
            patched.copy_(value)
            weight.data = patched

    def _restore(self, key: str) -> None:
        original = self._originals.pop(key)
        if self.offload:
            self._weight(key).data.copy_(original)
        else:
            self._weight(key).data = original
        del self._applied[key], self._targets[key]
