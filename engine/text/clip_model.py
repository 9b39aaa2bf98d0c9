"""The CLIP text transformer (OpenAI's ViT-L/14 text tower, SD1's text encoder), in plain PyTorch.

Attribute names are the checkpoint's own (``embeddings.token_embedding.weight``,
``encoder.layers.0.self_attn.q_proj.weight``, ``final_layer_norm.bias`` under
``cond_stage_model.transformer.text_model.``, as transformers >= 5.6 names them too), so the
weights load with ``load_state_dict(strict=True)`` and LoRAs find their layers by those names.

Our own module rather than transformers' ``CLIPTextModel``: importing that one pulls in
transformers' whole model machinery (torch._dynamo, torch.distributed, scipy, sympy), about
2.5 s of every start-up on a 2-core CPU, for some 60 lines of model. The computation is the
same: pre-norm layers with causal self-attention and a QuickGELU MLP, then a final layer norm
(Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision";
parity with transformers is tested in tests/engine/test_text_encoder.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ClipTextConfig:
    """Field names as transformers' CLIPTextConfig, so tests can build its model alike."""

    vocab_size: int = 49408
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"  # OpenAI CLIP; OpenCLIP models use "gelu"
    layer_norm_eps: float = 1e-5
    bos_token_id: int = 49406
    eos_token_id: int = 49407
    pad_token_id: int = 49407


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """OpenAI CLIP's GELU approximation: x * sigmoid(1.702 x)."""
    return x * torch.sigmoid(1.702 * x)


Activation = Callable[[torch.Tensor], torch.Tensor]
ACTIVATIONS: dict[str, Activation] = {"quick_gelu": quick_gelu, "gelu": F.gelu}


def _embedding(count: int, width: int) -> nn.Embedding:
    """nn.Embedding, without its random init on the meta device: there ``normal_`` goes through
    torch's Python reference implementation, whose first use imports torch._dynamo — 1.9 s of
    every model load, for weights the checkpoint replaces anyway. Elsewhere: nn.Embedding's own
    init, N(0, 1)."""
    weight = torch.empty(count, width)  # the device of the surrounding torch.device context
    if weight.device.type != "meta":
        nn.init.normal_(weight)
    return nn.Embedding(count, width, _weight=weight)


class ClipEmbeddings(nn.Module):
    def __init__(self, c: ClipTextConfig) -> None:
        super().__init__()
        self.token_embedding = _embedding(c.vocab_size, c.hidden_size)
        self.position_embedding = _embedding(c.max_position_embeddings, c.hidden_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)  # (T,)
        return self.token_embedding(ids) + self.position_embedding(positions)  # (N, T, D)


class ClipAttention(nn.Module):
    def __init__(self, c: ClipTextConfig) -> None:
        super().__init__()
        d = c.hidden_size
        self.heads = c.num_attention_heads
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        projections = (self.q_proj, self.k_proj, self.v_proj)
        q, k, v = (p(x).view(n, t, self.heads, -1).transpose(1, 2) for p in projections)
        # (N, heads, T, D/heads); causal: a token sees only the tokens before it.
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(out.transpose(1, 2).reshape(n, t, d))  # (N, T, D)


class ClipMLP(nn.Module):
    def __init__(self, c: ClipTextConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.fc2 = nn.Linear(c.intermediate_size, c.hidden_size)
        self.activation: Activation = ACTIVATIONS[c.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))


class ClipEncoderLayer(nn.Module):
    def __init__(self, c: ClipTextConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.self_attn = ClipAttention(c)
        self.layer_norm2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.mlp = ClipMLP(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))  # (N, T, D)


class ClipEncoder(nn.Module):
    def __init__(self, c: ClipTextConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ClipEncoderLayer(c) for _ in range(c.num_hidden_layers))


class ClipTextModel(nn.Module):
    """Token ids -> hidden states. ``hidden_states`` gives each layer's output, as CLIP skip
    needs; ``forward`` the last one after the final layer norm."""

    def __init__(self, config: ClipTextConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = ClipEmbeddings(config)
        self.encoder = ClipEncoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding (a forward hook on it splices textual-inversion vectors in)."""
        return self.embeddings.token_embedding

    def hidden_states(self, ids: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        """(N, T) token ids -> (N, T, D): the output of layer ``layers`` (default: the last),
        before the final layer norm; layers after it are not run."""
        x = self.embeddings(ids)  # (N, T, D)
        for layer in self.encoder.layers[:layers]:
            x = layer(x)
        return x

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.final_layer_norm(self.hidden_states(ids))  # (N, T, D)
