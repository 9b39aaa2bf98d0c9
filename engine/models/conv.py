"""The UNet's convolution: at its smallest levels on a CPU, one matrix product instead.

At 8x8 latent pixels or fewer (a 256² picture's two lowest levels, a 512² picture's lowest) a
3x3 convolution has few outputs and a large weight (2560 -> 1280 channels: 59 MB in bfloat16).
oneDNN's direct convolution is slow there; gathering the nine shifted inputs (im2col) and
multiplying once is not. Measured on a 2-core AMD EPYC, 8x8, best of 7, three repeats: SD1's
layers there (1280 outputs) take 0.36-0.81 of the convolution's time at batch 1-2 in bfloat16
(float32 0.46-0.69), about the same at batch 8 (0.93-1.04); only 64-channel layers, which only
the built-in demo's small UNet has, lose (1.29-1.45x; its guided step 14.4 -> 15.2 ms in
bfloat16, 13.7 -> 12.1 ms in float32: not worth a second rule). From 32x32 up the convolution
wins (the product takes 1.07-1.6x), so the line is drawn at 8x8. A whole guided SD1.5 step
(tests/benchmarks/small_convs.py): 256² 1.385 -> 1.207 s (float32 3.410 -> 2.574 s), 512²
5.914 -> 5.883 s. The result is the same sum in another order: in float32 the guided denoised
x0 lies 1.9e-4 from the convolution path's, closer than that path lies to diffusers' (2.5e-4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SMALL_PIXELS = 64  # at most this many output pixels per image (H * W) take the product


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` with the same weights and keys; small CPU inputs go through one GEMM."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._as_product(x):
            return conv_as_product(x, self.weight, self.bias)
        return super().forward(x)

    def _as_product(self, x: torch.Tensor) -> bool:
        return (
            x.device.type == "cpu"
            and x.dim() == 4
            and x.shape[2] * x.shape[3] <= SMALL_PIXELS
            and self.stride == (1, 1)
            and self.dilation == (1, 1)
            and self.groups == 1
            and self.padding_mode == "zeros"
            and (self.kernel_size, self.padding) in (((1, 1), (0, 0)), ((3, 3), (1, 1)))
        )


def conv_as_product(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """A stride-1 "same" convolution (1x1, or 3x3 padded by 1) as one matrix product.

    The columns are laid out (kernel row, kernel column, channel): the order of a channels-last
    weight's memory, so the weight is used where it lies (the engine's CPU layout, see
    ``engine.loading.build.conv_layout``). The output comes back channels-last.
    """
    n, c, h, w = x.shape
    out_channels, _, kh, _ = weight.shape
    pixels = x.permute(0, 2, 3, 1)  # (N, H, W, C)
    if kh == 3:
        padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (N, H+2, W+2, C)
        shifted = [padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)]
        pixels = torch.stack(shifted, dim=3)  # (N, H, W, 9, C)
    columns = pixels.reshape(n * h * w, kh * kh * c)  # (N*H*W, 9C or C)
    matrix = weight.permute(0, 2, 3, 1).reshape(out_channels, -1)  # (Cout, 9C or C)
    if bias is None:
        out = columns @ matrix.t()  # (N*H*W, Cout)
    else:
        out = torch.addmm(bias, columns, matrix.t())  # (N*H*W, Cout)
    return out.view(n, h, w, out_channels).permute(0, 3, 1, 2)  # (N, Cout, H, W) channels-last
