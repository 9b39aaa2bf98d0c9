"""The sampler catalogue: one record per sampler, and everything that derives from it."""

import subprocess
import sys

import pytest

from engine.api import SAMPLERS, GenerationRequest
from engine.cli import build_parser, requests_from_args
from engine.samplers import (
    CATALOGUE,
    DEFAULT_SAMPLER,
    find_sampler,
    sampler_ids,
    sampler_info,
)


def test_request_ids_are_the_catalogue():
    assert SAMPLERS == sampler_ids() == tuple(info.id for info in CATALOGUE)
    assert GenerationRequest(prompt="").sampler == DEFAULT_SAMPLER in SAMPLERS


def test_every_name_means_one_sampler():
    # An id may equal its own display name in lower case ("ddim", "DDIM"); never another's.
    owners: dict[str, set[str]] = {}
    for info in CATALOGUE:
        for name in (info.id, info.display_name, *info.aliases):
            owners.setdefault(name.casefold(), set()).add(info.id)
            assert find_sampler(name) is info
    assert all(len(ids) == 1 for ids in owners.values())
    assert find_sampler("UniPC") is None


def test_display_names_are_a1111s():
    assert [info.display_name for info in CATALOGUE] == [
        "Euler",
        "Euler a",
        "Heun",
        "LMS",
        "DPM++ 2M",
        "DPM++ 2M SDE",
        "DDIM",
        "PLMS",
        "LCM",
    ]


def test_defaults_schedules_and_noise():
    own_timesteps = {info.id for info in CATALOGUE if not info.uses_schedule}
    assert own_timesteps == {"ddim", "plms"}
    few_steps = {"lcm": 6}  # made for LCM models, on their own schedule
    assert {info.id: info.default_steps for info in CATALOGUE} == {
        i: 50 if i in own_timesteps else few_steps.get(i, 25) for i in SAMPLERS
    }
    assert {info.id: info.default_schedule for info in CATALOGUE} == {
        i: "normal" if i in own_timesteps else "lcm" if i in few_steps else "karras"
        for i in SAMPLERS
    }
    ddim = sampler_info("ddim")
    assert not ddim.draws_noise(0.0) and ddim.draws_noise(0.5)
    assert sampler_info("euler_a").draws_noise() and not sampler_info("euler").draws_noise(1.0)


@pytest.mark.parametrize("steps", [1, 2, 7])
def test_evaluation_counts(steps):
    counts = {info.id: info.evaluations(steps) for info in CATALOGUE}
    assert counts.pop("heun") == 2 * steps - 1
    assert counts.pop("plms") == steps + 1
    assert set(counts.values()) == {steps}


def test_unknown_id_raises():
    with pytest.raises(ValueError, match="unknown sampler"):
        sampler_info("Euler a")  # a display name, not an id


def test_catalogue_and_parameters_need_no_torch():
    code = (
        "import sys, engine.samplers, engine.api, engine.parameters, engine.image_metadata;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _cli_request(*flags: str) -> GenerationRequest:
    args = build_parser().parse_args(["txt2img", "--ckpt", "x.safetensors", *flags])
    (request,) = requests_from_args(args, None)
    return request


@pytest.mark.parametrize("info", CATALOGUE, ids=lambda info: info.id)
def test_cli_defaults_come_from_the_catalogue(info):
    request = _cli_request("--sampler", info.id)
    assert request.steps == info.default_steps
    assert request.schedule == info.default_schedule
    assert request.schedule == (
        "normal" if not info.uses_schedule else "lcm" if info.id == "lcm" else "karras"
    )
    assert request.sgm_noise is True


def test_cli_flags_override_the_defaults():
    request = _cli_request("--plms", "--steps", "7", "--schedule", "karras", "--no-sgm-noise")
    assert (request.sampler, request.steps, request.schedule) == ("plms", 7, "karras")
    assert request.sgm_noise is False
    assert _cli_request().sampler == DEFAULT_SAMPLER
