"""What changed in the watched gallery directories since the last look, without Qt.

The file watcher only says "something in this directory changed"; ``FolderLooks`` remembers
each directory's pictures (size, mtime) and answers which files to re-index: new, replaced and
removed ones, and new or vanished subdirectories.

A file another program is still writing must not be indexed half-written. It counts as complete
once it has not changed for ``SETTLE_SECONDS``: by its mtime, or (when the file's clock differs
from ours, as on network shares) by two looks that far apart. A writer pausing longer than that
gets its file indexed early; the watcher does not report writes into a file, so files indexed
in the last minute are stat'ed again at each poll and indexed again if they changed. Used on
the gallery service's worker thread only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.gallery.scan import is_picture_name

Stamp = tuple[int, int]  # (size in bytes, mtime in nanoseconds)
SETTLE_SECONDS = 0.5  # a file unchanged this long is complete
RECENT_SECONDS = 60.0  # files indexed this recently are checked again at each poll


@dataclass
class _Dir:
    mtime_ns: int  # of the directory itself: changes when entries come and go
    files: dict[str, Stamp] = field(default_factory=dict)  # pictures as indexed
    subdirs: set[str] = field(default_factory=set)


@dataclass
class Look:
    changed: list[Path] = field(default_factory=list)  # for GalleryIndex.update_paths
    new_dirs: list[Path] = field(default_factory=list)  # to watch
    gone_dirs: list[Path] = field(default_factory=list)  # to stop watching
    unsettled_dirs: list[Path] = field(default_factory=list)  # to look at again soon

    def add(self, other: Look) -> None:
        self.changed += other.changed
        self.new_dirs += other.new_dirs
        self.gone_dirs += other.gone_dirs
        self.unsettled_dirs += other.unsettled_dirs


class FolderLooks:
    def __init__(
        self, clock: Callable[[], float] = time.time, settle_seconds: float = SETTLE_SECONDS
    ) -> None:
        self._clock = clock
        self._settle = settle_seconds
        self._roots: list[Path] = []
        self._dirs: dict[Path, _Dir] = {}
        self._unsettled: dict[Path, tuple[Stamp, float]] = {}  # file -> (stamp, first seen)
        self._recent: dict[Path, tuple[Stamp, float]] = {}  # file -> (stamp, when indexed)
        self._limit = 0

    def start(self, roots: Iterable[Path], limit: int) -> list[Path]:
        """Remember the directories under ``roots`` as they are now (the index has just been
        synced against them); returns them, to be watched. At most ``limit`` directories."""
        self._limit = max(self._limit, limit)
        found: list[Path] = []
        for root in roots:
            if root not in self._roots:
                self._roots.append(root)
            found += self._remember_tree(root)
        return found

    def forget(self, root: Path) -> list[Path]:
        """Stop looking at ``root`` and its subdirectories; returns those to stop watching."""
        self._roots = [r for r in self._roots if r != root]
        gone = [d for d in self._dirs if d == root or d.is_relative_to(root)]
        for d in gone:
            del self._dirs[d]
        self._unsettled = {f: s for f, s in self._unsettled.items() if f.parent not in gone}
        self._recent = {f: s for f, s in self._recent.items() if f.parent not in gone}
        return gone

    def look(self, dirs: Iterable[Path]) -> Look:
        """What changed in ``dirs`` since the last look (the watcher named them)."""
        result = Look()
        for d in dirs:
            if d in self._dirs or d in self._roots:
                result.add(self._look_at(d))
        return result

    def poll(self) -> Look:
        """For file systems that never signal: directories whose own time changed, vanished
        roots that came back, files still waiting to settle, and recently indexed files that
        changed since (written on after a pause)."""
        due = {f.parent for f in self._unsettled}
        due.update(f.parent for f in self._recently_changed())
        for d, state in list(self._dirs.items()):
            if _mtime_ns(d) != state.mtime_ns:
                due.add(d)
        due.update(r for r in self._roots if r not in self._dirs and r.is_dir())
        return self.look(sorted(due))

    # -- one directory ----------------------------------------------------------------------

    def _remember_tree(self, root: Path) -> list[Path]:
        remembered: list[Path] = []
        pending = [root]
        while pending and len(self._dirs) < self._limit:
            d = pending.pop()
            listed = _list(d)
            if listed is None:
                continue
            mtime_ns, files, subdirs = listed
            self._dirs[d] = _Dir(mtime_ns, files, set(subdirs))
            remembered.append(d)
            pending += [d / name for name in subdirs if d / name not in self._dirs]
        return remembered

    def _look_at(self, d: Path) -> Look:
        result = Look()
        listed = _list(d)
        state = self._dirs.get(d)
        if listed is None:  # gone (or unreadable): its pictures leave the index
            if state is not None:
                result.changed.append(d)
                result.gone_dirs += self._drop_tree(d)
            return result
        mtime_ns, files, subdirs = listed
        if state is None:  # a root that came back
            if len(self._dirs) >= self._limit:
                return result
            state = self._dirs[d] = _Dir(mtime_ns)
            result.new_dirs.append(d)
        state.mtime_ns = mtime_ns
        self._files_changed(d, state, files, result)
        self._subdirs_changed(d, state, set(subdirs), result)
        return result

    def _files_changed(self, d: Path, state: _Dir, files: dict[str, Stamp], result: Look) -> None:
        for name, stamp in files.items():
            if state.files.get(name) == stamp:
                continue
            path = d / name
            if self._settled(path, stamp):
                self._unsettled.pop(path, None)
                self._recent[path] = (stamp, self._clock())
                state.files[name] = stamp
                result.changed.append(path)
            else:
                if d not in result.unsettled_dirs:
                    result.unsettled_dirs.append(d)
        for name in set(state.files) - set(files):
            del state.files[name]
            self._recent.pop(d / name, None)
            result.changed.append(d / name)
        for path in [f for f in self._unsettled if f.parent == d and f.name not in files]:
            del self._unsettled[path]  # removed before it settled

    def _subdirs_changed(self, d: Path, state: _Dir, subdirs: set[str], result: Look) -> None:
        for name in sorted(subdirs - state.subdirs):
            sub = d / name
            if len(self._dirs) >= self._limit:
                break
            state.subdirs.add(name)
            self._dirs[sub] = _Dir(0)  # empty: everything in it is new
            result.new_dirs.append(sub)
            result.add(self._look_at(sub))
        for name in state.subdirs - subdirs:
            state.subdirs.discard(name)
            sub = d / name
            result.changed.append(sub)
            result.gone_dirs += self._drop_tree(sub)

    def _drop_tree(self, d: Path) -> list[Path]:
        gone = [x for x in self._dirs if x == d or x.is_relative_to(d)]
        for x in gone:
            del self._dirs[x]
        return gone

    def _settled(self, path: Path, stamp: Stamp) -> bool:
        """Complete: unchanged for the settle time, by its mtime or by our own looks."""
        now = self._clock()
        seen = self._unsettled.get(path)
        first_seen = seen[1] if seen is not None and seen[0] == stamp else now
        if now - stamp[1] / 1e9 >= self._settle or now - first_seen >= self._settle:
            return True
        self._unsettled[path] = (stamp, first_seen)
        return False

    def _recently_changed(self) -> list[Path]:
        now = self._clock()
        self._recent = {f: s for f, s in self._recent.items() if now - s[1] < RECENT_SECONDS}
        return [f for f, (stamp, _) in self._recent.items() if _stamp(f) != stamp]


def _stamp(path: Path) -> Stamp | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def _mtime_ns(d: Path) -> int | None:
    try:
        return os.stat(d).st_mtime_ns
    except OSError:
        return None


def _list(d: Path) -> tuple[int, dict[str, Stamp], list[str]] | None:
    """(the directory's mtime, its pictures with stamps, its visible subdirectories), or None
    when it cannot be listed. The directory's time is taken first: a change during the listing
    shows up at the next poll rather than being lost."""
    try:
        mtime_ns = os.stat(d).st_mtime_ns
        entries = list(os.scandir(d))
    except OSError:
        return None
    files: dict[str, Stamp] = {}
    subdirs: list[str] = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith("."):
                    subdirs.append(entry.name)
            elif is_picture_name(entry.name) and entry.is_file():
                status = entry.stat()
                files[entry.name] = (status.st_size, status.st_mtime_ns)
        except OSError:
            continue  # vanished while listed
    return mtime_ns, files, subdirs
