"""LCM-LoRA's layout: every layer it trains is found, in each format the file comes in.

LCM-LoRA (latent-consistency/lcm-lora-sdv1-5) was trained by diffusers'
``examples/consistency_distillation/train_lcm_distill_lora_sd_wds.py`` with PEFT on these UNet
modules: the attention projections, ``proj_in``/``proj_out``, the feed-forward, the resnets'
``conv1``/``conv2``/``conv_shortcut``/``time_emb_proj``, and the down- and upsampler
convolutions. Its file names them in diffusers' terms: ``unet.<module>.lora.down.weight``
(diffusers before PEFT), ``unet.<module>.lora_A.weight`` (PEFT), or ``lora_unet_<module>`` with
``_`` for ``.`` (kohya conversions, what A1111 and ComfyUI users download).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel

from engine import Engine, GenerationRequest
from engine.lora.formats import parse_lora
from engine.lora.patcher import fits
from engine.lora.targets import TargetIndex
from engine.models.unet import UNetConfig, UNetModel
from tests.engine import reference
from tests.engine.lora.lora_files import write_lora
from tests.engine.lora.test_lora_engine import _library
from tests.factories import (
    TINY_UNET,
    TINY_VAE,
    tiny_clip_config,
    tiny_sd1_state_dict,
    write_checkpoint,
)

LCM_LORA_TARGETS = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "conv1",
    "conv2",
    "conv_shortcut",
    "downsamplers.0.conv",
    "upsamplers.0.conv",
    "time_emb_proj",
)
RANK = 4
# On SD 1.5: 32 of each attention projection, 16 proj_in/proj_out/ff pairs, 22 resnets (conv1,
# conv2, time_emb_proj), 14 conv_shortcuts, 3 down- and 3 upsamplers.
COUNT = 278


def lcm_lora_modules(unet: torch.nn.Module) -> dict[str, torch.Size]:
    """Weight shapes of the modules PEFT wraps for LCM-LoRA's targets (a name ending in one)."""
    return {
        name: module.weight.shape
        for name, module in unet.named_modules()
        if isinstance(module, torch.nn.Linear | torch.nn.Conv2d)
        and any(name == t or name.endswith("." + t) for t in LCM_LORA_TARGETS)
    }


def lcm_lora(shapes: dict[str, torch.Size], layout: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random LoRA on those modules in ``layout`` ("kohya", "diffusers" or "peft")."""
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for name, (out, inp, *kernel) in shapes.items():
        fan_in = inp * (kernel[0] * kernel[1] if kernel else 1)
        down = torch.randn(RANK, inp, *kernel, generator=gen) / fan_in**0.5
        up = torch.randn(out, RANK, *((1, 1) if kernel else ()), generator=gen) / RANK**0.5
        if layout == "kohya":
            key = "lora_unet_" + name.replace(".", "_")
            tensors |= {f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up}
            tensors[f"{key}.alpha"] = torch.tensor(float(RANK))
        elif layout == "diffusers":
            tensors |= {f"unet.{name}.lora.down.weight": down, f"unet.{name}.lora.up.weight": up}
        else:
            tensors |= {f"unet.{name}.lora_A.weight": down, f"unet.{name}.lora_B.weight": up}
    return tensors


@pytest.fixture(scope="module")
def full_size():
    """SD 1.5's UNet as diffusers and as we build it, and CLIP-L, on the meta device."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        theirs = UNet2DConditionModel(cross_attention_dim=768, sample_size=64)
        ours = UNetModel(UNetConfig())
        clip = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072))
    return lcm_lora_modules(theirs), TargetIndex(ours, UNetConfig(), clip)


@pytest.mark.parametrize("layout", ["kohya", "diffusers", "peft"])
def test_every_lcm_lora_layer_finds_its_sd15_module(full_size, layout):
    shapes, index = full_size
    lora = parse_lora(Path("lcm-lora-sdv1-5.safetensors"), lcm_lora(shapes, layout), {})
    assert lora.format == layout and lora.ignored == 0
    assert len(lora.layers) == len(shapes) == COUNT
    targets = [index.find(la) for la in lora.layers]
    missing = [la.module for la, t in zip(lora.layers, targets, strict=True) if t is None]
    assert not missing
    assert all(fits(la, t.weight) for la, t in zip(lora.layers, targets, strict=True))
    assert len({t.key for t in targets}) == len(shapes)  # no two layers on one module
    found = {la.module.replace("_", "."): t.key for la, t in zip(lora.layers, targets, strict=True)}
    # Known SD conversions (diffusers' convert_original_stable_diffusion tables).
    for name, ldm in [
        ("down.blocks.0.resnets.0.conv1", "unet:input_blocks.1.0.in_layers.2"),
        ("down.blocks.1.resnets.0.conv.shortcut", "unet:input_blocks.4.0.skip_connection"),
        ("down.blocks.2.downsamplers.0.conv", "unet:input_blocks.9.0.op"),
        ("mid.block.resnets.1.time.emb.proj", "unet:middle_block.2.emb_layers.1"),
        ("up.blocks.1.upsamplers.0.conv", "unet:output_blocks.5.2.conv"),
        (
            "up.blocks.3.attentions.2.transformer.blocks.0.ff.net.2",
            "unet:output_blocks.11.1.transformer_blocks.0.ff.net.2",
        ),
    ]:
        assert found[name] == ldm


# -- a random LoRA in that layout, end to end ----------------------------------------------------

PROMPT = "a photograph of an astronaut riding a horse"
SIZE, STEPS, SEED = 64, 4, 42


@pytest.fixture(scope="module")
def weights():
    return tiny_sd1_state_dict(seed=3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, weights) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_checkpoint(weights, folder / "tiny-sd1.safetensors")
    return folder


def test_diffusers_layout_lcm_lora_with_lcm_matches_diffusers(weights, folder, tmp_path):
    from diffusers import LCMScheduler

    pipe = reference.diffusers_pipeline(
        weights,
        TINY_UNET,
        TINY_VAE,
        tiny_clip_config(),
        LCMScheduler(**reference.sd_scheduler_config(), steps_offset=1),  # as diffusers wants
        tmp_path / "tokenizer",
    )
    lora = lcm_lora(lcm_lora_modules(pipe.unet), "diffusers", seed=5)
    path = write_lora(lora, folder / "lcm-lora-sdv1-5.safetensors")
    run = dict(prompt=PROMPT, num_inference_steps=STEPS, guidance_scale=1.0, seed=SEED)
    base = reference.run_diffusers(pipe, **run)
    pipe.load_lora_weights(str(path))
    pipe.fuse_lora(lora_scale=1.0)
    theirs = reference.run_diffusers(pipe, **run)
    assert np.abs(theirs.astype(int) - base.astype(int)).mean() > 3  # the LoRA matters

    engine = Engine(device="cpu", precision="full", library=_library(tmp_path, folder))
    engine.load_model(folder / "tiny-sd1.safetensors")
    request = GenerationRequest(
        f"{PROMPT} <lora:lcm-lora-sdv1-5:1>",
        width=SIZE,
        height=SIZE,
        steps=STEPS,
        guidance_scale=1.0,
        seed=SEED,
        sampler="lcm",
        schedule="lcm",
    )
    result = engine.generate(request)
    assert result.notes == ()  # no "n of m layers matched": all of them were
    diff = np.abs(result.images[0].image.astype(int) - theirs.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.2, (diff.max(), diff.mean())
