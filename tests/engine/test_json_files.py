"""The one home for settings files: atomic writes, broken files moved aside, never lost."""

from __future__ import annotations

import json

import pytest

from engine.json_files import Unreadable, read_json_object, write_atomically


def test_absent_object_and_broken_files(tmp_path):
    path = tmp_path / "conf.json"
    assert read_json_object(path) is None
    write_atomically(path, json.dumps({"a": 1}))
    assert read_json_object(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["conf.json"]  # no temp file left behind
    for broken in ("{not json", "[1, 2]"):
        path.write_text(broken, encoding="utf-8")
        found = read_json_object(path)
        assert isinstance(found, Unreadable) and found.kept_as is not None
        assert not path.exists()
        assert (tmp_path / found.kept_as).read_text(encoding="utf-8") == broken  # kept, not lost
        (tmp_path / found.kept_as).unlink()


def test_a_broken_file_that_cannot_be_moved_is_reported_with_no_backup(tmp_path, monkeypatch):
    path = tmp_path / "conf.json"
    path.write_text("{", encoding="utf-8")

    def refuse(self, target):
        raise PermissionError("read-only folder")

    monkeypatch.setattr(type(path), "replace", refuse)
    found = read_json_object(path)
    assert isinstance(found, Unreadable) and found.kept_as is None and path.exists()


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "conf.json"
    write_atomically(path, "old")

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("engine.json_files.os.replace", full_disk)
    with pytest.raises(OSError):
        write_atomically(path, "new")
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["conf.json"]
