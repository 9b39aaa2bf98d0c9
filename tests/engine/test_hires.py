"""Hires fix: a 64x64 base picture, upscaled 2x, refined at 128x128 (engine.hires, hires_pass)."""

import dataclasses
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from engine import Cancelled, Engine, GenerationRequest, InvalidRequestError
from engine.hires import hires_schedule_steps, hires_target_size
from engine.parameters import parse_parameters, request_from_parameters
from engine.pipeline import decode_with_fallback
from engine.preview import to_uint8_images
from engine.validate import validate_request
from tests.factories import tiny_sd1_state_dict, write_checkpoint

BASE, TARGET = 64, 128


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=1), path)
    eng = Engine(device="cpu", precision="full")
    eng.load_model(path)
    return eng


def _req(**kw):
    # Euler a draws noise at every step: a hires pass must continue each image's own stream.
    base = dict(prompt="a red barn", width=BASE, height=BASE, steps=2, seed=5, sampler="euler_a")
    hires = dict(hires_scale=2.0, hires_steps=2, hires_denoise=0.6, hires_upscaler="latent")
    return GenerationRequest(**{**base, **hires, **kw})


@pytest.fixture
def decodes(engine, monkeypatch):
    """The latents every VAE decode gets (unscaled), in order; the decode itself runs."""
    seen = []
    vae = engine._bundle.vae
    real = vae.decode
    monkeypatch.setattr(vae, "decode", lambda z: seen.append(z.clone()) or real(z))
    return seen


@pytest.fixture(scope="module")
def hires_run(engine):
    """One hires job (latent upscaler), a batch of two (seeds 5 and 6), and its step events:
    shared by several tests, each generation costs seconds."""
    events = []
    result = engine.generate(_req(batch_size=2), on_step=events.append, job_id=4)
    return result, events


def test_the_pictures_have_the_target_size_and_the_steps_follow_the_base_pass(hires_run):
    result, events = hires_run
    assert [img.image.shape for img in result.images] == [(TARGET, TARGET, 3)] * 2
    # Base steps 1-2, then the hires pass's 3-4, all of one total: the bar fills once.
    assert [(e.step, e.total) for e in events] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    # The preview follows the picture: twice as large in the hires pass.
    base, hires = events[0].preview.shape, events[2].preview.shape
    assert (hires[0], hires[1]) == (2 * base[0], 2 * base[1])
    assert "upscale" in result.timings


@pytest.mark.parametrize("upscaler", ["latent", "lanczos"])
def test_denoise_zero_gives_the_upscaled_base_picture(engine, decodes, hires_run, upscaler):
    base = engine.generate(_req(hires_scale=1.0)).images[0].image
    base_z = decodes[-1]  # (1, C, 16, 16)
    events = []
    out = engine.generate(_req(hires_denoise=0.0, hires_upscaler=upscaler), on_step=events.append)
    assert [(e.step, e.total) for e in events] == [(1, 2), (2, 2)]  # no hires step runs
    image = out.images[0].image
    bundle = engine._bundle
    if upscaler == "latent":
        # Bilinear interpolation of the base latents, as A1111's "Latent".
        expected_z = torch.nn.functional.interpolate(base_z, size=(32, 32), mode="bilinear")
        torch.testing.assert_close(decodes[-1], expected_z)
        expected = to_uint8_images(decode_with_fallback(bundle, expected_z))[0]
    else:
        # The base picture resized with Lanczos, encoded and decoded again.
        big = np.array(Image.fromarray(base).resize((TARGET, TARGET), Image.Resampling.LANCZOS))
        x = torch.from_numpy(big).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        with torch.inference_mode():
            z = bundle.vae.encode(x)
            expected = to_uint8_images(decode_with_fallback(bundle, z))[0]
    assert image.shape == (TARGET, TARGET, 3)
    assert np.abs(image.astype(int) - expected.astype(int)).max() <= 1
    if upscaler == "latent":  # and a hires pass that runs changes it (the same seed, 5)
        refined = hires_run[0].images[0].image
        assert np.abs(refined.astype(int) - image.astype(int)).mean() > 1


@pytest.fixture(scope="module")
def cancelled_run(engine):
    """Two batches of one (seeds 5, 6), cancelled at the first hires step of the second."""
    cancel = threading.Event()
    steps, images = [], []

    def on_step(event):
        steps.append((event.batch_index, event.step))
        if (event.batch_index, event.step) == (1, 3):
            cancel.set()

    with pytest.raises(Cancelled):
        engine.generate(_req(batch_count=2), on_step=on_step, on_image=images.append, cancel=cancel)
    return steps, images


def test_cancel_in_the_hires_pass_is_prompt_and_keeps_finished_images(cancelled_run):
    steps, images = cancelled_run
    assert steps[-1] == (1, 3)  # stopped within one step of the cancel
    assert [e.image.seed for e in images] == [5]  # batch 1's picture, whole
    assert images[0].image.image.shape == (TARGET, TARGET, 3)


def test_a_seed_reproduces_its_image_alone_or_in_a_batch(cancelled_run, hires_run):
    alone = cancelled_run[1][0].image.image  # seed 5, made alone
    batch = [img.image for img in hires_run[0].images]  # seeds 5 and 6, in one batch
    # The same noise, hires pass included; only float rounding of batched matmuls may differ
    # (as without hires), while another seed gives another picture.
    assert np.abs(alone.astype(int) - batch[0].astype(int)).max() <= 2
    assert np.abs(alone.astype(int) - batch[1].astype(int)).mean() > 5


def test_cancel_at_the_last_base_step_skips_the_upscale(engine, decodes):
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        engine.generate(
            _req(hires_upscaler="lanczos"),
            on_step=lambda e: e.step == 2 and cancel.set(),
            cancel=cancel,
        )
    assert decodes == []  # Lanczos decodes the base picture first: it never started


def test_metadata_is_a1111s_and_reads_back_to_the_request(hires_run):
    text = hires_run[0].images[0].parameters
    settings = text.splitlines()[-1]
    assert "Steps: 2," in settings and "Size: 64x64" in settings  # the base pass's
    assert (
        "Denoising strength: 0.6, Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent"
        in settings
    )
    fields = request_from_parameters(parse_parameters(text))
    assert "strength" not in fields  # the denoising strength was the hires pass's
    restored = dataclasses.replace(GenerationRequest(prompt=""), **fields)
    assert restored == _req()


@pytest.mark.parametrize(
    "settings, expected",
    [
        # A1111 leaves out "Hires steps" when 0 and "Hires upscaler" when it is its default.
        ("Hires upscale: 1.5", {"hires_scale": 1.5, "hires_steps": 0, "hires_upscaler": "latent"}),
        ("Hires upscale: 2, Hires upscaler: Lanczos", {"hires_upscaler": "lanczos"}),
        # Its other upscalers are not ours: left out, the control keeps its value.
        (
            "Hires upscale: 2, Hires steps: 15, Hires upscaler: R-ESRGAN 4x+",
            {"hires_steps": 15, "hires_upscaler": None},
        ),
        # "Hires resize" instead of a factor: the factor when both sides agree (0: aspect kept).
        ("Hires resize: 1024x0, Hires upscaler: Latent", {"hires_scale": 2.0}),
        ("Hires resize: 1024x1024, Hires upscaler: Latent", {"hires_scale": None}),
        ("Hires upscale: 9", {"hires_scale": None}),
    ],
)
def test_a1111_hires_texts_read_back(settings, expected):
    """``expected``: the fields to find; None: absent."""
    line = (
        f"Steps: 20, Sampler: Euler, Seed: 1, Size: 512x768, Denoising strength: 0.45, {settings}"
    )
    fields = request_from_parameters(parse_parameters("a cat\n" + line))
    assert fields["hires_denoise"] == 0.45 and "strength" not in fields
    for name, value in expected.items():
        assert fields.get(name) == value, name


def test_img2img_texts_keep_their_strength():
    fields = request_from_parameters(
        parse_parameters("a cat\nSteps: 20, Seed: 1, Size: 512x512, Denoising strength: 0.3")
    )
    assert fields["strength"] == 0.3
    assert not any(name.startswith("hires_") for name in fields)


def test_the_target_size_rounds_down_to_a_multiple_of_8():
    assert hires_target_size(_req(hires_scale=1.3)) == (80, 80)  # int(83.2) = 83 -> 80
    assert hires_target_size(_req(width=512, height=768, hires_scale=1.5)) == (768, 1152)


def test_the_schedule_is_a1111s_for_a_fixed_step_count():
    # Hires steps n at strength d: the last n steps of int(n / d) (at most 1000).
    assert hires_schedule_steps(_req(hires_steps=10, hires_denoise=0.5)) == 20
    assert hires_schedule_steps(_req(hires_steps=10, hires_denoise=1.0)) == 10
    assert hires_schedule_steps(_req(hires_steps=0, steps=30, hires_denoise=0.7)) == 42
    assert hires_schedule_steps(_req(hires_steps=150, hires_denoise=0.001)) == 1000
    assert hires_schedule_steps(_req(hires_denoise=0.0)) == 0


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"init_image": np.zeros((64, 64, 3), np.uint8)}, "text to image only"),
        ({"width": 1024, "height": 768, "hires_scale": 2.5}, "at most 2"),
        ({"hires_scale": 0.5}, "Hires upscale must be between 1 and 4"),
        ({"hires_scale": float("nan")}, "Hires upscale must be a number"),
        ({"hires_steps": -1}, "Hires steps must be between 0"),
        ({"hires_denoise": 1.5}, "Hires denoising strength"),
        ({"hires_upscaler": "esrgan"}, "choose one of latent, lanczos"),
    ],
)
def test_bad_hires_requests_are_refused(kw, message):
    with pytest.raises(InvalidRequestError, match=message):
        validate_request(_req(**kw))


def test_img2img_without_hires_is_fine():
    validate_request(_req(init_image=np.zeros((64, 64, 3), np.uint8), hires_scale=1.0))
