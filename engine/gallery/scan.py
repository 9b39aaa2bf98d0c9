"""Finding the pictures under a gallery folder and reading one into an index row.

Only ``stat`` is needed to tell whether a file changed (size and mtime in nanoseconds), so an
unchanged gallery of 10,000 pictures is checked without opening any of them.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp"})
# Text longer than this is cut before indexing: a hostile file's megabytes of "prompt" would
# only bloat the database; nobody searches beyond it.
MAX_TEXT = 20_000

Stamp = tuple[int, int]  # (size in bytes, mtime in nanoseconds)


def normalized(path: str | os.PathLike[str]) -> str:
    """The absolute path as the index stores it (user folder expanded, symlinks kept: the
    person sees the path they chose)."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def is_picture_name(name: str) -> bool:
    """A picture the index covers: by extension, and not hidden (our writer's temp files and
    other programs' half-written files start with a dot)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in EXTENSIONS


@dataclass
class Walk:
    files: dict[str, Stamp] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)  # folders that could not be listed
    cancelled: bool = False


def walk(start: str, *, skip: Collection[str] = (), cancel: threading.Event | None = None) -> Walk:
    """Every picture under ``start`` with its stamp, subfolders included except hidden ones
    and those in ``skip`` (indexed folders of their own). Symlinked folders are followed once."""
    found = Walk()
    seen: set[tuple[int, int]] = set()
    pending = [start]
    while pending:
        if cancel is not None and cancel.is_set():
            found.cancelled = True
            return found
        folder = pending.pop()
        try:
            status = os.stat(folder)
            if (status.st_dev, status.st_ino) in seen:
                continue  # a symlink loop, or a folder reached twice
            seen.add((status.st_dev, status.st_ino))
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue  # gone: its pictures leave the index
        except OSError:
            found.unreadable.append(folder)  # kept as they are until it can be read again
            continue
        for entry in entries:
            _visit(entry, found, pending, skip)
    return found


def _visit(entry: os.DirEntry[str], found: Walk, pending: list[str], skip: Collection[str]) -> None:
    try:
        if entry.is_dir():
            if not entry.name.startswith(".") and entry.path not in skip:
                pending.append(entry.path)
        elif is_picture_name(entry.name) and entry.is_file():
            status = entry.stat()
            found.files[entry.path] = (status.st_size, status.st_mtime_ns)
    except OSError:
        pass  # vanished while listed, or a dangling symlink: not a picture now


def stamp_of(path: str) -> Stamp | None:
    """The stamp of a picture file, or None when it is not one (gone, a folder, unreadable)."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return status.st_size, status.st_mtime_ns


def read_row(path: str, folder: str, stamp: Stamp) -> dict[str, Any]:
    """The index row of one picture: its metadata (any tool's, via engine.gallery.read) and
    its pixel size. A file that cannot be read still gets a row, so it is shown in the
    gallery (where the person can see it is broken) and not read again at every sync."""
    from engine.gallery.read import read_metadata

    try:
        found = read_metadata(Path(path))
    except Exception:  # one hostile file must not stop the indexing of 10,000
        found = None
    row: dict[str, Any] = {
        "path": path,
        "folder": folder,
        "size_bytes": stamp[0],
        "mtime_ns": stamp[1],
        "tool": None,
        "prompt": "",
        "negative_prompt": "",
    }
    for name in ("model", "sampler", "schedule", "steps", "cfg_scale", "width", "height"):
        row[name] = getattr(found, name, None)
    if found is not None:
        row["tool"] = found.tool
        row["prompt"] = (found.prompt or "")[:MAX_TEXT]
        row["negative_prompt"] = (found.negative_prompt or "")[:MAX_TEXT]
    seed = getattr(found, "seed", None)
    row["seed"] = None if seed is None else str(seed)
    if row["width"] is None or row["height"] is None:
        row["width"], row["height"] = _pixel_size(path)
    return row


def _pixel_size(path: str) -> tuple[int | None, int | None]:
    """Width and height from the image header (Pillow decodes no pixels for ``.size``)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                return int(width), int(height)
    except Exception:  # not an image Pillow knows, truncated, unreadable
        return None, None
