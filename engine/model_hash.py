"""The A1111 "Model hash": the first 10 hex digits of the file's sha256, cached on disk because
hashing a 2 GB checkpoint takes seconds."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def model_hash(path: Path, cache_dir: Path | None = None) -> str | None:
    """10-hex-digit hash, or None when the file cannot be read (the metadata then omits it)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = (cache_dir or _default_cache_dir()) / "model-hashes.json"
    cache = _read_cache(cache_file)
    if key in cache:
        return cache[key]
    try:
        value = sha256_file(path)[:10]
    except OSError:
        return None
    cache[key] = value
    _write_cache(cache_file, cache)
    return value


def _default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("latentdesk"))


def _read_cache(file: Path) -> dict[str, str]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _write_cache(file: Path, cache: dict[str, str]) -> None:
    """Best effort: a cache that cannot be written only costs time next run."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache), encoding="utf-8")
        os.replace(tmp, file)
    except OSError:
        pass
