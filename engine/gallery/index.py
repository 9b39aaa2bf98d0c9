"""The gallery index: one SQLite database (FTS5 for prompt text) over the gallery folders.

It lives in the platformdirs data folder (``default_index_path``) and covers the app's gallery
folder and any folder the person adds, with their subfolders. ``sync`` brings it up to date
incrementally (a file is read again only when its size or mtime changed); ``update_paths``
takes a file watcher's events. Search syntax: ``engine.gallery.query``. A damaged or locked
database is moved aside and rebuilt, never a crash (``engine.gallery.database``): ``notice``
then holds a message for the person.

Threads: each ``GalleryIndex`` holds one sqlite3 connection and must be used by the thread that
opened it. The app keeps one writer (``sync``, ``update_paths``, ``set_starred`` ...) on a worker
thread and one ``readonly=True`` index on the GUI thread for paging through ``search``; the
database runs in WAL mode, so the reader never waits for the writer.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from engine.gallery import database as db
from engine.gallery.database import Damaged, GalleryIndexError, transaction, translated_errors
from engine.gallery.query import (
    SORTS,
    Query,
    day_start,
    exclusion_expression,
    match_expression,
    parse_query,
)
from engine.gallery.scan import Stamp, is_picture_name, normalized, read_row, stamp_of, walk

__all__ = [
    "SORTS",
    "GalleryIndex",
    "GalleryIndexError",
    "IndexedPicture",
    "Query",
    "SyncReport",
    "default_index_path",
    "parse_query",
]


@dataclass(frozen=True)
class IndexedPicture:
    path: Path
    folder: Path  # the indexed folder (see ``folders()``) this picture was found under
    mtime: float  # seconds since the epoch (file modification time)
    size_bytes: int
    width: int | None
    height: int | None
    tool: str | None  # the program that wrote the metadata ("A1111", "ComfyUI", ...)
    prompt: str
    negative_prompt: str
    model: str | None
    seed: int | None  # may be beyond 2**63 (ComfyUI)
    sampler: str | None
    schedule: str | None
    steps: int | None
    cfg_scale: float | None
    starred: bool


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    removed: int
    seconds: float
    cancelled: bool = False  # the cancel event stopped it; what was done so far is kept


T = TypeVar("T")
Progress = Callable[[int, int], None]

# Rows read from files are written in batches: each batch is one short transaction, so the
# window's reader sees pictures appear during a first index, and another process (the CLI)
# never waits long for the write lock.
BATCH_ROWS = 256
BATCH_SECONDS = 0.5

_COLUMNS = (
    "path",
    "folder",
    "mtime_ns",
    "size_bytes",
    "width",
    "height",
    "tool",
    "prompt",
    "negative_prompt",
    "model",
    "seed",
    "sampler",
    "schedule",
    "steps",
    "cfg_scale",
)
_UPSERT = (
    f"INSERT INTO pictures ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in _COLUMNS)}) "
    "ON CONFLICT (path) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS[1:])
)
_SELECT = (
    "SELECT "
    + ", ".join(f"p.{name}" for name in _COLUMNS)
    + ", EXISTS (SELECT 1 FROM stars s WHERE s.path = p.path) FROM pictures p"
)
# Ties broken by path, so that pages never repeat or skip a picture.
_ORDERS = {
    "newest": "p.mtime_ns DESC, p.path DESC",
    "oldest": "p.mtime_ns, p.path",
    "prompt": "p.prompt = '', p.prompt COLLATE NOCASE, p.mtime_ns DESC, p.path DESC",
    "model": "p.model IS NULL, p.model COLLATE NOCASE, p.mtime_ns DESC, p.path DESC",
}
assert tuple(_ORDERS) == SORTS


@dataclass
class _Plan:
    """What one folder (or part of one) needs: files to read, rows to drop."""

    folder: str
    to_read: list[tuple[str, Stamp]] = field(default_factory=list)
    known: set[str] = field(default_factory=set)  # of to_read, those already indexed
    vanished: list[str] = field(default_factory=list)


@dataclass
class _Counts:
    added: int = 0
    updated: int = 0
    removed: int = 0
    cancelled: bool = False

    def report(self, started: float) -> SyncReport:
        seconds = time.perf_counter() - started
        return SyncReport(self.added, self.updated, self.removed, seconds, self.cancelled)


class GalleryIndex:
    """The index in one SQLite file. Make it with ``GalleryIndex.open``; use it from one thread.

    ``readonly=True`` opens a reader (search, count, get, folders): for the GUI thread, beside
    one writer on a worker thread. Write methods of a reader raise RuntimeError.
    """

    notice: str | None  # for the person, when the database had to be moved aside and rebuilt

    def __init__(self, db_path: Path, *, readonly: bool, busy_timeout: float):
        """Use ``GalleryIndex.open``."""
        self.db_path = Path(db_path)
        self.readonly = readonly
        self.notice = None
        self._busy_timeout = busy_timeout
        self._connection: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._in_memory = False

    @classmethod
    def open(
        cls, db_path: Path, *, readonly: bool = False, busy_timeout: float = 5.0
    ) -> GalleryIndex:
        """Open (creating it if needed). Never raises for a damaged or locked database: the
        file is moved aside as ``<name>.broken-<timestamp>``, a new one is made, and
        ``notice`` says so (folders and stars are carried over when they can still be read).
        When no file can be made at all, the index lives in memory for this session."""
        index = cls(db_path, readonly=readonly, busy_timeout=busy_timeout)
        index._connect()
        return index

    @classmethod
    def in_memory(cls) -> GalleryIndex:
        """A temporary index that lives as long as this object (the CLI's search of a folder
        that is not indexed)."""
        index = cls(Path(":memory:"), readonly=False, busy_timeout=0.0)
        index._connection = db.connect_in_memory()
        index._in_memory = True
        return index

    def __enter__(self) -> GalleryIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- folders ----------------------------------------------------------------------------

    def folders(self) -> list[Path]:
        """The folders the index covers (each searched with its subfolders)."""
        return [Path(folder) for folder in self._run(self._roots)]

    def add_folder(self, path: Path) -> None:
        """Cover ``path`` from now on (idempotent). Call ``sync`` to index its pictures."""
        self._require_writer()
        folder = normalized(path)

        def add() -> None:
            with transaction(self._db):
                self._db.execute("INSERT OR IGNORE INTO folders (path) VALUES (?)", (folder,))

        self._run(add)

    def remove_folder(self, path: Path) -> None:
        """Stop covering ``path``; its pictures leave the index (the files are not touched;
        their stars are kept, should the folder come back). A folder inside it that was
        added on its own stays."""
        self._require_writer()
        folder = normalized(path)

        def remove() -> None:
            with transaction(self._db):
                self._db.execute("DELETE FROM folders WHERE path = ?", (folder,))
                self._db.execute("DELETE FROM pictures WHERE folder = ?", (folder,))

        self._run(remove)

    # -- keeping up with the files ----------------------------------------------------------

    def sync(
        self,
        folders: Iterable[Path] | None = None,
        *,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> SyncReport:
        """Bring the index up to date with the files on disk (all folders, or these of them;
        folders not added are ignored).

        Incremental: a file is read again only when its (size, mtime_ns) changed; files that
        vanished are removed. ``progress(done, total)`` counts the files being read (called
        at most about a hundred times); ``cancel`` stops between files, keeping what was done
        (``SyncReport.cancelled``).
        """
        self._require_writer()
        chosen = None if folders is None else {normalized(folder) for folder in folders}
        return self._run(lambda: self._sync(chosen, cancel, progress))

    def update_paths(self, paths: Iterable[Path]) -> SyncReport:
        """Re-check just these paths (a file watcher's events): files or folders, existing or
        gone. Paths outside the indexed folders, and hidden ones, are ignored."""
        self._require_writer()
        wanted = [normalized(path) for path in paths]
        return self._run(lambda: self._update_paths(wanted))

    # -- reading ----------------------------------------------------------------------------

    def search(
        self,
        query: str = "",
        *,
        sort: str = "newest",
        limit: int = 200,
        offset: int = 0,
        folder: Path | None = None,
    ) -> list[IndexedPicture]:
        """A page of the pictures matching ``query`` (syntax: ``engine.gallery.query``), in
        ``sort`` order (one of SORTS), optionally only those under ``folder``."""
        if sort not in _ORDERS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        where, parameters = _where(parse_query(query), folder)
        sql = f"{_SELECT}{where} ORDER BY {_ORDERS[sort]} LIMIT ? OFFSET ?"
        parameters += [max(0, limit), max(0, offset)]
        return self._run(lambda: [_picture(row) for row in self._db.execute(sql, parameters)])

    def count(self, query: str = "", *, folder: Path | None = None) -> int:
        """How many pictures match ``query`` (for "123 pictures" and the scroll range)."""
        where, parameters = _where(parse_query(query), folder)
        sql = f"SELECT count(*) FROM pictures p{where}"
        return int(self._run(lambda: self._db.execute(sql, parameters).fetchone()[0]))

    def get(self, path: Path) -> IndexedPicture | None:
        sql = f"{_SELECT} WHERE p.path = ?"
        row = self._run(lambda: self._db.execute(sql, (normalized(path),)).fetchone())
        return None if row is None else _picture(row)

    # -- the person's changes ---------------------------------------------------------------

    def set_starred(self, path: Path, starred: bool) -> None:
        """Star by path: the star survives the file being replaced and re-indexed."""
        self._require_writer()
        sql = (
            "INSERT OR IGNORE INTO stars (path) VALUES (?)"
            if starred
            else "DELETE FROM stars WHERE path = ?"
        )
        self._run(lambda: self._write(sql, [(normalized(path),)]))

    def forget(self, path: Path) -> None:
        """Drop ``path`` and its star (after the app moved the file to the trash)."""
        self._require_writer()
        key = normalized(path)

        def forget() -> None:
            with transaction(self._db):
                self._db.execute("DELETE FROM pictures WHERE path = ?", (key,))
                self._db.execute("DELETE FROM stars WHERE path = ?", (key,))

        self._run(forget)

    def add_records(self, pictures: Iterable[IndexedPicture]) -> None:
        """Insert ready-made records without reading files (tests and benchmarks of the
        window). Their folders need not be indexed folders; a sync leaves them alone then."""
        self._require_writer()
        pictures = list(pictures)
        rows = [_row(picture) for picture in pictures]
        stars = [(row["path"],) for row, p in zip(rows, pictures, strict=True) if p.starred]

        def add() -> None:
            with transaction(self._db):
                self._db.executemany(_UPSERT, rows)
                self._db.executemany("INSERT OR IGNORE INTO stars (path) VALUES (?)", stars)

        self._run(add)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- connection and recovery ------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError("the gallery index is closed")
        return self._connection

    def _require_writer(self) -> None:
        if self.readonly:
            raise RuntimeError("this gallery index was opened read-only")

    def _connect(self) -> None:
        try:
            self._connection = db.connect(
                self.db_path, readonly=self.readonly, busy_timeout=self._busy_timeout
            )
        except Damaged as damaged:
            self._rebuild(damaged.reason)
            return
        except (sqlite3.Error, OSError, GalleryIndexError) as error:
            self._use_memory(f"could not be opened ({error})")
            return
        self._identity = db.file_identity(self.db_path)

    def _rebuild(self, reason: str) -> None:
        """Move the database aside, make a new one with the folders and stars that could be
        read from the old one, and say so in ``notice``."""
        self.close()
        saved = db.salvage(self.db_path)
        try:
            backup = db.move_aside(self.db_path)
            connection = db.connect(self.db_path, readonly=False, busy_timeout=self._busy_timeout)
        except (Damaged, sqlite3.Error, OSError, GalleryIndexError) as error:
            self._use_memory(f"{reason} and could not be replaced ({error})", saved)
            return
        db.restore(connection, saved)
        if self.readonly:
            connection.execute("PRAGMA query_only = ON")
        self._connection = connection
        self._identity = db.file_identity(self.db_path)
        self.notice = (
            f"The gallery index {self.db_path} {reason}. It was kept as {backup.name} and "
            f"a new index is being built from the picture files; {_kept(saved)}"
        )

    def _use_memory(self, reason: str, saved: db.Salvage | None = None) -> None:
        self.close()
        self._connection = db.connect_in_memory()
        self._in_memory = True
        self._identity = None
        if saved is not None:
            db.restore(self._connection, saved)
        self.notice = (
            f"The gallery index {self.db_path} {reason}. A temporary index is used until "
            "Latentdesk is restarted: stars set now will not be kept."
        )

    def _follow_replaced_file(self) -> None:
        """Another connection (the app's other thread, another process) moved a damaged file
        aside and made a new one: reconnect to the new file rather than the moved one."""
        if self._in_memory or self._connection is None:
            return
        if db.file_identity(self.db_path) != self._identity:
            self.close()
            self._connect()

    def _run(self, action: Callable[[], T]) -> T:
        """Run ``action`` against the database; rebuild once if it turns out damaged."""
        self._db  # noqa: B018 - raises when closed
        self._follow_replaced_file()
        try:
            with translated_errors():
                return action()
        except Damaged as damaged:
            self._rebuild(damaged.reason)
        try:
            with translated_errors():
                return action()
        except Damaged as damaged:
            raise GalleryIndexError(
                f"The gallery index {self.db_path} {damaged.reason}, even after rebuilding it."
            ) from damaged

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with transaction(self._db):
            self._db.executemany(sql, rows)

    def _roots(self) -> list[str]:
        return [path for (path,) in self._db.execute("SELECT path FROM folders ORDER BY path")]

    # -- sync -------------------------------------------------------------------------------

    def _sync(
        self, chosen: set[str] | None, cancel: threading.Event | None, progress: Progress | None
    ) -> SyncReport:
        started = time.perf_counter()
        counts = _Counts()
        roots = self._roots()
        plans = []
        for root in roots:
            if chosen is not None and root not in chosen:
                continue
            found = walk(root, skip=_inner(root, roots), cancel=cancel)
            if found.cancelled:
                counts.cancelled = True
                return counts.report(started)
            plans.append(self._plan(root, root, found.files, found.unreadable))
        meter = _Meter(progress, sum(len(plan.to_read) for plan in plans))
        for plan in plans:
            self._apply(plan, counts, cancel, meter)
            if counts.cancelled:
                break
        meter.finish()
        return counts.report(started)

    def _update_paths(self, paths: list[str]) -> SyncReport:
        started = time.perf_counter()
        counts = _Counts()
        roots = self._roots()
        meter = _Meter(None, 0)
        for path in dict.fromkeys(paths):
            root = _root_of(path, roots)
            if root is None or _hidden_below(path, root):
                continue
            if os.path.isdir(path):
                found = walk(path, skip=_inner(root, roots))
                plan = self._plan(root, path, found.files, found.unreadable)
                self._apply(plan, counts, None, meter)
                continue
            stamp = stamp_of(path) if is_picture_name(os.path.basename(path)) else None
            files = {} if stamp is None else {path: stamp}
            self._apply(self._plan(root, path, files, []), counts, None, meter)
        return counts.report(started)

    def _plan(self, root: str, start: str, files: dict[str, Stamp], unreadable: list[str]) -> _Plan:
        """Compare the files found under ``start`` (``root`` or a file or folder inside it)
        with the index's rows there."""
        known = self._known(root, start)
        plan = _Plan(root)
        for path, stamp in files.items():
            if known.get(path) != stamp:
                plan.to_read.append((path, stamp))
                if path in known:
                    plan.known.add(path)
        plan.vanished = [
            path for path in known if path not in files and not _under_any(path, unreadable)
        ]
        return plan

    def _known(self, root: str, start: str) -> dict[str, Stamp]:
        sql = "SELECT path, size_bytes, mtime_ns FROM pictures WHERE folder = ?"
        parameters: list[Any] = [root]
        if start != root:
            low, high = _path_range(start)
            sql += " AND (path = ? OR (path >= ? AND path < ?))"
            parameters += [start, low, high]
        return {path: (size, mtime) for path, size, mtime in self._db.execute(sql, parameters)}

    def _apply(
        self,
        plan: _Plan,
        counts: _Counts,
        cancel: threading.Event | None,
        meter: _Meter,
    ) -> None:
        if plan.vanished:
            self._write("DELETE FROM pictures WHERE path = ?", [(p,) for p in plan.vanished])
            counts.removed += len(plan.vanished)
        batch: list[dict[str, Any]] = []
        batch_started = time.monotonic()
        for path, stamp in plan.to_read:
            if cancel is not None and cancel.is_set():
                counts.cancelled = True
                break
            batch.append(read_row(path, plan.folder, stamp))
            meter.step()
            if len(batch) >= BATCH_ROWS or time.monotonic() - batch_started > BATCH_SECONDS:
                self._store(batch, plan, counts)
                batch, batch_started = [], time.monotonic()
        self._store(batch, plan, counts)

    def _store(self, rows: list[dict[str, Any]], plan: _Plan, counts: _Counts) -> None:
        if not rows:
            return
        self._write(_UPSERT, rows)  # type: ignore[arg-type]
        updated = sum(1 for row in rows if row["path"] in plan.known)
        counts.updated += updated
        counts.added += len(rows) - updated


class _Meter:
    """Calls ``progress(done, total)`` only when the percentage changes (and at the end), so
    a window's event queue is never flooded."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress = progress
        self.total = total
        self.done = 0
        self.shown = -1

    def step(self) -> None:
        self.done += 1
        percent = self.done * 100 // max(1, self.total)
        if self.progress is not None and percent != self.shown:
            self.shown = percent
            self.progress(self.done, self.total)

    def finish(self) -> None:
        if self.progress is not None and self.done != self.total:
            self.progress(self.done, self.total)


def _where(query: Query, folder: Path | None) -> tuple[str, list[Any]]:
    """The WHERE clause (with a leading space, or empty) and its parameters for ``query``."""
    conditions: list[str] = []
    parameters: list[Any] = []
    match = match_expression(query)
    if match is not None:
        conditions.append("p.id IN (SELECT rowid FROM pictures_fts WHERE pictures_fts MATCH ?)")
        parameters.append(match)
    excluded = exclusion_expression(query)
    if excluded is not None:
        conditions.append("p.id NOT IN (SELECT rowid FROM pictures_fts WHERE pictures_fts MATCH ?)")
        parameters.append(excluded)
    for column, values in (("model", query.models), ("sampler", query.samplers)):
        for value in values:
            conditions.append(f"p.{column} LIKE ? ESCAPE '\\'")
            parameters.append(f"%{_like_escaped(value)}%")
    for value in query.tools:
        conditions.append("p.tool LIKE ? ESCAPE '\\'")
        parameters.append(f"{_like_escaped(value)}%")
    for seed in query.seeds:
        conditions.append("p.seed = ?")
        parameters.append(str(seed))
    for width, height in query.sizes:
        conditions.append("p.width = ? AND p.height = ?")
        parameters += [width, height]
    if query.after is not None:
        conditions.append("p.mtime_ns >= ?")
        parameters.append(int(day_start(query.after) * 1e9))
    if query.before is not None:
        conditions.append("p.mtime_ns < ?")
        parameters.append(int(day_start(query.before) * 1e9))
    if query.starred:
        conditions.append("p.path IN (SELECT path FROM stars)")
    if folder is not None:
        low, high = _path_range(normalized(folder))
        conditions.append("p.path >= ? AND p.path < ?")
        parameters += [low, high]
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), parameters


def _like_escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _path_range(folder: str) -> tuple[str, str]:
    """Bounds such that ``low <= path < high`` holds exactly for the paths inside ``folder``:
    an index range, where LIKE 'folder/%' would scan (and mind % and _ in names)."""
    prefix = folder.rstrip(os.sep) + os.sep
    return prefix, prefix[:-1] + chr(ord(os.sep) + 1)


def _inner(root: str, roots: list[str]) -> set[str]:
    """The indexed folders inside ``root``: walked on their own, not as part of ``root``."""
    low, high = _path_range(root)
    return {other for other in roots if low <= other < high}


def _root_of(path: str, roots: list[str]) -> str | None:
    """The innermost indexed folder holding ``path`` (or being it)."""
    holders = [root for root in roots if path == root or _under_any(path, [root])]
    return max(holders, key=len, default=None)


def _under_any(path: str, folders: list[str]) -> bool:
    for folder in folders:
        low, high = _path_range(folder)
        if low <= path < high:
            return True
    return False


def _hidden_below(path: str, root: str) -> bool:
    relative = os.path.relpath(path, root)
    return relative != "." and any(part.startswith(".") for part in relative.split(os.sep))


def _picture(row: Sequence[Any]) -> IndexedPicture:
    (path, folder, mtime_ns, size_bytes, width, height, tool, prompt, negative, model, seed,
     sampler, schedule, steps, cfg_scale, starred) = row  # fmt: skip
    return IndexedPicture(
        path=Path(path),
        folder=Path(folder),
        mtime=mtime_ns / 1e9,
        size_bytes=size_bytes,
        width=width,
        height=height,
        tool=tool,
        prompt=prompt,
        negative_prompt=negative,
        model=model,
        seed=None if seed is None else int(seed),
        sampler=sampler,
        schedule=schedule,
        steps=steps,
        cfg_scale=cfg_scale,
        starred=bool(starred),
    )


def _row(picture: IndexedPicture) -> dict[str, Any]:
    row = {name: getattr(picture, name, None) for name in _COLUMNS}
    row["path"] = normalized(picture.path)
    row["folder"] = normalized(picture.folder)
    row["mtime_ns"] = round(picture.mtime * 1e9)
    row["seed"] = None if picture.seed is None else str(picture.seed)
    return row


def _kept(saved: db.Salvage) -> str:
    if saved.folders or saved.stars:
        return f"your {len(saved.folders)} folder(s) and {len(saved.stars)} star(s) were kept."
    if saved.complete:
        return "it held no folders or stars to keep."
    return "folders you added and stars could not be read from it and must be set again."


def default_index_path() -> Path:
    """``<platformdirs user data dir of "latentdesk">/gallery.sqlite3``."""
    import platformdirs

    return Path(platformdirs.user_data_dir("latentdesk")) / "gallery.sqlite3"
