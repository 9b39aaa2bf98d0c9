"""diffusers folders load as the original single-file layout (tiny random models, CPU)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.errors import (
    MissingComponentError,
    NotACheckpointError,
    UnsafeCheckpointError,
    UnsupportedModelError,
)
from engine.loading.diffusers_folder import is_diffusers_folder, load_diffusers_folder
from engine.loading.diffusers_keys import convert_unet_state_dict, convert_vae_state_dict
from tests.factories import reference_shapes

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."
UNET_FILE = "diffusion_pytorch_model.safetensors"

TINY_UNET = {
    "sample_size": 8,
    "block_out_channels": (32, 64, 128),
    "layers_per_block": 2,
    "cross_attention_dim": 64,
    "attention_head_dim": 8,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "norm_num_groups": 32,
}
TINY_VAE = {
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 2,
    "latent_channels": 4,
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "norm_num_groups": 32,
}


def _tiny_clip() -> torch.nn.Module:
    config = transformers.CLIPTextConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=1,
        intermediate_size=128,
        vocab_size=49408,
        hidden_act="quick_gelu",
    )
    return transformers.CLIPTextModel(config)


def _write_model_index(folder: Path, pipeline: str = "StableDiffusionPipeline") -> None:
    index = {
        "_class_name": pipeline,
        "_diffusers_version": diffusers.__version__,
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
    }
    (folder / "model_index.json").write_text(json.dumps(index), encoding="utf-8")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete tiny SD1-style diffusers folder, saved by diffusers and transformers."""
    torch.manual_seed(0)  # only the fixture's random weights; the loader takes no randomness
    folder = tmp_path_factory.mktemp("tiny-sd") / "model"
    diffusers.UNet2DConditionModel(**TINY_UNET).save_pretrained(folder / "unet")
    diffusers.AutoencoderKL(**TINY_VAE).save_pretrained(folder / "vae")
    _tiny_clip().save_pretrained(folder / "text_encoder")
    (folder / "tokenizer").mkdir()
    _write_model_index(folder)
    return folder


@pytest.fixture
def folder_copy(tiny_folder: Path, tmp_path: Path) -> Path:
    """A private copy a test may damage."""
    return Path(shutil.copytree(tiny_folder, tmp_path / "model"))


@pytest.fixture(scope="module")
def loaded(tiny_folder: Path) -> dict[str, torch.Tensor]:
    return load_diffusers_folder(tiny_folder)


def _with_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


def _assert_same_tensors(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for key, tensor in want.items():
        assert got[key].shape == tensor.shape, key
        assert torch.equal(got[key], tensor), key


def test_recognises_diffusers_folders(tiny_folder: Path, tmp_path: Path) -> None:
    assert is_diffusers_folder(tiny_folder)
    assert is_diffusers_folder(str(tiny_folder))
    assert not is_diffusers_folder(tmp_path)  # empty folder
    assert not is_diffusers_folder(tiny_folder / "unet" / UNET_FILE)  # a file
    with pytest.raises(NotACheckpointError):
        load_diffusers_folder(tmp_path)


def test_only_single_file_prefixes(loaded: dict[str, torch.Tensor]) -> None:
    prefixes = (UNET_PREFIX, VAE_PREFIX, CLIP_PREFIX)
    assert all(key.startswith(prefixes) for key in loaded)
    assert loaded[UNET_PREFIX + "input_blocks.3.0.op.weight"].shape == (32, 32, 3, 3)
    assert loaded[VAE_PREFIX + "decoder.mid.attn_1.q.weight"].shape == (64, 64, 1, 1)


def test_unet_round_trips_through_diffusers_converter(
    tiny_folder: Path, loaded: dict[str, torch.Tensor]
) -> None:
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    unet_only = {k: v for k, v in loaded.items() if k.startswith(UNET_PREFIX)}
    config = json.loads((tiny_folder / "unet" / "config.json").read_text(encoding="utf-8"))
    back = convert_ldm_unet_checkpoint(unet_only, config)
    _assert_same_tensors(back, load_file(tiny_folder / "unet" / UNET_FILE))


def test_vae_round_trips_through_diffusers_converter(
    tiny_folder: Path, loaded: dict[str, torch.Tensor]
) -> None:
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    vae_only = {k: v for k, v in loaded.items() if k.startswith(VAE_PREFIX)}
    config = json.loads((tiny_folder / "vae" / "config.json").read_text(encoding="utf-8"))
    back = convert_ldm_vae_checkpoint(vae_only, config)
    _assert_same_tensors(back, load_file(tiny_folder / "vae" / UNET_FILE))


def test_text_encoder_loads_into_clip(tiny_folder: Path, loaded: dict[str, torch.Tensor]) -> None:
    saved = load_file(tiny_folder / "text_encoder" / "model.safetensors")
    text = _with_prefix(loaded, CLIP_PREFIX)
    _assert_same_tensors(text, {k.removeprefix("text_model."): v for k, v in saved.items()})
    # transformers >= 5.6 keeps the text model's keys flat; the engine loads them the same way.
    model = _tiny_clip()
    model.load_state_dict(text, strict=True)
    assert torch.equal(
        model.state_dict()["final_layer_norm.weight"], text["final_layer_norm.weight"]
    )


def test_text_model_prefix_and_position_ids_are_normalised(
    folder_copy: Path, loaded: dict[str, torch.Tensor]
) -> None:
    # The layout of transformers < 5.6: every key under text_model., plus position_ids.
    path = folder_copy / "text_encoder" / "model.safetensors"
    saved = load_file(path)
    old_layout = {"text_model." + k.removeprefix("text_model."): v for k, v in saved.items()}
    old_layout["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    save_file(old_layout, path)
    again = _with_prefix(load_diffusers_folder(folder_copy), CLIP_PREFIX)
    _assert_same_tensors(again, _with_prefix(loaded, CLIP_PREFIX))


def test_bin_files_load_with_and_without_zip_format(
    folder_copy: Path, loaded: dict[str, torch.Tensor]
) -> None:
    saved = load_file(folder_copy / "vae" / UNET_FILE)
    (folder_copy / "vae" / UNET_FILE).unlink()
    torch.save(saved, folder_copy / "vae" / "diffusion_pytorch_model.bin")
    text = load_file(folder_copy / "text_encoder" / "model.safetensors")
    (folder_copy / "text_encoder" / "model.safetensors").unlink()
    # The pre-1.6 pickle format cannot be memory-mapped and takes the other path.
    legacy = folder_copy / "text_encoder" / "pytorch_model.bin"
    torch.save(text, legacy, _use_new_zipfile_serialization=False)
    _assert_same_tensors(load_diffusers_folder(folder_copy), loaded)


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(folder_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (folder_copy / "unet" / UNET_FILE).unlink()
    payload = {"conv_in.weight": torch.zeros(1), "evil": _RunsCode(marker)}
    torch.save(payload, folder_copy / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match="run code") as refused:
        load_diffusers_folder(folder_copy)
    assert "system" in str(refused.value)  # names the forbidden call
    assert "weights_only` set to `False" not in str(refused.value)  # no advice to disable it
    assert not marker.exists()


@pytest.mark.parametrize("part", ["vae", "unet", "text_encoder"])
def test_missing_component_is_named(folder_copy: Path, part: str) -> None:
    shutil.rmtree(folder_copy / part)
    with pytest.raises(MissingComponentError, match=f"no {part}/ folder"):
        load_diffusers_folder(folder_copy)


def test_component_without_weights_is_missing(folder_copy: Path) -> None:
    (folder_copy / "vae" / UNET_FILE).unlink()
    with pytest.raises(MissingComponentError, match="holds no weights for the VAE"):
        load_diffusers_folder(folder_copy)


def test_fp16_variant_is_a_fallback(folder_copy: Path, loaded: dict[str, torch.Tensor]) -> None:
    unet_dir = folder_copy / "unet"
    full = load_file(unet_dir / UNET_FILE)
    save_file(
        {k: v.half() for k, v in full.items()},
        unet_dir / "diffusion_pytorch_model.fp16.safetensors",
    )
    # Both present: the full-precision file wins.
    unet = _with_prefix(load_diffusers_folder(folder_copy), UNET_PREFIX)
    assert {t.dtype for t in unet.values()} == {torch.float32}
    # Only the variant left: it is used, and holds the same weights in float16.
    (unet_dir / UNET_FILE).unlink()
    unet = _with_prefix(load_diffusers_folder(folder_copy), UNET_PREFIX)
    want = _with_prefix(loaded, UNET_PREFIX)
    assert set(unet) == set(want)
    assert all(unet[k].dtype == torch.float16 for k in unet)
    assert all(torch.equal(unet[k], want[k].half()) for k in unet)


def test_sharded_weights_are_joined(folder_copy: Path, loaded: dict[str, torch.Tensor]) -> None:
    vae_dir = folder_copy / "vae"
    saved = load_file(vae_dir / UNET_FILE)
    (vae_dir / UNET_FILE).unlink()
    keys = sorted(saved)
    shards = {"part-1.safetensors": keys[::2], "part-2.safetensors": keys[1::2]}
    for name, names in shards.items():
        save_file({k: saved[k] for k in names}, vae_dir / name)
    weight_map = {key: name for name, names in shards.items() for key in names}
    index = vae_dir / (UNET_FILE + ".index.json")
    index.write_text(json.dumps({"weight_map": weight_map}), encoding="utf-8")
    _assert_same_tensors(load_diffusers_folder(folder_copy), loaded)


def test_sdxl_folder_is_unsupported(folder_copy: Path) -> None:
    shutil.copytree(folder_copy / "text_encoder", folder_copy / "text_encoder_2")
    with pytest.raises(UnsupportedModelError, match="SDXL"):
        load_diffusers_folder(folder_copy)


@pytest.mark.parametrize(("context", "family"), [(1024, "2.x"), (2048, "SDXL")])
def test_wide_context_is_unsupported(folder_copy: Path, context: int, family: str) -> None:
    config_path = folder_copy / "unet" / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["cross_attention_dim"] = context
    config_path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(UnsupportedModelError, match=family):
        load_diffusers_folder(folder_copy)


def test_unknown_unet_weights_are_refused() -> None:
    state = {"conv_in.weight": torch.zeros(1), "add_embedding.linear_1.weight": torch.zeros(1)}
    with pytest.raises(UnsupportedModelError, match="add_embedding"):
        convert_unet_state_dict(state)


def test_full_size_sd15_matches_reference_key_lists() -> None:
    with torch.device("meta"):  # SD1.5 sizes without allocating or initialising 1 GB of weights
        unet = diffusers.UNet2DConditionModel(
            sample_size=64, cross_attention_dim=768, attention_head_dim=8
        )
        vae = diffusers.AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
        )
    for model, convert, name in (
        (unet, convert_unet_state_dict, "UNET-v1-SD"),
        (vae, convert_vae_state_dict, "VAE-v1-SD"),
    ):
        converted = convert(model.state_dict())
        got = {key: tuple(tensor.shape) for key, tensor in converted.items()}
        assert got == reference_shapes(name), name
