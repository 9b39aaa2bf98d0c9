"""The full-size SD 1.5 modules have exactly the keys and shapes of real checkpoints."""

from __future__ import annotations

import re

import pytest
import torch

from engine.family import SD1
from engine.loading.detect import unet_config_from_shapes, vae_config_from_shapes
from engine.models.unet import UNetConfig, UNetModel
from engine.models.vae import AutoencoderKL, VAEConfig
from tests.factories import (
    CLIP_PREFIX,
    reference_shapes,
    shapes_of,
    tiny_sd1_state_dict,
)

CASES = [
    ("UNET-v1-SD", UNetModel, UNetConfig()),
    ("UNET-v1-Inpainting", UNetModel, UNetConfig(in_channels=9)),
    ("VAE-v1-SD", AutoencoderKL, VAEConfig()),
]


@pytest.mark.parametrize(("name", "factory", "config"), CASES, ids=[c[0] for c in CASES])
def test_module_keys_and_shapes_equal_reference(name, factory, config) -> None:
    with torch.device("meta"):
        module = factory(config)
    ours = shapes_of(module)
    ref = reference_shapes(name)
    assert sorted(set(ref) - set(ours)) == [], "keys in real files that the module lacks"
    assert sorted(set(ours) - set(ref)) == [], "module keys absent from real files"
    wrong = {k: (ours[k], ref[k]) for k in ref if ours[k] != ref[k]}
    assert wrong == {}


@pytest.mark.parametrize(
    ("name", "config"),
    [("UNET-v1-SD", UNetConfig()), ("UNET-v1-Inpainting", UNetConfig(in_channels=9))],
)
def test_detection_recovers_full_unet_config(name: str, config: UNetConfig) -> None:
    assert unet_config_from_shapes(reference_shapes(name), SD1) == config


def test_detection_recovers_full_vae_config() -> None:
    assert vae_config_from_shapes(reference_shapes("VAE-v1-SD")) == VAEConfig()


def test_tiny_checkpoint_uses_real_text_encoder_key_names() -> None:
    """The factory's CLIP keys are those of real SD1 files, restricted to the tiny layer count."""
    tiny = {k for k in tiny_sd1_state_dict() if k.startswith(CLIP_PREFIX)}
    real = set(reference_shapes("CLIP-v1-SD", CLIP_PREFIX))
    real_first_two = {k for k in real if not re.search(r"\.layers\.([2-9]|1\d)\.", k)}
    assert tiny == real_first_two
