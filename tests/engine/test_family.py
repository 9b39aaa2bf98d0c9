"""The model-family descriptor: detection, key prefixes, schedule, text encoder, previews, and
the pipeline reading its facts from the loaded model's family."""

import dataclasses

import numpy as np
import pytest
import torch

from engine.api import GenerationRequest
from engine.family import FAMILIES, SD1, get_family
from engine.loading.build import load_bundle, split_components
from engine.loading.detect import detect_family
from engine.pipeline import ModelLabel, generate
from engine.preview import latents_to_rgb
from engine.text.encoder import TextEncoder
from tests.factories import (
    TINY_CONTEXT,
    shapes_of,
    tiny_sd1_state_dict,
    tiny_unet,
    tiny_vae,
    write_checkpoint,
)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("family") / "tiny.safetensors"
    return write_checkpoint(tiny_sd1_state_dict(seed=3), path)


def test_lookup_by_name():
    assert get_family("sd1") is SD1 and FAMILIES == {"sd1": SD1}
    with pytest.raises(ValueError, match="sdxl"):
        get_family("sdxl")


@pytest.mark.parametrize("inpainting", [False, True], ids=["txt2img", "inpainting"])
def test_tiny_checkpoints_are_detected_as_sd1(inpainting):
    assert detect_family(shapes_of(tiny_sd1_state_dict(inpainting=inpainting))) is SD1


def test_inpainting_input_is_latents_mask_and_masked_latents():
    assert SD1.latent_channels == 4 and SD1.inpainting_in_channels == 9


def test_prefixes_split_a_checkpoint_into_its_modules():
    parts = split_components(tiny_sd1_state_dict(seed=0), SD1)
    assert set(parts["unet"]) == set(tiny_unet().state_dict())
    assert set(parts["vae"]) == set(tiny_vae().state_dict())
    assert "text_model.final_layer_norm.weight" in parts["clip"]


def test_text_encoder_builder_loads_the_split_weights():
    clip = split_components(tiny_sd1_state_dict(seed=0), SD1)["clip"]
    encoder = SD1.build_text_encoder(clip, torch.device("cpu"), torch.bfloat16)
    assert isinstance(encoder, TextEncoder)
    assert encoder.dtype == torch.bfloat16
    assert encoder.encode(torch.full((1, 77), 49407)).shape == (1, 77, TINY_CONTEXT)


def test_schedule_is_the_scaled_linear_betas_of_the_design():
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    torch.testing.assert_close(SD1.alphas_cumprod(), torch.cumprod(1 - betas, 0))


@pytest.mark.parametrize("channel", range(4))
def test_preview_of_one_latent_channel_is_that_rows_colour(channel):
    latents = torch.zeros(1, SD1.latent_channels, 2, 3)
    latents[:, channel] = 1.0
    preview = latents_to_rgb(latents, SD1.latent_rgb)  # (2, 3, 3) uint8
    row = np.array(SD1.latent_rgb[channel])
    expected = np.round(np.clip(row / 2 + 0.5, 0, 1) * 255).astype(np.uint8)
    assert preview.shape == (2, 3, 3)
    assert (preview == expected).all()


def test_preview_uses_the_factors_it_is_given():
    latents = torch.zeros(1, 4, 2, 2)
    latents[:, 2] = 1.0
    swapped = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (1.0, -1.0, 0.0), (0.0, 0.0, 0.0))
    assert latents_to_rgb(latents, swapped)[0, 0].tolist() == [255, 0, 128]


def test_pipeline_previews_with_the_bundle_familys_factors(tiny_ckpt):
    bundle = load_bundle(tiny_ckpt, torch.device("cpu"), torch.float32)
    assert bundle.family is SD1
    # A family whose factors map every latent to 0: its previews are mid grey everywhere.
    bundle.family = dataclasses.replace(SD1, latent_rgb=((0.0, 0.0, 0.0),) * 4)
    previews = []
    request = GenerationRequest("a barn", width=64, height=64, steps=2, seed=1, sampler="euler")
    generate(bundle, request, ModelLabel("tiny", None), on_step=lambda e: previews.append(e))
    assert len(previews) == 2
    assert all(e.preview is not None and (e.preview == 128).all() for e in previews)


def test_generate_runs_an_inpainting_model(tmp_path):
    """No longer refused (issue 12): txt2img on a 9-channel model gets A1111's conditioning
    (tests/engine/inpaint/test_inpaint_parity.py checks its channels)."""
    path = write_checkpoint(tiny_sd1_state_dict(inpainting=True), tmp_path / "inpaint.safetensors")
    bundle = load_bundle(path, torch.device("cpu"), torch.float32)
    assert bundle.inpainting
    request = GenerationRequest("a barn", width=64, height=64, steps=1, seed=1)
    result = generate(bundle, request, ModelLabel("inpaint", None))
    assert result.images[0].image.shape == (64, 64, 3)
