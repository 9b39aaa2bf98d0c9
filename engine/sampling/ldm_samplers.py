"""The original CompVis samplers, DDIM and PLMS, rewritten in sigma space.

With ``x = x_ddpm / sqrt(alpha_bar)`` and ``eps = (x - denoised) / sigma``, DDIM's update
``sqrt(ab') * x0 + sqrt(1 - ab') * eps`` becomes ``x + (sigma_next - sigma) * eps``: an Euler step.
They run over ``sigmas_ldm`` (the CompVis timesteps, ending at sigma(t=0) rather than 0), and
their results are in sigma space too: ``x / sqrt(sigma_last^2 + 1)`` is the CompVis latent.
"""

from __future__ import annotations

import torch

from engine.sampling.k_samplers import (
    Model,
    Noise,
    SamplerCallback,
    ancestral_step,
    denoise,
    notify,
    require_noise,
    to_d,
)

# Adams-Bashforth weights for the newest eps first, by the number of eps available.
PLMS_WEIGHTS = {
    2: (3 / 2, -1 / 2),
    3: (23 / 12, -16 / 12, 5 / 12),
    4: (55 / 24, -59 / 24, 37 / 24, -9 / 24),
}


@torch.no_grad()
def sample_ddim(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: SamplerCallback | None = None,
    noise: Noise | None = None,
    eta: float = 0.0,
) -> torch.Tensor:
    """DDIM (Song et al. 2020). eta 0 is deterministic; eta 1 has DDPM's posterior variance.

    DDIM's sigma_t(eta), moved to sigma space, is exactly the ancestral split of
    ``ancestral_step``: go to sigma_down along eps, add noise of std sigma_up.
    """
    s = sigmas.tolist()
    for i in range(len(s) - 1):
        denoised = denoise(model, x, s[i])
        notify(callback, i, denoised)
        sigma_down, sigma_up = ancestral_step(s[i], s[i + 1], eta)
        x = denoised + to_d(x, denoised, s[i]) * sigma_down
        if sigma_up > 0:
            x = x + require_noise(noise, "ddim with eta > 0")(x) * sigma_up
    return x


def _plms_eps(
    model: Model, x: torch.Tensor, eps: torch.Tensor, sigma: float, sigma_next: float
) -> torch.Tensor:
    """The first PLMS step's eps: CompVis' pseudo improved Euler, averaging eps at both ends."""
    if sigma_next == 0:
        return eps  # eps at sigma 0 is undefined; the step lands on denoised anyway
    x_next = x + eps * (sigma_next - sigma)  # (B, C, H, W)
    eps_next = to_d(x_next, denoise(model, x_next, sigma_next), sigma_next)
    return (eps + eps_next) / 2


@torch.no_grad()
def sample_plms(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: SamplerCallback | None = None,
    noise: Noise | None = None,
) -> torch.Tensor:
    """Pseudo linear multistep (Liu et al. 2022) as in the CompVis scripts.

    The history keeps the model's own eps of each step (not the combined ones), as CompVis does;
    the first step costs two model calls, every later one a single call.
    """
    s = sigmas.tolist()
    history: list[torch.Tensor] = []  # newest last, at most 3
    for i in range(len(s) - 1):
        denoised = denoise(model, x, s[i])
        notify(callback, i, denoised)
        eps = to_d(x, denoised, s[i])  # (B, C, H, W)
        if history:
            newest_first = [eps, *reversed(history)]
            weights = PLMS_WEIGHTS[len(newest_first)]
            eps_prime = sum(w * e for w, e in zip(weights, newest_first, strict=True))
        else:
            eps_prime = _plms_eps(model, x, eps, s[i], s[i + 1])
        x = x + eps_prime * (s[i + 1] - s[i])
        history = [*history, eps][-3:]
    return x
