"""Inpainting with a 9-channel checkpoint against diffusers' StableDiffusionInpaintPipeline.

Same tiny random weights, same seed, float32: strength 1, no blur, whole picture. Inside the
mask our picture must be diffusers' (diffusers does not paste the original back, so outside
the mask we compare with the init picture instead, which must come back bit for bit).
"""

import numpy as np
import pytest
import torch
from PIL import Image

from engine import GenerationRequest
from tests.engine import reference
from tests.engine.inpaint.conftest import SIZE, box_mask, drawn_picture
from tests.factories import TINY_UNET_INPAINT, TINY_VAE, tiny_clip_config

PROMPT = "a red apple on a wooden table"
NEGATIVE = "blurry"
# Aligned to the latent cells (4 pixels in the tiny model), so diffusers' nearest-sampled mask
# and ours agree cell for cell. Tolerance as the txt2img parity tests (test_pipeline_parity).
MASK = box_mask(16, 20, 48, 44)


def _inpaint_pipeline(weights, scheduler, folder):
    from diffusers import StableDiffusionInpaintPipeline

    unet_cfg, vae_cfg = TINY_UNET_INPAINT, TINY_VAE
    pipe = StableDiffusionInpaintPipeline(
        vae=reference.diffusers_vae(weights, unet_cfg, vae_cfg),
        text_encoder=reference.transformers_text_encoder(weights, tiny_clip_config()),
        tokenizer=reference.clip_tokenizer(folder),
        unet=reference.diffusers_unet(weights, unet_cfg, vae_cfg),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _masked_image_latents(pipe, picture, mask):
    """diffusers draws the masked image's latents from the VAE posterior with the generator;
    the engine uses the posterior mean (as for init images). Hand diffusers that mean."""
    pixels = torch.from_numpy(picture).permute(2, 0, 1)[None].float() / 127.5 - 1
    keep = torch.from_numpy(mask < 128)[None, None].float()
    with torch.inference_mode():
        dist = pipe.vae.encode(pixels * keep).latent_dist
    return dist.mean * pipe.vae.config.scaling_factor


def _compare(engine, weights, folder, scheduler, sampler, seed):
    picture = drawn_picture()
    pipe = _inpaint_pipeline(weights, scheduler, folder)
    theirs = reference.run_diffusers(
        pipe,
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        image=Image.fromarray(picture),
        mask_image=Image.fromarray(MASK, "L"),
        masked_image_latents=_masked_image_latents(pipe, picture, MASK),
        num_inference_steps=8,
        guidance_scale=5.0,
        seed=seed,
        width=SIZE,
        height=SIZE,
        strength=1.0,
    )
    request = GenerationRequest(
        PROMPT,
        negative_prompt=NEGATIVE,
        width=SIZE,
        height=SIZE,
        steps=8,
        guidance_scale=5.0,
        seed=seed,
        sampler=sampler,
        schedule="normal",
        init_image=picture,
        strength=1.0,
        mask=MASK,
        mask_blur=0,
    )
    ours = engine.generate(request).images[0].image
    inside = MASK == 255
    assert ours[inside].std() > 2, "degenerate picture: the comparison would prove nothing"
    diff = np.abs(ours[inside].astype(int) - theirs[inside].astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.2, (diff.max(), diff.mean())
    # Outside: the init picture exactly, although diffusers' decoded picture differs there.
    assert np.array_equal(ours[~inside], picture[~inside])
    assert np.abs(theirs[~inside].astype(int) - picture[~inside].astype(int)).max() > 10


def test_euler_inpainting_matches_diffusers(inpaint_engine, inpaint_weights, tmp_path):
    from diffusers import EulerDiscreteScheduler

    config = reference.sd_scheduler_config()
    scheduler = EulerDiscreteScheduler(**config, timestep_spacing="linspace")
    _compare(inpaint_engine, inpaint_weights, tmp_path, scheduler, "euler", seed=42)


def test_ddim_inpainting_matches_diffusers(inpaint_engine, inpaint_weights, tmp_path):
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(
        **reference.sd_scheduler_config(), steps_offset=1, set_alpha_to_one=False, clip_sample=False
    )
    _compare(inpaint_engine, inpaint_weights, tmp_path, scheduler, "ddim", seed=7)


@pytest.mark.parametrize("init", [False, True])
def test_no_mask_gets_a1111_txt2img_conditioning(inpaint_engine, init):
    """txt2img and img2img without a mask on a 9-channel model: A1111's
    ``txt2img_image_conditioning``, a mask channel of ones and the latents of a mid-grey
    (0 in [-1, 1]) picture, for the conditional and unconditional halves alike."""
    base = dict(width=SIZE, height=SIZE, steps=4, seed=3, sampler="euler", schedule="normal")
    if init:
        base.update(init_image=drawn_picture(), strength=0.6)
    unet_input, image = _unet_input_and_image(inpaint_engine, GenerationRequest(PROMPT, **base))
    assert image.std() > 2
    assert unet_input.shape[:2] == (2, 9)  # uncond and cond; latents, mask, masked image
    assert torch.all(unet_input[:, 4] == 1), "the mask channel must be all ones"
    grey_latents = _encode(inpaint_engine, torch.zeros(1, 3, SIZE, SIZE))
    torch.testing.assert_close(unet_input[:, 5:], grey_latents.expand(2, -1, -1, -1))


def _encode(engine, pixels):
    bundle = engine._bundle
    return bundle.vae.encode(pixels) * bundle.family.latent_scale


def _unet_input_and_image(engine, request):
    """The UNet's input at the first model call, and the picture made."""
    bundle = engine._bundle
    seen = []
    original = bundle.unet.forward

    def spy(x, t, context):
        seen.append(x.detach().clone())
        return original(x, t, context)

    bundle.unet.forward = spy
    try:
        image = engine.generate(request).images[0].image
    finally:
        del bundle.unet.forward
    return seen[0], image
