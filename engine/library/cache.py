"""The scan cache: what each file was found to be, and its A1111 short hash, keyed by
(real path, size, mtime). A second start reads one JSON file instead of a thousand headers.

A file that changes (new size or mtime) is looked at again. A cache that cannot be read is
silently started afresh: it only ever costs time. Writes are atomic and merge with what is on
disk, so a hash remembered by another part of the app while a scan runs is not lost.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.json_files import write_atomically
from engine.library.config import cache_dir
from engine.library.records import KINDS, Classification

CACHE_FILE = "library-cache.json"
VERSION = 1
_FAMILIES = (None, "sd1", "sd2", "sdxl")
_write_lock = threading.Lock()  # one writer at a time in this process


def default_cache_path() -> Path:
    return cache_dir() / CACHE_FILE


@dataclass(frozen=True)
class CachedFile:
    classification: Classification | None  # None: only the hash is known
    short_hash: str | None


class ScanCache:
    """The cache file's entries in memory; ``save`` writes the new ones back."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_cache_path()
        self._entries = _read(self.path)
        self._changed: dict[str, dict[str, Any]] = {}

    def lookup(self, real_path: str, size: int, mtime_ns: int) -> CachedFile | None:
        entry = self._changed.get(real_path) or self._entries.get(real_path)
        if entry is None or entry["size"] != size or entry["mtime_ns"] != mtime_ns:
            return None
        return CachedFile(_classification(entry), entry.get("short_hash"))

    def store(
        self,
        real_path: str,
        size: int,
        mtime_ns: int,
        classification: Classification | None = None,
        short_hash: str | None = None,
    ) -> None:
        """Record what is known; what this call leaves out is kept from the entry for the same
        (size, mtime), so a classification does not erase a hash and vice versa."""
        known = self.lookup(real_path, size, mtime_ns)
        if known is not None:
            classification = classification or known.classification
            short_hash = short_hash or known.short_hash
        entry: dict[str, Any] = {"size": size, "mtime_ns": mtime_ns, "short_hash": short_hash}
        if classification is not None:
            entry |= {
                "kind": classification.kind,
                "family": classification.family,
                "inpainting": classification.inpainting,
                "problem": classification.problem,
            }
        self._changed[real_path] = entry

    @property
    def changed(self) -> bool:
        return bool(self._changed)

    def save(self) -> None:
        """Best effort: a cache that cannot be written only costs time on the next start."""
        if not self._changed:
            return
        with _write_lock:
            entries = _read(self.path) | self._changed
            try:
                write_atomically(self.path, json.dumps({"version": VERSION, "files": entries}))
            except OSError:
                return
            self._entries, self._changed = entries, {}


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    files = data.get("files")
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items() if isinstance(k, str) and _valid(v)}


def _valid(entry: object) -> bool:
    if not isinstance(entry, dict):
        return False
    ints = all(type(entry.get(k)) is int for k in ("size", "mtime_ns"))
    short_hash = entry.get("short_hash")
    hash_ok = short_hash is None or (isinstance(short_hash, str) and len(short_hash) == 10)
    if "kind" not in entry:
        return ints and hash_ok
    return (
        ints
        and hash_ok
        and entry["kind"] in KINDS
        and entry.get("family") in _FAMILIES
        and isinstance(entry.get("inpainting"), bool)
        and isinstance(entry.get("problem"), str)
    )


def _classification(entry: dict[str, Any]) -> Classification | None:
    if "kind" not in entry:
        return None
    return Classification(entry["kind"], entry["family"], entry["inpainting"], entry["problem"])


# --- the short hash, for engine.library.hashing and downloads ----------------------------------


def _fingerprint(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = os.stat(path)
        return os.path.realpath(path), stat.st_size, stat.st_mtime_ns
    except OSError:
        return None


def known_short_hash(path: Path | str, *, cache_path: Path | None = None) -> str | None:
    """The file's A1111 short hash if it was computed (or downloaded) since it last changed."""
    key = _fingerprint(Path(path))
    if key is None:
        return None
    found = ScanCache(cache_path).lookup(*key)
    return found.short_hash if found else None


def remember_short_hash(
    path: Path | str, short_hash: str, *, cache_path: Path | None = None
) -> None:
    """Store the first 10 hex digits of the file's sha256 (a longer digest is cut)."""
    key = _fingerprint(Path(path))
    if key is None:
        return
    cache = ScanCache(cache_path)
    cache.store(*key, short_hash=short_hash[:10].lower())
    cache.save()
