"""txt2img's start noise (A1111's "SGM noise multiplier") and the sampler keys in the PNG text."""

import math

import numpy as np
import pytest
import torch

from engine import Engine, GenerationRequest
from engine.parameters import SGM_NOISE_KEY, parse_parameters, request_from_parameters
from engine.sampling import registry
from engine.sampling.noise import NoiseSource
from tests.factories import tiny_sd1_state_dict, write_checkpoint

SIZE = 64


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=3), path)
    eng = Engine(device="cpu", precision="full")
    eng.load_model(path)
    return eng


def _req(**kw):
    base = dict(prompt="a lighthouse", width=SIZE, height=SIZE, steps=3, seed=11, sampler="euler")
    return GenerationRequest(**{**base, **kw})


def _run(engine, monkeypatch, **kw):
    """(image, parameters text, the x and sigmas the sampler was started with)."""
    request = _req(**kw)
    started = {}
    real = registry.SAMPLER_FUNCTIONS[request.sampler]

    def recording(denoiser, x, sigmas, **options):
        started["x"], started["sigmas"] = x.clone(), sigmas.clone()
        return real(denoiser, x, sigmas, **options)

    monkeypatch.setitem(registry.SAMPLER_FUNCTIONS, request.sampler, recording)
    (image,) = engine.generate(request).images
    return image.image, image.parameters, started["x"], started["sigmas"]


@pytest.mark.parametrize("sampler", ["euler", "dpmpp_2m"])
def test_sgm_noise_off_starts_at_noise_times_sigma_max(engine, monkeypatch, sampler):
    on_image, on_text, on_x, sigmas = _run(engine, monkeypatch, sampler=sampler)
    off_image, off_text, off_x, off_sigmas = _run(
        engine, monkeypatch, sampler=sampler, sgm_noise=False
    )
    torch.testing.assert_close(off_sigmas, sigmas, rtol=0, atol=0)
    noise = NoiseSource([11]).sample(on_x.shape)  # the seed's own noise, drawn again
    sigma_max = float(sigmas[0])
    assert sigma_max > 10  # a full schedule: the two starts differ by about 0.3 %
    torch.testing.assert_close(off_x, noise * sigma_max, rtol=0, atol=0)
    torch.testing.assert_close(on_x, noise * math.sqrt(1 + sigma_max**2), rtol=0, atol=0)
    assert not np.array_equal(on_image, off_image)
    # The text says which start was used, exactly as A1111 does, and reads back to it.
    assert f"{SGM_NOISE_KEY}: True" in on_text and SGM_NOISE_KEY not in off_text
    assert request_from_parameters(parse_parameters(on_text))["sgm_noise"] is True
    assert request_from_parameters(parse_parameters(off_text))["sgm_noise"] is False


@pytest.mark.parametrize("sampler", ["ddim", "plms"])
def test_samplers_with_their_own_timesteps_ignore_sgm_noise(engine, monkeypatch, sampler):
    # A1111's DDIM and PLMS start from unit noise in the unscaled space: our scaled start.
    on_image, on_text, on_x, sigmas = _run(engine, monkeypatch, sampler=sampler)
    off_image, off_text, *_ = _run(engine, monkeypatch, sampler=sampler, sgm_noise=False)
    noise = NoiseSource([11]).sample(on_x.shape)
    torch.testing.assert_close(on_x, noise * math.sqrt(1 + float(sigmas[0]) ** 2))
    assert np.array_equal(on_image, off_image) and on_text == off_text
    assert SGM_NOISE_KEY not in on_text


def test_img2img_ignores_sgm_noise(engine, monkeypatch):
    init = np.full((SIZE, SIZE, 3), 120, np.uint8)
    on_image, on_text, *_ = _run(engine, monkeypatch, init_image=init, strength=0.6)
    off_image, off_text, *_ = _run(
        engine, monkeypatch, init_image=init, strength=0.6, sgm_noise=False
    )
    assert np.array_equal(on_image, off_image) and on_text == off_text
    assert SGM_NOISE_KEY not in on_text


@pytest.mark.parametrize("sampler", ["ddim", "plms"])
def test_no_schedule_type_for_samplers_without_a_schedule(engine, monkeypatch, sampler):
    # They run on the CompVis timesteps whatever the request's schedule says.
    _, text, *_ = _run(engine, monkeypatch, sampler=sampler, schedule="karras")
    settings = parse_parameters(text).settings
    assert "Schedule type" not in settings
    assert settings["Sampler"] == sampler.upper()
    fields = request_from_parameters(parse_parameters(text))
    assert fields["sampler"] == sampler and "schedule" not in fields


def test_schedule_type_for_samplers_with_one(engine, monkeypatch):
    _, text, *_ = _run(engine, monkeypatch, sampler="euler", schedule="karras")
    settings = parse_parameters(text).settings
    assert (settings["Sampler"], settings["Schedule type"]) == ("Euler", "Karras")
    assert settings["Version"].startswith("latentdesk ")
