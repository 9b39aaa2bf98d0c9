"""The hires fix's second pass (the rules are in ``engine.hires``): upscale a batch's base
latents to the target size, then run img2img there with the hires steps and strength.

Upscalers, as A1111's of the same names: "latent" interpolates the latents bilinearly (no
antialiasing, as ``torch.nn.functional.interpolate`` with ``mode="bilinear"``); "lanczos"
decodes the base pictures, resizes them as 8-bit pictures with PIL's Lanczos filter and encodes
them again (the mean of the latent distribution, as img2img's init image).

The pass's noise comes from each image's own generator, continuing the stream the base pass
drew from, so a seed reproduces the whole picture, and image i of a batch comes out the same
when made alone with seed + i.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.hires import hires_schedule_steps, hires_steps_run, hires_target_size
from engine.preview import to_uint8_images
from engine.sampling.noise import NoiseSource
from engine.sampling.schedules import get_sigmas

if TYPE_CHECKING:
    from engine.pipeline import _Run
    from engine.sampling.denoiser import CFGDenoiser


class HiresPass:
    """A job's hires passes, one per batch; the pipeline's run makes it when the request asks."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.steps = hires_steps_run(run.req)  # sampler steps per batch; 0 at strength 0
        self.width, self.height = hires_target_size(run.req)
        self._denoiser: CFGDenoiser | None = None

    def sample(self, latents: torch.Tensor, noise: NoiseSource, batch_index: int) -> torch.Tensor:
        """Base latents (B, C, h, w) -> the hires pass's latents (B, C, H/f, W/f). Its steps are
        reported after the base pass's: steps + 1 ... steps + hires steps of the same total."""
        run, req = self.run, self.run.req
        run._check_cancel()  # a cancel in the base pass's last step skips the upscale
        t0 = time.perf_counter()
        x = self._upscale(latents)  # (B, C, H/f, W/f)
        run.timings["upscale"] = run.timings.get("upscale", 0.0) + time.perf_counter() - t0
        if self.steps == 0:
            return x
        whole = hires_schedule_steps(req)
        sigmas = get_sigmas(req.sampler, req.schedule, whole, run.alphas_cumprod)
        sigmas = sigmas[whole - self.steps :].to(run.bundle.device)
        x = x + noise.sample(x.shape, run.bundle.device) * sigmas[0]
        total = req.steps + self.steps
        return run._sample(self._conditioned(), x, sigmas, noise, batch_index, req.steps, total)

    def _conditioned(self) -> CFGDenoiser:
        # Prompt editing ([a:b:0.5]) is scheduled over the hires steps, as in A1111.
        if self._denoiser is None:
            self._denoiser = self.run._conditioned_denoiser(self.steps)
        return self._denoiser

    def _upscale(self, latents: torch.Tensor) -> torch.Tensor:
        if self.run.req.hires_upscaler == "lanczos":
            return torch.cat([self._lanczos(latents[i : i + 1]) for i in range(len(latents))])
        f = self.run.bundle.latent_factor
        size = (self.height // f, self.width // f)
        return torch.nn.functional.interpolate(
            latents.float(), size=size, mode="bilinear", antialias=False
        )

    def _lanczos(self, latent: torch.Tensor) -> torch.Tensor:
        """One image: decode, resize the 8-bit picture with Lanczos, encode. (1, C, H/f, W/f)"""
        from PIL import Image

        run = self.run
        pixels = to_uint8_images(run._decode_tensor(latent))[0]  # (h*f, w*f, 3) uint8
        picture = Image.fromarray(pixels).resize(
            (self.width, self.height), Image.Resampling.LANCZOS
        )
        run._check_cancel()  # the decode of a large picture takes a while
        return run.encode_picture(np.asarray(picture))  # as img2img's init image
