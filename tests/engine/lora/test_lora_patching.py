"""Weights patched with W + m * scale * up @ down (float32, rounded once) and restored exactly."""

import pytest
import torch
from torch import nn

from engine.lora.formats import LoraLayer
from engine.lora.patcher import Update, WeightPatcher, fits
from engine.lora.targets import Target


def _modules(dtype: torch.dtype) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    linear = nn.Linear(8, 6).to(dtype)
    conv = nn.Conv2d(4, 6, 3).to(dtype=dtype, memory_format=torch.channels_last)
    return {"linear": linear.requires_grad_(False), "conv": conv.requires_grad_(False)}


def _layer(weight: torch.Tensor, seed: int, scale: float = 0.5) -> LoraLayer:
    gen = torch.Generator().manual_seed(seed)
    rank = 3
    down = torch.randn(rank, *weight.shape[1:], generator=gen)  # a 3x3 down for the conv
    up = torch.randn(weight.shape[0], rank, *((1, 1) if weight.dim() == 4 else ()), generator=gen)
    return LoraLayer("unet", "x", True, down, up, scale)


def _wanted(modules, updates_by_name):
    return {
        name: (Target(name, modules[name]), updates) for name, updates in updates_by_name.items()
    }


def _expected(original: torch.Tensor, *parts: tuple[LoraLayer, float]) -> torch.Tensor:
    """The float32 formula, rounded once to the weight's dtype."""
    value = original.float()
    for layer, multiplier in parts:
        delta = layer.up.flatten(1) @ layer.down.flatten(1)
        value = value + delta.reshape(original.shape) * (layer.scale * multiplier)
    return value.to(original.dtype)


def _assert_patched(weight: torch.Tensor, expected: torch.Tensor, terms: float) -> None:
    """Equal up to the rounding of float32 sums (a fused multiply-add rounds differently, by a
    few float32 units of the terms' size) and then one unit in the last place of the dtype."""
    assert weight.dtype == expected.dtype
    f32 = torch.finfo(torch.float32).eps * 8 * terms
    allowed = torch.finfo(weight.dtype).eps * expected.float().abs() + f32
    assert ((weight.float() - expected.float()).abs() <= allowed).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("offload", [False, True])
def test_apply_then_remove_restores_the_weights_bit_for_bit(dtype, offload):
    modules = _modules(dtype)
    before = {n: m.weight.detach().clone() for n, m in modules.items()}
    layers = {n: _layer(m.weight, seed=i) for i, (n, m) in enumerate(modules.items())}
    patcher = WeightPatcher(offload=offload)
    updates = {n: [Update(("a", n), 0.8, la)] for n, la in layers.items()}
    assert patcher.set(_wanted(modules, updates)) == 2
    for name, module in modules.items():
        expected = _expected(before[name], (layers[name], 0.8))
        _assert_patched(module.weight, expected, terms=10.0)
        assert not torch.equal(module.weight, before[name])
    assert modules["conv"].weight.is_contiguous(memory_format=torch.channels_last)
    assert patcher.kept_bytes == sum(t.numel() * t.element_size() for t in before.values())
    patcher.clear()
    for name, module in modules.items():
        assert torch.equal(module.weight, before[name])
        assert module.weight.dtype == dtype
    assert patcher.patched == 0 and patcher.kept_bytes == 0


def test_the_original_tensor_is_never_written_on_the_cpu():
    """It may be a page of the memory-mapped checkpoint: patched values go to a new tensor and
    the original object comes back on removal."""
    modules = _modules(torch.float32)
    original = modules["linear"].weight.data
    copy = original.clone()
    patcher = WeightPatcher(offload=False)
    layer = _layer(original, seed=1)
    patcher.set(_wanted(modules, {"linear": [Update("a", 1.0, layer)]}))
    assert modules["linear"].weight.data_ptr() != original.data_ptr()
    assert torch.equal(original, copy)
    patcher.clear()
    assert modules["linear"].weight.data_ptr() == original.data_ptr()


def test_two_loras_add_and_an_unchanged_request_touches_nothing():
    modules = _modules(torch.bfloat16)
    before = modules["linear"].weight.detach().clone()
    a, b = _layer(before, seed=1), _layer(before, seed=2, scale=2.0)
    patcher = WeightPatcher()
    both = {"linear": [Update("a", 0.8, a), Update("b", -0.5, b)]}
    assert patcher.set(_wanted(modules, both)) == 1
    _assert_patched(modules["linear"].weight, _expected(before, (a, 0.8), (b, -0.5)), 20.0)
    pointer = modules["linear"].weight.data_ptr()
    assert patcher.set(_wanted(modules, both)) == 0  # same LoRAs, same weights: nothing done
    assert modules["linear"].weight.data_ptr() == pointer
    # A new weight for one LoRA recomputes from the original, not from the patched value.
    assert patcher.set(_wanted(modules, {"linear": [Update("a", 0.3, a)]})) == 1
    _assert_patched(modules["linear"].weight, _expected(before, (a, 0.3)), 10.0)
    assert patcher.computed == 2


def test_a_lora_layer_fits_only_its_shape():
    modules = _modules(torch.float32)
    conv, linear = modules["conv"].weight, modules["linear"].weight
    assert fits(_layer(conv, 0), conv) and fits(_layer(linear, 0), linear)
    assert not fits(_layer(linear, 0), conv)
    wide_up = LoraLayer("unet", "x", True, torch.zeros(3, 4, 3, 3), torch.zeros(6, 3, 3, 3), 1.0)
    assert not fits(wide_up, conv)  # only 1x1 ups: (out, r, 3, 3) is no LoCon
    as_conv = nn.Conv2d(8, 6, 1).weight  # a linear update on a 1x1 conv, as A1111 allows
    assert fits(_layer(linear, 0), as_conv)
