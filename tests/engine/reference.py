"""diffusers, built from the same tiny weights with diffusers' own single-file converters.

Test-only: diffusers is the numerical reference and never imported by engine/ or app/.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from engine.resources import resource_path
from engine.text.tokenizer import END_TOKEN, START_TOKEN, build_vocab, read_merges


def ldm_original_config(unet_cfg, vae_cfg) -> dict:
    """The LDM YAML (as a dict) that describes the tiny model, for diffusers' config builders."""
    return {
        "model": {
            "params": {
                "scale_factor": 0.18215,
                "unet_config": {
                    "params": {
                        "in_channels": unet_cfg.in_channels,
                        "out_channels": unet_cfg.out_channels,
                        "model_channels": unet_cfg.model_channels,
                        "channel_mult": list(unet_cfg.channel_mult),
                        "num_res_blocks": unet_cfg.num_res_blocks,
                        "attention_resolutions": [2**lvl for lvl in unet_cfg.attention_levels],
                        "num_heads": unet_cfg.num_heads,
                        "transformer_depth": 1,
                        "context_dim": unet_cfg.context_dim,
                        "use_linear_in_transformer": False,
                    }
                },
                "first_stage_config": {
                    "params": {
                        "ddconfig": {
                            "ch": vae_cfg.ch,
                            "ch_mult": list(vae_cfg.ch_mult),
                            "num_res_blocks": vae_cfg.num_res_blocks,
                            "z_channels": vae_cfg.z_channels,
                            "in_channels": 3,
                            "out_ch": 3,
                        }
                    }
                },
            }
        }
    }


def diffusers_unet(sd, unet_cfg, vae_cfg):
    from diffusers import UNet2DConditionModel
    from diffusers.loaders import single_file_utils as sfu

    original = ldm_original_config(unet_cfg, vae_cfg)
    config = sfu.create_unet_diffusers_config_from_ldm(original, sd, image_size=64)
    unet = UNet2DConditionModel(**config)
    unet.load_state_dict(sfu.convert_ldm_unet_checkpoint(sd, config), strict=True)
    return unet.eval()


def diffusers_vae(sd, unet_cfg, vae_cfg):
    from diffusers import AutoencoderKL
    from diffusers.loaders import single_file_utils as sfu

    original = ldm_original_config(unet_cfg, vae_cfg)
    config = sfu.create_vae_diffusers_config_from_ldm(original, sd, image_size=64)
    vae = AutoencoderKL(**config)
    vae.load_state_dict(sfu.convert_ldm_vae_checkpoint(sd, config), strict=True)
    return vae.eval()


def transformers_text_encoder(sd, clip_config):
    from diffusers.loaders import single_file_utils as sfu
    from transformers import CLIPTextModel

    model = CLIPTextModel(clip_config)
    converted = sfu.convert_ldm_clip_checkpoint(sd)  # keys "text_model.*"
    expected = set(model.state_dict())
    if not any(k.startswith("text_model.") for k in expected):  # transformers >= 5.6: flat keys
        converted = {k.removeprefix("text_model."): v for k, v in converted.items()}
    converted = {k: v for k, v in converted.items() if k in expected}
    model.load_state_dict(converted, strict=False)
    return model.eval()


def clip_tokenizer(folder: Path):
    """transformers' CLIPTokenizer from the vocabulary we ship (written out as vocab/merges)."""
    from transformers import CLIPTokenizer

    merges = read_merges(resource_path("clip", "bpe_merges.txt.gz"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(build_vocab(merges)), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return CLIPTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        bos_token=START_TOKEN,
        eos_token=END_TOKEN,
        pad_token=END_TOKEN,
        model_max_length=77,
    )


def diffusers_pipeline(sd, unet_cfg, vae_cfg, clip_config, scheduler, folder: Path, img2img=False):
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    cls = StableDiffusionImg2ImgPipeline if img2img else StableDiffusionPipeline
    pipe = cls(
        vae=diffusers_vae(sd, unet_cfg, vae_cfg),
        text_encoder=transformers_text_encoder(sd, clip_config),
        tokenizer=clip_tokenizer(folder),
        unet=diffusers_unet(sd, unet_cfg, vae_cfg),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd_scheduler_config() -> dict:
    return {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
    }


@torch.inference_mode()
def run_diffusers(pipe, *, seed: int, **kwargs):
    """One image as (H, W, 3) uint8, from diffusers' own CPU-generator seeding."""
    out = pipe(generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **kwargs)
    return (out.images[0] * 255).round().astype("uint8")
