"""Noise schedules against diffusers' schedulers, and the sigma <-> timestep mapping."""

import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler

from engine.api import SAMPLERS
from engine.family import SD1
from engine.samplers import sampler_info
from engine.sampling.schedules import (
    get_sigmas,
    ldm_timesteps,
    schedule_sigmas,
    sigma_to_t,
    sigmas_karras,
    sigmas_ldm,
    sigmas_normal,
    t_to_sigma,
)

SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


@pytest.fixture(scope="module")
def ac() -> torch.Tensor:
    return SD1.alphas_cumprod()


def test_alphas_cumprod_matches_diffusers(ac):
    ref = EulerDiscreteScheduler(**SD_BETAS).alphas_cumprod.double()
    assert ac.shape == (1000,) and ac.dtype == torch.float64
    # diffusers multiplies in float32; ours is float64 like CompVis, hence the tolerance.
    torch.testing.assert_close(ac, ref, rtol=2e-6, atol=0)
    sigmas = schedule_sigmas(ac)
    assert sigmas[0].item() == pytest.approx(0.0292, abs=1e-4)
    assert sigmas[-1].item() == pytest.approx(14.6146, abs=1e-4)


@pytest.mark.parametrize("steps", [2, 7, 10, 25])
def test_normal_sigmas_match_euler_discrete_linspace(ac, steps):
    ref = EulerDiscreteScheduler(**SD_BETAS, timestep_spacing="linspace")
    ref.set_timesteps(steps)
    ours = sigmas_normal(steps, ac)
    assert ours.shape == (steps + 1,) and ours[-1] == 0
    # Two small, known differences: diffusers' alphas_cumprod is float32 (1e-5 off near
    # sigma_min), and it interpolates fractional timesteps linearly in sigma where we (as
    # k-diffusion) interpolate in log-sigma: within one timestep that differs by < 1e-4.
    torch.testing.assert_close(ours, ref.sigmas.double(), rtol=1e-4, atol=0)
    # A different spacing (e.g. 998..0 or rounded timesteps) would be off by > 1e-3.
    assert (ours[1:-1] / ref.sigmas.double()[1:-1] - 1).abs().max() < 1e-4


def test_normal_single_step_starts_at_sigma_max(ac):
    # diffusers' numpy linspace(0, 999, 1) gives t=0 (a useless step from sigma_min); we start,
    # as k-diffusion does, from pure noise at t=999.
    torch.testing.assert_close(
        sigmas_normal(1, ac), torch.stack([schedule_sigmas(ac)[-1], ac.new_zeros(())])
    )


@pytest.mark.parametrize("steps", [5, 20])
def test_karras_sigmas_match_diffusers(ac, steps):
    ref = EulerDiscreteScheduler(**SD_BETAS, timestep_spacing="linspace", use_karras_sigmas=True)
    ref.set_timesteps(steps)
    ours = get_sigmas("euler", "karras", steps, ac)
    torch.testing.assert_close(ours, ref.sigmas.float(), rtol=3e-5, atol=0)
    # The model's timesteps for those sigmas agree too (diffusers also interpolates log-sigma).
    torch.testing.assert_close(sigma_to_t(ours[:-1], ac), ref.timesteps.float(), rtol=0, atol=5e-3)


def test_karras_endpoints_and_rho():
    sigmas = sigmas_karras(4, 0.1, 10.0, rho=1.0)  # rho 1: evenly spaced in sigma
    torch.testing.assert_close(
        sigmas, torch.tensor([10.0, 6.7, 3.4, 0.1, 0.0], dtype=torch.float64)
    )


@pytest.mark.parametrize("steps", [1, 10, 25, 50, 3])
def test_ldm_timesteps_match_ddim_scheduler(steps):
    ref = DDIMScheduler(**SD_BETAS, steps_offset=1, set_alpha_to_one=False, clip_sample=False)
    ref.set_timesteps(steps)
    assert ldm_timesteps(steps, 1000).tolist() == ref.timesteps.tolist()


def test_ldm_timesteps_example():
    assert ldm_timesteps(10, 1000).tolist() == [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]


def test_ldm_sigmas_end_at_sigma_of_t0(ac):
    sigmas = sigmas_ldm(10, ac)
    expected_ab = [ac[t].item() for t in [901, 801, 701, 601, 501, 401, 301, 201, 101, 1, 0]]
    torch.testing.assert_close(1 / (1 + sigmas**2), torch.tensor(expected_ab, dtype=torch.float64))
    assert sigmas[-1] > 0


def test_sigma_to_t_inverts_t_to_sigma(ac):
    t = torch.tensor([0.0, 0.25, 1.0, 123.5, 500.0, 998.75, 999.0], dtype=torch.float64)
    torch.testing.assert_close(sigma_to_t(t_to_sigma(t, ac), ac), t, rtol=0, atol=1e-9)
    # At integer timesteps t_to_sigma is the schedule itself.
    torch.testing.assert_close(t_to_sigma(torch.arange(1000.0), ac), schedule_sigmas(ac))


def test_sigma_to_t_interpolates_in_log_sigma(ac):
    sigmas = schedule_sigmas(ac)
    mid = (sigmas[400] * sigmas[401]).sqrt()  # geometric mean: halfway in log-sigma
    assert sigma_to_t(mid, ac).item() == pytest.approx(400.5, abs=1e-9)
    # Out-of-range sigmas clamp to the ends instead of extrapolating.
    assert sigma_to_t(torch.tensor([1e-4, 100.0], dtype=torch.float64), ac).tolist() == [0, 999]


def test_sigma_to_t_keeps_float32(ac):
    t = sigma_to_t(torch.tensor([1.0, 2.0]), ac)
    assert t.dtype == torch.float32


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("schedule", ["normal", "karras"])
def test_get_sigmas_dispatch(ac, sampler, schedule):
    sigmas = get_sigmas(sampler, schedule, 12, ac)
    assert sigmas.shape == (13,) and sigmas.dtype == torch.float32
    assert torch.all(sigmas[:-1] > sigmas[1:])  # strictly decreasing
    if not sampler_info(sampler).uses_schedule:  # their own timesteps, whatever the schedule
        torch.testing.assert_close(sigmas, sigmas_ldm(12, ac).float())
    elif schedule == "normal":
        torch.testing.assert_close(sigmas, sigmas_normal(12, ac).float())
    else:
        assert sigmas[-1] == 0 and sigmas[0].item() == pytest.approx(14.6146, abs=1e-3)
        assert sigmas[-2].item() == pytest.approx(0.0292, abs=1e-4)


def test_get_sigmas_rejects_bad_input(ac):
    with pytest.raises(ValueError):
        get_sigmas("euler", "exponential", 10, ac)
    with pytest.raises(ValueError):
        get_sigmas("euler", "normal", 0, ac)
