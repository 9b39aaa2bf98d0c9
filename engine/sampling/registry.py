"""Samplers by the names of ``engine.api.SAMPLERS``, and what each run costs."""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.sampling.k_samplers import (
    sample_dpmpp_2m,
    sample_dpmpp_2m_sde,
    sample_euler,
    sample_euler_a,
    sample_heun,
    sample_lms,
)
from engine.sampling.ldm_samplers import sample_ddim, sample_plms

Sampler = Callable[..., torch.Tensor]

SAMPLERS: dict[str, Sampler] = {
    "euler": sample_euler,
    "euler_a": sample_euler_a,
    "heun": sample_heun,
    "lms": sample_lms,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
    "ddim": sample_ddim,
    "plms": sample_plms,
}

# Samplers that draw fresh noise at every step (need a NoiseSource; ddim only with eta > 0).
STOCHASTIC = ("euler_a", "dpmpp_2m_sde")


def evaluations(name: str, steps: int) -> int:
    """Model calls (denoiser evaluations) of one run over ``get_sigmas(name, ..., steps)``.

    Heun's step to sigma 0 is plain Euler; PLMS's first step evaluates twice.
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}")
    if name == "heun":
        return 2 * steps - 1
    if name == "plms":
        return steps + 1
    return steps
