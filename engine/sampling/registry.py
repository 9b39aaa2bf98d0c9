"""The function that runs each sampler of ``engine.samplers.CATALOGUE``, by id.

What a sampler is (names, defaults, schedule, noise, cost) is in the catalogue; this module only
maps ids to code, so that torch stays out of the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.samplers import sampler_info
from engine.sampling.k_samplers import (
    sample_dpmpp_2m,
    sample_dpmpp_2m_sde,
    sample_euler,
    sample_euler_a,
    sample_heun,
    sample_lms,
)
from engine.sampling.lcm import sample_lcm
from engine.sampling.ldm_samplers import sample_ddim, sample_plms

Sampler = Callable[..., torch.Tensor]

# Exactly the catalogue's ids (tests/engine/test_samplers.py checks it).
SAMPLER_FUNCTIONS: dict[str, Sampler] = {
    "euler": sample_euler,
    "euler_a": sample_euler_a,
    "heun": sample_heun,
    "lms": sample_lms,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
    "ddim": sample_ddim,
    "plms": sample_plms,
    "lcm": sample_lcm,
}


def sampler_options(sampler: str, *, eta: float, alphas_cumprod: torch.Tensor) -> dict[str, object]:
    """The keyword options a run of ``sampler`` takes beyond the common ones: DDIM's eta, and
    the training schedule LCM's boundary condition is computed on (engine.sampling.lcm)."""
    if sampler == "lcm":
        return {"alphas_cumprod": alphas_cumprod}
    return {"eta": eta} if sampler_info(sampler).takes_eta else {}
