"""Multi-head attention, named as in the CompVis checkpoints (to_q, to_k, to_v, to_out.0)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def multihead_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int
) -> torch.Tensor:
    """Scaled dot-product attention over token sequences, split into ``heads`` heads.

    q is (B, Tq, C), k and v are (B, Tk, C); the result is (B, Tq, C). The scale is the usual
    1/sqrt(head size), which is what scaled_dot_product_attention applies by default.
    """
    b, tq, c = q.shape
    hs = c // heads
    q = q.view(b, tq, heads, hs).transpose(1, 2)  # (B, nh, Tq, hs)
    k = k.view(b, k.shape[1], heads, hs).transpose(1, 2)  # (B, nh, Tk, hs)
    v = v.view(b, v.shape[1], heads, hs).transpose(1, 2)  # (B, nh, Tk, hs)
    out = F.scaled_dot_product_attention(q, k, v)  # (B, nh, Tq, hs)
    return out.transpose(1, 2).reshape(b, tq, c)  # (B, Tq, C)


class CrossAttention(nn.Module):
    """Self-attention when ``context`` is None, else attention from ``x`` to ``context``.

    q, k and v have no bias in SD checkpoints; the output projection does. ``to_out`` is a
    Sequential (Linear, Dropout) only so that its Linear is named ``to_out.0`` as in the files.
    """

    def __init__(self, dim: int, context_dim: int | None, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        kv_dim = dim if context_dim is None else context_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(kv_dim, dim, bias=False)
        self.to_v = nn.Linear(kv_dim, dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        source = x if context is None else context  # (B, Tk, kv_dim)
        q = self.to_q(x)  # (B, Tq, C)
        k = self.to_k(source)  # (B, Tk, C)
        v = self.to_v(source)  # (B, Tk, C)
        return self.to_out(multihead_attention(q, k, v, self.heads))  # (B, Tq, C)
