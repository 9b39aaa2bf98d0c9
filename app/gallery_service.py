"""The gallery index while the app runs: one writer on its own thread, kept up to date by a
file watcher, and a read-only index for the GUI thread.

Every call on the writer ``GalleryIndex`` runs on one worker thread (sqlite connections belong
to the thread that opened them); the GUI thread only reads, through ``reader()``. Folders are
watched with ``QFileSystemWatcher``: a directory change waits ~300 ms for more (a batch of
pictures is one update), then the worker looks at that directory and hands the files that
changed to ``update_paths``. A file another program is still writing (its size or time still
changing, and written just now) waits for a second look. A slow poll of the directories' own
times catches file systems that never signal (network shares, some FUSE mounts).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import (
    QFile,
    QFileSystemWatcher,
    QObject,
    QStandardPaths,
    QThreadPool,
    QTimer,
    Signal,
)

from app.gallery_watch import FolderLooks, Look
from app.signals import emit
from engine.gallery.index import GalleryIndex, default_index_path
from engine.gallery.scan import normalized

DEBOUNCE_MS = 300
POLL_MS = 5_000  # one stat per directory: cheap even for a large gallery
MAX_WATCHED_DIRS = 2_000  # beyond this the poll alone keeps watch (inotify watches are limited)


class GalleryService(QObject):
    """Owns the writer index and the watch over the gallery folders.

    ``changed`` fires when pictures were added, removed or changed (views refresh); ``notice``
    carries a message for the person (the database was rebuilt, an update failed); ``syncing``
    says when a full pass over the folders starts and ends.
    """

    changed = Signal()
    notice = Signal(str)
    syncing = Signal(bool)
    # From the worker thread to this object's (the GUI) thread: directories to watch, to stop
    # watching, to look at again (files not settled yet), and the folder list after a change.
    _watch = Signal(object, bool)  # (list[Path], look again once watched)
    _unwatch = Signal(object)  # list[Path]
    _recheck = Signal(object)  # list[Path]
    _folders_known = Signal(object)  # list[Path]
    _rebuilt = Signal()

    def __init__(
        self,
        gallery_dir: Path,
        db_path: Path | None = None,
        *,
        debounce_ms: int = DEBOUNCE_MS,
        poll_ms: int = POLL_MS,
        watch: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.db_path = db_path or default_index_path()
        self.gallery_dir = _absolute(gallery_dir)
        self._folders = [self.gallery_dir]
        self._reader: GalleryIndex | None = None
        self._closed = False
        self._cancel = threading.Event()  # stops a long sync at close
        # One thread that never expires: the writer's connection lives on it.
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._pool.setExpiryTimeout(-1)
        self._writer: GalleryIndex | None = None  # touched on the worker thread only
        self._looks = FolderLooks()  # worker thread only
        self._watcher = QFileSystemWatcher(self) if watch else None
        self._pending: set[Path] = set()
        self._debounce = QTimer(self, singleShot=True, interval=debounce_ms)
        self._debounce.timeout.connect(self._look_at_pending)
        self._poll = QTimer(self, interval=poll_ms)
        self._poll_queued = threading.Event()  # one poll waits at most: not a pile behind a sync
        self._poll.timeout.connect(self._queue_poll)
        if self._watcher is not None:
            self._watcher.directoryChanged.connect(self._directory_changed)
        self._watch.connect(self._add_watches)
        self._unwatch.connect(self._remove_watches)
        self._recheck.connect(self._queue_dirs)
        self._folders_known.connect(self._set_folders)
        self._rebuilt.connect(self._drop_reader)
        self._run(self._open_and_sync)
        self._poll.start()

    # -- the API the views use (GUI thread) -------------------------------------------------

    def reader(self) -> GalleryIndex:
        """A read-only index for the GUI thread (searching, paging, counting)."""
        if self._reader is None:
            self._reader = GalleryIndex.open(self.db_path, readonly=True)
            if self._reader.notice:  # the reader was first to find the database damaged
                emit(self.notice, self._reader.notice)
        return self._reader

    def folders(self) -> list[Path]:
        """The folders shown: the gallery folder first, then the ones the person added."""
        return list(self._folders)

    def add_folder(self, path: Path) -> None:
        path = _absolute(path)
        if path not in self._folders:
            self._folders.append(path)
        self._run(lambda: self._add_and_sync(path))

    def remove_folder(self, path: Path) -> bool:
        """Stop showing ``path`` (its files stay). The gallery folder itself cannot be removed:
        False, with a notice saying where to change it."""
        path = _absolute(path)
        if path == self.gallery_dir:
            emit(
                self.notice,
                "The gallery folder is always shown; to use another one, choose "
                "File › Change gallery folder…",
            )
            return False
        if path in self._folders:
            self._folders.remove(path)
        self._run(lambda: self._remove(path))
        return True

    def set_gallery_folder(self, path: Path) -> None:
        """New pictures go to ``path`` from now on. The old folder stays shown as an added one:
        its pictures do not vanish from the browser; it can be removed there."""
        folder = self.gallery_dir = _absolute(path)
        self._folders = [folder] + [f for f in self._folders if f != folder]
        self._run(lambda: self._add_and_sync(folder))

    def set_starred(self, path: Path, starred: bool) -> None:
        self._run(lambda: self._writer_call(lambda w: w.set_starred(Path(path), starred)))

    def trash(self, path: Path) -> bool:
        """Move ``path`` to the desktop's trash and forget it; False when it could not be."""
        # Qt makes the home trash only inside an existing data folder (~/.local/share), which
        # a fresh account may not have yet.
        data = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
        try:
            Path(data).mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # then Qt says no, and so do we
        if not QFile.moveToTrash(str(path)):
            return False
        self._run(lambda: self._writer_call(lambda w: w.forget(Path(path))))
        return True

    def pictures_written(self, paths: Iterable[Path]) -> None:
        """Pictures this app just saved: indexed at once, without waiting for the watcher."""
        wanted = [Path(p) for p in paths]
        self._run(lambda: self._update(wanted))

    def close(self) -> None:
        """Stop watching, let the worker finish (a running sync stops between files), close."""
        if self._closed:
            return
        self._closed = True
        self._poll.stop()
        self._debounce.stop()
        if self._watcher is not None and self._watcher.directories():
            self._watcher.removePaths(self._watcher.directories())
        self._cancel.set()
        self._pool.clear()  # queued work is dropped; the running task ends soon
        self._pool.start(self._close_writer)
        self._pool.waitForDone()
        self._drop_reader()

    # -- GUI-thread bookkeeping -------------------------------------------------------------

    def _run(self, task: Callable[[], None]) -> None:
        if not self._closed:
            self._pool.start(self._guarded(task))

    def _guarded(self, task: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                task()
            except Exception as exc:  # noqa: BLE001 (a worker thread must never die)
                emit(self.notice, f"The gallery index could not be updated: {exc}")

        return run

    def _queue_poll(self) -> None:
        if not self._poll_queued.is_set():
            self._poll_queued.set()
            self._run(self._poll_dirs)

    def _directory_changed(self, path: str) -> None:
        self._queue_dirs([Path(path)])

    def _queue_dirs(self, dirs: list[Path]) -> None:
        self._pending.update(dirs)
        self._debounce.start()  # (re)starts: a burst of events is one look

    def _look_at_pending(self) -> None:
        dirs, self._pending = sorted(self._pending), set()
        self._run(lambda: self._look(dirs))

    def _add_watches(self, dirs: list[Path], look_again: bool) -> None:
        if self._watcher is None or self._closed:
            return
        have = set(self._watcher.directories())
        room = MAX_WATCHED_DIRS - len(have)
        new = [str(d) for d in dirs if str(d) not in have][: max(0, room)]
        if new:
            self._watcher.addPaths(new)  # a folder that vanished meanwhile is just not added
        if look_again:  # a folder just made: what went into it before the watch began
            self._queue_dirs(dirs)

    def _remove_watches(self, dirs: list[Path]) -> None:
        if self._watcher is None:
            return
        have = set(self._watcher.directories())
        gone = [str(d) for d in dirs if str(d) in have]
        if gone:
            self._watcher.removePaths(gone)

    def _set_folders(self, folders: list[Path]) -> None:
        rest = [f for f in folders if f != self.gallery_dir]
        self._folders = [self.gallery_dir, *rest]
        emit(self.changed)

    def _drop_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # -- on the worker thread ---------------------------------------------------------------

    def _writer_call(self, call: Callable[[GalleryIndex], object]) -> None:
        if self._writer is not None:
            call(self._writer)
            emit(self.changed)

    def _open_and_sync(self) -> None:
        self._writer = GalleryIndex.open(self.db_path)
        if self._writer.notice:
            emit(self._rebuilt)  # a reader opened before points at the file moved aside
            emit(self.notice, self._writer.notice)
        self._writer.add_folder(self.gallery_dir)
        emit(self._folders_known, [_absolute(f) for f in self._writer.folders()])
        self._sync(None)

    def _add_and_sync(self, folder: Path) -> None:
        if self._writer is None:
            return
        self._writer.add_folder(folder)
        emit(self._folders_known, [_absolute(f) for f in self._writer.folders()])
        self._sync([folder])

    def _remove(self, folder: Path) -> None:
        if self._writer is None:
            return
        self._writer.remove_folder(folder)
        emit(self._unwatch, self._looks.forget(folder))
        emit(self._folders_known, [_absolute(f) for f in self._writer.folders()])

    def _sync(self, folders: list[Path] | None) -> None:
        assert self._writer is not None
        # The directories are remembered before the sync: what changes after this moment
        # differs from what was remembered, and the next look or poll finds it.
        roots = folders if folders is not None else self._writer.folders()
        dirs = self._looks.start(roots, MAX_WATCHED_DIRS)
        emit(self.syncing, True)
        try:
            report = self._writer.sync(folders, cancel=self._cancel)
            if report.added or report.updated or report.removed:
                emit(self.changed)
        finally:
            # Watching before "done": signals of one thread arrive in order, so whoever acts on
            # syncing(False) finds the watcher on.
            emit(self._watch, dirs, False)  # the sync has read what is in them
            emit(self.syncing, False)

    def _look(self, dirs: list[Path]) -> None:
        self._apply(self._looks.look(dirs))

    def _poll_dirs(self) -> None:
        self._poll_queued.clear()
        self._apply(self._looks.poll())

    def _update(self, paths: list[Path]) -> None:
        if self._writer is not None and paths:
            report = self._writer.update_paths(paths)
            if report.added or report.updated or report.removed:
                emit(self.changed)

    def _apply(self, look: Look) -> None:
        self._update(look.changed)
        if look.new_dirs:
            emit(self._watch, look.new_dirs, True)
        if look.gone_dirs:
            emit(self._unwatch, look.gone_dirs)
        if look.unsettled_dirs:
            emit(self._recheck, look.unsettled_dirs)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _absolute(path: str | Path) -> Path:
    """As the index keeps folders: absolute, ``~`` expanded, symlinks kept (the person's
    path)."""
    return Path(normalized(path))
