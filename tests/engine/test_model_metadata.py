"""A model file's own metadata (the demo's): name, native size, preview factors, latent scale."""

from __future__ import annotations

import json

import pytest
import torch

from engine.api import GenerationRequest
from engine.family import SD1
from engine.image_metadata import read_png_parameters
from engine.loading.build import load_bundle
from engine.loading.file_metadata import (
    NO_METADATA,
    parse_metadata,
    read_metadata,
    read_raw_metadata,
)
from engine.output import save_png
from engine.parameters import parse_parameters
from engine.pipeline import ModelLabel, generate
from engine.session import Engine
from tests.demo_files import (
    DEMO_NAME,
    FLAT_BIAS,
    FLAT_FACTORS,
    FLAT_PREVIEW,
    NATIVE_SIZE,
    demo_metadata,
    write_tiny_demo,
)
from tests.factories import tiny_sd1_state_dict, write_checkpoint

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_tiny_demo(tmp_path_factory.mktemp("demo"))


def test_the_metadata_is_read_from_the_header(demo):
    meta = read_metadata(demo, SD1.latent_channels)
    assert meta.name == DEMO_NAME and meta.native_size == NATIVE_SIZE
    assert meta.latent_rgb == tuple(tuple(row) for row in FLAT_FACTORS)
    assert meta.latent_rgb_bias == tuple(FLAT_BIAS) and meta.latent_scale == 0.5
    assert read_raw_metadata(demo)["latentdesk.grammar"] == "shapes-1"


def test_the_bundle_carries_the_files_factors_scale_size_and_name(demo):
    bundle = load_bundle(demo, CPU, torch.float32)
    family = bundle.family
    assert family.name == "sd1" and family.prediction == SD1.prediction  # the rest: SD1's
    assert family.latent_rgb == tuple(tuple(row) for row in FLAT_FACTORS)
    assert family.latent_rgb_bias == tuple(FLAT_BIAS)
    assert family.latent_scale == 0.5 and family.native_size == NATIVE_SIZE
    assert bundle.metadata.name == DEMO_NAME


def test_previews_use_the_files_factors_and_bias(demo):
    bundle = load_bundle(demo, CPU, torch.float32)
    previews = []
    request = GenerationRequest("a red circle", width=64, height=64, steps=2, seed=1)
    generate(bundle, request, ModelLabel("demo", None), on_step=previews.append)
    assert len(previews) == 2
    for event in previews:  # all-zero factors: only the bias shows, one flat colour
        assert event.preview is not None
        assert (event.preview.reshape(-1, 3) == FLAT_PREVIEW).all()


def test_a_file_without_metadata_keeps_the_sd1_factors(tmp_path):
    path = write_checkpoint(tiny_sd1_state_dict(), tmp_path / "plain.safetensors")
    assert read_metadata(path, 4) == NO_METADATA
    bundle = load_bundle(path, CPU, torch.float32)
    assert bundle.family is SD1 and bundle.metadata == NO_METADATA
    assert SD1.latent_rgb_bias == (0.0, 0.0, 0.0)
    previews = []
    request = GenerationRequest("a barn", width=64, height=64, steps=1, seed=1)
    generate(bundle, request, ModelLabel("plain", None), on_step=previews.append)
    assert not (previews[0].preview.reshape(-1, 3) == FLAT_PREVIEW).all()


def test_the_engine_names_the_model_and_its_native_size_and_pngs_say_it(demo, tmp_path):
    engine = Engine(device="cpu", precision="float32")
    info = engine.load_model(demo)
    assert info.name == DEMO_NAME and info.native_size == NATIVE_SIZE
    request = GenerationRequest("a blue square", width=64, height=64, steps=1, seed=3)
    result = engine.generate(request)
    text = result.images[0].parameters
    png = save_png(tmp_path, result.images[0].image, text, stem=3)
    settings = parse_parameters(read_png_parameters(png)).settings
    assert settings["Model"] == DEMO_NAME  # round-trips through the PNG
    assert len(settings["Model hash"]) == 10


BAD_VALUES = {
    "latentdesk.name": ["x" * 81, "two\nlines", "tab\there", "   "],
    "latentdesk.native_size": ["0", "100", "4096", "12.8", "-128", "١٢٨", "big"],
    "latentdesk.latent_rgb": [
        json.dumps([[0, 0, 0]] * 3),  # 3 rows for 4 latent channels
        json.dumps([[0, 0]] * 4),
        json.dumps([[0, 0, "1"]] * 4),
        json.dumps([[0, 0, True]] * 4),
        "[[NaN, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]",
        "[[1e308, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]",
        "[" * 100_000,  # nested absurdly deep, and too long
        json.dumps([[0.1, 0.2, 0.3]] * 4) + " " * 5000,  # right content, huge string
        "not json",
    ],
    "latentdesk.latent_rgb_bias": ["[0, 0]", "[Infinity, 0, 0]", '{"r": 0}', "1"],
    "latentdesk.latent_scale": ["0", "-0.2", "NaN", "[0.2]", "big"],
}


@pytest.mark.parametrize(
    ("key", "value"), [(k, v) for k, values in BAD_VALUES.items() for v in values]
)
def test_a_malformed_entry_is_ignored_and_the_others_kept(key, value):
    raw = demo_metadata()
    raw[key] = value
    meta = parse_metadata(raw, SD1.latent_channels)
    good = parse_metadata(demo_metadata(), SD1.latent_channels)
    field = key.removeprefix("latentdesk.")
    assert getattr(meta, field) == getattr(NO_METADATA, field), value
    others = [f for f in ("name", "native_size", "latent_rgb", "latent_scale") if f != field]
    assert all(getattr(meta, f) == getattr(good, f) for f in others)


def test_malformed_metadata_loads_with_the_family_defaults(tmp_path):
    sd = tiny_sd1_state_dict()
    bad = {
        "latentdesk.name": "x" * 10_000,
        "latentdesk.native_size": "-1",
        "latentdesk.latent_rgb": "[[NaN]]",
        "latentdesk.latent_rgb_bias": "[1, 2, 3]",  # without factors: nothing to add it to
        "latentdesk.latent_scale": "Infinity",
    }
    path = write_checkpoint(sd, tmp_path / "odd.safetensors", bad)
    bundle = load_bundle(path, CPU, torch.float32)
    assert bundle.family is SD1
    info = Engine(device="cpu", precision="float32").load_model(path)
    assert info.name == "odd" and info.native_size == SD1.native_size


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00" * 4,
        b"\xff" * 16,  # an impossible header length
        b"\x08\x00\x00\x00\x00\x00\x00\x00[1,2,3]",  # not a table
        b'\x20\x00\x00\x00\x00\x00\x00\x00{"__metadata__": [1, 2]}      ',
        b'\x30\x00\x00\x00\x00\x00\x00\x00{"__metadata__": {"latentdesk.name": 5}}       ',
        b"PK\x03\x04 a zip, as a .ckpt is",
    ],
)
def test_headers_that_are_not_ours_give_no_metadata(tmp_path, content):
    path = tmp_path / "file.safetensors"
    path.write_bytes(content)
    assert read_raw_metadata(path) == {}
    assert read_metadata(path, 4) == NO_METADATA
    assert read_metadata(tmp_path, 4) == NO_METADATA  # a folder
