"""Inpainting with a normal (4-channel) checkpoint, and the hooks every model shares."""

import numpy as np
import pytest
import torch

from engine import GenerationRequest
from engine.inpaint import masks
from engine.inpaint.latents import blend_outside_mask, start_latents
from engine.inpaint.outpaint import extend
from engine.parameters import parse_parameters, request_from_parameters
from engine.sampling.k_samplers import sample_euler
from tests.engine.inpaint.conftest import SIZE, box_mask, drawn_picture

MASK = box_mask(16, 16, 48, 48)


def _inpaint(engine, picture=None, mask=MASK, **kw):
    base = dict(
        width=SIZE,
        height=SIZE,
        steps=6,
        seed=5,
        sampler="euler_a",
        init_image=drawn_picture() if picture is None else picture,
        strength=0.75,
        mask=mask,
    )
    return engine.generate(GenerationRequest("a cat", **{**base, **kw}))


def test_pixels_outside_the_mask_are_unchanged(normal_engine):
    picture = drawn_picture()
    result = _inpaint(normal_engine, picture, mask_blur=4)
    out = result.images[0].image
    outside = masks.feather(MASK, 4) == 0
    assert np.array_equal(out[outside], picture[outside])
    inside = MASK == 255
    assert np.abs(out[inside].astype(int) - picture[inside].astype(int)).mean() > 10


def test_latents_outside_the_mask_follow_the_init_latent():
    """The blend alone (before any paste) keeps the known latents: a model that returns
    nonsense still ends exactly on the init latent outside the mask, under an unchanged
    sampler, and is free inside."""
    gen = torch.Generator().manual_seed(0)
    init = torch.randn(1, 4, 8, 8, generator=gen)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    noise = torch.randn(1, 4, 8, 8, generator=gen)
    calls = []

    def nonsense(x, sigma):
        calls.append(x.clone())
        return torch.full_like(x, 3.0)

    sigmas = torch.tensor([10.0, 5.0, 2.0, 0.5, 0.0])
    model = blend_outside_mask(nonsense, init, mask, noise)
    out = sample_euler(model, init + noise * sigmas[0], sigmas)
    keep = mask == 0
    torch.testing.assert_close(
        out.expand_as(init)[keep.expand_as(init)], init[keep.expand_as(init)]
    )
    assert torch.allclose(out[..., 3, 3], torch.full((1, 4), 3.0))
    # Each call saw the known part noised to its own sigma.
    for x, sigma in zip(calls, sigmas[:-1], strict=True):
        expected = init + noise * sigma
        torch.testing.assert_close(x[..., 0, 0], expected[..., 0, 0])


def test_soft_mask_gives_a_graded_blend(normal_engine):
    picture = drawn_picture()
    ramp = np.tile(np.linspace(0, 255, SIZE).round().astype(np.uint8), (SIZE, 1))
    out = _inpaint(normal_engine, picture, mask=ramp, mask_blur=0, strength=0.9)
    diff = np.abs(out.images[0].image.astype(int) - picture.astype(int)).mean(axis=(0, 2))
    bands = [diff[i : i + 16].mean() for i in range(0, SIZE, 16)]
    assert diff[0] == 0  # mask 0: the picture itself
    assert bands[0] < bands[1] < bands[3], bands  # more change where the mask is whiter
    assert bands[0] < 0.5 * bands[3], bands


@pytest.mark.parametrize("content", ["original", "fill", "latent_noise", "latent_nothing"])
def test_start_latents_by_masked_content(content):
    init = torch.full((1, 4, 4, 4), 2.0)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1.0  # left half repainted
    mask[..., 2] = 0.5  # a soft column
    noise = torch.ones(1, 4, 4, 4)
    fill = torch.full((1, 4, 4, 4), -1.0)
    x = start_latents(content, init, mask, noise, sigma=3.0, fill_noise=fill)
    inside, soft, outside = x[..., 0].unique(), x[..., 2].unique(), x[..., 3].unique()
    assert outside.tolist() == [2.0 + 3.0]  # every mode: the init latent, noised
    expected_inside = {"original": 2.0, "fill": 2.0, "latent_noise": -1.0, "latent_nothing": 0.0}
    assert inside.tolist() == [expected_inside[content] + 3.0]
    assert soft.tolist() == [(2.0 + expected_inside[content]) / 2 + 3.0]


def test_every_masked_content_keeps_the_outside_and_differs_inside(normal_engine):
    picture = drawn_picture()
    outs = {}
    for content in ("original", "fill", "latent_noise", "latent_nothing"):
        image = _inpaint(normal_engine, picture, masked_content=content, strength=0.6)
        outs[content] = image.images[0].image
        outside = masks.feather(MASK, 4) == 0
        assert np.array_equal(outs[content][outside], picture[outside])
    inside = MASK == 255
    names = list(outs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.array_equal(outs[a][inside], outs[b][inside]), (a, b)


def test_only_masked_area_returns_the_full_picture(normal_engine):
    picture = drawn_picture(128)
    mask = box_mask(40, 70, 56, 90, size=128)
    result = _inpaint(normal_engine, picture, mask, inpaint_area="masked", inpaint_padding=8)
    out = result.images[0].image
    assert out.shape == (128, 128, 3)
    outside = masks.feather(mask, 4) == 0
    assert np.array_equal(out[outside], picture[outside])
    inside = mask == 255
    assert np.abs(out[inside].astype(int) - picture[inside].astype(int)).mean() > 10
    settings = parse_parameters(result.images[0].parameters).settings
    assert settings["Inpaint area"] == "Only masked" and settings["Masked area padding"] == "8"


def test_outpainting_extends_the_size_and_keeps_the_old_pixels(normal_engine):
    picture = drawn_picture(48)
    bigger, mask = extend(picture, left=16, top=0, right=0, bottom=16)
    out = _inpaint(normal_engine, bigger, mask, strength=1.0, mask_blur=0)
    image = out.images[0].image
    assert image.shape == (SIZE, SIZE, 3)
    keep = mask == 0
    assert keep.any() and np.array_equal(image[keep], bigger[keep])
    new = np.zeros_like(keep)
    new[:, :16] = True
    new[48:] = True
    assert np.abs(image[new].astype(int) - bigger[new].astype(int)).mean() > 10


def test_metadata_is_written_as_a1111_and_read_back(normal_engine):
    result = _inpaint(normal_engine, mask_blur=6, masked_content="latent_nothing")
    text = result.images[0].parameters
    assert "Mask blur: 6" in text and "Masked content: latent nothing" in text
    assert "Inpaint area" not in text  # whole picture: A1111's default, not written
    fields = request_from_parameters(parse_parameters(text))
    assert fields["mask_blur"] == 6 and fields["masked_content"] == "latent_nothing"
    assert fields["inpaint_area"] == "whole" and fields["strength"] == 0.75


def test_a1111_text_restores_the_inpainting_fields():
    text = (
        "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, "
        "Denoising strength: 0.6, Mask blur: 8, Masked content: fill, "
        "Inpaint area: Only masked, Masked area padding: 40"
    )
    fields = request_from_parameters(parse_parameters(text))
    assert fields["mask_blur"] == 8 and fields["masked_content"] == "fill"
    assert fields["inpaint_area"] == "masked" and fields["inpaint_padding"] == 40
    plain = request_from_parameters(parse_parameters("a cat\nSteps: 20, Seed: 1, Size: 64x64"))
    assert not {"mask_blur", "masked_content", "inpaint_area"} & set(plain)


def test_batch_image_reproduces_alone_with_latent_noise(normal_engine):
    """The "latent noise" fill comes from each image's own generator: image i of a batch is
    the picture made alone with seed + i."""
    kw = dict(masked_content="latent_noise", sampler="euler_a")
    batch = _inpaint(normal_engine, seed=5, batch_size=2, **kw).images
    alone = _inpaint(normal_engine, seed=6, **kw).images[0]
    assert [image.seed for image in batch] == [5, 6]
    diff = np.abs(batch[1].image.astype(int) - alone.image.astype(int))
    assert diff.max() <= 2
    assert not np.array_equal(batch[0].image, batch[1].image)


def test_inpainting_model_runs_the_hires_fix(inpaint_engine):
    """txt2img's hires pass on a 9-channel model gets the mask channels at the larger size."""
    request = GenerationRequest(
        "a cat", width=SIZE, height=SIZE, steps=2, seed=1, sampler="euler", hires_scale=1.5
    )
    image = inpaint_engine.generate(request).images[0].image
    assert image.shape == (96, 96, 3) and image.std() > 2
