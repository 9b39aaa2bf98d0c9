"""The gallery index's SQLite file: schema, connecting, and what to do when it is damaged.

A damaged database (not a database at all, truncated, a malformed page or FTS5 index, made by
another version) and one that another process keeps locked beyond the busy timeout are both
handled the same way: the file is moved aside as ``<name>.broken-<time>`` (its ``-wal`` with
it), a new one is made, and the folders and stars that can still be read are carried over. The
index itself is only a cache of the files' metadata, rebuilt by the next sync.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError

SCHEMA_VERSION = 1  # PRAGMA user_version of the schema below

# Paths are stored as text; seeds as decimal text because ComfyUI's go beyond SQLite's 64-bit
# integers. The FTS table is an "external content" table over pictures (sqlite.org/fts5.html,
# section 4.4.3), kept in step by the triggers, so prompts are stored once.
SCHEMA = """
CREATE TABLE folders (path TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE stars (path TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE pictures (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    folder TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    width INTEGER,
    height INTEGER,
    tool TEXT,
    prompt TEXT NOT NULL DEFAULT '',
    negative_prompt TEXT NOT NULL DEFAULT '',
    model TEXT,
    seed TEXT,
    sampler TEXT,
    schedule TEXT,
    steps INTEGER,
    cfg_scale REAL
);
CREATE INDEX pictures_by_time ON pictures (mtime_ns, path);
CREATE INDEX pictures_by_folder ON pictures (folder);
CREATE INDEX pictures_by_model ON pictures (model COLLATE NOCASE, mtime_ns);
CREATE INDEX pictures_by_seed ON pictures (seed);
CREATE VIRTUAL TABLE pictures_fts USING fts5 (
    prompt, negative_prompt,
    content = 'pictures', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE TRIGGER pictures_fts_insert AFTER INSERT ON pictures BEGIN
    INSERT INTO pictures_fts (rowid, prompt, negative_prompt)
    VALUES (new.id, new.prompt, new.negative_prompt);
END;
CREATE TRIGGER pictures_fts_delete AFTER DELETE ON pictures BEGIN
    INSERT INTO pictures_fts (pictures_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
END;
CREATE TRIGGER pictures_fts_update AFTER UPDATE OF prompt, negative_prompt ON pictures BEGIN
    INSERT INTO pictures_fts (pictures_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
    INSERT INTO pictures_fts (rowid, prompt, negative_prompt)
    VALUES (new.id, new.prompt, new.negative_prompt);
END;
"""
_TABLES = {"folders", "stars", "pictures", "pictures_fts"}

# Primary result codes (sqlite.org/rescode.html).
_BUSY, _LOCKED, _CORRUPT, _NOTADB = 5, 6, 11, 26


class GalleryIndexError(EngineError):
    """The index cannot be used at all (disk full, read-only disk, I/O error)."""


class Damaged(Exception):
    """The database file is damaged or locked; ``reason`` says so in words for a person."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def connect(db_path: Path, *, readonly: bool, busy_timeout: float) -> sqlite3.Connection:
    """A connection to a database with our schema (created when the file is new).

    Raises Damaged when the file is not a usable index or stays locked; sqlite3.Error ("unable
    to open database file"), OSError or GalleryIndexError when it cannot be used at all.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(db_path, timeout=busy_timeout, isolation_level=None)
    try:
        with translated_errors():
            _prepare(connection, readonly=readonly)
    except BaseException:
        connection.close()
        raise
    return connection


def connect_in_memory() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    _prepare(connection, readonly=False)
    return connection


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` one by one (executescript would commit our transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement.strip()
            statement = ""


def _prepare(connection: sqlite3.Connection, *, readonly: bool) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        # Whoever makes the file (a reader may be first) makes it in WAL mode: the window's
        # reader then never waits for the writer (sqlite.org/wal.html).
        connection.execute("PRAGMA journal_mode = WAL")
        with transaction(connection):
            # Another connection may have made the schema in the meantime: look again, locked.
            if connection.execute("PRAGMA user_version").fetchone()[0] == 0:
                if _table_names(connection):
                    raise Damaged("is not a Latentdesk gallery index")
                for statement in _statements(SCHEMA):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        version = SCHEMA_VERSION
    if version != SCHEMA_VERSION or not _TABLES <= _table_names(connection):
        raise Damaged(f"was made by another version of Latentdesk (schema {version})")
    if not readonly:
        connection.execute("PRAGMA journal_mode = WAL")  # in case an old file was not
        # NORMAL syncs at checkpoints only: enough for a cache that can be rebuilt.
        connection.execute("PRAGMA synchronous = NORMAL")
        check_integrity(connection)
        # Fails after the busy timeout when another process holds the write lock.
        with transaction(connection):
            pass
    else:
        connection.execute("PRAGMA query_only = ON")


def check_integrity(connection: sqlite3.Connection) -> None:
    """Raise Damaged when SQLite's quick check or the FTS5 index's own check finds a fault."""
    result = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
    if result != "ok":
        raise Damaged(f"is damaged ({result})")
    with translated_errors():
        # Compares the full-text index with the pictures table (sqlite.org/fts5.html, 6.5).
        connection.execute("INSERT INTO pictures_fts (pictures_fts) VALUES ('integrity-check')")


def _table_names(connection: sqlite3.Connection) -> set[str]:
    rows = connection.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
    return {name for (name,) in rows}


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken at the start (so a busy database fails here, not halfway)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


@contextmanager
def translated_errors() -> Iterator[None]:
    """sqlite3 errors meaning "damaged" or "locked" become Damaged; the ones meaning the disk
    cannot be used become GalleryIndexError; others (our own mistakes) pass unchanged."""
    try:
        yield
    except sqlite3.DatabaseError as error:
        raise _translate(error) from error


def _translate(error: sqlite3.DatabaseError) -> Exception:
    code = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF
    message = str(error)
    if code in (_BUSY, _LOCKED) or "locked" in message:
        return Damaged("stayed locked by another program (another Latentdesk still running?)")
    # Not "fts5: syntax error": queries reach FTS5 quoted (query.py); were one to slip
    # through, it must show as the bug it is, not cost the person their index.
    if code in (_CORRUPT, _NOTADB) or "malformed" in message:
        return Damaged(f"is damaged ({message})")
    if isinstance(error, sqlite3.OperationalError) and "no such table" in message:
        return Damaged(f"is incomplete ({message})")
    if isinstance(error, sqlite3.OperationalError):
        return GalleryIndexError(
            f"The gallery index could not be used: {message}. "
            "Check that the disk is not full and that the folder can be written to."
        )
    return error


def move_aside(db_path: Path) -> Path:
    """Rename the database (and its write-ahead log) to ``<name>.broken-<time>``; returns the
    new path. Raises OSError when it cannot be moved."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = db_path.with_name(f"{db_path.name}.broken-{stamp}")
    number = 1
    while backup.exists():  # a second rebuild within the same second
        number += 1
        backup = db_path.with_name(f"{db_path.name}.broken-{stamp}-{number}")
    if db_path.exists():
        os.replace(db_path, backup)
    wal = Path(f"{db_path}-wal")
    if wal.exists():
        with suppress(OSError):  # without it the backup holds what was checkpointed
            os.replace(wal, Path(f"{backup}-wal"))
    for leftover in (Path(f"{db_path}-shm"), Path(f"{db_path}-journal")):
        with suppress(OSError):  # rebuilt from the files: stale ones must not be reused
            leftover.unlink(missing_ok=True)
    return backup


@dataclass(frozen=True)
class Salvage:
    folders: tuple[str, ...] = ()
    stars: tuple[str, ...] = ()
    complete: bool = True  # both tables could be read


def salvage(db_path: Path) -> Salvage:
    """Folders and stars read from a damaged database, as far as they can be read."""
    found: dict[str, tuple[str, ...]] = {}
    try:
        uri = db_path.resolve().as_uri() + "?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=0.2)
    except (sqlite3.Error, OSError, ValueError):
        return Salvage(complete=False)
    try:
        for table in ("folders", "stars"):
            with suppress(sqlite3.Error):
                rows = connection.execute(f"SELECT path FROM {table}").fetchall()
                found[table] = tuple(str(path) for (path,) in rows if isinstance(path, str))
    finally:
        connection.close()
    return Salvage(found.get("folders", ()), found.get("stars", ()), len(found) == 2)


def restore(connection: sqlite3.Connection, saved: Salvage) -> None:
    with transaction(connection):
        connection.executemany(
            "INSERT OR IGNORE INTO folders (path) VALUES (?)", [(p,) for p in saved.folders]
        )
        connection.executemany(
            "INSERT OR IGNORE INTO stars (path) VALUES (?)", [(p,) for p in saved.stars]
        )


def file_identity(db_path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file, to notice that another connection replaced it."""
    try:
        status = db_path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino
