"""LoRA tags in the Engine: found through the library, refused with the file's name, applied
only when they change, removed exactly, and written into the metadata as A1111 does."""

import hashlib
import struct
from pathlib import Path

import pytest
import torch

from engine import Engine, GenerationRequest
from engine.library import LibraryConfig, ModelLibrary
from engine.loading.build import load_bundle
from engine.lora import LoraError, LoraMismatchError, LoraNotFoundError, UnsupportedLoraError
from engine.lora.hashes import lora_hash
from engine.lora.manager import LoraManager
from engine.parameters import parse_parameters
from tests.engine.lora.lora_files import kohya_lora, layer, write_lora
from tests.factories import tiny_sd1_state_dict, write_checkpoint

ATTN = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0"


def _library(tmp: Path, folder: Path) -> ModelLibrary:
    return ModelLibrary(
        LibraryConfig(folders=[str(folder)]),
        home=tmp / "no-home",
        env={},
        cache_path=tmp / "scan-cache.json",
        config_path=tmp / "library.json",
        models_dir=tmp / "no-app-models",
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A folder with the tiny checkpoint and LoRAs of every kind the tests name."""
    folder = tmp_path_factory.mktemp("models")
    checkpoint = write_checkpoint(tiny_sd1_state_dict(seed=5), folder / "tiny-sd1.safetensors")
    bundle = load_bundle(checkpoint, torch.device("cpu"), torch.float32)
    unet, clip = bundle.unet, bundle.text_encoder.model
    # LDM-style kohya names (as SDXL files and some converters write them).
    write_lora(
        kohya_lora(unet, clip, seed=1, locon=["input_blocks.1.0.in_layers.2"]),
        folder / "style.safetensors",
    )
    write_lora(kohya_lora(unet, clip, seed=2, alpha=None), folder / "other.safetensors")
    partial = (
        layer(f"{ATTN}_attn1_to_q", 32, 32)
        | layer(f"{ATTN}_attn2_to_k", 32, 64)
        | layer("lora_unet_down_blocks_2_attentions_0_transformer_blocks_0_attn1_to_q", 128, 128)
        | layer(f"{ATTN}_attn1_to_k", 320, 320)  # an SD 1.5 shape: no such layer here
    )
    write_lora(partial, folder / "partial.safetensors")
    write_lora(layer(f"{ATTN}_attn1_to_q", 320, 320), folder / "full-size-only.safetensors")
    sdxl = layer("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 64, 64)
    write_lora(
        sdxl | layer("lora_te2_text_model_encoder_layers_0_mlp_fc1", 128, 64),
        folder / "xl-detail.safetensors",
    )
    loha = {
        f"{ATTN}_attn1_to_q.hada_w1_a": torch.zeros(32, 4),
        f"{ATTN}_attn1_to_q.hada_w1_b": torch.zeros(4, 32),
    }
    write_lora(loha, folder / "hada.safetensors")
    return folder


@pytest.fixture(scope="module")
def engine(models, tmp_path_factory) -> Engine:
    eng = Engine(
        device="cpu", precision="full", library=_library(tmp_path_factory.mktemp("lib"), models)
    )
    eng.load_model(models / "tiny-sd1.safetensors")
    return eng


def _generate(engine: Engine, prompt: str, **kw):
    request = GenerationRequest(prompt, width=64, height=64, steps=3, seed=7, sampler="euler", **kw)
    return engine.generate(request)


def _addnet_hash(path: Path) -> str:
    """A1111's LoRA hash, computed here independently: sha256 after the safetensors header."""
    data = path.read_bytes()
    (header,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + header :]).hexdigest()[:12]


def test_partial_match_runs_and_reports_how_many_layers_matched(engine, models):
    result = _generate(engine, "a cat <lora:partial:0.7>")
    assert result.notes == ("partial: 2 of 4 layers matched",)
    assert len(result.images) == 1


def test_lora_hashes_are_written_and_read_back_with_the_prompt(engine, models):
    prompt = "a cat, <lora:style:0.8>, <lora:Other:0.5:1>"
    result = _generate(engine, prompt)
    text = result.images[0].parameters
    style, other = (_addnet_hash(models / f"{n}.safetensors") for n in ("style", "other"))
    hashes = f"style: {style}, Other: {other}"
    assert f'Lora hashes: "{hashes}"' in text
    parsed = parse_parameters(text)
    assert parsed.prompt == prompt and parsed.settings["Lora hashes"] == hashes
    assert "Lora hashes" not in _generate(engine, "a cat").images[0].parameters


@pytest.mark.parametrize(
    ("tag", "error", "words"),
    [
        ("<lora:nowhere:1>", LoraNotFoundError, ["nowhere", "Looked in"]),
        ("<lora:tiny-sd1:1>", LoraNotFoundError, ["tiny-sd1.safetensors", "checkpoint"]),
        ("<lora:xl-detail:1>", UnsupportedLoraError, ["xl-detail.safetensors", "SDXL"]),
        (
            "<lora:full-size-only:1>",
            LoraMismatchError,
            ["full-size-only.safetensors", "None of the 1"],
        ),
        ("<lora:hada:1>", UnsupportedLoraError, ["hada.safetensors", "LoHa"]),
    ],
)
def test_loras_that_cannot_be_used_are_refused_by_name(engine, models, tag, error, words):
    with pytest.raises(error) as info:
        _generate(engine, f"a cat {tag}")
    for word in words:
        assert word in str(info.value)
    if error is LoraNotFoundError and "Looked in" in words:
        assert str(models) in str(info.value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_same_loras_touch_nothing_and_removal_is_exact(models, tmp_path, dtype):
    bundle = load_bundle(models / "tiny-sd1.safetensors", torch.device("cpu"), dtype)
    base = {
        **{f"unet.{k}": v.clone() for k, v in bundle.unet.state_dict().items()},
        **{f"te.{k}": v.clone() for k, v in bundle.text_encoder.model.state_dict().items()},
    }
    manager = LoraManager(bundle, lambda: _library(tmp_path, models), tmp_path / "hashes.json")
    manager.prepare("a <lora:style:0.8> <lora:other:0.4>")
    written = manager.patcher.computed
    assert written > 100  # every attention and CLIP projection of the tiny model, and more
    assert manager.prepare("b, <lora:style:0.8>, <lora:other:0.4>").hashes  # same LoRAs again
    assert manager.patcher.computed == written
    manager.prepare("c <lora:style:0.8> <lora:other:0.5>")  # one weight changed: recomputed
    assert manager.patcher.computed > written
    manager.prepare("no tags")
    after = {
        **{f"unet.{k}": v for k, v in bundle.unet.state_dict().items()},
        **{f"te.{k}": v for k, v in bundle.text_encoder.model.state_dict().items()},
    }
    assert all(torch.equal(base[k], after[k]) for k in base)
    assert all(base[k].dtype == after[k].dtype for k in base)


def test_a_tag_in_the_negative_prompt_applies_nothing(engine):
    """As A1111: only the prompt is searched for extra networks."""
    _generate(engine, "a cat <lora:style:1>")
    weights = engine._loras  # what the engine applied
    assert weights is not None and weights.patcher.patched > 0
    result = _generate(engine, "a cat", negative_prompt="<lora:style:1>")
    assert "Lora hashes" not in result.images[0].parameters
    assert weights.patcher.patched == 0


def test_the_hash_is_cached_by_path_size_and_mtime(models, tmp_path, monkeypatch):
    import engine.lora.hashes as hashes

    path = models / "style.safetensors"
    cache = tmp_path / "hashes.json"
    assert lora_hash(path, {}, cache) == _addnet_hash(path)

    def no_reading(_):
        raise AssertionError("hashed again")

    monkeypatch.setattr(hashes, "file_digest", no_reading)
    assert lora_hash(path, {}, cache) == _addnet_hash(path)
    kohya = {"sshs_model_hash": "ABCDEF0123456789" * 4}  # kohya's trainer wrote it: taken as is
    assert lora_hash(path, kohya, cache) == "abcdef012345"


def test_the_cli_prints_the_notes_and_writes_them_in_the_summary(
    models, tmp_path, monkeypatch, capsys
):
    import json

    from engine.cli import main

    monkeypatch.setenv("LATENTDESK_MODEL_PATH", str(models))  # where the CLI's library looks
    args = ["txt2img", "--ckpt", str(models / "tiny-sd1.safetensors"), "--outdir", str(tmp_path)]
    args += ["--prompt", "a cat <lora:partial:1>", "--H", "64", "--W", "64", "--steps", "2"]
    assert main([*args, "--precision", "full", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "note: partial: 2 of 4 layers matched" in err
    assert json.loads(out)["notes"] == ["partial: 2 of 4 layers matched"]


def test_a_name_that_several_files_answer_to_lists_them(models, tmp_path):
    folder = tmp_path / "loras"
    for sub in ("a", "b"):
        write_lora(layer(f"{ATTN}_attn1_to_q", 32, 32), folder / sub / "twin.safetensors")
    bundle = load_bundle(models / "tiny-sd1.safetensors", torch.device("cpu"), torch.float32)
    manager = LoraManager(bundle, lambda: _library(tmp_path, folder), tmp_path / "hashes.json")
    with pytest.raises(LoraError) as info:
        manager.prepare("<lora:TWIN:1>")
    assert str(folder / "a" / "twin.safetensors") in str(info.value)
    assert str(folder / "b" / "twin.safetensors") in str(info.value)
