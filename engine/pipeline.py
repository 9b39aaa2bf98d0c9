"""txt2img and img2img: text -> conditioning, noise -> sampler -> VAE decode.

Convention for img2img (written into the metadata): as diffusers, a request of N steps at
strength s runs the last int(N * s) steps of the N-step schedule, starting from the init
image's latent noised to that step's sigma. (A1111 runs one step more.)
"""

from __future__ import annotations

import functools
import math
import secrets
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from engine.api import (
    MAX_SEED,
    GeneratedImage,
    GenerationRequest,
    GenerationResult,
    ImageCallback,
    ImageEvent,
    StepCallback,
    StepEvent,
)
from engine.errors import Cancelled, NumericalError
from engine.hires import hires_applies, hires_settings, hires_steps_run, hires_target_size
from engine.hires_pass import HiresPass
from engine.inpaint.job import InpaintJob
from engine.loading.build import ModelBundle
from engine.parameters import (
    SGM_NOISE_KEY,
    format_parameters,
    schedule_display_name,
    version_label,
)
from engine.preview import latents_to_rgb, to_uint8_grid, to_uint8_images
from engine.prompts.resources import PromptResources
from engine.samplers import sampler_info
from engine.sampling.denoiser import CFGDenoiser, UNetDenoiser
from engine.sampling.noise import NoiseSource
from engine.sampling.registry import SAMPLER_FUNCTIONS, sampler_options
from engine.sampling.schedules import get_sigmas
from engine.text.prompt_conditioning import encode_prompt_pair
from engine.vae_memory import decode_latents, encode_pixels

IMG2IMG_CONVENTION = "diffusers"


@dataclass(frozen=True)
class ModelLabel:
    """What the metadata says about the model."""

    name: str
    hash: str | None  # first 10 hex digits of the file's sha256
    lora_hashes: str = ""  # A1111's "Lora hashes" of the LoRAs applied ("name: hash, ..."), or ""


def generate(
    bundle: ModelBundle,
    request: GenerationRequest,
    label: ModelLabel,
    *,
    on_step: StepCallback | None = None,
    on_image: ImageCallback | None = None,
    cancel: threading.Event | None = None,
    job_id: int = 0,
    resources: PromptResources | None = None,
) -> GenerationResult:
    """Run a request that ``engine.validate.validate_request`` accepted (the Engine checks it
    once, before any work). ``resources``: the files (embeddings) a prompt may name."""
    run = _Run(bundle, request, label, on_step, on_image, cancel or threading.Event(), job_id)
    if resources is not None:
        run.resources = resources
    return run.execute()


def resolve_seeds(request: GenerationRequest) -> list[int]:
    """Image i of the whole job uses seed + i (wrapping at 2**32), as the reference scripts."""
    total = request.batch_size * request.batch_count
    first = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    return [(first + i) % (MAX_SEED + 1) for i in range(total)]


class _Run:
    """One job: holds the state shared by its batches so each method stays short."""

    def __init__(
        self,
        bundle: ModelBundle,
        request: GenerationRequest,
        label: ModelLabel,
        on_step: StepCallback | None,
        on_image: ImageCallback | None,
        cancel: threading.Event,
        job_id: int,
    ) -> None:
        self.bundle: ModelBundle = bundle
        self.req: GenerationRequest = request
        self.label: ModelLabel = label
        self.on_step: StepCallback | None = on_step
        self.on_image: ImageCallback | None = on_image
        self.images: list[GeneratedImage] = []
        self.cancel: threading.Event = cancel
        self.job_id: int = job_id
        self.start = time.perf_counter()
        self.timings = {"encode": 0.0, "sample": 0.0, "decode": 0.0}
        self.alphas_cumprod = bundle.family.alphas_cumprod()
        self.resources = PromptResources()
        self.ti_hashes = ""  # A1111's "TI hashes" of the embeddings the prompts used
        # Hires fix: a second pass at the larger size after each batch (engine.hires).
        self.hires = HiresPass(self) if hires_applies(request) else None
        # A mask, or a 9-channel inpainting UNet: engine.inpaint.job (None for neither).
        self.inpaint = InpaintJob.for_request(bundle, request)

    def execute(self) -> GenerationResult:
        req = self.req
        seeds = resolve_seeds(req)
        with torch.inference_mode():
            t0 = time.perf_counter()
            denoiser = self._conditioned_denoiser()
            init_latent = self._encode_init_image() if req.init_image is not None else None
            if self.inpaint is not None:
                denoiser = self.inpaint.attach(denoiser, init_latent, self._encode_pixels)
            self.timings["encode"] = time.perf_counter() - t0
            for b in range(req.batch_count):
                batch_seeds = seeds[b * req.batch_size : (b + 1) * req.batch_size]
                self._run_batch(denoiser, init_latent, batch_seeds, b)
        self.timings["total"] = time.perf_counter() - self.start
        notes = self.inpaint.notes if self.inpaint is not None else ()
        return GenerationResult(self.job_id, req, tuple(self.images), dict(self.timings), notes)

    # -- conditioning -------------------------------------------------------------------------
    def _conditioned_denoiser(self, steps: int | None = None) -> CFGDenoiser:
        """Prompts with emphasis, embeddings and editing: scheduled over the steps that run
        (img2img: its own steps; ``steps``: a hires pass's), each distinct text encoded once."""
        req, bundle = self.req, self.bundle
        hires = steps is not None
        if steps is None:
            steps = img2img_steps(req) if req.init_image is not None else req.steps
        prompts = encode_prompt_pair(
            bundle.text_encoder,
            req.prompt,
            req.negative_prompt,
            steps=steps,
            clip_skip=req.clip_skip,
            embedding_files=self.resources.embeddings,
        )
        self.ti_hashes = prompts.ti_hashes
        family = bundle.family
        base = UNetDenoiser(bundle.unet, self.alphas_cumprod, family.prediction, bundle.dtype)
        denoiser = CFGDenoiser(base, prompts.cond, prompts.uncond, req.guidance_scale)
        if hires and self.inpaint is not None:  # a 9-channel UNet needs its channels there too
            width, height = hires_target_size(req)
            denoiser = self.inpaint.plain(denoiser, width, height, self._encode_pixels)
        return denoiser

    def _encode_init_image(self) -> torch.Tensor:
        from engine.images import fit_image

        req = self.req
        assert req.init_image is not None
        pixels = self.inpaint.picture if self.inpaint is not None else None  # inpainting's
        if pixels is None:
            pixels = fit_image(req.init_image, req.width, req.height)  # (H, W, 3) uint8
        return self.encode_picture(pixels)

    def encode_picture(self, pixels: np.ndarray) -> torch.Tensor:
        """An (H, W, 3) uint8 picture -> (1, C, h, w) scaled latents (init images, hires)."""
        x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float()
        return self._encode_pixels(x / 255.0 * 2.0 - 1.0)

    def _encode_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) pixels in [-1, 1] -> (1, C, h, w) scaled latents (posterior mean)."""
        bundle = self.bundle
        x = x.to(bundle.device, bundle.vae_dtype)
        latent = encode_pixels(bundle.vae, x, self.req.vae_tiling)  # tiled when large
        return latent.float() * bundle.family.latent_scale

    # -- sampling -----------------------------------------------------------------------------
    def _run_batch(self, denoiser, init_latent, seeds, batch_index) -> None:
        req, bundle = self.req, self.bundle
        self._check_cancel()
        f = bundle.latent_factor
        # One CPU generator per image: the initial noise, then (for ancestral and SDE samplers)
        # the step noise, continue one stream, so any image of a batch reproduces alone.
        noise_source = NoiseSource(seeds)
        shape = (len(seeds), bundle.family.latent_channels, req.height // f, req.width // f)
        noise = noise_source.sample(shape, bundle.device)
        sigmas = get_sigmas(req.sampler, req.schedule, req.steps, self.alphas_cumprod)
        sigmas = sigmas.to(bundle.device)
        if init_latent is None:
            x = noise * self._start_noise_scale(float(sigmas[0]))
        else:
            sigmas = sigmas[req.steps - img2img_steps(req) :]
            x = init_latent.expand(len(seeds), -1, -1, -1) + noise * sigmas[0]
        if self.inpaint is not None:
            fill = functools.partial(noise_source.sample, shape, bundle.device)  # "latent noise"
            x = self.inpaint.start(x, noise, float(sigmas[0]), fill)
        t0 = time.perf_counter()
        total = len(sigmas) - 1 + hires_steps_run(req)  # a hires pass's steps follow
        latents = self._sample(denoiser, x, sigmas, noise_source, batch_index, 0, total)
        if self.inpaint is not None:
            latents = self.inpaint.finish(latents)
        if self.hires is not None:
            latents = self.hires.sample(latents, noise_source, batch_index)
        self.timings["sample"] += time.perf_counter() - t0
        self._check_cancel()  # a cancel during the last step skips the decode
        for i, seed in enumerate(seeds):
            t0 = time.perf_counter()
            pixels = self._decode(latents[i : i + 1])
            if self.inpaint is not None:  # the untouched pixels back exactly as they were
                pixels = self.inpaint.paste(pixels)
            self.timings["decode"] += time.perf_counter() - t0
            self._finish_image(GeneratedImage(pixels, seed, self._parameters(seed)))

    def _start_noise_scale(self, sigma_max: float) -> float:
        """txt2img starts at noise * sqrt(1 + sigma_max**2), the exact marginal at sigma_max
        (as diffusers and ComfyUI), unless the request asks for A1111's default sigma_max."""
        if self._a1111_noise_option_applies() and not self.req.sgm_noise:
            return sigma_max
        return math.sqrt(1.0 + sigma_max**2)

    def _a1111_noise_option_applies(self) -> bool:
        """Whether A1111's "SGM noise multiplier" option changes this picture there: only its
        k-diffusion samplers' txt2img (``KDiffusionSampler.sample``). Its img2img adds
        noise * sigma as we do; its DDIM and PLMS start from unit noise in the unscaled
        (variance-preserving) space, which is our sqrt(1 + sigma_max**2) start."""
        return self.req.init_image is None and sampler_info(self.req.sampler).uses_schedule

    def _sample(
        self, denoiser, x, sigmas, noise_source, batch_index, done=0, total=0
    ) -> torch.Tensor:
        """Steps are reported as done + 1 ... of ``total`` (default: these steps)."""
        steps = len(sigmas) - 1
        total = total or done + steps
        if steps == 0:
            return x
        sampler = SAMPLER_FUNCTIONS[self.req.sampler]
        req = self.req
        opts = sampler_options(req.sampler, eta=req.eta, alphas_cumprod=self.alphas_cumprod)

        def callback(i: int, denoised: torch.Tensor) -> None:
            self._check_cancel()
            self._report_step(done + i + 1, total, denoised, batch_index)

        # The denoiser tells each call's step from its sigma (prompt editing).
        model = denoiser.with_sigmas(sigmas)
        if self.inpaint is not None:  # a normal model keeps the known latents outside the mask
            model = self.inpaint.wrap(model)
        x = sampler(model, x, sigmas, callback=callback, noise=noise_source, **opts)
        # Back from the sampler's variance-exploding space when the schedule ends above 0
        # (DDIM/PLMS stop at alphas_cumprod[0], as the reference).
        return x / math.sqrt(1.0 + float(sigmas[-1]) ** 2)

    def _report_step(self, step: int, total: int, denoised: torch.Tensor, batch_index: int):
        if self.on_step is None:
            return
        req = self.req
        preview = None
        if req.preview_decode_every and (step % req.preview_decode_every == 0 or step == total):
            preview = to_uint8_grid(self._decode_tensor(denoised))
        elif req.preview_every and (step % req.preview_every == 0 or step == total):
            family = self.bundle.family
            preview = latents_to_rgb(denoised, family.latent_rgb, family.latent_rgb_bias)
        elapsed = time.perf_counter() - self.start
        event = StepEvent(self.job_id, step, total, elapsed, batch_index, req.batch_count, preview)
        self.on_step(event)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled(f"Job {self.job_id} was cancelled.")

    # -- decoding -----------------------------------------------------------------------------
    def _decode(self, latents: torch.Tensor) -> np.ndarray:
        return to_uint8_images(self._decode_tensor(latents))[0]

    def _decode_tensor(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (scaled) -> images in [-1, 1], float32, retrying in float32 on NaN/Inf."""
        z = latents / self.bundle.family.latent_scale
        return decode_with_fallback(self.bundle, z, self.req.vae_tiling)

    def _finish_image(self, image: GeneratedImage) -> None:
        """Keep the image and hand it out at once: a later cancel or error cannot lose it."""
        self.images.append(image)
        if self.on_image is not None:
            total = self.req.batch_size * self.req.batch_count
            self.on_image(ImageEvent(self.job_id, len(self.images) - 1, total, image))

    def _parameters(self, seed: int) -> str:
        req = self.req
        sampler = sampler_info(req.sampler)
        settings: dict[str, object] = {
            "Steps": req.steps,
            "Sampler": sampler.display_name,
            # DDIM and PLMS run on their own timesteps: no schedule to name (None: not written).
            "Schedule type": schedule_display_name(req.schedule) if sampler.uses_schedule else None,
            "CFG scale": req.guidance_scale,
            "Seed": seed,
            "Size": f"{req.width}x{req.height}",
        }
        if self.label.hash:
            settings["Model hash"] = self.label.hash
        settings["Model"] = self.label.name
        if req.init_image is not None:
            settings["Denoising strength"] = req.strength
            settings["Img2img steps"] = f"{img2img_steps(req)} of {req.steps}"
            settings["Img2img convention"] = IMG2IMG_CONVENTION
        if self.hires is not None:
            settings.update(hires_settings(req))
        if self.inpaint is not None:
            settings.update(self.inpaint.settings())
        if req.clip_skip > 1:
            settings["Clip skip"] = req.clip_skip
        if sampler.takes_eta and req.eta:
            settings["Eta"] = req.eta
        if req.batch_size > 1:
            settings["Batch size"] = req.batch_size
        if req.sgm_noise and self._a1111_noise_option_applies():
            # Only where A1111 would write it: there, this picture needs the option on.
            settings[SGM_NOISE_KEY] = True
        if self.label.lora_hashes:
            settings["Lora hashes"] = self.label.lora_hashes
        if self.ti_hashes:
            settings["TI hashes"] = self.ti_hashes
        settings["Version"] = version_label()
        return format_parameters(req.prompt, req.negative_prompt, settings)


def img2img_steps(request: GenerationRequest) -> int:
    """Steps actually run for img2img at this strength (diffusers' convention)."""
    return min(int(request.steps * request.strength), request.steps)


def decode_with_fallback(
    bundle: ModelBundle, z: torch.Tensor, tiling: str = "auto"
) -> torch.Tensor:
    """VAE decode in the working precision, tiled as ``tiling`` (VAE_TILING) decides; on NaN/Inf
    (the SD VAE's known float16 overflow) switch the VAE to float32 for the rest of the session
    and decode again, deciding the tiling again for float32's larger activations."""
    image = decode_latents(bundle.vae, z.to(bundle.vae_dtype), tiling)
    if not torch.isfinite(image).all() and bundle.vae_dtype != torch.float32:
        bundle.vae = bundle.vae.float()
        bundle.vae_dtype = torch.float32
        image = decode_latents(bundle.vae, z.float(), tiling)
    if not torch.isfinite(image).all():
        # Not the VAE's half-precision overflow: the UNet (or the file) produced NaN/Inf.
        # Say so, rather than saving a black picture.
        raise NumericalError(
            "The model produced invalid numbers (NaN/Inf), so the picture would be black. "
            "Try full precision (--precision full), a lower guidance scale, or another "
            "checkpoint: this one may be damaged."
        )
    return image.float()
