"""A request's prompt and negative prompt -> the conditioning schedules the denoiser uses.

Extra-network tags are taken out first (the text encoder never sees them), then each prompt is
scheduled (``engine.prompts.schedule``) over the steps that will run; every distinct text is
encoded once, all of them in one batch, with emphasis and the embeddings it names
(``engine.text.weighted``). A prompt without scheduling gives a constant schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.prompts.extra_networks import split_extra_networks
from engine.prompts.schedule import prompt_schedule
from engine.prompts.tokens import embedding_names_in
from engine.sampling.conditioning import Conditioning, ConditioningSchedule
from engine.text.embeddings import Embedding, check_width, load_embedding
from engine.text.encoder import TextEncoder
from engine.text.weighted import encode_weighted


@dataclass(frozen=True)
class PromptConditioning:
    cond: ConditioningSchedule
    uncond: ConditioningSchedule
    embeddings: tuple[Embedding, ...]  # the embeddings the prompts used, in order of use

    @property
    def ti_hashes(self) -> str:
        """A1111's ``TI hashes`` value, ``"name: hash, name: hash"`` ("" without embeddings);
        names lose ``:`` and ``,`` as A1111 writes them."""
        return ", ".join(
            f"{e.name.replace(':', '').replace(',', '')}: {e.short_hash}" for e in self.embeddings
        )


def encode_prompt_pair(
    encoder: TextEncoder,
    prompt: str,
    negative: str,
    *,
    steps: int,
    clip_skip: int = 1,
    embedding_files: Mapping[str, Path] | None = None,
) -> PromptConditioning:
    """Schedules for ``prompt`` (cond) and ``negative`` (uncond) over ``steps`` sampler steps."""
    cond_schedule = prompt_schedule(split_extra_networks(prompt)[0], steps)
    uncond_schedule = prompt_schedule(split_extra_networks(negative)[0], steps)
    # Cond texts first, then uncond: without syntax, the batch of TextEncoder.encode_prompts.
    cond_texts = list(dict.fromkeys(text for _, text in cond_schedule))
    uncond_texts = list(dict.fromkeys(text for _, text in uncond_schedule))
    embeddings = _load_named(encoder, cond_texts + uncond_texts, embedding_files or {})
    states = encode_weighted(encoder, cond_texts + uncond_texts, embeddings, clip_skip)
    split = len(cond_texts)
    cond_of = {t: Conditioning(s) for t, s in zip(cond_texts, states[:split], strict=True)}
    uncond_of = {t: Conditioning(s) for t, s in zip(uncond_texts, states[split:], strict=True)}
    return PromptConditioning(
        ConditioningSchedule(tuple((end, cond_of[text]) for end, text in cond_schedule)),
        ConditioningSchedule(tuple((end, uncond_of[text]) for end, text in uncond_schedule)),
        tuple(embeddings.values()),
    )


def _load_named(
    encoder: TextEncoder, texts: list[str], files: Mapping[str, Path]
) -> dict[str, Embedding]:
    """Load the embeddings whose names occur in ``texts`` (only those), checking their width."""
    width = encoder.model.config.hidden_size
    loaded = {}
    for name in embedding_names_in(texts, list(files), encoder.tokenizer):
        embedding = load_embedding(files[name], name)
        check_width(embedding, width)
        loaded[name] = embedding
    return loaded
