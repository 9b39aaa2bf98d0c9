"""A real SD1.5 single file, as its key list describes it, goes through the loader's own steps."""

import pytest
import torch

from engine.family import SD1
from engine.loading.build import assign_weights, split_components
from engine.loading.detect import detect_family, unet_config_from_shapes, vae_config_from_shapes
from engine.models.unet import UNetModel
from engine.models.vae import AutoencoderKL
from engine.text.clip_model import ClipTextModel
from engine.text.encoder import normalise_keys, text_config_from_shapes
from tests.factories import full_sd1_shapes


def _meta_checkpoint(shapes):
    return {k: torch.empty(s, device="meta", dtype=torch.float16) for k, s in shapes.items()}


@pytest.mark.parametrize("unet_list, in_channels", [("UNET-v1-SD", 4), ("UNET-v1-Inpainting", 9)])
def test_sd15_file_loads_strictly(unet_list, in_channels):
    sd = _meta_checkpoint(full_sd1_shapes(unet_list))
    assert detect_family({k: tuple(v.shape) for k, v in sd.items()}) is SD1
    parts = split_components(sd, SD1)
    unet_cfg = unet_config_from_shapes({k: tuple(v.shape) for k, v in parts["unet"].items()}, SD1)
    vae_cfg = vae_config_from_shapes({k: tuple(v.shape) for k, v in parts["vae"].items()})
    assert unet_cfg.in_channels == in_channels and unet_cfg.context_dim == 768
    meta = torch.device("meta")
    # strict=True inside: every key and shape of the real file has its place, and no more.
    unet = assign_weights(UNetModel, unet_cfg, parts["unet"], meta, torch.float16, "UNet")
    vae = assign_weights(AutoencoderKL, vae_cfg, parts["vae"], meta, torch.float16, "VAE")
    assert sum(p.numel() for p in unet.parameters()) == 859_520_964 + (in_channels - 4) * 320 * 9
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863


def test_sd15_text_encoder_has_exactly_the_reference_keys():
    clip = {
        k.removeprefix("cond_stage_model.transformer.text_model."): s
        for k, s in full_sd1_shapes().items()
        if k.startswith("cond_stage_model.")
    }
    with torch.device("meta"):
        model = ClipTextModel(text_config_from_shapes(clip))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    wrapped = any(k.startswith("text_model.") for k in ours)
    expected = normalise_keys({k: torch.empty(s, device="meta") for k, s in clip.items()}, wrapped)
    expected_shapes = {k: tuple(v.shape) for k, v in expected.items()}
    ours.pop("text_model.embeddings.position_ids" if wrapped else "embeddings.position_ids", None)
    assert ours == expected_shapes
