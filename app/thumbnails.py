"""Thumbnails for the gallery browser: made off the GUI thread, kept on disk and in memory.

``ThumbnailCache.thumbnail(path, mtime, size_bytes)`` answers at once: the pixmap when it is in
memory, ``None`` while it is being made (the view draws a placeholder; ``ready(path)`` follows).
Only what the view paints is asked for, so only visible cells cost anything. Requests wait in a
short queue served newest first: cells scrolled past quickly are dropped, not decoded.

Pool threads make ``QImage``s only (a ``QPixmap`` belongs to the GUI thread): each thumbnail is
read from the disk cache (the platformdirs cache folder) when one exists for the file's path,
size and mtime, else decoded from the file (scaled while decoding) and written there. A replaced
file has another size or mtime, hence another cache file; the least recently used files go when
the folder outgrows ``MAX_DISK_BYTES``. A file that cannot be read gets a
"broken picture" tile, never an error dialog per cell.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import platformdirs
from PySide6.QtCore import QObject, QRunnable, Qt, QThread, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap

from app.imageio import read_image
from app.settings import APP_NAME
from app.signals import emit

THUMB_SIZE = 160  # pixels on the longer side
MEMORY_ITEMS = 400  # pixmaps kept: about 40 MB, several screens of a large window
MAX_QUEUED = 160  # older requests (cells scrolled past) are dropped
# Threads making thumbnails: one core stays free for the GUI thread (and generation).
WORKERS = max(1, min(2, QThread.idealThreadCount() - 1))
FORMAT_VERSION = "1"  # part of every key: a change of format gives new files
MAX_DISK_BYTES = 256 * 2**20  # 10,000 thumbnails take about 100 MB

# (path, mtime, size in bytes) as the index knows them: the memory cache's key.
Key = tuple[str, float, int]


def thumbnail_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "thumbnails"


def cache_file_stem(path: Path, size_bytes: int, mtime_ns: int, thumb_size: int) -> str:
    """The disk cache's name for one file's thumbnail: a hash of what identifies its content."""
    ident = f"{FORMAT_VERSION}\0{path}\0{size_bytes}\0{mtime_ns}\0{thumb_size}"
    return hashlib.sha1(ident.encode("utf-8", "surrogatepass")).hexdigest()


class ThumbnailFiles:
    """The on-disk half: plain functions of a folder, safe to call from any thread."""

    def __init__(self, folder: Path, size: int = THUMB_SIZE) -> None:
        self.folder = folder
        self.size = size

    def cached_path(self, path: Path) -> Path:
        """Where ``path``'s thumbnail is kept (without suffix). Raises OSError if it is gone."""
        st = os.stat(path)
        stem = cache_file_stem(path.absolute(), st.st_size, st.st_mtime_ns, self.size)
        return self.folder / stem[:2] / stem

    def load_or_make(self, path: Path) -> tuple[QImage, bool]:
        """The thumbnail and whether it came from the disk cache. Raises ValueError with a
        message for a person when the file cannot be read."""
        try:
            stem = self.cached_path(path)
        except OSError as exc:
            raise ValueError(f"{path.name} cannot be read: {exc.strerror or exc}") from exc
        for suffix in (".jpg", ".png"):
            kept = stem.with_suffix(suffix)
            if kept.is_file():
                image = QImage(str(kept))
                if not image.isNull():
                    with contextlib.suppress(OSError):
                        os.utime(kept)  # used now: ``prune`` removes the least recently used
                    return image, True
        image = read_image(path, self.size)  # scaled while decoding, as the strip does
        self._keep(stem, image)
        return image, False

    def prune(self, max_bytes: int = MAX_DISK_BYTES) -> int:
        """Over ``max_bytes``, remove the least recently used thumbnails down to 80% of it.
        Returns how many files went; a folder that cannot be read is left alone."""
        files: list[tuple[float, int, str]] = []
        try:
            for sub in os.scandir(self.folder):
                if sub.is_dir(follow_symlinks=False):
                    for entry in os.scandir(sub.path):
                        st = entry.stat(follow_symlinks=False)
                        files.append((st.st_mtime, st.st_size, entry.path))
        except OSError:
            return 0
        total = sum(size for _, size, _ in files)
        if total <= max_bytes:
            return 0
        removed = 0
        for _, size, path in sorted(files):
            if total <= max_bytes * 0.8:
                break
            with contextlib.suppress(OSError):
                os.remove(path)
                total -= size
                removed += 1
        return removed

    def _keep(self, stem: Path, image: QImage) -> None:
        """Write atomically; a cache that cannot be written only means making it again."""
        # JPEG is a tenth of PNG's size for photos; transparency needs PNG.
        suffix, kind = (".png", "PNG") if image.hasAlphaChannel() else (".jpg", "JPEG")
        try:
            stem.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=stem.parent, prefix=".", suffix=".tmp")
            os.close(fd)
        except OSError:
            return
        # The stubs want bytes for the format; PySide6 accepts only str at run time.
        if image.save(temp, kind, 85):  # type: ignore[call-overload]
            with contextlib.suppress(OSError):
                os.replace(temp, stem.with_suffix(suffix))
                return
        with contextlib.suppress(OSError):
            os.remove(temp)


class _Job(QRunnable):
    def __init__(self, cache: ThumbnailCache, key: Key, files: ThumbnailFiles) -> None:
        super().__init__()
        self.cache, self.key, self.files = cache, key, files

    def run(self) -> None:
        try:
            image, from_disk = self.files.load_or_make(Path(self.key[0]))
        except ValueError as exc:
            emit(self.cache._failed, self.key, str(exc))
            return
        emit(self.cache._made, self.key, image, from_disk)


class _Prune(QRunnable):
    def __init__(self, files: ThumbnailFiles) -> None:
        super().__init__()
        self.files = files

    def run(self) -> None:
        self.files.prune()


class ThumbnailCache(QObject):
    """Thumbnails by (path, mtime, size); ``ready(path)`` when one requested is in memory."""

    ready = Signal(str)
    _made = Signal(object, QImage, bool)  # from a pool thread, queued to this object's thread
    _failed = Signal(object, str)

    def __init__(
        self,
        folder: Path | None = None,
        size: int = THUMB_SIZE,
        memory_items: int = MEMORY_ITEMS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.files = ThumbnailFiles(folder or thumbnail_dir(), size)
        self.size = size
        self.memory_items = memory_items
        self._memory: OrderedDict[Key, QPixmap] = OrderedDict()  # least recently used first
        self._broken: set[Key] = set()
        self._queue: OrderedDict[Key, None] = OrderedDict()  # newest last
        self._running: set[Key] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(WORKERS)
        self._broken_tile: QPixmap | None = None
        self.made = self.from_disk = self.failures = 0  # counts, for the status line and tests
        self._made.connect(self._on_made)
        self._failed.connect(self._on_failed)
        self._pool.start(_Prune(self.files))  # once per window: a walk of the folder

    def thumbnail(self, path: Path | str, mtime: float, size_bytes: int) -> QPixmap | None:
        """The pixmap if ready (or the broken tile); else ``None``, and it is requested."""
        key = (str(path), mtime, size_bytes)
        pixmap = self._memory.get(key)
        if pixmap is not None:
            self._memory.move_to_end(key)
            return pixmap
        if key in self._broken:
            return self.broken_tile()
        self._request(key)
        return None

    def pending(self) -> int:
        return len(self._queue) + len(self._running)

    def wait_idle(self, msecs: int = 5000) -> bool:
        """Wait for the pool's running jobs (not the queue): before the cache goes away."""
        self._queue.clear()
        return self._pool.waitForDone(msecs)

    def broken_tile(self) -> QPixmap:
        if self._broken_tile is None:
            self._broken_tile = _broken_tile(self.size)
        return self._broken_tile

    def _request(self, key: Key) -> None:
        if key in self._running:
            return
        self._queue.pop(key, None)
        self._queue[key] = None
        while len(self._queue) > MAX_QUEUED:
            self._queue.popitem(last=False)
        self._pump()

    def _pump(self) -> None:
        while self._queue and len(self._running) < WORKERS:
            key, _ = self._queue.popitem(last=True)
            self._running.add(key)
            self._pool.start(_Job(self, key, self.files))

    def _on_made(self, key: Key, image: QImage, from_disk: bool) -> None:
        self._running.discard(key)
        if from_disk:
            self.from_disk += 1
        else:
            self.made += 1
        self._memory[key] = QPixmap.fromImage(image)  # the GUI thread: pixmaps are made here
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)
        emit(self.ready, key[0])
        self._pump()

    def _on_failed(self, key: Key, _message: str) -> None:
        self._running.discard(key)
        self.failures += 1
        self._broken.add(key)
        emit(self.ready, key[0])
        self._pump()


def _broken_tile(size: int) -> QPixmap:
    """A grey frame with a torn picture: readable in the light and the dark theme."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(128, 128, 128, 50))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor(140, 140, 140), 2))
    m = size // 4
    painter.drawRect(m, m, size - 2 * m, size - 2 * m)
    painter.setPen(QPen(QColor(200, 70, 70), 3))
    painter.drawLine(m, m, size - m, size - m)
    painter.setPen(QColor(140, 140, 140))
    painter.drawText(0, size - m, size, m, Qt.AlignmentFlag.AlignCenter, "Cannot read")
    painter.end()
    return pixmap
