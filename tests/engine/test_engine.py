"""The Engine facade: loading, progress, previews, cancel, seeds, precision fallback, errors."""

import threading

import numpy as np
import pytest
import torch

from engine import (
    Cancelled,
    Engine,
    GenerationRequest,
    ImageEvent,
    InvalidRequestError,
    NoModelError,
)
from engine import session as engine_session
from engine.errors import MissingComponentError, NotACheckpointError
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


def test_on_image_delivers_each_image_as_soon_as_its_batch_is_decoded(engine):
    log = []
    result = engine.generate(
        _req(seed=10, batch_size=2, batch_count=2, steps=2),
        on_step=lambda e: log.append(("step", e.batch_index, e.step)),
        on_image=lambda e: log.append(("image", e)),
        job_id=3,
    )
    order = [entry if entry[0] == "step" else ("image", entry[1].index) for entry in log]
    # Batch 0's images come out before batch 1 starts sampling, not all at the end.
    assert order == [
        ("step", 0, 1),
        ("step", 0, 2),
        ("image", 0),
        ("image", 1),
        ("step", 1, 1),
        ("step", 1, 2),
        ("image", 2),
        ("image", 3),
    ]
    events = [entry[1] for entry in log if entry[0] == "image"]
    assert all(isinstance(e, ImageEvent) for e in events)
    assert [(e.job_id, e.index, e.total, e.image.seed) for e in events] == [
        (3, i, 4, 10 + i) for i in range(4)
    ]
    # The result repeats the very same images, in the same order.
    assert len(result.images) == 4
    assert all(e.image is img for e, img in zip(events, result.images, strict=True))


def test_cancel_in_a_later_batch_keeps_the_images_already_delivered(engine):
    cancel = threading.Event()
    steps = []
    events = []

    def on_step(event):
        steps.append((event.batch_index, event.step))
        if event.batch_index == 2:  # the first step of the third batch
            cancel.set()

    with pytest.raises(Cancelled):
        engine.generate(
            _req(seed=20, batch_size=2, batch_count=4, steps=3),
            on_step=on_step,
            on_image=events.append,
            cancel=cancel,
            job_id=7,
        )
    assert steps[-1] == (2, 1)  # stopped within one step of the cancel
    assert [(e.job_id, e.index, e.total, e.image.seed) for e in events] == [
        (7, i, 8, 20 + i) for i in range(4)
    ]
    # They are the finished pictures: the same pixels as an uncancelled two-batch run.
    whole = engine.generate(_req(seed=20, batch_size=2, batch_count=2, steps=3)).images
    for event, image in zip(events, whole, strict=True):
        assert f"Seed: {image.seed}" in event.image.parameters
        assert np.array_equal(event.image.image, image.image)


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


@pytest.fixture
def validations(monkeypatch):
    """Every request engine.validate.validate_request is asked to check, through the Engine."""
    calls = []
    real = engine_session.validate_request

    def counting(request):
        calls.append(request)
        return real(request)

    monkeypatch.setattr(engine_session, "validate_request", counting)
    return calls


def test_validate_then_generate_checks_the_request_once(engine, validations):
    request = _req(steps=1)
    engine.validate(request)
    assert len(validations) == 1 and validations[0] is request
    engine.generate(request)
    engine.generate(request)
    assert len(validations) == 1
    # An equal request is another object (it could carry another init image): checked anew.
    twin = _req(steps=1)
    assert twin == request and twin is not request
    engine.generate(twin)
    assert len(validations) == 2 and validations[1] is twin


def test_a_refused_request_is_refused_again(engine, validations):
    bad = _req(steps=0)
    with pytest.raises(InvalidRequestError, match="Steps"):
        engine.validate(bad)
    with pytest.raises(InvalidRequestError, match="Steps"):
        engine.generate(bad)
    assert validations == [bad, bad]


def test_validate_needs_no_model():
    with pytest.raises(InvalidRequestError, match="Batch size"):
        Engine(device="cpu").validate(_req(batch_size=0))


def test_generate_without_model():
    with pytest.raises(NoModelError, match="Open a Stable Diffusion"):
        Engine(device="cpu").generate(_req())


def test_only_a_model_that_was_loaded_is_collected(ckpt, monkeypatch):
    # A full collection costs ~0.13 s once torch is imported: the first load skips it.
    import engine.session as session

    collections = []
    monkeypatch.setattr(session.gc, "collect", lambda: collections.append(1))
    eng = Engine(device="cpu", precision="full")
    eng.load_model(ckpt)
    assert collections == []
    eng.load_model(ckpt)  # replaces a model: the old one's memory goes back
    assert collections == [1]
    eng.unload()
    eng.unload()
    assert collections == [1, 1]


def test_failed_load_keeps_the_previous_model(engine, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(NotACheckpointError):
        engine.load_model(bad)
    assert engine.model_info.name == "tiny"
    assert engine.generate(_req(steps=1)).images


_UNET, _VAE, _CLIP = "model.diffusion_model.", "first_stage_model.", "cond_stage_model."

# A part of a checkpoint saved alone, the exact error class, and what the message must say.
# Not a full model at all (detection): NotACheckpointError naming the part that is there.
# A full model with a part missing (splitting): MissingComponentError naming what is absent.
COMPONENT_FILES = {
    "vae-only": (
        lambda sd: {k: v for k, v in sd.items() if k.startswith(_VAE)},
        NotACheckpointError,
        ["holds only a VAE (the image decoder), not a whole model", "a separate VAE can replace"],
    ),
    "text-encoder-only": (
        lambda sd: {k: v for k, v in sd.items() if k.startswith(_CLIP)},
        NotACheckpointError,
        ["holds only a text encoder, not a whole model"],
    ),
    "vae-and-text-encoder": (
        lambda sd: {k: v for k, v in sd.items() if not k.startswith(_UNET)},
        NotACheckpointError,
        ["holds a VAE and a text encoder but no UNet"],
    ),
    "bare-unet": (
        lambda sd: {k.removeprefix(_UNET): v for k, v in sd.items() if k.startswith(_UNET)},
        NotACheckpointError,
        ["holds only a UNet, without its VAE and text encoder", "the whole diffusers folder"],
    ),
    "no-text-encoder": (
        lambda sd: {k: v for k, v in sd.items() if not k.startswith(_CLIP)},
        MissingComponentError,
        ["This checkpoint lacks the text encoder."],
    ),
    "no-vae": (
        lambda sd: {k: v for k, v in sd.items() if not k.startswith(_VAE)},
        MissingComponentError,
        ["This checkpoint lacks the VAE."],
    ),
    "unet-only": (
        lambda sd: {k: v for k, v in sd.items() if k.startswith(_UNET)},
        MissingComponentError,
        ["This checkpoint lacks the VAE and the text encoder."],
    ),
}


@pytest.mark.parametrize("kind", list(COMPONENT_FILES))
def test_component_files_are_not_checkpoints(tmp_path, kind):
    select, error, phrases = COMPONENT_FILES[kind]
    path = tmp_path / f"{kind}.safetensors"
    write_checkpoint(select(tiny_sd1_state_dict(seed=0)), path)
    eng = Engine(device="cpu", precision="full")
    with pytest.raises(error) as info:
        eng.load_model(path)
    assert type(info.value) is error  # not merely a related CheckpointError
    message = str(info.value)
    for phrase in phrases:
        assert phrase in message
    # and it says what to load instead
    assert "Stable Diffusion 1.x checkpoint" in message and "v1-5-pruned-emaonly" in message
    assert eng.model_info is None


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
    # Generates since issue 12 (without a mask: A1111's txt2img conditioning).
    assert eng.generate(_req()).images[0].image.ndim == 3


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
