"""The CLIP text encoder (``engine.text.clip_model``), loaded from a checkpoint's tensors.

The model is built on the meta device and the checkpoint tensors are assigned to it, so the
weights are never held twice and no time goes to random initialisation. Checkpoints name the
tensors ``text_model.embeddings...`` (transformers 4.x layout, most SD1 files) or
``embeddings...`` (some SD1 files, transformers >= 5.6); both load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from engine.errors import CorruptCheckpointError, InvalidRequestError, MissingComponentError
from engine.text.clip_model import ClipTextConfig, ClipTextModel
from engine.text.tokenizer import END_ID, START_ID, ClipTokenizer, get_tokenizer

WRAPPER_PREFIX = "text_model."
HEAD_DIM = 64  # CLIP text transformers use 64-wide attention heads
_LAYER_KEY = re.compile(r"encoder\.layers\.(\d+)\.")


def _flat_key(key: str) -> str:
    return key.removeprefix(WRAPPER_PREFIX)


def text_config_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> ClipTextConfig:
    """A ClipTextConfig matching tensor shapes (keys with or without ``text_model.``)."""
    flat = {_flat_key(k): tuple(v) for k, v in shapes.items()}
    try:
        vocab, hidden = flat["embeddings.token_embedding.weight"]
        positions, _ = flat["embeddings.position_embedding.weight"]
        intermediate, _ = flat["encoder.layers.0.mlp.fc1.weight"]
    except KeyError as e:
        raise MissingComponentError(f"The text encoder is incomplete: no tensor {e}.") from e
    except ValueError as e:  # a tensor of the wrong rank
        raise CorruptCheckpointError(f"The text encoder's tensors have odd shapes: {e}.") from e
    layers = 1 + max(int(m.group(1)) for k in flat if (m := _LAYER_KEY.match(k)))
    return ClipTextConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // HEAD_DIM, 1),
        max_position_embeddings=positions,
        hidden_act="quick_gelu",  # SD1's ViT-L/14 (OpenAI CLIP) uses QuickGELU
        layer_norm_eps=1e-5,
        bos_token_id=START_ID,
        eos_token_id=END_ID,
        pad_token_id=END_ID,
    )


def normalise_keys(
    state_dict: Mapping[str, torch.Tensor], wrapped: bool
) -> dict[str, torch.Tensor]:
    """Rename keys to one layout, ``text_model.*`` (``wrapped``: transformers < 5.6) or flat
    (ours, transformers >= 5.6); drop ``position_ids``."""
    prefix = WRAPPER_PREFIX if wrapped else ""
    return {
        prefix + _flat_key(k): v for k, v in state_dict.items() if not k.endswith("position_ids")
    }


def _load(model: ClipTextModel, state_dict: dict[str, torch.Tensor]) -> None:
    expected = set(model.state_dict())
    missing, unexpected = expected - set(state_dict), set(state_dict) - expected
    if missing or unexpected:
        raise CorruptCheckpointError(
            "The text encoder's tensors do not match CLIP ViT-L/14: "
            f"missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}."
        )
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as e:  # shape mismatch between tensors of the same file
        raise CorruptCheckpointError(f"The text encoder's tensors are inconsistent: {e}") from e


def _check_materialised(model: nn.Module) -> None:
    left = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:  # a model change added state this loader does not know about
        raise RuntimeError(f"text encoder tensors left on the meta device: {left}")


class TextEncoder:
    """Prompt text -> CLIP hidden states, the UNet's cross-attention context."""

    def __init__(self, model: ClipTextModel, tokenizer: ClipTokenizer | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer or get_tokenizer()

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        *,
        prefix: str = "",
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        tokenizer: ClipTokenizer | None = None,
    ) -> TextEncoder:
        """Load the tensors under ``prefix`` (e.g. ``cond_stage_model.transformer.``)."""
        device = torch.device(device)
        own = {k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)}
        config = text_config_from_shapes({k: tuple(v.shape) for k, v in own.items()})
        with torch.device("meta"):
            model = ClipTextModel(config)
        tensors = normalise_keys(own, wrapped=False)
        # Converting first means assign=True stores the tensors we pass, once, in the run dtype.
        tensors = {k: v.to(device=device, dtype=dtype) for k, v in tensors.items()}
        _load(model, tensors)
        _check_materialised(model)
        return cls(model, tokenizer)

    @property
    def device(self) -> torch.device:
        return self.model.final_layer_norm.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.final_layer_norm.weight.dtype

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    @torch.no_grad()
    def encode(self, token_rows: torch.Tensor, clip_skip: int = 1) -> torch.Tensor:
        """(N, 77) token ids -> (N, 77, hidden) states.

        clip_skip=1 is the final layer after the final layer norm; clip_skip=k takes the output
        of the k-th layer from the end and applies the final layer norm to it (A1111's way).
        """
        if not 1 <= clip_skip <= self.num_layers:
            raise InvalidRequestError(
                f"CLIP skip must be between 1 and {self.num_layers}, not {clip_skip}."
            )
        ids = token_rows.to(self.device)  # (N, 77)
        # Layers after the one CLIP skip takes are not run at all.
        states = self.model.hidden_states(ids, layers=self.num_layers + 1 - clip_skip)
        return self.model.final_layer_norm(states)  # (N, 77, D)

    def encode_prompts(
        self, prompt: str, negative: str = "", clip_skip: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond, uncond), each (1, 77 * chunks, hidden): the guidance broadcasts them.

        Prompts longer than 75 tokens are encoded in 75-token chunks whose states are joined
        along the sequence; the shorter prompt gets empty-prompt chunks so both have the same
        length, as classifier-free guidance batches them together.
        """
        cond_rows = self.tokenizer.chunk_ids(prompt)
        uncond_rows = self.tokenizer.chunk_ids(negative)
        chunks = max(len(cond_rows), len(uncond_rows))
        empty = self.tokenizer.chunk_ids("")[0]
        cond_rows += [empty] * (chunks - len(cond_rows))
        uncond_rows += [empty] * (chunks - len(uncond_rows))
        rows = torch.tensor(cond_rows + uncond_rows, dtype=torch.long)  # (2C, 77)
        states = self.encode(rows, clip_skip)  # (2C, 77, D)
        joined = states.reshape(2, chunks * states.shape[1], states.shape[2])  # (2, 77C, D)
        return joined[0:1], joined[1:2]  # (1, 77C, D) each
