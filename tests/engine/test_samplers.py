"""Samplers on analytic denoisers (exact answers known), determinism, callbacks and cancel."""

import math

import pytest
import torch

from engine.api import SAMPLERS as SAMPLER_NAMES
from engine.family import SD1
from engine.samplers import CATALOGUE, sampler_info
from engine.sampling.k_samplers import lms_coefficient
from engine.sampling.noise import NoiseSource
from engine.sampling.registry import SAMPLER_FUNCTIONS
from engine.sampling.schedules import get_sigmas

AC = SD1.alphas_cumprod()
MU, S2 = 0.3, 0.25  # data: N(MU, S2) per element, or the single point MU
DETERMINISTIC = tuple(info.id for info in CATALOGUE if not info.stochastic)
STOCHASTIC = tuple(info.id for info in CATALOGUE if info.stochastic)
# Every sampler that can draw step noise, with the options that make it do so.
NOISY = {
    info.id: {"eta": 1.0} if info.takes_eta else {} for info in CATALOGUE if info.draws_noise(1.0)
}


def point_model(x, sigma):
    """Exact x0 estimate when the data is the single point MU."""
    return torch.full_like(x, MU)


def gaussian_model(x, sigma):
    """Exact E[x0 | x] for x0 ~ N(MU, S2) and x = x0 + sigma * noise."""
    var = sigma.to(x)[:, None, None, None] ** 2  # (B, 1, 1, 1)
    return MU + S2 / (S2 + var) * (x - MU)


def exact_ode(x_start, sigma_start, sigma_end):
    # The probability-flow ODE keeps (x - MU) / sqrt(S2 + sigma^2) constant.
    return MU + (x_start - MU) * math.sqrt(S2 + sigma_end**2) / math.sqrt(S2 + sigma_start**2)


def _start(sigmas, batch=2, seed=0, size=8):
    noise = NoiseSource(range(seed, seed + batch)).sample((batch, 1, size, size))
    return MU + noise.double() * sigmas[0].item()  # (B, 1, size, size) float64


def _sigmas(name, steps, schedule="karras"):
    return get_sigmas(name, schedule, steps, AC).double()


def test_registry_covers_exactly_the_catalogue():
    assert list(SAMPLER_FUNCTIONS) == list(SAMPLER_NAMES)
    assert all(callable(f) for f in SAMPLER_FUNCTIONS.values())


def test_noisy_samplers_are_the_known_ones():
    # The catalogue's flags, checked against what the samplers really do (tests below).
    assert STOCHASTIC == ("euler_a", "dpmpp_2m_sde", "lcm")
    assert set(NOISY) == {"euler_a", "dpmpp_2m_sde", "ddim", "lcm"}


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_point_data_lands_exactly_on_it(name):
    sigmas = get_sigmas("euler", "karras", 6, AC).double()  # ends at 0, for every sampler
    noise = NoiseSource([1, 2])
    out = SAMPLER_FUNCTIONS[name](
        point_model, _start(sigmas), sigmas, noise=noise, **NOISY.get(name, {})
    )
    torch.testing.assert_close(out, torch.full_like(out, MU), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["ddim", "plms"])
def test_point_data_with_ldm_sigmas_stops_at_sigma_min(name):
    sigmas = _sigmas(name, 8)  # ends at sigma(t=0) > 0
    x = _start(sigmas)
    out = SAMPLER_FUNCTIONS[name](point_model, x, sigmas)
    # eps stays constant along the exact path, so even multistep PLMS follows it exactly.
    expected = MU + (x - MU) * sigmas[-1].item() / sigmas[0].item()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)


def _ode_error(name, steps):
    sigmas = _sigmas(name, steps)
    x = _start(sigmas)
    out = SAMPLER_FUNCTIONS[name](gaussian_model, x, sigmas)
    return (out - exact_ode(x, sigmas[0].item(), sigmas[-1].item())).abs().max().item()


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_samplers_converge_to_ode_solution(name):
    errors = [_ode_error(name, steps) for steps in (10, 20, 40)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < (0.1 if name in ("euler", "ddim") else 0.01)


def test_higher_order_samplers_converge_faster_than_euler():
    def ratio(name):  # error(10 steps) / error(40 steps): ~4 for first order, ~16 for second
        return _ode_error(name, 10) / _ode_error(name, 40)

    euler = ratio("euler")
    assert 3 < euler < 5
    for name in ("heun", "dpmpp_2m", "lms"):
        assert ratio(name) > 2.5 * euler, name
    # PLMS against its own first-order counterpart on the same (CompVis) grid.
    assert ratio("plms") > 2 * ratio("ddim")


# LCM expects a consistency function (the ODE's end point), not E[x0 | x]: with the latter its
# variance collapses by design; tests/engine/test_lcm.py checks it with the right model.
@pytest.mark.parametrize("name", [name for name in NOISY if name != "lcm"])
def test_stochastic_samplers_reach_data_variance(name):
    def moments(steps):
        sigmas = _sigmas(name, steps)
        noise = NoiseSource(range(8))
        # Start from the exact marginal at sigma_max: N(MU, S2 + sigma_max^2).
        x = MU + noise.sample((8, 1, 32, 32)).double() * math.sqrt(S2 + sigmas[0].item() ** 2)
        out = SAMPLER_FUNCTIONS[name](gaussian_model, x, sigmas, noise=noise, **NOISY[name])
        return out.mean().item(), out.var().item()

    results = [moments(steps) for steps in (10, 40, 160)]
    var_errors = [abs(var - S2) for _, var in results]
    assert var_errors[2] < min(var_errors[:2]) or var_errors[2] < 0.01
    assert var_errors[2] < 0.03  # 8192 draws: sampling error of the variance ~0.004
    assert all(abs(mean - MU) < 0.02 for mean, _ in results)


def test_ddim_eta_zero_is_deterministic_and_ignores_noise():
    sigmas = _sigmas("ddim", 10)
    x = _start(sigmas)
    a = SAMPLER_FUNCTIONS["ddim"](gaussian_model, x, sigmas, eta=0.0, noise=NoiseSource([1, 2]))
    b = SAMPLER_FUNCTIONS["ddim"](gaussian_model, x, sigmas, eta=0.0)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", list(NOISY))
def test_stochastic_samplers_reproduce_from_seed(name):
    sigmas = _sigmas(name, 8)
    x = _start(sigmas)

    def run(seeds):
        return SAMPLER_FUNCTIONS[name](
            gaussian_model, x, sigmas, noise=NoiseSource(seeds), **NOISY[name]
        )

    assert torch.equal(run([5, 6]), run([5, 6]))
    assert not torch.allclose(run([5, 6]), run([7, 8]))
    # Image 1 of a batch equals the same image sampled alone with its own seed.
    alone = SAMPLER_FUNCTIONS[name](
        gaussian_model, x[1:], sigmas, noise=NoiseSource([6]), **NOISY[name]
    )
    torch.testing.assert_close(run([5, 6])[1:], alone, rtol=0, atol=0)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_samplers_need_a_noise_source(name):
    sigmas = _sigmas(name, 4)
    with pytest.raises(ValueError, match="noise"):
        SAMPLER_FUNCTIONS[name](gaussian_model, _start(sigmas), sigmas)


def test_noise_source_moves_to_device_and_dtype_of_like():
    like = torch.zeros(2, 4, 3, 3, dtype=torch.bfloat16)
    out = NoiseSource([0, 1])(like)
    assert out.dtype == torch.bfloat16 and out.shape == like.shape
    first = torch.randn((4, 3, 3), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out[1], first.to(torch.bfloat16))
    with pytest.raises(ValueError, match="seeds"):
        NoiseSource([0, 1])(torch.zeros(3, 4))


class _Counting:
    def __init__(self):
        self.calls = 0

    def __call__(self, x, sigma):
        self.calls += 1
        return gaussian_model(x, sigma)


def _run_counting(name, steps, callback):
    model = _Counting()
    sigmas = _sigmas(name, steps)
    kwargs = NOISY.get(name, {})
    SAMPLER_FUNCTIONS[name](
        model, _start(sigmas), sigmas, callback=callback, noise=NoiseSource([0, 1]), **kwargs
    )
    return model


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_callback_once_per_step_and_evaluation_count(name):
    seen = []
    model = _run_counting(name, 6, lambda i, denoised: seen.append((i, denoised.shape)))
    assert seen == [(i, (2, 1, 8, 8)) for i in range(6)]
    assert model.calls == sampler_info(name).evaluations(6)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("name", SAMPLER_NAMES)
@pytest.mark.parametrize("stop_at", [0, 3])
def test_exception_from_callback_stops_sampling(name, stop_at):
    model = _Counting()
    calls_at_stop = []

    def callback(i, denoised):
        if i == stop_at:
            calls_at_stop.append(model.calls)
            raise _Stop

    sigmas = _sigmas(name, 6)
    with pytest.raises(_Stop):
        SAMPLER_FUNCTIONS[name](
            model, _start(sigmas), sigmas, callback=callback, noise=NoiseSource([0, 1])
        )
    assert model.calls == calls_at_stop[0]  # no model call after the cancel
    # Step i's first evaluation is the (i+1)-th call, plus PLMS's extra one and Heun's second.
    extra = {"heun": stop_at, "plms": min(stop_at, 1)}.get(name, 0)
    assert model.calls == stop_at + 1 + extra


def test_lms_coefficients_integrate_lagrange_polynomials():
    s = [4.0, 2.0, 1.0, 0.5, 0.2]
    # Order 1: the step length. The weights of any order sum to the step length too.
    assert lms_coefficient(1, s, 0, 0) == pytest.approx(-2.0)
    for order, i in [(2, 1), (3, 2), (4, 3)]:
        coeffs = [lms_coefficient(order, s, i, j) for j in range(order)]
        assert sum(coeffs) == pytest.approx(s[i + 1] - s[i])
        # They integrate a polynomial of degree order-1 exactly: f(t) = t^(order-1).
        nodes = [s[i - j] for j in range(order)]
        exact = (s[i + 1] ** order - s[i] ** order) / order
        assert sum(
            c * t ** (order - 1) for c, t in zip(coeffs, nodes, strict=True)
        ) == pytest.approx(exact)


def test_unknown_sampler_has_no_record():
    with pytest.raises(ValueError):
        sampler_info("dpm_adaptive")


# -- step-by-step parity with diffusers' schedulers ----------------------------------------------

SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
LDM = dict(steps_offset=1, set_alpha_to_one=False)


def parity_eps(x_in, t):
    """A nonlinear stand-in for the UNet: eps depends on the input and on the timestep."""
    phase = torch.sin(t.float() / 150)[:, None, None, None]  # (B, 1, 1, 1)
    return 1.2 * torch.tanh(0.8 * x_in + 0.5 * phase)  # (B, C, H, W)


def parity_model():
    from engine.sampling.conditioning import Conditioning
    from engine.sampling.denoiser import UNetDenoiser

    denoiser = UNetDenoiser(lambda x, t, context: parity_eps(x, t), AC)
    return lambda x, sigma: denoiser(x, sigma, Conditioning(torch.zeros(x.shape[0], 1, 1)))


def run_diffusers(scheduler, x, steps, step_kwargs=lambda: {}):
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        eps = parity_eps(x_in, t.float().expand(x.shape[0]))
        x = scheduler.step(eps, t, x, **step_kwargs()).prev_sample
    return x


def _noise(seed=0):
    return NoiseSource([seed]).sample((1, 4, 8, 8))  # (1, 4, 8, 8)


def _to_ddpm(x, sigma):
    return x / math.sqrt(1 + float(sigma) ** 2)  # x_ddpm = sqrt(alpha_bar) * x


@pytest.mark.parametrize(
    "name, cls, extra",
    [
        ("euler", "EulerDiscreteScheduler", {}),
        ("lms", "LMSDiscreteScheduler", {}),
        ("heun", "HeunDiscreteScheduler", {}),
    ],
)
def test_k_samplers_match_diffusers_linspace(name, cls, extra):
    import diffusers

    if name == "lms":
        pytest.importorskip("scipy")  # diffusers integrates LMS coefficients with scipy.quad

    steps = 8
    scheduler = getattr(diffusers, cls)(**SD_BETAS, timestep_spacing="linspace", **extra)
    scheduler.set_timesteps(steps)
    x = _noise() * scheduler.init_noise_sigma
    expected = run_diffusers(scheduler, x, steps)
    sigmas = get_sigmas(name, "normal", steps, AC)
    out = SAMPLER_FUNCTIONS[name](parity_model(), x, sigmas)
    torch.testing.assert_close(out, expected, rtol=0, atol=2e-4)


def test_euler_a_matches_diffusers_with_same_generator():
    from diffusers import EulerAncestralDiscreteScheduler

    steps = 8
    scheduler = EulerAncestralDiscreteScheduler(**SD_BETAS, timestep_spacing="linspace")
    scheduler.set_timesteps(steps)
    x = _noise() * scheduler.init_noise_sigma
    generator = torch.Generator().manual_seed(42)  # diffusers draws (1, 4, 8, 8) per step
    expected = run_diffusers(scheduler, x, steps, lambda: {"generator": generator})
    sigmas = get_sigmas("euler_a", "normal", steps, AC)
    out = SAMPLER_FUNCTIONS["euler_a"](parity_model(), x, sigmas, noise=NoiseSource([42]))
    torch.testing.assert_close(out, expected, rtol=0, atol=2e-4)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers_ddim(eta):
    from diffusers import DDIMScheduler

    steps = 10
    scheduler = DDIMScheduler(**SD_BETAS, **LDM, clip_sample=False)
    x_ddpm = _noise()  # diffusers starts from unit noise at t=901, in DDPM space
    step_noise = NoiseSource([7])
    kwargs = (lambda: {"eta": eta, "variance_noise": step_noise(x_ddpm)}) if eta else dict
    expected = run_diffusers(scheduler, x_ddpm, steps, kwargs)
    sigmas = get_sigmas("ddim", "normal", steps, AC)
    x = x_ddpm * math.sqrt(1 + sigmas[0].item() ** 2)
    out = SAMPLER_FUNCTIONS["ddim"](parity_model(), x, sigmas, noise=NoiseSource([7]), eta=eta)
    torch.testing.assert_close(_to_ddpm(out, sigmas[-1]), expected, rtol=0, atol=2e-4)


def test_plms_matches_diffusers_pndm_without_prk():
    from diffusers import PNDMScheduler

    steps = 10
    # skip_prk_steps: diffusers' port of the CompVis PLMS warm-up (pseudo improved Euler).
    scheduler = PNDMScheduler(**SD_BETAS, **LDM, skip_prk_steps=True)
    x_ddpm = _noise()
    expected = run_diffusers(scheduler, x_ddpm, steps)
    sigmas = get_sigmas("plms", "normal", steps, AC)
    x = x_ddpm * math.sqrt(1 + sigmas[0].item() ** 2)
    out = SAMPLER_FUNCTIONS["plms"](parity_model(), x, sigmas)
    torch.testing.assert_close(_to_ddpm(out, sigmas[-1]), expected, rtol=0, atol=2e-4)


@pytest.mark.parametrize(
    "name, algorithm", [("dpmpp_2m", "dpmsolver++"), ("dpmpp_2m_sde", "sde-dpmsolver++")]
)
def test_dpmpp_matches_diffusers_multistep(name, algorithm):
    from diffusers import DPMSolverMultistepScheduler

    steps = 10
    # Not with use_karras_sigmas: diffusers then rounds the UNet's timestep but keeps the
    # unrounded sigma, an inconsistency we do not copy. Linspace timesteps are integers.
    scheduler = DPMSolverMultistepScheduler(
        **SD_BETAS, algorithm_type=algorithm, solver_order=2, final_sigmas_type="zero"
    )
    scheduler.set_timesteps(steps)
    sigmas = scheduler.sigmas.float()  # its rounded timesteps, as sigmas
    x_ddpm = _noise()  # DDPM space, unit variance at the first timestep
    step_noise = NoiseSource([3])
    kwargs = (lambda: {"variance_noise": step_noise(x_ddpm)}) if "sde" in name else dict
    expected = run_diffusers(scheduler, x_ddpm, steps, kwargs)
    x = x_ddpm * math.sqrt(1 + sigmas[0].item() ** 2)
    out = SAMPLER_FUNCTIONS[name](parity_model(), x, sigmas, noise=NoiseSource([3]))
    torch.testing.assert_close(out, expected, rtol=0, atol=2e-4)
