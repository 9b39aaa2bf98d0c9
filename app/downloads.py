"""Model downloads in the window: each on a thread of its own pool, never on the engine's worker,
so pictures keep being generated while gigabytes arrive.

``Downloads`` is the view-model the welcome panel and the Models dialog bind to: it holds one
``DownloadItem`` per download started in this session and says when one changes. The download
itself (resume, verification, free space, hub errors) is engine.library.download's.
"""

from __future__ import annotations

import itertools
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThreadPool, Signal

from app.library_model import download_text
from app.services import Downloader
from app.signals import emit
from engine.errors import Cancelled, EngineError

if TYPE_CHECKING:
    from engine.library.download import DownloadProgress, DownloadSpec

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
SHUTDOWN_WAIT_MS = 3000  # a cancel is seen within one network read


@dataclass(frozen=True)
class DownloadItem:
    """One download as the window shows it."""

    id: int
    spec: DownloadSpec
    dest_dir: Path
    state: str = RUNNING
    done: int = 0  # bytes on disk, with those of an earlier attempt
    total: int | None = None
    rate: float = 0.0
    seconds_left: float | None = None
    message: str = ""  # why it failed or stopped
    path: str = ""  # where the finished file is
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def text(self) -> str:
        if self.state == RUNNING:
            if not self.done and not self.rate:
                return "Connecting…"
            return download_text(self.done, self.total, self.rate, self.seconds_left)
        if self.state == DONE:
            return f"Downloaded to {self.path}"
        return self.message


class Downloads(QObject):
    changed = Signal(int)  # a download's id: started, progressed, or ended
    finished = Signal(int, str)  # id, path of the verified file
    failed = Signal(int, str)  # id, message for the person
    starter_changed = Signal(object)  # DownloadSpec: what the welcome panel offers
    _progress = Signal(int, object)  # from the pool: id, DownloadProgress
    _ended = Signal(int, str, str)  # from the pool: id, state, path or message

    def __init__(
        self,
        download: Downloader,
        starter: Callable[[], DownloadSpec],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._download = download
        self._items: dict[int, DownloadItem] = {}
        self._ids = itertools.count(1)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(4)  # a few files at once; each waits on the network
        self.starter: DownloadSpec | None = None
        self._progress.connect(self._on_progress)
        self._ended.connect(self._on_ended)
        self.starter_changed.connect(self._set_starter)
        # The presets live beside huggingface_hub, which takes a while to import: not here.
        self._pool.start(lambda: self._find_starter(starter))

    def _find_starter(self, starter: Callable[[], DownloadSpec]) -> None:
        try:
            spec = starter()
        except Exception:  # no offer then; opening a file and the Models dialog still work
            traceback.print_exc()
            return
        emit(self.starter_changed, spec)

    def _set_starter(self, spec: DownloadSpec) -> None:
        self.starter = spec

    # -- what the views read ----------------------------------------------------------------

    def items(self) -> list[DownloadItem]:
        return list(self._items.values())

    def item(self, download_id: int) -> DownloadItem:
        return self._items[download_id]

    def latest(self, spec: DownloadSpec) -> DownloadItem | None:
        """The newest download of ``spec`` in this session, or None."""
        found = [i for i in self._items.values() if i.spec == spec]
        return found[-1] if found else None

    def running(self) -> list[DownloadItem]:
        return [i for i in self._items.values() if i.state == RUNNING]

    # -- requests ---------------------------------------------------------------------------

    def start(self, spec: DownloadSpec, dest_dir: Path) -> int:
        """Start downloading ``spec`` into ``dest_dir``; the same file twice at once is one."""
        for item in self.running():
            if item.spec == spec and item.dest_dir == dest_dir:
                return item.id
        item = DownloadItem(next(self._ids), spec, Path(dest_dir), total=spec.size)
        self._items[item.id] = item
        self._pool.start(lambda: self._run(item))
        emit(self.changed, item.id)
        return item.id

    def cancel(self, download_id: int) -> None:
        """Stop it; the bytes so far stay on disk and the next start continues after them."""
        self._items[download_id].cancel.set()

    def shutdown(self) -> None:
        for item in self.running():
            item.cancel.set()
        self._pool.waitForDone(SHUTDOWN_WAIT_MS)

    # -- the pool thread --------------------------------------------------------------------

    def _run(self, item: DownloadItem) -> None:
        try:
            result = self._download(
                item.spec,
                item.dest_dir,
                on_progress=lambda p: emit(self._progress, item.id, p),
                cancel=item.cancel,
            )
        except Cancelled as exc:
            emit(self._ended, item.id, CANCELLED, str(exc) or "Download cancelled.")
        except EngineError as exc:
            emit(self._ended, item.id, FAILED, str(exc))
        except Exception as exc:  # never lose the thread silently: say it
            traceback.print_exc()
            emit(self._ended, item.id, FAILED, f"The download failed unexpectedly: {exc}")
        else:
            emit(self._ended, item.id, DONE, str(result.path))

    # -- back on the GUI thread -------------------------------------------------------------

    def _on_progress(self, download_id: int, p: DownloadProgress) -> None:
        item = self._items[download_id]
        if item.state != RUNNING:
            return  # a report that was on its way when the download ended
        total = p.total if p.total is not None else item.total
        self._items[download_id] = replace(
            item, done=p.done, total=total, rate=p.rate, seconds_left=p.seconds_left
        )
        emit(self.changed, download_id)

    def _on_ended(self, download_id: int, state: str, detail: str) -> None:
        item = self._items[download_id]
        if state == DONE:
            item = replace(item, state=DONE, path=detail, done=item.total or item.done)
        else:
            item = replace(item, state=state, message=detail, rate=0.0, seconds_left=None)
        self._items[download_id] = item
        emit(self.changed, download_id)
        if state == DONE:
            emit(self.finished, download_id, detail)
        elif state == FAILED:
            emit(self.failed, download_id, detail)
