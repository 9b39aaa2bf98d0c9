"""The few-step schedules "sgm_uniform", "simple" and "lcm" against the formulas that define them.

ComfyUI's formulas (``comfy/samplers.py``: ``simple_scheduler``, ``normal_scheduler(sgm=True)``;
``comfy/model_sampling.py``: the float32 sigma table and its log-linear ``sigma(t)``) are written
out here from their definitions, independently of the engine; diffusers' schedulers are the
second reference where one computes the same thing.
"""

import numpy as np
import pytest
import torch
from diffusers import EulerDiscreteScheduler, LCMScheduler

from engine.api import SCHEDULES, GenerationRequest
from engine.errors import InvalidRequestError
from engine.family import SD1
from engine.samplers import SCHEDULE_CATALOGUE, schedule_ids
from engine.sampling.schedules import (
    SCHEDULE_FUNCTIONS,
    get_sigmas,
    lcm_timesteps,
    schedule_sigmas,
    sigmas_lcm,
    sigmas_sgm_uniform,
    sigmas_simple,
)
from engine.validate import validate_request

SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
AC = SD1.alphas_cumprod()


def comfy_sigma_table() -> torch.Tensor:
    """ComfyUI's ``ModelSamplingDiscrete`` sigmas: numpy float64 cumprod, then float32."""
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    alphas_cumprod = torch.tensor(np.cumprod(1.0 - betas, axis=0), dtype=torch.float32)
    return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5  # (1000,) float32, increasing


def comfy_simple(steps: int) -> torch.Tensor:
    table = comfy_sigma_table()
    stride = len(table) / steps
    return torch.tensor([float(table[-(1 + int(x * stride))]) for x in range(steps)] + [0.0])


def comfy_sgm_uniform(steps: int) -> torch.Tensor:
    table = comfy_sigma_table()
    log_table = table.log()
    # start = timestep(sigma_max) = 999, end = timestep(sigma_min) = 0 (nearest table entry).
    timesteps = torch.linspace(999, 0, steps + 1)[:-1]  # float32, as torch.linspace
    sigmas = []
    for t in timesteps:
        low, high, w = int(t.floor()), int(t.ceil()), float(t - t.floor())
        sigmas.append(float(((1 - w) * log_table[low] + w * log_table[high]).exp()))
    return torch.tensor(sigmas + [0.0])


def test_schedule_functions_cover_exactly_the_catalogue():
    assert tuple(SCHEDULE_FUNCTIONS) == schedule_ids() == SCHEDULES
    assert [info.display_name for info in SCHEDULE_CATALOGUE] == [
        "Normal",
        "Karras",
        "SGM Uniform",  # A1111's labels (modules/sd_schedulers.py)
        "Simple",
        "LCM",
    ]


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 6, 7, 8, 13, 25, 33, 50, 99, 150])
def test_simple_is_comfyuis_formula(steps):
    ours = get_sigmas("euler", "simple", steps, AC)
    assert ours.shape == (steps + 1,)
    # Same table entries: only ComfyUI's float32 alphas_cumprod differs (< 1e-6 relative).
    torch.testing.assert_close(ours, comfy_simple(steps), rtol=2e-6, atol=0)


@pytest.mark.parametrize("steps", [1, 2, 4, 5, 8, 10, 20, 25, 40, 50])
def test_simple_equals_diffusers_trailing_when_steps_divide_1000(steps):
    ref = EulerDiscreteScheduler(**SD_BETAS, timestep_spacing="trailing")
    ref.set_timesteps(steps)
    # diffusers' float32 alphas_cumprod: a few 1e-6 relative near sigma_min.
    torch.testing.assert_close(sigmas_simple(steps, AC).float(), ref.sigmas, rtol=1e-5, atol=0)


def test_simple_truncates_where_diffusers_trailing_rounds():
    sigmas = schedule_sigmas(AC)
    # ComfyUI: offsets int(1 * 333.3) = 333 and int(2 * 333.3) = 666 -> t = 999, 666, 333.
    torch.testing.assert_close(sigmas_simple(3, AC)[:-1], sigmas[[999, 666, 333]])
    ref = EulerDiscreteScheduler(**SD_BETAS, timestep_spacing="trailing")
    ref.set_timesteps(3)
    assert ref.timesteps.tolist() == [999, 666, 332]  # round(333.3) - 1: not ComfyUI's


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 6, 8, 13, 25, 50, 150])
def test_sgm_uniform_is_comfyuis_formula(steps):
    ours = get_sigmas("euler", "sgm_uniform", steps, AC)
    assert ours.shape == (steps + 1,)
    # float32 linspace and table in ComfyUI, float64 here: a few 1e-6 relative.
    torch.testing.assert_close(ours, comfy_sgm_uniform(steps), rtol=1e-5, atol=0)


@pytest.mark.parametrize("steps", [2, 4, 8, 25])
def test_sgm_uniform_is_diffusers_linspace_one_longer_without_its_t0_step(steps):
    # diffusers' "linspace" over steps + 1 timesteps ends with the step at t = 0 that
    # sgm_uniform drops; diffusers interpolates in sigma, we (as ComfyUI) in log-sigma.
    ref = EulerDiscreteScheduler(**SD_BETAS, timestep_spacing="linspace")
    ref.set_timesteps(steps + 1)
    expected = torch.cat([ref.sigmas[:-2], ref.sigmas[-1:]])
    torch.testing.assert_close(sigmas_sgm_uniform(steps, AC).float(), expected, rtol=2e-4, atol=0)


def test_sgm_uniform_never_calls_the_model_at_sigma_min():
    sigmas = sigmas_sgm_uniform(4, AC)
    # Timesteps 999, 749.25, 499.5, 249.75: the last model call is well above t = 0.
    assert sigmas[-2] > schedule_sigmas(AC)[249] and sigmas[-1] == 0


def test_lcm_timesteps_are_lcmschedulers_for_every_step_count():
    ref = LCMScheduler(**SD_BETAS, original_inference_steps=50)
    for steps in range(1, 51):
        ref.set_timesteps(steps)
        assert lcm_timesteps(steps, 1000) == ref.timesteps.tolist(), steps


def test_lcm_sigmas_and_examples():
    assert lcm_timesteps(4, 1000) == [999, 759, 499, 259]
    assert lcm_timesteps(1, 1000) == [999]
    assert lcm_timesteps(50, 1000)[-1] == 19  # the distillation's smallest timestep
    expected = schedule_sigmas(AC)[[999, 759, 499, 259]]
    torch.testing.assert_close(sigmas_lcm(4, AC), torch.cat([expected, AC.new_zeros(1)]))


def test_lcm_schedule_refuses_more_steps_than_distilled():
    with pytest.raises(ValueError, match="at most 50"):
        get_sigmas("lcm", "lcm", 51, AC)
    with pytest.raises(InvalidRequestError, match="at most 50 steps") as info:
        validate_request(GenerationRequest("x", sampler="euler", schedule="lcm", steps=60))
    assert "choose another schedule" in str(info.value)
    # DDIM and PLMS ignore the schedule, so its limit does not apply to them.
    validate_request(GenerationRequest("x", sampler="ddim", schedule="lcm", steps=60))


@pytest.mark.parametrize("schedule", ["sgm_uniform", "simple", "lcm"])
@pytest.mark.parametrize("steps", [1, 4, 8])
def test_few_step_schedules_start_at_sigma_max_and_end_at_zero(schedule, steps):
    sigmas = get_sigmas("euler", schedule, steps, AC)
    assert sigmas.dtype == torch.float32 and sigmas.shape == (steps + 1,)
    assert sigmas[0].item() == pytest.approx(14.6146, abs=1e-3)
    assert torch.all(sigmas[:-1] > sigmas[1:]) and sigmas[-1] == 0


def test_a1111_names_are_written_and_read_back():
    from engine.parameters import (
        sampler_display_name,
        sampler_from_display,
        schedule_display_name,
        schedule_from_display,
    )

    assert [schedule_display_name(s) for s in SCHEDULES] == [
        info.display_name for info in SCHEDULE_CATALOGUE
    ]
    for name, schedule in [
        ("SGM Uniform", "sgm_uniform"),
        ("SGMUniform", "sgm_uniform"),  # A1111's alias
        ("sgm_uniform", "sgm_uniform"),  # ComfyUI's id
        ("Simple", "simple"),
        ("LCM", "lcm"),
        ("Automatic", None),
        ("Exponential", None),
    ]:
        assert schedule_from_display(name) == schedule, name
    assert sampler_display_name("lcm") == "LCM"
    assert sampler_from_display("LCM") == sampler_from_display("k_lcm") == "lcm"


@pytest.mark.parametrize(
    ("texts", "sampler", "schedule"),
    [
        # InvokeAI writes diffusers' scheduler names: "lcm" is LCMScheduler.
        ({"invokeai_metadata": {"scheduler": "lcm", "steps": 6, "cfg_scale": 1.5}}, "lcm", "lcm"),
        (
            {"parameters": "a fox\nSteps: 4, Sampler: Euler a, Schedule type: SGM Uniform"},
            "euler_a",
            "sgm_uniform",
        ),
    ],
)
def test_other_tools_pictures_restore_the_few_step_choices(texts, sampler, schedule):
    import json

    from engine.gallery.read import read_texts
    from engine.gallery.restore import restore_fields
    from tests.engine.gallery.fixtures.make_fixtures import INVOKEAI_V3

    if "invokeai_metadata" in texts:
        texts = {"invokeai_metadata": json.dumps({**INVOKEAI_V3, **texts["invokeai_metadata"]})}
    record = read_texts(texts)
    assert record is not None
    restored = restore_fields(record)
    assert (restored.fields["sampler"], restored.fields["schedule"]) == (sampler, schedule)
    assert restored.dropped == ()
