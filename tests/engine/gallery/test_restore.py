"""From any tool's recovered parameters to request fields: names mapped, ranges kept."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.api import GenerationRequest
from engine.gallery.read import read_metadata
from engine.gallery.recovered import RecoveredParameters
from engine.gallery.restore import restore_fields, sampler_id
from engine.validate import validate_request

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DPM++ 2M", ("dpmpp_2m", None)),
        ("DPM++ 2M Karras", ("dpmpp_2m", "karras")),  # A1111 before "Schedule type"
        ("Euler a", ("euler_a", None)),
        ("euler_ancestral", ("euler_a", None)),  # ComfyUI
        ("dpmpp_2m_sde_gpu", ("dpmpp_2m_sde", None)),  # ComfyUI, Fooocus
        ("k_euler_ancestral", ("euler_a", None)),  # NovelAI, InvokeAI 2
        ("k_lms", ("lms", None)),
        ("euler_a", ("euler_a", None)),  # InvokeAI
        ("dpmpp_2m_k", ("dpmpp_2m", "karras")),
        ("heun_k", ("heun", "karras")),
        ("pndm", ("plms", None)),
        ("ddim", ("ddim", None)),
        ("uni_pc", (None, None)),
        ("dpmpp_3m_sde_gpu", (None, None)),
        ("kdpm_2_a_k", (None, "karras")),
    ],
)
def test_sampler_names_of_every_tool(name, expected):
    assert sampler_id(name) == expected


def _fields(name: str) -> tuple[dict[str, object], tuple[str, ...]]:
    record = read_metadata(FIXTURES / name)
    assert record is not None
    restored = restore_fields(record)
    return restored.fields, restored.dropped


def test_comfyui_fields_and_the_seed_it_cannot_give():
    fields, dropped = _fields("comfyui.png")
    assert fields == {
        "prompt": "a lighthouse at dusk\noil painting",
        "negative_prompt": "blurry, watermark",
        "steps": 20,
        "guidance_scale": 8.0,
        "width": 512,
        "height": 768,
        "sampler": "euler_a",
        "schedule": "karras",
        "sgm_noise": True,
    }
    assert dropped == ("Seed 156680208700286 is outside 0..4294967295, the range this app takes.",)


def test_unknown_schedules_are_dropped_with_a_reason():
    fields, dropped = _fields("comfyui_custom_big_seed.png")
    # ComfyUI's "simple" is one of ours (engine.samplers.SCHEDULE_CATALOGUE).
    assert (fields["sampler"], fields["schedule"]) == ("dpmpp_2m", "simple")
    assert not any("schedule" in reason for reason in dropped)
    fields, dropped = _fields("novelai.png")
    assert (fields["sampler"], fields["seed"]) == ("euler_a", 3917283545)
    assert (fields["width"], fields["height"]) == (1216, 832)
    assert dropped == (
        "The schedule 'native' is not one this app has (normal, karras, sgm_uniform, simple, lcm).",
    )


@pytest.mark.parametrize(
    ("name", "schedule"),
    [
        ("SGM Uniform", "sgm_uniform"),
        ("SGMUniform", "sgm_uniform"),
        ("sgm_uniform", "sgm_uniform"),
        ("Simple", "simple"),
        ("LCM", "lcm"),
        ("KARRAS", "karras"),
    ],
)
def test_schedules_by_any_tools_name(name, schedule):
    restored = restore_fields(replace(_good_record(), sampler="Euler", schedule=name))
    assert restored.fields["schedule"] == schedule and restored.dropped == ()


def test_invokeai_and_fooocus_fields():
    fields, dropped = _fields("invokeai_v3.png")
    assert (fields["sampler"], fields["schedule"], fields["seed"]) == (
        "dpmpp_2m",
        "karras",
        3141592653,
    )
    assert (fields["guidance_scale"], fields["steps"]) == (7.5, 30) and dropped == ()
    fields, dropped = _fields("fooocus.png")
    assert (fields["sampler"], fields["schedule"], fields["width"]) == (
        "dpmpp_2m_sde",
        "karras",
        1152,
    )
    assert "seed" not in fields and len(dropped) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"steps": 500}, "Steps 500 is outside 1..150"),
        ({"steps": 0}, "Steps 0 is outside 1..150"),
        ({"cfg_scale": 75.0}, "Guidance 75.0 is outside 0.0..50.0"),
        ({"strength": 1.5}, "Denoising strength 1.5 is outside 0.0..1.0"),
        ({"seed": -1}, "Seed -1 is outside 0..4294967295"),
        ({"width": 4096}, "The size 4096x512 is not one this app makes"),
        ({"height": 500}, "The size 512x500 is not one this app makes"),
        ({"sampler": "uni_pc"}, "The sampler 'uni_pc' is not one this app has."),
        ({"schedule": "Automatic"}, "The schedule 'Automatic' is not one this app has"),
    ],
)
def test_out_of_range_values_are_dropped_with_a_reason(change, reason):
    record = replace(_good_record(), **change)
    restored = restore_fields(record)
    assert len(restored.dropped) == 1 and restored.dropped[0].startswith(reason)
    validate_request(replace(GenerationRequest(prompt="x"), **restored.fields))


def test_ddim_ignores_the_schedule():
    restored = restore_fields(replace(_good_record(), sampler="DDIM", schedule="simple"))
    assert restored.fields["sampler"] == "ddim" and "schedule" not in restored.fields
    assert restored.dropped == ()


def test_every_fixture_restores_to_a_valid_request():
    for path in sorted(FIXTURES.iterdir()):
        if path.suffix in (".png", ".jpg", ".webp"):
            record = read_metadata(path)
            assert record is not None, path.name
            fields = restore_fields(record).fields
            validate_request(replace(GenerationRequest(prompt="x"), **fields))


def _good_record() -> RecoveredParameters:
    return RecoveredParameters(
        tool="InvokeAI",
        prompt="p",
        negative_prompt="n",
        seed=5,
        steps=20,
        cfg_scale=7.0,
        sampler="euler",
        schedule="normal",
        width=512,
        height=512,
        strength=0.5,
    )
