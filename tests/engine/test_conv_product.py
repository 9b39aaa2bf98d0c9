"""The UNet's small-input convolution path (im2col + one GEMM) against torch's convolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.models import conv as conv_module
from engine.models.conv import SMALL_PIXELS, Conv2d

CL = torch.channels_last


def layer(c_in: int, c_out: int, kernel: int, bias: bool = True, stride: int = 1) -> Conv2d:
    torch.manual_seed(c_in * 31 + kernel)
    return Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=bias).eval()


def reference(module: Conv2d, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, module.weight, module.bias, module.stride, module.padding)


@pytest.fixture
def products(monkeypatch) -> list[tuple[int, ...]]:
    """The input shapes that went through the product path."""
    taken: list[tuple[int, ...]] = []
    real = conv_module.conv_as_product

    def spy(x, weight, bias):
        taken.append(tuple(x.shape))
        return real(x, weight, bias)

    monkeypatch.setattr(conv_module, "conv_as_product", spy)
    return taken


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("hw", [(1, 1), (4, 4), (8, 8), (3, 5)])
@pytest.mark.parametrize("layout", [CL, torch.contiguous_format])
def test_small_inputs_take_the_product_and_match(products, kernel, bias, hw, layout) -> None:
    module = layer(24, 40, kernel, bias).to(memory_format=CL)
    x = torch.randn(2, 24, *hw).contiguous(memory_format=layout)
    with torch.no_grad():
        out = module(x)
        want = reference(module, x)
    assert products == [tuple(x.shape)]
    assert out.shape == want.shape
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=CL)  # the engine's CPU layout carries on


def test_contiguous_weights_give_the_same_answer(products) -> None:
    module = layer(16, 8, 3)  # weights in the default layout (a test or a patched LoRA)
    x = torch.randn(1, 16, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(module, x), rtol=1e-5, atol=1e-5)
    assert products


def test_bfloat16_stays_within_its_rounding(products) -> None:
    module = layer(64, 64, 3).to(dtype=torch.bfloat16, memory_format=CL)
    x = torch.randn(2, 64, 8, 8).to(torch.bfloat16).contiguous(memory_format=CL)
    with torch.no_grad():
        out = module(x).float()
        exact = reference(module.float(), x.float())
    assert products
    # One bfloat16 rounding of the output: 2^-8 of its size, and no more.
    assert ((out - exact).abs() <= exact.abs() * 2**-8 + 1e-3).all()


def test_larger_strided_and_grouped_convolutions_stay_convolutions(products) -> None:
    side = int(SMALL_PIXELS**0.5) * 2  # more output pixels than the product is for
    cases = [
        (layer(8, 8, 3), torch.randn(1, 8, side, side)),
        (layer(8, 8, 3, stride=2), torch.randn(1, 8, 8, 8)),
        (Conv2d(8, 8, 3, padding=1, groups=2), torch.randn(1, 8, 4, 4)),
        (Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), torch.randn(1, 8, 4, 4)),
        (Conv2d(8, 8, 5, padding=2), torch.randn(1, 8, 4, 4)),
    ]
    with torch.no_grad():
        for module, x in cases:
            want = F.conv2d(
                F.pad(x, (1,) * 4, mode="reflect") if module.padding_mode == "reflect" else x,
                module.weight,
                module.bias,
                module.stride,
                0 if module.padding_mode == "reflect" else module.padding,
                groups=module.groups,
            )
            torch.testing.assert_close(module(x), want)
    assert products == []


def test_gradients_match_the_convolution() -> None:
    # The demo model trains through this path (its 64-pixel pictures have 8x8 latents).
    module = layer(6, 10, 3)
    x = torch.randn(2, 6, 4, 4, requires_grad=True)
    module(x).square().sum().backward()
    got = (x.grad.clone(), module.weight.grad.clone(), module.bias.grad.clone())
    x.grad = module.weight.grad = module.bias.grad = None
    reference(module, x).square().sum().backward()
    for a, b in zip(got, (x.grad, module.weight.grad, module.bias.grad), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_the_unet_uses_it_and_keeps_its_keys() -> None:
    from engine.models.unet import UNetModel
    from tests.factories import TINY_UNET

    unet = UNetModel(TINY_UNET)
    convs = [m for m in unet.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(isinstance(m, Conv2d) for m in convs)
    assert "input_blocks.0.0.weight" in unet.state_dict()
