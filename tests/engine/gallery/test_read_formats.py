"""read_metadata on files written as each tool writes them (fixtures/make_fixtures.py says
where each layout comes from), and on our own PNGs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from engine.gallery.read import read_metadata, read_texts
from engine.gallery.recovered import FIELDS
from engine.gallery.restore import restore_fields
from engine.output import encode_png
from engine.parameters import (
    format_parameters,
    parse_parameters,
    request_from_parameters,
    version_label,
)
from tests.engine.gallery.fixtures import make_fixtures as made

FIXTURES = Path(__file__).parent / "fixtures"
BIG_SEED_NOTE = "is outside 0..4294967295, the seeds this app can use"

A1111 = {
    "tool": "A1111",
    "prompt": "a lighthouse at dusk, (masterpiece:1.2)",
    "negative_prompt": "blurry, lowres",
    "seed": 1234567890,
    "steps": 20,
    "cfg_scale": 7.0,
    "sampler": "DPM++ 2M",
    "schedule": "Karras",
    "width": 512,
    "height": 768,
    "model": "v1-5-pruned-emaonly",
    "model_hash": "6ce0161689",
}
COMFYUI = {
    "tool": "ComfyUI",
    "prompt": "a lighthouse at dusk\noil painting",
    "negative_prompt": "blurry, watermark",
    "seed": 156680208700286,
    "steps": 20,
    "cfg_scale": 8.0,
    "sampler": "euler_ancestral",
    "schedule": "karras",
    "width": 512,
    "height": 768,
    "model": "sd15/v1-5-pruned-emaonly.safetensors",
    "model_hash": None,  # ComfyUI stores none
}
COMFYUI_CUSTOM = {
    "tool": "ComfyUI",
    "prompt": "a red fox in snow",
    "negative_prompt": "",
    "seed": 2**64 - 1,
    "steps": 28,
    "cfg_scale": 5.5,
    "sampler": "dpmpp_2m",
    "schedule": "simple",
    "width": 768,
    "height": 512,
    "model": "dreamshaper_8.safetensors",
    "model_hash": None,
}
FOOOCUS = {
    "tool": "Fooocus",
    "prompt": "a cozy cabin in the woods, cinematic still, warm light",
    "negative_prompt": "(worst quality, low quality:1.4), unrealistic",
    "seed": 8190438617298367203,
    "steps": 30,
    "cfg_scale": 4.0,
    "sampler": "dpmpp_2m_sde_gpu",
    "schedule": "karras",
    "width": 1152,
    "height": 896,
    "model": "juggernautXL_v8Rundiffusion",
    "model_hash": "aeb7e9e689",
}
EXPECTED = {
    "a1111.png": A1111,
    "a1111.jpg": A1111,
    "a1111.webp": A1111,
    "a1111_old_itxt.png": {
        "tool": "A1111",
        "prompt": "猫 on a roof",
        "negative_prompt": "dog",
        "seed": 42,
        "steps": 30,
        "cfg_scale": 6.5,
        "sampler": "DPM++ 2M Karras",
        "schedule": "Karras",  # implied by the sampler's name before "Schedule type"
        "width": 640,
        "height": 448,
        "model": "anything-v3",
        "model_hash": "81761151",
    },
    "comfyui.png": COMFYUI,
    "comfyui_workflow_only.png": COMFYUI,
    "comfyui_custom_big_seed.png": COMFYUI_CUSTOM,
    "comfyui.webp": COMFYUI_CUSTOM,
    "invokeai_v3.png": {
        "tool": "InvokeAI",
        "prompt": "a castle on a hill, golden hour",
        "negative_prompt": "fog",
        "seed": 3141592653,
        "steps": 30,
        "cfg_scale": 7.5,
        "sampler": "dpmpp_2m_k",
        "schedule": "karras",
        "width": 512,
        "height": 512,
        "model": "stable-diffusion-v1-5",
        "model_hash": "blake3:9a1b2c3d4e5f",
    },
    "invokeai_v2.png": {
        "tool": "InvokeAI",
        "prompt": "a watercolor fox",
        "negative_prompt": "blurry, text",
        "seed": 2323221,
        "steps": 50,
        "cfg_scale": 7.5,
        "sampler": "k_lms",
        "schedule": None,
        "width": 512,
        "height": 512,
        "model": "stable-diffusion-1.5",
        "model_hash": made.INVOKEAI_V2["model_hash"],
    },
    "invokeai_dream.png": {
        "tool": "InvokeAI",
        "prompt": "an astronaut riding a horse",
        "negative_prompt": "",
        "seed": 1066,
        "steps": 50,
        "cfg_scale": 7.5,
        "sampler": "k_euler_a",
        "schedule": None,
        "width": 512,
        "height": 512,
        "model": None,
        "model_hash": None,
    },
    "fooocus.png": FOOOCUS,
    "fooocus.jpg": FOOOCUS,
    "fooocus_a1111.png": {
        **FOOOCUS,
        "negative_prompt": "unrealistic",
        "seed": 1234,
        "sampler": "DPM++ 2M SDE Karras",
        "schedule": "Karras",
    },
    "novelai.png": {
        "tool": "NovelAI",
        "prompt": "1girl, silver hair, night sky, stars",
        "negative_prompt": "lowres, bad anatomy",
        "seed": 3917283545,
        "steps": 28,
        "cfg_scale": 5.0,
        "sampler": "k_euler_ancestral",
        "schedule": "native",
        "width": 1216,
        "height": 832,
        "model": "Stable Diffusion XL C1E1DE52",
        "model_hash": None,
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_tool_s_file_gives_the_fields_that_tool_stores(name):
    path = FIXTURES / name
    assert path.stat().st_size < 6000  # tiny fixtures
    record = read_metadata(path)
    assert record is not None
    got = {key: getattr(record, key) for key in ("tool", *FIELDS)}
    assert got == EXPECTED[name]
    assert record.missing == tuple(k for k in FIELDS if EXPECTED[name][k] is None)
    seed = EXPECTED[name]["seed"]
    assert any(BIG_SEED_NOTE in n for n in record.notes) == (seed is not None and seed >= 2**32)


def test_the_fixtures_are_what_the_script_writes():
    """The committed files match their recipe: the layouts cited there are the ones tested."""
    for name, data in made.fixtures().items():
        written = read_metadata(FIXTURES / name)
        rebuilt = read_metadata(data)
        assert written is not None and written == rebuilt, name


def test_bytes_paths_and_open_files_read_alike():
    path = FIXTURES / "comfyui.png"
    data = path.read_bytes()
    with open(path, "rb") as file:
        from_file = read_metadata(file)
    assert read_metadata(data) == read_metadata(str(path)) == from_file == read_metadata(path)
    jpeg = (FIXTURES / "a1111.jpg").read_bytes()
    assert read_metadata(io.BytesIO(jpeg)) == read_metadata(jpeg)


def test_tool_specific_extras_are_kept():
    comfy = read_metadata(FIXTURES / "comfyui.png")
    assert comfy is not None
    assert comfy.settings["LoRAs"] == "add_detail.safetensors: 0.8"
    assert comfy.settings["sampler node"] == "KSampler (node 3)"
    assert json.loads(comfy.text or "") == made.comfyui_prompt()
    fooocus = read_metadata(FIXTURES / "fooocus.png")
    assert fooocus is not None and fooocus.settings["prompt"] == "a cozy cabin in the woods"
    assert any("expanded" in n for n in fooocus.notes)
    old = read_metadata(FIXTURES / "a1111_old_itxt.png")
    assert old is not None and old.strength == 0.55


def test_novelai_without_a_size_takes_the_picture_s():
    comment = {k: v for k, v in made.NOVELAI_COMMENT.items() if k not in ("width", "height")}
    texts = {"Software": "NovelAI", "Description": "a cat", "Comment": json.dumps(comment)}
    record = read_texts(texts, size=(640, 384))
    assert record is not None and (record.width, record.height) == (640, 384)
    assert record.notes == ("The size is the picture's own: this NovelAI file does not write one.",)


def test_a_comfyui_node_writing_a1111_text_too_is_read_from_the_text():
    texts = {"parameters": made.A1111_TEXT, "prompt": json.dumps(made.comfyui_prompt())}
    record = read_texts(texts)
    assert record is not None and record.tool == "ComfyUI" and record.seed == 1234567890


@pytest.mark.parametrize(
    "texts",
    [
        {},
        {"Title": "holiday photo", "Software": "GIMP 2.10"},
        {"parameters": "   "},
        {"invokeai_metadata": "not json"},
        {"sd-metadata": "[1, 2]"},
        {"Dream": "no quotes -s 5"},
    ],
)
def test_files_without_parameters_give_none(texts):
    assert read_texts(texts) is None


def test_a_file_with_no_parameters_at_all_gives_none(tmp_path):
    plain = tmp_path / "plain.png"
    plain.write_bytes(encode_png(np.zeros((8, 8, 3), np.uint8), "x")[:8] + b"junk")
    assert read_metadata(plain) is None
    assert read_metadata(tmp_path / "missing.png") is None
    assert read_metadata(b"not an image") is None


# --- our own PNGs --------------------------------------------------------------------------------


def _our_text(prompt: str, negative: str, **settings: object) -> str:
    """A text laid out as engine.pipeline writes it."""
    base: dict[str, object] = {
        "Steps": 25,
        "Sampler": "DPM++ 2M",
        "Schedule type": "Karras",
        "CFG scale": 7.5,
        "Seed": 4294967295,
        "Size": "512x640",
        "Model hash": "6ce0161689",
        "Model": "v1-5-pruned-emaonly",
    }
    base.update(settings)
    base["Version"] = version_label()
    return format_parameters(prompt, negative, base)


@pytest.mark.parametrize(
    ("prompt", "negative", "settings"),
    [
        ("a lighthouse at dusk", "blurry", {}),
        ("line one\n  line two: with, commas", "", {"Clip skip": 2}),
        ("猫 and café 😀", "犬", {"Denoising strength": 0.6, "SGM noise multiplier": True}),
        ("ddim run", "x", {"Sampler": "DDIM", "Schedule type": None, "Eta": 0.3}),
    ],
)
def test_our_own_pngs_round_trip(prompt, negative, settings):
    text = _our_text(prompt, negative, **settings)
    record = read_metadata(encode_png(np.zeros((8, 8, 3), np.uint8), text))
    assert record is not None and record.tool == "Latentdesk" and record.text == text
    assert (record.prompt, record.negative_prompt) == (prompt, negative)
    assert (record.seed, record.steps, record.cfg_scale) == (4294967295, 25, 7.5)
    assert (record.width, record.height, record.model_hash) == (512, 640, "6ce0161689")
    assert record.notes == ()
    # What the window restores is what the A1111 reading of the same text gives.
    assert restore_fields(record).fields == request_from_parameters(parse_parameters(text))
    assert restore_fields(record).dropped == ()


def test_a_png_exif_chunk_user_comment_is_read_too():
    from PIL import Image

    from engine.image_metadata import read_png_parameters

    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + made.A1111_TEXT.encode("utf-16-be")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", exif=exif.tobytes())
    assert b"eXIf" in buffer.getvalue()
    record = read_metadata(buffer.getvalue())
    assert record is not None and record.seed == 1234567890 and record.tool == "A1111"
    assert read_png_parameters(buffer.getvalue()) == made.A1111_TEXT


def test_read_png_parameters_uses_the_bounded_reader():
    from engine.image_metadata import read_png_parameters
    from tests.engine.gallery.png_bytes import png, text, ztxt

    bomb = ztxt("parameters", b"\0" * (17 * 1024 * 1024))
    assert read_png_parameters(png(bomb)) is None
    late = png(after=(text("parameters", "utf-8 in tEXt: 猫", "utf-8"),))
    assert read_png_parameters(late) == "utf-8 in tEXt: 猫"
    with open(FIXTURES / "a1111.jpg", "rb") as file:
        file.read(100)  # an open file is read from where it stands
        assert read_png_parameters(file) is None
        file.seek(0)
        assert read_png_parameters(file) == made.A1111_TEXT


def test_a_bare_prompt_beside_a_comfyui_graph_gives_way_to_the_graph():
    texts = {"parameters": "just a caption", "prompt": json.dumps(made.comfyui_prompt())}
    record = read_texts(texts)
    assert record is not None and record.tool == "ComfyUI" and record.steps == 20
