"""EpsDenoiser preconditioning (epsilon and v), dtype handling, and classifier-free guidance."""

import pytest
import torch

from engine.sampling.denoiser import CFGDenoiser, EpsDenoiser
from engine.sampling.schedules import schedule_sigmas, sd_alphas_cumprod, sigma_to_t

AC = sd_alphas_cumprod()


def _noisy_sample(sigma: torch.Tensor, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(sigma.shape[0], 4, 8, 8, generator=g)  # (B, 4, 8, 8)
    noise = torch.randn(x0.shape, generator=g)
    return x0, noise, x0 + sigma[:, None, None, None] * noise


def test_epsilon_prediction_recovers_x0():
    sigma = torch.tensor([0.05, 1.0, 14.0])
    x0, noise, x = _noisy_sample(sigma)

    def oracle(x_in, t, context):  # a perfect UNet, which knows the noise it was given
        return noise

    denoised = EpsDenoiser(oracle, AC)(x, sigma, torch.zeros(3, 77, 8))
    torch.testing.assert_close(denoised, x0, rtol=0, atol=1e-5)


def test_v_prediction_recovers_x0():
    sigma = torch.tensor([0.05, 1.0, 14.0])
    x0, noise, x = _noisy_sample(sigma)
    alpha = (1 / (sigma**2 + 1).sqrt())[:, None, None, None]  # sqrt(alpha_bar)
    sigma_ddpm = (sigma / (sigma**2 + 1).sqrt())[:, None, None, None]  # sqrt(1 - alpha_bar)

    def oracle(x_in, t, context):
        return alpha * noise - sigma_ddpm * x0  # the v target of Salimans & Ho

    denoised = EpsDenoiser(oracle, AC, prediction="v")(x, sigma, torch.zeros(3, 77, 8))
    torch.testing.assert_close(denoised, x0, rtol=0, atol=1e-5)


def test_unet_sees_ddpm_latent_and_timestep():
    timesteps = torch.tensor([0, 500, 999])
    sigma = schedule_sigmas(AC)[timesteps].float()
    _, _, x = _noisy_sample(sigma)
    seen = {}

    def unet(x_in, t, context):
        seen.update(x_in=x_in, t=t, context=context)
        return torch.zeros_like(x_in)

    context = torch.randn(3, 77, 8)
    EpsDenoiser(unet, AC)(x, sigma, context)
    ab = AC[timesteps].float()[:, None, None, None]
    torch.testing.assert_close(seen["x_in"], x * ab.sqrt())  # x_ddpm = sqrt(ab) * x
    torch.testing.assert_close(seen["t"], timesteps.float(), rtol=0, atol=1e-3)
    assert seen["context"] is context or torch.equal(seen["context"], context)


def test_half_precision_unet_float32_sampler():
    sigma = torch.tensor([2.0, 3.0])
    x0, noise, x = _noisy_sample(sigma)
    seen = {}

    def unet(x_in, t, context):
        seen.update(x=x_in.dtype, t=t.dtype, context=context.dtype)
        return noise.to(x_in.dtype)

    denoiser = EpsDenoiser(unet, AC, dtype=torch.bfloat16)
    denoised = denoiser(x, sigma, torch.zeros(2, 77, 8))
    assert seen == {"x": torch.bfloat16, "t": torch.float32, "context": torch.bfloat16}
    assert denoised.dtype == torch.float32
    # bfloat16 keeps ~3 significant digits of eps; sigma 3 amplifies its error.
    torch.testing.assert_close(denoised, x0, rtol=0, atol=0.05)


def test_rejects_unknown_prediction():
    with pytest.raises(ValueError, match="prediction"):
        EpsDenoiser(lambda x, t, c: x, AC, prediction="sample")


class _RecordingDenoiser:
    """D(x, sigma, context) = x * sigma + mean(context): distinguishes cond from uncond."""

    def __init__(self):
        self.batches: list[int] = []

    def __call__(self, x, sigma, context):
        self.batches.append(x.shape[0])
        return x * sigma[:, None, None, None] + context.mean(dim=(1, 2))[:, None, None, None]


def _cfg_inputs(batch: int):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 4, 8, 8, generator=g)
    cond = torch.randn(batch, 77, 8, generator=g)
    uncond = torch.randn(batch, 77, 8, generator=g)
    return x, torch.full((batch,), 1.5), cond, uncond


def test_cfg_one_batched_call_and_guidance_formula():
    x, sigma, cond, uncond = _cfg_inputs(2)
    inner = _RecordingDenoiser()
    out = CFGDenoiser(inner, cond, uncond, scale=7.5)(x, sigma)
    assert inner.batches == [4]  # uncond and cond together in one call
    reference = _RecordingDenoiser()
    d_cond, d_uncond = reference(x, sigma, cond), reference(x, sigma, uncond)
    torch.testing.assert_close(out, d_uncond + 7.5 * (d_cond - d_uncond))


def test_cfg_scale_one_skips_uncond():
    x, sigma, cond, uncond = _cfg_inputs(3)
    inner = _RecordingDenoiser()
    out = CFGDenoiser(inner, cond, uncond, scale=1.0)(x, sigma)
    assert inner.batches == [3]
    torch.testing.assert_close(out, _RecordingDenoiser()(x, sigma, cond))


def test_cfg_broadcasts_single_prompt_over_batch():
    x, sigma, cond, uncond = _cfg_inputs(3)
    inner = _RecordingDenoiser()
    out = CFGDenoiser(inner, cond[:1], uncond[:1], scale=5.0)(x, sigma)
    expected = CFGDenoiser(
        _RecordingDenoiser(), cond[:1].expand(3, -1, -1), uncond[:1].expand(3, -1, -1), 5.0
    )(x, sigma)
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="batch"):
        CFGDenoiser(inner, cond[:2], uncond[:2], scale=5.0)(x, sigma)


def test_cfg_with_eps_denoiser_end_to_end():
    """The guided x0 equals the x0 of the guided eps, the classic CompVis formulation."""
    x, sigma, cond, uncond = _cfg_inputs(2)
    w = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))

    def unet(x_in, t, context):  # eps depends on the input, the timestep and the context
        bias = torch.einsum("btd,cd->bc", context, w)[:, :, None, None] / 77  # (B, 4, 1, 1)
        return torch.tanh(x_in + bias + t[:, None, None, None] / 1000)

    cfg = CFGDenoiser(EpsDenoiser(unet, AC), cond, uncond, scale=6.0)
    c_in = (1 / (sigma**2 + 1).sqrt())[:, None, None, None]
    t = sigma_to_t(sigma, AC)
    eps_c, eps_u = unet(x * c_in, t, cond), unet(x * c_in, t, uncond)
    eps = eps_u + 6.0 * (eps_c - eps_u)
    torch.testing.assert_close(cfg(x, sigma), x - sigma[:, None, None, None] * eps)
