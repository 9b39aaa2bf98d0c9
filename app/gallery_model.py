"""The gallery's contents, without Qt: the folder's images newest first, plus finished images
that could not be saved and live only in memory until "Save as…".

Where the list comes from is a ``GalleryListing``: today a scan of the folder; the gallery index
(SQLite) can take its place behind the same model. The strip (app/gallery.py) only shows this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from app.jobs import FinishedImage

MAX_LISTED = 500  # the strip shows the newest ones; the folder keeps them all


@dataclass(eq=False)  # entries are told apart by identity: two may hold the same values
class GalleryEntry:
    path: Path | None  # None: not saved yet
    parameters: str = ""  # "" until read (files are read on first use)
    array: np.ndarray | None = None  # kept for unsaved images, so "Save as…" can write them


class GalleryError(Exception):
    """An action on an image failed; the message is for the person."""


class GalleryListing(Protocol):
    """Where the images of a gallery folder come from."""

    def images(self, folder: Path) -> list[Path]:
        """Image files in ``folder``, newest first; [] when it cannot be read."""
        ...

    def parameters(self, path: Path) -> str:
        """The generation parameters stored in ``path``; "" when there are none."""
        ...


class FolderListing:
    """Scans the folder on every call: fine for hundreds of files, the index is for more."""

    def images(self, folder: Path) -> list[Path]:
        """PNG files, newest first (our names sort by time; mtime breaks ties)."""
        try:
            files = [p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.name[0] != "."]
        except OSError:
            return []
        files.sort(key=lambda p: (_mtime(p), p.name), reverse=True)
        return files[:MAX_LISTED]

    def parameters(self, path: Path) -> str:
        from engine.image_metadata import read_png_parameters

        return read_png_parameters(path) or ""


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class GalleryModel:
    def __init__(self, listing: GalleryListing | None = None) -> None:
        self.listing: GalleryListing = listing or FolderListing()
        self.folder: Path | None = None
        self.entries: list[GalleryEntry] = []  # newest first

    def set_folder(self, folder: Path) -> None:
        """Show ``folder`` (again): unsaved images stay in front, then the folder's files."""
        self.folder = Path(folder)
        unsaved = [e for e in self.entries if e.path is None]
        self.entries = unsaved + [GalleryEntry(p) for p in self.listing.images(self.folder)]

    def add(self, image: FinishedImage) -> GalleryEntry:
        """A just-finished image, in front. Unsaved ones keep their pixels for "Save as…"."""
        entry = GalleryEntry(image.path, image.parameters)
        if image.path is None:
            entry.array = image.array
        self.entries.insert(0, entry)
        return entry

    def parameters(self, entry: GalleryEntry) -> str:
        if not entry.parameters and entry.path is not None:
            entry.parameters = self.listing.parameters(entry.path)  # a small chunk, read once
        return entry.parameters

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
        entry.path, entry.array = saved, None
        return saved
