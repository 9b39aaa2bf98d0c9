"""What the prompt highlighter colours, found in plain text (no Qt): emphasis brackets and
their weights, prompt editing and alternation, ``BREAK``, ``<lora:…>`` tags and embedding names,
with a warning for names the model library does not know.

The syntax is A1111's: ``(x)`` ×1.1, ``[x]`` ÷1.1, ``(x:1.5)``, ``\\(`` escapes, ``BREAK``,
``[from:to:when]``, ``[to:when]``, ``[from::when]``, ``[a|b]``, ``<lora:name:w>``. Unbalanced
brackets are read as A1111 reads them: an unclosed ``(`` weighs the rest of the prompt; a stray
``)`` stays in the prompt as text, which is flagged, as it is rarely meant.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

from app.extra_networks import network_items
from engine.library.records import LibraryEntry
from engine.prompts.extra_networks import split_extra_networks

# Span kinds; each has a format in the highlighter.
UP, DOWN, EDITING, BREAK, LORA, EMBEDDING, PROBLEM = (
    "up", "down", "editing", "break", "lora", "embedding", "problem"
)  # fmt: skip
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)\s*")
_BREAK = re.compile(r"\bBREAK\b")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    tip: str = ""  # shown when the mouse rests on it


@dataclass(frozen=True)
class KnownNetworks:
    """The library's LoRAs and embeddings as a prompt names them: name -> why it cannot be
    used, "" when it can (judged by ``app.extra_networks.network_items``)."""

    loras: Mapping[str, str] = field(default_factory=dict)
    embeddings: Mapping[str, str] = field(default_factory=dict)
    vectors: Mapping[str, int] = field(default_factory=dict)  # embedding name -> vectors

    @classmethod
    def from_entries(
        cls, entries: Iterable[LibraryEntry], vectors: Mapping[str, int] | None = None
    ) -> KnownNetworks:
        loras: dict[str, str] = {}
        embeddings: dict[str, str] = {}
        for item in network_items(entries):
            if item.kind == "lora":  # the engine also takes the file name: <lora:x.safetensors>
                for name in (item.name, PurePath(item.path).name):
                    loras.setdefault(name.casefold(), item.reason)
            else:
                embeddings[item.name] = item.reason
        return cls(loras, embeddings, dict(vectors or {}))

    def lora_problem(self, name: str) -> str | None:
        """None when no LoRA has this name, else why it cannot be used ("" when it can).
        Case is ignored, as the engine ignores it."""
        return self.loras.get(name.strip().casefold())

    @functools.cached_property
    def embedding_pattern(self) -> re.Pattern[str] | None:
        """Embedding names as whole words, case ignored (CLIP lower-cases the prompt, so A1111
        finds them so), the longest first."""
        names = sorted(self.embeddings, key=len, reverse=True)
        if not names:
            return None
        alternatives = "|".join(map(re.escape, names))
        return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)

    def embedding_name(self, written: str) -> str:
        """The embedding's own name for a match found in the prompt (matches ignore case)."""
        if written in self.embeddings:
            return written
        return next(n for n in self.embeddings if n.casefold() == written.casefold())


def prompt_spans(text: str, known: KnownNetworks) -> list[Span]:
    """The highlighted spans of ``text``, sorted by start; they never overlap."""
    _, tags = split_extra_networks(text)
    spans = [_tag_span(tag.kind, tag.name, tag.span, known) for tag in tags]
    tag_ranges = [tag.span for tag in tags]
    spans += _bracket_spans(text, tag_ranges)
    taken = [(s.start, s.end) for s in spans]
    for match in _BREAK.finditer(text):
        if not _inside(match.span(), taken):
            spans.append(Span(*match.span(), BREAK, "BREAK: the next words start a new chunk"))
    if known.embedding_pattern is not None:
        taken = [(s.start, s.end) for s in spans]
        for match in known.embedding_pattern.finditer(text):
            if not _inside(match.span(), taken):
                spans.append(_embedding_span(match.span(), known.embedding_name(match[0]), known))
    return sorted(spans, key=lambda s: s.start)


def _inside(span: tuple[int, int], ranges: Iterable[tuple[int, int]]) -> bool:
    return any(start < span[1] and span[0] < end for start, end in ranges)


def _tag_span(kind: str, name: str, span: tuple[int, int], known: KnownNetworks) -> Span:
    if kind != "lora":
        tip = f"<{kind}:…> tags are not used by Latentdesk: the tag is left out of the prompt."
        return Span(*span, PROBLEM, tip)
    problem = known.lora_problem(name)
    if problem is None:
        tip = (
            f"No LoRA named “{name}” in the model library. Put the file in one of the "
            "library's folders (File › Models…) or pick a name from the LoRA browser."
        )
        return Span(*span, PROBLEM, tip)
    if problem:
        return Span(*span, PROBLEM, f"LoRA “{name}”: {problem}.")
    return Span(*span, LORA, f"LoRA “{name}”")


def _embedding_span(span: tuple[int, int], name: str, known: KnownNetworks) -> Span:
    problem = known.embeddings[name]
    if problem:
        return Span(*span, PROBLEM, f"Embedding “{name}”: {problem}.")
    vectors = known.vectors.get(name)
    count = f": {vectors} vector{'s' if vectors != 1 else ''}" if vectors else ""
    return Span(*span, EMBEDDING, f"Embedding “{name}”{count}")


# -- brackets --------------------------------------------------------------------------------


@dataclass
class _Open:
    index: int
    char: str
    marks: list[int] = field(default_factory=list)  # its own ":" and "|", not nested ones


def _bracket_spans(text: str, skip: list[tuple[int, int]]) -> list[Span]:
    """As A1111's parser: "(" and "[" on two stacks of their own, so "(a [b) c]" weighs "a b"
    ×1.1 and "b c" ÷1.1; ":" and "|" belong to the innermost open bracket (prompt editing)."""
    spans: list[Span] = []
    opens: list[_Open] = []
    skip_at = dict(skip)
    i = 0
    while i < len(text):
        ch = text[i]
        if i in skip_at:  # a <tag>: its ":" are not the brackets'
            i = skip_at[i]
            continue
        if ch == "\\":
            i += 2
            continue
        if ch in "([":
            opens.append(_Open(i, ch))
        elif ch in ":|" and opens:
            opens[-1].marks.append(i)
        elif ch in ")]":
            spans += _close(text, opens, i)
        i += 1
    for opened in opens:  # unclosed: A1111 weighs the rest of the prompt
        if opened.char == "(":
            spans.append(Span(opened.index, opened.index + 1, UP, "×1.1 to the end (no “)”)"))
        else:
            spans.append(Span(opened.index, opened.index + 1, DOWN, "÷1.1 to the end (no “]”)"))
    return spans


def _close(text: str, opens: list[_Open], close: int) -> list[Span]:
    want = "(" if text[close] == ")" else "["
    for k in range(len(opens) - 1, -1, -1):
        if opens[k].char == want:
            opened = opens.pop(k)
            return _emphasis(text, opened, close) if want == "(" else _square(text, opened, close)
    tip = (
        f"This “{text[close]}” closes nothing: it stays in the prompt as text. "
        f"Write “\\{text[close]}” if you mean the character."
    )
    return [Span(close, close + 1, PROBLEM, tip)]


def _emphasis(text: str, opened: _Open, close: int) -> list[Span]:
    colon = text.rfind(":", opened.index + 1, close)
    if colon >= 0 and _NUMBER.fullmatch(text, colon + 1, close):
        weight = float(text[colon + 1 : close])
        kind = DOWN if weight < 1 else UP
        tip = f"Weight {weight:g}"
        return [Span(opened.index, opened.index + 1, kind, tip), Span(colon, close + 1, kind, tip)]
    tip = "×1.1 for each pair of round brackets"
    return [Span(opened.index, opened.index + 1, UP, tip), Span(close, close + 1, UP, tip)]


def _square(text: str, opened: _Open, close: int) -> list[Span]:
    bars = [m for m in opened.marks if text[m] == "|"]
    colons = [m for m in opened.marks if text[m] == ":"]
    if bars and not colons:
        tip = "Alternation: the choices take turns, one per step"
        return [Span(m, m + 1, EDITING, tip) for m in (opened.index, *bars, close)]
    if 1 <= len(colons) <= 2 and not bars and _NUMBER.fullmatch(text, colons[-1] + 1, close):
        when = text[colons[-1] + 1 : close].strip()
        at = f"step {when}" if float(when) >= 1 else f"{when} of the steps"
        tip = f"Prompt editing: switches at {at}"
        spans = [Span(m, m + 1, EDITING, tip) for m in (opened.index, *colons[:-1])]
        return [*spans, Span(colons[-1], close + 1, EDITING, tip)]
    tip = "÷1.1 for each pair of square brackets"
    return [Span(opened.index, opened.index + 1, DOWN, tip), Span(close, close + 1, DOWN, tip)]
