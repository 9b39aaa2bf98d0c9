"""Ctrl+Up / Ctrl+Down in a prompt: raise or lower the weight of the words under the cursor.

Pure text, no widgets: ``change_weight(text, start, end, up)`` returns the new text and the
selection to keep, or None when there is nothing to weigh. It behaves as A1111's
``javascript/edit-attention.js`` (its defaults: a step of 0.1 for ``(text:w)``, 0.05 for
``<lora:name:w>``, the same word delimiters), with a few of its rough edges taken off:

- no selection: the ``<…>`` tag around the cursor, else the innermost ``(…:w)`` around it,
  else the word under the cursor; a bracket without a weight, ``(word)``, falls back to the
  word (A1111 read "word)" as the number and gave up);
- ``\\(`` and ``\\)`` are text, not brackets (A1111 took them for brackets);
- a weight that comes back to 1.0 drops its brackets, ``(word:1.1)`` -> ``word``, as A1111;
- a tag without a weight, ``<lora:name>``, gets one (A1111 did nothing); a tag with separate
  text-encoder and UNet weights has both moved (A1111 moved only the last item);
- weights are rounded to 6 decimals, so 1.1 + 0.1 reads 1.2, never 1.2000000000000002.

The selection after an edit covers the weighed text (``word`` in ``(word:1.2)``, ``lora:name``
in a tag), so pressing the key again changes the same weight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.prompts.extra_networks import split_extra_networks

ATTENTION_STEP = 0.1  # A1111's keyedit_precision_attention default
EXTRA_NETWORK_STEP = 0.05  # A1111's keyedit_precision_extra default
# A1111's keyedit_delimiters default, plus the whitespace it also splits words at.
DELIMITERS = frozenset(".,\\/!?%^*;:{}=`~() \t\r\n")
_WEIGHT = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*")
_TAG_WEIGHT_KEYS = ("te", "unet")  # A1111's named weights of a <lora:…> tag


@dataclass(frozen=True)
class WeightEdit:
    """The prompt after the edit and the selection to show (``start`` <= ``end``)."""

    text: str
    start: int
    end: int


def change_weight(text: str, start: int, end: int, up: bool) -> WeightEdit | None:
    """Raise (``up``) or lower the weight of the selection ``start:end`` (a cursor when equal)."""
    start, end = min(start, end), max(start, end)
    tags = [tag.span for tag in split_extra_networks(text)[1]]
    tag = next((t for t in tags if t[0] < start and end < t[1]), None)
    if tag is not None:
        return _change_tag(text, tag, up)
    if start == end:
        block = _weighted_block_around(text, start)
        if block is not None:
            return _change_block(text, block, up)
        start, end = _word_at(text, start)
        tag = next((t for t in tags if t[0] < end and start < t[1]), None)
        if tag is not None:  # the cursor just before "<": the tag's "<lora" is no word
            return _change_tag(text, tag, up)
    else:
        if any(t[0] < end and start < t[1] and not start <= t[0] < t[1] <= end for t in tags):
            return None  # brackets across half a tag would break it
        block = _weighted_block_of(text, start, end)
        if block is not None:
            return _change_block(text, block, up)
    while start < end and text[start].isspace():  # A1111 trims the end; both ends read better
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end:
        return None
    weight = _rounded(1.0 + (ATTENTION_STEP if up else -ATTENTION_STEP))
    wrapped = f"({text[start:end]}:{format_weight(weight)})"
    return WeightEdit(text[:start] + wrapped + text[end:], start + 1, end + 1)


def format_weight(weight: float) -> str:
    """ "1.2", "0.9", "2.0": the shortest text of the rounded weight, as A1111 writes it."""
    return repr(_rounded(weight))


def _rounded(weight: float) -> float:
    return round(weight, 6) + 0.0  # + 0.0: -0.0 reads "0.0"


# -- (text:weight) --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    open: int  # index of "("
    colon: int  # index of the ":" before the weight
    close: int  # index of ")"
    weight: float


def bracket_pairs(text: str, opening: str = "(", closing: str = ")") -> list[tuple[int, int]]:
    """Matched (open, close) indexes, innermost first; escaped brackets (``\\(``) are text."""
    pairs: list[tuple[int, int]] = []
    stack: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == opening:
            stack.append(i)
        elif ch == closing and stack:
            pairs.append((stack.pop(), i))
        i += 1
    return pairs


def _weighted(text: str, pair: tuple[int, int]) -> _Block | None:
    """The pair as ``(text:weight)``, or None when it has no weight (``(word)``, ``(a:b)``)."""
    open_, close = pair
    colon = text.rfind(":", open_ + 1, close)
    if colon < 0:
        return None
    match = _WEIGHT.fullmatch(text, colon + 1, close)
    return _Block(open_, colon, close, float(match.group(1))) if match else None


def _weighted_block_around(text: str, cursor: int) -> _Block | None:
    """The innermost ``(…)`` holding the cursor, when it has a weight."""
    around = [p for p in bracket_pairs(text) if p[0] < cursor <= p[1]]
    if not around:
        return None
    innermost = max(around, key=lambda p: p[0])
    return _weighted(text, innermost)


def _weighted_block_of(text: str, start: int, end: int) -> _Block | None:
    """The ``(…:w)`` whose text before the weight is exactly the selection (a repeated press)."""
    for pair in bracket_pairs(text):
        block = _weighted(text, pair) if pair[0] == start - 1 else None
        if block is not None and block.colon == end:
            return block
    return None


def _change_block(text: str, block: _Block, up: bool) -> WeightEdit:
    weight = _rounded(block.weight + (ATTENTION_STEP if up else -ATTENTION_STEP))
    inner = text[block.open + 1 : block.colon]
    if weight == 1.0:  # (word:1.0) is word: drop the brackets, as A1111
        new = text[: block.open] + inner + text[block.close + 1 :]
        return WeightEdit(new, block.open, block.open + len(inner))
    new = text[: block.colon + 1] + format_weight(weight) + text[block.close :]
    return WeightEdit(new, block.open + 1, block.colon)


def _word_at(text: str, cursor: int) -> tuple[int, int]:
    start = end = cursor
    while start > 0 and text[start - 1] not in DELIMITERS:
        start -= 1
    while end < len(text) and text[end] not in DELIMITERS:
        end += 1
    return start, end


# -- <kind:name:weight> -----------------------------------------------------------------------


def _change_tag(text: str, span: tuple[int, int], up: bool) -> WeightEdit:
    tag_start, tag_end = span
    items = text[tag_start + 1 : tag_end - 1].split(":")
    delta = EXTRA_NETWORK_STEP if up else -EXTRA_NETWORK_STEP
    changed = False
    for i, item in enumerate(items[2:], start=2):  # items[0] the kind, items[1] the name
        key, eq, value = item.partition("=")
        number = value if eq else key
        if (eq and key.strip() not in _TAG_WEIGHT_KEYS) or not _WEIGHT.fullmatch(number):
            continue
        weight = format_weight(float(number) + delta)
        items[i] = f"{key}={weight}" if eq else weight
        changed = True
    if not changed:  # no weight written: it was 1
        items.insert(2, format_weight(1.0 + delta))
    tag = "<" + ":".join(items) + ">"
    selected = len(items[0]) + 1 + len(items[1])  # "lora:name", as A1111 selects it
    new = text[:tag_start] + tag + text[tag_end:]
    return WeightEdit(new, tag_start + 1, tag_start + 1 + selected)


def minimal_change(old: str, new: str) -> tuple[int, int, str]:
    """(start, end, replacement) turning ``old`` into ``new`` with the smallest replaced
    range: the editor replaces only that, so its undo step and scroll position stay small."""
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    return start, end_old, new[start:end_new]
