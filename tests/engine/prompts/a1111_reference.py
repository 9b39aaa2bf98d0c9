"""A hand-written test oracle of A1111's prompt algorithm, kept apart from the engine's code.

Written from reading A1111's ``modules/prompt_parser.py`` (``parse_prompt_attention``) and
``modules/sd_hijack_clip.py`` (``tokenize_line``, ``process_tokens`` with the "Original"
emphasis), step for step as A1111 does it, including what the engine does differently on
purpose (BREAK inside brackets, weights that are not numbers, the mean over a batch), so the
tests can show both where they agree and where they differ.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch

CHUNK = 75
START, END = 49406, 49407

_ATTENTION = re.compile(
    r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:", re.X
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_prompt_attention(text: str) -> list[list]:
    """[[text, weight], ...]; a BREAK is ["BREAK", -1] (A1111's marker)."""
    out: list[list] = []
    rounds: list[int] = []
    squares: list[int] = []

    def scale(start: int, factor: float) -> None:
        for p in range(start, len(out)):
            out[p][1] *= factor

    for m in _ATTENTION.finditer(text):
        token, weight = m.group(0), m.group(1)
        if token.startswith("\\"):
            out.append([token[1:], 1.0])
        elif token == "(":
            rounds.append(len(out))
        elif token == "[":
            squares.append(len(out))
        elif weight is not None and rounds:
            scale(rounds.pop(), float(weight))  # A1111 raises here for "1.2.3"
        elif token == ")" and rounds:
            scale(rounds.pop(), 1.1)
        elif token == "]" and squares:
            scale(squares.pop(), 1 / 1.1)
        else:
            for i, piece in enumerate(_BREAK.split(token)):
                if i > 0:
                    out.append(["BREAK", -1])
                out.append([piece, 1.0])
    for start in rounds:
        scale(start, 1.1)
    for start in squares:
        scale(start, 1 / 1.1)
    if not out:
        out = [["", 1.0]]
    i = 0
    while i + 1 < len(out):
        if out[i][1] == out[i + 1][1]:
            out[i][0] += out[i + 1][0]
            out.pop(i + 1)
        else:
            i += 1
    return out


def tokenize_line(
    line: str,
    tokenize: Callable[[str], list[int]],
    comma: int,
    embeddings: Mapping[str, int] | None = None,
    backtrack: int = 20,
) -> tuple[list[dict], int]:
    """A1111's chunks: dicts with ``tokens`` (77), ``multipliers`` (77) and ``fixes``
    [(offset in the 75-token body, name)]; and A1111's token count."""
    embeddings = embeddings or {}
    lookup: dict[int, list[tuple[list[int], str]]] = {}
    for name in embeddings:
        ids = tokenize(name)
        lookup.setdefault(ids[0], []).append((ids, name))
        lookup[ids[0]].sort(key=lambda x: len(x[0]), reverse=True)

    def find(tokens: list[int], at: int) -> tuple[str | None, int | None]:
        for ids, name in lookup.get(tokens[at], []):
            if tokens[at : at + len(ids)] == ids:
                return name, len(ids)
        return None, None

    chunks: list[dict] = []
    chunk: dict = {"tokens": [], "multipliers": [], "fixes": []}
    count = 0
    last_comma = -1

    def next_chunk(is_last: bool = False) -> None:
        nonlocal count, last_comma, chunk
        count += len(chunk["tokens"]) if is_last else CHUNK
        add = CHUNK - len(chunk["tokens"])
        if add > 0:
            chunk["tokens"] += [END] * add
            chunk["multipliers"] += [1.0] * add
        chunk["tokens"] = [START] + chunk["tokens"] + [END]
        chunk["multipliers"] = [1.0] + chunk["multipliers"] + [1.0]
        last_comma = -1
        chunks.append(chunk)
        chunk = {"tokens": [], "multipliers": [], "fixes": []}

    parsed = parse_prompt_attention(line)
    for text, weight in parsed:
        if text == "BREAK" and weight == -1:
            next_chunk()
            continue
        tokens = tokenize(text)
        pos = 0
        while pos < len(tokens):
            token = tokens[pos]
            if token == comma:
                last_comma = len(chunk["tokens"])
            elif (
                backtrack != 0
                and len(chunk["tokens"]) == CHUNK
                and last_comma != -1
                and len(chunk["tokens"]) - last_comma <= backtrack
            ):
                cut = last_comma + 1
                moved_t, moved_m = chunk["tokens"][cut:], chunk["multipliers"][cut:]
                chunk["tokens"], chunk["multipliers"] = (
                    chunk["tokens"][:cut],
                    chunk["multipliers"][:cut],
                )
                next_chunk()
                chunk["tokens"], chunk["multipliers"] = moved_t, moved_m
            if len(chunk["tokens"]) == CHUNK:
                next_chunk()
            name, name_len = find(tokens, pos)
            if name is None:
                chunk["tokens"].append(token)
                chunk["multipliers"].append(weight)
                pos += 1
                continue
            n = embeddings[name]
            if len(chunk["tokens"]) + n > CHUNK:
                next_chunk()
            chunk["fixes"].append((len(chunk["tokens"]), name))
            chunk["tokens"] += [0] * n
            chunk["multipliers"] += [weight] * n
            pos += name_len  # type: ignore[operator]
    if chunk["tokens"] or not chunks:
        next_chunk(is_last=True)
    return chunks, count


def original_emphasis(z: torch.Tensor, multipliers: torch.Tensor) -> torch.Tensor:
    """A1111's "Original" emphasis on a batch (B, 77, D): weigh, then restore the batch mean."""
    original_mean = z.mean()
    z = z * multipliers.reshape(multipliers.shape + (1,)).expand(z.shape)
    new_mean = z.mean()
    return z * (original_mean / new_mean)
