"""Pictures, records and a stand-in for the gallery service, shared by the browser tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QFile, QObject, Signal

from app.signals import emit
from engine.gallery.index import GalleryIndex, IndexedPicture
from engine.output import save_png_to

PARAMS = (
    "a lighthouse at dusk\nNegative prompt: blurry\n"
    "Steps: 12, Sampler: Euler a, CFG scale: 5.5, Seed: 99, Size: 64x48, Model: tiny"
)


def write_png(path: Path, value: int, parameters: str = PARAMS, size=(48, 64)) -> Path:
    """A tiny PNG of one grey value carrying ``parameters``."""
    return save_png_to(path, np.full((*size, 3), value, np.uint8), parameters)


def record(path: Path, mtime: float, prompt: str = "", **fields) -> IndexedPicture:
    """An index record for ``path`` as if read from the file, with the stat the file has."""
    st = path.stat() if path.exists() else None
    values = dict(
        path=path,
        folder=path.parent,
        mtime=mtime,
        size_bytes=st.st_size if st else 0,
        width=64,
        height=48,
        tool="Latentdesk",
        prompt=prompt,
        negative_prompt="",
        model="tiny",
        seed=1,
        sampler="Euler a",
        schedule=None,
        steps=12,
        cfg_scale=5.5,
        starred=False,
    )
    values.update(fields)
    return IndexedPicture(**values)


class IndexService(QObject):
    """The service's API over an index written on the calling thread: no watcher, no worker.

    The browser tests need the index's content to be exactly what they put in, at once; the
    real service (app/gallery_service.py) is tested on its own and in the window test.
    """

    changed = Signal()
    notice = Signal(str)

    def __init__(self, db_path: Path) -> None:
        super().__init__()
        self.writer = GalleryIndex.open(db_path)
        self._reader = GalleryIndex.open(db_path, readonly=True)
        self.trashed: list[Path] = []

    def reader(self) -> GalleryIndex:
        return self._reader

    def add(self, pictures: list[IndexedPicture]) -> None:
        self.writer.add_records(pictures)
        emit(self.changed)

    def set_starred(self, path: Path, starred: bool) -> None:
        self.writer.set_starred(path, starred)
        emit(self.changed)

    def trash(self, path: Path) -> bool:
        if not QFile.moveToTrash(str(path)):
            return False
        self.trashed.append(path)
        self.writer.forget(path)
        emit(self.changed)
        return True

    def close(self) -> None:
        self._reader.close()
        self.writer.close()
