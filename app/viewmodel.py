"""View-models: the window's state, kept out of the widgets.

Each value has a ``<name>_changed`` signal that fires only when the value really changes, so
widgets can bind both ways without feedback loops.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from app.signals import emit
from engine import SAMPLERS, SCHEDULES, GenerationRequest
from engine.api import (
    HIRES_UPSCALERS,
    INPAINT_AREAS,
    MASKED_CONTENT,
    MAX_BATCH_COUNT,
    MAX_BATCH_SIZE,
    MAX_CLIP_SKIP,
    MAX_HIRES_SCALE,
    MAX_SEED,
    MAX_SIZE,
    MAX_STEPS,
    MIN_SIZE,
)
from engine.inpaint.settings import MAX_MASK_BLUR, MAX_PADDING

TXT2IMG, SKETCH, INPAINT = "txt2img", "sketch", "inpaint"
MODES = (TXT2IMG, SKETCH, INPAINT)
RANDOM_SEED = -1  # shown as "Random" in the seed box


def observable(name: str, kind: type) -> property:
    attr = "_" + name

    def get(self: QObject) -> Any:
        return getattr(self, attr)

    def set_(self: QObject, value: Any) -> None:
        value = kind(value)
        if getattr(self, attr) == value:
            return
        setattr(self, attr, value)
        emit(getattr(self, name + "_changed"), value)

    return property(get, set_)


class GenerationParams(QObject):
    """The controls' values, and the request they make."""

    FIELDS: dict[str, tuple[type, Any]] = {
        "prompt": (str, ""),
        "negative_prompt": (str, ""),
        "guidance_scale": (float, 7.0),
        "steps": (int, 25),
        "seed": (int, RANDOM_SEED),
        "strength": (float, 0.75),
        "width": (int, 512),
        "height": (int, 512),
        "sampler": (str, "dpmpp_2m"),
        "schedule": (str, "karras"),
        "batch_count": (int, 1),
        "batch_size": (int, 1),
        "mode": (str, TXT2IMG),
        # Start txt2img from noise * sqrt(1 + sigma_max^2) as diffusers and ComfyUI; off is
        # A1111's default. Restored from pictures so theirs reproduce here.
        "sgm_noise": (bool, True),
        "clip_skip": (int, 1),  # 1 = the text encoder's last layer; 2 = penultimate, as A1111
        # Inpaint mode (GenerationRequest's fields and A1111's defaults).
        "mask_blur": (int, 4),
        "masked_content": (str, "original"),
        "inpaint_area": (str, "whole"),
        "inpaint_padding": (int, 32),
        # Hires fix (txt2img): on/off apart from the factor, so turning it off keeps the factor.
        "hires_fix": (bool, False),
        "hires_scale": (float, 2.0),
        "hires_steps": (int, 0),  # 0: as many as steps
        "hires_denoise": (float, 0.7),
        "hires_upscaler": (str, "latent"),
    }
    # What the controls can show and the engine accepts; other values are ignored.
    LIMITS: dict[str, tuple[float, float]] = {
        "steps": (1, MAX_STEPS),
        "seed": (RANDOM_SEED, MAX_SEED),
        "strength": (0.0, 1.0),
        "width": (MIN_SIZE, MAX_SIZE),
        "height": (MIN_SIZE, MAX_SIZE),
        "batch_count": (1, MAX_BATCH_COUNT),
        "batch_size": (1, MAX_BATCH_SIZE),
        "clip_skip": (1, MAX_CLIP_SKIP),
        "mask_blur": (0, MAX_MASK_BLUR),
        "inpaint_padding": (0, MAX_PADDING),
        "hires_scale": (1.0, MAX_HIRES_SCALE),
        "hires_steps": (0, MAX_STEPS),
        "hires_denoise": (0.0, 1.0),
    }
    CHOICES: dict[str, tuple[str, ...]] = {
        "mode": MODES,
        "masked_content": MASKED_CONTENT,
        "inpaint_area": INPAINT_AREAS,
        "hires_upscaler": HIRES_UPSCALERS,
    }

    prompt_changed = Signal(str)
    negative_prompt_changed = Signal(str)
    guidance_scale_changed = Signal(float)
    steps_changed = Signal(int)
    seed_changed = Signal(object)  # int up to 2**32 - 1: too big for a C int
    strength_changed = Signal(float)
    width_changed = Signal(int)
    height_changed = Signal(int)
    sampler_changed = Signal(str)
    schedule_changed = Signal(str)
    batch_count_changed = Signal(int)
    batch_size_changed = Signal(int)
    mode_changed = Signal(str)
    sgm_noise_changed = Signal(bool)
    clip_skip_changed = Signal(int)
    mask_blur_changed = Signal(int)
    masked_content_changed = Signal(str)
    inpaint_area_changed = Signal(str)
    inpaint_padding_changed = Signal(int)
    hires_fix_changed = Signal(bool)
    hires_scale_changed = Signal(float)
    hires_steps_changed = Signal(int)
    hires_denoise_changed = Signal(float)
    hires_upscaler_changed = Signal(str)

    prompt = observable("prompt", str)
    negative_prompt = observable("negative_prompt", str)
    guidance_scale = observable("guidance_scale", float)
    steps = observable("steps", int)
    seed = observable("seed", int)
    strength = observable("strength", float)
    width = observable("width", int)
    height = observable("height", int)
    sampler = observable("sampler", str)
    schedule = observable("schedule", str)
    batch_count = observable("batch_count", int)
    batch_size = observable("batch_size", int)
    mode = observable("mode", str)
    sgm_noise = observable("sgm_noise", bool)
    clip_skip = observable("clip_skip", int)
    mask_blur = observable("mask_blur", int)
    masked_content = observable("masked_content", str)
    inpaint_area = observable("inpaint_area", str)
    inpaint_padding = observable("inpaint_padding", int)
    hires_fix = observable("hires_fix", bool)
    hires_scale = observable("hires_scale", float)
    hires_steps = observable("hires_steps", int)
    hires_denoise = observable("hires_denoise", float)
    hires_upscaler = observable("hires_upscaler", str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        for name, (_, default) in self.FIELDS.items():
            setattr(self, "_" + name, default)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def update(self, values: dict[str, Any]) -> None:
        """Set the known, valid values; ignore the rest (old or hand-edited settings)."""
        for name, value in values.items():
            if name not in self.FIELDS:
                continue
            try:
                converted = self.FIELDS[name][0](value)
            except (TypeError, ValueError, OverflowError):  # int(inf) overflows
                continue
            low, high = self.LIMITS.get(name, (converted, converted))
            if not low <= converted <= high:  # also keeps ints in range of the C int signals
                continue
            if name == "sampler" and value not in SAMPLERS:
                continue
            if name == "schedule" and value not in SCHEDULES:
                continue
            if name in self.CHOICES and value not in self.CHOICES[name]:
                continue
            if name in ("sgm_noise", "hires_fix") and not isinstance(value, bool):
                continue  # bool("false") is True: take only real booleans
            setattr(self, name, value)

    def apply_request(self, request: GenerationRequest, seed: int | None = None) -> None:
        """Restore the controls from a request, e.g. one read back from a gallery PNG."""
        self.update(
            {
                "prompt": request.prompt,
                "negative_prompt": request.negative_prompt,
                "guidance_scale": request.guidance_scale,
                "steps": request.steps,
                "seed": seed if seed is not None else request.seed,
                "width": request.width,
                "height": request.height,
                "sampler": request.sampler,
                "schedule": request.schedule,
                "strength": request.strength,
                "sgm_noise": request.sgm_noise,
                "clip_skip": request.clip_skip,
                "mask_blur": request.mask_blur,
                "masked_content": request.masked_content,
                "inpaint_area": request.inpaint_area,
                "inpaint_padding": request.inpaint_padding,
                "hires_fix": request.hires_scale > 1,
                **hires_fields(request),
            }
        )

    def make_request(self, init_image: Any = None, mask: Any = None) -> GenerationRequest:
        """The request of the current mode: ``init_image`` is used in Sketch to image and
        Inpaint, ``mask`` ((H, W) uint8, 255 = repaint) in Inpaint only."""
        sketch = self.mode in (SKETCH, INPAINT)
        inpaint = self.mode == INPAINT
        return GenerationRequest(
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            width=self.width,
            height=self.height,
            steps=self.steps,
            guidance_scale=self.guidance_scale,
            seed=None if self.seed == RANDOM_SEED else self.seed,
            sampler=self.sampler,
            schedule=self.schedule,
            batch_size=self.batch_size,
            batch_count=self.batch_count,
            init_image=init_image if sketch else None,
            strength=self.strength,
            sgm_noise=self.sgm_noise,
            clip_skip=self.clip_skip,
            mask=mask if inpaint else None,
            mask_blur=self.mask_blur,
            masked_content=self.masked_content,
            inpaint_area=self.inpaint_area,
            inpaint_padding=self.inpaint_padding,
            # Hires fix is for text to image only (as A1111): 1 = no hires pass.
            hires_scale=self.hires_scale if self.hires_fix and self.mode == TXT2IMG else 1.0,
            hires_steps=self.hires_steps,
            hires_denoise=self.hires_denoise,
            hires_upscaler=self.hires_upscaler,
        )


def hires_fields(request: GenerationRequest) -> dict[str, Any]:
    """A request's hires values for the controls; its factor only when it had a hires pass,
    so restoring a picture without one keeps the factor the person set."""
    fields: dict[str, Any] = {
        "hires_steps": request.hires_steps,
        "hires_denoise": request.hires_denoise,
        "hires_upscaler": request.hires_upscaler,
    }
    if request.hires_scale > 1:
        fields["hires_scale"] = request.hires_scale
    return fields


class JobsState(QObject):
    """What the progress bar, the Generate/Cancel buttons and the queue label show."""

    running_changed = Signal(bool)
    queued_changed = Signal(int)
    progress_changed = Signal(str)  # "Step 12/25 · 3.1 it/s · 4 s left"
    fraction_changed = Signal(float)
    last_seed_changed = Signal(object)  # int up to 2**32 - 1: too big for a C int

    running = observable("running", bool)
    queued = observable("queued", int)
    progress = observable("progress", str)
    fraction = observable("fraction", float)
    last_seed = observable("last_seed", int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running = False
        self._queued = 0
        self._progress = ""
        self._fraction = 0.0
        self._last_seed = RANDOM_SEED


class ModelState(QObject):
    """The loaded model as the status bar shows it."""

    name_changed = Signal(str)
    path_changed = Signal(str)
    device_changed = Signal(str)
    loading_changed = Signal(bool)
    fraction_changed = Signal(float)  # of the load in progress
    message_changed = Signal(str)

    name = observable("name", str)  # "" when none is loaded
    path = observable("path", str)  # of the loaded model; "" when none is loaded
    device = observable("device", str)  # "cpu · float32"
    loading = observable("loading", bool)
    fraction = observable("fraction", float)
    message = observable("message", str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._name = ""
        self._path = ""
        self._device = ""
        self._loading = False
        self._fraction = 0.0
        self._message = ""
