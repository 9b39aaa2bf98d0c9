"""The types that cross between the app (or CLI) and the engine.

Only plain Python values and numpy arrays cross: no tensors, no Qt objects.
Images are RGB ``uint8`` numpy arrays of shape (H, W, 3).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from engine.samplers import DEFAULT_SAMPLER, sampler_ids, schedule_ids

SAMPLERS = sampler_ids()  # ids of engine.samplers.CATALOGUE: names, defaults, costs are there
SCHEDULES = schedule_ids()  # ids of engine.samplers.SCHEDULE_CATALOGUE

# Limits checked before any work starts (see engine.validate).
MIN_SIZE, MAX_SIZE = 64, 2048
MAX_STEPS = 150
MAX_BATCH_SIZE = 16
MAX_BATCH_COUNT = 1000
MAX_SEED = 2**32 - 1
MAX_CLIP_SKIP = 12  # CLIP ViT-L/14 has 12 layers: skipping more leaves none
MAX_GUIDANCE = 50.0
MASKED_CONTENT = ("original", "fill", "latent_noise", "latent_nothing")
INPAINT_AREAS = ("whole", "masked")
VAE_TILING = ("auto", "on", "off")
HIRES_UPSCALERS = ("latent", "lanczos")
MAX_HIRES_SCALE = 4.0  # as A1111's "Upscale by" slider


@dataclass(frozen=True)
class GenerationRequest:
    """Everything one generation needs. txt2img when ``init_image`` is None, else img2img."""

    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 25
    guidance_scale: float = 7.0
    seed: int | None = None  # None: a random seed, reported back in the result
    sampler: str = DEFAULT_SAMPLER
    schedule: str = "karras"  # SCHEDULES; ignored by samplers without one (DDIM, PLMS)
    batch_size: int = 1  # images per UNet batch (--n_samples)
    batch_count: int = 1  # batches run one after another (--n_iter)
    init_image: np.ndarray | None = field(default=None, compare=False, repr=False)
    strength: float = 0.75  # img2img only: 0 keeps the init image, 1 ignores it
    eta: float = 0.0  # DDIM only
    clip_skip: int = 1  # 1 = last layer; 2 = penultimate, as A1111
    # txt2img with a scheduled sampler: start from noise * sqrt(1 + sigma_max**2), the exact
    # marginal (as diffusers, ComfyUI, and A1111 with "SGM noise multiplier" on). False: A1111's
    # default noise * sigma_max, to reproduce its pictures. DDIM, PLMS and img2img ignore it.
    sgm_noise: bool = True
    preview_every: int = 1  # cheap latent->RGB preview every N steps; 0 = none
    preview_decode_every: int = 0  # full VAE decode preview every N steps; 0 = never
    # Inpainting: img2img of init_image where the mask is white (A1111's options and defaults).
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)  # (H, W) uint8
    mask_blur: int = 4  # pixels of feathering at the mask's edge
    masked_content: str = "original"  # MASKED_CONTENT: what the masked area starts from
    inpaint_area: str = "whole"  # INPAINT_AREAS: "masked" = only the masked area, at full size
    inpaint_padding: int = 32  # pixels around the mask's bounding box for inpaint_area="masked"
    vae_tiling: str = "auto"  # VAE_TILING: "auto" tiles when the picture is large for the memory
    # Hires fix: after the base picture, an img2img pass at (width, height) * hires_scale.
    hires_scale: float = 1.0  # 1: no hires pass
    hires_steps: int = 0  # 0: as many as ``steps``
    hires_denoise: float = 0.7
    hires_upscaler: str = "latent"  # HIRES_UPSCALERS


@dataclass(frozen=True)
class StepEvent:
    """Progress of one job: sent once per sampler step through ``on_step``."""

    job_id: int
    step: int  # 1-based, counts steps of the current batch
    total: int  # steps of the current batch
    elapsed: float  # seconds since the job started
    batch_index: int  # which of ``batch_count`` batches is running (0-based)
    batch_count: int
    preview: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class GeneratedImage:
    image: np.ndarray = field(compare=False, repr=False)  # (H, W, 3) uint8
    seed: int
    parameters: str  # the A1111 ``parameters`` text for this image


@dataclass(frozen=True)
class ImageEvent:
    """One finished image, sent through ``on_image`` as soon as it is decoded, so a job
    cancelled or failing later keeps the images it already made."""

    job_id: int
    index: int  # 0-based position in the job: image i has seed + i
    total: int  # images the whole job makes (batch_size * batch_count)
    image: GeneratedImage


@dataclass(frozen=True)
class GenerationResult:
    job_id: int
    request: GenerationRequest
    images: tuple[GeneratedImage, ...]
    timings: dict[str, float]  # seconds: encode, sample, decode, total
    # What a person should know about how the job ran ("film: 40 of 64 layers matched" for a
    # LoRA that fits the model only in part); the CLI prints them, the window shows them.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    """What the app's status bar and the metadata need to know about the loaded model."""

    name: str  # file stem, e.g. "v1-5-pruned-emaonly"
    path: str
    family: str  # "sd1"
    inpainting: bool  # 9-channel UNet input
    device: str  # "cpu", "cuda:0", "mps"
    dtype: str  # "float16", "bfloat16", "float32"
    load_seconds: float
    # Why the model runs on the CPU ("torch is a CPU-only build", ...); "" on a GPU or when the
    # CPU was asked for. Shown in the status bar so a slow machine is never a silent mystery.
    device_note: str = ""
    # The family's training resolution, pixels per side: the app offers it as the first size.
    # 0 when the backend does not know it.
    native_size: int = 0


@dataclass(frozen=True)
class ModelRef:
    """A model a backend can load: ``load_model(ref.id)``."""

    id: str  # for the local engine, the file or folder path
    name: str  # what a person sees, e.g. "v1-5-pruned-emaonly"
    path: str | None = None  # on this computer; None for a model that lives on a server
    family: str | None = None  # "sd1", "sd2", "sdxl"; None when not known
    inpainting: bool = False
    size: int | None = None  # bytes
    source: str = ""  # where it was found: "app", "a1111", "comfyui", "hf-cache", ...
    problem: str = ""  # why it cannot be used here (shown greyed); "" when it can

    @property
    def usable(self) -> bool:
        return not self.problem


StepCallback = Callable[[StepEvent], None]
ImageCallback = Callable[[ImageEvent], None]
ProgressCallback = Callable[[float, str], None]  # fraction done, what is happening


@runtime_checkable
class Backend(Protocol):
    """What the app and the CLI need from whatever makes the pictures.

    The local ``engine.Engine`` is one backend; a remote GPU server (ComfyUI's or A1111's HTTP
    API) can be another, behind the same window. One thread owns a backend. Cancellation is a
    ``threading.Event`` per job, set from any thread: ``generate`` checks it at every step and
    raises ``Cancelled`` within one step. Errors a person can cause are ``EngineError``s.
    """

    @property
    def model_info(self) -> ModelInfo | None:
        """The loaded model, or None."""
        ...

    def list_models(self) -> list[ModelRef]:
        """The models this backend can load, sorted by name."""
        ...

    def load_model(
        self, model: str | os.PathLike[str], on_progress: ProgressCallback | None = None
    ) -> ModelInfo:
        """Load a model by ``ModelRef.id`` or path, replacing the current one. On error the
        previous model stays loaded."""
        ...

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_step: StepCallback | None = None,
        on_image: ImageCallback | None = None,
        cancel: threading.Event | None = None,
        job_id: int = 0,
    ) -> GenerationResult:
        """Run one job. ``on_step`` after every sampler step, ``on_image`` for every image as
        soon as it is finished; the result repeats all images at the end."""
        ...
