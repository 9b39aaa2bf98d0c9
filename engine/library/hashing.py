"""The A1111 "Model hash": the first 10 hex digits of the file's sha256, kept in the model
library's scan cache (keyed by path, size and mtime) because hashing a 2 GB checkpoint takes
seconds. A download that verified the file's sha256 stores it there too, so it is never
computed again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from engine.library.cache import CACHE_FILE, known_short_hash, remember_short_hash

CHUNK = 1 << 20


def sha256_file(path: Path, start: int = 0) -> str:
    """The sha256 of the file's bytes from ``start`` on (A1111 hashes a LoRA's tensor data only)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def model_hash(path: Path, cache_dir: Path | None = None) -> str | None:
    """10-hex-digit hash, or None when the file cannot be read (the metadata then omits it).
    ``cache_dir``: where the library cache lives (default: the user cache folder)."""
    cache_path = cache_dir / CACHE_FILE if cache_dir is not None else None
    known = known_short_hash(path, cache_path=cache_path)
    if known is not None:
        return known
    try:
        before = _fingerprint(path)
        value = sha256_file(path)[:10]
    except OSError:
        return None
    if _fingerprint(path) == before:  # not rewritten while it was read
        remember_short_hash(path, value, cache_path=cache_path)
    return value


def _fingerprint(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns
