"""Request limits (refused before any work) and out-of-memory (reported with a size that fits,
memory freed, engine usable afterwards)."""

from __future__ import annotations

import gc
import re
import weakref

import numpy as np
import pytest
import torch

from engine import Engine, GenerationRequest, InvalidRequestError
from engine.api import MAX_BATCH_COUNT, MAX_BATCH_SIZE, MAX_SEED, MAX_SIZE, MAX_STEPS, MIN_SIZE
from engine.errors import OutOfMemoryError
from engine.validate import MAX_PROMPT_CHARS, validate_request
from tests.factories import tiny_sd1_state_dict, write_checkpoint


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=4), path)
    eng = Engine(device="cpu", precision="full")
    eng.load_model(path)
    return eng


def _req(**kw) -> GenerationRequest:
    base = dict(prompt="a red barn", width=64, height=64, steps=2, seed=5, sampler="euler")
    return GenerationRequest(**{**base, **kw})


@pytest.fixture
def work_spy(engine, monkeypatch) -> list[str]:
    """Records every piece of real work: hashing, text encoding, UNet, VAE."""
    calls: list[str] = []
    bundle = engine._bundle
    for name, obj, attr in (
        ("unet", type(bundle.unet), "forward"),
        ("encode", type(bundle.text_encoder), "encode"),
        ("vae-decode", type(bundle.vae), "decode"),
        ("vae-encode", type(bundle.vae), "encode"),
    ):
        real = getattr(obj, attr)
        monkeypatch.setattr(obj, attr, _recording(real, calls, name))
    import engine.session as session

    real_hash = session.model_hash
    monkeypatch.setattr(session, "model_hash", _recording(real_hash, calls, "hash"))
    engine._label = session.ModelLabel(engine._label.name, None)  # hash again on next use
    return calls


def _recording(real, calls, name):
    def wrapper(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    return wrapper


# --- limits -----------------------------------------------------------------------------------

AT_LIMITS = [
    dict(width=MIN_SIZE, height=MIN_SIZE),
    dict(width=MIN_SIZE, height=72),
    dict(steps=1),
    dict(guidance_scale=0.0),
    dict(guidance_scale=50.0),
    dict(strength=0.0, init_image=np.zeros((8, 8, 3), np.uint8)),
    dict(strength=1.0, init_image=np.zeros((8, 8, 3), np.uint8)),
    dict(seed=0),
    dict(seed=MAX_SEED),
    dict(sampler="ddim", eta=1.0),
    dict(clip_skip=2),
    dict(batch_size=2),
    dict(prompt="x" * MAX_PROMPT_CHARS),
]


@pytest.mark.parametrize("kw", AT_LIMITS, ids=lambda kw: ",".join(kw))
def test_values_at_the_limits_work(engine, kw):
    result = engine.generate(_req(**kw))
    req = result.request
    assert len(result.images) == req.batch_size
    assert result.images[0].image.shape == (req.height, req.width, 3)


def test_largest_values_pass_validation(engine, work_spy, monkeypatch):
    """MAX_SIZE, MAX_STEPS, MAX_BATCH_* are too slow to run here: check that validation lets
    them through by stopping the job at its first piece of work."""
    import engine.session as session

    class Reached(Exception):
        pass

    def stop(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(session, "model_hash", stop)
    engine._label = session.ModelLabel(engine._label.name, None)
    for kw in (
        dict(width=MAX_SIZE, height=MAX_SIZE),
        dict(steps=MAX_STEPS),
        dict(batch_size=MAX_BATCH_SIZE, batch_count=MAX_BATCH_COUNT),
        dict(clip_skip=12, eta=1.0, strength=1.0),
    ):
        with pytest.raises(Reached):
            engine.generate(_req(**kw))


BEYOND = [
    (dict(width=MIN_SIZE - 8), "Width must be between 64 and 2048"),
    (dict(width=MAX_SIZE + 8), "Width must be between"),
    (dict(height=0), "Height must be between"),
    (dict(height=-64), "Height must be between"),
    (dict(width=65), "not a multiple of 8: use 64 or 72"),
    (dict(height=2047), "use 2040 or 2048"),
    (dict(width=64.0), "whole number"),
    (dict(width=True), "whole number"),
    (dict(steps=0), "Steps must be between 1 and 150"),
    (dict(steps=MAX_STEPS + 1), "Steps must be between"),
    (dict(steps=2.5), "whole number"),
    (dict(guidance_scale=-0.1), "Guidance scale must be between 0 and 50"),
    (dict(guidance_scale=50.5), "Guidance scale"),
    (dict(guidance_scale=float("inf")), "must be a number"),
    (dict(guidance_scale="7"), "must be a number"),
    (dict(strength=-0.01), "Strength must be between 0 and 1"),
    (dict(strength=1.01), "Strength"),
    (dict(strength=float("nan")), "Strength must be a number"),
    (dict(batch_size=0), "Batch size must be between 1 and 16"),
    (dict(batch_size=MAX_BATCH_SIZE + 1), "Batch size"),
    (dict(batch_count=0), "Batch count must be between 1 and 1000"),
    (dict(batch_count=MAX_BATCH_COUNT + 1), "Batch count"),
    (dict(seed=-1), "Seed must be between 0 and 4294967295"),
    (dict(seed=MAX_SEED + 1), "Seed must be between"),
    (dict(seed=2**70), "Seed"),
    (dict(seed=1.5), "whole number"),
    (dict(eta=-0.5), "Eta must be between 0 and 1"),
    (dict(eta=1.5), "Eta"),
    (dict(clip_skip=0), "Clip skip must be between 1 and 12"),
    (dict(clip_skip=13), "Clip skip"),
    (dict(preview_every=-1), "Preview interval"),
    (dict(sampler="dpm_fast"), "Unknown sampler"),
    (dict(schedule="exponential"), "Unknown schedule"),
    (dict(prompt=None), "must be text"),
    (dict(prompt="x" * (MAX_PROMPT_CHARS + 1)), "limit is 10000"),
    (dict(negative_prompt="y" * (MAX_PROMPT_CHARS + 1)), "negative prompt is"),
    (dict(init_image=np.zeros((8, 8), np.uint8)), "RGB picture"),
    (dict(init_image=np.zeros((8, 8, 3), np.uint16)), "RGB picture"),
    (dict(init_image=np.zeros((0, 8, 3), np.uint8)), "RGB picture"),
    (dict(init_image=[[0, 0, 0]]), "RGB picture"),
    # 10000 x 10000 without allocating 300 MB: a broadcast view has the shape and no memory.
    (dict(init_image=np.broadcast_to(np.uint8(9), (10000, 10000, 3))), "too large"),
]


@pytest.mark.parametrize(
    "width, height, message",
    [
        (
            65,
            0,
            "Width 65 is not a multiple of 8: use 64 or 72. "
            "Height must be between 64 and 2048, not 0.",
        ),
        (
            4096,
            100,
            "Width must be between 64 and 2048, not 4096. "
            "Height 100 is not a multiple of 8: use 96 or 104.",
        ),
        (
            70,
            100,
            "Width 70 is not a multiple of 8: use 64 or 72. "
            "Height 100 is not a multiple of 8: use 96 or 104.",
        ),
        # One wrong side: its message alone.
        (512, 100, "Height 100 is not a multiple of 8: use 96 or 104."),
    ],
)
def test_a_size_error_names_every_wrong_side(width, height, message):
    with pytest.raises(InvalidRequestError) as caught:
        validate_request(_req(width=width, height=height))
    assert str(caught.value) == message


@pytest.mark.parametrize("kw, message", BEYOND, ids=[",".join(kw) for kw, _ in BEYOND])
def test_values_beyond_the_limits_are_refused_before_any_work(engine, work_spy, kw, message):
    with pytest.raises(InvalidRequestError, match=re.escape(message)):
        engine.generate(_req(**kw))
    assert work_spy == []  # no hashing, no text encoding, no UNet or VAE call


def test_spy_sees_work(engine, work_spy):
    """The spy above is meaningful: a valid request does every piece of work it watches."""
    engine.generate(_req(init_image=np.zeros((8, 8, 3), np.uint8)))
    assert {"hash", "encode", "unet", "vae-decode", "vae-encode"} <= set(work_spy)


def test_rgba_init_image_is_flattened_not_a_crash(engine):
    rgba = np.zeros((20, 30, 4), np.uint8)  # fully transparent: white once composited
    result = engine.generate(_req(init_image=rgba, strength=0.0))
    white = engine.generate(_req(init_image=np.full((20, 30, 3), 255, np.uint8), strength=0.0))
    assert np.array_equal(result.images[0].image, white.images[0].image)


# --- out of memory ----------------------------------------------------------------------------

OOM_ERRORS = {
    "torch": lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    "runtime": lambda: RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"),
    "cpu-alloc": lambda: RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you "
        "tried to allocate 4294967296 bytes. Error code 12 (Cannot allocate memory)"
    ),
    "memory": lambda: MemoryError(),
}


class _Budget:
    """A fake device memory: a call over ``pixels`` (batch x height x width) runs out."""

    def __init__(self, pixels: int, error: str) -> None:
        self.pixels, self.error, self.calls = pixels, error, 0
        self.held: list[weakref.ref] = []

    def check(self, x: torch.Tensor, images_per_row: int = 1) -> None:
        self.calls += 1
        # What a real forward would have allocated before failing, kept alive only by the
        # failing call's frames: it must be freed once the error is reported.
        scratch = torch.empty(256, 1024)
        self.held.append(weakref.ref(scratch))
        if x.shape[0] * x.shape[-1] * x.shape[-2] // images_per_row > self.pixels:
            raise OOM_ERRORS[self.error]()


@pytest.fixture
def budget_unet(engine, monkeypatch):
    def install(pixels: int, error: str) -> _Budget:
        budget = _Budget(pixels, error)
        unet_type = type(engine._bundle.unet)
        real = unet_type.forward

        def forward(self, x, *args, **kwargs):  # x: (2B, 4, h, w), cond and uncond rows
            budget.check(x, images_per_row=2)
            return real(self, x, *args, **kwargs)

        monkeypatch.setattr(unet_type, "forward", forward)
        return budget

    return install


def _suggestion(message: str, req: GenerationRequest) -> GenerationRequest:
    """The request a person would try next, following the message's advice."""
    if m := re.search(r"Try batch size (\d+)", message):
        return GenerationRequest(**{**_fields(req), "batch_size": int(m.group(1))})
    m = re.search(r"Try (\d+)x(\d+)", message)
    assert m, message
    return GenerationRequest(**{**_fields(req), "width": int(m[1]), "height": int(m[2])})


def _fields(req: GenerationRequest) -> dict:
    from dataclasses import fields

    return {f.name: getattr(req, f.name) for f in fields(req)}


@pytest.mark.parametrize(
    "start, budget, error",
    [
        (dict(width=128, height=128), 24 * 24, "torch"),  # latents 32x32 do not fit, 22x22 do
        (dict(width=128, height=64, batch_size=4), 32 * 16 * 2, "cpu-alloc"),
        (dict(width=128, height=64, batch_size=3), 16 * 16, "runtime"),
    ],
    ids=["size", "batch", "batch-then-size"],
)
def test_oom_in_sampling_suggests_what_fits(engine, budget_unet, start, budget, error):
    """Follow the advice until the job fits; it must get there, and the engine stays usable."""
    fake = budget_unet(budget, error)
    req = _req(**start, steps=1)
    errors: list[OutOfMemoryError] = []  # kept, as the app keeps an error to show it
    for _ in range(6):
        try:
            result = engine.generate(req)
            break
        except OutOfMemoryError as oom:
            errors.append(oom)
            smaller = _suggestion(str(oom), req)
            fewer_pixels = smaller.width * smaller.height < req.width * req.height
            assert smaller.batch_size < req.batch_size or fewer_pixels, str(oom)
            req = smaller
    else:
        pytest.fail("the advice never led to a job that fits")
    assert errors and len(result.images) == req.batch_size
    assert all(e.__cause__ is None and e.__context__ is None for e in errors)
    gc.collect()
    # The failed calls' tensors died even though their errors are still held.
    assert len(fake.held) > len(errors) and all(ref() is None for ref in fake.held)


def test_oom_at_the_smallest_size_does_not_suggest_the_same_size(engine, budget_unet):
    budget_unet(0, "torch")
    with pytest.raises(OutOfMemoryError) as info:
        engine.generate(_req())
    assert "64x64" in str(info.value) and "Try 64x64" not in str(info.value)
    assert "smallest" in str(info.value) and "Close other programs" in str(info.value)


@pytest.mark.parametrize("error", list(OOM_ERRORS))
def test_oom_in_decoding_is_reported_and_the_next_job_runs(engine, monkeypatch, error):
    vae_type = type(engine._bundle.vae)
    real = vae_type.decode
    failures = [1]  # fail once, like a fragmented GPU that recovers after freeing

    def decode(self, z):
        if failures:
            failures.pop()
            raise OOM_ERRORS[error]()
        return real(self, z)

    monkeypatch.setattr(vae_type, "decode", decode)
    with pytest.raises(OutOfMemoryError, match=r"Out of memory at 128x64\. Try 88x64"):
        # Tiling off: under "auto" an untiled decode that runs out is retried in tiles.
        engine.generate(_req(width=128, height=64, vae_tiling="off"))
    assert engine.generate(_req(width=128, height=64)).images  # same engine, next job


def test_other_runtime_errors_are_not_called_oom(engine, monkeypatch):
    unet_type = type(engine._bundle.unet)

    def forward(self, *args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(unet_type, "forward", forward)
    with pytest.raises(RuntimeError, match="shapes"):
        engine.generate(_req())
