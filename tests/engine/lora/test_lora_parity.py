"""LoRA on the tiny model against diffusers' ``load_lora_weights`` + ``fuse_lora``, same seed.

Our side goes through the Engine: the tag in the prompt, the file found by the library. The
diffusers side is the same checkpoint through diffusers' single-file converters, the same file
through ``load_lora_weights`` and ``fuse_lora(lora_scale=...)``. Float32; an image matches
when no channel differs by more than 2 of 255 and the mean difference is below 0.2, the
tolerance of the project's other pipeline parity tests (float32 summation order only).
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from engine import Engine, GenerationRequest
from tests.engine import reference
from tests.engine.lora.lora_files import kohya_lora, write_lora
from tests.engine.lora.test_lora_engine import _library
from tests.factories import (
    TINY_UNET,
    TINY_VAE,
    tiny_clip_config,
    tiny_sd1_state_dict,
    write_checkpoint,
)

PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry"
SIZE, STEPS, SEED = 64, 6, 42


@pytest.fixture(scope="module")
def weights():
    return tiny_sd1_state_dict(seed=3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, weights) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_checkpoint(weights, folder / "tiny-sd1.safetensors")
    return folder


def _pipe(weights, tmp: Path):
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler(**reference.sd_scheduler_config(), timestep_spacing="linspace")
    return reference.diffusers_pipeline(
        weights, TINY_UNET, TINY_VAE, tiny_clip_config(), sched, tmp / "tokenizer"
    )


def _theirs(pipe) -> np.ndarray:
    return reference.run_diffusers(
        pipe,
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        num_inference_steps=STEPS,
        guidance_scale=5.0,
        seed=SEED,
        width=SIZE,
        height=SIZE,
    )


@pytest.fixture(scope="module")
def engine(folder, tmp_path_factory) -> Engine:
    lib = _library(tmp_path_factory.mktemp("lib"), folder)
    eng = Engine(device="cpu", precision="full", library=lib)
    eng.load_model(folder / "tiny-sd1.safetensors")
    return eng


def _ours(engine: Engine, tags: str = "") -> np.ndarray:
    request = GenerationRequest(
        f"{PROMPT} {tags}" if tags else PROMPT,
        negative_prompt=NEGATIVE,
        width=SIZE,
        height=SIZE,
        steps=STEPS,
        guidance_scale=5.0,
        seed=SEED,
        sampler="euler",
        schedule="normal",
    )
    return engine.generate(request).images[0].image


def _assert_same(ours: np.ndarray, theirs: np.ndarray) -> None:
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.2, (diff.max(), diff.mean())


def _assert_changed(with_lora: np.ndarray, base: np.ndarray) -> None:
    """The LoRA must move the picture well beyond the tolerance, or a match proves nothing."""
    assert np.abs(with_lora.astype(int) - base.astype(int)).mean() > 3


def test_kohya_lora_matches_diffusers_fuse(engine, weights, folder, tmp_path):
    pipe = _pipe(weights, tmp_path)
    base = _theirs(pipe)
    lora = kohya_lora(pipe.unet, pipe.text_encoder, seed=11, alpha=2.0)
    assert any(k.startswith("lora_unet_down_blocks_0_resnets_0_conv1") for k in lora)  # LoCon
    path = write_lora(lora, folder / "kohya-test.safetensors")
    pipe.load_lora_weights(str(path))
    pipe.fuse_lora(lora_scale=0.8)
    theirs = _theirs(pipe)
    _assert_changed(theirs, base)
    _assert_same(_ours(engine, "<lora:kohya-test:0.8>"), theirs)


def test_peft_lora_saved_by_diffusers_matches_diffusers_fuse(engine, weights, folder, tmp_path):
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(5)  # PEFT draws the random A and B from the global generator
    maker = _pipe(weights, tmp_path)
    unet_config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["to_q", "to_k", "to_v", "to_out.0", "conv1"],
        init_lora_weights=False,
    )
    te_config = LoraConfig(
        r=4, lora_alpha=2, target_modules=["q_proj", "v_proj", "fc1"], init_lora_weights=False
    )
    maker.unet.add_adapter(unet_config)
    text_encoder = inject_adapter_in_model(te_config, maker.text_encoder)
    StableDiffusionPipeline.save_lora_weights(
        str(folder),
        unet_lora_layers=get_peft_model_state_dict(maker.unet),
        text_encoder_lora_layers=get_peft_model_state_dict(text_encoder),
        unet_lora_adapter_metadata=unet_config.to_dict(),
        text_encoder_lora_adapter_metadata=te_config.to_dict(),
        weight_name="peft-test.safetensors",
    )
    pipe = _pipe(weights, tmp_path)
    base = _theirs(pipe)
    pipe.load_lora_weights(str(folder / "peft-test.safetensors"))
    pipe.fuse_lora(lora_scale=0.8)
    theirs = _theirs(pipe)
    _assert_changed(theirs, base)
    _assert_same(_ours(engine, "<lora:peft-test:0.8>"), theirs)


def test_two_loras_match_two_fused_in_turn(engine, weights, folder, tmp_path):
    pipe = _pipe(weights, tmp_path)
    a = write_lora(kohya_lora(pipe.unet, pipe.text_encoder, seed=21), folder / "two-a.safetensors")
    b = write_lora(
        kohya_lora(pipe.unet, pipe.text_encoder, seed=22, alpha=None, size=0.5),
        folder / "two-b.safetensors",
    )
    for path, scale in ((a, 0.8), (b, -0.6)):
        pipe.load_lora_weights(str(path))
        pipe.fuse_lora(lora_scale=scale)
        pipe.unload_lora_weights()  # the fused weights stay
    _assert_same(_ours(engine, "<lora:two-a:0.8> <lora:two-b:-0.6>"), _theirs(pipe))


def test_apply_then_remove_gives_the_base_image_bit_for_bit(engine, weights, folder, tmp_path):
    pipe = _pipe(weights, tmp_path)
    path = folder / "remove-test.safetensors"
    write_lora(kohya_lora(pipe.unet, pipe.text_encoder, seed=31), path)
    before = _ours(engine)
    state = {k: v.clone() for k, v in engine._bundle.unet.state_dict().items()}
    with_lora = _ours(engine, "<lora:remove-test:1>")
    _assert_changed(with_lora, before)
    after = _ours(engine)
    assert np.array_equal(before, after)
    assert all(torch.equal(v, state[k]) for k, v in engine._bundle.unet.state_dict().items())
