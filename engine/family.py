"""Model families (sd1 today; sd2 and sdxl later): one descriptor holds all a family's facts.

The loader, the pipeline, the schedules and the previews read these descriptors instead of
restating constants, so a new family is a new descriptor plus the code that really differs.
Importing this module is cheap: torch is imported only when a builder runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from engine.text.encoder import TextEncoder

Shapes = Mapping[str, tuple[int, ...]]
RGB = tuple[float, float, float]
LatentRGB = tuple[RGB, ...]
TextEncoderBuilder = Callable[
    [Mapping[str, "torch.Tensor"], "torch.device", "torch.dtype"], "TextEncoder"
]


@dataclass(frozen=True)
class BetaSchedule:
    """The DDPM training schedule: ``betas = linspace(start**0.5, end**0.5, timesteps)**2``."""

    beta_start: float
    beta_end: float
    timesteps: int


@dataclass(frozen=True)
class ModelFamily:
    """Everything family-specific that loading, sampling and previewing need."""

    name: str  # the id that crosses the API (ModelInfo.family) and goes into settings
    display_name: str
    unet_prefix: str  # single-file checkpoint key prefixes of the three networks
    vae_prefix: str
    text_encoder_prefix: str
    latent_channels: int
    latent_scale: float  # VAE latents times this have about unit variance, as the UNet learnt
    latent_rgb: LatentRGB  # (latent_channels, 3): x0 estimate -> RGB in [-1, 1] for previews
    prediction: str  # "epsilon" or "v": what the UNet outputs
    schedule: BetaSchedule
    native_size: int  # training resolution in pixels per side
    unet_heads: int  # attention heads per transformer: the shapes only give the total width
    build_text_encoder: TextEncoderBuilder  # (state dict without prefix, device, dtype)
    matches_unet: Callable[[Shapes], bool]  # UNet shapes (keys without unet_prefix)
    # Added to the preview's RGB: SD's factors need none; factors fitted with an intercept
    # (a model's own, from its file's metadata: engine.loading.file_metadata) do.
    latent_rgb_bias: RGB = (0.0, 0.0, 0.0)

    @property
    def inpainting_in_channels(self) -> int:
        """UNet input of inpainting models: noisy latents + mask + masked-image latents."""
        return 2 * self.latent_channels + 1

    def alphas_cumprod(self) -> torch.Tensor:
        """(timesteps,) float64 cumulative product of the training schedule's alphas."""
        from engine.sampling.schedules import scaled_linear_alphas_cumprod

        s = self.schedule
        return scaled_linear_alphas_cumprod(s.beta_start, s.beta_end, s.timesteps)


def _build_clip_text_encoder(
    sd: Mapping[str, torch.Tensor], device: torch.device, dtype: torch.dtype
) -> TextEncoder:
    from engine.text.encoder import TextEncoder  # torch: only when a model loads

    return TextEncoder.from_state_dict(sd, device=device, dtype=dtype)


def _is_sd1_unet(unet: Shapes) -> bool:
    """A CompVis UNet taking SD1's latents (or the inpainting input), without SD2's linear
    proj_in or SDXL's vector embedding. detect_family rejects those earlier, with reasons."""
    stem = unet.get("input_blocks.0.0.weight")  # (model_channels, in_channels, 3, 3)
    if stem is None or stem[1] not in (SD1.latent_channels, SD1.inpainting_in_channels):
        return False
    proj_in = unet.get("input_blocks.1.1.proj_in.weight") or unet.get(
        "middle_block.1.proj_in.weight"
    )
    return (proj_in is None or len(proj_in) == 4) and "label_emb.0.0.weight" not in unet


SD1 = ModelFamily(
    name="sd1",
    display_name="Stable Diffusion 1.x",
    unet_prefix="model.diffusion_model.",
    vae_prefix="first_stage_model.",
    text_encoder_prefix="cond_stage_model.transformer.",  # CLIP ViT-L/14
    latent_channels=4,
    latent_scale=0.18215,
    latent_rgb=(
        (0.3512, 0.2297, 0.3227),
        (0.3250, 0.4974, 0.2350),
        (-0.2829, 0.1762, 0.2721),
        (-0.2120, -0.2616, -0.7177),
    ),
    prediction="epsilon",
    schedule=BetaSchedule(beta_start=0.00085, beta_end=0.012, timesteps=1000),
    native_size=512,
    unet_heads=8,
    build_text_encoder=_build_clip_text_encoder,
    matches_unet=_is_sd1_unet,
)

FAMILIES: dict[str, ModelFamily] = {family.name: family for family in (SD1,)}


def get_family(name: str) -> ModelFamily:
    """The family with this ``name`` (as in ``ModelInfo.family``)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}") from None
