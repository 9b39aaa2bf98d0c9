"""k-diffusion style samplers over a denoiser ``model(x, sigma) -> x0``.

Every sampler is a pure function ``sample_<name>(model, x, sigmas, *, callback, noise, **opts)``:
``x`` starts at ``sigmas[0]`` noise level and the result is at ``sigmas[-1]`` (0: a clean latent).
``callback(i, denoised)`` runs right after step i's first model evaluation; an exception it raises
(the caller's ``Cancelled``) propagates untouched and no further model call happens. ``noise`` is a
callable ``noise(like) -> N(0, 1) tensor`` (see ``NoiseSource``); only stochastic samplers use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SamplerCallback = Callable[[int, torch.Tensor], None]
Noise = Callable[[torch.Tensor], torch.Tensor]


def denoise(model: Model, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Call the model at one noise level for the whole batch."""
    return model(x, x.new_full((x.shape[0],), sigma))  # (B, C, H, W)


def to_d(x: torch.Tensor, denoised: torch.Tensor, sigma: float) -> torch.Tensor:
    """dx/dsigma of the probability-flow ODE, which is also the epsilon estimate."""
    return (x - denoised) / sigma


def notify(callback: SamplerCallback | None, i: int, denoised: torch.Tensor) -> None:
    if callback is not None:
        callback(i, denoised)


def require_noise(noise: Noise | None, name: str) -> Noise:
    if noise is None:
        raise ValueError(f"{name} is stochastic: pass noise=NoiseSource(seeds)")
    return noise


def ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """(sigma_down, sigma_up): deterministic step to sigma_down, then noise of std sigma_up.

    sigma_down^2 + sigma_up^2 = sigma_next^2, so the marginal noise level stays exact. In sigma
    space this is also DDIM's eta-scaled variance, so DDIM with eta uses it too.
    """
    if sigma_next == 0 or eta == 0:
        return sigma_next, 0.0
    up = eta * math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2)
    up = min(sigma_next, up)
    return math.sqrt(sigma_next**2 - up**2), up


@torch.no_grad()
def sample_euler(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: SamplerCallback | None = None,
    noise: Noise | None = None,
) -> torch.Tensor:
    """Euler's method on the probability-flow ODE (Karras et al. 2022, Algorithm 2 w/o churn)."""
    s = sigmas.tolist()
    for i in range(len(s) - 1):
        denoised = denoise(model, x, s[i])
        notify(callback, i, denoised)
        x = x + to_d(x, denoised, s[i]) * (s[i + 1] - s[i])
    return x


@torch.no_grad()
def sample_euler_a(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: SamplerCallback | None = None,
    noise: Noise | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """Ancestral Euler: an Euler step down to sigma_down, then fresh noise back up to sigma_next."""
    s = sigmas.tolist()
    for i in range(len(s) - 1):
        denoised = denoise(model, x, s[i])
        notify(callback, i, denoised)
        sigma_down, sigma_up = ancestral_step(s[i], s[i + 1], eta)
        x = x + to_d(x, denoised, s[i]) * (sigma_down - s[i])
        if sigma_up > 0:
            x = x + require_noise(noise, "euler_a")(x) * (s_noise * sigma_up)
    return x


@torch.no_grad()
def sample_heun(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: SamplerCallback | None = None,
    noise: Noise | None = None,
) -> torch.Tensor:
    """Heun's 2nd-order method; the step to sigma 0 is plain Euler (d is undefined at 0)."""
    s = sigmas.tolist()
    for i in range(len(s) - 1):
        denoised = denoise(model, x, s[i])
        notify(callback, i, denoised)
        d = to_d(x, denoised, s[i])
        dt = s[i + 1] - s[i]
        x_euler = x + d * dt
        if s[i + 1] == 0:
            x = x_euler
            continue
        d_next = to_d(x_euler, denoise(model, x_euler, s[i + 1]), s[i + 1])
        x = x + (d + d_next) * (dt / 2)
    return x


def lms_coefficient(order: int, s: list[float], i: int, j: int) -> float:
    """Integral over [s[i], s[i+1]] of the Lagrange basis polynomial of node s[i-j].

    The nodes are the last ``order`` sigmas s[i], s[i-1], ...; numpy integrates the polynomial
    exactly, so no quadrature error and no scipy.
    """
    poly = np.polynomial.Polynomial([1.0])
    for k in range(order):
        if k != j:
            poly = poly * np.polynomial.Polynomial([-s[i - k], 1.0]) / (s[i - j] - s[i - k])
    antiderivative = poly.integ()
    return float(antiderivative(s[i + 1]) - antiderivative(s[i]))


@torch.no_grad()
def sample_lms(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: SamplerCallback | None = None,
    noise: Noise | None = None,
    order: int = 4,
) -> torch.Tensor:
    """Linear multistep (Adams-Bashforth on the non-uniform sigma grid) of up to ``order``."""
    s = sigmas.tolist()
    ds: list[torch.Tensor] = []  # newest last
    for i in range(len(s) - 1):
        denoised = denoise(model, x, s[i])
        notify(callback, i, denoised)
        ds = [*ds, to_d(x, denoised, s[i])][-order:]
        cur_order = len(ds)
        coeffs = [lms_coefficient(cur_order, s, i, j) for j in range(cur_order)]
        x = x + sum(c * d for c, d in zip(coeffs, reversed(ds), strict=True))
    return x


def _lambda(sigma: float) -> float:
    # log-SNR time of DPM-Solver: lambda = -log(sigma) in sigma space.
    return -math.log(sigma)


@torch.no_grad()
def sample_dpmpp_2m(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: SamplerCallback | None = None,
    noise: Noise | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022), data prediction, first order on the first/last step."""
    s = sigmas.tolist()
    old_denoised: torch.Tensor | None = None
    for i in range(len(s) - 1):
        denoised = denoise(model, x, s[i])
        notify(callback, i, denoised)
        if s[i + 1] == 0:
            x = denoised  # the exponential integrator's limit at sigma 0
            continue
        h = _lambda(s[i + 1]) - _lambda(s[i])
        if old_denoised is None:
            d = denoised
        else:
            r = (_lambda(s[i]) - _lambda(s[i - 1])) / h
            d = denoised + (denoised - old_denoised) / (2 * r)
        x = (s[i + 1] / s[i]) * x - math.expm1(-h) * d
        old_denoised = denoised
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: SamplerCallback | None = None,
    noise: Noise | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """SDE variant of DPM-Solver++(2M), midpoint correction; eta 0 is an ODE solver again."""
    s = sigmas.tolist()
    old_denoised: torch.Tensor | None = None
    h_last = 0.0
    for i in range(len(s) - 1):
        denoised = denoise(model, x, s[i])
        notify(callback, i, denoised)
        if s[i + 1] == 0:
            x = denoised
            continue
        h = _lambda(s[i + 1]) - _lambda(s[i])
        eta_h = eta * h
        decay = -math.expm1(-h - eta_h)  # 1 - exp(-(1 + eta) h)
        x = (s[i + 1] / s[i]) * math.exp(-eta_h) * x + decay * denoised
        if old_denoised is not None:
            x = x + (0.5 * decay * h / h_last) * (denoised - old_denoised)
        if eta > 0:
            std = s[i + 1] * math.sqrt(-math.expm1(-2 * eta_h)) * s_noise
            x = x + require_noise(noise, "dpmpp_2m_sde")(x) * std
        old_denoised, h_last = denoised, h
    return x
