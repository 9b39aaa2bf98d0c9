"""Emphasis in a prompt, A1111's syntax and numbers: text -> [(text, weight)] and BREAKs.

``(x)`` multiplies the weight of ``x`` by 1.1, ``[x]`` divides it by 1.1, ``(x:1.5)`` sets a
factor of 1.5; brackets nest by multiplying. ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are the
literal characters; any other backslash is dropped. Brackets left open at the end apply to the
rest of the prompt (round ones first, then square ones); a closing bracket with nothing open is
text. ``BREAK`` (upper case, a word of its own) ends the current 75-token chunk.

The behaviour is that of A1111's ``modules/prompt_parser.py`` (``parse_prompt_attention`` and its
doctests), written anew here, with two differences where A1111 breaks down:

- A1111 raises an error for a weight that is not a number (``(x:1.2.3)``, ``(x:.)``); here the
  colon and the digits are text and the bracket closes as a plain ``(x)``.
- A1111 multiplies a ``BREAK`` inside brackets by the brackets' factor, after which it no longer
  recognises it and encodes the word "break" with a negative weight; here BREAK always breaks.

Weights are multiplied in the same order as A1111 (innermost bracket first), so they are the same
floating-point numbers (``((x))`` is 1.2100000000000002), and neighbouring fragments of equal
weight are joined, as A1111 joins them before tokenising each fragment on its own.
"""

from __future__ import annotations

import re
from typing import NamedTuple

ROUND_FACTOR = 1.1
SQUARE_FACTOR = 1 / 1.1

# One token of the emphasis syntax per match; the branches are tried in this order.
_TOKEN = re.compile(
    r"""
    \\(?P<escaped>[()\[\]\\])              # an escaped bracket or backslash: that character
  | (?P<lone_backslash>\\)                 # any other backslash: dropped
  | (?P<open>[(\[])
  | :\s*(?P<weight>[+-]?(?:\d+\.?\d*|\.\d+))\s*\)  # ":1.5)" or ": 1.5 )": that factor
  | (?P<close>[)\]])
  | (?P<text>[^\\()\[\]:]+|:)              # text, or a colon that is not a weight
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


class Fragment(NamedTuple):
    """A run of prompt text with one weight; ``is_break`` marks a BREAK (text "BREAK")."""

    text: str
    weight: float
    is_break: bool = False


BREAK = Fragment("BREAK", 1.0, True)


def parse_attention(text: str) -> list[Fragment]:
    """The fragments of ``text`` in order, never empty (``""`` gives ``[("", 1.0)]``)."""
    parts: list[list] = []  # [text, weight, is_break], weights multiplied in place
    round_open: list[int] = []  # index in parts where each open bracket starts
    square_open: list[int] = []

    def multiply_from(start: int, factor: float) -> None:
        for part in parts[start:]:
            if not part[2]:
                part[1] *= factor

    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "escaped":
            parts.append([match.group("escaped"), 1.0, False])
        elif kind == "lone_backslash":
            parts.append(["", 1.0, False])
        elif kind == "open":
            (round_open if match.group() == "(" else square_open).append(len(parts))
        elif kind == "weight" and round_open:
            multiply_from(round_open.pop(), float(match.group("weight")))
        elif match.group() == ")" and round_open:
            multiply_from(round_open.pop(), ROUND_FACTOR)
        elif match.group() == "]" and square_open:
            multiply_from(square_open.pop(), SQUARE_FACTOR)
        else:  # text, or a closing bracket (with or without weight) that closes nothing
            _append_text(parts, match.group())
    for start in round_open:
        multiply_from(start, ROUND_FACTOR)
    for start in square_open:
        multiply_from(start, SQUARE_FACTOR)
    return _join_equal_weights(parts)


def _append_text(parts: list[list], text: str) -> None:
    for i, piece in enumerate(_BREAK.split(text)):
        if i > 0:
            parts.append([BREAK.text, BREAK.weight, True])
        parts.append([piece, 1.0, False])


def _join_equal_weights(parts: list[list]) -> list[Fragment]:
    joined: list[Fragment] = []
    for text, weight, is_break in parts:
        last = joined[-1] if joined else None
        if last is not None and not is_break and not last.is_break and last.weight == weight:
            joined[-1] = Fragment(last.text + text, weight)
        else:
            joined.append(Fragment(text, weight, is_break))
    return joined or [Fragment("", 1.0)]


def has_emphasis(fragments: list[Fragment]) -> bool:
    """Whether any weight differs from 1 (then the encoder weighs and restores the mean)."""
    return any(f.weight != 1.0 for f in fragments if not f.is_break)
