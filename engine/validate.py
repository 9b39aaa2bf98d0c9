"""Checks on a GenerationRequest, done before any work starts, with messages a person can act on."""

from __future__ import annotations

import math

from engine.api import (
    MAX_BATCH_COUNT,
    MAX_BATCH_SIZE,
    MAX_CLIP_SKIP,
    MAX_GUIDANCE,
    MAX_SEED,
    MAX_SIZE,
    MAX_STEPS,
    MIN_SIZE,
    SAMPLERS,
    SCHEDULES,
    VAE_TILING,
    GenerationRequest,
)
from engine.errors import InvalidRequestError
from engine.hires import hires_schedule_steps, validate_hires
from engine.inpaint.checks import check_inpainting
from engine.samplers import sampler_info, schedule_info

# Every 75 tokens add a chunk to the text the UNet attends to: an accidental paste of a whole
# document would make each step slow and huge. 10 000 characters are ~2 500 tokens, 34 chunks.
MAX_PROMPT_CHARS = 10_000


def validate_request(req: GenerationRequest) -> None:
    validate_size(req.width, req.height)
    _check_int("Steps", req.steps, 1, MAX_STEPS)
    _check_int("Batch size", req.batch_size, 1, MAX_BATCH_SIZE)
    _check_int("Batch count", req.batch_count, 1, MAX_BATCH_COUNT)
    if req.seed is not None:
        _check_int("Seed", req.seed, 0, MAX_SEED)
    _check_float("Guidance scale", req.guidance_scale, 0.0, MAX_GUIDANCE)
    _check_float("Strength", req.strength, 0.0, 1.0)
    _check_float("Eta", req.eta, 0.0, 1.0)
    _check_int("Clip skip", req.clip_skip, 1, MAX_CLIP_SKIP)
    if not isinstance(req.sgm_noise, bool):
        raise InvalidRequestError(f"SGM noise must be True or False, not {req.sgm_noise!r}.")
    _check_int("Preview interval", req.preview_every, 0, MAX_STEPS)
    _check_int("Preview decode interval", req.preview_decode_every, 0, MAX_STEPS)
    if req.sampler not in SAMPLERS:  # the catalogue's ids (engine.samplers)
        raise InvalidRequestError(
            f"Unknown sampler {req.sampler!r}: choose one of {', '.join(SAMPLERS)}."
        )
    if req.schedule not in SCHEDULES:
        raise InvalidRequestError(
            f"Unknown schedule {req.schedule!r}: choose one of {', '.join(SCHEDULES)}."
        )
    if req.vae_tiling not in VAE_TILING:
        raise InvalidRequestError(
            f"Unknown VAE tiling {req.vae_tiling!r}: choose one of {', '.join(VAE_TILING)}."
        )
    if not isinstance(req.prompt, str) or not isinstance(req.negative_prompt, str):
        raise InvalidRequestError("The prompt and negative prompt must be text.")
    for name, text in (("prompt", req.prompt), ("negative prompt", req.negative_prompt)):
        if len(text) > MAX_PROMPT_CHARS:
            raise InvalidRequestError(
                f"The {name} is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS}. "
                "Shorten it (only its first few hundred words can matter to the picture)."
            )
    if req.init_image is not None:
        _check_init_image(req.init_image)
    check_inpainting(req)  # mask and inpainting options (engine.inpaint.checks)
    validate_hires(req)  # its values, txt2img only, and the target size
    _check_schedule_steps(req)


def _check_schedule_steps(req: GenerationRequest) -> None:
    """The LCM schedule picks its steps among 50 timesteps: more would repeat some."""
    limit = schedule_info(req.schedule).max_steps
    if limit is None or not sampler_info(req.sampler).uses_schedule:
        return
    name = schedule_info(req.schedule).display_name
    if req.steps > limit:
        raise InvalidRequestError(
            f"The {name} schedule takes at most {limit} steps, not {req.steps}. "
            "Lower the steps, or choose another schedule."
        )
    hires = hires_schedule_steps(req)  # 0 without a hires pass
    if hires > limit:
        raise InvalidRequestError(
            f"The hires pass would need {hires} steps of the {name} schedule, which has at "
            f"most {limit}. Raise the hires denoising strength, lower the hires steps, or "
            "choose another schedule."
        )


def validate_size(width: object, height: object) -> None:
    """Sizes are multiples of 8 (the autoencoder's factor) from 64 to 2048. Other values are
    refused, naming the nearest valid sizes, rather than silently changed. When both sides are
    wrong the message says both: fixing one only to be told about the other wastes a run."""
    problems = [
        problem
        for name, value in (("Width", width), ("Height", height))
        if (problem := side_problem(name, value))
    ]
    if problems:
        raise InvalidRequestError(" ".join(problems))


def side_problem(name: str, value: object) -> str:
    """What is wrong with one side, as a sentence; "" when nothing is."""
    try:
        _check_int(name, value, MIN_SIZE, MAX_SIZE)
    except InvalidRequestError as e:
        return str(e)
    assert isinstance(value, int)
    if value % 8:
        low, high = value // 8 * 8, value // 8 * 8 + 8
        return f"{name} {value} is not a multiple of 8: use {low} or {high}."
    return ""


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be a whole number, not {value!r}.")
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} must be between {low} and {high}, not {value}.")


def _check_float(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRequestError(f"{name} must be a number, not {value!r}.")
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} must be between {low:g} and {high:g}, not {value:g}.")


def _check_init_image(image: object) -> None:
    import numpy as np

    ok = (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] in (3, 4)
        and image.shape[0] >= 1
        and image.shape[1] >= 1
    )
    if not ok:
        raise InvalidRequestError(
            "The init image must be an RGB picture (height x width x 3, 8 bits per channel)."
        )
    from engine.images import MAX_PIXELS

    assert isinstance(image, np.ndarray)
    height, width = image.shape[:2]
    if height * width > MAX_PIXELS:
        raise InvalidRequestError(
            f"The init image is too large: {width}x{height} pixels (the limit is "
            f"{MAX_PIXELS / 1e6:.0f} megapixels). Scale it down first."
        )
