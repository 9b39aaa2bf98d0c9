"""Prompt texts -> CLIP states with emphasis weights and textual-inversion vectors (A1111's way).

Each text is cut into 77-position chunks (``engine.prompts.tokens.chunk_prompt``); every text is
padded with empty-prompt chunks to the longest, so that all can be batched for guidance. All
chunks of all texts go through the text encoder in one batch, in text order, so a prompt without
syntax gives exactly the states that ``TextEncoder.encode_prompts`` gives.

- Embeddings: their vectors replace the token embeddings at their positions, before the position
  embeddings are added and the transformer runs (A1111's ``EmbeddingsWithFixes``).
- Emphasis: the states of a chunk are multiplied by their tokens' weights, then the chunk is
  rescaled so that its mean is the unweighted mean (A1111's default "Original" emphasis). A1111
  takes that mean over the batch of texts encoded together (the variants of an edited prompt);
  here over each chunk of each text, so a variant does not depend on the others. Chunks whose
  weights are all 1 are left untouched, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch

from engine.prompts.tokens import (
    COMMA_BACKTRACK,
    EMPTY_CHUNK,
    EmbeddingNames,
    PromptChunk,
    chunk_prompt,
)
from engine.text.embeddings import Embedding
from engine.text.encoder import TextEncoder


def chunk_texts(
    encoder: TextEncoder,
    texts: Sequence[str],
    embeddings: Mapping[str, Embedding],
    comma_backtrack: int = COMMA_BACKTRACK,
) -> list[list[PromptChunk]]:
    """The chunks of each text, padded with empty chunks to the same count."""
    names = EmbeddingNames({n: e.count for n, e in embeddings.items()}, encoder.tokenizer)
    chunked = [
        chunk_prompt(t, names, tokenizer=encoder.tokenizer, comma_backtrack=comma_backtrack)[0]
        for t in texts
    ]
    count = max(len(chunks) for chunks in chunked)
    return [chunks + [EMPTY_CHUNK] * (count - len(chunks)) for chunks in chunked]


@torch.no_grad()
def encode_weighted(
    encoder: TextEncoder,
    texts: Sequence[str],
    embeddings: Mapping[str, Embedding] | None = None,
    clip_skip: int = 1,
    comma_backtrack: int = COMMA_BACKTRACK,
) -> list[torch.Tensor]:
    """One (1, 77 * chunks, hidden) tensor per text, all with the same number of chunks.

    ``texts`` carry emphasis and BREAK but no extra-network tags and no scheduling;
    ``embeddings``: the embeddings whose names may occur in them (by name).
    """
    embeddings = embeddings or {}
    per_text = chunk_texts(encoder, texts, embeddings, comma_backtrack)
    flat = [chunk for chunks in per_text for chunk in chunks]
    rows = torch.tensor([chunk.tokens for chunk in flat], dtype=torch.long)  # (N*C, 77)
    with _spliced(encoder, flat, embeddings):
        states = encoder.encode(rows, clip_skip)  # (N*C, 77, D)
    states = _weighted(states, flat)
    n, chunks = len(texts), len(per_text[0])
    joined = states.reshape(n, chunks * states.shape[1], states.shape[2])  # (N, 77C, D)
    return [joined[i : i + 1] for i in range(n)]


@contextmanager
def _spliced(
    encoder: TextEncoder, chunks: Sequence[PromptChunk], embeddings: Mapping[str, Embedding]
) -> Iterator[None]:
    """While encoding, write each embedding's vectors over the token embeddings of its place."""
    fixes = [
        (row, position, embeddings[name].vectors)
        for row, chunk in enumerate(chunks)
        for position, name in chunk.embeddings
    ]
    if not fixes:
        yield
        return

    def splice(_module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()  # (N*C, 77, D)
        for row, position, vectors in fixes:
            output[row, position : position + vectors.shape[0]] = vectors.to(output)
        return output

    handle = encoder.model.get_input_embeddings().register_forward_hook(splice)
    try:
        yield
    finally:
        handle.remove()


def _weighted(states: torch.Tensor, chunks: Sequence[PromptChunk]) -> torch.Tensor:
    """Multiply by the weights, then restore each weighted chunk's mean (A1111's "Original")."""
    if not any(chunk.weighted for chunk in chunks):
        return states
    rows = []
    for row, chunk in zip(states, chunks, strict=True):  # row: (77, D)
        if chunk.weighted:
            weights = torch.tensor(chunk.weights, dtype=torch.float32, device=row.device)
            z = row.float()
            scaled = z * weights[:, None]  # (77, D)
            row = (scaled * (z.mean() / scaled.mean())).to(states.dtype)
        rows.append(row)
    return torch.stack(rows)  # (N*C, 77, D)
