"""What the UNet is conditioned on besides x and the timestep, as one value (sgm's ``cond``).

A new kind of conditioning (an inpainting mask, SDXL's pooled vector) is a field here, not a new
parameter threaded through the denoiser, the guidance and every sampler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Conditioning:
    """One batch of conditioning; every tensor's first dimension is the batch.

    ``context`` (B, T, D): cross-attention states, the prompt (may later change per step, for
    prompt editing). ``concat`` (B, C, h, w): channels joined to the UNet input after the c_in
    scaling (inpainting: mask and masked-image latents, which are not noised). ``vector``
    (B, V): SDXL's pooled text and size embedding, the UNet's ``y``.
    """

    context: torch.Tensor
    concat: torch.Tensor | None = None
    vector: torch.Tensor | None = None

    @property
    def batch(self) -> int:
        return self.context.shape[0]

    def expand_to(self, batch: int) -> Conditioning:
        """This conditioning for ``batch`` latents: each tensor of batch 1 is broadcast (one
        prompt or mask for a whole batch, as a view, without copies); others must match."""
        return Conditioning(
            context=_fit_batch(self.context, batch),
            concat=None if self.concat is None else _fit_batch(self.concat, batch),
            vector=None if self.vector is None else _fit_batch(self.vector, batch),
        )


def _fit_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    if t.shape[0] == batch:
        return t
    if t.shape[0] != 1:
        raise ValueError(f"conditioning batch {t.shape[0]} does not match latent batch {batch}")
    return t.expand(batch, *t.shape[1:])


def cat_conditioning(parts: Sequence[Conditioning]) -> Conditioning:
    """Join along the batch (CFG: uncond then cond, evaluated in one UNet call)."""
    return Conditioning(
        context=torch.cat([p.context for p in parts]),
        concat=_cat_optional([p.concat for p in parts], "concat"),
        vector=_cat_optional([p.vector for p in parts], "vector"),
    )


def _cat_optional(tensors: list[torch.Tensor | None], name: str) -> torch.Tensor | None:
    present = [t for t in tensors if t is not None]
    if not present:
        return None
    if len(present) != len(tensors):
        raise ValueError(f"cannot batch conditionings where only some have a {name}")
    return torch.cat(present)


@dataclass(frozen=True)
class ConditioningSchedule:
    """Conditioning that changes during sampling (prompt editing, alternation).

    ``entries``: (until_step, conditioning) with ``until_step`` increasing; sampler step ``s``
    (counted from 1) uses the first entry whose ``until_step >= s``; steps past the last entry
    use the last. Each distinct prompt is encoded once and may appear in several entries.
    """

    entries: tuple[tuple[int, Conditioning], ...]

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("a conditioning schedule needs at least one entry")
        ends = [end for end, _ in self.entries]
        if ends != sorted(ends):
            raise ValueError(f"schedule steps must increase: {ends}")

    @classmethod
    def constant(cls, cond: Conditioning) -> ConditioningSchedule:
        return cls(((1, cond),))

    @property
    def is_constant(self) -> bool:
        first = self.entries[0][1]
        return all(cond is first for _, cond in self.entries)

    def at_step(self, step: int) -> Conditioning:
        for end, cond in self.entries:
            if step <= end:
                return cond
        return self.entries[-1][1]
