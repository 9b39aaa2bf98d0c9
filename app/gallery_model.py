"""This session's pictures, without Qt: the finished images of this run, newest first, saved or
not. Unsaved ones keep their pixels until "Save as…".

The strip (app/gallery.py) shows this; the gallery folders as a whole are the gallery browser's
(the index, app/gallery_service.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.jobs import FinishedImage


@dataclass(eq=False)  # entries are told apart by identity: two may hold the same values
class GalleryEntry:
    path: Path | None  # None: not saved yet
    parameters: str = ""  # "" until read (files are read on first use)
    array: np.ndarray | None = None  # kept for unsaved images, so "Save as…" can write them
    on_disk: bool = False  # its file was there when it was added: if it goes, so does the entry


class GalleryError(Exception):
    """An action on an image failed; the message is for the person."""


class GalleryModel:
    def __init__(self) -> None:
        self.entries: list[GalleryEntry] = []  # newest first

    def add(self, image: FinishedImage) -> GalleryEntry:
        """A just-finished image, in front. Unsaved ones keep their pixels for "Save as…"."""
        entry = GalleryEntry(image.path, image.parameters)
        if image.path is None:
            entry.array = image.array
        else:
            entry.on_disk = image.path.exists()
        self.entries.insert(0, entry)
        return entry

    def parameters(self, entry: GalleryEntry) -> str:
        if not entry.parameters and entry.path is not None:
            from engine.image_metadata import read_png_parameters

            entry.parameters = read_png_parameters(entry.path) or ""  # a small chunk, read once
        return entry.parameters

    def forget_missing(self) -> list[GalleryEntry]:
        """Drop the saved entries whose file is gone (deleted or moved by another program, or
        through the gallery browser); returns them. Unsaved ones always stay."""
        gone = [e for e in self.entries if e.on_disk and e.path and not e.path.exists()]
        self.entries = [e for e in self.entries if e not in gone]
        return gone

    def entry_for_path(self, path: Path) -> GalleryEntry | None:
        return next((e for e in self.entries if e.path == path), None)

    def delete(self, entry: GalleryEntry) -> None:
        """Remove the file (if saved) and the entry. A file already gone is no error."""
        if entry.path is not None:
            try:
                entry.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise GalleryError(
                    f"Could not delete {entry.path.name}: {exc.strerror or exc}"
                ) from exc
        self.entries.remove(entry)

    def save_as(self, entry: GalleryEntry, path: str | Path) -> Path:
        """Write an unsaved image to exactly ``path``; from then on it is a saved entry."""
        from engine import EngineError
        from engine.output import save_png_to

        if entry.array is None:
            raise GalleryError("This image is saved already.")
        try:
            saved = save_png_to(path, entry.array, entry.parameters)
        except EngineError as exc:
            raise GalleryError(str(exc)) from exc
        entry.path, entry.array, entry.on_disk = saved, None, True
        return saved
