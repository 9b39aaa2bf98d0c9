"""From a checkpoint path to ready modules: read, detect, build on meta, assign the weights."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from engine.errors import (
    CheckpointError,
    CorruptCheckpointError,
    MissingComponentError,
    NotACheckpointError,
)
from engine.family import ModelFamily
from engine.loading.checkpoint import load_single_file
from engine.loading.detect import detect_family, unet_config_from_shapes, vae_config_from_shapes
from engine.loading.file_metadata import NO_METADATA, ModelMetadata, read_metadata, with_metadata
from engine.loading.page_release import PageReleaser
from engine.models.unet import UNetConfig, UNetModel
from engine.models.vae import AutoencoderKL, VAEConfig
from engine.text.encoder import TextEncoder

Progress = Callable[[float, str], None]
M = TypeVar("M", bound=nn.Module)


@dataclass
class ModelBundle:
    """The three networks of a checkpoint, on one device, ready to run. ``family`` carries the
    preview factors, latent scale and native size of the file's metadata where it gives them."""

    unet: UNetModel
    vae: AutoencoderKL
    text_encoder: TextEncoder
    unet_config: UNetConfig
    vae_config: VAEConfig
    family: ModelFamily
    device: torch.device
    dtype: torch.dtype  # UNet and text encoder
    vae_dtype: torch.dtype  # may become float32 after a NaN decode in half precision
    metadata: ModelMetadata = NO_METADATA  # what the file says of itself (its display name)

    @property
    def inpainting(self) -> bool:
        return self.unet_config.in_channels == self.family.inpainting_in_channels

    @property
    def latent_factor(self) -> int:
        """Pixels per latent cell: 8 for every real SD model (smaller in tiny test models)."""
        return 2 ** (len(self.vae_config.ch_mult) - 1)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Any supported checkpoint (file or diffusers folder) as a flat original-layout state dict."""
    if not path.exists():
        raise NotACheckpointError(f"{path} does not exist. Check the path and try again.")
    if path.is_dir():
        from engine.loading.diffusers_folder import is_diffusers_folder, load_diffusers_folder

        if not is_diffusers_folder(path):
            raise NotACheckpointError(
                f"The folder {path.name} is not a diffusers model (it has no model_index.json "
                "or unet/ folder). Choose a .safetensors or .ckpt file, or a diffusers folder."
            )
        return load_diffusers_folder(path)
    return load_single_file(path)


def split_components(
    sd: Mapping[str, torch.Tensor], family: ModelFamily
) -> dict[str, dict[str, torch.Tensor]]:
    """The UNet, VAE and text encoder ("clip") tensors, each without its key prefix."""
    prefixes = {
        "unet": family.unet_prefix,
        "vae": family.vae_prefix,
        "clip": family.text_encoder_prefix,
    }
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in prefixes}
    for key, tensor in sd.items():
        for name, prefix in prefixes.items():
            if key.startswith(prefix):
                parts[name][key[len(prefix) :]] = tensor
    missing = [name for name, part in parts.items() if not part]
    if missing:
        names = {"unet": "the UNet", "vae": "the VAE", "clip": "the text encoder"}
        raise MissingComponentError(
            "This checkpoint lacks " + " and ".join(names[m] for m in missing) + ". "
            f"Use a complete {family.display_name} checkpoint (UNet, VAE and text encoder in one "
            "file, such as v1-5-pruned-emaonly.safetensors)."
        )
    return parts


def load_bundle(
    path: Path, device: torch.device, dtype: torch.dtype, on_progress: Progress | None = None
) -> ModelBundle:
    report = on_progress or (lambda fraction, message: None)
    report(0.0, f"Reading {path.name}")
    sd = read_checkpoint(path)
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    family = detect_family(shapes)
    meta = read_metadata(path, family.latent_channels) if path.is_file() else NO_METADATA
    family = with_metadata(family, meta)
    parts = split_components(sd, family)
    del sd
    unet_cfg = unet_config_from_shapes(_shapes(parts["unet"]), family)
    vae_cfg = vae_config_from_shapes(_shapes(parts["vae"]))
    layout = conv_layout(device)
    releaser = PageReleaser()
    report(0.3, "Building the UNet")
    unet = assign_weights(
        UNetModel, unet_cfg, parts.pop("unet"), device, dtype, "UNet", layout, releaser
    )
    report(0.7, "Building the VAE")
    vae = assign_weights(
        AutoencoderKL, vae_cfg, parts.pop("vae"), device, dtype, "VAE", layout, releaser
    )
    report(0.85, "Building the text encoder")
    clip = parts.pop("clip")
    text = _build_text_encoder(family, clip, device, dtype)
    releaser.release(_converted_sources(clip, text.model.state_dict().values()))
    report(1.0, "Ready")
    return ModelBundle(unet, vae, text, unet_cfg, vae_cfg, family, device, dtype, dtype, meta)


def _shapes(sd: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def conv_layout(device: torch.device) -> torch.memory_format:
    """Channels-last convolutions on the CPU: oneDNN's fastest layout there (about 1.3x a plain
    float32 3x3 conv here, ~15x for an emulated bfloat16 one), and the UNet's transformers then
    reshape pixels to tokens without a copy. GPUs keep the default layout."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def assign_weights(
    factory: Callable[[Any], M],
    config: object,
    sd: dict[str, torch.Tensor],
    device: torch.device,
    dtype: torch.dtype,
    what: str,
    layout: torch.memory_format = torch.contiguous_format,
    releaser: PageReleaser | None = None,
) -> M:
    """Build on the meta device (no memory, no random init) and adopt the checkpoint's tensors.

    Tensors already in the right dtype and layout on the CPU are adopted as they are
    (memory-mapped from a safetensors file), so a 2 GB model is never held twice; converted
    ones give their source pages back as they go (see ``page_release``).
    """
    with torch.device("meta"):
        module = factory(config)
    weights = {}
    for key, tensor in _adapt(module, sd).items():
        weights[key] = cast(tensor, device, dtype, layout)
        if releaser is not None and weights[key].data_ptr() != tensor.data_ptr():
            releaser.release([tensor])
    try:
        module.load_state_dict(weights, strict=True, assign=True)
    except RuntimeError as e:
        raise CorruptCheckpointError(
            f"The {what} weights in this checkpoint do not fit its own layout ({_short(e)}). "
            "The file is damaged or was made by an incompatible converter."
        ) from None
    return module.eval().requires_grad_(False)


def _adapt(module: nn.Module, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Some converters save 1x1 convolutions (the VAE's attention) as 2-D linear weights."""
    expected = {k: v.shape for k, v in module.state_dict().items()}
    out = {}
    for key, tensor in sd.items():
        want = expected.get(key)
        if want is not None and tensor.dim() == 2 and tuple(want) == (*tensor.shape, 1, 1):
            tensor = tensor.reshape(want)
        out[key] = tensor
    return out


def cast(
    t: torch.Tensor,
    device: torch.device,
    dtype: torch.dtype,
    layout: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """One conversion (device, dtype and conv-kernel layout at once): never two copies."""
    if not t.is_floating_point():
        return t.to(device=device)
    if t.dim() == 4:
        return t.to(device=device, dtype=dtype, memory_format=layout)
    return t.to(device=device, dtype=dtype)


def _converted_sources(sources: dict[str, torch.Tensor], kept) -> list[torch.Tensor]:
    """Source tensors that the model did not adopt (it holds converted copies of them)."""
    adopted = {t.data_ptr() for t in kept}
    return [t for t in sources.values() if t.data_ptr() not in adopted]


def _build_text_encoder(
    family: ModelFamily, sd: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype
) -> TextEncoder:
    try:
        return family.build_text_encoder(sd, device, dtype)
    except CheckpointError:
        raise
    except RuntimeError as e:
        raise CorruptCheckpointError(
            f"The text encoder weights in this checkpoint do not fit its layout ({_short(e)})."
        ) from None


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:240] + ("..." if len(text) > 240 else "")
