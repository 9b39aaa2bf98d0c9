"""Seeded Gaussian noise, one CPU generator per image of a batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class NoiseSource:
    """Fresh N(0, 1) noise for the initial latent and for ancestral/SDE samplers.

    Image i draws only from its own ``torch.Generator("cpu")`` seeded with ``seeds[i]``, so it
    comes out the same when generated alone with that seed (A1111 behaviour). Noise is drawn in
    float32 on the CPU and then moved, so a seed gives the same picture on every device.
    """

    def __init__(self, seeds: Sequence[int]) -> None:
        if not seeds:
            raise ValueError("NoiseSource needs at least one seed")
        self.seeds = tuple(int(s) for s in seeds)
        self.generators = [torch.Generator("cpu").manual_seed(s) for s in self.seeds]

    def sample(
        self,
        shape: Sequence[int],
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Noise of ``shape`` (batch first); the batch size must equal the number of seeds."""
        if shape[0] != len(self.generators):
            raise ValueError(f"batch of {shape[0]} but {len(self.generators)} seeds")
        per_item = tuple(shape[1:])
        draws = [torch.randn(per_item, generator=g, dtype=torch.float32) for g in self.generators]
        return torch.stack(draws).to(device=device, dtype=dtype)  # (B, ...)

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        return self.sample(like.shape, like.device, like.dtype)
