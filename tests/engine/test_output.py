"""Gallery writes: complete files only, time-sorted unique names, clear errors."""

from __future__ import annotations

import errno
import io
import multiprocessing
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from engine import output
from engine.errors import EngineError
from engine.image_metadata import read_png_parameters
from engine.output import OutputError, encode_png, save_png, save_png_to
from engine.parameters import format_parameters

NAME_RE = re.compile(r"^\d{8}-\d{6}-\d{6}(-[A-Za-z0-9_.-]+)?-[0-9a-f]{6}\.png$")
PARAMS = "a red fox\nNegative prompt: blurry\nSteps: 4, Sampler: Euler, Seed: 1234, Size: 16x8"


def _image(seed: int = 0, height: int = 8, width: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)  # (H, W, 3)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_saved_file_is_complete_with_parameters(tmp_path: Path) -> None:
    image = _image()
    path = save_png(tmp_path / "gallery", image, PARAMS, stem=1234)
    assert path.parent == tmp_path / "gallery"
    assert NAME_RE.match(path.name), path.name
    assert "-1234-" in path.name  # the seed the caller passed
    np.testing.assert_array_equal(_pixels(path), image)
    assert read_png_parameters(path) == PARAMS
    assert _leftovers(path.parent) == []
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_non_latin_parameters_go_into_itxt(tmp_path: Path) -> None:
    text = "夜の東京, 😀\nNegative prompt: ぼやけた\nSteps: 4, Seed: 5"
    path = save_png(tmp_path, _image(), text)
    assert b"iTXtparameters" in path.read_bytes()
    assert read_png_parameters(path) == text


def test_names_sort_by_time(tmp_path: Path) -> None:
    paths = [save_png(tmp_path, _image(i), PARAMS) for i in range(5)]
    assert sorted(paths) == paths
    assert len(set(paths)) == 5


def test_stem_labels_the_file_and_is_sanitised(tmp_path: Path) -> None:
    path = save_png(tmp_path, _image(), PARAMS, stem="my/../odd name")
    assert NAME_RE.match(path.name), path.name
    assert "-my_.._odd_name-" in path.name and path.parent == tmp_path
    bare = save_png(tmp_path, _image(), "no settings here")
    assert NAME_RE.match(bare.name) and bare.name.count("-") == 3


def test_the_caller_labels_the_file_never_the_text(tmp_path: Path) -> None:
    assert "-77-" in save_png(tmp_path, _image(), PARAMS, stem=77).name
    # The parameters text is stored, not parsed: its "Seed" does not name the file.
    unlabelled = save_png(tmp_path, _image(), "Seed: 999\nSteps: 2, Seed: 31")
    assert "999" not in unlabelled.name and "-31-" not in unlabelled.name
    assert "-0-" in save_png(tmp_path, _image(), PARAMS, stem=0).name


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40), st.text(max_size=20))
def test_any_prompt_survives_the_png(prompt: str, negative: str) -> None:
    text = format_parameters(prompt, negative, {"Steps": 3, "Seed": 1})
    assert read_png_parameters(encode_png(_image(height=2, width=2), text)) == text


def test_lone_surrogate_is_replaced_not_fatal() -> None:
    data = encode_png(_image(), "bad \udc80 paste\nSteps: 1")
    assert read_png_parameters(data) == "bad ? paste\nSteps: 1"


def test_taken_name_is_never_overwritten(tmp_path: Path, monkeypatch) -> None:
    names = iter(["taken.png", "taken.png", "free.png"])
    monkeypatch.setattr(output, "file_name", lambda label: next(names))
    (tmp_path / "taken.png").write_bytes(b"someone else's file")
    path = save_png(tmp_path, _image(), PARAMS)
    assert path.name == "free.png"
    assert (tmp_path / "taken.png").read_bytes() == b"someone else's file"
    assert _leftovers(tmp_path) == []


def test_without_hard_links_the_reservation_path_works(tmp_path: Path, monkeypatch) -> None:
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(output.os, "link", no_links)
    first = save_png(tmp_path, _image(1), PARAMS)
    second = save_png(tmp_path, _image(2), PARAMS)
    assert first != second
    np.testing.assert_array_equal(_pixels(second), _image(2))
    assert _leftovers(tmp_path) == []


def _failing_write(after_bytes: int, code: int):
    """os.write that writes ``after_bytes`` bytes, then fails as a full disk does."""
    real_write = os.write
    budget = [after_bytes]

    def write(fd: int, data) -> int:
        if budget[0] <= 0:
            raise OSError(code, os.strerror(code))
        written = real_write(fd, bytes(data[: budget[0]]))
        budget[0] -= written
        return written

    return write


def test_disk_full_leaves_nothing_and_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(output.os, "write", _failing_write(100, errno.ENOSPC))
    with pytest.raises(OutputError) as caught:
        save_png(tmp_path, _image(height=64, width=64), PARAMS)
    monkeypatch.undo()
    message = str(caught.value)
    assert str(tmp_path) in message and "disk is full" in message and "Free some space" in message
    assert isinstance(caught.value, EngineError) and caught.value.error_number == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_failed_fsync_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(output.os, "fsync", fsync)
    with pytest.raises(OutputError, match="quota"):
        save_png(tmp_path, _image(), PARAMS)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder(tmp_path: Path, monkeypatch) -> None:
    # Tests may run as root, which ignores chmod: refuse file creation the way the OS would.
    real_open = os.open

    def open_(path, flags, *args):
        if flags & os.O_CREAT and Path(path).parent == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(output.os, "open", open_)
    with pytest.raises(OutputError, match="permission denied.*Choose a folder you can write to"):
        save_png(tmp_path, _image(), PARAMS)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_folder_for_real(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            save_png(tmp_path, _image(), PARAMS)
    finally:
        tmp_path.chmod(0o700)


def test_read_only_file_system_removes_the_temp_file(tmp_path: Path, monkeypatch) -> None:
    def link(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(output.os, "link", link)
    with pytest.raises(OutputError, match="read-only"):
        save_png(tmp_path, _image(), PARAMS)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_folder_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "gallery"
    blocker.write_bytes(b"x")
    with pytest.raises(OutputError, match="gallery"):
        save_png(blocker, _image(), PARAMS)
    with pytest.raises(OutputError):
        save_png(blocker / "sub", _image(), PARAMS)


def _writer(folder: str, worker: int, start) -> None:
    start.wait(30)
    for i in range(10):
        text = f"worker {worker} image {i}\nSteps: 1, Seed: {worker}"
        save_png(folder, _image(worker * 100 + i), text)


def test_four_processes_write_forty_distinct_files(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_writer, args=(str(tmp_path), w, start)) for w in range(4)]
    for process in workers:
        process.start()
    start.set()  # all write at once
    for process in workers:
        process.join(120)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    files = sorted(tmp_path.iterdir())
    assert len(files) == 40 and _leftovers(tmp_path) == []
    seen = set()
    for path in files:
        assert NAME_RE.match(path.name), path.name
        text = read_png_parameters(path)
        worker, i = map(int, re.match(r"worker (\d) image (\d)", text).groups())
        np.testing.assert_array_equal(_pixels(path), _image(worker * 100 + i))
        seen.add((worker, i))
    assert len(seen) == 40


def test_save_as_writes_the_exact_path_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "mine.png"
    target.write_bytes(b"old")
    assert save_png_to(target, _image(3), PARAMS) == target
    np.testing.assert_array_equal(_pixels(target), _image(3))
    assert read_png_parameters(target) == PARAMS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.png"]


def test_save_as_failure_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "mine.png"
    target.write_bytes(b"old")
    monkeypatch.setattr(output.os, "write", _failing_write(10, errno.ENOSPC))
    with pytest.raises(OutputError, match="mine.png"):
        save_png_to(target, _image(), PARAMS)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.png"]


def test_save_as_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        save_png_to(tmp_path / "nowhere" / "x.png", _image(), PARAMS)


def test_encode_png_round_trips_pixels_and_text() -> None:
    image = _image(7)
    data = encode_png(image, PARAMS)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as decoded:
        np.testing.assert_array_equal(np.asarray(decoded), image)
    assert read_png_parameters(data) == PARAMS


@pytest.mark.parametrize(
    "bad",
    [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32)],
)
def test_wrong_arrays_are_refused_before_touching_disk(tmp_path: Path, bad: np.ndarray) -> None:
    with pytest.raises((TypeError, ValueError)):
        save_png(tmp_path / "g", bad, PARAMS)
    assert not (tmp_path / "g").exists()
