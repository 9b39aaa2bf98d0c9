"""Noise schedules of Stable Diffusion models, in k-diffusion's sigma space.

A DDPM latent at timestep t is ``sqrt(ab) * x0 + sqrt(1 - ab) * eps`` (ab = alphas_cumprod[t]).
Dividing by ``sqrt(ab)`` gives ``x0 + sigma * eps`` with ``sigma = sqrt((1 - ab) / ab)``: the
samplers work on that variance-exploding form, where every schedule is just a list of sigmas.
"""

from __future__ import annotations

import torch

from engine.samplers import LCM_ORIGINAL_STEPS, sampler_info


def scaled_linear_alphas_cumprod(
    beta_start: float, beta_end: float, timesteps: int
) -> torch.Tensor:
    """A "scaled_linear" training schedule (a family's ``BetaSchedule``): cumulative alphas."""
    # float64 throughout, as the CompVis code (diffusers' float32 product differs by ~1e-6).
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas**2, dim=0)  # (timesteps,)


def schedule_sigmas(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """sigma at every training timestep, increasing with t."""
    return ((1.0 - alphas_cumprod) / alphas_cumprod).sqrt()  # (T,)


def _log_sigmas_like(alphas_cumprod: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # float64 where we can; devices without float64 (MPS) get the caller's float dtype.
    dtype = like.dtype if like.is_floating_point() else torch.float64
    if like.device.type == "mps":
        dtype = torch.float32
    return schedule_sigmas(alphas_cumprod).log().to(like.device, dtype)  # (T,)


def sigma_to_t(sigma: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Fractional timestep of each sigma, by linear interpolation in log-sigma.

    A continuous sigma (Karras schedule, a second Heun evaluation) lies between two training
    timesteps; the UNet's sinusoidal embedding accepts the fractional t in between.
    """
    sigma = torch.as_tensor(sigma)
    log_sigmas = _log_sigmas_like(alphas_cumprod, sigma)  # (T,) increasing
    log_sigma = sigma.to(log_sigmas.dtype).clamp(min=1e-10).log()
    # Index of the interval [low, low + 1] holding log_sigma; outside the range we clamp.
    low = torch.searchsorted(log_sigmas, log_sigma.contiguous(), right=True) - 1
    low = low.clamp(0, log_sigmas.shape[0] - 2)
    lo, hi = log_sigmas[low], log_sigmas[low + 1]
    w = ((log_sigma - lo) / (hi - lo)).clamp(0.0, 1.0)
    return (low + w).to(sigma.dtype if sigma.is_floating_point() else torch.float64)


def t_to_sigma(t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """sigma at a (possibly fractional) timestep: the inverse of ``sigma_to_t``."""
    t = torch.as_tensor(t, dtype=torch.float64)
    log_sigmas = _log_sigmas_like(alphas_cumprod, t)  # (T,)
    t = t.clamp(0, log_sigmas.shape[0] - 1)
    low = t.floor().long().clamp(max=log_sigmas.shape[0] - 2)
    w = t - low
    return ((1 - w) * log_sigmas[low] + w * log_sigmas[low + 1]).exp()


def _append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def sigmas_normal(steps: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Timesteps spaced linearly from 999 to 0, as sigmas, then a final 0 (steps + 1 values)."""
    last = alphas_cumprod.shape[0] - 1
    timesteps = torch.linspace(last, 0, steps, dtype=torch.float64)
    return _append_zero(t_to_sigma(timesteps, alphas_cumprod))


def sigmas_karras(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022) eq. 5: sigmas evenly spaced in sigma^(1/rho), then a final 0."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def ldm_timesteps(steps: int, train_timesteps: int) -> torch.Tensor:
    """The CompVis DDIM ("leading", steps_offset=1) timesteps, descending (10 of 1000: 901..1)."""
    stride = train_timesteps // steps
    return (torch.arange(steps) * stride + 1).flip(0)  # (steps,) int64


def sigmas_ldm(steps: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Sigmas at ``ldm_timesteps``, then sigma(t=0).

    The last DDIM step goes to alphas_cumprod[0], not to a clean image (diffusers'
    ``set_alpha_to_one=False``), so the list ends at sigma_min, not at 0.
    """
    sigmas = schedule_sigmas(alphas_cumprod)  # (T,)
    return torch.cat([sigmas[ldm_timesteps(steps, len(sigmas))], sigmas[:1]])


def sigmas_sgm_uniform(steps: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """ComfyUI's and A1111's "sgm_uniform": ``steps + 1`` timesteps spaced linearly from 999 to
    0 with the last (t=0) dropped, as sigmas, then a final 0.

    ComfyUI ``comfy/samplers.py`` ``normal_scheduler(sgm=True)``; fractional timesteps are
    interpolated in log-sigma (its ``ModelSamplingDiscrete.sigma``, our ``t_to_sigma``). Unlike
    "normal" no step is spent at sigma_min: the last model call is at t = 999 / steps.
    """
    last = alphas_cumprod.shape[0] - 1
    timesteps = torch.linspace(last, 0, steps + 1, dtype=torch.float64)[:-1]  # (steps,)
    return _append_zero(t_to_sigma(timesteps, alphas_cumprod))


def sigmas_simple(steps: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """ComfyUI's "simple": the training sigmas read from the top every ``T / steps`` timesteps,
    the offset truncated to an integer, then a final 0.

    ComfyUI ``simple_scheduler``: step i uses ``sigmas[-(1 + int(i * T / steps))]``; the float
    division and truncation are kept so that odd step counts land where ComfyUI's do (3 steps:
    t = 999, 666, 333; diffusers' "trailing" spacing rounds instead: 999, 666, 332).
    """
    sigmas = schedule_sigmas(alphas_cumprod)  # (T,)
    count = sigmas.shape[0]
    stride = count / steps
    indices = [count - 1 - int(i * stride) for i in range(steps)]
    return _append_zero(sigmas[indices])


def lcm_timesteps(
    steps: int, train_timesteps: int, original_steps: int = LCM_ORIGINAL_STEPS
) -> list[int]:
    """diffusers' ``LCMScheduler.set_timesteps`` timesteps, descending (4 of 1000: 999..259).

    The distillation schedule is every ``k = T // original_steps``-th timestep ending at
    ``T - 1`` (999, 979, ..., 19); ``steps`` of them are taken at indices
    ``floor(i * original_steps / steps)``. More steps than ``original_steps`` would repeat
    timesteps, so they are refused (diffusers raises too).
    """
    if steps > original_steps:
        raise ValueError(f"the LCM schedule has at most {original_steps} steps, got {steps}")
    k = train_timesteps // original_steps
    distilled = [k * j - 1 for j in range(original_steps, 0, -1)]  # (original_steps,) descending
    return [distilled[i * original_steps // steps] for i in range(steps)]


def sigmas_lcm(steps: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Sigmas at ``lcm_timesteps``, then a final 0 (the last LCM step returns its x0)."""
    sigmas = schedule_sigmas(alphas_cumprod)  # (T,)
    return _append_zero(sigmas[lcm_timesteps(steps, sigmas.shape[0])])


def _sigmas_karras_full_range(steps: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    all_sigmas = schedule_sigmas(alphas_cumprod)
    return sigmas_karras(steps, all_sigmas[0].item(), all_sigmas[-1].item())


# By the ids of engine.samplers.SCHEDULE_CATALOGUE (tests/engine/test_few_step_schedules.py
# checks they are the same).
SCHEDULE_FUNCTIONS = {
    "normal": sigmas_normal,
    "karras": _sigmas_karras_full_range,
    "sgm_uniform": sigmas_sgm_uniform,
    "simple": sigmas_simple,
    "lcm": sigmas_lcm,
}


def get_sigmas(
    sampler: str, schedule: str, steps: int, alphas_cumprod: torch.Tensor
) -> torch.Tensor:
    """The (steps + 1,) float32 sigmas a sampler runs over."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    # DDIM and PLMS bring their own discretisation (the CompVis scripts' timesteps).
    if not sampler_info(sampler).uses_schedule:
        return sigmas_ldm(steps, alphas_cumprod).float()
    if schedule not in SCHEDULE_FUNCTIONS:
        raise ValueError(f"unknown schedule {schedule!r}")
    return SCHEDULE_FUNCTIONS[schedule](steps, alphas_cumprod).float()
