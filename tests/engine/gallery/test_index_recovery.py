"""A damaged, foreign or locked index database is moved aside and rebuilt, never a crash;
the folders and stars that can still be read are carried over."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.gallery.index import GalleryIndex
from tests.engine.gallery.index_pictures import save_picture


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    folder = tmp_path / "gallery"
    save_picture(folder / "a.png", "a red car", seed=1)
    save_picture(folder / "b.png", "a blue boat", seed=2)
    return folder


@pytest.fixture
def db_path(tmp_path: Path, gallery: Path) -> Path:
    """A healthy index of ``gallery`` with one star, closed (and so fully checkpointed)."""
    path = tmp_path / "data" / "gallery.sqlite3"
    with GalleryIndex.open(path) as index:
        index.add_folder(gallery)
        index.sync()
        index.set_starred(gallery / "a.png", True)
    return path


def backups(db_path: Path) -> list[Path]:
    return sorted(db_path.parent.glob(f"{db_path.name}.broken-*[0-9]"))


def assert_rebuilt(index: GalleryIndex, db_path: Path, words: str, gallery: Path) -> Path:
    """The index says what happened, kept the old file, and works again after a sync."""
    assert index.notice is not None and words in index.notice
    [backup] = backups(db_path)
    assert backup.name in index.notice
    index.add_folder(gallery)  # when it could not be carried over
    index.sync()
    assert index.count() == len(index.search()) == 2
    return backup


def test_garbage_bytes(tmp_path, gallery):
    db_path = tmp_path / "gallery.sqlite3"
    db_path.write_bytes(b"this is not a database at all\n" * 200)
    with GalleryIndex.open(db_path) as index:
        assert index.notice is not None and "damaged" in index.notice
        [backup] = backups(db_path)
        assert backup.read_bytes().startswith(b"this is not a database")
        index.add_folder(gallery)
        assert index.sync().added == 2
        assert "could not be read" in index.notice  # no folders or stars to carry over


def test_truncated_file(db_path, gallery):
    with sqlite3.connect(db_path) as connection:  # make it big enough to cut in the middle
        connection.executemany(
            "INSERT INTO folders (path) VALUES (?)",
            [(f"/nowhere/{n:05}" * 20,) for n in range(3000)],
        )
    connection.close()
    data = db_path.read_bytes()
    db_path.write_bytes(data[: len(data) // 2])
    with GalleryIndex.open(db_path) as index:
        assert_rebuilt(index, db_path, "damaged", gallery)


def test_header_of_another_file_type(db_path, gallery):
    data = bytearray(db_path.read_bytes())
    data[:16] = b"GIF89a not sqlite"[:16]
    db_path.write_bytes(bytes(data))
    with GalleryIndex.open(db_path) as index:
        assert_rebuilt(index, db_path, "damaged", gallery)


def corrupt_fts(db_path: Path) -> None:
    """Overwrite the full-text index's data blocks (not its structure record) with garbage."""
    connection = sqlite3.connect(db_path)
    with connection:
        connection.execute(
            "UPDATE pictures_fts_data SET block = randomblob(length(block)) WHERE id > 10"
        )
    connection.close()


def test_malformed_full_text_index_at_open_keeps_folders_and_stars(db_path, gallery):
    corrupt_fts(db_path)
    with GalleryIndex.open(db_path) as index:
        assert_rebuilt(index, db_path, "damaged", gallery)
        assert "1 folder(s) and 1 star(s) were kept" in index.notice
        assert index.folders() == [gallery]
        assert [p.path.name for p in index.search("car")] == ["a.png"]
        assert index.get(gallery / "a.png").starred


def test_malformed_full_text_index_found_while_searching(db_path, gallery):
    with GalleryIndex.open(db_path) as index:
        assert index.notice is None
        corrupt_fts(db_path)  # by another program, while the index is open
        assert index.search("car") == []  # no exception: rebuilt, empty until the next sync
        assert_rebuilt(index, db_path, "damaged", gallery)
        assert index.get(gallery / "a.png").starred
        assert index.count("car") == 1


def test_schema_of_another_version_or_program(tmp_path, gallery):
    for number, (version, table) in enumerate([(99, "folders"), (0, "something_else")]):
        db_path = tmp_path / f"{number}.sqlite3"
        connection = sqlite3.connect(db_path)
        connection.execute(f"CREATE TABLE {table} (path TEXT)")
        connection.execute(f"PRAGMA user_version = {version}")
        connection.commit()
        connection.close()
        with GalleryIndex.open(db_path) as index:
            expected = "another version" if version else "not a Latentdesk gallery index"
            assert expected in index.notice
            assert backups(db_path)
            index.add_folder(gallery)
            assert index.sync().added == 2


HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("INSERT INTO stars (path) VALUES ('/held')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def hold_write_lock(db_path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db_path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_locked_beyond_the_busy_timeout_by_another_process(db_path, gallery):
    holder = hold_write_lock(db_path, 30)
    try:
        started = time.monotonic()
        with GalleryIndex.open(db_path, busy_timeout=0.3) as index:
            assert time.monotonic() - started < 10
            assert_rebuilt(index, db_path, "locked by another program", gallery)
            assert index.get(gallery / "a.png").starred  # read from the locked file
    finally:
        holder.kill()
        holder.wait()


def test_a_short_lock_is_waited_for_not_mistaken_for_damage(db_path, gallery):
    holder = hold_write_lock(db_path, 0.3)
    try:
        with GalleryIndex.open(db_path, busy_timeout=10) as index:
            assert index.notice is None
            index.set_starred(gallery / "b.png", True)
            assert index.count("starred") == 2
        assert not backups(db_path)
    finally:
        holder.wait()


def test_a_folder_that_cannot_hold_a_database_gives_a_temporary_index(tmp_path, gallery):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    with GalleryIndex.open(blocker / "gallery.sqlite3") as index:
        assert "temporary index" in index.notice
        index.add_folder(gallery)
        assert index.sync().added == 2
        index.set_starred(gallery / "a.png", True)
        assert index.count("starred red") == 1


def test_the_reader_follows_a_rebuild_made_by_the_writer(db_path, gallery):
    with GalleryIndex.open(db_path, readonly=True) as reader:
        assert reader.count() == 2
        corrupt_fts(db_path)
        with GalleryIndex.open(db_path) as writer:  # the worker thread, opening later
            assert writer.notice is not None
            writer.sync()
            save_picture(gallery / "c.png", "a green tractor")
            writer.update_paths([gallery / "c.png"])
        assert reader.count("tractor") == 1  # the new file, not the moved one
        assert reader.count() == 3
        assert reader.notice is None


def test_two_rebuilds_in_one_second_keep_both_old_files(tmp_path):
    db_path = tmp_path / "gallery.sqlite3"
    for _ in range(2):
        db_path.write_bytes(b"garbage" * 100)
        GalleryIndex.open(db_path).close()
    assert len(backups(db_path)) == 2
