"""The LoRA and embedding browser's content, without Qt: which library files it lists, how,
and the text a choice puts into the prompt.

A LoRA goes in as ``<lora:NAME:1>`` (A1111's tag, its default weight 1); an embedding as its
name, a word of the prompt. Files made for other model families are listed greyed, with why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.library_model import family_title
from engine.family import SD1
from engine.library.records import LibraryEntry

KIND_TITLES = {"lora": "LoRA", "embedding": "Embedding"}
USABLE_FAMILY = SD1.name  # what the engine runs; the others are listed greyed
_TAG_BREAKERS = (":", ">", "<")  # a name holding one of these would end the tag early


@dataclass(frozen=True)
class NetworkItem:
    """One line of the browser."""

    kind: str  # "lora" | "embedding"
    name: str
    path: str
    family: str  # "Stable Diffusion 1.x", "Unknown family"
    reason: str = ""  # why it cannot be used; "" when it can

    @property
    def usable(self) -> bool:
        return not self.reason

    @property
    def text(self) -> str:
        """What the prompt gets."""
        return f"<lora:{self.name}:1>" if self.kind == "lora" else self.name

    @property
    def label(self) -> str:
        if self.reason:  # it names the family when that is the problem
            return f"{self.name}  ·  {KIND_TITLES[self.kind]}  —  {self.reason}"
        return f"{self.name}  ·  {KIND_TITLES[self.kind]}  ·  {self.family}"

    def matches(self, words: str) -> bool:
        """Whether every word of the filter is in the name (case ignored)."""
        name = self.name.casefold()
        return all(word in name for word in words.casefold().split())


def network_items(entries: Iterable[LibraryEntry]) -> list[NetworkItem]:
    """LoRAs, then embeddings, each by name; usable ones first. Names are what a prompt says,
    so files of one name are judged as the engine finds them: two LoRAs of one name are both
    refused (``engine.lora.manager``), so both are listed greyed; of two embeddings, the first
    by path is the one used (``engine.prompts.resources``), so only it is listed."""
    groups: dict[tuple[str, str], list[LibraryEntry]] = {}
    for entry in sorted(entries, key=lambda e: e.path):
        if entry.kind in KIND_TITLES:
            groups.setdefault((entry.kind, entry.name.casefold()), []).append(entry)
    items = []
    for (kind, _), group in groups.items():
        if kind == "embedding":
            group = group[:1]
        shared = len(group) > 1
        for entry in group:
            reason = _SHARED_NAME.format(len(group)) if shared else _reason(entry)
            family = family_title(entry.family)
            items.append(NetworkItem(kind, entry.name, entry.path, family, reason))
    kinds = list(KIND_TITLES)
    return sorted(
        items, key=lambda i: (kinds.index(i.kind), not i.usable, i.name.casefold(), i.path)
    )


_SHARED_NAME = "{} LoRA files have this name, so a tag cannot tell them apart: rename one"


def _reason(entry: LibraryEntry) -> str:
    if entry.problem:
        return entry.problem
    # A LoRA of unknown family is tried (the engine counts the layers that match it); an
    # embedding of unknown family has an odd width, which the engine refuses.
    unknown_lora = entry.kind == "lora" and entry.family is None
    if entry.family != USABLE_FAMILY and not unknown_lora:
        return f"made for {family_title(entry.family)}, not for Stable Diffusion 1.x models"
    if entry.kind == "lora" and any(c in entry.name for c in _TAG_BREAKERS):
        return "its file name holds “:”, “<” or “>”, which a tag cannot: rename the file"
    return ""


def insert_into(text: str, cursor: int, snippet: str) -> tuple[str, int]:
    """``text`` with ``snippet`` put at ``cursor`` as a comma-separated part of the prompt:
    "a cat|" -> "a cat, <lora:x:1>"; "|a cat" -> "<lora:x:1>, a cat"; inside a word, after
    it. Returns the new text and the cursor, just after the snippet."""
    while 0 < cursor < len(text) and _in_word(text[cursor - 1]) and _in_word(text[cursor]):
        cursor += 1
    before, after = text[:cursor], text[cursor:]
    left = before.rstrip(" \t")
    if not left or left.endswith(("\n", "(", "[", "|")):
        prefix = ""
    elif left.endswith(","):
        prefix, before = " ", left
    else:
        prefix, before = ", ", left
    right = after.lstrip(" \t")
    if not right or right.startswith((",", "\n", ")", "]", "|")):
        suffix = ""
    else:
        suffix, after = ", ", right
    head = before + prefix + snippet
    return head + suffix + after, len(head)


def _in_word(ch: str) -> bool:
    return ch.isalnum() or ch in "_-"
