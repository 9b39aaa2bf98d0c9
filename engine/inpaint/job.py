"""The inpainting side of one generation: the hooks ``engine.pipeline`` calls.

Two kinds of model, two ways (see ``InpaintJob``):

- An inpainting checkpoint (9-channel UNet: SD 1.5 inpainting) is conditioned on the mask and
  the masked picture's latents, as diffusers' StableDiffusionInpaintPipeline: the UNet input is
  [noisy latents, mask, masked-image latents]. Without a mask (txt2img, img2img) it gets A1111's
  ``txt2img_image_conditioning``: a mask of ones and the latents of a mid-grey picture.
- A normal checkpoint keeps the known latents outside the mask at every model call
  (``latents.blend_outside_mask``), wrapped around the denoiser so no sampler changes.

Either way the decoded picture is pasted back over the original (``prepare.paste_back``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import torch

from engine.api import GenerationRequest
from engine.errors import InvalidRequestError
from engine.inpaint import latents as L
from engine.inpaint.prepare import FULL_MASK_NOTE, InpaintPlan, plan_inpaint
from engine.inpaint.settings import inpaint_settings
from engine.loading.build import ModelBundle
from engine.sampling.conditioning import Conditioning, ConditioningSchedule
from engine.sampling.denoiser import CFGDenoiser

# (1, 3, H, W) pixels in [-1, 1] -> (1, C, h, w) scaled latents (the VAE's posterior mean).
Encoder = Callable[[torch.Tensor], torch.Tensor]


class InpaintJob:
    """Built once per request by ``for_request``; the pipeline calls, in order: ``picture``
    (what to encode as the init image), ``attach`` (after encoding), then per batch ``start``,
    ``wrap``, ``finish`` and, per image, ``paste``."""

    def __init__(self, bundle: ModelBundle, request: GenerationRequest, plan: InpaintPlan | None):
        self.bundle = bundle
        self.request = request
        self.plan = plan  # None: no mask (or a full one), only the 9-channel conditioning
        self.conditioned = bundle.inpainting  # the UNet takes mask channels
        self.init_latent: torch.Tensor | None = None  # (1, C, h, w)
        self.mask: torch.Tensor | None = None  # (1, 1, h, w) soft latent mask, 1 = repaint
        self.noise: torch.Tensor | None = None  # this batch's starting noise
        self.notes: tuple[str, ...] = plan.notes if plan is not None else ()

    @classmethod
    def for_request(cls, bundle: ModelBundle, request: GenerationRequest) -> InpaintJob | None:
        """None when the request has no mask and the model takes none (plain txt2img/img2img)."""
        has_mask = request.mask is not None and request.init_image is not None
        if has_mask:
            check_model_takes_mask(bundle)
        if not has_mask and not bundle.inpainting:
            return None
        plan = plan_inpaint(request) if has_mask else None
        job = cls(bundle, request, plan)
        if has_mask and plan is None:
            job.notes = (FULL_MASK_NOTE,)
        return job

    # -- before sampling ----------------------------------------------------------------------
    @property
    def picture(self) -> np.ndarray | None:
        """The (height, width, 3) picture to encode as the init image; None: the usual one."""
        return None if self.plan is None else self.plan.picture

    def attach(
        self, denoiser: CFGDenoiser, init_latent: torch.Tensor | None, encode: Encoder
    ) -> CFGDenoiser:
        """Remember the init latent, build the latent mask, and give a 9-channel model its
        mask and masked-image channels in every conditioning (cond and uncond alike)."""
        self.init_latent = init_latent
        req, f = self.request, self.bundle.latent_factor
        h, w = req.height // f, req.width // f
        if self.plan is not None:
            self.mask = L.soft_latent_mask(self.plan.mask, h, w).to(self.bundle.device)
        if not self.conditioned:
            return denoiser
        return with_concat(denoiser, self._concat(encode, h, w))

    def plain(self, denoiser: CFGDenoiser, width: int, height: int, encode: Encoder):
        """A pass without the mask at another size (the hires fix of txt2img): a 9-channel
        model gets A1111's txt2img conditioning at that size."""
        if not self.conditioned:
            return denoiser
        f = self.bundle.latent_factor
        return with_concat(denoiser, self._plain_concat(encode, width, height, f))

    def _concat(self, encode: Encoder, h: int, w: int) -> torch.Tensor:
        """(1, 1 + C, h, w): [mask, masked-image latents]."""
        if self.plan is None:
            req = self.request
            return self._plain_concat(encode, req.width, req.height, self.bundle.latent_factor)
        mask = L.conditioning_mask(self.plan.mask, h, w)
        pixels = torch.from_numpy(L.masked_picture(self.plan.picture, self.plan.mask))[None]
        masked_latents = encode(pixels).float()  # (1, C, h, w)
        return torch.cat([mask.to(masked_latents.device), masked_latents], dim=1)

    @staticmethod
    def _plain_concat(encode: Encoder, width: int, height: int, f: int) -> torch.Tensor:
        """A1111's ``txt2img_image_conditioning``: everything masked, the masked picture mid
        grey (0 in [-1, 1]). Also img2img without a mask (its mask of ones zeroes the picture)."""
        grey_latents = encode(torch.zeros(1, 3, height, width)).float()  # (1, C, h, w)
        ones = torch.ones(1, 1, height // f, width // f, device=grey_latents.device)
        return torch.cat([ones, grey_latents], dim=1)

    # -- per batch ----------------------------------------------------------------------------
    def start(self, x: torch.Tensor, noise: torch.Tensor, sigma: float, fill_noise) -> torch.Tensor:
        """The starting latents given the pipeline's usual ones ``x``: at strength 1 pure noise
        at the exact marginal (as diffusers' inpainting pipeline, whatever the masked content);
        below it, by ``masked_content``. ``fill_noise()`` draws unit noise for "latent noise"."""
        self.noise = noise
        if self.plan is None or self.init_latent is None:
            return x
        if self.request.strength >= 1.0:
            return noise * math.sqrt(1.0 + sigma**2)
        content = self.request.masked_content
        extra = fill_noise() if content == "latent_noise" else None
        assert self.mask is not None
        return L.start_latents(content, self.init_latent, self.mask, noise, sigma, extra)

    def wrap(self, model: L.Model) -> L.Model:
        """The sampler's model: normal checkpoints keep the known latents outside the mask.
        An inpainting checkpoint gets no blend (diffusers does none for it either): the mask
        channels already tell it what to keep, and the paste-back restores the pixels."""
        if self.plan is None or self.conditioned or self.init_latent is None:
            return model
        assert self.mask is not None and self.noise is not None
        return L.blend_outside_mask(model, self.init_latent, self.mask, self.noise)

    def finish(self, latents: torch.Tensor) -> torch.Tensor:
        """After the last step, the clean init latent outside the mask (normal checkpoints)."""
        if self.plan is None or self.conditioned or self.init_latent is None:
            return latents
        assert self.mask is not None
        return latents * self.mask + self.init_latent * (1 - self.mask)

    def paste(self, pixels: np.ndarray) -> np.ndarray:
        from engine.inpaint.prepare import paste_back

        return pixels if self.plan is None else paste_back(self.plan, pixels)

    def settings(self) -> dict[str, object]:
        """Metadata keys, for pictures that were inpainted with a mask."""
        return {} if self.plan is None else inpaint_settings(self.request)


def check_model_takes_mask(bundle: ModelBundle) -> None:
    """A mask needs a UNet that either takes the mask channels or works on plain latents (then
    the blend applies); any other input width has no room for it."""
    family = bundle.family
    channels = bundle.unet_config.in_channels
    if channels not in (family.latent_channels, family.inpainting_in_channels):
        raise InvalidRequestError(
            f"This model's UNet takes {channels} input channels, which leaves no room for an "
            f"inpainting mask (a regular {family.display_name} model takes "
            f"{family.latent_channels}, an inpainting one {family.inpainting_in_channels}). "
            "Load a regular or inpainting checkpoint, or run img2img without a mask."
        )


def with_concat(denoiser: CFGDenoiser, concat: torch.Tensor) -> CFGDenoiser:
    """``denoiser`` with ``concat`` joined to every conditioning it may use, at any step."""

    def add(schedule: ConditioningSchedule) -> ConditioningSchedule:
        # One new conditioning per distinct old one: a constant schedule stays constant.
        done: dict[int, Conditioning] = {}
        entries = []
        for end, cond in schedule.entries:
            new = done.setdefault(id(cond), _with(cond, concat))
            entries.append((end, new))
        return ConditioningSchedule(tuple(entries))

    uncond = None if denoiser.uncond is None else add(denoiser.uncond)
    return CFGDenoiser(
        denoiser.denoiser, add(denoiser.cond), uncond, denoiser.scale, denoiser.sigmas
    )


def _with(cond: Conditioning, concat: torch.Tensor) -> Conditioning:
    return dataclasses.replace(cond, concat=concat.to(cond.context.device))
