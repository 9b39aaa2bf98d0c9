"""The files a prompt may name, as the pipeline sees them: a lookup, not the model library.

The session builds it from the library; the pipeline loads only what a prompt really names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from engine.library.records import LibraryEntry


@dataclass(frozen=True)
class PromptResources:
    """``embeddings``: textual-inversion name (the file stem, what a prompt says) -> file."""

    embeddings: Mapping[str, Path] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_entries(cls, entries: Iterable[LibraryEntry]) -> PromptResources:
        """From model-library entries. Every embedding is listed, whatever its family, so that
        one made for another model is refused by name rather than read as words. Two files
        with the same stem: the first by path wins (A1111 keeps one per name too)."""
        embeddings: dict[str, Path] = {}
        for entry in sorted(entries, key=lambda e: e.path):
            if entry.kind == "embedding":
                embeddings.setdefault(entry.name, Path(entry.path))
        return cls(MappingProxyType(embeddings))
