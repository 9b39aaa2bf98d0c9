"""Tiled VAE decode and encode: the untiled picture, the "auto" rule, the float16 retry with
tiles, and the out-of-memory advice to turn tiling on."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

import engine.vae_memory as vae_memory
from engine import Engine, GenerationRequest, InvalidRequestError
from engine.errors import OutOfMemoryError
from engine.models.vae_tiling import tiled_decode, tiled_encode_moments, windows
from engine.pipeline import decode_with_fallback
from engine.validate import validate_request
from tests.factories import TINY_VAE, tiny_sd1_state_dict, tiny_vae, write_checkpoint

TILE = 16  # pixels per tile side at every layer: the tiny VAE's 160x96 picture needs 60 tiles


def psnr(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """Peak signal-to-noise ratio over the reference's range."""
    mse = float((ours - reference).double().square().mean())
    peak = float(reference.max() - reference.min())
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


@pytest.fixture(scope="module")
def vae():
    return tiny_vae(seed=2)


@torch.inference_mode()
def test_tiled_decode_equals_untiled(vae) -> None:
    # Two samples of different scale: GroupNorm statistics are per sample, not per batch.
    z = torch.randn(2, 4, 40, 24, generator=torch.Generator().manual_seed(0))
    z[1] *= 3.0
    untiled = vae.decode(z)  # (2, 3, 160, 96)
    tiled = tiled_decode(vae, z, tile=TILE)
    assert len(list(windows(160, 96, TILE))) == 60 and len(list(windows(40, 24, TILE))) == 6
    assert tiled.shape == untiled.shape == (2, 3, 160, 96)
    assert untiled.std() > 0.05
    assert psnr(tiled[0], untiled[0]) >= 40 and psnr(tiled[1], untiled[1]) >= 40
    # Tiles that normalise and attend on their own (diffusers' and ComfyUI's way) differ
    # visibly on this model: the global statistics above are what makes the difference.
    naive = torch.cat(
        [
            torch.cat([vae.decode(z[:, :, y : y + 8, x : x + 8]) for x in (0, 8, 16)], 3)
            for y in range(0, 40, 8)
        ],
        2,
    )
    assert psnr(naive[0], untiled[0]) < 40


@torch.inference_mode()
def test_tiled_encode_equals_untiled(vae) -> None:
    x = torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(1)) * 2 - 1
    mean, logvar = vae.encode_moments(x)  # (1, 4, 24, 40)
    tiled_mean, tiled_logvar = tiled_encode_moments(vae, x, tile=TILE)
    assert mean.shape == tiled_mean.shape == (1, 4, 24, 40)
    assert psnr(tiled_mean, mean) >= 40 and psnr(tiled_logvar, logvar) >= 40


@torch.inference_mode()
def test_odd_latent_sizes_and_tiles_that_do_not_divide(vae) -> None:
    z = torch.randn(1, 4, 13, 7, generator=torch.Generator().manual_seed(5))
    assert psnr(tiled_decode(vae, z, tile=10), vae.decode(z)) >= 40
    x = torch.rand(1, 3, 52, 28, generator=torch.Generator().manual_seed(6)) * 2 - 1
    assert psnr(tiled_encode_moments(vae, x, tile=10)[0], vae.encode(x)) >= 40


# --- the "auto" rule -------------------------------------------------------------------------

GB = 1 << 30


@pytest.mark.parametrize(
    "mode, untiled, available, tiled",
    [
        ("auto", 10 * GB, 16 * GB, True),  # more than half of what is free
        ("auto", 10 * GB, 32 * GB, False),
        ("auto", 1 * GB, None, False),  # memory unknown: tile above 4 GB
        ("auto", 5 * GB, None, True),
        ("on", 1, 64 * GB, True),
        ("off", 100 * GB, 1 * GB, False),
    ],
)
def test_decide_tiling(mode, untiled, available, tiled) -> None:
    assert vae_memory.decide_tiling(mode, untiled, available) is tiled


def test_estimates_follow_the_measured_peaks() -> None:
    """The figures of tests/benchmarks/vae_tiling.py on the full-size VAE in bfloat16."""
    full = vae_memory.VAEConfig()
    est = vae_memory.vae_peak_bytes
    untiled_2048 = est(full, 1, 2048, 2048, torch.bfloat16, tiled=False, scores_held=False)
    assert 8.6e9 < untiled_2048 < 11e9  # measured on the CPU: 8.62 GB
    # Where attention may hold all 65536² float32 scores (not the CPU), they are counted.
    assert est(full, 1, 2048, 2048, torch.bfloat16, tiled=False) == untiled_2048 + 16 * GB
    assert not vae_memory.scores_held_on(torch.device("cpu"))
    assert vae_memory.scores_held_on(torch.device("cuda"))
    # So on a CPU with 24 GB free, "auto" decodes 2048² untiled: 178 s against 382 s tiled.
    assert not vae_memory.decide_tiling("auto", untiled_2048, 24 * GB)
    assert vae_memory.decide_tiling("auto", untiled_2048, 16 * GB)
    tiled_2048 = est(full, 1, 2048, 2048, torch.bfloat16, tiled=True)
    assert 2.8e9 < tiled_2048 < 3.5e9  # measured: 3.07 GB
    assert 0.5e9 < est(full, 1, 512, 512, torch.bfloat16, tiled=False) < 0.8e9  # 0.65 GB
    # Tiled: linear in pixels and element size; width from the config (the tiny VAE: ch 32).
    assert est(full, 1, 1024, 1024, torch.bfloat16, tiled=True) * 4 == tiled_2048
    assert est(full, 1, 2048, 2048, torch.float32, tiled=True) == 2 * tiled_2048
    assert est(TINY_VAE, 1, 2048, 2048, torch.bfloat16, tiled=True) * 4 == tiled_2048


@pytest.fixture
def tiled_calls(monkeypatch) -> list[str]:
    """Records each tiled pass that engine.vae_memory starts."""
    calls: list[str] = []
    for name in ("tiled_decode", "tiled_encode"):
        real = getattr(vae_memory, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(vae_memory, name, spy)
    return calls


@torch.inference_mode()
def test_auto_decides_from_the_memory_at_hand(vae, monkeypatch, tiled_calls) -> None:
    z = torch.randn(1, 4, 16, 16)  # a 64x64 picture
    need = vae_memory.vae_peak_bytes(vae.config, 1, 64, 64, torch.float32, tiled=False)
    monkeypatch.setattr(vae_memory, "available_memory", lambda device: 4 * need)
    untiled = vae_memory.decode_latents(vae, z, "auto", tile=TILE)
    assert tiled_calls == []
    monkeypatch.setattr(vae_memory, "available_memory", lambda device: need)
    tiled = vae_memory.decode_latents(vae, z, "auto", tile=TILE)
    assert tiled_calls == ["tiled_decode"]
    assert psnr(tiled, untiled) >= 40
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    vae_memory.encode_pixels(vae, x, "auto", tile=TILE)
    assert tiled_calls == ["tiled_decode", "tiled_encode"]


def test_available_memory_on_the_cpu_is_plausible() -> None:
    free = vae_memory.available_memory(torch.device("cpu"))
    assert free is not None and 10 << 20 < free < 1 << 50


# --- float16 retry -----------------------------------------------------------------------------


@torch.inference_mode()
def test_float16_nan_is_retried_in_float32_with_tiles(tiled_calls) -> None:
    bundle = SimpleNamespace(vae=tiny_vae(seed=3).half(), vae_dtype=torch.float16)
    # Beyond float16's 65504: Inf in half precision, fine in float32 (the SD VAE's overflow).
    z = torch.randn(1, 4, 12, 20, generator=torch.Generator().manual_seed(7)) * 1e5
    image = decode_with_fallback(bundle, z, "on")  # type: ignore[arg-type]
    assert tiled_calls == ["tiled_decode", "tiled_decode"]  # half, then float32: both tiled
    assert bundle.vae_dtype == bundle.vae.decoder.conv_in.weight.dtype == torch.float32
    assert torch.isfinite(image).all()
    assert psnr(image, bundle.vae.decode(z)) >= 40


# --- requests, CLI, out of memory --------------------------------------------------------------


def _req(**kw) -> GenerationRequest:
    base = dict(prompt="a red barn", width=64, height=64, steps=1, seed=5, sampler="euler")
    return GenerationRequest(**{**base, **kw})


def test_unknown_tiling_mode_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="Unknown VAE tiling 'sometimes': choose one"):
        validate_request(_req(vae_tiling="sometimes"))


def test_cli_flag_reaches_the_request() -> None:
    from engine.cli import build_parser, requests_from_args

    parser = build_parser()
    args = parser.parse_args(["txt2img", "--prompt", "x", "--vae-tiling", "on"])
    assert requests_from_args(args, None)[0].vae_tiling == "on"
    args = parser.parse_args(["txt2img", "--prompt", "x"])
    assert requests_from_args(args, None)[0].vae_tiling == "auto"


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=4), path)
    eng = Engine(device="cpu", precision="full")
    eng.load_model(path)
    return eng


def test_pictures_and_previews_decode_through_tiles(engine, monkeypatch, tiled_calls) -> None:
    monkeypatch.setattr(vae_memory, "DEFAULT_TILE", TILE)  # several tiles on the tiny model
    req = _req(width=128, height=96, steps=2, preview_decode_every=1)
    previews: list = []
    tiled = engine.generate(
        replace(req, vae_tiling="on"),
        on_step=lambda e: previews.append(e.preview),
    )
    assert tiled_calls == ["tiled_decode"] * 3  # two previews, one picture
    assert all(p is not None and p.shape == (96, 128, 3) for p in previews)
    plain = engine.generate(replace(req, vae_tiling="off"))
    a, b = (r.images[0].image.astype(float) for r in (tiled, plain))
    assert abs(a - b).max() <= 1  # uint8 rounding at most


def _vae_decode_runs_out(engine, monkeypatch) -> None:
    def decode(self, z):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    monkeypatch.setattr(type(engine._bundle.vae), "decode", decode)


def test_oom_in_an_untiled_decode_advises_tiling_which_then_fits(engine, monkeypatch) -> None:
    _vae_decode_runs_out(engine, monkeypatch)
    req = _req(width=128, height=64, vae_tiling="off")
    with pytest.raises(OutOfMemoryError) as caught:
        engine.generate(req)
    message = str(caught.value)
    assert message.startswith("Out of memory at 128x64. Try 88x64")  # the advice as before
    assert "turn VAE tiling on (--vae-tiling on" in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    # Following the advice: the same size, tiled, never calls the untiled decode.
    result = engine.generate(replace(req, vae_tiling="on"))
    assert result.images[0].image.shape == (64, 128, 3)


def test_auto_retries_an_untiled_decode_that_runs_out_in_tiles(
    engine, monkeypatch, tiled_calls
) -> None:
    _vae_decode_runs_out(engine, monkeypatch)
    result = engine.generate(_req(width=128, height=64))  # "auto", a small picture: untiled
    assert tiled_calls == ["tiled_decode"]
    assert result.images[0].image.shape == (64, 128, 3)


def test_no_tiling_advice_when_tiles_would_not_fit_either(engine, monkeypatch) -> None:
    _vae_decode_runs_out(engine, monkeypatch)
    monkeypatch.setattr(vae_memory, "available_memory", lambda device: 1024)
    with pytest.raises(OutOfMemoryError) as caught:
        engine.generate(_req(width=128, height=64, vae_tiling="off"))
    assert "VAE tiling" not in str(caught.value) and "Try 88x64" in str(caught.value)


def test_no_tiling_advice_when_tiling_was_on_or_sampling_ran_out(engine, monkeypatch) -> None:
    def tiled_oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(vae_memory, "tiled_decode", tiled_oom)
    with pytest.raises(OutOfMemoryError) as caught:
        engine.generate(_req(width=128, height=64, vae_tiling="on"))
    assert "VAE tiling" not in str(caught.value)
    unet_type = type(engine._bundle.unet)
    monkeypatch.setattr(unet_type, "forward", tiled_oom)
    with pytest.raises(OutOfMemoryError) as caught:
        engine.generate(_req(width=128, height=64, vae_tiling="off"))
    assert "VAE tiling" not in str(caught.value)
