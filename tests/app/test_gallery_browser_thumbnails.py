"""The browser's thumbnails: made in the pool, kept on disk keyed by path, size and mtime, made
again for a replaced file, bounded in memory."""

from __future__ import annotations

import os

from PySide6.QtGui import QPixmap

from app.thumbnails import ThumbnailCache
from tests.app.gallery_browser_helpers import write_png


def _wait_thumbnail(qtbot, cache: ThumbnailCache, path) -> QPixmap:
    st = path.stat()
    got: list[QPixmap] = []

    def ready() -> bool:
        pixmap = cache.thumbnail(path, st.st_mtime, st.st_size)
        if pixmap is not None:
            got.append(pixmap)
        return bool(got)

    qtbot.wait_until(ready, timeout=5000)
    return got[0]


def _cached_files(folder) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_thumbnails_are_kept_on_disk_and_made_again_for_a_replaced_file(qtbot, tmp_path):
    picture = write_png(tmp_path / "p.png", 200, size=(200, 300))  # 300 wide
    folder = tmp_path / "cache"
    first = ThumbnailCache(folder, size=64)
    st = picture.stat()
    assert first.thumbnail(picture, st.st_mtime, st.st_size) is None  # asked for; not ready
    pixmap = _wait_thumbnail(qtbot, first, picture)
    assert pixmap.width() == 64 and pixmap.height() in (42, 43)  # fits, aspect kept
    assert (first.made, first.from_disk) == (1, 0)
    kept = _cached_files(folder)
    assert len(kept) == 1

    # Another run of the app: the disk cache answers, nothing is decoded again.
    second = ThumbnailCache(folder, size=64)
    _wait_thumbnail(qtbot, second, picture)
    assert (second.made, second.from_disk) == (0, 1)

    # The file replaced by another picture: new size and mtime, a new thumbnail.
    write_png(picture, 20, size=(100, 100))
    os.utime(picture, (2_000_000_000, 2_000_000_000))
    third = ThumbnailCache(folder, size=64)
    pixmap = _wait_thumbnail(qtbot, third, picture)
    assert (third.made, third.from_disk) == (1, 0)
    assert pixmap.width() == pixmap.height() == 64
    assert pixmap.toImage().pixelColor(32, 32).red() < 40  # the new picture's dark grey
    assert len(_cached_files(folder)) == 2
    for cache in (first, second, third):
        cache.wait_idle()


def test_memory_holds_a_bounded_number_and_the_broken_tile_for_bad_files(qtbot, tmp_path):
    cache = ThumbnailCache(tmp_path / "cache", size=32, memory_items=3)
    pictures = [write_png(tmp_path / f"{n}.png", 50 * n) for n in range(5)]
    for path in pictures:
        _wait_thumbnail(qtbot, cache, path)
    assert len(cache._memory) == 3  # the least recently used went first
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    gone = tmp_path / "gone.png"
    for path, stamp in ((bad, (1.0, 13)), (gone, (2.0, 0))):
        assert cache.thumbnail(path, *stamp) is None
        qtbot.wait_until(lambda p=path, s=stamp: cache.thumbnail(p, *s) is not None)
        assert cache.thumbnail(path, *stamp) is cache.broken_tile()
    assert cache.failures == 2
    cache.wait_idle()


def test_only_the_newest_requests_wait_when_the_queue_is_long(qtbot, tmp_path, monkeypatch):
    """Cells scrolled past are dropped from the queue, newest served first."""
    import app.thumbnails as thumbnails

    monkeypatch.setattr(thumbnails, "MAX_QUEUED", 4)
    monkeypatch.setattr(thumbnails, "WORKERS", 1)
    picture = write_png(tmp_path / "p.png", 100)
    cache = ThumbnailCache(tmp_path / "cache", size=16)
    for mtime in range(20):  # 20 different keys of one file, asked for at once
        cache.thumbnail(picture, float(mtime), 1)
    assert cache.pending() == 1 + 4  # one running, the four newest waiting
    qtbot.wait_until(lambda: cache.pending() == 0)
    assert cache.made + cache.from_disk == 5
    assert cache.thumbnail(picture, 19.0, 1) is not None  # the newest was made
    assert cache.thumbnail(picture, 5.0, 1) is None  # one scrolled past was not
    cache.wait_idle()


def test_the_disk_cache_drops_the_least_recently_used_when_too_big(tmp_path):
    from app.thumbnails import ThumbnailFiles

    files = ThumbnailFiles(tmp_path / "cache", size=16)
    sub = tmp_path / "cache" / "ab"
    sub.mkdir(parents=True)
    for n in range(10):  # 10 files of 1,000 bytes, used at times 0..9
        kept = sub / f"{n}.jpg"
        kept.write_bytes(b"x" * 1000)
        os.utime(kept, (1_000_000 + n, 1_000_000 + n))
    assert files.prune(max_bytes=20_000) == 0  # under the limit: nothing goes
    assert files.prune(max_bytes=5_000) == 6  # down to 80% of it, oldest first
    assert sorted(p.name for p in sub.iterdir()) == ["6.jpg", "7.jpg", "8.jpg", "9.jpg"]
    assert ThumbnailFiles(tmp_path / "missing").prune(1) == 0
