"""The vector counts of the library's embeddings, read off the GUI thread for the token counter.

An embedding counts as many tokens as it has vectors; the count is in the file's header. Until a
file's header has been read, the counter counts its name as 1 vector (most embeddings have
1–8); ``changed`` fires when counts arrive, and the counter recounts.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QObject, QThreadPool, Signal

from app.signals import emit
from engine.library.embedding_vectors import embedding_vectors
from engine.library.records import LibraryEntry

UNKNOWN_VECTORS = 1  # counted for an embedding whose header is not read yet


class EmbeddingVectors(QObject):
    changed = Signal()
    _read = Signal(object)  # {path: vectors or None}, from the pool thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._by_path: dict[str, int | None] = {}  # read, or being read (None)
        self._names: dict[str, str] = {}  # embedding name -> path
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._read.connect(self._apply)

    def set_entries(self, entries: Iterable[LibraryEntry]) -> None:
        """Follow the library's embeddings; headers not read yet are read in the background."""
        self._names = {e.name: e.path for e in entries if e.kind == "embedding"}
        todo = [path for path in self._names.values() if path not in self._by_path]
        for path in todo:
            self._by_path[path] = None
        if todo:
            self._pool.start(lambda: emit(self._read, {p: embedding_vectors(p) for p in todo}))
        emit(self.changed)

    def counts(self) -> dict[str, int]:
        """Embedding name -> vectors, for every embedding of the library."""
        return {
            name: self._by_path.get(path) or UNKNOWN_VECTORS for name, path in self._names.items()
        }

    def wait(self, msecs: int = 5000) -> bool:
        """For tests and shutdown: wait for the reads under way."""
        return self._pool.waitForDone(msecs)

    def _apply(self, read: dict[str, int | None]) -> None:
        self._by_path.update(read)
        emit(self.changed)
