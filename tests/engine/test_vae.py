"""The VAE against diffusers' AutoencoderKL on the same tiny random weights."""

from __future__ import annotations

import pytest
import torch

from engine.models.vae import AutoencoderKL, VAEConfig
from tests.factories import (
    TINY_VAE,
    VAE_PREFIX,
    strip_prefix,
    tiny_sd1_state_dict,
    tiny_vae,
)


def diffusers_config(cfg: VAEConfig) -> dict:
    levels = len(cfg.ch_mult)
    return {
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "down_block_types": ["DownEncoderBlock2D"] * levels,
        "up_block_types": ["UpDecoderBlock2D"] * levels,
        "block_out_channels": [cfg.ch * m for m in cfg.ch_mult],
        "layers_per_block": cfg.num_res_blocks,
        "latent_channels": cfg.z_channels,
        "norm_num_groups": 32,
        "sample_size": 64,
    }


@pytest.fixture(scope="module")
def pair():
    """Our tiny VAE and a diffusers twin converted by diffusers' own single-file converter."""
    from diffusers import AutoencoderKL as DiffusersAutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    vae = tiny_vae(seed=2)
    config = diffusers_config(vae.config)
    checkpoint = {VAE_PREFIX + k: v for k, v in vae.state_dict().items()}
    twin = DiffusersAutoencoderKL(**config)
    twin.load_state_dict(convert_ldm_vae_checkpoint(checkpoint, config), strict=True)
    return vae, twin.eval()


def images(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1  # (B, 3, H, W) in [-1, 1]


def close(ours: torch.Tensor, theirs: torch.Tensor, tol: float = 1e-4) -> bool:
    """Absolute 1e-4 for values of order 1, relative beyond that."""
    scale = max(1.0, theirs.abs().max().item())
    return (ours - theirs).abs().max().item() <= tol * scale


@torch.no_grad()
def test_encode_matches_diffusers_mean(pair) -> None:
    vae, twin = pair
    x = images()
    mean = vae.encode(x)
    assert mean.shape == (2, 4, 16, 16)  # the tiny VAE downscales by 4
    assert mean.std() > 0.05
    assert close(mean, twin.encode(x).latent_dist.mean)


@torch.no_grad()
def test_encode_moments_match_diffusers_logvar(pair) -> None:
    vae, twin = pair
    x = images(1)
    mean, logvar = vae.encode_moments(x)
    dist = twin.encode(x).latent_dist
    assert close(mean, dist.mean)
    assert close(logvar, dist.logvar)


@torch.no_grad()
def test_decode_matches_diffusers(pair) -> None:
    vae, twin = pair
    z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(3))
    ours = vae.decode(z)
    assert ours.shape == (2, 3, 64, 64)
    assert ours.std() > 0.05
    assert close(ours, twin.decode(z).sample)


@torch.no_grad()
def test_linear_attention_weights_load_strictly() -> None:
    """Some files store the mid-block attention's 1x1 convs as [C, C] matrices."""
    sd = strip_prefix(tiny_sd1_state_dict(seed=4), VAE_PREFIX)
    flattened = {
        k: (v[:, :, 0, 0] if ".attn_1." in k and v.dim() == 4 else v) for k, v in sd.items()
    }
    assert flattened["decoder.mid.attn_1.q.weight"].shape == (64, 64)
    with torch.device("meta"):
        vae = AutoencoderKL(TINY_VAE)
    vae.load_state_dict(flattened, strict=True, assign=True)
    assert vae.decoder.mid.attn_1.q.weight.shape == (64, 64, 1, 1)
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(vae.decode(z), tiny_vae(seed=4).decode(z))


def test_full_size_has_no_buffers_and_upscales_by_8() -> None:
    with torch.device("meta"):
        vae = AutoencoderKL(VAEConfig())
    assert not list(vae.buffers())
    z = vae.decode(torch.empty(1, 4, 8, 8, device="meta"))
    assert z.shape == (1, 3, 64, 64)
