"""Checkpoint detection from key shapes: configs of any size, and files that are not SD 1.x."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from engine.errors import MissingComponentError, NotACheckpointError, UnsupportedModelError
from engine.family import SD1
from engine.loading.detect import detect_family, unet_config_from_shapes, vae_config_from_shapes
from engine.models.unet import UNetConfig, UNetModel
from engine.models.vae import AutoencoderKL, VAEConfig
from tests.factories import (
    CLIP_PREFIX,
    TINY_UNET,
    TINY_VAE,
    UNET_PREFIX,
    VAE_PREFIX,
    full_sd1_shapes,
    reference_shapes,
    shapes_of,
    strip_prefix,
    tiny_sd1_state_dict,
    write_checkpoint,
)


@pytest.fixture(scope="module")
def tiny_shapes() -> dict[str, tuple[int, ...]]:
    return shapes_of(tiny_sd1_state_dict())


def meta_shapes(factory, config) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return shapes_of(factory(config))


def test_tiny_checkpoint_is_sd1_and_its_configs_are_recovered(tiny_shapes) -> None:
    assert detect_family(tiny_shapes) is SD1
    assert unet_config_from_shapes(strip_prefix(tiny_shapes, UNET_PREFIX), SD1) == TINY_UNET
    assert vae_config_from_shapes(strip_prefix(tiny_shapes, VAE_PREFIX)) == TINY_VAE


def test_tiny_inpainting_checkpoint() -> None:
    shapes = shapes_of(tiny_sd1_state_dict(inpainting=True))
    assert detect_family(shapes) is SD1
    assert unet_config_from_shapes(strip_prefix(shapes, UNET_PREFIX), SD1).in_channels == 9


UNET_VARIANTS = [
    TINY_UNET,
    dataclasses.replace(TINY_UNET, num_res_blocks=1, transformer_depth=2),
    dataclasses.replace(TINY_UNET, channel_mult=(1, 1, 2, 3), attention_levels=(1, 3)),
    dataclasses.replace(TINY_UNET, model_channels=64, channel_mult=(1,), attention_levels=(0,)),
    dataclasses.replace(TINY_UNET, attention_levels=(), num_res_blocks=3, context_dim=96),
    dataclasses.replace(TINY_UNET, in_channels=9, out_channels=8),
]


@pytest.mark.parametrize("config", UNET_VARIANTS, ids=range(len(UNET_VARIANTS)))
def test_unet_config_round_trips_through_shapes(config: UNetConfig) -> None:
    assert unet_config_from_shapes(meta_shapes(UNetModel, config), SD1) == config


VAE_VARIANTS = [
    TINY_VAE,
    VAEConfig(ch=64, ch_mult=(1, 2, 4, 4), num_res_blocks=2),
    VAEConfig(ch=32, ch_mult=(2, 1), num_res_blocks=3, z_channels=8, embed_dim=6),
]


@pytest.mark.parametrize("config", VAE_VARIANTS, ids=range(len(VAE_VARIANTS)))
def test_vae_config_round_trips_through_shapes(config: VAEConfig) -> None:
    assert vae_config_from_shapes(meta_shapes(AutoencoderKL, config)) == config


def test_vae_with_linear_attention_weights_is_recognised() -> None:
    shapes = meta_shapes(AutoencoderKL, TINY_VAE)
    shapes = {k: (s[:2] if ".attn_1." in k and len(s) == 4 else s) for k, s in shapes.items()}
    assert vae_config_from_shapes(shapes) == TINY_VAE


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_written_checkpoint_detects_from_its_header(tmp_path, suffix: str) -> None:
    """What a loader sees: safetensors header shapes, or the ckpt's wrapped ``state_dict``."""
    sd = tiny_sd1_state_dict(seed=1, dtype=torch.float16)
    path = write_checkpoint(sd, tmp_path / f"tiny{suffix}")
    if suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        loaded = load_file(str(path))
    else:
        loaded = torch.load(path, weights_only=True)["state_dict"]
        shapes = shapes_of(loaded)
    assert shapes == shapes_of(sd)
    assert detect_family(shapes) is SD1
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())
    assert loaded[UNET_PREFIX + "out.2.weight"].dtype == torch.float16
    assert loaded[CLIP_PREFIX + "embeddings.position_ids"].dtype == torch.int64


def test_missing_unet_stem_is_reported(tiny_shapes) -> None:
    unet = strip_prefix(tiny_shapes, UNET_PREFIX)
    del unet["input_blocks.0.0.weight"]
    with pytest.raises(MissingComponentError, match="input_blocks.0.0.weight"):
        unet_config_from_shapes(unet, SD1)


def test_empty_file_is_not_a_checkpoint() -> None:
    with pytest.raises(NotACheckpointError, match="no tensors"):
        detect_family({})


def test_real_sd15_layouts_are_sd1() -> None:
    assert detect_family(full_sd1_shapes()) is SD1
    assert detect_family(full_sd1_shapes("UNET-v1-Inpainting")) is SD1
    # Some files name the text encoder without "text_model.".
    flat = {
        k.replace("transformer.text_model.", "transformer."): s
        for k, s in full_sd1_shapes().items()
    }
    assert detect_family(flat) is SD1


def _sd2() -> dict:
    return (
        reference_shapes("UNET-v2-SD", UNET_PREFIX)
        | reference_shapes("VAE-v1-SD", VAE_PREFIX)
        | reference_shapes("CLIP-v2-SD", "cond_stage_model.model.")
    )


def _sdxl() -> dict:
    return (
        reference_shapes("UNET-XL-SD", UNET_PREFIX)
        | reference_shapes("VAE-v1-SD", VAE_PREFIX)
        | reference_shapes("CLIP-v1-SD", "conditioner.embedders.0.transformer.text_model.")
        | reference_shapes("CLIP-XL-SD", "conditioner.embedders.1.model.")
    )


def _replace_unet(unet_list: str) -> dict:
    shapes = {k: s for k, s in full_sd1_shapes().items() if not k.startswith(UNET_PREFIX)}
    return shapes | reference_shapes(unet_list, UNET_PREFIX)


OLD_DIFFUSERS_LORA_KEY = (
    "unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight"
)

REJECTED = {
    "lora": (lambda: reference_shapes("LoRA-v1-UNET"), NotACheckpointError, "LoRA"),
    "lora-alpha": (
        lambda: reference_shapes("LoRA-v1A-UNET") | reference_shapes("LoRA-v1A-CLIP"),
        NotACheckpointError,
        "apply the LoRA",
    ),
    "lora-text-only": (lambda: reference_shapes("LoRA-v1-CLIP"), NotACheckpointError, "LoRA"),
    "controlnet": (
        lambda: reference_shapes("ControlNet-v1-SD", "control_model."),
        NotACheckpointError,
        "ControlNet",
    ),
    "controlnet-bare": (
        lambda: reference_shapes("ControlNet-v1-SD"),
        NotACheckpointError,
        "ControlNet",
    ),
    "vae-only": (lambda: reference_shapes("VAE-v1-SD"), NotACheckpointError, "only a VAE"),
    "vae-only-prefixed": (
        lambda: reference_shapes("VAE-v1-SD", VAE_PREFIX),
        NotACheckpointError,
        "only a VAE",
    ),
    "text-encoder-only": (
        lambda: reference_shapes("CLIP-v1-SD", CLIP_PREFIX),
        NotACheckpointError,
        "only a text encoder",
    ),
    "text-encoder-bare": (
        lambda: reference_shapes("CLIP-v1-SD"),
        NotACheckpointError,
        "only a text encoder",
    ),
    "unet-only": (lambda: reference_shapes("UNET-v1-SD"), NotACheckpointError, "only a UNet"),
    "lora-diffusers": (
        lambda: {
            "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": (
                4,
                320,
            )
        },
        NotACheckpointError,
        "LoRA",
    ),
    "lora-diffusers-old": (
        lambda: {OLD_DIFFUSERS_LORA_KEY: (4, 1280)},
        NotACheckpointError,
        "LoRA",
    ),
    "textual-inversion": (
        lambda: {"emb_params": (2, 768)},
        NotACheckpointError,
        "textual-inversion embedding",
    ),
    "textual-inversion-pt": (
        lambda: {"string_to_param.*": (1, 768)},
        NotACheckpointError,
        "textual-inversion embedding",
    ),
    "unrelated": (lambda: {"model.0.weight": (64, 3, 3, 3)}, NotACheckpointError, "not a Stable"),
    "sd2": (_sd2, UnsupportedModelError, "2.x"),
    "sd2-unet-with-sd1-parts": (lambda: _replace_unet("UNET-v2-SD"), UnsupportedModelError, "2.x"),
    "sd2-inpainting": (
        lambda: _replace_unet("UNET-v2-Inpainting"),
        UnsupportedModelError,
        "2.x",
    ),
    "sdxl": (_sdxl, UnsupportedModelError, "SDXL"),
    "sdxl-unet-only-prefixed": (
        lambda: reference_shapes("UNET-XL-SD", UNET_PREFIX),
        UnsupportedModelError,
        "SDXL",
    ),
    "sdxl-refiner": (
        lambda: reference_shapes("UNET-XL-Refiner", UNET_PREFIX),
        UnsupportedModelError,
        "SDXL",
    ),
    "pix2pix": (
        lambda: _replace_unet("UNET-v1-Pix2Pix"),
        UnsupportedModelError,
        "InstructPix2Pix",
    ),
    "unknown-diffusion-model": (
        lambda: {UNET_PREFIX + "joint_blocks.0.x_block.attn.qkv.weight": (4608, 1536)},
        UnsupportedModelError,
        "unknown layout",
    ),
}


@pytest.mark.parametrize("kind", list(REJECTED))
def test_other_files_are_rejected_with_advice(kind: str) -> None:
    build, error, words = REJECTED[kind]
    with pytest.raises(error, match=words) as info:
        detect_family(build())
    # Every message tells the person what to load instead.
    assert "Stable Diffusion 1.x checkpoint" in str(info.value)


def test_sdxl_unet_is_refused_by_config_detection_too() -> None:
    with pytest.raises(UnsupportedModelError):
        unet_config_from_shapes(reference_shapes("UNET-XL-SD"), SD1)
