"""The sketch kept across runs: each layer one PNG in the data folder, restored at start.

A layer is a name ("sketch" today; a mask goes beside it as "mask") and a function that gives
its current image. A change schedules a save at most ``SAVE_DELAY_MS`` later, even in the middle
of a long stroke, so a crash loses only the last seconds. Encoding runs on one background
thread (a 512² sketch takes 12-25 ms, a 2048² one up to 400 ms), so writes land in order and
the newest image is the one left on disk. Files are written to a temporary name and renamed, so
a crash never leaves half a PNG; a layer that cannot be read is moved aside and starts blank.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import platformdirs
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QIODevice,
    QObject,
    QRunnable,
    QThreadPool,
    QTimer,
    Signal,
    SignalInstance,
)
from PySide6.QtGui import QImage

from app.imageio import read_image
from app.settings import APP_NAME
from app.signals import emit

SAVE_DELAY_MS = 2000


def sketch_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "sketch"


def encode_png(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    # The stubs want bytes for the format; PySide6 accepts only str at run time.
    if not image.save(buffer, "PNG"):  # type: ignore[call-overload]
        raise OSError("the image could not be encoded as PNG")
    return bytes(data.data())


def write_png_atomic(path: Path, image: QImage) -> None:
    """Write ``image`` to ``path`` as PNG: a temporary file, synced, then renamed over it."""
    data = encode_png(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class _Write(QRunnable):
    def __init__(self, store: SketchStore, path: Path, image: QImage) -> None:
        super().__init__()
        self.store, self.path, self.image = store, path, image

    def run(self) -> None:
        try:
            write_png_atomic(self.path, self.image)
        except OSError as exc:
            emit(self.store.failed, f"The sketch could not be kept in {self.path.parent}: {exc}")


class _Read(QRunnable):
    def __init__(self, store: SketchStore, layers: list[tuple[str, Path]]) -> None:
        super().__init__()
        self.store, self.layers = store, layers

    def run(self) -> None:
        for layer, path in self.layers:
            if not path.exists():
                continue
            try:
                image = read_image(path)
            except ValueError:
                emit(self.store.damaged, _set_aside(layer, path))
                continue
            emit(self.store.restored, layer, image)


def _set_aside(layer: str, path: Path) -> str:
    """Move a damaged file out of the way (the next save would overwrite it); say so."""
    aside = path.with_name(f"{path.stem}.damaged.png")
    try:
        os.replace(path, aside)
        where = f"it was moved to {aside}"
    except OSError:
        where = f"it is {path}"
    return f"The saved {layer} could not be read, so it starts blank ({where})."


class SketchStore(QObject):
    """Keeps named image layers in ``folder``; ``restore()`` answers with ``restored``."""

    restored = Signal(str, QImage)  # layer, image
    damaged = Signal(str)  # a message: a saved layer could not be read and starts blank
    failed = Signal(str)  # a message: a save failed (disk full, no permission)

    def __init__(
        self,
        folder: Path | None = None,
        delay_ms: int = SAVE_DELAY_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.folder = folder or sketch_dir()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # in order: a newer image is never overwritten by older
        self._sources: dict[str, Callable[[], QImage]] = {}
        self._dirty: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.save_changed)

    def path(self, layer: str) -> Path:
        return self.folder / f"{layer}.png"

    def track(self, layer: str, snapshot: Callable[[], QImage], changed: SignalInstance) -> None:
        """Save ``snapshot()`` as ``layer`` a little after each ``changed``."""
        self._sources[layer] = snapshot
        changed.connect(lambda *_: self.mark_changed(layer))

    def restore(self, layers: Iterable[str] | None = None) -> None:
        """Read the saved layers (all tracked ones by default) off the GUI thread."""
        names = list(self._sources) if layers is None else list(layers)
        self._pool.start(_Read(self, [(name, self.path(name)) for name in names]))

    def mark_changed(self, layer: str) -> None:
        self._dirty.add(layer)
        if not self._timer.isActive():  # not restarted: a long stroke is saved as it goes
            self._timer.start()

    def save_changed(self) -> None:
        """Hand the changed layers to the writer thread now."""
        for layer in sorted(self._dirty):
            self._pool.start(_Write(self, self.path(layer), self._sources[layer]()))
        self._dirty.clear()

    def flush(self) -> None:
        """At close: wait for pending writes, then write what changed since. Raises OSError."""
        self._timer.stop()
        self._pool.waitForDone()
        dirty, self._dirty = sorted(self._dirty), set()
        for layer in dirty:
            write_png_atomic(self.path(layer), self._sources[layer]())
