"""The gallery index over real files: sync, incremental updates, search, sorts and stars."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from engine.gallery import index as index_module
from engine.gallery.index import GalleryIndex, IndexedPicture, default_index_path
from tests.engine.gallery.index_pictures import save_picture

DAY = 86400.0


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    folder = tmp_path / "gallery"
    folder.mkdir()
    return folder


@pytest.fixture
def index(tmp_path: Path, gallery: Path):
    with GalleryIndex.open(tmp_path / "index" / "gallery.sqlite3") as opened:
        opened.add_folder(gallery)
        yield opened


def paths(pictures: list[IndexedPicture]) -> list[str]:
    return [picture.path.name for picture in pictures]


def test_first_sync_reads_every_picture_with_its_parameters(index, gallery):
    save_picture(gallery / "a.png", "a red car, night", "blurry", seed=42, model="dreamshaper_8")
    save_picture(gallery / "b.png", "a blue boat", seed=7, sampler="DPM++ 2M", size=(512, 768))

    report = index.sync()

    assert (report.added, report.updated, report.removed) == (2, 0, 0)
    assert index.count() == 2
    picture = index.get(gallery / "a.png")
    assert picture is not None
    assert (picture.prompt, picture.negative_prompt) == ("a red car, night", "blurry")
    assert (picture.seed, picture.model, picture.sampler, picture.steps) == (
        42,
        "dreamshaper_8",
        "Euler a",
        20,
    )
    assert (picture.width, picture.height, picture.cfg_scale) == (512, 512, 7.0)
    assert picture.tool == "A1111"
    assert picture.folder == gallery and not picture.starred
    assert picture.size_bytes == (gallery / "a.png").stat().st_size
    assert picture.mtime == pytest.approx((gallery / "a.png").stat().st_mtime)
    assert index.get(gallery / "b.png").height == 768


def test_second_sync_of_unchanged_files_opens_none(index, gallery, monkeypatch):
    for number in range(5):
        save_picture(gallery / f"{number}.png", f"picture {number}", seed=number)
    index.sync()

    def no_reading(*args):
        raise AssertionError("an unchanged file was read again")

    monkeypatch.setattr(index_module, "read_row", no_reading)
    report = index.sync()

    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    assert index.count() == 5


def test_a_replaced_file_is_read_again_and_keeps_its_star(index, gallery):
    path = save_picture(gallery / "a.png", "a red car", mtime=1_700_000_000)
    index.sync()
    index.set_starred(path, True)

    save_picture(path, "a green tractor", seed=99, mtime=1_700_000_100)
    report = index.sync()

    assert (report.added, report.updated, report.removed) == (0, 1, 0)
    picture = index.get(path)
    assert picture.prompt == "a green tractor" and picture.seed == 99
    assert picture.starred
    assert paths(index.search("tractor")) == ["a.png"]
    assert index.search("car") == []  # the old words left the full-text index


def test_vanished_files_leave_the_index_and_forget_drops_the_star(index, gallery):
    keep = save_picture(gallery / "keep.png", "a cat")
    gone = save_picture(gallery / "gone.png", "a cat")
    trashed = save_picture(gallery / "trashed.png", "a cat")
    index.sync()
    index.set_starred(trashed, True)

    gone.unlink()
    report = index.sync()
    assert report.removed == 1
    assert paths(index.search("cat", sort="oldest")) == ["keep.png", "trashed.png"]

    trashed.unlink()
    index.forget(trashed)
    assert index.get(trashed) is None
    save_picture(trashed, "a cat")  # a new file of the same name is not starred
    index.sync()
    assert not index.get(trashed).starred
    assert index.get(keep) is not None


def test_only_pictures_are_indexed_not_temp_hidden_or_other_files(index, gallery):
    save_picture(gallery / "shown.png", "a dog")
    save_picture(gallery / "photo.JPG", "a dog")  # not a PNG inside: still a picture name
    (gallery / "webp.webp").write_bytes(b"RIFF....WEBP")
    save_picture(gallery / ".0123456789abcdef.tmp", "a dog")  # engine.output's temp file
    save_picture(gallery / ".hidden.png", "a dog")
    save_picture(gallery / ".thumbnails" / "t.png", "a dog")
    save_picture(gallery / "notes.txt", "a dog")

    index.sync()

    assert sorted(paths(index.search())) == ["photo.JPG", "shown.png", "webp.webp"]
    assert index.get(gallery / "webp.webp").width is None  # unreadable, listed all the same


def test_a_broken_file_is_indexed_once_and_not_read_at_every_sync(index, gallery, monkeypatch):
    (gallery / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert index.sync().added == 1
    picture = index.get(gallery / "broken.png")
    assert picture.tool is None and picture.prompt == "" and picture.width is None

    monkeypatch.setattr(index_module, "read_row", None)  # calling it would fail the test
    assert index.sync().added == 0


def test_pixel_size_comes_from_the_header_when_the_parameters_have_none(index, gallery):
    save_picture(gallery / "no-size.png", "a tree", size=None, pixels=(24, 16))
    save_picture(gallery / "with-size.png", "a tree", size=(640, 448), pixels=(24, 16))
    Image.new("RGB", (10, 6)).save(gallery / "camera.jpg")  # no parameters at all
    index.sync()
    camera = index.get(gallery / "camera.jpg")
    assert (camera.width, camera.height, camera.tool, camera.prompt) == (10, 6, None, "")
    assert (
        index.get(gallery / "no-size.png").width,
        index.get(gallery / "no-size.png").height,
    ) == (
        24,
        16,
    )
    assert index.get(gallery / "with-size.png").width == 640


def test_seeds_beyond_sqlite_integers_are_kept_exactly(index, gallery):
    huge = 2**64 - 5  # ComfyUI seeds go up to 2**64 - 1
    save_picture(gallery / "huge.png", "a huge seed", seed=huge)
    save_picture(gallery / "negative.png", "a small seed", seed=-1)
    index.sync()
    assert index.get(gallery / "huge.png").seed == huge
    assert paths(index.search(f"seed:{huge}")) == ["huge.png"]
    assert paths(index.search("seed:-1")) == ["negative.png"]


def test_subfolders_and_folders_added_inside_other_folders(index, gallery):
    save_picture(gallery / "top.png", "a top picture")
    save_picture(gallery / "2026-11-29" / "day.png", "a day picture")
    save_picture(gallery / "kept" / "inner.png", "an inner picture")
    index.sync()
    assert index.count() == 3

    index.add_folder(gallery / "kept")
    index.sync()
    assert index.count() == 3  # never twice
    assert index.get(gallery / "kept" / "inner.png").folder == gallery / "kept"

    index.remove_folder(gallery)
    assert index.folders() == [gallery / "kept"]
    assert paths(index.search()) == ["inner.png"]
    assert index.sync().removed == 0


def test_a_vanished_folder_takes_its_pictures_along(index, gallery, tmp_path):
    other = tmp_path / "usb"
    save_picture(other / "x.png", "a usb picture")
    index.add_folder(other)
    index.sync()
    assert index.count("usb") == 1
    (other / "x.png").unlink()
    other.rmdir()
    assert index.sync().removed == 1


def test_sync_of_some_folders_leaves_the_others(index, gallery, tmp_path):
    other = tmp_path / "other"
    save_picture(other / "x.png", "an other picture")
    save_picture(gallery / "g.png", "a gallery picture")
    index.add_folder(other)
    report = index.sync([other, tmp_path / "not-added"])
    assert report.added == 1
    assert paths(index.search()) == ["x.png"]


def test_update_paths_follows_a_watchers_events(index, gallery, tmp_path):
    first = save_picture(gallery / "first.png", "a first picture", mtime=1_700_000_000)
    index.sync()

    new = save_picture(gallery / "new.png", "a new picture")
    save_picture(first, "a changed picture", mtime=1_700_000_500)
    save_picture(gallery / "batch" / "one.png", "a batch picture")
    save_picture(gallery / "batch" / "two.png", "a batch picture")
    outside = save_picture(tmp_path / "elsewhere" / "x.png", "an outside picture")
    report = index.update_paths(
        [new, first, gallery / "batch", outside, gallery / ".hidden.png", gallery / "nothing"]
    )
    assert (report.added, report.updated, report.removed) == (3, 1, 0)
    assert index.count("batch") == 2 and index.count("changed") == 1 and index.count() == 4

    new.unlink()
    for picture in (gallery / "batch").iterdir():
        picture.unlink()
    (gallery / "batch").rmdir()
    report = index.update_paths([new, gallery / "batch"])
    assert (report.added, report.updated, report.removed) == (0, 0, 3)
    assert paths(index.search()) == ["first.png"]


def test_cancel_keeps_what_was_read_and_the_next_sync_finishes(index, gallery):
    for number in range(30):
        save_picture(gallery / f"{number:02}.png", f"picture {number}", seed=number)
    cancel = threading.Event()
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        if done == 10:
            cancel.set()

    report = index.sync(cancel=cancel, progress=progress)

    assert report.cancelled and report.added == 10
    assert index.count() == 10
    assert calls[0] == (1, 30) and calls[-1] == (10, 30)
    report = index.sync()
    assert not report.cancelled and report.added == 20 and index.count() == 30


def test_progress_is_throttled_to_whole_percents(index, gallery, monkeypatch):
    monkeypatch.setattr(
        index_module, "read_row", lambda path, folder, stamp: _row(path, folder, stamp)
    )
    for number in range(300):
        (gallery / f"{number:03}.png").write_bytes(b"")
    calls: list[tuple[int, int]] = []
    index.sync(progress=lambda done, total: calls.append((done, total)))
    assert 90 <= len(calls) <= 101
    assert calls[-1] == (300, 300)


def _row(path: str, folder: str, stamp: tuple[int, int]) -> dict[str, object]:
    empty = dict.fromkeys(index_module._COLUMNS)
    empty.update(prompt="", negative_prompt="", path=path, folder=folder)
    return {**empty, "size_bytes": stamp[0], "mtime_ns": stamp[1]}


def test_words_phrases_and_exclusions(index, gallery):
    save_picture(gallery / "1.png", "a red sports car at night", "blurry, low quality")
    save_picture(gallery / "2.png", "a red apple on a table", "cartoon")
    save_picture(gallery / "3.png", "night sky over the sea, (stars:1.2)", "blurry")
    save_picture(gallery / "4.png", "Café au lait, blue_hair")
    index.sync()

    def found(query: str) -> list[str]:
        return sorted(paths(index.search(query)))

    assert found("red") == ["1.png", "2.png"]
    assert found("red night") == ["1.png"]  # every word
    assert found("RED NIGHT") == ["1.png"]  # any case
    assert found("car") == ["1.png", "2.png"]  # a word's start: "car" and "cartoon"
    assert found("blurry") == ["1.png", "3.png"]  # the negative prompt counts too
    assert found('"red apple"') == ["2.png"]
    assert found('"apple red"') == []
    assert found("night -blurry") == []
    assert found("red -sports") == ["2.png"]
    assert found('-"low quality"') == ["2.png", "3.png", "4.png"]
    assert found("star") == ["3.png"]  # weights and brackets are not part of words
    assert found("cafe") == ["4.png"] and found("café") == ["4.png"]
    assert found("blue_hair") == ["4.png"]
    assert index.count("red") == 2 and index.count("-red") == 2


def test_filters_model_seed_sampler_size_tool_dates_and_stars(index, gallery):
    day = datetime(2026, 3, 10, 12, 0).timestamp()
    save_picture(gallery / "1.png", "one", seed=11, model="v1-5-pruned", mtime=day)
    save_picture(
        gallery / "2.png",
        "two",
        seed=22,
        model="DreamShaper_8",
        sampler="DPM++ 2M",
        mtime=day + DAY,
    )
    save_picture(
        gallery / "3.png", "three", seed=33, model=None, size=(768, 512), mtime=day + 2 * DAY
    )
    index.sync()
    index.set_starred(gallery / "3.png", True)

    def found(query: str) -> list[str]:
        return sorted(paths(index.search(query)))

    assert found("model:dreamshaper") == ["2.png"]
    assert found("model:v1-5") == ["1.png"]
    assert found('model:"shaper_8"') == ["2.png"]  # _ is a letter here, not LIKE's wildcard
    assert found("seed:22") == ["2.png"]
    assert found("seed:2") == []
    assert found('sampler:"dpm++ 2m"') == ["2.png"]
    assert found("sampler:euler") == ["1.png", "3.png"]
    assert found("size:768x512") == ["3.png"]
    assert found("size:512x512") == ["1.png", "2.png"]
    assert found("tool:a1111") == ["1.png", "2.png", "3.png"]
    assert found("tool:comfyui") == []
    assert found("after:2026-03-11") == ["2.png", "3.png"]  # that day included
    assert found("before:2026-03-11") == ["1.png"]  # that day excluded
    assert found("after:2026-03-11 before:2026-03-12") == ["2.png"]
    assert found("starred") == ["3.png"]
    assert found('"starred"') == []
    assert found("starred seed:33 three") == ["3.png"]


def test_sorts_and_pages(index, gallery):
    base = 1_700_000_000
    save_picture(gallery / "a.png", "banana", model="zeta", mtime=base + 30)
    save_picture(gallery / "b.png", "Apple", model=None, mtime=base + 10)
    save_picture(gallery / "c.png", "cherry", model="Alpha", mtime=base + 20)
    save_picture(gallery / "d.png", "", model="alpha", mtime=base + 40)
    index.sync()

    assert paths(index.search(sort="newest")) == ["d.png", "a.png", "c.png", "b.png"]
    assert paths(index.search(sort="oldest")) == ["b.png", "c.png", "a.png", "d.png"]
    assert paths(index.search(sort="prompt")) == ["b.png", "a.png", "c.png", "d.png"]
    assert paths(index.search(sort="model")) == ["d.png", "c.png", "a.png", "b.png"]
    pages = [paths(index.search(limit=3, offset=offset)) for offset in (0, 3, 6)]
    assert pages == [["d.png", "a.png", "c.png"], ["b.png"], []]
    with pytest.raises(ValueError, match="newest"):
        index.search(sort="size")


def test_pages_never_repeat_pictures_of_the_same_time(index, gallery):
    for number in range(12):
        save_picture(gallery / f"{number:02}.png", "same time", mtime=1_700_000_000)
    index.sync()
    seen = [
        name for offset in range(0, 12, 5) for name in paths(index.search(limit=5, offset=offset))
    ]
    assert sorted(seen) == sorted(f"{number:02}.png" for number in range(12))


def test_search_in_one_folder(index, gallery):
    save_picture(gallery / "top.png", "a picture")
    save_picture(gallery / "sub" / "in.png", "a picture")
    save_picture(gallery / "sub-other" / "out.png", "a picture")  # shares the name's start
    index.sync()
    assert paths(index.search("picture", folder=gallery / "sub")) == ["in.png"]
    assert index.count(folder=gallery / "sub") == 1


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        'a "b',
        "*",
        "red*",
        "NEAR",
        "NEAR(a b)",
        "a AND OR NOT b",
        "^start",
        "prompt:red",
        "{prompt negative_prompt}: red",
        '"',
        '""',
        "-",
        "--",
        "-*",
        "(",
        "'",
        "\\",
        "%",
        "_",
        "seed:",
        "seed:abc",
        "seed:99999999999999999999999999999999",
        "size:0x0",
        "after:2026-13-45",
        "before:",
        "model:",
        "a\x00b",
        "\udcff",
        "a\udcffb",
    ],
)
def test_malformed_queries_never_raise(index, gallery, query):
    save_picture(gallery / "a.png", "a red car NEAR the sea")
    index.sync()
    assert isinstance(index.search(query), list)
    assert isinstance(index.count(query), int)


def test_fts_operators_typed_as_words_are_words(index, gallery):
    save_picture(gallery / "near.png", "a boat NEAR the shore")
    save_picture(gallery / "far.png", "a boat far from the shore")
    index.sync()
    assert paths(index.search("NEAR")) == ["near.png"]
    assert sorted(paths(index.search("boat OR"))) == []  # "OR" is a word both lack


def test_add_records_for_window_tests(index, tmp_path):
    record = IndexedPicture(
        path=tmp_path / "nowhere" / "x.png",
        folder=tmp_path / "nowhere",
        mtime=1_700_000_000.5,
        size_bytes=123,
        width=512,
        height=768,
        tool="ComfyUI",
        prompt="a made-up record",
        negative_prompt="",
        model="m",
        seed=2**64 - 1,
        sampler="euler",
        schedule="karras",
        steps=30,
        cfg_scale=6.5,
        starred=True,
    )
    index.add_records([record])
    assert index.search("made") == [record]
    assert index.sync().removed == 0  # not an indexed folder: sync leaves it alone


def test_a_reader_pages_while_the_writer_syncs_in_another_thread(tmp_path, gallery):
    for number in range(40):
        save_picture(gallery / f"{number:02}.png", f"picture {number}", seed=number)
    db_path = tmp_path / "gallery.sqlite3"
    with GalleryIndex.open(db_path) as writer:
        writer.add_folder(gallery)
    errors: list[BaseException] = []

    def sync() -> None:
        try:
            with GalleryIndex.open(db_path) as writer:
                writer.sync()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    with GalleryIndex.open(db_path, readonly=True) as reader:
        worker = threading.Thread(target=sync)
        worker.start()
        counts = []
        while worker.is_alive():
            counts.append(reader.count())
            reader.search("picture", limit=10)
            time.sleep(0.001)
        worker.join()
        assert not errors
        assert reader.count() == 40 and reader.folders() == [gallery]
        assert counts == sorted(counts)
        with pytest.raises(RuntimeError, match="read-only"):
            reader.set_starred(gallery / "00.png", True)
        with pytest.raises(RuntimeError, match="read-only"):
            reader.sync()


def test_a_reader_opened_first_makes_the_database_in_wal_mode(tmp_path, gallery):
    save_picture(gallery / "a.png", "a cat")
    db_path = tmp_path / "new" / "gallery.sqlite3"
    with GalleryIndex.open(db_path, readonly=True) as reader:
        assert reader.count() == 0 and reader.notice is None
        with GalleryIndex.open(db_path) as writer:
            assert writer.notice is None
            writer.add_folder(gallery)
            writer.sync()
        assert reader.count("cat") == 1
    connection = sqlite3.connect(db_path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_a_closed_index_says_so(tmp_path):
    index = GalleryIndex.open(tmp_path / "x.sqlite3")
    index.close()
    index.close()
    with pytest.raises(RuntimeError, match="closed"):
        index.search()


def test_default_path_is_in_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert default_index_path() == tmp_path / "latentdesk" / "gallery.sqlite3"
    assert default_index_path().name == "gallery.sqlite3"
