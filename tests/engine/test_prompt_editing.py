"""Prompt syntax through the whole engine: scheduled prompts switch at the stated step (seen in
the context the UNet receives), prompts are encoded once, plain prompts give the same picture as
before, embeddings come from the library and are named in the metadata (TI hashes)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from engine import Engine, GenerationRequest
from engine.errors import EmbeddingError
from engine.library import LibraryConfig, ModelLibrary
from engine.parameters import parse_parameters
from engine.pipeline import _Run
from engine.sampling.conditioning import Conditioning, ConditioningSchedule
from engine.sampling.denoiser import CFGDenoiser, UNetDenoiser, step_at_sigma
from engine.text.weighted import encode_weighted
from tests.factories import tiny_sd1_state_dict, write_checkpoint

SIZE = 64


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The tiny checkpoint, a 64-wide (the tiny model's width) embedding and an SD2 one."""
    folder = tmp_path_factory.mktemp("models")
    write_checkpoint(tiny_sd1_state_dict(seed=1), folder / "tiny.safetensors")
    gen = torch.Generator().manual_seed(0)
    save_file({"emb_params": torch.randn(2, 64, generator=gen)}, folder / "shiny.safetensors")
    save_file({"emb_params": torch.randn(2, 1024, generator=gen)}, folder / "sd2thing.safetensors")
    return folder


@pytest.fixture(scope="module")
def engine(folder, tmp_path_factory) -> Engine:
    tmp = tmp_path_factory.mktemp("library")
    library = ModelLibrary(
        LibraryConfig(folders=[str(folder)]),
        home=tmp / "no-home",
        env={},
        cache_path=tmp / "scan-cache.json",
        config_path=tmp / "library.json",
        models_dir=tmp / "no-app-models",
    )
    eng = Engine(device="cpu", precision="full", library=library)
    eng.load_model(folder / "tiny.safetensors")
    return eng


def _req(**kw) -> GenerationRequest:
    base = dict(prompt="a red barn", width=SIZE, height=SIZE, steps=3, seed=5, sampler="euler")
    return GenerationRequest(**{**base, **kw})


class Recorder:
    """Wraps the UNet; keeps the context of every call (uncond half, cond half)."""

    def __init__(self, unet):
        self.unet, self.contexts = unet, []

    def __call__(self, x, t, context):
        self.contexts.append(context.detach().clone())
        return self.unet(x, t, context)


@pytest.fixture
def recorder(engine, monkeypatch) -> Recorder:
    bundle = engine._bundle
    recorder = Recorder(bundle.unet)
    monkeypatch.setattr(bundle, "unet", recorder)
    return recorder


def texts_seen(engine, recorder, candidates, half):
    """Which candidate text each UNet call was conditioned on (cond half 1, uncond half 0)."""
    states = encode_weighted(engine._bundle.text_encoder, candidates)
    seen = []
    for context in recorder.contexts:
        distances = [(context[half] - s[0]).abs().max().item() for s in states]
        best = int(np.argmin(distances))
        assert distances[best] < 1e-5 and sorted(distances)[1] > 1e-3
        seen.append(candidates[best])
    return seen


def test_an_edited_prompt_switches_after_the_stated_step(engine, recorder):
    engine.generate(_req(prompt="[cat:dog:3]", steps=5))
    assert texts_seen(engine, recorder, ["cat", "dog"], 1) == ["cat"] * 3 + ["dog"] * 2


def test_a_fraction_is_a_share_of_the_steps(engine, recorder):
    engine.generate(_req(prompt="a [cat:dog:0.25]", steps=4))
    assert texts_seen(engine, recorder, ["a cat", "a dog"], 1) == ["a cat"] + ["a dog"] * 3


def test_alternation_changes_every_step(engine, recorder):
    engine.generate(_req(prompt="[cat|dog]", steps=5))
    assert texts_seen(engine, recorder, ["cat", "dog"], 1) == ["cat", "dog", "cat", "dog", "cat"]


def test_the_negative_prompt_can_be_scheduled(engine, recorder):
    engine.generate(_req(prompt="cat", negative_prompt="[ugly:blurry:2]", steps=4))
    assert texts_seen(engine, recorder, ["ugly", "blurry"], 0) == ["ugly"] * 2 + ["blurry"] * 2
    assert texts_seen(engine, recorder, ["cat", "ugly"], 1) == ["cat"] * 4


def test_a_second_order_sampler_counts_steps_by_noise_level(engine, recorder):
    """Heun calls the model twice per step; its corrector call at the next step's sigma is
    conditioned as that next step (A1111 would count each call as a step)."""
    engine.generate(_req(prompt="[cat:dog:2]", steps=4, sampler="heun"))
    seen = texts_seen(engine, recorder, ["cat", "dog"], 1)
    # calls: step 1, corrector (step 2), step 2, corrector (step 3), 3, (4), 4 (last: Euler)
    assert seen == ["cat", "cat", "cat", "dog", "dog", "dog", "dog"]


def test_each_distinct_prompt_is_encoded_once(engine, monkeypatch):
    encoder = engine._bundle.text_encoder
    calls = []
    real = encoder.encode
    monkeypatch.setattr(
        encoder, "encode", lambda rows, skip=1: calls.append(rows) or real(rows, skip)
    )
    engine.generate(_req(prompt="[cat|dog] [a:b:0.5]", negative_prompt="[x|y]", steps=4))
    assert len(calls) == 1  # one batch for the whole job
    assert calls[0].shape == (4 + 2, 77)  # cat a, dog a, cat b, dog b; x, y


def _old_conditioned_denoiser(self):
    """The pipeline before prompt syntax: TextEncoder.encode_prompts, one constant context."""
    req, bundle = self.req, self.bundle
    cond, uncond = bundle.text_encoder.encode_prompts(
        req.prompt, req.negative_prompt, clip_skip=req.clip_skip
    )
    base = UNetDenoiser(bundle.unet, self.alphas_cumprod, bundle.family.prediction, bundle.dtype)
    return CFGDenoiser(base, Conditioning(cond), Conditioning(uncond), req.guidance_scale)


@pytest.mark.parametrize(
    "kw",
    [
        dict(prompt="a photograph of an astronaut riding a horse", negative_prompt="blurry"),
        dict(prompt="a red barn: at dusk", sampler="heun", clip_skip=2, steps=2),
        dict(prompt="a red barn", batch_size=2, sampler="dpmpp_2m", steps=2),
    ],
)
def test_a_prompt_without_syntax_gives_the_same_picture_as_before(engine, monkeypatch, kw):
    new = engine.generate(_req(**kw)).images
    monkeypatch.setattr(_Run, "_conditioned_denoiser", _old_conditioned_denoiser)
    old = engine.generate(_req(**kw)).images
    assert all(np.array_equal(a.image, b.image) for a, b in zip(new, old, strict=True))


def test_weight_one_gives_the_picture_of_the_word(engine):
    plain = engine.generate(_req(prompt="a red barn")).images[0].image
    weighted = engine.generate(_req(prompt="a red (barn:1.0)")).images[0].image
    emphasised = engine.generate(_req(prompt="a red (barn:1.5)")).images[0].image
    assert np.array_equal(plain, weighted)
    assert not np.array_equal(plain, emphasised)


def test_embeddings_from_the_library_are_used_and_named_in_the_metadata(engine, folder):
    result = engine.generate(_req(prompt="a shiny barn", negative_prompt="(blurry:1.2)"))
    image = result.images[0]
    digest = hashlib.sha256((folder / "shiny.safetensors").read_bytes()).hexdigest()[:12]
    assert f'TI hashes: "shiny: {digest}"' in image.parameters
    parsed = parse_parameters(image.parameters)
    assert parsed.prompt == "a shiny barn"  # as written, not as encoded
    assert parsed.negative_prompt == "(blurry:1.2)"
    plain = engine.generate(_req(prompt="a red barn")).images[0]
    assert "TI hashes" not in plain.parameters


def test_an_embedding_for_another_model_is_refused_by_name(engine):
    with pytest.raises(EmbeddingError, match="sd2thing .*SD2.*1024"):
        engine.generate(_req(prompt="a sd2thing barn"))


def test_step_at_sigma():
    sigmas = [10.0, 5.0, 2.0, 0.5, 0.0]
    assert [step_at_sigma(sigmas, s) for s in (10.0, 7.0, 5.0, 3.0, 2.0, 1.0, 0.5)] == [
        1,
        1,
        2,
        2,
        3,
        3,
        4,
    ]


def test_schedule_lookup():
    a, b = (Conditioning(torch.full((1, 2, 3), v)) for v in (0.0, 1.0))
    schedule = ConditioningSchedule(((2, a), (4, b)))
    assert [schedule.at_step(s) for s in (1, 2, 3, 4, 9)] == [a, a, b, b, b]
    assert not schedule.is_constant and ConditioningSchedule.constant(a).is_constant
    with pytest.raises(ValueError):
        ConditioningSchedule(((4, a), (2, b)))
