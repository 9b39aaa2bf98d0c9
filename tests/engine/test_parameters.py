"""The A1111 ``parameters`` text: round-trips, real samples, robustness."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.api import SAMPLERS, GenerationRequest
from engine.parameters import (
    LEGACY_VERSION,
    SGM_NOISE_KEY,
    Parameters,
    format_parameters,
    format_value,
    normalize_newlines,
    parse_parameters,
    request_from_parameters,
    sampler_display_name,
    sampler_from_display,
    schedule_display_name,
    schedule_from_display,
    version_label,
)
from engine.samplers import CATALOGUE, SamplerInfo

# Pieces that stress the format: separators, quotes, markers, look-alike settings, scripts.
TRICKY = [
    "\n",
    "\r\n",
    "\r",
    ", ",
    ": ",
    ",",
    ":",
    '"',
    '\\"',
    " ",
    "  ",
    "\t",
    "Steps: 3, Sampler: Euler, Seed: 1",
    "Negative prompt: ",
    "Negative prompt:",
    "(masterpiece:1.2)",
    "<lora:detail:0.5>",
    "😀",
    "日本語の猫",
    "кошка",
    "\u2028",
    "\x85",
    "[1]",
    "{}",
    "é",
]
text_with_tricks = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=8)), max_size=12)
tricky_text = text_with_tricks.map("".join)


def _no_marker_line(prompt: str) -> bool:
    lines = normalize_newlines(prompt).split("\n")
    return not any(line.startswith("Negative prompt:") for line in lines)


# A prompt may not hold a line starting with "Negative prompt:": see engine/parameters.py.
prompts = tricky_text.filter(_no_marker_line)
keys = st.from_regex(r"\w[\w \-/().+]{0,15}", fullmatch=True).filter(
    lambda k: k == k.strip() and k != "Steps"
)
values = st.one_of(
    tricky_text,
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.sampled_from(["", " x", "x ", '"quoted"', "[1]", "[1] x", "{", "a\tb", "512x512"]),
)


@st.composite
def settings_dicts(draw: st.DrawFn) -> dict[str, object]:
    others = draw(st.dictionaries(keys, values, max_size=6))
    steps = draw(values)
    items = list(others.items())
    items.insert(draw(st.integers(0, len(items))), ("Steps", steps))
    return dict(items)


@settings(max_examples=400, deadline=None)
@given(prompts, tricky_text, settings_dicts())
def test_format_then_parse_round_trips(prompt: str, negative: str, values: dict) -> None:
    parsed = parse_parameters(format_parameters(prompt, negative, values))
    assert parsed.prompt == normalize_newlines(prompt)
    assert parsed.negative_prompt == normalize_newlines(negative)
    assert parsed.settings == {k: format_value(v) for k, v in values.items()}
    assert list(parsed.settings) == list(values)


@settings(max_examples=200, deadline=None)
@given(prompts, tricky_text, settings_dicts())
def test_format_is_stable_under_reformatting(prompt: str, negative: str, values: dict) -> None:
    text = format_parameters(prompt, negative, values)
    parsed = parse_parameters(text)
    assert format_parameters(parsed.prompt, parsed.negative_prompt, parsed.settings) == text


@settings(max_examples=200, deadline=None)
@given(prompts, tricky_text)
def test_prompt_without_settings_round_trips_unless_last_line_is_settings(
    prompt: str, negative: str
) -> None:
    text = format_parameters(prompt, negative, {})
    parsed = parse_parameters(text)
    if parsed.settings:  # the documented ambiguity: the last line read as settings
        assert "Steps" in parsed.settings or len(parsed.settings) >= 3
        return
    assert (parsed.prompt, parsed.negative_prompt) == (
        normalize_newlines(prompt),
        normalize_newlines(negative),
    )


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), tricky_text, st.binary()))
def test_parse_never_raises(text: str | bytes) -> None:
    parsed = parse_parameters(text)
    assert isinstance(parsed.prompt, str) and isinstance(parsed.negative_prompt, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.settings.items())
    request_from_parameters(parsed)  # must not raise either


def test_prompt_whose_last_line_looks_like_settings_stays_prompt() -> None:
    prompt = "a castle\nSteps: 3, Sampler: Euler, CFG scale: 2, Seed: 9"
    text = format_parameters(prompt, "", {"Steps": 20, "Seed": 5})
    parsed = parse_parameters(text)
    assert parsed.prompt == prompt
    assert parsed.settings == {"Steps": "20", "Seed": "5"}


def test_negative_prompt_may_contain_the_marker() -> None:
    negative = "ugly\nNegative prompt: still negative"
    parsed = parse_parameters(format_parameters("p", negative, {"Steps": 1}))
    assert (parsed.prompt, parsed.negative_prompt) == ("p", negative)


def test_written_text_matches_the_a1111_layout() -> None:
    text = format_parameters(
        "a photo of a cat,\nsitting",
        "blurry",
        {
            "Steps": 25,
            "Sampler": "DPM++ 2M",
            "Schedule type": "Karras",
            "CFG scale": 7.0,
            "Seed": 1234,
            "Size": "512x512",
            "Model hash": "6ce0161689",
            "Model": "v1-5-pruned-emaonly",
            "Denoising strength": 0.75,
            "Lora hashes": "a: 1, b: 2",
            "VAE": None,
        },
    )
    assert text == (
        "a photo of a cat,\nsitting\n"
        "Negative prompt: blurry\n"
        "Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
        "Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
        'Denoising strength: 0.75, Lora hashes: "a: 1, b: 2"'
    )


def test_empty_negative_prompt_line_is_omitted() -> None:
    assert format_parameters("cat", "", {"Steps": 3}) == "cat\nSteps: 3"


@pytest.mark.parametrize(
    ("value", "text"),
    [(7.0, "7"), (7.5, "7.5"), (0.75, "0.75"), (25, "25"), (True, "True"), (-0.0, "0")],
)
def test_numbers_print_as_a1111_does(value: object, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize("key", ["Bad:key", "a,b", " Steps", "Steps ", "", "new\nline"])
def test_invalid_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        format_parameters("p", "", {key: 1})


A1111_SAMPLE = (
    "masterpiece, best quality, 1girl, (blue eyes:1.2),\n"
    "standing in a field of flowers\n"
    "Negative prompt: lowres, bad anatomy, bad hands,\n"
    "text, error, missing fingers\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 3336452418, Size: 512x768, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.55, Clip skip: 2, "
    'ENSD: 31337, Hires upscale: 2, Hires upscaler: Latent, Lora hashes: "add_detail: '
    '7c6bad76eb54, epiNoiseoffset_v2: d1131f7207d6", TI hashes: "easynegative: c74b4e810b03", '
    "Version: v1.6.0"
)


def test_real_a1111_text() -> None:
    parsed = parse_parameters(A1111_SAMPLE)
    assert parsed.prompt.endswith("(blue eyes:1.2),\nstanding in a field of flowers")
    assert parsed.negative_prompt == "lowres, bad anatomy, bad hands,\ntext, error, missing fingers"
    assert parsed.settings["Lora hashes"] == (
        "add_detail: 7c6bad76eb54, epiNoiseoffset_v2: d1131f7207d6"
    )
    assert parsed.settings["TI hashes"] == "easynegative: c74b4e810b03"
    assert parsed.settings["Version"] == "v1.6.0"
    assert len(parsed.settings) == 15
    assert request_from_parameters(parsed) == {
        "prompt": parsed.prompt,
        "negative_prompt": parsed.negative_prompt,
        "steps": 28,
        "guidance_scale": 7.5,
        "seed": 3336452418,
        "clip_skip": 2,
        "sampler": "dpmpp_2m",
        "schedule": "karras",  # from the old-style "DPM++ 2M Karras" sampler name
        "width": 512,
        "height": 768,
        "sgm_noise": False,  # A1111's default: no "SGM noise multiplier" key
        # A hires txt2img picture: its denoising strength is the hires pass's, not img2img's.
        "hires_scale": 2.0,
        "hires_steps": 0,  # no "Hires steps": as many as Steps
        "hires_denoise": 0.55,
        "hires_upscaler": "latent",
    }


def test_real_forge_text_with_windows_newlines() -> None:
    text = (
        "a lighthouse at dusk, oil painting\r\n"
        "Negative prompt: \r\n"
        "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 1, "
        "Distilled CFG Scale: 3.5, Seed: 42, Size: 896x1152, Model hash: 7d4a1f3e5b, "
        "Model: flux1-dev-bnb-nf4-v2, Version: f2.0.1v1.10.1-previous-519-g44eb4ea8, "
        "Module 1: ae, Module 2: clip_l\r\n"
    )
    parsed = parse_parameters(text)
    assert parsed.prompt == "a lighthouse at dusk, oil painting"
    assert parsed.negative_prompt == ""
    assert parsed.settings["Module 2"] == "clip_l"
    fields = request_from_parameters(parsed)
    assert fields["sampler"] == "euler_a" and fields["seed"] == 42
    assert "schedule" not in fields  # "Automatic" says nothing we can use
    assert (fields["width"], fields["height"]) == (896, 1152)


def test_comfyui_text_exported_a1111_style() -> None:
    text = (
        "cinematic photo of a fox\n"
        "Negative prompt: cartoon\n"
        "Steps: 30, Sampler: euler_ancestral karras, CFG scale: 6.5, Seed: 77, Size: 768x512, "
        "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: ComfyUI, "
        'Civitai resources: [{"type":"checkpoint","modelVersionId":128713}], '
        "Civitai metadata: {}"
    )
    parsed = parse_parameters(text)
    assert parsed.settings["Civitai resources"] == (
        '[{"type":"checkpoint","modelVersionId":128713}]'
    )
    assert parsed.settings["Civitai metadata"] == "{}"
    fields = request_from_parameters(parsed)
    assert (fields["sampler"], fields["schedule"], fields["guidance_scale"]) == (
        "euler_a",
        "karras",
        6.5,
    )


def test_missing_and_extra_keys() -> None:
    parsed = parse_parameters("a dog\nSteps: 12, Sampler: Heun, My extension: on")
    assert parsed.prompt == "a dog"
    assert parsed.settings == {"Steps": "12", "Sampler": "Heun", "My extension": "on"}
    fields = request_from_parameters(parsed)
    assert fields == {
        "prompt": "a dog",
        "negative_prompt": "",
        "steps": 12,
        "sampler": "heun",
        "sgm_noise": False,
    }


def test_invalid_values_are_skipped_silently() -> None:
    parsed = parse_parameters(
        "x\nSteps: many, Sampler: Foo, CFG scale: nan, Seed: -1, Size: 13x7, "
        "Denoising strength: 1.5, Schedule type: Weird, Clip skip: 0"
    )
    assert request_from_parameters(parsed) == {
        "prompt": "x",
        "negative_prompt": "",
        "sgm_noise": False,  # a settings line without the key: another tool's default
    }


def test_three_known_keys_without_steps_make_a_settings_line() -> None:
    parsed = parse_parameters("prompt\nSampler: Euler, Seed: 3, Size: 64x64")
    assert parsed.prompt == "prompt" and parsed.settings["Seed"] == "3"


@pytest.mark.parametrize(
    "text",
    [
        "just a prompt, with commas: and colons",
        "one line\nSeed: 3, Size: 64x64",  # two known keys are not enough
        "portrait of a man\nwearing a hat: red, beard: long, style: noir",
    ],
)
def test_prompt_only_texts_stay_prompt(text: str) -> None:
    assert parse_parameters(text) == Parameters(prompt=text)


def test_settings_only_text() -> None:
    parsed = parse_parameters("Steps: 5, Seed: 1\n")
    assert parsed == Parameters(prompt="", settings={"Steps": "5", "Seed": "1"})


def test_request_fields_apply_to_a_request() -> None:
    parsed = parse_parameters(format_parameters("p", "n", {"Steps": 9, "Sampler": "DDIM"}))
    request = dataclasses.replace(GenerationRequest(prompt=""), **request_from_parameters(parsed))
    assert (request.prompt, request.negative_prompt, request.steps) == ("p", "n", 9)
    assert request.sampler == "ddim"


def test_ddim_eta_is_recovered_only_for_ddim() -> None:
    ddim = parse_parameters("p\nSteps: 9, Sampler: DDIM, Eta DDIM: 0.3")
    assert request_from_parameters(ddim)["eta"] == 0.3
    ours = parse_parameters(format_parameters("p", "", {"Steps": 9, "Sampler": "DDIM", "Eta": 1}))
    assert request_from_parameters(ours)["eta"] == 1.0
    euler = parse_parameters("p\nSteps: 9, Sampler: Euler a, Eta: 0.5")
    assert "eta" not in request_from_parameters(euler)


def test_sampler_and_schedule_names_round_trip() -> None:
    for ident in SAMPLERS:
        assert sampler_from_display(sampler_display_name(ident)) == ident
    assert sampler_display_name("euler_a") == "Euler a"
    assert sampler_display_name("dpmpp_2m_sde") == "DPM++ 2M SDE"
    assert sampler_from_display("DPM++ 2M SDE Karras") == "dpmpp_2m_sde"
    assert sampler_from_display("k_euler_a") == "euler_a"
    assert sampler_from_display("UniPC") is None
    assert schedule_display_name("karras") == "Karras"
    assert schedule_display_name("normal") == "Normal"
    assert schedule_from_display("Karras") == "karras"
    assert schedule_from_display("Automatic") is None


@pytest.mark.parametrize("info", CATALOGUE, ids=lambda info: info.id)
def test_every_sampler_name_round_trips_through_the_text(info: SamplerInfo) -> None:
    text = format_parameters("p", "", {"Steps": 3, "Sampler": sampler_display_name(info.id)})
    assert f"Sampler: {info.display_name}," in text + ","
    assert request_from_parameters(parse_parameters(text))["sampler"] == info.id
    for alias in info.aliases:
        assert sampler_from_display(alias) == info.id
        assert sampler_from_display(alias.upper()) == info.id
    assert sampler_from_display(info.display_name + " Karras") == info.id


def _sgm_noise(settings: str) -> object:
    return request_from_parameters(parse_parameters("a cat\n" + settings)).get("sgm_noise")


def test_sgm_noise_key_is_read() -> None:
    assert _sgm_noise("Steps: 20, Sampler: Euler, SGM noise multiplier: True, Version: v1.9.4")
    assert _sgm_noise("Steps: 20, SGM noise multiplier: False") is False
    # Without the key, A1111 (and tools copying its format) scaled the noise by sigma_max.
    assert _sgm_noise("Steps: 20, Sampler: Euler, Version: v1.9.4") is False
    assert request_from_parameters(parse_parameters(A1111_SAMPLE))["sgm_noise"] is False
    assert _sgm_noise("Steps: 20, Sampler: Euler") is False


def test_our_texts_from_before_the_key_used_the_multiplier() -> None:
    assert _sgm_noise("Steps: 20, Sampler: Euler, Version: latentdesk") is True
    # Newer texts of ours carry a version number, and the key when the multiplier was used.
    assert version_label().startswith(LEGACY_VERSION + " ")
    assert _sgm_noise(f"Steps: 20, Sampler: Euler, Version: {version_label()}") is False
    with_key = f"Steps: 20, Sampler: Euler, {SGM_NOISE_KEY}: True, Version: {version_label()}"
    assert _sgm_noise(with_key) is True


def test_a_bare_prompt_says_nothing_about_the_noise() -> None:
    assert "sgm_noise" not in request_from_parameters(parse_parameters("just a prompt"))
