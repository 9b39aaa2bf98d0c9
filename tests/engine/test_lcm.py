"""The LCM sampler: its boundary condition, its distribution, and diffusers' LCMScheduler.

Step parity runs a nonlinear stand-in for the UNet through diffusers' ``LCMScheduler`` and our
``sample_lcm`` on the same start noise and the same noise stream; image parity runs the whole
tiny model through ``StableDiffusionPipeline`` with ``LCMScheduler`` and through the Engine.
"""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from engine import Engine, GenerationRequest
from engine.cli import main
from engine.family import SD1
from engine.parameters import parse_parameters, request_from_parameters
from engine.sampling.lcm import boundary_scalings, sample_lcm
from engine.sampling.noise import NoiseSource
from engine.sampling.schedules import get_sigmas, schedule_sigmas
from tests.engine import reference
from tests.engine.test_samplers import parity_eps, parity_model
from tests.factories import (
    TINY_UNET,
    TINY_VAE,
    tiny_clip_config,
    tiny_sd1_state_dict,
    write_checkpoint,
)

AC = SD1.alphas_cumprod()
SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
MU, S2 = 0.3, 0.25
PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry, low quality"
SIZE = 64


def test_boundary_scalings_are_lcmschedulers():
    from diffusers import LCMScheduler

    ref = LCMScheduler(**SD_BETAS)
    for t in (0, 1, 19, 259, 999):
        assert boundary_scalings(t) == pytest.approx(
            ref.get_scalings_for_boundary_condition_discrete(t), rel=1e-12, abs=1e-15
        )
    assert boundary_scalings(0) == (1.0, 0.0)  # f(x, 0) = x: the consistency boundary
    c_skip, c_out = boundary_scalings(19)  # the smallest distilled timestep
    assert 6e-6 < c_skip < 7e-6 and 0 < 1 - c_out < 4e-6


def test_at_t0_the_step_returns_its_input():
    sigma_min = schedule_sigmas(AC)[0].item()  # t = 0: where "normal" and "karras" end
    x = NoiseSource([1]).sample((1, 4, 8, 8)).double()
    out = sample_lcm(parity_model(), x, torch.tensor([sigma_min, 0.0]), alphas_cumprod=AC)
    torch.testing.assert_close(out, x / math.sqrt(1 + sigma_min**2), rtol=1e-6, atol=1e-7)


def gaussian_consistency(x, sigma):
    """The exact consistency function (ODE end point) for x0 ~ N(MU, S2), x = x0 + sigma * n."""
    var = sigma.to(x)[:, None, None, None] ** 2  # (B, 1, 1, 1)
    return MU + (x - MU) * math.sqrt(S2) / torch.sqrt(S2 + var)


@pytest.mark.parametrize("schedule", ["lcm", "sgm_uniform"])
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_with_an_exact_consistency_function_any_step_count_samples_the_data(schedule, steps):
    sigmas = get_sigmas("lcm", schedule, steps, AC).double()
    noise = NoiseSource(range(8))
    x = MU + noise.sample((8, 1, 32, 32)).double() * math.sqrt(S2 + sigmas[0].item() ** 2)
    out = sample_lcm(gaussian_consistency, x, sigmas, noise=noise)
    # 8192 draws: standard errors ~0.006 (mean) and ~0.004 (variance).
    assert abs(out.mean().item() - MU) < 0.02 and abs(out.var().item() - S2) < 0.015
    # Re-noising draws fresh noise: the picture changes with the step count.
    if steps > 1:
        one = sample_lcm(gaussian_consistency, x, get_sigmas("lcm", schedule, 1, AC).double())
        assert not torch.allclose(out, one)


def _diffusers_lcm(steps: int, seed: int) -> torch.Tensor:
    from diffusers import LCMScheduler

    scheduler = LCMScheduler(**SD_BETAS, original_inference_steps=50, timestep_scaling=10.0)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)  # diffusers draws (1, 4, 8, 8) per step
    x = NoiseSource([0]).sample((1, 4, 8, 8))  # DDPM space: unit noise at t = 999
    for t in scheduler.timesteps:
        eps = parity_eps(x, t.float().expand(1))
        x = scheduler.step(eps, t, x, generator=generator).prev_sample
    return x


def _ours(steps: int, seed: int, boundary: bool = True) -> torch.Tensor:
    sigmas = get_sigmas("lcm", "lcm", steps, AC)
    x = NoiseSource([0]).sample((1, 4, 8, 8)) * math.sqrt(1 + sigmas[0].item() ** 2)
    return sample_lcm(
        parity_model(),
        x,
        sigmas,
        noise=NoiseSource([seed]),
        alphas_cumprod=AC if boundary else None,
    )


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_steps_match_lcmscheduler(steps):
    expected = _diffusers_lcm(steps, seed=9)
    # float32 rounding only: the stand-in's x0 reaches |30|, so 2e-5 is ~1 ulp there.
    torch.testing.assert_close(_ours(steps, seed=9), expected, rtol=0, atol=2e-5)


def test_the_boundary_condition_is_what_makes_50_steps_exact():
    expected = _diffusers_lcm(50, seed=4)  # the last step at t = 19: c_skip 7e-6
    ours, plain = _ours(50, seed=4), _ours(50, seed=4, boundary=False)
    assert (ours - expected).abs().max() < 3e-6
    assert (plain - expected).abs().max() > 5e-6  # k-diffusion's LCM: close, not exact


# -- the whole pipeline ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights():
    return tiny_sd1_state_dict(seed=3)


@pytest.fixture(scope="module")
def ckpt(weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny-sd1.safetensors"
    write_checkpoint(weights, path)
    return path


@pytest.fixture(scope="module")
def engine(ckpt):
    eng = Engine(device="cpu", precision="full")
    eng.load_model(ckpt)
    return eng


@pytest.fixture(scope="module")
def pipe(weights, tmp_path_factory):
    from diffusers import LCMScheduler

    # steps_offset only silences diffusers' "outdated config" notice: LCM timesteps ignore it.
    scheduler = LCMScheduler(
        **reference.sd_scheduler_config(), original_inference_steps=50, steps_offset=1
    )
    return reference.diffusers_pipeline(
        weights,
        TINY_UNET,
        TINY_VAE,
        tiny_clip_config(),
        scheduler,
        tmp_path_factory.mktemp("tokenizer"),
    )


def _request(**kw) -> GenerationRequest:
    base = dict(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        width=SIZE,
        height=SIZE,
        steps=4,
        guidance_scale=1.5,
        seed=42,
        sampler="lcm",
        schedule="lcm",
    )
    return GenerationRequest(**{**base, **kw})


@pytest.mark.parametrize(("steps", "guidance", "seed"), [(4, 1.5, 42), (6, 1.0, 7)])
def test_image_equals_diffusers_lcmscheduler(engine, pipe, steps, guidance, seed):
    theirs = reference.run_diffusers(
        pipe,
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        num_inference_steps=steps,
        guidance_scale=guidance,
        seed=seed,
        width=SIZE,
        height=SIZE,
    )
    result = engine.generate(_request(steps=steps, guidance_scale=guidance, seed=seed))
    ours = result.images[0].image
    assert ours.std() > 2, "degenerate test image: the comparison would prove nothing"
    # The project's pipeline parity tolerance: float32 summation order only.
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.2, (diff.max(), diff.mean())
    # A different noise stream (another seed for the re-noising) would not pass.
    other = engine.generate(_request(steps=steps, guidance_scale=guidance, seed=seed + 1))
    assert np.abs(other.images[0].image.astype(int) - theirs.astype(int)).max() > 10


@pytest.fixture
def unet_batches(engine, monkeypatch):
    """The batch size of every UNet call of the engine's model."""
    batches: list[int] = []
    unet_type = type(engine._bundle.unet)
    real = unet_type.forward

    def forward(self, x, *args, **kwargs):
        batches.append(x.shape[0])
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(unet_type, "forward", forward)
    return batches


@pytest.mark.parametrize(("guidance", "rows"), [(1.0, 2), (1.5, 4)])
def test_guidance_1_skips_the_unconditional_pass(engine, unet_batches, guidance, rows):
    engine.generate(_request(steps=4, guidance_scale=guidance, batch_size=2, preview_every=0))
    # One UNet call per step; guidance 1 only the conditional rows, else uncond and cond.
    assert unet_batches == [rows] * 4


@pytest.mark.parametrize(
    ("schedule", "written"),
    [("lcm", "LCM"), ("sgm_uniform", "SGM Uniform"), ("simple", "Simple")],
)
def test_parameters_name_sampler_and_schedule_and_read_back(engine, schedule, written):
    result = engine.generate(_request(steps=2, schedule=schedule, preview_every=0))
    text = result.images[0].parameters
    assert f"Sampler: LCM, Schedule type: {written}, CFG scale: 1.5" in text
    fields = request_from_parameters(parse_parameters(text))
    assert (fields["sampler"], fields["schedule"], fields["steps"]) == ("lcm", schedule, 2)
    assert fields["guidance_scale"] == 1.5


def _cli(ckpt, outdir, *extra) -> list[str]:
    return [
        "txt2img",
        "--ckpt",
        str(ckpt),
        "--outdir",
        str(outdir),
        "--prompt",
        PROMPT,
        "--H",
        str(SIZE),
        "--W",
        str(SIZE),
        "--precision",
        "full",
        "--seed",
        "42",
        "--scale",
        "1.5",
        "--json",
        *extra,
    ]


def test_cli_sampler_lcm_schedule_lcm(engine, ckpt, tmp_path, capsys):
    code = main(_cli(ckpt, tmp_path, "--sampler", "lcm", "--schedule", "lcm", "--steps", "4"))
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    with Image.open(summary["images"][0]["path"]) as im:
        written = np.asarray(im.convert("RGB"))
        params = im.info["parameters"]
    assert "Steps: 4, Sampler: LCM, Schedule type: LCM, CFG scale: 1.5, Seed: 42" in params
    same = engine.generate(_request(negative_prompt="", preview_every=0)).images[0].image
    assert np.array_equal(written, same)


def test_cli_lcm_defaults_to_its_schedule_and_6_steps(ckpt, tmp_path, capsys):
    assert main(_cli(ckpt, tmp_path, "--sampler", "lcm")) == 0
    summary = json.loads(capsys.readouterr().out)
    with Image.open(summary["images"][0]["path"]) as im:
        params = im.info["parameters"]
    assert "Steps: 6, Sampler: LCM, Schedule type: LCM" in params


def test_cli_refuses_more_lcm_steps_than_distilled(ckpt, tmp_path, capsys):
    code = main(_cli(ckpt, tmp_path, "--sampler", "lcm", "--steps", "60"))
    assert code != 0
    err = capsys.readouterr().err
    assert "at most 50 steps" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.png"))
