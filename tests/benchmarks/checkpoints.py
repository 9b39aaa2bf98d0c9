"""A random-weight, full-size SD1.5 checkpoint in the real layout, made once and cached, and a
diffusers-format copy of the same weights for the benchmark's reference side.

    python -m tests.benchmarks.checkpoints [--cache DIR]

Random weights give meaningless pictures but real costs: every tensor has the size and dtype of
v1-5-pruned-emaonly (fp16 .safetensors, about 2.1 GB).
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.factories import full_sd1_shapes, random_weights

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
FILE_NAME = "sd15-random-fp16.safetensors"
DIFFUSERS_NAME = "sd15-random-diffusers"


def ensure_full_checkpoint(cache: Path = DEFAULT_CACHE) -> Path:
    path = cache / FILE_NAME
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    shapes = full_sd1_shapes()
    sd = random_weights(shapes, seed=0, dtype=torch.float16)
    sd["alphas_cumprod"] = sd["alphas_cumprod"].float()
    ids = "cond_stage_model.transformer.text_model.embeddings.position_ids"
    if ids in sd:
        sd[ids] = torch.arange(77).unsqueeze(0)
    tmp = path.with_suffix(".tmp")
    save_file(sd, str(tmp))
    tmp.rename(path)
    return path


def euler_linspace_scheduler():
    """diffusers' Euler with timesteps spaced linearly from 999 to 0 (our "normal" schedule)."""
    from diffusers import EulerDiscreteScheduler

    from tests.engine.reference import sd_scheduler_config

    return EulerDiscreteScheduler(**sd_scheduler_config(), timestep_spacing="linspace")


def ensure_diffusers_folder(cache: Path = DEFAULT_CACHE) -> Path:
    """The same fp16 weights as a diffusers folder (``StableDiffusionPipeline.save_pretrained``).

    Converted with diffusers' own single-file converters (tests/engine/reference.py), with the
    tokenizer written from the vocabulary we ship: no hub access.
    """
    folder = cache / DIFFUSERS_NAME
    if (folder / "model_index.json").exists():
        return folder
    from engine.family import SD1
    from engine.loading.checkpoint import load_single_file
    from engine.models.unet import UNetConfig
    from engine.models.vae import VAEConfig
    from engine.text.encoder import text_config_from_shapes
    from tests.engine.reference import diffusers_pipeline

    sd = load_single_file(ensure_full_checkpoint(cache))
    clip_prefix = SD1.text_encoder_prefix
    clip_shapes = {
        k.removeprefix(clip_prefix): tuple(v.shape)
        for k, v in sd.items()
        if k.startswith(clip_prefix)
    }
    from transformers import CLIPTextConfig

    # Our config's fields carry transformers' names: the reference side builds its own model.
    clip_config = CLIPTextConfig(**asdict(text_config_from_shapes(clip_shapes)))
    assert any(k.startswith(SD1.unet_prefix) for k in sd)
    assert any(k.startswith(SD1.vae_prefix) for k in sd)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe = diffusers_pipeline(
        sd, UNetConfig(), VAEConfig(), clip_config, euler_linspace_scheduler(), tmp / "tok-src"
    )
    pipe.to(dtype=torch.float16)  # fp16 -> fp32 -> fp16 is exact: the same weights as the file
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    shutil.rmtree(tmp / "tok-src")
    tmp.rename(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    cache = parser.parse_args().cache
    print(ensure_full_checkpoint(cache))
    print(ensure_diffusers_folder(cache))


if __name__ == "__main__":
    main()
