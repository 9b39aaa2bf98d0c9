"""UNetDenoiser preconditioning (epsilon and v), dtype handling, conditioning (context and
concat channels), and classifier-free guidance."""

import pytest
import torch

from engine.family import SD1
from engine.sampling.conditioning import Conditioning, cat_conditioning
from engine.sampling.denoiser import CFGDenoiser, UNetDenoiser
from engine.sampling.schedules import schedule_sigmas, sigma_to_t
from tests.factories import TINY_CONTEXT, tiny_unet

AC = SD1.alphas_cumprod()


def _noisy_sample(sigma: torch.Tensor, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(sigma.shape[0], 4, 8, 8, generator=g)  # (B, 4, 8, 8)
    noise = torch.randn(x0.shape, generator=g)
    return x0, noise, x0 + sigma[:, None, None, None] * noise


def _empty_prompt(batch: int) -> Conditioning:
    return Conditioning(torch.zeros(batch, 77, 8))


def test_epsilon_prediction_recovers_x0():
    sigma = torch.tensor([0.05, 1.0, 14.0])
    x0, noise, x = _noisy_sample(sigma)

    def oracle(x_in, t, context):  # a perfect UNet, which knows the noise it was given
        return noise

    denoised = UNetDenoiser(oracle, AC)(x, sigma, _empty_prompt(3))
    torch.testing.assert_close(denoised, x0, rtol=0, atol=1e-5)


def test_v_prediction_recovers_x0():
    sigma = torch.tensor([0.05, 1.0, 14.0])
    x0, noise, x = _noisy_sample(sigma)
    alpha = (1 / (sigma**2 + 1).sqrt())[:, None, None, None]  # sqrt(alpha_bar)
    sigma_ddpm = (sigma / (sigma**2 + 1).sqrt())[:, None, None, None]  # sqrt(1 - alpha_bar)

    def oracle(x_in, t, context):
        return alpha * noise - sigma_ddpm * x0  # the v target of Salimans & Ho

    denoised = UNetDenoiser(oracle, AC, prediction="v")(x, sigma, _empty_prompt(3))
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
    UNetDenoiser(unet, AC)(x, sigma, Conditioning(context))
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

    denoiser = UNetDenoiser(unet, AC, dtype=torch.bfloat16)
    denoised = denoiser(x, sigma, _empty_prompt(2))
    assert seen == {"x": torch.bfloat16, "t": torch.float32, "context": torch.bfloat16}
    assert denoised.dtype == torch.float32
    # bfloat16 keeps ~3 significant digits of eps; sigma 3 amplifies its error.
    torch.testing.assert_close(denoised, x0, rtol=0, atol=0.05)


def test_rejects_unknown_prediction():
    with pytest.raises(ValueError, match="prediction"):
        UNetDenoiser(lambda x, t, c: x, AC, prediction="sample")


def test_rejects_a_vector_the_unet_cannot_take():
    sigma = torch.tensor([1.0])
    _, _, x = _noisy_sample(sigma)
    cond = Conditioning(torch.zeros(1, 77, 8), vector=torch.zeros(1, 16))
    with pytest.raises(ValueError, match="vector"):
        UNetDenoiser(lambda x, t, c: x, AC)(x, sigma, cond)


# -- concat channels (inpainting) -----------------------------------------------------------------


def test_concat_channels_join_the_unet_input_after_c_in():
    sigma = torch.tensor([2.0, 5.0])
    _, _, x = _noisy_sample(sigma)  # (2, 4, 8, 8)
    concat = torch.randn(2, 5, 8, 8, generator=torch.Generator().manual_seed(4))  # mask + latents
    seen = {}

    def unet(x_in, t, context):
        seen["x_in"] = x_in
        return torch.zeros_like(x_in[:, :4])

    UNetDenoiser(unet, AC)(x, sigma, Conditioning(torch.zeros(2, 77, 8), concat=concat))
    c_in = (1 / (sigma**2 + 1).sqrt())[:, None, None, None]
    assert seen["x_in"].shape == (2, 9, 8, 8)
    torch.testing.assert_close(seen["x_in"][:, :4], x * c_in)  # the noisy latents are scaled
    assert torch.equal(seen["x_in"][:, 4:], concat)  # the extra channels are not


def test_nine_channel_unet_runs_through_the_guided_denoiser():
    unet = tiny_unet(seed=2, inpainting=True)
    received = []

    def recording_unet(x_in, t, context):
        received.append(x_in.shape)
        return unet(x_in, t, context)

    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 8, 8, generator=g)  # (B, 4, h, w) noisy latents
    concat = torch.randn(1, 5, 8, 8, generator=g)  # one mask + masked image for the batch
    cond = Conditioning(torch.randn(1, 77, TINY_CONTEXT, generator=g), concat=concat)
    uncond = Conditioning(torch.zeros(1, 77, TINY_CONTEXT), concat=concat)
    cfg = CFGDenoiser(UNetDenoiser(recording_unet, AC), cond, uncond, scale=7.0)
    with torch.no_grad():
        out = cfg(x, torch.full((2,), 3.0))
    assert received == [torch.Size([4, 9, 8, 8])]  # uncond and cond of 2 latents, 4 + 5 channels
    assert out.shape == (2, 4, 8, 8) and torch.isfinite(out).all()


# -- batching conditionings ---------------------------------------------------------------------


def test_expand_broadcasts_every_field_of_a_batch_of_one():
    one = Conditioning(torch.randn(1, 77, 8), concat=torch.randn(1, 5, 4, 4))
    three = one.expand_to(3)
    assert three.context.shape == (3, 77, 8) and three.concat is not None
    assert three.concat.shape == (3, 5, 4, 4) and three.vector is None
    assert torch.equal(three.concat[2], one.concat[0])
    with pytest.raises(ValueError, match="batch"):
        Conditioning(torch.randn(2, 77, 8)).expand_to(3)
    with pytest.raises(ValueError, match="batch"):  # every field is checked, not only context
        Conditioning(torch.randn(3, 77, 8), concat=torch.randn(2, 5, 4, 4)).expand_to(3)


def test_cat_joins_context_and_concat_in_order():
    a = Conditioning(torch.zeros(1, 77, 8), concat=torch.zeros(1, 5, 4, 4))
    b = Conditioning(torch.ones(2, 77, 8), concat=torch.ones(2, 5, 4, 4))
    both = cat_conditioning([a, b])
    assert both.batch == 3 and both.vector is None
    assert both.concat is not None
    assert both.concat[:, 0, 0, 0].tolist() == [0.0, 1.0, 1.0]
    assert both.context[:, 0, 0].tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="concat"):
        cat_conditioning([a, Conditioning(torch.ones(1, 77, 8))])


# -- classifier-free guidance ---------------------------------------------------------------------


class _RecordingDenoiser:
    """D(x, sigma, cond) = x * sigma + mean(context) + mean(concat): tells cond from uncond."""

    def __init__(self):
        self.batches: list[int] = []
        self.concats: list[torch.Tensor | None] = []

    def __call__(self, x, sigma, cond: Conditioning):
        self.batches.append(x.shape[0])
        self.concats.append(cond.concat)
        out = x * sigma[:, None, None, None] + cond.context.mean(dim=(1, 2))[:, None, None, None]
        if cond.concat is not None:
            out = out + cond.concat.mean(dim=1, keepdim=True)
        return out


def _cfg_inputs(batch: int):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 4, 8, 8, generator=g)
    cond = Conditioning(torch.randn(batch, 77, 8, generator=g))
    uncond = Conditioning(torch.randn(batch, 77, 8, generator=g))
    return x, torch.full((batch,), 1.5), cond, uncond


def test_cfg_one_batched_call_and_guidance_formula():
    x, sigma, cond, uncond = _cfg_inputs(2)
    inner = _RecordingDenoiser()
    out = CFGDenoiser(inner, cond, uncond, scale=7.5)(x, sigma)
    assert inner.batches == [4]  # uncond and cond together in one call
    reference = _RecordingDenoiser()
    d_cond, d_uncond = reference(x, sigma, cond), reference(x, sigma, uncond)
    torch.testing.assert_close(out, d_uncond + 7.5 * (d_cond - d_uncond))


def test_cfg_batches_concat_channels_with_their_halves():
    x, sigma, cond, uncond = _cfg_inputs(2)
    g = torch.Generator().manual_seed(7)
    cond_concat, uncond_concat = torch.randn(2, 5, 8, 8, generator=g), torch.zeros(1, 5, 8, 8)
    cond = Conditioning(cond.context, concat=cond_concat)
    uncond = Conditioning(uncond.context, concat=uncond_concat)  # batch 1: broadcast
    inner = _RecordingDenoiser()
    out = CFGDenoiser(inner, cond, uncond, scale=3.0)(x, sigma)
    (seen,) = inner.concats
    assert seen is not None and seen.shape == (4, 5, 8, 8)
    assert torch.equal(seen[:2], uncond_concat.expand(2, -1, -1, -1))  # uncond half first
    assert torch.equal(seen[2:], cond_concat)
    reference = _RecordingDenoiser()
    d_cond, d_uncond = reference(x, sigma, cond), reference(x, sigma, uncond.expand_to(2))
    torch.testing.assert_close(out, d_uncond + 3.0 * (d_cond - d_uncond))


def test_cfg_scale_one_skips_uncond():
    x, sigma, cond, uncond = _cfg_inputs(3)
    inner = _RecordingDenoiser()
    out = CFGDenoiser(inner, cond, uncond, scale=1.0)(x, sigma)
    assert inner.batches == [3]
    torch.testing.assert_close(out, _RecordingDenoiser()(x, sigma, cond))


def test_cfg_broadcasts_single_prompt_over_batch():
    x, sigma, cond, uncond = _cfg_inputs(3)
    first = Conditioning(cond.context[:1]), Conditioning(uncond.context[:1])
    out = CFGDenoiser(_RecordingDenoiser(), *first, scale=5.0)(x, sigma)
    repeated = (Conditioning(c.context.expand(3, -1, -1)) for c in first)
    expected = CFGDenoiser(_RecordingDenoiser(), *repeated, 5.0)(x, sigma)
    torch.testing.assert_close(out, expected)
    two = Conditioning(cond.context[:2]), Conditioning(uncond.context[:2])
    with pytest.raises(ValueError, match="batch"):
        CFGDenoiser(_RecordingDenoiser(), *two, scale=5.0)(x, sigma)


def test_cfg_with_unet_denoiser_end_to_end():
    """The guided x0 equals the x0 of the guided eps, the classic CompVis formulation."""
    x, sigma, cond, uncond = _cfg_inputs(2)
    w = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))

    def unet(x_in, t, context):  # eps depends on the input, the timestep and the context
        bias = torch.einsum("btd,cd->bc", context, w)[:, :, None, None] / 77  # (B, 4, 1, 1)
        return torch.tanh(x_in + bias + t[:, None, None, None] / 1000)

    cfg = CFGDenoiser(UNetDenoiser(unet, AC), cond, uncond, scale=6.0)
    c_in = (1 / (sigma**2 + 1).sqrt())[:, None, None, None]
    t = sigma_to_t(sigma, AC)
    eps_c, eps_u = unet(x * c_in, t, cond.context), unet(x * c_in, t, uncond.context)
    eps = eps_u + 6.0 * (eps_c - eps_u)
    torch.testing.assert_close(cfg(x, sigma), x - sigma[:, None, None, None] * eps)
