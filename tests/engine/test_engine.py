"""The Engine facade: loading, progress, previews, cancel, seeds, precision fallback, errors."""

import threading

import numpy as np
import pytest
import torch

from engine import (
    Cancelled,
    Engine,
    GenerationRequest,
    InvalidRequestError,
    NoModelError,
)
from engine.errors import MissingComponentError, NotACheckpointError, UnsupportedModelError
from tests.factories import tiny_sd1_state_dict, write_checkpoint

SIZE = 64


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=1), path)
    return path


@pytest.fixture(scope="module")
def engine(ckpt):
    eng = Engine(device="cpu", precision="full")
    eng.load_model(ckpt)
    return eng


def _req(**kw):
    base = dict(prompt="a red barn", width=SIZE, height=SIZE, steps=4, seed=5, sampler="euler")
    return GenerationRequest(**{**base, **kw})


def test_model_info(engine, ckpt):
    info = engine.model_info
    assert (info.name, info.family, info.inpainting) == ("tiny", "sd1", False)
    assert (info.device, info.dtype) == ("cpu", "float32")
    assert info.load_seconds > 0


def test_every_step_reports_progress_and_a_preview(engine):
    events = []
    result = engine.generate(_req(steps=5), on_step=events.append, job_id=9)
    assert [e.step for e in events] == [1, 2, 3, 4, 5]
    assert all(e.total == 5 and e.job_id == 9 for e in events)
    assert all(
        e.preview.shape == (SIZE // 4, SIZE // 4, 3) and e.preview.dtype == np.uint8 for e in events
    )
    elapsed = [e.elapsed for e in events]
    assert elapsed == sorted(elapsed)
    assert result.images[0].image.shape == (SIZE, SIZE, 3)
    assert set(result.timings) >= {"encode", "sample", "decode", "total"}


def test_full_decode_preview_every_n_steps(engine):
    events = []
    engine.generate(_req(steps=4, preview_decode_every=2, preview_every=0), on_step=events.append)
    shapes = [None if e.preview is None else e.preview.shape for e in events]
    assert shapes == [None, (SIZE, SIZE, 3), None, (SIZE, SIZE, 3)]


def test_cancel_stops_within_one_step_and_skips_decode(engine, monkeypatch):
    cancel = threading.Event()
    steps = []
    decodes = []
    bundle = engine._bundle
    real_decode = bundle.vae.decode
    monkeypatch.setattr(bundle.vae, "decode", lambda z: decodes.append(1) or real_decode(z))

    def on_step(event):
        steps.append(event.step)
        if event.step == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        engine.generate(_req(steps=10), on_step=on_step, cancel=cancel)
    assert steps == [1, 2]
    assert decodes == []
    # and the engine is usable afterwards
    assert engine.generate(_req(steps=2)).images


def test_cancel_at_last_step_skips_the_final_decode(engine, monkeypatch):
    cancel = threading.Event()
    decodes = []
    bundle = engine._bundle
    real_decode = bundle.vae.decode
    monkeypatch.setattr(bundle.vae, "decode", lambda z: decodes.append(1) or real_decode(z))
    with pytest.raises(Cancelled):
        engine.generate(
            _req(steps=3), on_step=lambda e: e.step == 3 and cancel.set(), cancel=cancel
        )
    assert decodes == []


def test_random_seed_is_reported_and_reproduces(engine):
    first = engine.generate(_req(seed=None))
    seed = first.images[0].seed
    assert 0 <= seed < 2**32
    assert f"Seed: {seed}" in first.images[0].parameters
    again = engine.generate(_req(seed=seed))
    assert np.array_equal(first.images[0].image, again.images[0].image)


def test_batches_use_consecutive_seeds(engine):
    result = engine.generate(_req(seed=2**32 - 2, batch_size=2, batch_count=2, steps=2))
    assert [img.seed for img in result.images] == [2**32 - 2, 2**32 - 1, 0, 1]


def test_parameters_text(engine):
    img = engine.generate(_req(negative_prompt="fog", guidance_scale=6.5, schedule="normal"))
    img = img.images[0]
    lines = img.parameters.splitlines()
    assert lines[0] == "a red barn"
    assert lines[1] == "Negative prompt: fog"
    assert "Steps: 4, Sampler: Euler, Schedule type: Normal, CFG scale: 6.5, Seed: 5" in lines[2]
    assert "Size: 64x64" in lines[2] and "Model: tiny" in lines[2]
    assert "Model hash: " in lines[2]


def test_img2img_metadata_names_the_convention(engine):
    init = np.full((40, 90, 3), 128, np.uint8)
    img = engine.generate(_req(init_image=init, strength=0.5, steps=6)).images[0]
    assert "Denoising strength: 0.5" in img.parameters
    assert "Img2img steps: 3 of 6" in img.parameters


def test_strength_zero_runs_no_step(engine):
    init = np.full((SIZE, SIZE, 3), 128, np.uint8)
    events = []
    result = engine.generate(_req(init_image=init, strength=0.0), on_step=events.append)
    assert events == []
    assert result.images[0].image.shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"width": 500}, "496 or 504"),
        ({"height": 4096}, "between 64 and 2048"),
        ({"steps": 0}, "Steps"),
        ({"guidance_scale": float("nan")}, "Guidance"),
        ({"strength": 1.5}, "Strength"),
        ({"sampler": "dpm_fast"}, "Unknown sampler"),
        ({"seed": -1}, "Seed"),
        ({"batch_size": 0}, "Batch size"),
    ],
)
def test_bad_requests_are_refused_before_work(engine, kw, message):
    with pytest.raises(InvalidRequestError, match=message):
        engine.generate(_req(**kw))


def test_generate_without_model():
    with pytest.raises(NoModelError, match="Open a Stable Diffusion"):
        Engine(device="cpu").generate(_req())


def test_failed_load_keeps_the_previous_model(engine, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(NotACheckpointError):
        engine.load_model(bad)
    assert engine.model_info.name == "tiny"
    assert engine.generate(_req(steps=1)).images


def test_component_files_are_not_checkpoints(tmp_path):
    sd = tiny_sd1_state_dict(seed=0)
    eng = Engine(device="cpu", precision="full")
    vae_only = {k: v for k, v in sd.items() if k.startswith("first_stage_model.")}
    no_clip = {k: v for k, v in sd.items() if not k.startswith("cond_stage_model.")}
    for name, part, error in (
        ("vae.safetensors", vae_only, NotACheckpointError),
        ("noclip.safetensors", no_clip, (MissingComponentError, NotACheckpointError)),
    ):
        path = tmp_path / name
        write_checkpoint(part, path)
        with pytest.raises(error) as info:
            eng.load_model(path)
        assert len(str(info.value)) > 30


def test_ckpt_and_fp16_files_load_in_float32(tmp_path, engine):
    half = {k: v.half() for k, v in tiny_sd1_state_dict(seed=1).items()}
    path = tmp_path / "half.ckpt"
    write_checkpoint(half, path)
    eng = Engine(device="cpu", precision="full")
    eng.load_model(path)
    assert next(eng._bundle.unet.parameters()).dtype == torch.float32
    ours = eng.generate(_req()).images[0].image
    ref = engine.generate(_req()).images[0].image
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 8


def test_inpainting_checkpoint_loads_and_is_reported(tmp_path):
    path = tmp_path / "inpaint.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=0, inpainting=True), path)
    eng = Engine(device="cpu", precision="full")
    assert eng.load_model(path).inpainting
    with pytest.raises(UnsupportedModelError, match="inpainting"):
        eng.generate(_req())


def test_half_precision_vae_retries_in_float32_on_nan(ckpt, monkeypatch):
    eng = Engine(device="cpu", precision="bfloat16")
    eng.load_model(ckpt)
    bundle = eng._bundle
    assert bundle.vae_dtype == torch.bfloat16
    real_decode = type(bundle.vae).decode

    def overflowing_decode(self, z):
        out = real_decode(self, z)
        # The known SD VAE overflow: half precision decodes to Inf/NaN.
        return out * float("inf") if z.dtype != torch.float32 else out

    monkeypatch.setattr(type(bundle.vae), "decode", overflowing_decode)
    image = eng.generate(_req(steps=2)).images[0].image
    assert bundle.vae_dtype == torch.float32
    assert next(bundle.vae.parameters()).dtype == torch.float32
    assert image.std() > 0


def test_diffusers_folder_gives_the_single_file_image(engine, tmp_path):
    import json

    from tests.engine import reference
    from tests.factories import TINY_UNET, TINY_VAE, tiny_clip_config

    sd = tiny_sd1_state_dict(seed=1)  # the same weights as the `engine` fixture's file
    folder = tmp_path / "tiny-diffusers"
    reference.diffusers_unet(sd, TINY_UNET, TINY_VAE).save_pretrained(folder / "unet")
    reference.diffusers_vae(sd, TINY_UNET, TINY_VAE).save_pretrained(folder / "vae")
    reference.transformers_text_encoder(sd, tiny_clip_config()).save_pretrained(
        folder / "text_encoder"
    )
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    eng = Engine(device="cpu", precision="full")
    info = eng.load_model(folder)
    assert info.name == "tiny-diffusers" and info.family == "sd1"
    ours = eng.generate(_req()).images[0]
    ref = engine.generate(_req()).images[0]
    assert np.abs(ours.image.astype(int) - ref.image.astype(int)).max() <= 1
    assert "Model hash" not in ours.parameters


def test_nan_from_the_unet_is_reported_not_saved_black(ckpt, monkeypatch):
    from engine.errors import NumericalError

    eng = Engine(device="cpu", precision="full")
    eng.load_model(ckpt)
    unet = eng._bundle.unet
    real_forward = type(unet).forward
    monkeypatch.setattr(
        type(unet), "forward", lambda self, *a, **k: real_forward(self, *a, **k) * float("nan")
    )
    with pytest.raises(NumericalError, match="precision full"):
        eng.generate(_req(steps=2))
    monkeypatch.undo()
    assert eng.generate(_req(steps=1)).images  # still usable
