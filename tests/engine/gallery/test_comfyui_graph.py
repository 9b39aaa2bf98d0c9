"""Following a ComfyUI graph from the sampler back to texts, model and size: real shapes
(LoRA chains, ControlNet, hires fix, custom samplers, UI workflows) and hostile ones."""

from __future__ import annotations

import copy
import json
import random
import time

import pytest

from engine.gallery.formats import comfyui
from engine.gallery.read import read_texts
from engine.gallery.recovered import RecoveredParameters
from tests.engine.gallery.fixtures import make_fixtures as made


def _read(prompt: object = None, workflow: object = None) -> RecoveredParameters:
    texts = {}
    if prompt is not None:
        texts["prompt"] = prompt if isinstance(prompt, str) else json.dumps(prompt)
    if workflow is not None:
        texts["workflow"] = workflow if isinstance(workflow, str) else json.dumps(workflow)
    record = read_texts(texts)
    assert record is not None and record.tool == "ComfyUI"
    return record


def _node(kind: str, **inputs: object) -> dict:
    return {"class_type": kind, "inputs": inputs}


def _base() -> dict:
    """Checkpoint, two LoRAs, ControlNet on both prompts, area conditioning on the positive."""
    return {
        "1": _node("CheckpointLoaderSimple", ckpt_name="base.safetensors"),
        "2": _node("LoraLoader", lora_name="a.safetensors", strength_model=0.5, model=["1", 0]),
        "3": _node(
            "LoraLoaderModelOnly", lora_name="b.safetensors", strength_model=1, model=["2", 0]
        ),
        "4": _node("CLIPTextEncode", text="a harbour at night", clip=["2", 1]),
        "5": _node("CLIPTextEncode", text="people", clip=["2", 1]),
        "6": _node("ConditioningSetArea", conditioning=["4", 0], width=64, height=64),
        "7": _node(
            "ControlNetApplyAdvanced",
            positive=["6", 0],
            negative=["5", 0],
            control_net=["20", 0],
            image=["21", 0],
            strength=1.0,
        ),
        "8": _node("EmptyLatentImage", width=640, height=512, batch_size=1),
        "9": _node(
            "KSampler",
            seed=7,
            steps=12,
            cfg=6.0,
            sampler_name="dpmpp_2m",
            scheduler="normal",
            denoise=1.0,
            model=["3", 0],
            positive=["7", 0],
            negative=["7", 1],
            latent_image=["8", 0],
        ),
    }


def test_links_through_loras_area_and_controlnet():
    record = _read(_base())
    assert (record.prompt, record.negative_prompt) == ("a harbour at night", "people")
    assert (record.seed, record.steps, record.cfg_scale) == (7, 12, 6.0)
    assert (record.sampler, record.schedule, record.width, record.height) == (
        "dpmpp_2m",
        "normal",
        640,
        512,
    )
    assert record.model == "base.safetensors"
    assert record.settings["LoRAs"] == "a.safetensors: 0.5, b.safetensors: 1.0"
    assert record.strength is None and record.notes == ()


def test_the_first_pass_of_a_hires_fix_is_the_one_read():
    graph = _base()
    graph["10"] = _node("LatentUpscaleBy", samples=["9", 0], scale_by=1.5)
    # A lower id than the first pass: chosen for starting from the empty latent, not by order.
    graph["0"] = _node(
        "KSampler",
        seed=99,
        steps=8,
        cfg=6.0,
        sampler_name="euler",
        scheduler="normal",
        denoise=0.5,
        model=["3", 0],
        positive=["7", 0],
        negative=["7", 1],
        latent_image=["10", 0],
    )
    record = _read(graph)
    assert (record.seed, record.steps, record.width) == (7, 12, 640)
    assert record.notes == (
        "The graph has 2 samplers: read node 9, the first one starting from an empty latent.",
    )


def test_img2img_gives_the_denoise_as_strength_and_no_size():
    graph = _base()
    graph["8"] = _node("VAEEncode", pixels=["22", 0], vae=["1", 2])
    graph["9"]["inputs"]["denoise"] = 0.6
    record = _read(graph)
    assert record.strength == 0.6 and (record.width, record.height) == (None, None)
    assert record.settings["denoise"] == "0.6"


def test_advanced_and_custom_samplers():
    graph = _base()
    graph["9"] = _node(
        "KSamplerAdvanced",
        add_noise="enable",
        noise_seed=11,
        steps=30,
        cfg=4.5,
        sampler_name="heun",
        scheduler="karras",
        model=["3", 0],
        positive=["4", 0],
        negative=["5", 0],
        latent_image=["8", 0],
        start_at_step=0,
        end_at_step=10000,
    )
    record = _read(graph)
    assert (record.seed, record.steps, record.sampler, record.schedule) == (
        11,
        30,
        "heun",
        "karras",
    )

    graph["9"] = _node(
        "SamplerCustom",
        add_noise=True,
        noise_seed=12,
        cfg=3.0,
        model=["3", 0],
        positive=["4", 0],
        negative=["5", 0],
        sampler=["30", 0],
        sigmas=["31", 0],
        latent_image=["8", 0],
    )
    graph["30"] = _node("KSamplerSelect", sampler_name="lms")
    graph["31"] = _node("KarrasScheduler", steps=18, sigma_max=14.6, sigma_min=0.03, rho=7.0)
    record = _read(graph)
    assert (record.seed, record.steps, record.cfg_scale) == (12, 18, 3.0)
    assert (record.sampler, record.schedule, record.prompt) == (
        "lms",
        "karras",
        "a harbour at night",
    )


def test_texts_and_numbers_through_primitive_and_string_nodes():
    graph = _base()
    graph["4"]["inputs"]["text"] = ["40", 0]
    graph["40"] = _node("StringConcatenate", string_a=["41", 0], string_b="oil", delimiter=", ")
    graph["41"] = _node("PrimitiveStringMultiline", value="a harbour")
    graph["9"]["inputs"]["seed"] = ["42", 0]
    graph["42"] = _node("PrimitiveInt", value=2**64 - 1)
    record = _read(graph)
    assert record.prompt == "a harbour, oil" and record.seed == 2**64 - 1
    assert record.notes == (
        f"The seed {2**64 - 1} is outside 0..4294967295, the seeds this app can use: "
        "it is shown but cannot be reused.",
    )


def test_cycles_end_the_walk_not_the_program():
    graph = _base()
    graph["6"]["inputs"]["conditioning"] = ["7", 0]  # area <- controlnet <- area ...
    graph["2"]["inputs"]["model"] = ["3", 0]  # LoRA a <- LoRA b <- LoRA a ...
    graph["8"] = _node("LatentUpscale", samples=["9", 0])  # the sampler's latent is its own
    graph["4"]["inputs"]["text"] = ["43", 0]
    graph["43"] = _node("StringConcatenate", string_a=["43", 0], string_b=["43", 0])
    record = _read(graph)
    assert record.prompt is None and record.negative_prompt == "people"
    assert record.model is None and (record.width, record.height) == (None, None)
    assert "The positive prompt's text could not be traced in the graph." in record.notes


def test_a_graph_built_deep_is_walked_only_so_far():
    graph = {
        str(i): _node("ConditioningCombine", conditioning_1=[str(i + 1), 0])
        for i in range(100, 20_000)
    }
    graph["20000"] = _node("CLIPTextEncode", text="too deep to reach")
    graph["1"] = _node("KSampler", seed=1, positive=["100", 0], negative=["100", 0])
    start = time.perf_counter()
    record = _read(graph)
    assert time.perf_counter() - start < 2
    assert (
        record.notes[0] == f"The ComfyUI graph has more than {comfyui.MAX_NODES} nodes: not read."
    )

    deep = {
        str(i): _node("ConditioningCombine", conditioning_1=[str(i + 1), 0])
        for i in range(100, 400)
    }
    deep["400"] = _node("CLIPTextEncode", text="beyond the depth limit")
    deep["1"] = _node("KSampler", seed=1, positive=["100", 0])
    assert _read(deep).prompt is None


@pytest.mark.parametrize(
    "prompt",
    [
        "[" * 100_000,  # JSON nested deeper than the parser goes
        "{" + '"1": ' * 3 + "}",
        "not json",
        "[]",
        '{"1": {"class_type": 5}}',
        '{"1": {"class_type": "KSampler", "inputs": [1, 2]}}',
        '{"1": {"class_type": "KSampler", "inputs": {"seed": "abc", "steps": true, '
        '"cfg": NaN, "sampler_name": 5, "scheduler": ["x"], "positive": ["1", "0"], '
        '"negative": [null, 0], "latent_image": ["404", 0], "model": {"a": 1}}}}',
        '{"1": {"class_type": "KSampler", "inputs": {"seed": 1e400, "steps": 1e1000, '
        '"cfg": -Infinity, "positive": [["1", 0], 0], "latent_image": [1.5, 0]}}}',
        '{"1": {"class_type": "KSampler", "inputs": {"seed": ' + "9" * 5000 + "}}}",
    ],
)
def test_wrong_types_and_broken_json_give_no_values_and_no_error(prompt):
    record = _read(prompt)
    assert (record.seed, record.steps, record.cfg_scale, record.sampler, record.schedule) == (
        None,
        None,
        None,
        None,
        None,
    )


def test_random_damage_to_a_real_graph_never_raises():
    rng = random.Random(1234)
    junk: list[object] = [None, -1, 2**70, 1.5, "x", [], {}, ["3", 0], ["3", 9], [True, 0], True]
    original = made.comfyui_prompt()
    for _ in range(300):
        graph = copy.deepcopy(original)
        for _ in range(rng.randint(1, 6)):
            node = graph[rng.choice(list(graph))]
            if rng.random() < 0.2:
                node["class_type"] = rng.choice(comfyui.SAMPLER_TYPES + ("CLIPTextEncode",))
            elif node["inputs"]:
                node["inputs"][rng.choice(list(node["inputs"]))] = rng.choice(junk)
        _read(graph)


# --- the UI workflow -----------------------------------------------------------------------------


def test_random_damage_to_a_real_workflow_never_raises():
    rng = random.Random(99)
    junk: list[object] = [None, 0, -5, 2**70, "x", [], {}, [1], [{}], {"link": 3}, True, 1.5]
    original = made.comfyui_workflow()
    for _ in range(300):
        workflow = copy.deepcopy(original)
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.3:
                link = rng.choice(workflow["links"])
                link[rng.randrange(len(link))] = rng.choice(junk)
                continue
            node = rng.choice(workflow["nodes"])
            key = rng.choice(["id", "type", "mode", "inputs", "widgets_values"])
            node[key] = rng.choice(junk)
        _read(workflow=workflow)


def test_the_workflow_is_read_when_there_is_no_prompt_graph():
    record = _read(workflow=made.comfyui_workflow())
    assert record.notes[0] == "Read from the UI workflow (the file has no API prompt graph)."
    assert record.negative_prompt == "blurry, watermark"  # its widget, fed by a PrimitiveNode
    assert (record.width, record.height) == (512, 768)  # through the Reroute


def test_a_muted_sampler_in_the_workflow_is_not_read():
    workflow = made.comfyui_workflow()
    sampler = next(n for n in workflow["nodes"] if n["type"] == "KSampler")
    muted = copy.deepcopy(sampler)
    muted.update(id=2, mode=4, widgets_values=[1, "fixed", 99, 1, "euler", "normal", 1])
    workflow["nodes"].insert(0, muted)
    record = _read(workflow=workflow)
    assert (record.seed, record.steps) == (156680208700286, 20)


def test_workflow_links_as_objects_widgets_without_control_and_named_widgets():
    workflow = made.comfyui_workflow()
    workflow["links"] = [
        dict(
            zip(
                ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"),
                link,
                strict=False,
            )
        )
        for link in workflow["links"]
    ]
    sampler = next(n for n in workflow["nodes"] if n["type"] == "KSampler")
    sampler["widgets_values"] = [5, 21, 7.5, "lms", "normal", 1]  # no "control after generate"
    latent = next(n for n in workflow["nodes"] if n["type"] == "EmptyLatentImage")
    latent["widgets_values"] = {"width": 320, "height": 256, "batch_size": 1}
    record = _read(workflow=workflow)
    assert (record.seed, record.steps, record.cfg_scale, record.sampler) == (5, 21, 7.5, "lms")
    assert (record.width, record.height) == (320, 256)


@pytest.mark.parametrize(
    "workflow",
    [
        {},
        {"nodes": "x"},
        {"nodes": [{"id": 1, "type": "KSampler", "widgets_values": "x", "inputs": "y"}]},
        {
            "nodes": [{"id": 1, "type": "KSampler", "inputs": [{"name": "positive", "link": 1}]}],
            "links": [[1, 1, 0, 1, 1, "CONDITIONING"]],
        },  # a sampler fed by itself
        {"nodes": [{"id": 2, "type": "Reroute", "inputs": [{"link": 1}]}], "links": [[1, 2, 0]]},
    ],
)
def test_broken_workflows_give_no_values_and_no_error(workflow):
    record = _read(workflow=workflow)
    assert record.seed is None and record.prompt is None
