"""FolderLooks without Qt or a database: which files a directory change hands to the index."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from app.gallery_watch import SETTLE_SECONDS, FolderLooks


class Clock:
    """Time the looks judge "written just now" by; files get real mtimes from the disk."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def folder(tmp_path):
    """A folder of its own: tmp_path also holds the test's home (tests/app/conftest.py)."""
    made = tmp_path / "gallery"
    made.mkdir()
    return made


def _write(path: Path, data: bytes = b"\x89PNG....", age: float = 0.0) -> Path:
    path.write_bytes(data)
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


def test_a_file_being_written_is_taken_once_unchanged_for_the_settle_time(folder):
    clock = Clock()
    looks = FolderLooks(clock)
    assert looks.start([folder], limit=10) == [folder]
    growing = _write(folder / "growing.png", b"half")
    clock.now = time.time()
    first = looks.look([folder])
    assert first.changed == [] and first.unsettled_dirs == [folder]
    _write(growing, b"half and the rest")  # still being written
    clock.now = time.time() + 0.1
    assert looks.look([folder]).unsettled_dirs == [folder]
    clock.now += SETTLE_SECONDS
    done = looks.look([folder])
    assert done.changed == [growing] and done.unsettled_dirs == []
    assert looks.look([folder]).changed == []  # nothing new


def test_a_file_from_a_clock_ahead_of_ours_settles_by_our_looks(folder):
    clock = Clock()
    looks = FolderLooks(clock)
    looks.start([folder], limit=10)
    ahead = _write(folder / "share.png", age=-3600)  # a network share's clock, an hour ahead
    assert looks.look([folder]).changed == []
    clock.now += SETTLE_SECONDS
    assert looks.look([folder]).changed == [ahead]


def test_a_writer_that_paused_is_seen_again_at_the_next_poll(folder):
    clock = Clock()
    looks = FolderLooks(clock)
    looks.start([folder], limit=10)
    paused = _write(folder / "slow.png", b"first part", age=5)
    assert looks.look([folder]).changed == [paused]  # taken early: it looked complete
    dir_time = os.stat(folder).st_mtime_ns
    with paused.open("ab") as f:  # written on: no directory event, the folder's time stays
        f.write(b" and the rest")
    os.utime(paused, (time.time() - 5, time.time() - 5))
    assert os.stat(folder).st_mtime_ns == dir_time
    assert looks.poll().changed == [paused]
    assert looks.poll().changed == []


def test_an_old_file_moved_in_is_taken_at_once_and_removals_are_seen(folder):
    looks = FolderLooks()
    kept = _write(folder / "kept.png", age=60)
    looks.start([folder], limit=10)
    moved_in = _write(folder / "moved.jpg", age=60)
    _write(folder / ".hidden.png", age=60)  # temp files of writers: never pictures
    _write(folder / "notes.txt", age=60)
    assert looks.look([folder]).changed == [moved_in]
    kept.unlink()
    assert looks.look([folder]).changed == [kept]


def test_a_replaced_file_is_changed(folder):
    looks = FolderLooks()
    path = _write(folder / "a.png", b"one", age=60)
    looks.start([folder], limit=10)
    replacement = _write(folder / ".new.tmp", b"another picture", age=30)
    os.replace(replacement, path)
    assert looks.look([folder]).changed == [path]


def test_new_and_removed_subdirectories(folder):
    looks = FolderLooks()
    looks.start([folder], limit=10)
    sub = folder / "2026-11"
    sub.mkdir()
    inside = _write(sub / "x.png", age=60)
    found = looks.look([folder])
    assert found.new_dirs == [sub] and found.changed == [inside]
    (sub / "x.png").unlink()
    sub.rmdir()
    gone = looks.look([folder])
    assert gone.gone_dirs == [sub] and gone.changed == [sub]


def test_poll_finds_what_no_watcher_reported(folder):
    looks = FolderLooks()
    looks.start([folder], limit=10)
    assert looks.poll().changed == []
    added = _write(folder / "quiet.png", age=60)
    os.utime(folder, ns=(time.time_ns(), time.time_ns() + 10**9))  # coarse clocks: step on
    assert looks.poll().changed == [added]


def test_a_vanished_root_is_dropped_and_comes_back(tmp_path):
    root = tmp_path / "gallery"
    root.mkdir()
    looks = FolderLooks()
    looks.start([root], limit=10)
    root.rmdir()
    gone = looks.look([root])
    assert gone.changed == [root] and gone.gone_dirs == [root]
    root.mkdir()
    back = _write(root / "back.png", age=60)
    found = looks.poll()
    assert found.new_dirs == [root] and found.changed == [back]


def test_the_directory_limit_holds(folder):
    for name in "abcdef":
        (folder / name).mkdir()
    looks = FolderLooks()
    assert len(looks.start([folder], limit=3)) == 3
