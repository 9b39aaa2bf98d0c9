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
