"""What the text encoder really gets from a prompt: 75-token chunks with weights and embeddings.

Torch-free, so the window's token counter counts exactly what the encoder encodes.

Chunking follows A1111's ``FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line``
(``modules/sd_hijack_clip.py``): each emphasis fragment is tokenised on its own; a chunk holds
75 tokens between the start and end tokens, padded with the end token; ``BREAK`` pads the chunk to
its end and starts a new one; when a chunk is full and a comma lies within the last
``comma_backtrack`` (A1111's ``comma_padding_backtrack``, default 20) tokens, the tokens after
that comma move to the next chunk; a textual-inversion embedding's name is replaced by its
vectors, which never straddle two chunks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from engine.prompts.attention import parse_attention
from engine.prompts.extra_networks import split_extra_networks
from engine.prompts.schedule import schedule_texts
from engine.text.tokenizer import CHUNK_LEN, END_ID, START_ID, ClipTokenizer, get_tokenizer

COMMA_BACKTRACK = 20  # A1111's comma_padding_backtrack default
EMBEDDING_PLACEHOLDER = 0  # the id written where an embedding's vectors go (as A1111)


@dataclass(frozen=True)
class PromptChunk:
    """One 77-position row: ``tokens`` and ``weights`` include the start and end positions.

    ``embeddings``: (position in the row, embedding name) where that embedding's vectors
    replace the token embeddings, one position per vector.
    """

    tokens: tuple[int, ...]
    weights: tuple[float, ...]
    embeddings: tuple[tuple[int, str], ...] = ()

    @property
    def weighted(self) -> bool:
        return any(w != 1.0 for w in self.weights)


EMPTY_CHUNK = PromptChunk((START_ID,) + (END_ID,) * (CHUNK_LEN + 1), (1.0,) * (CHUNK_LEN + 2))


@dataclass(frozen=True)
class TokenCount:
    """``used``: tokens as A1111's counter shows them (75 for every chunk but the last, which
    counts its tokens; a BREAK or comma move fills a chunk); ``chunks``: 77-position rows."""

    used: int
    chunks: int

    @property
    def limit(self) -> int:
        """Tokens that fit in ``chunks`` chunks (the counter's ``used / limit``)."""
        return self.chunks * CHUNK_LEN


class EmbeddingNames:
    """Finds embedding names in a token stream, by their token ids (as A1111: a name matches
    wherever its tokens occur, case-insensitively; the longest name wins)."""

    def __init__(self, vectors: Mapping[str, int], tokenizer: ClipTokenizer) -> None:
        # A count that cannot be (an unreadable header, more than a chunk): read as words.
        self.vectors = {n: c for n, c in vectors.items() if 1 <= c <= CHUNK_LEN}
        self._by_first: dict[int, list[tuple[tuple[int, ...], str]]] = {}
        for name in self.vectors:
            ids = tuple(tokenizer.encode(name))
            if ids:
                self._by_first.setdefault(ids[0], []).append((ids, name))
        for candidates in self._by_first.values():
            candidates.sort(key=lambda c: len(c[0]), reverse=True)

    def match(self, tokens: Sequence[int], at: int) -> tuple[str, int] | None:
        """(name, tokens its name takes) of the embedding named at ``tokens[at]``, or None."""
        for ids, name in self._by_first.get(tokens[at], ()):
            if tuple(tokens[at : at + len(ids)]) == ids:
                return name, len(ids)
        return None


@dataclass
class _Builder:
    """The chunks being built; mirrors A1111's loop state."""

    comma_id: int
    comma_backtrack: int
    chunks: list[PromptChunk] = field(default_factory=list)
    used: int = 0
    tokens: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    fixes: list[tuple[int, str]] = field(default_factory=list)
    last_comma: int = -1

    def close(self, last: bool = False) -> None:
        self.used += len(self.tokens) if last else CHUNK_LEN
        pad = CHUNK_LEN - len(self.tokens)
        tokens = [START_ID, *self.tokens, *[END_ID] * pad, END_ID]
        weights = [1.0, *self.weights, *[1.0] * pad, 1.0]
        fixes = tuple((offset + 1, name) for offset, name in self.fixes)  # +1: start token
        self.chunks.append(PromptChunk(tuple(tokens), tuple(weights), fixes))
        self.tokens, self.weights, self.fixes, self.last_comma = [], [], [], -1

    def before_token(self, token: int) -> None:
        """A1111's comma bookkeeping and overflow, run before each token is placed."""
        if token == self.comma_id:
            self.last_comma = len(self.tokens)
        elif self._comma_is_near():
            cut = self.last_comma + 1
            moved = self.tokens[cut:], self.weights[cut:]
            moved_fixes = [(o - cut, n) for o, n in self.fixes if o >= cut]
            self.tokens, self.weights = self.tokens[:cut], self.weights[:cut]
            self.fixes = [(o, n) for o, n in self.fixes if o < cut]
            self.close()
            self.tokens, self.weights = list(moved[0]), list(moved[1])
            self.fixes = moved_fixes
        if len(self.tokens) == CHUNK_LEN:
            self.close()

    def _comma_is_near(self) -> bool:
        return (
            self.comma_backtrack != 0
            and len(self.tokens) == CHUNK_LEN
            and self.last_comma != -1
            and len(self.tokens) - self.last_comma <= self.comma_backtrack
        )

    def add_embedding(self, name: str, count: int, weight: float) -> None:
        if len(self.tokens) + count > CHUNK_LEN:
            self.close()
        self.fixes.append((len(self.tokens), name))
        self.tokens += [EMBEDDING_PLACEHOLDER] * count
        self.weights += [weight] * count


def chunk_prompt(
    text: str,
    embeddings: EmbeddingNames | None = None,
    *,
    tokenizer: ClipTokenizer | None = None,
    comma_backtrack: int = COMMA_BACKTRACK,
) -> tuple[list[PromptChunk], int]:
    """(the chunks of one prompt text, tokens used as A1111 counts them). ``text`` has no
    extra-network tags and no scheduling left (see ``engine.prompts.schedule``)."""
    tokenizer = tokenizer or get_tokenizer()
    names = embeddings or EmbeddingNames({}, tokenizer)
    build = _Builder(tokenizer.vocab[",</w>"], comma_backtrack)
    for fragment in parse_attention(text):
        if fragment.is_break:
            build.close()
            continue
        ids = tokenizer.encode(fragment.text)
        at = 0
        while at < len(ids):
            build.before_token(ids[at])
            found = names.match(ids, at)
            if found is None:
                build.tokens.append(ids[at])
                build.weights.append(fragment.weight)
                at += 1
                continue
            name, name_len = found
            build.add_embedding(name, names.vectors[name], fragment.weight)
            at += name_len
    if build.tokens or not build.chunks:
        build.close(last=True)
    return build.chunks, build.used


def embedding_names_in(
    texts: Sequence[str], names: Sequence[str], tokenizer: ClipTokenizer | None = None
) -> list[str]:
    """Which of ``names`` occur in ``texts`` (prompt texts without tags or scheduling), so that
    only those embedding files are loaded."""
    tokenizer = tokenizer or get_tokenizer()
    finder = EmbeddingNames(dict.fromkeys(names, 1), tokenizer)
    found: dict[str, None] = {}
    for text in texts:
        for fragment in parse_attention(text):
            ids = tokenizer.encode(fragment.text)
            for at in range(len(ids)):
                hit = finder.match(ids, at)
                if hit is not None:
                    found[hit[0]] = None
    return list(found)


def count_tokens(
    prompt: str,
    embedding_vectors: Mapping[str, int] | None = None,
    *,
    steps: int = 20,
    comma_backtrack: int = COMMA_BACKTRACK,
) -> TokenCount:
    """The window's token counter: what the encoder really encodes for ``prompt`` as typed.

    Extra-network tags (``<lora:...>``) are removed and count nothing; emphasis brackets and
    weights count nothing; ``BREAK`` fills its chunk; an embedding (``embedding_vectors``: name
    -> number of vectors, e.g. from ``engine.library.embedding_vectors``) counts its vectors, not
    the tokens of its name. A prompt with editing or alternation counts its longest variant over
    ``steps`` steps (pass the steps control's value), as A1111's counter does.

    Fast enough to run on every keystroke (the tokenizer caches words). Torch-free.
    """
    tokenizer = get_tokenizer()
    text, _ = split_extra_networks(prompt)
    names = EmbeddingNames(embedding_vectors or {}, tokenizer)
    used, chunks = 0, 1
    for variant in schedule_texts(text, steps):
        variant_chunks, variant_used = chunk_prompt(
            variant, names, tokenizer=tokenizer, comma_backtrack=comma_backtrack
        )
        used, chunks = max(used, variant_used), max(chunks, len(variant_chunks))
    return TokenCount(used, chunks)
