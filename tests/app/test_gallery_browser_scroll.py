"""The issue's proof: the grid scrolls through 10,000 indexed pictures with no GUI stall of
50 ms or more, while thumbnails are made for what is on screen."""

from __future__ import annotations

import gc
import os
import time

from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtGui import QPixmap

from app.gallery_browser import GalleryBrowser
from app.gallery_grid import CELL
from app.gallery_grid_model import PAGE_SIZE
from app.thumbnails import ThumbnailCache
from tests.app.gallery_browser_helpers import IndexService, record, write_png

PICTURES = 10_000
STEPS = 120  # top to bottom, one step every 16 ms: a fast, steady scroll
MAX_STALL = 0.050
PASSES = 3


def _gallery(tmp_path):
    """10,000 records for hard links to a few tiny PNGs: every path is a real file to read."""
    sources = [write_png(tmp_path / f"source-{i}.png", 30 * i) for i in range(8)]
    folder = tmp_path / "pictures"
    folder.mkdir()
    records = []
    for n in range(PICTURES):
        path = folder / f"{n:05d}.png"
        os.link(sources[n % len(sources)], path)
        prompt = f"picture {n} of a harbour, boats, evening light"
        records.append(record(path, 1_700_000_000 + n, prompt, seed=n))
    service = IndexService(tmp_path / "gallery.sqlite3")
    service.add(records)
    return service


def _scroll_and_measure(browser) -> tuple[float, float]:
    """Scroll top to bottom in steps from the event loop. Returns the longest gap between
    ticks of a 5 ms timer (the worst time the GUI thread did not get to its events), and the
    most CPU time the GUI thread spent in one such gap (its own work, whatever else runs)."""
    bar = browser.grid.verticalScrollBar()
    bar.setValue(0)
    ticks: list[tuple[float, float]] = []
    tick = QTimer(interval=5, timerType=Qt.TimerType.PreciseTimer)
    tick.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time())))
    loop = QEventLoop()
    done = [0]

    def step() -> None:
        done[0] += 1
        bar.setValue(bar.maximum() * done[0] // STEPS)
        if done[0] == STEPS:
            QTimer.singleShot(100, loop.quit)  # the last step painted, too
            stepper.stop()

    stepper = QTimer(interval=16, timerType=Qt.TimerType.PreciseTimer)
    stepper.timeout.connect(step)
    tick.start()
    stepper.start()
    QTimer.singleShot(30_000, loop.quit)  # never hang the suite
    loop.exec()
    tick.stop()
    assert done[0] == STEPS and bar.value() == bar.maximum()
    pairs = list(zip(ticks, ticks[1:], strict=False))
    wall = max(b[0] - a[0] for a, b in pairs)
    cpu = max(b[1] - a[1] for a, b in pairs)
    return wall, cpu


def test_grid_scrolls_10000_pictures_without_a_stall(qtbot, tmp_path):
    service = _gallery(tmp_path)
    thumbnails = ThumbnailCache(tmp_path / "thumbnails")
    browser = GalleryBrowser(service, reveal=lambda _: True, thumbnails=thumbnails)
    qtbot.addWidget(browser)
    browser.resize(1000, 720)
    browser.show()
    qtbot.wait_exposed(browser)
    assert browser.count_label.text() == "10,000 pictures"
    assert browser.model.pages_fetched <= 2  # the first screen's pages, not 10,000 records

    # The 10,000 records this test built in Python are a debt of the test, not of the app:
    # without this, the collector's full pass over them lands inside the measurement.
    gc.collect()
    passes = []
    for attempt in range(PASSES):
        if attempt:  # a fresh start: every thumbnail made again, every page read again
            browser.thumbnails.wait_idle()
            browser.thumbnails = thumbnails = ThumbnailCache(tmp_path / f"thumbnails{attempt}")
            browser.model.thumbnails = thumbnails
            thumbnails.ready.connect(browser.model._thumbnail_ready)
            browser.apply_search()
        passes.append(_scroll_and_measure(browser))
        wall, cpu = passes[-1]
        pages = f"{browser.model.pages_fetched} of {PICTURES // PAGE_SIZE}"
        print(f"\npass {attempt + 1}: worst GUI stall scrolling {PICTURES:,} pictures "
              f"{wall * 1000:.1f} ms (GUI thread's own work in it {cpu * 1000:.1f} ms); "
              f"pages fetched {pages}; thumbnails made {thumbnails.made}; "
              f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        assert cpu < MAX_STALL  # our own work never blocks the loop that long
        if wall < MAX_STALL:
            break
    # Other programs on a busy machine can hold the thread off the CPU: the worst of the best
    # of a few passes is the figure.
    assert min(wall for wall, _ in passes) < MAX_STALL

    # Only cells that were on screen were asked for (each step shows a few rows of the 2,000),
    # and the last screen gets its real thumbnails.
    viewport = browser.grid.viewport()
    columns = viewport.width() // CELL
    on_screen = (STEPS + 1) * columns * (viewport.height() // CELL + 2)
    assert 0 < thumbnails.made + thumbnails.from_disk <= min(on_screen, PICTURES // 2)
    assert thumbnails.failures == 0
    last = browser.model.index(PICTURES - 1)
    qtbot.wait_until(lambda: isinstance(last.data(Qt.ItemDataRole.DecorationRole), QPixmap))
    browser.close()
    service.close()
