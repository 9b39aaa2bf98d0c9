"""The hash A1111 writes for a LoRA under ``Lora hashes``, kept in a cache.

A1111 (``extensions-builtin/Lora/network.py``, ``NetworkOnDisk``) takes the file's
``sshs_model_hash`` metadata when kohya's trainer wrote it, else its own sha256: for a
safetensors file the "addnet" hash, the sha256 of the bytes after the header (so editing the
metadata does not change it; kohya's ``sshs_model_hash`` is that same hash), for other files the
sha256 of the whole file. It writes the first 12 hex digits (``shorthash``), as
``Lora hashes: "name: 0123456789ab, other: ..."`` with ``:`` and ``,`` removed from the names.

Hashing a large file takes seconds, so hashes are cached in a JSON file by (real path, size,
mtime): a file is read once, not at every job. A cache that cannot be read or written only
costs time.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from pathlib import Path

from engine.json_files import write_atomically
from engine.library.hashing import sha256_file

SHORT = 12
CACHE_FILE = "lora-hashes.json"
_lock = threading.Lock()


def default_cache_path() -> Path:
    from engine.library.config import cache_dir

    return cache_dir() / CACHE_FILE


def lora_hash(path: Path, metadata: dict[str, str], cache_path: Path | None = None) -> str:
    """12 hex digits, or "" when the file cannot be read (the metadata then omits it)."""
    given = metadata.get("sshs_model_hash", "").strip().lower()
    if len(given) >= SHORT and all(c in "0123456789abcdef" for c in given):
        return given[:SHORT]
    cache_path = cache_path or default_cache_path()
    try:
        stat = os.stat(path)
        key = os.path.realpath(path)
        known = _read(cache_path).get(key)
        if (
            known
            and known.get("size") == stat.st_size
            and known.get("mtime_ns") == stat.st_mtime_ns
        ):
            return str(known["sha256"])[:SHORT]
        digest = file_digest(path)
    except (OSError, struct.error):
        return ""
    _remember(cache_path, key, stat.st_size, stat.st_mtime_ns, digest)
    return digest[:SHORT]


def file_digest(path: Path) -> str:
    """A1111's sha256 of a LoRA file: after the header for safetensors, else the whole file."""
    start = 0
    if path.suffix.lower() == ".safetensors":
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
        start = 8 + header_len
    return sha256_file(path, start)


def _read(cache_path: Path) -> dict[str, dict]:
    try:
        data = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return (
        {k: v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}
    )


def _remember(cache_path: Path, key: str, size: int, mtime_ns: int, digest: str) -> None:
    with _lock:
        files = _read(cache_path)
        files[key] = {"size": size, "mtime_ns": mtime_ns, "sha256": digest}
        try:
            write_atomically(cache_path, json.dumps({"version": 1, "files": files}))
        except OSError:
            pass  # only costs a hash next time
