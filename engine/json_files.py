"""Small JSON files the person's settings live in: written atomically, and a broken one moved
aside (never lost, never a crash) so the program starts with defaults and can say why."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Unreadable:
    """A file that could not be read as a JSON object, and where it was kept."""

    error: str
    kept_as: str | None  # the backup's file name; None when it could not be moved


def read_json_object(path: Path) -> dict[str, Any] | Unreadable | None:
    """The JSON object in ``path``; None when there is no file; ``Unreadable`` when it is
    broken, after moving it to ``<name>.broken-<time>`` beside it."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except (OSError, ValueError) as exc:
        return Unreadable(str(exc), _move_aside(path))


def _move_aside(path: Path) -> str | None:
    backup = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.replace(backup)
    except OSError:
        return None
    return backup.name


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then rename it over ``path``: a crash
    leaves the old file or the new one, never half of one. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
