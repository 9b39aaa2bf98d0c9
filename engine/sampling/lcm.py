"""The Latent Consistency Model sampler (Luo et al. 2023): denoise to x0, re-noise, repeat.

An LCM-distilled UNet (or a UNet with an LCM-LoRA) maps any noisy latent straight to its clean
latent. Each step therefore takes the model's x0 and noises it afresh to the next sigma; the
last step returns x0. The noise comes from the seed's ``NoiseSource``, one stream per image, so
an image of a batch comes out as it does alone.

The boundary condition. A consistency model is ``f(x, t) = c_skip(t) x + c_out(t) F(x, t)``
with ``c_skip = s^2 / ((10 t)^2 + s^2)``, ``c_out = 10 t / sqrt((10 t)^2 + s^2)``, s = 0.5
(``sigma_data``) and 10 = ``timestep_scaling`` (diffusers' ``LCMScheduler``, which applies it
to its DDPM-space sample; A1111's LCM sampler applies it too; k-diffusion's and ComfyUI's
``sample_lcm`` do not). We apply it as diffusers does, at each step's timestep
(``sigma_to_t``), to the DDPM-space latent ``x / sqrt(1 + sigma^2)``: so ``--sampler lcm
--schedule lcm`` reproduces diffusers' LCMScheduler step for step, noise draw for noise draw
(tests/engine/test_lcm.py). On the LCM schedule (t >= 19) it changes x0 by less than 1e-5
relative, so it matters for exactness only; on schedules that end at t = 0 ("normal",
"karras") the step at t = 0 returns its input, as ``f(x, 0) = x`` defines: LCM is meant for the
"lcm", "sgm_uniform" and "simple" schedules, which never call the model there.
"""

from __future__ import annotations

import math

import torch

from engine.sampling.k_samplers import Model, Noise, SamplerCallback, denoise, notify, require_noise
from engine.sampling.schedules import sigma_to_t

SIGMA_DATA = 0.5
TIMESTEP_SCALING = 10.0


def boundary_scalings(t: float) -> tuple[float, float]:
    """(c_skip, c_out) of LCM's boundary condition at DDPM timestep ``t``: (1, 0) at t = 0."""
    scaled = t * TIMESTEP_SCALING
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / math.sqrt(scaled**2 + SIGMA_DATA**2)
    return c_skip, c_out


def consistency_x0(
    x: torch.Tensor, denoised: torch.Tensor, sigma: float, alphas_cumprod: torch.Tensor
) -> torch.Tensor:
    """The consistency function's x0: ``c_out * denoised + c_skip * x_ddpm`` at sigma's t."""
    t = float(sigma_to_t(torch.tensor(sigma, dtype=torch.float64), alphas_cumprod))
    c_skip, c_out = boundary_scalings(t)
    return denoised * c_out + x * (c_skip / math.sqrt(1.0 + sigma**2))  # (B, C, H, W)


@torch.no_grad()
def sample_lcm(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: SamplerCallback | None = None,
    noise: Noise | None = None,
    alphas_cumprod: torch.Tensor | None = None,
) -> torch.Tensor:
    """LCM multistep sampling. With ``alphas_cumprod`` (the model's training schedule) each x0
    goes through the boundary condition, as diffusers' LCMScheduler; without it the model's x0
    is used as it is, as k-diffusion's ``sample_lcm``."""
    s = sigmas.tolist()
    for i in range(len(s) - 1):
        denoised = denoise(model, x, s[i])
        if alphas_cumprod is not None:
            denoised = consistency_x0(x, denoised, s[i], alphas_cumprod)
        notify(callback, i, denoised)
        x = denoised
        if s[i + 1] > 0:  # the last step keeps x0: no noise to draw
            x = x + require_noise(noise, "lcm")(x) * s[i + 1]
    return x
