"""Candidate model files in a few folders, by name alone: nothing is opened or read.

What a file really holds (checkpoint, LoRA, VAE, ...) is decided when it is loaded, from its
header; this listing only offers what could be a checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
DIFFUSERS_MARKER = "model_index.json"
MAX_DEPTH = 3  # people sort models into a folder or two; deeper trees are someone else's


def find_model_files(folders: Iterable[Path], max_depth: int = MAX_DEPTH) -> list[Path]:
    """``.safetensors`` / ``.ckpt`` files and diffusers folders under ``folders``, each once.

    Missing or unreadable folders are skipped; hidden entries and symlink loops are not followed.
    A folder that is itself a diffusers model is that one model, not the files inside it.
    """
    found: dict[Path, None] = {}
    for folder in folders:
        folder = Path(folder)
        if _is_diffusers_model(folder):
            found.setdefault(folder, None)
            continue
        for path in _walk(folder, max_depth, set()):
            found.setdefault(path, None)
    return list(found)


def _is_diffusers_model(folder: Path) -> bool:
    try:
        return (folder / DIFFUSERS_MARKER).is_file()
    except OSError:
        return False


def _walk(folder: Path, depth: int, seen: set[tuple[int, int]]) -> Iterator[Path]:
    try:
        stat = folder.stat()
        if (stat.st_dev, stat.st_ino) in seen:
            return
        seen.add((stat.st_dev, stat.st_ino))
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir()
            is_file = not is_dir and entry.is_file()
        except OSError:
            continue
        if is_file and path.suffix.lower() in CHECKPOINT_SUFFIXES:
            yield path
        elif is_dir and _is_diffusers_model(path):
            yield path  # a diffusers model: the folder is the model, do not look inside
        elif is_dir and depth > 1:
            yield from _walk(path, depth - 1, seen)
