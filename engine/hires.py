"""Hires fix, as A1111's "Hires. fix": the plan, the limits and the metadata (no torch here;
``engine.hires_pass`` does the work).

A txt2img request with ``hires_scale`` > 1 first makes its picture at (width, height), then
upscales it (the latents, or the decoded pixels with Lanczos) to the target size and runs an
img2img pass there with its own steps and denoising strength. The rules follow A1111's
``StableDiffusionProcessingTxt2Img`` (modules/processing.py) and ``setup_img2img_steps``
(modules/sd_samplers_common.py):

- Target: ``int(side * hires_scale)`` per side, rounded down to a multiple of 8. A1111's latent
  upscaler makes ``target // 8`` latent cells, so its pictures come out that size too.
- Steps: the hires pass runs exactly ``hires_steps`` steps (0: as many as ``steps``), the last
  ones of a schedule of ``int(hires_steps / min(hires_denoise, 0.999))`` steps (at most the
  model's 1000 timesteps). ``hires_denoise`` 0 runs none: the picture is the upscaled base.
- Metadata: "Size" stays the base size; "Denoising strength", "Hires upscale", "Hires steps"
  (only when not 0) and "Hires upscaler" ("Latent", "Lanczos") are added, as A1111 writes them.
- txt2img only, as in A1111: an img2img request with ``hires_scale`` > 1 is refused.
"""

from __future__ import annotations

import math

from engine.api import HIRES_UPSCALERS, MAX_HIRES_SCALE, MAX_SIZE, MAX_STEPS, GenerationRequest
from engine.errors import InvalidRequestError

# A1111's settings keys and its names for our two upscalers (its "Latent" is bilinear latent
# interpolation without antialiasing; "Lanczos" resizes the decoded picture).
UPSCALE_KEY, STEPS_KEY, UPSCALER_KEY = "Hires upscale", "Hires steps", "Hires upscaler"
RESIZE_KEY = "Hires resize"  # A1111's alternative to an upscale factor: a target size "WxH"
UPSCALER_NAMES = {"latent": "Latent", "lanczos": "Lanczos"}
MAX_SCHEDULE_STEPS = 1000  # the model's training timesteps: DDIM's spacing needs no more


def hires_applies(req: GenerationRequest) -> bool:
    """Whether ``req`` has a hires pass (validation refuses one for img2img)."""
    return req.hires_scale > 1.0 and req.init_image is None


def hires_target_size(req: GenerationRequest) -> tuple[int, int]:
    """(width, height) of the hires picture."""
    return target_size(req.width, req.height, req.hires_scale)


def target_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """Each side scaled, rounded down to a multiple of 8 (the window shows it too)."""
    return int(width * scale) // 8 * 8, int(height * scale) // 8 * 8


def hires_steps_run(req: GenerationRequest) -> int:
    """Sampler steps of the hires pass: none without one, or at denoising strength 0."""
    if not hires_applies(req) or req.hires_denoise <= 0:
        return 0
    return req.hires_steps or req.steps


def hires_schedule_steps(req: GenerationRequest) -> int:
    """The length of the schedule whose last ``hires_steps_run`` steps the pass runs."""
    steps = hires_steps_run(req)
    whole = int(steps / min(req.hires_denoise, 0.999)) if steps else 0
    return max(steps, min(whole, MAX_SCHEDULE_STEPS))


def validate_hires(req: GenerationRequest) -> None:
    """The four hires values, and what they make: a txt2img picture within the size limits."""
    _check_number("Hires upscale", req.hires_scale, 1.0, MAX_HIRES_SCALE)
    if isinstance(req.hires_steps, bool) or not isinstance(req.hires_steps, int):
        raise InvalidRequestError(f"Hires steps must be a whole number, not {req.hires_steps!r}.")
    if not 0 <= req.hires_steps <= MAX_STEPS:
        raise InvalidRequestError(
            f"Hires steps must be between 0 (as many as Steps) and {MAX_STEPS}, "
            f"not {req.hires_steps}."
        )
    _check_number("Hires denoising strength", req.hires_denoise, 0.0, 1.0)
    if req.hires_upscaler not in HIRES_UPSCALERS:
        raise InvalidRequestError(
            f"Unknown hires upscaler {req.hires_upscaler!r}: choose one of "
            f"{', '.join(HIRES_UPSCALERS)}."
        )
    if req.hires_scale <= 1.0:
        return
    if req.init_image is not None:
        raise InvalidRequestError(
            "Hires fix is for text to image only: set the hires upscale to 1 (off) for image to "
            "image, or make the picture at the larger size directly."
        )
    _check_target_size(req)


def _check_target_size(req: GenerationRequest) -> None:
    width, height = hires_target_size(req)
    if max(width, height) <= MAX_SIZE:
        return
    # The largest factor that keeps the longer side within the limit, rounded down to 0.01.
    most = math.floor(MAX_SIZE / max(req.width, req.height) * 100) / 100
    raise InvalidRequestError(
        f"Hires fix would make a {width}x{height} picture; sides go up to {MAX_SIZE} pixels. "
        f"Use a hires upscale of at most {most:g}, or a smaller size."
    )


def _check_number(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRequestError(f"{name} must be a number, not {value!r}.")
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} must be between {low:g} and {high:g}, not {value:g}.")


def hires_settings(req: GenerationRequest) -> dict[str, object]:
    """The metadata of the hires pass, as A1111 writes it (None: not written)."""
    return {
        "Denoising strength": req.hires_denoise,
        UPSCALE_KEY: req.hires_scale,
        STEPS_KEY: req.hires_steps or None,  # A1111 leaves it out when 0 (= Steps)
        UPSCALER_KEY: UPSCALER_NAMES[req.hires_upscaler],
    }


def upscaler_from_display(name: str) -> str | None:
    """ "Latent" -> "latent", "Lanczos" -> "lanczos"; A1111's other upscalers -> None."""
    by_name = {theirs.casefold(): ours for ours, theirs in UPSCALER_NAMES.items()}
    return by_name.get(name.strip().casefold())
