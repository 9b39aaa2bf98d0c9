"""The CLIP ViT-L/14 byte-level BPE tokenizer that Stable Diffusion 1.x uses.

The vocabulary is built from the merges shipped in ``resources/clip/``: 256 byte symbols, the same
256 with the end-of-word mark ``</w>``, one token per merge, then the start and end tokens.
Pure Python (plus ``regex``, which transformers already depends on): no torch, so the GUI's token
counter can use it without loading the model stack.

Text clean-up follows CLIP's, except that ftfy is not available: instead of ``ftfy.fix_text`` the
text is HTML-unescaped (twice, as CLIP does) and NFC-normalised; mojibake repair and quote
uncurling are not done, exactly as transformers' fast CLIPTokenizer (used by diffusers) behaves.
"""

from __future__ import annotations

import functools
import gzip
import html
import math
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import regex

from engine.errors import MissingComponentError
from engine.resources import resource_path

VOCAB_SIZE = 49408
START_ID = 49406
END_ID = 49407  # also the padding token
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
CHUNK_LEN = 75  # prompt tokens per 77-position row
NUM_MERGES = VOCAB_SIZE - 2 * 256 - 2
MERGES_RESOURCE = ("clip", "bpe_merges.txt.gz")
END_OF_WORD = "</w>"

# CLIP's pre-tokenisation: special tokens, English contractions, runs of letters, single digits,
# runs of anything else that is not whitespace. CLIP compiles it with IGNORECASE; that is left
# out here, as in transformers: the text is already lower-cased, and under IGNORECASE characters
# that case-fold to a letter (U+0345 -> "ι") match neither letters nor "other" and get dropped.
_PRE_TOKEN_PATTERN = (
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d"
    r"|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)
_WHITESPACE = regex.compile(r"\s+")
_SURROGATE = regex.compile(r"[\ud800-\udfff]")
_BPE_CACHE_LIMIT = 50_000  # distinct words kept; prompts reuse a small vocabulary


def byte_encoder() -> dict[int, str]:
    """Byte value -> the unicode character standing for it, in CLIP's vocabulary order.

    Printable bytes stand for themselves and come first; the other 68 bytes, in ascending order,
    are moved to U+0100.. so that no symbol is whitespace or a control character.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    others = [b for b in range(256) if b not in set(printable)]
    encoder = {b: chr(b) for b in printable}
    encoder.update({b: chr(256 + n) for n, b in enumerate(others)})
    return encoder


def byte_alphabet() -> list[str]:
    """The 256 byte symbols in vocabulary order (ids 0..255)."""
    return list(byte_encoder().values())


def read_merges(path: Path) -> list[tuple[str, str]]:
    """Merges from a gzipped (or plain) merges file; the ``#version`` header line is skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    merges = [tuple(line.split(" ")) for line in lines[:NUM_MERGES] if line]
    if len(merges) != NUM_MERGES or any(len(m) != 2 for m in merges):
        raise MissingComponentError(
            f"The tokenizer vocabulary {path} is damaged; reinstall Latentdesk."
        )
    return merges  # type: ignore[return-value]


def build_vocab(merges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Token string -> id, in CLIP's order."""
    alphabet = byte_alphabet()
    tokens = alphabet + [c + END_OF_WORD for c in alphabet]
    tokens += [a + b for a, b in merges]
    tokens += [START_TOKEN, END_TOKEN]
    return {token: i for i, token in enumerate(tokens)}


def clean_text(text: str) -> str:
    """Unescape HTML, NFC-normalise, collapse whitespace, lower-case."""
    text = html.unescape(html.unescape(text))
    # Lone surrogates (from broken clipboard text) cannot be encoded as UTF-8.
    text = _SURROGATE.sub("\ufffd", text)
    text = unicodedata.normalize("NFC", text)
    # regex's \s is Unicode White_Space; str.strip() would also eat the separators U+001C..1F.
    text = _WHITESPACE.sub(" ", text).strip(" ")
    # Character by character, as transformers' tokenizer lower-cases: str.lower() on the whole
    # text would turn a word-final capital sigma into "ς", where transformers gives "σ".
    return "".join(c.lower() for c in text)


class ClipTokenizer:
    """Text -> CLIP token ids. Build once (``get_tokenizer()``); safe to share between threads."""

    def __init__(self, merges: Sequence[tuple[str, str]]) -> None:
        self.vocab = build_vocab(merges)
        if len(self.vocab) != VOCAB_SIZE:
            raise MissingComponentError("The tokenizer vocabulary has duplicate tokens.")
        self._ranks = {pair: rank for rank, pair in enumerate(merges)}
        self._bytes = byte_encoder()
        self._pattern = regex.compile(_PRE_TOKEN_PATTERN)
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_file(cls, path: Path) -> ClipTokenizer:
        return cls(read_merges(path))

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without the start and end tokens, never truncated."""
        ids: list[int] = []
        for word in self._pattern.findall(clean_text(text)):
            ids.extend(self._word_ids(word))
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def chunk_ids(self, text: str, chunk_len: int = CHUNK_LEN) -> list[list[int]]:
        """Rows of ``chunk_len + 2`` ids: start, up to ``chunk_len`` tokens, end, end-padding.

        An empty prompt gives one row; N tokens give ceil(N / chunk_len) rows.
        """
        ids = self.encode(text)
        rows = []
        for start in range(0, max(len(ids), 1), chunk_len):
            body = ids[start : start + chunk_len]
            padding = [END_ID] * (chunk_len - len(body))
            rows.append([START_ID, *body, END_ID, *padding])
        return rows

    def chunk_counts(self, text: str, chunk_len: int = CHUNK_LEN) -> list[int]:
        """Tokens in each chunk of ``chunk_ids`` (``[0]`` for an empty prompt)."""
        total = self.count_tokens(text)
        chunks = max(math.ceil(total / chunk_len), 1)
        return [min(chunk_len, total - i * chunk_len) for i in range(chunks)]

    def _word_ids(self, word: str) -> tuple[int, ...]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        if word in (START_TOKEN, END_TOKEN):
            ids: tuple[int, ...] = (self.vocab[word],)
        else:
            symbols = "".join(self._bytes[b] for b in word.encode("utf-8"))
            ids = tuple(self.vocab[token] for token in self._bpe(symbols))
        if len(self._cache) < _BPE_CACHE_LIMIT:
            self._cache[word] = ids
        return ids

    def _bpe(self, symbols: str) -> list[str]:
        """Merge the lowest-ranked adjacent pair, all its occurrences, until none is known."""
        parts = [*symbols[:-1], symbols[-1] + END_OF_WORD]
        while len(parts) > 1:
            pairs = set(zip(parts, parts[1:], strict=False))  # adjacent pairs
            best = min(pairs, key=lambda pair: self._ranks.get(pair, math.inf))
            if best not in self._ranks:
                break
            parts = _merge_pair(parts, best)
        return parts


def _merge_pair(parts: list[str], pair: tuple[str, str]) -> list[str]:
    """Join every non-overlapping occurrence of ``pair``, scanning left to right."""
    merged: list[str] = []
    i = 0
    while i < len(parts):
        if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
            merged.append(parts[i] + parts[i + 1])
            i += 2
        else:
            merged.append(parts[i])
            i += 1
    return merged


@functools.lru_cache(maxsize=1)
def get_tokenizer() -> ClipTokenizer:
    """The shared tokenizer, loaded from ``resources/clip/`` on first use."""
    try:
        path = resource_path(*MERGES_RESOURCE)
    except FileNotFoundError as e:
        raise MissingComponentError(
            f"The CLIP tokenizer vocabulary is missing ({e}); reinstall Latentdesk."
        ) from e
    return ClipTokenizer.from_file(path)


def chunk_counts(text: str) -> list[int]:
    """Tokens in each 75-token chunk of ``text``: the GUI's counter (``engine.token_counts``)."""
    return get_tokenizer().chunk_counts(text)
