"""The UNet wrapped as a denoiser D(x, sigma, cond) -> x0, and classifier-free guidance."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from engine.sampling.conditioning import Conditioning, ConditioningSchedule, cat_conditioning
from engine.sampling.schedules import sigma_to_t

# (x, t, context) -> network output (epsilon or v), any dtype.
UNetFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# (x, sigma, cond) -> denoised x0.
Denoiser = Callable[[torch.Tensor, torch.Tensor, Conditioning], torch.Tensor]
PREDICTIONS = ("epsilon", "v")


class UNetDenoiser:
    """Turns an epsilon- or v-predicting UNet into ``D(x, sigma, cond) -> denoised x0``.

    ``x`` is in sigma space (``x0 + sigma * noise``); the UNet was trained on DDPM latents
    ``x / sqrt(sigma^2 + 1)`` at integer timesteps, hence ``c_in`` and ``sigma_to_t``. The UNet may
    run in ``dtype`` (float16, bfloat16) while the sampler state stays float32.
    """

    def __init__(
        self,
        unet: UNetFn,
        alphas_cumprod: torch.Tensor,
        prediction: str = "epsilon",
        dtype: torch.dtype | None = None,
    ) -> None:
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        self.unet = unet
        self.alphas_cumprod = alphas_cumprod
        self.prediction = prediction
        self.dtype = dtype

    def scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c_skip, c_out, c_in) with ``D = net(x * c_in) * c_out + x * c_skip`` (sigma_data 1)."""
        c_in = (sigma**2 + 1) ** -0.5
        if self.prediction == "epsilon":
            return torch.ones_like(sigma), -sigma, c_in
        # v = alpha * eps - sigma_ddpm * x0, solved for x0 in sigma space.
        return c_in**2, -sigma * c_in, c_in

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        if cond.vector is not None:  # SDXL's y: no UNet here takes one yet
            raise ValueError("this UNet takes no vector conditioning")
        sigma = sigma.to(x)  # (B,)
        c_skip, c_out, c_in = (c[:, None, None, None] for c in self.scalings(sigma))  # (B,1,1,1)
        # The timestep stays float32: float16 cannot hold fractional timesteps near 999.
        t = sigma_to_t(sigma, self.alphas_cumprod).float()  # (B,)
        dtype = self.dtype or x.dtype
        x_in = (x * c_in).to(dtype)  # (B, C, H, W)
        if cond.concat is not None:  # noise-free extra channels: not scaled by c_in
            x_in = torch.cat([x_in, cond.concat.to(x_in)], dim=1)  # (B, C + C_concat, H, W)
        out = self.unet(x_in, t, cond.context.to(dtype)).to(x.dtype)  # (B, C, H, W)
        return out * c_out + x * c_skip  # (B, C, H, W)


class CFGDenoiser:
    """Classifier-free guidance: ``uncond + scale * (cond - uncond)`` from one batched call.

    The conditioning is baked in, so samplers see a plain ``model(x, sigma) -> denoised``.
    A ``ConditioningSchedule`` (prompt editing) changes it by sampler step; ``with_sigmas`` tells
    the denoiser the run's noise levels, from which it tells the step of each call (see
    ``step_at_sigma``), so samplers stay unchanged.
    """

    def __init__(
        self,
        denoiser: Denoiser,
        cond: Conditioning | ConditioningSchedule,
        uncond: Conditioning | ConditioningSchedule | None,
        scale: float,
        sigmas: Sequence[float] = (),
    ) -> None:
        if scale != 1.0 and uncond is None:
            raise ValueError("guidance scale != 1 needs an unconditional embedding")
        self.denoiser = denoiser
        self.cond = _as_schedule(cond)  # batch B or 1
        self.uncond = None if uncond is None else _as_schedule(uncond)  # batch B or 1
        self.scale = float(scale)
        self.sigmas = tuple(sigmas)

    def with_sigmas(self, sigmas: torch.Tensor | Sequence[float]) -> CFGDenoiser:
        """This denoiser for a run over ``sigmas`` (the sampler's, img2img's truncated ones)."""
        values = sigmas.tolist() if isinstance(sigmas, torch.Tensor) else list(sigmas)
        return CFGDenoiser(self.denoiser, self.cond, self.uncond, self.scale, values)

    def step_of(self, sigma: torch.Tensor) -> int:
        if len(self.sigmas) < 2:
            return 1
        return step_at_sigma(self.sigmas, float(sigma.max()))

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        step = self.step_of(sigma)
        cond = self.cond.at_step(step).expand_to(batch)
        if self.scale == 1.0:
            # The unconditional half would be multiplied by zero: skip it, half the cost.
            return self.denoiser(x, sigma, cond)
        assert self.uncond is not None  # checked in __init__
        both = cat_conditioning([self.uncond.at_step(step).expand_to(batch), cond])  # batch 2B
        x_in = torch.cat([x, x])  # (2B, C, H, W)
        sigma_in = torch.cat([sigma, sigma])  # (2B,)
        out_uncond, out_cond = self.denoiser(x_in, sigma_in, both).chunk(2)
        return out_uncond + self.scale * (out_cond - out_uncond)  # (B, C, H, W)


def _as_schedule(cond: Conditioning | ConditioningSchedule) -> ConditioningSchedule:
    return cond if isinstance(cond, ConditioningSchedule) else ConditioningSchedule.constant(cond)


def step_at_sigma(sigmas: Sequence[float], sigma: float) -> int:
    """The sampler step (from 1) a model call at noise level ``sigma`` belongs to.

    Step ``i`` runs from ``sigmas[i-1]`` down to ``sigmas[i]``; a call in (sigmas[i], sigmas[i-1]]
    belongs to it. So a sampler's first call of a step, at ``sigmas[i-1]``, is step ``i``; the
    midpoint calls of DPM++ SDE / 2S are still step ``i``; Heun's and PLMS's corrector call at
    ``sigmas[i]`` is step ``i + 1``: the conditioning follows the noise level, whatever the
    sampler. (A1111 instead counts every model call as a step, and for second-order samplers
    spreads the schedule over twice the steps.)
    """
    steps = len(sigmas) - 1
    # Relative slack: the sampler passes the same float32 values, but be robust to rounding.
    passed = sum(1 for s in sigmas[1:steps] if s >= sigma * (1 - 1e-6))
    return min(passed + 1, steps)
