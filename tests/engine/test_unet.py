"""The UNet against diffusers' UNet2DConditionModel on the same tiny random weights."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.models.unet import UNetConfig, UNetModel
from engine.models.unet_blocks import timestep_embedding
from tests.factories import (
    TINY_UNET,
    UNET_PREFIX,
    random_weights,
    shapes_of,
    strip_prefix,
    tiny_sd1_state_dict,
    tiny_unet,
)


def diffusers_config(cfg: UNetConfig) -> dict:
    """The UNet2DConditionModel arguments describing the same network as ``cfg``."""
    levels = range(len(cfg.channel_mult))
    attn = [level in cfg.attention_levels for level in levels]
    return {
        "sample_size": 16,
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in attn[::-1]],
        "block_out_channels": [cfg.model_channels * m for m in cfg.channel_mult],
        "layers_per_block": cfg.num_res_blocks,
        "cross_attention_dim": cfg.context_dim,
        "attention_head_dim": cfg.num_heads,  # SD1 configs put the head count here
        "transformer_layers_per_block": cfg.transformer_depth,
        "norm_num_groups": 32,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
    }


def diffusers_twin(unet: UNetModel):
    """A diffusers UNet holding ``unet``'s weights, converted by diffusers' own converter."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    config = diffusers_config(unet.config)
    checkpoint = {UNET_PREFIX + k: v for k, v in unet.state_dict().items()}
    converted = convert_ldm_unet_checkpoint(checkpoint, config)
    twin = UNet2DConditionModel(**config)
    twin.load_state_dict(converted, strict=True)
    return twin.eval()


def inputs(cfg: UNetConfig, size: int = 16, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, cfg.in_channels, size, size, generator=gen)  # (B, C, h, w)
    t = torch.tensor([999.0, 37.5])  # (B,) fractional timesteps occur with k-diffusion samplers
    context = torch.randn(2, 77, cfg.context_dim, generator=gen)  # (B, T, D)
    return x, t, context


@pytest.mark.parametrize("inpainting", [False, True], ids=["txt2img", "inpainting"])
@torch.no_grad()
def test_matches_diffusers(inpainting: bool) -> None:
    unet = tiny_unet(seed=3, inpainting=inpainting)
    twin = diffusers_twin(unet)
    x, t, context = inputs(unet.config)
    ours = unet(x, t, context)
    theirs = twin(x, t, encoder_hidden_states=context).sample
    assert ours.shape == (2, 4, 16, 16)
    assert ours.std() > 0.1, "degenerate output: the parity check would prove nothing"
    assert (ours - theirs).abs().max().item() <= 1e-4


@torch.no_grad()
def test_output_depends_on_timestep_and_context() -> None:
    unet = tiny_unet()
    x, t, context = inputs(unet.config)
    base = unet(x, t, context)
    assert (unet(x, t.flip(0), context) - base).abs().max() > 1e-2
    assert (unet(x, t, context.flip(0)) - base).abs().max() > 1e-2
    # Batch items are independent: the first item does not see the second.
    assert torch.allclose(unet(x[:1], t[:1], context[:1]), base[:1], atol=1e-5)


def test_timestep_embedding_matches_sd_convention() -> None:
    from diffusers.models.embeddings import get_timestep_embedding

    t = torch.tensor([0.0, 1.0, 500.5, 999.0])
    ours = timestep_embedding(t, 320)  # (4, 320)
    assert torch.equal(ours[0, :160], torch.ones(160)), "cosines come first"
    assert torch.equal(ours[0, 160:], torch.zeros(160))
    theirs = get_timestep_embedding(t, 320, flip_sin_to_cos=True, downscale_freq_shift=0)
    assert (ours - theirs).abs().max() <= 1e-5


@torch.no_grad()
def test_checkpoint_loads_strictly_on_meta() -> None:
    sd = strip_prefix(tiny_sd1_state_dict(seed=5), UNET_PREFIX)
    with torch.device("meta"):
        unet = UNetModel(TINY_UNET)
    assert not list(unet.buffers()), "buffers absent from checkpoints would stay on meta"
    unet.load_state_dict(sd, strict=True, assign=True)
    x, t, context = inputs(TINY_UNET)
    assert torch.equal(unet(x, t, context), tiny_unet(seed=5)(x, t, context))
    del sd["out.2.bias"]
    with pytest.raises(RuntimeError, match="out.2.bias"):
        UNetModel(TINY_UNET).load_state_dict(sd, strict=True)


@torch.no_grad()
def test_odd_latent_sizes_and_scalar_timestep() -> None:
    unet = tiny_unet()
    x, _, context = inputs(unet.config)
    x = x[:, :, :9, :11]  # (B, 4, 9, 11): 36x44 pixels in the tiny model, not a power of 2
    eps = unet(x, torch.tensor(500.0), context)
    assert eps.shape == x.shape
    assert torch.isfinite(eps).all()


@torch.no_grad()
def test_deeper_transformer_matches_diffusers() -> None:
    cfg = dataclasses.replace(TINY_UNET, transformer_depth=2, num_res_blocks=1)
    with torch.device("meta"):
        unet = UNetModel(cfg)
    weights = random_weights(shapes_of(unet), seed=0)
    unet.load_state_dict(weights, strict=True, assign=True)
    twin = diffusers_twin(unet.eval())
    x, t, context = inputs(cfg, size=8)
    assert (
        unet(x, t, context) - twin(x, t, encoder_hidden_states=context).sample
    ).abs().max() <= 1e-4


@torch.no_grad()
def test_bfloat16_stays_close_to_float32() -> None:
    unet = tiny_unet()
    x, t, context = inputs(unet.config)
    ref = unet(x, t, context)
    low = unet.to(torch.bfloat16)(x.bfloat16(), t, context.bfloat16())
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().mean() < 0.05 * ref.abs().mean()
